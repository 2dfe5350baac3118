//! Test harness: a `TestWorker` per test (own prefix, pool, data dir, recording event sink), a
//! guard that reaps everything on drop, a throwaway CA minted with the openssl CLI, and stand-in
//! listeners for the proxy.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use osb_proto::{SandboxId, SealedToken};
use osb_vm::netns::reap_worker;
use osb_vm::{
    ExecOutput, ExecRequest, Ipv4Pool, NetnsConfig, NetnsRuntime, ProxyEndpoints, RecordingSink,
    Runtime, SandboxSpec, SealedEnv,
};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Sandbox disk size of test workers (ADR 0207): small, so canary searches that read every
/// file of the data dir (the disk images included) stay quick.
pub const TEST_DISK_MB: u32 = 128;

/// One runtime with its own prefix, pool and data dir.
pub struct TestWorker {
    pub index: u8,
    pub runtime: NetnsRuntime,
    pub sink: Arc<RecordingSink>,
    pub prefix: String,
    pub data_dir: PathBuf,
    pub disk_mb: u32,
    _guard: ReapGuard,
    _temp: tempfile::TempDir,
}

/// Reaps a worker's host objects when dropped (also on panic).
pub struct ReapGuard {
    prefix: String,
    data_dir: PathBuf,
}

impl ReapGuard {
    pub fn new(prefix: &str, data_dir: &Path) -> Self {
        Self {
            prefix: prefix.to_owned(),
            data_dir: data_dir.to_path_buf(),
        }
    }
}

impl Drop for ReapGuard {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        let data_dir = self.data_dir.clone();
        // Drop may run inside a tokio runtime: reap on a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime for the reaper");
            runtime.block_on(async { reap_worker(&prefix, &data_dir).await })
        })
        .join();
    }
}

impl TestWorker {
    /// A worker whose prefix and pool derive from `index` (unique per test function).
    pub async fn start(index: u8) -> Self {
        Self::start_with(index, &std::env::temp_dir(), TEST_DISK_MB).await
    }

    /// A worker keeping a warm pool of `pool_size` sandboxes (ADR 0208), started with the
    /// pool full; every `create` of a spec that fits must then be a claim.
    pub async fn start_pooled(index: u8, pool_size: usize) -> Self {
        let worker =
            Self::start_configured(index, &std::env::temp_dir(), TEST_DISK_MB, pool_size).await;
        assert!(
            worker.wait_for_pool().await,
            "the warm pool did not fill within 60 s"
        );
        worker
    }

    /// Waits (up to 60 s) until the warm pool is full again.
    pub async fn wait_for_pool(&self) -> bool {
        self.runtime
            .wait_for_warm_pool(std::time::Duration::from_secs(60))
            .await
    }

    /// The address the resolver answers allowed names with.
    pub fn dns_answer(&self) -> Ipv4Addr {
        dns_answer(self.index)
    }

    /// A worker whose data dir lies under `data_root` and whose sandbox disks hold `disk_mb` MiB.
    pub async fn start_with(index: u8, data_root: &Path, disk_mb: u32) -> Self {
        Self::start_configured(index, data_root, disk_mb, 0).await
    }

    async fn start_configured(index: u8, data_root: &Path, disk_mb: u32, pool_size: usize) -> Self {
        let prefix = format!("osbt{index:02}");
        let temp = tempfile::Builder::new()
            .prefix(&format!("osb-vm-it-{index:02}-"))
            .tempdir_in(data_root)
            .expect("a temp dir");
        let data_dir = temp.path().join("data");
        let guard = ReapGuard {
            prefix: prefix.clone(),
            data_dir: data_dir.clone(),
        };
        let mut config = NetnsConfig::new(&prefix, &data_dir);
        config.address_pool = pool(index);
        config.disk_mb = disk_mb;
        config.warm_pool = pool_size;
        let sink = Arc::new(RecordingSink::default());
        let runtime = NetnsRuntime::new(config, sink.clone())
            .await
            .expect("the netns runtime starts (tests run as root with nftables installed)");
        Self {
            index,
            runtime,
            sink,
            prefix,
            data_dir,
            disk_mb,
            _guard: guard,
            _temp: temp,
        }
    }

