//! The QEMU command line of a microVM sandbox and the running QEMU process. The arguments come
//! from a pure function (unit-tested): the `microvm` machine, virtio-mmio devices only (three
//! disks told apart by serial, a virtio-net on the sandbox's tap, virtio-serial for the agent,
//! virtio-rng), no firmware option ROMs, no default devices, the seccomp sandbox on, and the
//! serial console piped to the worker, which keeps only its last bytes. The process runs inside
//! the sandbox's network namespace and cgroup. This module must never give the guest a device
//! the host does not control, nor pass it anything but public configuration.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::error::RuntimeError;
use crate::microvm::guest::GuestImage;
use crate::netns::boot::join_cgroups;
use crate::system::HOST_TOOL_PATH;

/// Serial names of the three disks (the guest init finds them by these).
pub const SYSTEM_DISK_SERIAL: &str = "osb-system";
/// Serial of the per-sandbox base disk (generated /etc, trust store, link settings).
pub const BASE_DISK_SERIAL: &str = "osb-base";
/// Serial of the writable disk.
pub const RW_DISK_SERIAL: &str = "osb-rw";
/// How much of the guest console the worker keeps (for boot-failure messages).
pub const CONSOLE_TAIL_BYTES: usize = 16 * 1024;
/// QEMU's seccomp sandbox: no obsolete syscalls, no privilege changes, no spawning, no
/// scheduler/resource changes.
pub const SECCOMP: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/// The accelerator a VM runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// Emulation; `tsc_khz` is the host TSC rate handed to the guest (TCG's TSC is the host's).
    Tcg {
        /// Host TSC frequency in kHz.
        tsc_khz: u64,
    },
}

impl Accel {
    /// Short name for logs and benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg { .. } => "tcg",
        }
    }
}

/// The kernel command line.
pub fn kernel_cmdline(accel: Accel, probe: bool) -> String {
    let mut line = String::from("console=ttyS0 quiet loglevel=3 panic=-1 pci=off");
    if let Accel::Tcg { tsc_khz } = accel {
        // Under TCG the kernel finds no timer to calibrate the TSC against and would hang.
        line.push_str(&format!(
            " tsc_early_khz={tsc_khz} tsc=reliable no_timer_check"
        ));
    }
    if probe {
        line.push_str(" osb.probe=1");
    }
    line
}

fn machine_args(accel: Accel, guest: &GuestImage, memory_mb: u32, probe: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
    push(&["-M", "microvm,x-option-roms=off,rtc=on"]);
    match accel {
        Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
        Accel::Tcg { .. } => push(&["-accel", "tcg,tb-size=64", "-cpu", "max"]),
    }
    push(&[
        "-m",
        &format!("{memory_mb}M"),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "stdio",
        "-sandbox",
        SECCOMP,
    ]);
    args.push("-kernel".into());
    args.push(guest.kernel.clone().into());
    args.push("-initrd".into());
    args.push(guest.initramfs.clone().into());
    args.push("-append".into());
    args.push(kernel_cmdline(accel, probe).into());
    args
}

/// The arguments of a probe VM: boots the guest kernel to its first init line and powers off.
pub fn probe_args(accel: Accel, guest: &GuestImage) -> Vec<OsString> {
    machine_args(accel, guest, 128, true)
}

/// Everything one sandbox VM needs.
#[derive(Debug, Clone)]
pub struct VmPlan<'a> {
    /// Accelerator.
    pub accel: Accel,
    /// The guest image.
    pub guest: &'a GuestImage,
    /// `-name` (the worker's host-object name for the sandbox).
    pub name: &'a str,
    /// Per-sandbox base disk (read-only for the guest).
    pub base_disk: &'a Path,
    /// Writable disk.
    pub rw_disk: &'a Path,
    /// Unix socket QEMU listens on for the agent channel.
    pub agent_socket: &'a Path,
    /// Where QEMU writes its pid.
    pub pid_file: &'a Path,
    /// The tap inside the sandbox's namespace.
    pub tap: &'a str,
    /// The guest NIC's MAC address.
    pub mac: &'a str,
    /// vCPUs.
    pub cpu_count: u32,
    /// Guest memory.
    pub memory_mb: u32,
}

