//! The sandbox's file tree. A per-sandbox *base* layer (generated: mount points, device nodes,
//! a minimal `/etc` with resolv.conf pointing at the worker resolver and a trust store that
//! includes the proxy CA) sits on top of the template; a private writable *upper* layer takes
//! every write. The host-system template binds the host's `/usr` (and any real `/lib*`, `/bin`,
//! `/sbin` directories) read-only and `nosuid`; a directory template is used as the lowest
//! overlay layer. Nothing of the host outside those trees — the worker's data dir, keys, other
//! sandboxes — exists inside. This module must never write outside the sandbox's own directory.

use std::net::Ipv4Addr;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::error::RuntimeError;

/// Trust bundle path inside the sandbox (system roots plus the proxy CA).
pub const CA_BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The proxy CA alone, inside the sandbox.
pub const CA_CERT_PATH: &str = "/etc/ssl/certs/osb-proxy-ca.pem";
/// The sandbox's home and default working directory.
pub const WORKSPACE: &str = "/workspace";
/// Name of the sandbox user in `/etc/passwd`.
pub const SANDBOX_USER: &str = "sandbox";
/// Host trust bundle appended to the proxy CA (when present).
pub const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Directory the old root is pivoted to during boot (empty afterwards).
pub const OLD_ROOT: &str = ".osb-old";

const SYSTEM_TREES: [&str; 7] = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// A named root tree sandboxes boot from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Template {
    /// The host's own system tree, read-only.
    HostSystem {
        /// Host directories bound read-only (absolute paths, same path inside).
        binds: Vec<PathBuf>,
        /// Top-level symlinks to recreate (`bin -> usr/bin` on merged-/usr hosts).
        symlinks: Vec<(String, PathBuf)>,
    },
    /// A directory holding a complete root file system (lowest overlay layer).
    Directory(PathBuf),
}

impl Template {
    /// Inspects the host's `/` for the host-system template.
    pub fn host_system(extra_dirs: &[PathBuf]) -> Self {
        let mut binds = Vec::new();
        let mut symlinks = Vec::new();
        for name in SYSTEM_TREES {
            let path = Path::new("/").join(name);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(&path) {
                        symlinks.push((name.to_owned(), target));
                    }
                }
                Ok(meta) if meta.is_dir() => binds.push(path),
                _ => {}
            }
        }
        binds.extend(extra_dirs.iter().filter(|dir| dir.is_dir()).cloned());
        Template::HostSystem { binds, symlinks }
    }

    /// Checks a directory template: absolute, a directory, with `/bin/sh`, `sleep`, `umount` and
    /// `/usr/bin/env`
    /// (the sandbox's init needs them once it has pivoted into the template).
    pub fn directory(path: &Path) -> Result<Self, RuntimeError> {
        let refuse = |why: &str| RuntimeError::BadTemplate {
            path: path.display().to_string(),
            why: why.to_owned(),
        };
        if !path.is_absolute() || !path.is_dir() {
            return Err(refuse("it must be an absolute path to a directory"));
        }
        let text = path.display().to_string();
        if text.contains([':', ',', '\n']) {
            return Err(refuse(
                "the path must not contain `:`, `,` or newlines (overlayfs options)",
            ));
        }
        let has = |relative: &str| std::fs::symlink_metadata(path.join(relative)).is_ok();
        if !has("bin/sh") {
            return Err(refuse("it has no /bin/sh; a template needs a POSIX shell"));
        }
        for tool in ["sleep", "umount"] {
            if !["bin", "usr/bin", "sbin", "usr/sbin"]
                .iter()
                .any(|dir| has(&format!("{dir}/{tool}")))
            {
                return Err(refuse(&format!(
                    "it has no `{tool}` in /bin, /usr/bin, /sbin or /usr/sbin; the sandbox init needs it"
                )));
            }
        }
        if !has("usr/bin/env") {
            return Err(refuse(
                "it has no /usr/bin/env; commands are started through it",
            ));
        }
        Ok(Template::Directory(path.to_path_buf()))
    }

    /// Host paths bound read-only into the root.
    pub fn binds(&self) -> &[PathBuf] {
        match self {
            Template::HostSystem { binds, .. } => binds,
            Template::Directory(_) => &[],
        }
    }

    /// The overlay `lowerdir` value for a sandbox whose base layer is `base`.
    pub fn lowerdir(&self, base: &Path) -> String {
        match self {
            Template::HostSystem { .. } => base.display().to_string(),
            Template::Directory(dir) => format!("{}:{}", base.display(), dir.display()),
        }
    }
}

