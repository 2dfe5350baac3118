//! Choosing the accelerator by booting, not by looking at `/dev/kvm`: a KVM device node can
//! exist where KVM cannot run a guest (nested virtualisation without vmx/svm), and QEMU then
//! hangs rather than failing. The probe boots the real guest kernel with `osb.probe=1` (the
//! guest init prints a marker and powers off) under KVM with a short deadline; TCG is used when
//! that fails. The result is kept for the life of the worker process. This module must never
//! start a sandbox VM.

use std::path::Path;
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::error::RuntimeError;
use crate::microvm::config::AccelChoice;
use crate::microvm::guest::GuestImage;
use crate::microvm::qemu::{self, Accel};

/// What the guest init prints in probe mode.
pub const PROBE_MARKER: &str = "OSB-PROBE-OK";
/// How long a KVM probe may take (a KVM boot to the marker takes well under a second).
pub const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(8);
/// TSC rate assumed when the host does not say (only affects TCG guests' clocks).
pub const FALLBACK_TSC_KHZ: u64 = 2_000_000;

static PROBED: OnceCell<Accel> = OnceCell::const_new();

/// The host TSC rate from `/proc/cpuinfo` (TCG guests read the host TSC).
pub fn host_tsc_khz(cpuinfo: &str) -> u64 {
    cpuinfo
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "cpu MHz").then(|| value.trim().parse::<f64>().ok())?
        })
        .filter(|mhz| *mhz > 100.0)
        .map(|mhz| (mhz * 1000.0).round() as u64)
        .unwrap_or(FALLBACK_TSC_KHZ)
}

fn tcg() -> Accel {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Accel::Tcg {
        tsc_khz: host_tsc_khz(&cpuinfo),
    }
}

/// The accelerator for `choice`: probed once per process for `Auto`.
pub async fn resolve(
    choice: AccelChoice,
    qemu_binary: &Path,
    guest: &GuestImage,
) -> Result<Accel, RuntimeError> {
    match choice {
        AccelChoice::Tcg => Ok(tcg()),
        AccelChoice::Kvm => {
            if boots(Accel::Kvm, qemu_binary, guest).await {
                Ok(Accel::Kvm)
            } else {
                Err(RuntimeError::Setup {
                    step: "probing KVM",
                    detail: "a probe VM did not boot under KVM within 8 s (no hardware virtualisation here?): use the automatic or the TCG accelerator".into(),
                })
            }
        }
        AccelChoice::Auto => Ok(*PROBED
            .get_or_init(|| async {
                if boots(Accel::Kvm, qemu_binary, guest).await {
                    tracing::info!("microVM accelerator: kvm");
                    Accel::Kvm
                } else {
                    tracing::warn!(
                        "KVM does not boot a guest here; microVMs run under TCG emulation (slow)"
                    );
                    tcg()
                }
            })
            .await),
    }
}

/// Whether a probe VM reaches the guest init under `accel` in time.
async fn boots(accel: Accel, qemu_binary: &Path, guest: &GuestImage) -> bool {
    if accel == Accel::Kvm && !Path::new("/dev/kvm").exists() {
        return false;
    }
    let Ok(mut process) = qemu::spawn(
        qemu_binary,
        &qemu::probe_args(accel, guest),
        None,
        &[],
        None,
    ) else {
        return false;
    };
    let console = process.console.clone();
    let finished = tokio::time::timeout(KVM_PROBE_TIMEOUT, async {
        loop {
            if console.text().contains(PROBE_MARKER) {
                return true;
            }
            if let Ok(Some(_)) = process.child.try_wait() {
                // Exited: look once more, the marker may have arrived with the exit.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return console.text().contains(PROBE_MARKER);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or(false);
    let _ = process.child.start_kill();
    let _ = process.child.wait().await;
    finished
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_rate_comes_from_cpuinfo() {
        assert_eq!(
            host_tsc_khz("processor : 0\ncpu MHz\t\t: 2600.000\n"),
            2_600_000
        );
        assert_eq!(host_tsc_khz("nothing here"), FALLBACK_TSC_KHZ);
    }
}
