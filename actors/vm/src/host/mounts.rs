//! Mounts and loop devices under a directory the worker owns: finding them (from
//! `/proc/self/mountinfo` and `/sys/block/loop*/loop/backing_file`), counting them for the
//! census, and taking them down — unmount (lazily when busy), wait a bounded time for the
//! auto-clearing loop devices to let go of their image, detach any left over. Teardown, the
//! crashed-create unwind and the reaper all use this one path (ADR 0207). This module must
//! never unmount or detach anything outside the directory it is given.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::RuntimeError;
use crate::system::run_tool;

/// How long a teardown waits for loop devices to be released after their unmount (another
/// mount namespace booting at that moment may hold a copy of the mount for a few ms).
const LOOP_RELEASE_WAIT: Duration = Duration::from_secs(3);

/// `dir` as the kernel spells it in the mount table and in loop backing files (symlinks
/// resolved); `dir` itself when it does not exist (nothing can be under it then).
fn kernel_path(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Mount points under `dir` (the host's mount table), deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let dir = kernel_path(dir);
    let dir = dir.as_path();
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut targets: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|escaped| PathBuf::from(unescape_mountinfo(escaped)))
        .filter(|target| target.starts_with(dir) && target != dir)
        .collect();
    // Children before parents: a longer path cannot be a parent of a shorter one.
    targets.sort_by_key(|target| std::cmp::Reverse(target.as_os_str().len()));
    targets.dedup();
    targets
}

/// Loop devices (`loopN`) whose backing file lies under `dir`.
pub fn loops_backed_under(dir: &Path) -> Vec<String> {
    let dir = kernel_path(dir);
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with("loop"))
        .filter(|name| {
            std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"))
                .map(|backing| backing_path(&backing).starts_with(&dir))
                .unwrap_or(false)
        })
        .collect()
}

/// Unmounts everything under `dir`, waits for the loop devices behind those mounts to be
/// released, and detaches any loop device still backed by a file under `dir`. Returns how many
/// mounts were taken down. Safe to call when nothing is mounted.
pub async fn take_down_under(dir: &Path) -> Result<usize, RuntimeError> {
    let targets = mounts_under(dir);
    for target in &targets {
        unmount(target).await?;
    }
    if loops_backed_under(dir).is_empty() {
        return Ok(targets.len());
    }
    // `mount -o loop` sets auto-clear: the device goes when its last user does.
    let deadline = Instant::now() + LOOP_RELEASE_WAIT;
    while !loops_backed_under(dir).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for name in loops_backed_under(dir) {
        // A device nobody mounted (a crash between attach and mount) is detached now; one still
        // in use somewhere only gets auto-clear (already set), so this never fails a teardown.
        let device = format!("/dev/{name}");
        if let Err(error) =
            run_tool("detaching a loop device", "losetup", &["-d", &device], None).await
        {
            tracing::warn!(device = %device, error = %error, "loop device of a sandbox disk stays attached for now");
        }
    }
    Ok(targets.len())
}

async fn unmount(target: &Path) -> Result<(), RuntimeError> {
    let text = target.display().to_string();
    if run_tool("unmounting a sandbox disk", "umount", &[&text], None)
        .await
        .is_ok()
    {
        return Ok(());
    }
    // Busy (a process of the host namespace has a file open there): detach it from the tree
    // now; the file system goes when its last user does.
    tracing::warn!(target = %text, "unmount busy; detaching lazily");
    run_tool(
        "unmounting a sandbox disk lazily",
        "umount",
        &["-l", &text],
        None,
    )
    .await
}

fn backing_path(text: &str) -> PathBuf {
    let trimmed = text.trim_end_matches('\n');
    PathBuf::from(trimmed.strip_suffix(" (deleted)").unwrap_or(trimmed))
}

/// Undoes mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` `\`).
fn unescape_mountinfo(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let octal = bytes.get(index + 1..index + 4).and_then(|digits| {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|digits| u8::from_str_radix(digits, 8).ok())
        });
        match (bytes[index], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                index += 4;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/a\040b/c\134d"), r"/a b/c\d");
        assert_eq!(unescape_mountinfo(r"/plain/path"), "/plain/path");
        assert_eq!(unescape_mountinfo(r"/odd\04"), r"/odd\04");
    }

    #[test]
    fn backing_files_of_deleted_images_still_name_their_directory() {
        assert_eq!(
            backing_path("/data/sandboxes/x/disk.img (deleted)\n"),
            PathBuf::from("/data/sandboxes/x/disk.img")
        );
        assert!(backing_path("/data/sandboxes/x/disk.img\n").starts_with("/data/sandboxes"));
        assert!(!backing_path("/data/sandboxes-other/x.img").starts_with("/data/sandboxes"));
    }
}