    /// Starts a second runtime with the same prefix, pool and data dir, as a restarted worker
    /// would (its startup reaps what the previous one left).
    pub async fn restart_runtime(&mut self, index: u8) {
        let mut config = NetnsConfig::new(&self.prefix, &self.data_dir);
        config.address_pool = pool(index);
        config.disk_mb = self.disk_mb;
        self.runtime = NetnsRuntime::new(config, self.sink.clone())
            .await
            .expect("the restarted runtime starts");
    }

    /// Creates a sandbox from `spec` and returns its id. On a pooled worker a spec of the
    /// common shape must be served from the pool (so tests run on claimed sandboxes for real).
    pub async fn create(&self, spec: SandboxSpec) -> SandboxId {
        let id = spec.id;
        let pooled = self.runtime.warm_pool_ready() > 0
            && spec.template == osb_vm::HOST_SYSTEM_TEMPLATE
            && spec.boot_from == osb_vm::BootLayer::Fresh
            && spec.disk_mb.is_none();
        let claims = self.runtime.warm_pool_claims();
        self.runtime.create(spec).await.expect("sandbox create");
        if pooled {
            assert_eq!(
                self.runtime.warm_pool_claims(),
                claims + 1,
                "the create was not served from the warm pool"
            );
        }
        id
    }

    /// Runs a shell script in a sandbox.
    pub async fn sh(&self, id: SandboxId, script: &str) -> ExecOutput {
        self.runtime
            .exec(id, ExecRequest::shell(script))
            .await
            .expect("exec")
    }

    /// Runs a python3 script with arguments (no shell quoting involved).
    pub async fn py(&self, id: SandboxId, script: &str, args: &[String]) -> ExecOutput {
        let mut cmd = vec!["python3".to_owned(), "-c".to_owned(), script.to_owned()];
        cmd.extend(args.iter().cloned());
        self.runtime
            .exec(id, ExecRequest::new(cmd))
            .await
            .expect("exec")
    }

    /// Runs a shell script with extra env.
    pub async fn sh_env(&self, id: SandboxId, script: &str, env: &[(&str, &str)]) -> ExecOutput {
        let mut request = ExecRequest::shell(script);
        request.env = env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect::<BTreeMap<_, _>>();
        self.runtime.exec(id, request).await.expect("exec")
    }
}

/// The /24 pool of test `index`.
pub fn pool(index: u8) -> Ipv4Pool {
    format!("100.100.{index}.0/24")
        .parse()
        .expect("a valid pool")
}

/// The address the resolver answers allowed names with, for test `index`.
pub fn dns_answer(index: u8) -> Ipv4Addr {
    pool(index).dns_answer()
}

/// A fresh random token.
pub fn token() -> SealedToken {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    SealedToken::from_random_bytes(bytes)
}

/// A spec with the given proxy ports and CA.
pub fn spec(proxy: ProxyEndpoints, ca_pem: &str) -> SandboxSpec {
    let mut spec = SandboxSpec::new(SandboxId::new(), proxy, ca_pem);
    spec.memory_mb = 256;
    spec
}

/// A spec with one sealed secret.
pub fn spec_with_secret(
    proxy: ProxyEndpoints,
    ca_pem: &str,
    name: &str,
    token: SealedToken,
) -> SandboxSpec {
    let mut spec = spec(proxy, ca_pem);
    spec.sealed_envs.push(SealedEnv {
        name: name.to_owned(),
        token,
    });
    spec
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// Ports nobody listens on, for tests that never reach the proxy.
pub fn unused_proxy() -> ProxyEndpoints {
    ProxyEndpoints {
        transparent_port: free_port(),
        explicit_port: free_port(),
    }
}

/// A throwaway CA and a leaf for `host`, minted with the openssl CLI.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
}

