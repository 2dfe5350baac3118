//! The guest image the microVM runtime boots, as `scripts/build-guest.sh` leaves it: kernel,
//! initramfs (busybox, virtio modules, the agent, the guest init), read-only system image and a
//! manifest. `locate` checks all of it once at runtime start and fails closed with a message
//! naming the script when anything is missing or built for another agent protocol. This module
//! must never build or modify the image.

use std::path::{Path, PathBuf};

use osb_guest_agent::protocol::PROTOCOL_VERSION;

use crate::error::RuntimeError;

/// The script that builds the guest.
pub const BUILD_SCRIPT: &str = "scripts/build-guest.sh";

/// The files of a built guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestImage {
    /// The kernel.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initramfs: PathBuf,
    /// The read-only ext4 system image.
    pub system: PathBuf,
    /// The kernel release it was built from (for messages).
    pub kernel_release: String,
}

impl GuestImage {
    /// Finds and checks the guest in `dir`.
    pub fn locate(dir: &Path) -> Result<Self, RuntimeError> {
        let missing = |what: &str| {
            RuntimeError::Setup {
            step: "finding the microVM guest image",
            detail: format!(
                "{what} in {}: build the guest with `{BUILD_SCRIPT}` (set OSB_GUEST_DIR for another directory)",
                dir.display()
            ),
        }
        };
        let image = Self {
            kernel: dir.join("vmlinuz"),
            initramfs: dir.join("initramfs.cpio.gz"),
            system: dir.join("system.img"),
            kernel_release: String::new(),
        };
        for file in [&image.kernel, &image.initramfs, &image.system] {
            if !file.is_file() {
                return Err(missing(&format!(
                    "{} is missing",
                    file.file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default()
                )));
            }
        }
        let manifest_path = dir.join("manifest.json");
        let manifest: serde_json::Value = std::fs::read(&manifest_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| missing("manifest.json is missing or unreadable"))?;
        let protocol = manifest["agentProtocol"].as_u64();
        if protocol != Some(u64::from(PROTOCOL_VERSION)) {
            return Err(missing(&format!(
                "the guest agent speaks protocol {protocol:?}, this worker {PROTOCOL_VERSION}"
            )));
        }
        Ok(Self {
            kernel_release: manifest["kernel"].as_str().unwrap_or_default().to_owned(),
            ..image
        })
    }
}

impl GuestImage {
    /// Checks that an unprivileged QEMU can read the image (world-readable files in
    /// traversable directories), so a sandbox's boot does not fail on a permission.
    pub fn check_world_readable(&self) -> Result<(), RuntimeError> {
        use std::os::unix::fs::PermissionsExt;
        for file in [&self.kernel, &self.initramfs, &self.system] {
            let readable = std::fs::metadata(file)
                .map(|meta| meta.permissions().mode() & 0o004 != 0)
                .unwrap_or(false);
            let traversable = file.ancestors().skip(1).all(|dir| {
                std::fs::metadata(dir)
                    .map(|meta| meta.permissions().mode() & 0o001 != 0)
                    .unwrap_or(false)
            });
            if !readable || !traversable {
                return Err(RuntimeError::Setup {
                    step: "checking the microVM guest image",
                    detail: format!(
                        "QEMU runs as an unprivileged uid and cannot read {}: make the guest files world-readable and their directories traversable (as {BUILD_SCRIPT} leaves them), or run QEMU as root (qemu_uid_base = None)",
                        file.display()
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_guest_names_the_build_script() {
        let dir = tempfile::tempdir().unwrap();
        let error = GuestImage::locate(dir.path()).unwrap_err().to_string();
        assert!(error.contains(BUILD_SCRIPT), "{error}");
        assert!(error.contains("vmlinuz is missing"), "{error}");
    }

    #[test]
    fn an_agent_of_another_protocol_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["vmlinuz", "initramfs.cpio.gz", "system.img"] {
            std::fs::write(dir.path().join(file), b"x").unwrap();
        }
        std::fs::write(dir.path().join("manifest.json"), br#"{"agentProtocol": 0}"#).unwrap();
        let error = GuestImage::locate(dir.path()).unwrap_err().to_string();
        assert!(error.contains("protocol"), "{error}");
        let current = format!(r#"{{"agentProtocol": {PROTOCOL_VERSION}, "kernel": "6.1"}}"#);
        std::fs::write(dir.path().join("manifest.json"), current).unwrap();
        assert_eq!(
            GuestImage::locate(dir.path()).unwrap().kernel_release,
            "6.1"
        );
    }
}
