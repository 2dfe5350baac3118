//! Configuration of the microVM runtime: the host-side settings it shares with the netns
//! runtime (prefix, data dir, address pool, resolver, sandbox uid), plus where the guest image
//! lives, which accelerator to use, the writable disk size and the QEMU binary. Defaults suit a
//! worker running both runtimes: a prefix and pool of its own. This module must never touch the
//! system.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::NetnsConfig;
use crate::pool::Ipv4Pool;

/// Where `scripts/build-guest.sh` puts the guest by default.
pub const DEFAULT_GUEST_DIR: &str = "/var/cache/opensandbox/guest";
/// Environment variable that overrides the guest directory (as `build-guest.sh` reads it).
pub const GUEST_DIR_VARIABLE: &str = "OSB_GUEST_DIR";
/// Default prefix of the microVM runtime's host objects.
pub const DEFAULT_MICROVM_PREFIX: &str = "osbm";
/// Default address pool of microVM sandboxes (beside the netns default 100.96.0.0/16).
pub const DEFAULT_MICROVM_POOL: &str = "100.97.0.0/16";
/// Default size of a sandbox's writable disk (sparse: only what the guest writes uses space).
pub const DEFAULT_DISK_MB: u32 = 4096;
/// Start of the uid range QEMU processes run in (no passwd entries needed; far above any real
/// account). Each worker prefix gets its own block of 2^14 uids in it, one per address slot, so
/// two workers on one host never share a QEMU uid (barring a 1-in-16384 prefix hash clash).
pub const DEFAULT_QEMU_UID_BASE: u32 = 0x7000_0000;

/// The first QEMU uid of the worker with `prefix`: `DEFAULT_QEMU_UID_BASE` plus a 14-bit hash
/// of the prefix times 2^14 (the largest pool, a /16, has 16384 slots).
pub fn qemu_uid_base_for(prefix: &str) -> u32 {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let hash = prefix.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    DEFAULT_QEMU_UID_BASE + ((hash & 0x3fff) << 14)
}
/// Default boot timeout: generous, because without KVM the guest boots under TCG emulation.
pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// Which accelerator QEMU uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM if a probe VM really boots with it (once per worker process), else TCG.
    Auto,
    /// KVM only: create fails if KVM does not work.
    Kvm,
    /// TCG emulation only (slow; no hardware needed).
    Tcg,
}

/// Settings of a `MicroVmRuntime`.
#[derive(Debug, Clone)]
pub struct MicroVmConfig {
    /// Prefix, data dir, pool, resolver, sandbox uid/gid, boot timeout (as for netns). The data
    /// dir must not be shared with another runtime: the reaper owns what is inside.
    pub host: NetnsConfig,
    /// Directory holding `vmlinuz`, `initramfs.cpio.gz`, `system.img`, `manifest.json`.
    pub guest_dir: PathBuf,
    /// Accelerator choice.
    pub accel: AccelChoice,
    /// Writable disk size in MiB.
    pub disk_mb: u32,
    /// The QEMU binary (looked up on the host tool PATH when relative).
    pub qemu_binary: PathBuf,
    /// QEMU of slot `n` runs as uid/gid `base + n` (a QEMU escape lands in an unprivileged uid
    /// of its own, not root); `None` runs QEMU as root, confined by its seccomp sandbox only.
    pub qemu_uid_base: Option<u32>,
}

impl MicroVmConfig {
    /// Defaults for a worker with this prefix and data dir (guest dir from `OSB_GUEST_DIR` or
    /// the default, accelerator probed).
    pub fn new(name_prefix: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        let mut host = NetnsConfig::new(name_prefix, data_dir);
        let qemu_uid_base = qemu_uid_base_for(&host.name_prefix);
        host.boot_timeout = DEFAULT_BOOT_TIMEOUT;
        host.address_pool = DEFAULT_MICROVM_POOL
            .parse::<Ipv4Pool>()
            .unwrap_or(Ipv4Pool::DEFAULT);
        let guest_dir = std::env::var_os(GUEST_DIR_VARIABLE)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_GUEST_DIR));
        Self {
            host,
            guest_dir,
            accel: AccelChoice::Auto,
            disk_mb: DEFAULT_DISK_MB,
            qemu_binary: PathBuf::from("qemu-system-x86_64"),
            qemu_uid_base: Some(qemu_uid_base),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_do_not_collide_with_the_netns_runtime() {
        let config = MicroVmConfig::new(DEFAULT_MICROVM_PREFIX, "/var/lib/osb/microvm");
        assert_eq!(config.host.address_pool.to_string(), DEFAULT_MICROVM_POOL);
        assert_ne!(
            config.host.address_pool.to_string(),
            crate::config::DEFAULT_ADDRESS_POOL
        );
        assert_eq!(config.host.boot_timeout, DEFAULT_BOOT_TIMEOUT);
    }

    #[test]
    fn each_prefix_gets_its_own_qemu_uid_block() {
        let (one, two) = (qemu_uid_base_for("osbm"), qemu_uid_base_for("osbm2"));
        assert_ne!(one, two);
        for base in [one, two] {
            assert!(base >= DEFAULT_QEMU_UID_BASE);
            // The last slot of a /16 pool still fits below 2^31.
            assert!(base
                .checked_add(16_383)
                .is_some_and(|last| last < 0x8000_0000));
        }
    }
}
