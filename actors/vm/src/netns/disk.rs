//! The size-limited file system under a netns sandbox's writable layer (ADR 0207). Each sandbox
//! gets `<sandbox dir>/disk.img`, a sparse copy of an ext4 image formatted once per worker
//! (`disk-templates/<MiB>.img`), loop-mounted at `<sandbox dir>/disk` with `discard` (a deleted
//! file gives its space back to the worker) and `nosuid,nodev`; the overlay's upper and work
//! directories live on it, so a sandbox that writes without end meets ENOSPC at its quota
//! instead of filling the worker's data filesystem. Only the kernel writes these images on the
//! sandbox's behalf: the host never mounts an image a sandbox could have written block by block.
//! Teardown is `host::mounts::take_down_under` on the sandbox directory. This module must never
//! mount anything outside the sandbox's own directory.

use std::path::{Path, PathBuf};

use tokio::sync::Mutex;

use crate::error::RuntimeError;
use crate::system::{run_tool, tool_exists};

/// The sandbox's disk image, inside its directory.
pub const IMAGE_FILE: &str = "disk.img";
/// Where the image is mounted, inside the sandbox directory.
pub const MOUNT_DIR: &str = "disk";
/// The formatter the quota needs (Debian: e2fsprogs).
pub const FORMAT_TOOL: &str = "mkfs.ext4";
/// Mount options: discard punches freed blocks out of the sparse image; the itable is left
/// uninitialised (nothing to zero in the background: the image is fresh and never fsck'd).
pub const MOUNT_OPTIONS: &str = "loop,discard,nosuid,nodev,noinit_itable";

/// The kernel's loop-device control node (`mount -o loop` asks it for a free device).
pub const LOOP_CONTROL: &str = "/dev/loop-control";

/// Why the disk quota cannot work on this host, if it cannot.
pub fn unavailable_reason() -> Option<String> {
    missing_reason(tool_exists(FORMAT_TOOL), Path::new(LOOP_CONTROL).exists())
}

fn missing_reason(has_format_tool: bool, has_loop_devices: bool) -> Option<String> {
    if !has_format_tool {
        return Some(format!(
            "`{FORMAT_TOOL}` is missing: the per-sandbox disk quota formats an ext4 image \
             (apt-get install e2fsprogs)"
        ));
    }
    if !has_loop_devices {
        return Some(format!(
            "the kernel's loop devices are unavailable ({LOOP_CONTROL} is missing): load the \
             `loop` module, or give the worker access to loop devices"
        ));
    }
    None
}

/// The worker's formatted template image of the default size, and where per-size images are
/// formatted.
#[derive(Debug)]
pub(crate) struct DiskTemplates {
    default_mb: u32,
    default_image: PathBuf,
    // Serialises formatting (a sandbox of another size formats its own image).
    formatting: Mutex<()>,
}

impl DiskTemplates {
    /// Formats the template of `default_mb` MiB under `data_dir/disk-templates` (always fresh:
    /// a template half-written by a crash is never used).
    pub(crate) async fn start(data_dir: &Path, default_mb: u32) -> Result<Self, RuntimeError> {
        if default_mb < crate::spec::MIN_DISK_MB {
            return Err(RuntimeError::Setup {
                step: "reading the runtime configuration",
                detail: format!(
                    "the sandbox disk size {default_mb} MiB is too small: use at least {} MiB",
                    crate::spec::MIN_DISK_MB
                ),
            });
        }
        let dir = data_dir.join("disk-templates");
        std::fs::create_dir_all(&dir)
            .and_then(|()| {
                std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            })
            .map_err(|e| RuntimeError::io(format!("creating {}", dir.display()), e))?;
        // Templates of earlier runs (another size, a half-written one) go first.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.filter_map(Result::ok) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let default_image = dir.join(format!("{default_mb}.img"));
        let partial = dir.join(format!("{default_mb}.img.partial"));
        format(&partial, default_mb).await?;
        std::fs::rename(&partial, &default_image)
            .map_err(|e| RuntimeError::io(format!("renaming {}", partial.display()), e))?;
        Ok(Self {
            default_mb,
            default_image,
            formatting: Mutex::new(()),
        })
    }

