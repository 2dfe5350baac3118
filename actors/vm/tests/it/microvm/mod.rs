//! The microVM runtime keeps every netns promise, checked on as few boots as TCG allows:
//! `promises` runs one VM through a sequence of named checks (exec semantics, sealed env, the
//! proxy CA in the guest trust store, the proxy paths seen from the host with the guest's own
//! address, the bypass suite, checkpoint/restore, fork with fresh tokens, golden snapshot through
//! the worker's dispatch), and `crash` kills QEMU and then the worker and proves the reaper leaves
//! nothing. The guest is the one `scripts/build-guest.sh` builds (scripts/test.sh builds it);
//! pools are in 100.82.0.0/16 and prefixes start with `osbm`.

/// Runs one named check and says which one failed.
macro_rules! check {
    ($name:literal, $body:expr) => {{
        let started = Instant::now();
        $body;
        eprintln!("microvm check {:<40} ok ({:?})", $name, started.elapsed());
    }};
}

mod crash;
mod promises;

use osb_vm::microvm::{MicroVmConfig, MicroVmRuntime};
use osb_vm::{
    ExecRequest, Ipv4Pool, ProxyEndpoints, RecordingSink, Runtime, RuntimeKind, SandboxSpec,
};

use crate::support::ReapGuard;

pub struct VmWorker {
    pub runtime: MicroVmRuntime,
    pub sink: std::sync::Arc<RecordingSink>,
    pub prefix: String,
    pub data_dir: std::path::PathBuf,
    pub pool: Ipv4Pool,
    _guard: ReapGuard,
    _temp: tempfile::TempDir,
}

impl VmWorker {
    pub async fn start(index: u8) -> Self {
        let prefix = format!("osbm{index:02}");
        let temp = tempfile::Builder::new()
            .prefix(&format!("osb-microvm-it-{index:02}-"))
            .tempdir()
            .expect("a temp dir");
        // QEMU runs as an unprivileged uid: it must pass through to its own directory.
        std::fs::set_permissions(
            temp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )
        .expect("chmod the temp dir");
        let data_dir = temp.path().join("data");
        let guard = ReapGuard::new(&prefix, &data_dir);
        let pool: Ipv4Pool = format!("100.82.{index}.0/24").parse().expect("pool");
        let sink = std::sync::Arc::new(RecordingSink::default());
        let runtime = Self::runtime(&prefix, &data_dir, pool, &sink).await;
        Self {
            runtime,
            sink,
            prefix,
            data_dir,
            pool,
            _guard: guard,
            _temp: temp,
        }
    }

    pub async fn runtime(
        prefix: &str,
        data_dir: &std::path::Path,
        pool: Ipv4Pool,
        sink: &std::sync::Arc<RecordingSink>,
    ) -> MicroVmRuntime {
        let mut config = MicroVmConfig::new(prefix, data_dir);
        config.host.address_pool = pool;
        config.disk_mb = 1024;
        MicroVmRuntime::new(config, sink.clone())
            .await
            .expect("the microVM runtime starts (root, qemu-system-x86, guest built by scripts/build-guest.sh)")
    }

    pub async fn sh(&self, id: osb_proto::SandboxId, script: &str) -> osb_vm::ExecOutput {
        self.runtime
            .exec(id, ExecRequest::shell(script))
            .await
            .expect("exec")
    }
}

pub fn vm_spec(proxy: ProxyEndpoints, ca_pem: &str) -> SandboxSpec {
    let mut spec = SandboxSpec::new(osb_proto::SandboxId::new(), proxy, ca_pem);
    spec.memory_mb = 256;
    spec.runtime = RuntimeKind::Microvm;
    spec
}

pub fn host_kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Pids of QEMU processes named with this worker's prefix.
pub fn qemu_processes(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                    let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                    (text.contains("qemu-system") && text.contains(&format!("{prefix}-s")))
                        .then(|| entry.file_name().to_string_lossy().into_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}