/// The QEMU arguments of a sandbox VM.
pub fn vm_args(plan: &VmPlan<'_>) -> Vec<OsString> {
    let mut args = machine_args(plan.accel, plan.guest, plan.memory_mb, false);
    let path = |path: &Path| path.display().to_string();
    let mut push = |text: String| args.push(OsString::from(text));
    push("-name".into());
    push(format!("{},process={}", plan.name, plan.name));
    push("-smp".into());
    push(plan.cpu_count.to_string());
    push("-pidfile".into());
    push(path(plan.pid_file));
    for (id, file, serial, read_only) in [
        (
            "system",
            plan.guest.system.as_path(),
            SYSTEM_DISK_SERIAL,
            true,
        ),
        ("base", plan.base_disk, BASE_DISK_SERIAL, true),
        ("rw", plan.rw_disk, RW_DISK_SERIAL, false),
    ] {
        push("-drive".into());
        push(format!(
            "id={id},file={},format=raw,if=none,read-only={},discard=unmap",
            path(file),
            if read_only { "on" } else { "off" }
        ));
        push("-device".into());
        push(format!("virtio-blk-device,drive={id},serial={serial}"));
    }
    push("-netdev".into());
    push(format!(
        "tap,id=net0,ifname={},script=no,downscript=no,vhost=off",
        plan.tap
    ));
    push("-device".into());
    push(format!("virtio-net-device,netdev=net0,mac={}", plan.mac));
    push("-device".into());
    push("virtio-serial-device".into());
    push("-chardev".into());
    push(format!(
        "socket,id=agent,path={},server=on,wait=off",
        path(plan.agent_socket)
    ));
    push("-device".into());
    push(format!(
        "virtserialport,chardev=agent,name={}",
        osb_guest_agent::protocol::PORT_NAME
    ));
    push("-device".into());
    push("virtio-rng-device".into());
    args
}

/// A locally administered unicast MAC derived from the slot (stable, unique per worker).
pub fn mac_for_slot(slot: u32) -> String {
    let [a, b, c, d] = slot.to_be_bytes();
    format!("52:54:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// The last bytes of a VM's serial console.
#[derive(Debug, Clone, Default)]
pub struct ConsoleTail(Arc<Mutex<VecDeque<u8>>>);

impl ConsoleTail {
    fn push(&self, bytes: &[u8]) {
        if let Ok(mut tail) = self.0.lock() {
            tail.extend(bytes);
            let excess = tail.len().saturating_sub(CONSOLE_TAIL_BYTES);
            tail.drain(..excess);
        }
    }

    /// The kept text (lossy UTF-8), trimmed.
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|tail| {
                let bytes: Vec<u8> = tail.iter().copied().collect();
                String::from_utf8_lossy(&bytes).trim().to_owned()
            })
            .unwrap_or_default()
    }
}

/// A running QEMU.
#[derive(Debug)]
pub struct QemuProcess {
    /// The QEMU child (killed on drop).
    pub child: Child,
    /// Its console.
    pub console: ConsoleTail,
}

/// The unprivileged identity a sandbox's QEMU runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// uid and gid.
    pub uid: u32,
    /// Supplementary groups (the `/dev/kvm` group under KVM, else none).
    pub groups: Vec<u32>,
}

/// `setpriv` arguments that drop to `run_as` for good: no supplementary groups but the given
/// ones, no capabilities (not even in the bounding set), no new privileges.
pub fn drop_privileges_args(run_as: &RunAs) -> Vec<String> {
    let mut args = vec![
        "setpriv".to_owned(),
        format!("--reuid={}", run_as.uid),
        format!("--regid={}", run_as.uid),
    ];
    if run_as.groups.is_empty() {
        args.push("--clear-groups".to_owned());
    } else {
        let groups: Vec<String> = run_as.groups.iter().map(u32::to_string).collect();
        args.push(format!("--groups={}", groups.join(",")));
    }
    args.extend(
        [
            "--no-new-privs",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ]
        .map(str::to_owned),
    );
    args
}

