//! The per-sandbox disk quota (ADR 0207): a sandbox that writes without end meets ENOSPC at its
//! quota and the worker's data filesystem loses no more than that; a neighbour keeps writing;
//! deleting gives the space back; destroy leaves no mount, loop device or image; a fork keeps
//! its checkpoint's data on a disk of its own size; a crashed worker's mounted disks are reaped.
//! The worker's data filesystem here is a tmpfs of the test's own, so its free space measures
//! this worker alone (and without the quota the sandbox would only fill that tmpfs).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use osb_vm::netns::disk::{IMAGE_FILE, MOUNT_DIR};
use osb_vm::{ExecRequest, Runtime, RuntimeError, SpecError};

use crate::support::{spec, unused_proxy, TestPki, TestWorker};

const QUOTA_MB: u32 = 64;
/// Room for ext4 metadata and the images' own blocks beside the data.
const SLACK_KIB: u64 = 8 * 1024;

/// A tmpfs mounted on a fresh temp dir, unmounted on drop (after the worker's reaper ran, so
/// declare it before the worker).
struct DataFs {
    dir: tempfile::TempDir,
}

impl DataFs {
    fn mount(size_mb: u32) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("osb-vm-it-diskfs-")
            .tempdir()
            .expect("a temp dir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m,mode=0700")])
            .arg("osb-test-data")
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs for the data dir failed");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn free_kib(&self) -> u64 {
        let output = std::process::Command::new("df")
            .args(["-k", "--output=avail"])
            .arg(self.path())
            .output()
            .expect("df runs");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|line| line.trim().parse().ok())
            .expect("df prints the free KiB")
    }
}

impl Drop for DataFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// `losetup -a` lines naming a file under `dir`.
fn loop_devices_under(dir: &Path) -> Vec<String> {
    let output = std::process::Command::new("losetup")
        .arg("-a")
        .output()
        .expect("losetup runs");
    let needle = dir.display().to_string();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains(&needle))
        .map(str::to_owned)
        .collect()
}

fn images_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join("sandboxes")) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path().join(IMAGE_FILE))
        .filter(|image| image.exists())
        .collect()
}

/// The size (KiB) of the file system `/workspace` is on, as the sandbox sees it.
async fn workspace_size_kib(worker: &TestWorker, id: osb_proto::SandboxId) -> u64 {
    let out = worker.sh(id, "df -k /workspace | tail -n 1").await;
    out.stdout
        .split_whitespace()
        .nth(1)
        .and_then(|size| size.parse().ok())
        .unwrap_or_else(|| panic!("df inside the sandbox: {out:?}"))
}