/// What the base layer is generated from.
#[derive(Debug, Clone)]
pub struct BaseInputs<'a> {
    /// Hostname of the sandbox.
    pub hostname: &'a str,
    /// The sandbox's own address (for /etc/hosts).
    pub address: Ipv4Addr,
    /// Gateway = resolver address (for resolv.conf).
    pub gateway: Ipv4Addr,
    /// Proxy CA certificate (PEM).
    pub ca_pem: &'a str,
    /// uid/gid of the sandbox user.
    pub uid: u32,
    /// gid of the sandbox user.
    pub gid: u32,
}

/// Writes the base layer into `base` (which must not exist yet).
pub fn write_base(
    base: &Path,
    template: &Template,
    inputs: &BaseInputs<'_>,
) -> Result<(), RuntimeError> {
    let io = |what: &str, path: &Path, error| {
        RuntimeError::io(format!("{what} {}", path.display()), error)
    };
    let mkdir = |relative: &str, mode: u32| -> Result<PathBuf, RuntimeError> {
        let path = base.join(relative);
        std::fs::create_dir_all(&path).map_err(|e| io("creating", &path, e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io("setting mode of", &path, e))?;
        Ok(path)
    };
    let write = |relative: &str, content: &str| -> Result<(), RuntimeError> {
        let path = base.join(relative);
        std::fs::write(&path, content).map_err(|e| io("writing", &path, e))
    };
    mkdir("", 0o755)?;
    for dir in [
        "proc",
        "dev",
        "etc",
        "etc/ssl",
        "etc/ssl/certs",
        "run",
        "var",
        "root",
    ] {
        mkdir(dir, 0o755)?;
    }
    mkdir(OLD_ROOT, 0o700)?;
    for dir in ["tmp", "var/tmp", "dev/shm"] {
        mkdir(dir, 0o1777)?;
    }
    let workspace = mkdir(WORKSPACE.trim_start_matches('/'), 0o755)?;
    nix::unistd::chown(
        &workspace,
        Some(nix::unistd::Uid::from_raw(inputs.uid)),
        Some(nix::unistd::Gid::from_raw(inputs.gid)),
    )
    .map_err(|e| io("chown", &workspace, e.into()))?;
    if let Template::HostSystem { binds, symlinks } = template {
        for bind in binds {
            let relative = bind.strip_prefix("/").unwrap_or(bind);
            let path = base.join(relative);
            std::fs::create_dir_all(&path).map_err(|e| io("creating", &path, e))?;
        }
        for (name, target) in symlinks {
            let path = base.join(name);
            symlink(target, &path).map_err(|e| io("linking", &path, e))?;
        }
    }
    for (name, minor_major) in [
        ("null", (1, 3)),
        ("zero", (1, 5)),
        ("full", (1, 7)),
        ("random", (1, 8)),
        ("urandom", (1, 9)),
        ("tty", (5, 0)),
    ] {
        let path = base.join("dev").join(name);
        mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(minor_major.0, minor_major.1),
        )
        .map_err(|e| io("creating device", &path, e.into()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| io("setting mode of", &path, e))?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let path = base.join("dev").join(name);
        symlink(target, &path).map_err(|e| io("linking", &path, e))?;
    }
    let BaseInputs {
        hostname,
        address,
        gateway,
        ca_pem,
        uid,
        gid,
    } = inputs;
    write(
        "etc/passwd",
        &format!("root:x:0:0:root:/root:/bin/sh\n{SANDBOX_USER}:x:{uid}:{gid}:sandbox:{WORKSPACE}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
    )?;
    write(
        "etc/group",
        &format!("root:x:0:\n{SANDBOX_USER}:x:{gid}:\nnogroup:x:65534:\n"),
    )?;
    write(
        "etc/resolv.conf",
        &format!("# the worker resolver: answers only names on this sandbox's allowlist\nnameserver {gateway}\noptions attempts:2 timeout:2\n"),
    )?;
    write(
        "etc/nsswitch.conf",
        "passwd: files\ngroup: files\nhosts: files dns\n",
    )?;
    write_identity(base, hostname, *address, ca_pem)?;
    if let Ok(config) = std::fs::read_to_string("/etc/ssl/openssl.cnf") {
        write("etc/ssl/openssl.cnf", &config)?;
    }
    Ok(())
}

/// Writes what names the sandbox and whom it trusts into the base layer: `/etc/hostname`,
/// `/etc/hosts`, the proxy CA and the trust bundle. A claimed pooled sandbox gets these
/// rewritten in place (same inodes, truncated; nothing runs in it yet to read them).
pub fn write_identity(
    base: &Path,
    hostname: &str,
    address: Ipv4Addr,
    ca_pem: &str,
) -> Result<(), RuntimeError> {
    let write = |relative: &str, content: &str| -> Result<(), RuntimeError> {
        let path = base.join(relative);
        std::fs::write(&path, content)
            .map_err(|e| RuntimeError::io(format!("writing {}", path.display()), e))
    };
    write("etc/hostname", &format!("{hostname}\n"))?;
    write(
        "etc/hosts",
        &format!("127.0.0.1 localhost\n::1 localhost\n{address} {hostname}\n"),
    )?;
    let ca = if ca_pem.is_empty() || ca_pem.ends_with('\n') {
        ca_pem.to_string()
    } else {
        format!("{ca_pem}\n")
    };
    write(CA_CERT_PATH.trim_start_matches('/'), &ca)?;
    let host_bundle = std::fs::read_to_string(HOST_CA_BUNDLE).unwrap_or_default();
    write(
        CA_BUNDLE_PATH.trim_start_matches('/'),
        &format!("{ca}{host_bundle}"),
    )
}

/// Script run as pid 1 of the sandbox (in its new mount, pid, uts and ipc namespaces, already in
/// its network namespace): mounts the overlay root and the read-only system trees, mounts
/// `/proc` (with `hidepid=2`: the sandbox user cannot read pid 1's command line, which names
/// host paths), pivots into the root, reports its host pid, then reaps orphans forever (`wait`
/// reaps any child; if `sleep` cannot run, pid 1 exits instead of spinning). An empty hostname
/// means a pooled sandbox: after `ready` pid 1 reads its name from stdin, sets it (no fork) and
/// answers `named`; a closed stdin ends it.
/// Arguments: root lowerdir upperdir workdir hostname bind…
pub const BOOT_SCRIPT: &str = r#"set -eu
read -r host_pid _ < /proc/self/stat
root=$1; lower=$2; upper=$3; work=$4; name=$5; shift 5
mount -t overlay osb-root -o "lowerdir=$lower,upperdir=$upper,workdir=$work,nosuid" "$root"
for dir in "$@"; do mount -o bind,ro,nosuid,nodev "$dir" "$root$dir"; done
mount -t proc -o nosuid,nodev,noexec,hidepid=2 proc "$root/proc"
if [ -n "$name" ]; then hostname "$name"; fi
cd "$root"
pivot_root . .osb-old
umount -l /.osb-old
cd /workspace
echo "ready $host_pid"
if [ -z "$name" ]; then
  read -r name
  printf '%s' "$name" > /proc/sys/kernel/hostname
  echo named
fi
exec </dev/null >/dev/null 2>&1
trap '' HUP INT TERM
while sleep 2147483647 & wait $!; do :; done
"#;

/// Joins the cgroups given as the first N arguments, then execs the rest.
/// Arguments: N procs-file… program args…
pub const CGROUP_JOIN_SCRIPT: &str = r#"n=$1; shift
while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done
exec "$@""#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_layer_holds_resolver_trust_store_and_user() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        let template = Template::HostSystem {
            binds: vec![PathBuf::from("/usr")],
            symlinks: vec![("bin".into(), PathBuf::from("usr/bin"))],
        };
        let pem = "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----";
        let inputs = BaseInputs {
            hostname: "sbx",
            address: Ipv4Addr::new(100, 96, 0, 6),
            gateway: Ipv4Addr::new(100, 96, 0, 5),
            ca_pem: pem,
            uid: 1000,
            gid: 1000,
        };
        // mknod needs root; the integration tests cover the full layer as root.
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        write_base(&base, &template, &inputs).unwrap();
        let resolv = std::fs::read_to_string(base.join("etc/resolv.conf")).unwrap();
        assert!(resolv.contains("nameserver 100.96.0.5"));
        let bundle =
            std::fs::read_to_string(base.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
        assert!(bundle.starts_with(pem));
        assert!(base.join("usr").is_dir());
        assert_eq!(
            std::fs::read_link(base.join("bin")).unwrap(),
            PathBuf::from("usr/bin")
        );
        assert!(std::fs::read_to_string(base.join("etc/passwd"))
            .unwrap()
            .contains("sandbox:x:1000:1000"));
    }

    #[test]
    fn directory_templates_need_a_shell_sleep_and_umount() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Template::directory(dir.path()).is_err());
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/sh"), "").unwrap();
        assert!(Template::directory(dir.path()).is_err());
        std::fs::write(dir.path().join("bin/sleep"), "").unwrap();
        assert!(Template::directory(dir.path()).is_err());
        std::fs::write(dir.path().join("bin/umount"), "").unwrap();
        assert!(Template::directory(dir.path()).is_err());
        std::fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
        std::fs::write(dir.path().join("usr/bin/env"), "").unwrap();
        let template = Template::directory(dir.path()).unwrap();
        assert_eq!(
            template.lowerdir(Path::new("/base")),
            format!("/base:{}", dir.path().display())
        );
        assert!(Template::directory(Path::new("relative")).is_err());
    }
}