/// Starts QEMU with `args`, inside `netns` (None: the worker's namespace, for probes) and the
/// given cgroups, as `run_as` when given; its console (stdout and stderr) drains into a bounded
/// tail.
pub fn spawn(
    binary: &Path,
    args: &[OsString],
    netns: Option<&str>,
    cgroup_procs: &[PathBuf],
    run_as: Option<&RunAs>,
) -> Result<QemuProcess, RuntimeError> {
    let mut command = Command::new("/bin/sh");
    join_cgroups(&mut command, cgroup_procs);
    if let Some(netns) = netns {
        command
            .arg("nsenter")
            .arg(format!("--net=/run/netns/{netns}"))
            .arg("--");
    }
    if let Some(run_as) = run_as {
        command.args(drop_privileges_args(run_as));
    }
    command
        .arg(binary)
        .args(args)
        .env_clear()
        .env("PATH", HOST_TOOL_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| RuntimeError::Setup {
        step: "starting QEMU",
        detail: format!("cannot run /bin/sh ({e})"),
    })?;
    let console = ConsoleTail::default();
    for pipe in [
        child
            .stdout
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        let tail = console.clone();
        tokio::spawn(async move {
            let mut pipe = pipe;
            let mut buffer = vec![0u8; 4096];
            while let Ok(read) = pipe.read(&mut buffer).await {
                if read == 0 {
                    break;
                }
                tail.push(&buffer[..read]);
            }
        });
    }
    Ok(QemuProcess { child, console })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest() -> GuestImage {
        GuestImage {
            kernel: "/g/vmlinuz".into(),
            initramfs: "/g/initramfs.cpio.gz".into(),
            system: "/g/system.img".into(),
            kernel_release: "6.1".into(),
        }
    }

    fn text(args: &[OsString]) -> String {
        args.iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn a_sandbox_vm_has_only_virtio_mmio_devices_the_host_controls() {
        let guest = guest();
        let args = vm_args(&VmPlan {
            accel: Accel::Tcg { tsc_khz: 2_600_000 },
            guest: &guest,
            name: "osbm-s3",
            base_disk: Path::new("/d/base.img"),
            rw_disk: Path::new("/d/disk/rw.img"),
            agent_socket: Path::new("/d/agent.sock"),
            pid_file: Path::new("/d/qemu.pid"),
            tap: "tap0",
            mac: "52:54:00:00:00:03",
            cpu_count: 2,
            memory_mb: 256,
        });
        let line = text(&args);
        assert!(line.starts_with("-M microvm,"), "{line}");
        assert!(line.contains("-nodefaults"));
        assert!(line.contains(&format!("-sandbox {SECCOMP}")));
        assert!(line.contains("id=system,file=/g/system.img,format=raw,if=none,read-only=on"));
        assert!(line.contains("id=base,file=/d/base.img,format=raw,if=none,read-only=on"));
        assert!(line.contains("id=rw,file=/d/disk/rw.img,format=raw,if=none,read-only=off"));
        assert!(line.contains("tap,id=net0,ifname=tap0,script=no,downscript=no,vhost=off"));
        assert!(line.contains("socket,id=agent,path=/d/agent.sock,server=on,wait=off"));
        assert!(line.contains("tsc_early_khz=2600000"));
        assert!(!line.contains("osb.probe"));
        // No PCI, no user-mode networking, no host file sharing.
        for absent in ["-pci", "user,", "9p", "virtfs", "vhost=on"] {
            assert!(!line.contains(absent), "{absent} in {line}");
        }
    }

    #[test]
    fn kvm_gets_the_host_cpu_and_no_tsc_hint() {
        let line = text(&probe_args(Accel::Kvm, &guest()));
        assert!(line.contains("-accel kvm -cpu host"));
        assert!(!line.contains("tsc_early_khz"));
        assert!(line.contains("osb.probe=1"));
    }

    #[test]
    fn qemu_drops_to_its_own_uid_without_groups_or_capabilities() {
        let args = drop_privileges_args(&RunAs {
            uid: 1_879_048_195,
            groups: Vec::new(),
        })
        .join(" ");
        assert_eq!(
            args,
            "setpriv --reuid=1879048195 --regid=1879048195 --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all --"
        );
        let with_kvm = drop_privileges_args(&RunAs {
            uid: 7,
            groups: vec![113],
        })
        .join(" ");
        assert!(with_kvm.contains("--groups=113"), "{with_kvm}");
    }

    #[test]
    fn macs_are_locally_administered_and_unique_per_slot() {
        assert_eq!(mac_for_slot(3), "52:54:00:00:00:03");
        assert_ne!(mac_for_slot(256), mac_for_slot(1));
    }

    #[test]
    fn the_console_tail_is_bounded() {
        let tail = ConsoleTail::default();
        for _ in 0..100 {
            tail.push(&[b'x'; 1024]);
        }
        tail.push(b"last line");
        let text = tail.text();
        assert!(text.len() <= CONSOLE_TAIL_BYTES);
        assert!(text.ends_with("last line"));
    }
}