async fn fill(worker: &TestWorker, id: osb_proto::SandboxId) -> (String, u64) {
    let mut request = ExecRequest::shell(
        "dd if=/dev/zero of=/workspace/fill bs=1M 2>&1; echo \"dd-exit=$?\"; sync; \
         echo \"size=$(stat -c %s /workspace/fill)\"",
    );
    request.timeout = Duration::from_secs(120);
    let out = worker.runtime.exec(id, request).await.expect("exec");
    let size = out
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("size="))
        .and_then(|size| size.trim().parse().ok())
        .unwrap_or_else(|| panic!("the fill's size: {out:?}"));
    (out.stdout, size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_filling_its_disk_stops_at_its_quota_and_gives_the_space_back() {
    let data_fs = DataFs::mount(512);
    let worker = TestWorker::start_with(63, data_fs.path(), QUOTA_MB).await;
    let pki = TestPki::new("unused.test");
    let filler = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;
    let neighbour = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;
    let size_kib = workspace_size_kib(&worker, filler).await;
    assert!(
        size_kib <= u64::from(QUOTA_MB) * 1024 && size_kib > u64::from(QUOTA_MB) * 1024 * 3 / 4,
        "the sandbox sees a file system of its quota: {size_kib} KiB"
    );
    let free_before = data_fs.free_kib();

    let (output, filled) = fill(&worker, filler).await;
    assert!(
        output.contains("No space left on device") && !output.contains("dd-exit=0"),
        "dd must fail with ENOSPC: {output}"
    );
    assert!(
        filled > u64::from(QUOTA_MB) * 1024 * 1024 / 2,
        "the quota, not something else, stopped the fill: {filled} bytes"
    );
    let free_full = data_fs.free_kib();
    let used = free_before.saturating_sub(free_full);
    assert!(
        used <= u64::from(QUOTA_MB) * 1024 + SLACK_KIB,
        "the worker's data filesystem lost {used} KiB for a {QUOTA_MB} MiB quota"
    );

    // The neighbour's disk is its own.
    let note = worker
        .sh(
            neighbour,
            "head -c 1048576 /dev/zero > /workspace/note && echo still-writable",
        )
        .await;
    assert_eq!(note.stdout.trim(), "still-writable", "{note:?}");

    // Deleting gives the space back to the worker (discard punches the image's blocks out).
    let removed = worker
        .sh(filler, "rm /workspace/fill && sync && echo gone")
        .await;
    assert_eq!(removed.stdout.trim(), "gone", "{removed:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while data_fs.free_kib() + SLACK_KIB < free_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let free_after_rm = data_fs.free_kib();
    assert!(
        free_after_rm + SLACK_KIB >= free_before,
        "rm gave back too little: {free_before} KiB free before, {free_after_rm} KiB after"
    );

    // Destroy leaves no mount, no loop device and no image.
    for id in [filler, neighbour] {
        worker.runtime.destroy(id).await.expect("destroy");
    }
    let after = worker.runtime.census().await.expect("census");
    assert!(after.is_empty(), "destroy left {after:?}");
    assert!(loop_devices_under(&worker.data_dir).is_empty());
    assert!(images_under(&worker.data_dir).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_keeps_its_checkpoints_data_on_a_disk_of_its_own() {
    let worker = TestWorker::start_with(64, &std::env::temp_dir(), QUOTA_MB).await;
    let pki = TestPki::new("unused.test");
    let parent = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;
    let written = worker
        .sh(
            parent,
            "head -c 20971520 /dev/urandom > /workspace/data && sha256sum /workspace/data",
        )
        .await;
    let digest = written
        .stdout
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned();
    let checkpoint = worker.runtime.checkpoint(parent).await.expect("checkpoint");

    // The default size: the worker's quota, holding the parent's 20 MiB.
    let fork_spec = spec(unused_proxy(), &pki.ca_pem);
    let fork = fork_spec.id;
    worker
        .runtime
        .fork(checkpoint.checkpoint_id, fork_spec)
        .await
        .expect("fork");
    let check = worker.sh(fork, "sha256sum /workspace/data").await;
    assert!(check.stdout.contains(&digest), "{check:?}");
    assert!(workspace_size_kib(&worker, fork).await <= u64::from(QUOTA_MB) * 1024);
    let (output, filled) = fill(&worker, fork).await;
    assert!(output.contains("No space left on device"), "{output}");
    assert!(
        filled < u64::from(QUOTA_MB - 20) * 1024 * 1024,
        "the fork's quota counts the data it inherited: {filled} bytes more fitted"
    );
    // The parent's disk is untouched by the fork's fill.
    let parent_write = worker
        .sh(
            parent,
            "head -c 10485760 /dev/zero > /workspace/more && echo ok",
        )
        .await;
    assert_eq!(parent_write.stdout.trim(), "ok", "{parent_write:?}");

    // A smaller disk of its own, still within the worker's maximum.
    let mut small = spec(unused_proxy(), &pki.ca_pem);
    small.disk_mb = Some(32);
    let small_id = small.id;
    worker
        .runtime
        .fork(checkpoint.checkpoint_id, small)
        .await
        .expect("fork with a 32 MiB disk");
    let small_size = workspace_size_kib(&worker, small_id).await;
    assert!(small_size <= 32 * 1024, "{small_size} KiB");
    let check = worker.sh(small_id, "sha256sum /workspace/data").await;
    assert!(check.stdout.contains(&digest), "{check:?}");

    // Too small for the checkpoint's data: a clear refusal, nothing left behind.
    let dirs_before = worker.runtime.census().await.expect("census").sandbox_dirs;
    let mut tiny = spec(unused_proxy(), &pki.ca_pem);
    tiny.disk_mb = Some(16);
    let error = worker
        .runtime
        .fork(checkpoint.checkpoint_id, tiny)
        .await
        .expect_err("20 MiB cannot fit a 16 MiB disk");
    assert!(
        matches!(error, RuntimeError::DiskFull { disk_mb: 16, .. }),
        "{error}"
    );
    // Above the worker's maximum: refused before anything is made.
    let mut large = spec(unused_proxy(), &pki.ca_pem);
    large.disk_mb = Some(QUOTA_MB + 1);
    let error = worker
        .runtime
        .create(large)
        .await
        .expect_err("above the worker's maximum");
    assert!(
        matches!(error, RuntimeError::InvalidSpec(SpecError::DiskMb { .. })),
        "{error}"
    );
    assert!(error.to_string().contains("--sandbox-disk-mb"), "{error}");
    let census = worker.runtime.census().await.expect("census");
    assert_eq!(census.sandbox_dirs, dirs_before, "{census:?}");
    assert_eq!(census.loop_devices, 3, "{census:?}");

    for id in [parent, fork, small_id] {
        worker.runtime.destroy(id).await.expect("destroy");
    }
    let after = worker.runtime.census().await.expect("census");
    assert!(after.is_empty(), "destroy left {after:?}");
    assert!(loop_devices_under(&worker.data_dir).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_reaps_the_disks_a_crashed_one_left_mounted() {
    let mut worker = TestWorker::start_with(65, &std::env::temp_dir(), QUOTA_MB).await;
    let pki = TestPki::new("unused.test");
    let id = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;
    worker.sh(id, "echo kept > /workspace/file").await;
    // A crash between attaching a loop device and mounting it leaves one nobody mounted.
    let image = worker
        .data_dir
        .join("sandboxes")
        .join(id.to_string())
        .join(IMAGE_FILE);
    let attached = std::process::Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&image)
        .output()
        .expect("losetup runs");
    assert!(attached.status.success(), "{attached:?}");
    let left = worker.runtime.census().await.expect("census");
    assert!(left.mounts >= 1, "{left:?}");
    assert_eq!(left.loop_devices, 2, "{left:?}");
    assert!(worker
        .data_dir
        .join("sandboxes")
        .join(id.to_string())
        .join(MOUNT_DIR)
        .join("upper/workspace/file")
        .exists());

    // Crash: no destructor runs; the sandbox's processes keep its disk busy.
    std::mem::forget(worker.runtime.clone());
    worker.restart_runtime(65).await;
    let after = worker.runtime.census().await.expect("census");
    assert!(after.is_empty(), "the restarted worker left {after:?}");
    assert!(
        loop_devices_under(&worker.data_dir).is_empty(),
        "{:?}",
        loop_devices_under(&worker.data_dir)
    );
    assert!(images_under(&worker.data_dir).is_empty());
}