    /// Size of a sandbox disk when the spec does not ask for one (also the most it may ask).
    pub(crate) fn default_mb(&self) -> u32 {
        self.default_mb
    }

    /// Creates `sandbox_dir/disk.img` of `size_mb` MiB, mounts it at `sandbox_dir/disk` and
    /// makes the overlay's `upper` and `work` directories on it. A failure leaves only what
    /// `take_down_under(sandbox_dir)` and removing the directory clean up.
    pub(crate) async fn attach(
        &self,
        sandbox_dir: &Path,
        size_mb: u32,
    ) -> Result<(), RuntimeError> {
        let image = sandbox_dir.join(IMAGE_FILE);
        if size_mb == self.default_mb {
            // FICLONE where the file system shares blocks, else a hole-preserving copy.
            let (from, to) = (
                self.default_image.display().to_string(),
                image.display().to_string(),
            );
            run_tool(
                "copying the sandbox disk template",
                "cp",
                &["--reflink=auto", "--sparse=always", &from, &to],
                None,
            )
            .await?;
        } else {
            let _one_at_a_time = self.formatting.lock().await;
            format(&image, size_mb).await?;
        }
        let mount = sandbox_dir.join(MOUNT_DIR);
        std::fs::create_dir(&mount)
            .map_err(|e| RuntimeError::io(format!("creating {}", mount.display()), e))?;
        let (image_text, mount_text) = (image.display().to_string(), mount.display().to_string());
        run_tool(
            "mounting the sandbox disk (mount -o loop)",
            "mount",
            &["-t", "ext4", "-o", MOUNT_OPTIONS, &image_text, &mount_text],
            None,
        )
        .await?;
        for dir in [upper(sandbox_dir), work(sandbox_dir)] {
            std::fs::create_dir(&dir)
                .map_err(|e| RuntimeError::io(format!("creating {}", dir.display()), e))?;
        }
        Ok(())
    }
}

/// The overlay upper directory of the sandbox in `sandbox_dir` (on its disk).
pub(crate) fn upper(sandbox_dir: &Path) -> PathBuf {
    sandbox_dir.join(MOUNT_DIR).join("upper")
}

/// The overlay work directory of the sandbox in `sandbox_dir` (on its disk).
pub(crate) fn work(sandbox_dir: &Path) -> PathBuf {
    sandbox_dir.join(MOUNT_DIR).join("work")
}

/// Whether a copy into the disk failed because the disk is full.
pub(crate) fn is_disk_full(error: &RuntimeError) -> bool {
    error.to_string().contains("No space left on device")
}

/// Formats a sparse ext4 image of `size_mb` MiB at `image` (root-only, 0600).
async fn format(image: &Path, size_mb: u32) -> Result<(), RuntimeError> {
    let _ = std::fs::remove_file(image);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(image)
        .map_err(|e| RuntimeError::io(format!("creating {}", image.display()), e))?;
    std::fs::set_permissions(image, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .and_then(|()| file.set_len(u64::from(size_mb) * 1024 * 1024))
        .map_err(|e| RuntimeError::io(format!("sizing {}", image.display()), e))?;
    drop(file);
    let image_text = image.display().to_string();
    run_tool(
        "formatting a sandbox disk (mkfs.ext4)",
        FORMAT_TOOL,
        &[
            "-q",
            "-F",
            "-m",
            "0",
            "-L",
            "osb-disk",
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1",
            &image_text,
        ],
        None,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_without_the_formatter_or_loop_devices_is_told_what_to_install() {
        let no_tool = missing_reason(false, true).unwrap_or_default();
        assert!(no_tool.contains("apt-get install e2fsprogs"), "{no_tool}");
        let no_loop = missing_reason(true, false).unwrap_or_default();
        assert!(no_loop.contains(LOOP_CONTROL), "{no_loop}");
        assert_eq!(missing_reason(true, true), None);
    }

    #[test]
    fn the_overlay_dirs_live_on_the_disk() {
        let dir = Path::new("/data/sandboxes/x");
        assert!(upper(dir).starts_with(dir.join(MOUNT_DIR)));
        assert!(work(dir).starts_with(dir.join(MOUNT_DIR)));
        assert_ne!(upper(dir), work(dir));
    }
}