impl TestPki {
    pub fn new(host: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = |name: &str| dir.path().join(name).display().to_string();
        let openssl = |args: &[&str]| {
            let status = std::process::Command::new("openssl")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl runs");
            assert!(status.success(), "openssl {args:?} failed");
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &path("ca.key"),
            "-out",
            &path("ca.pem"),
            "-days",
            "2",
            "-subj",
            "/CN=osb test proxy CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &path("leaf.key"),
            "-out",
            &path("leaf.csr"),
            "-subj",
            &format!("/CN={host}"),
        ]);
        std::fs::write(
            dir.path().join("ext.cnf"),
            format!("subjectAltName=DNS:{host}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
        )
        .expect("writing ext.cnf");
        openssl(&[
            "x509",
            "-req",
            "-in",
            &path("leaf.csr"),
            "-CA",
            &path("ca.pem"),
            "-CAkey",
            &path("ca.key"),
            "-CAcreateserial",
            "-out",
            &path("leaf.pem"),
            "-days",
            "2",
            "-extfile",
            &path("ext.cnf"),
        ]);
        let ca_pem = std::fs::read_to_string(dir.path().join("ca.pem")).expect("reading ca.pem");
        Self { dir, ca_pem }
    }

    pub fn leaf_cert(&self) -> PathBuf {
        self.dir.path().join("leaf.pem")
    }

    pub fn leaf_key(&self) -> PathBuf {
        self.dir.path().join("leaf.key")
    }
}

/// `openssl s_server -www` on `port`, killed on drop.
pub struct TlsStandIn {
    child: tokio::process::Child,
}

impl TlsStandIn {
    pub async fn start(port: u16, cert: &Path, key: &Path) -> Self {
        let mut child = tokio::process::Command::new("openssl")
            .args(["s_server", "-www", "-accept"])
            .arg(port.to_string())
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("openssl s_server starts");
        // s_server prints ACCEPT on stdout once it listens.
        let stdout = child.stdout.take().expect("stdout");
        let mut out = BufReader::new(stdout).lines();
        let ready = async {
            while let Ok(Some(line)) = out.next_line().await {
                if line.contains("ACCEPT") {
                    return true;
                }
            }
            false
        };
        let listening = tokio::time::timeout(std::time::Duration::from_secs(20), ready).await;
        assert_eq!(
            listening,
            Ok(true),
            "openssl s_server did not start listening"
        );
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
        Self { child }
    }
}

impl Drop for TlsStandIn {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// What a transparent stand-in saw for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenConnection {
    pub peer: SocketAddr,
    pub original_destination: SocketAddr,
}

/// Accepts connections on 0.0.0.0:`port`, records peer and SO_ORIGINAL_DST, answers "hello".
pub async fn transparent_stand_in(
    listener: tokio::net::TcpListener,
) -> tokio::sync::mpsc::Receiver<SeenConnection> {
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((mut stream, peer)) = listener.accept().await {
            let original =
                nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::OriginalDst)
                    .map(|raw| {
                        SocketAddr::from((
                            Ipv4Addr::from(u32::from_be(raw.sin_addr.s_addr)),
                            u16::from_be(raw.sin_port),
                        ))
                    })
                    .expect("SO_ORIGINAL_DST on a redirected connection");
            let _ =
                tokio::io::AsyncWriteExt::write_all(&mut stream, b"hello from stand-in\n").await;
            let _ = sender
                .send(SeenConnection {
                    peer,
                    original_destination: original,
                })
                .await;
        }
    });
    receiver
}

/// A minimal explicit-proxy stand-in: answers `CONNECT host:port` with 200 and splices the
/// tunnel to `127.0.0.1:target_port`, reporting each CONNECT target and the client address.
pub async fn connect_stand_in(
    listener: tokio::net::TcpListener,
    target_port: u16,
) -> tokio::sync::mpsc::Receiver<(SocketAddr, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((mut client, peer)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let target = text
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let _ = sender.send((peer, target)).await;
                let Ok(mut upstream) =
                    tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                else {
                    return;
                };
                if client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    receiver
}
