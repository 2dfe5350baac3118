//! Starts a proxy (loopback upstreams allowed, every test host overridden to 127.0.0.1, the
//! origin's CA trusted) next to a test origin, records events, and captures tracing output so the
//! canary checks can search it.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use osb_proto::{HostPattern, SandboxId, SealedToken};
use osb_proxy::{
    AddressPolicy, EventSink, FixedOriginalDestination, OversizedBody, ProxyConfig, ProxyEvent,
    SealingProxy, SecretSpec, SecretValue, SessionSpec,
};

use super::origin::{start_origin, Origin};

pub const HOSTS: [&str; 6] = [
    "api.example.test",
    "a.example.test",
    "b.a.example.test",
    "other.example.test",
    "example.test",
    "evil.test",
];

/// Records every event.
#[derive(Debug, Default)]
pub struct RecordingSink(pub Mutex<Vec<ProxyEvent>>);

impl EventSink for RecordingSink {
    fn emit(&self, event: ProxyEvent) {
        self.0.lock().unwrap().push(event);
    }
}

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
}

/// Everything logged so far in this test process.
pub fn captured_logs() -> Vec<u8> {
    logs().0.lock().unwrap().clone()
}

pub fn token(byte: u8) -> SealedToken {
    SealedToken::from_random_bytes([byte; 16])
}

pub fn sandbox_ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

pub fn patterns(list: &[String]) -> Vec<HostPattern> {
    list.iter()
        .map(|p| HostPattern::parse(p).unwrap())
        .collect()
}

pub struct Options {
    pub allow_loopback: bool,
    pub max_buffered_body: usize,
    pub oversized_body: OversizedBody,
    /// The transparent listener's injected original destination is the origin's plain-HTTP port.
    pub transparent_to_plain: bool,
    /// Data-plane lanes (default: the proxy's default, one per CPU).
    pub lanes: Option<usize>,
    /// Serve simple HTTP/1.1 requests on the express lane (the proxy's default: on).
    pub express: bool,
    /// The proxy's limits (default: `Limits::default()`).
    pub limits: Option<osb_proxy::Limits>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allow_loopback: true,
            max_buffered_body: 1024 * 1024,
            oversized_body: OversizedBody::Refuse,
            transparent_to_plain: false,
            lanes: None,
            express: true,
            limits: None,
        }
    }
}

pub struct Harness {
    pub proxy: SealingProxy,
    pub origin: Origin,
    pub events: Arc<RecordingSink>,
    pub ca_file: tempfile::NamedTempFile,
    _data_dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let _ = logs();
        let origin = start_origin().await;
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = ProxyConfig::new(data_dir.path());
        config.explicit_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.transparent_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.addresses = AddressPolicy {
            allow_loopback: options.allow_loopback,
            allow_private: false,
        };
        config.max_buffered_body = options.max_buffered_body;
        config.oversized_body = options.oversized_body;
        if let Some(lanes) = options.lanes {
            config.lanes = lanes;
        }
        config.express = options.express;
        if let Some(limits) = options.limits {
            config.limits = limits;
        }
        config.use_system_roots = false;
        config.extra_upstream_ca_pems = vec![origin.ca_pem.clone().into_bytes()];
        for host in HOSTS {
            config
                .resolve_overrides
                .insert(host.to_owned(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        let events = Arc::new(RecordingSink::default());
        let original_port = if options.transparent_to_plain {
            origin.plain_addr
        } else {
            origin.tls_addr
        };
        let original = Arc::new(FixedOriginalDestination(original_port));
        let proxy = SealingProxy::start_with(config, events.clone(), original)
            .await
            .unwrap();
        let mut ca_file = tempfile::NamedTempFile::new().unwrap();
        ca_file.write_all(proxy.ca_cert_pem().as_bytes()).unwrap();
        Self {
            proxy,
            origin,
            events,
            ca_file,
            _data_dir: data_dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.origin.tls_addr.port()
    }

    pub fn plain_port(&self) -> u16 {
        self.origin.plain_addr.port()
    }

    /// `host:<origin port>`.
    pub fn at(&self, host: &str) -> String {
        format!("{host}:{}", self.port())
    }

    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port())
    }

    /// Registers a sandbox at 127.0.0.`last` with the given allowlist and secrets
    /// (name, token byte, value, allowed hosts).
    pub fn sandbox(
        &self,
        last: u8,
        allowlist: &[String],
        secrets: &[(&str, u8, &str, &[String])],
    ) -> SandboxId {
        let sandbox_id = SandboxId::new();
        let secrets = secrets
            .iter()
            .map(|(name, byte, value, hosts)| SecretSpec {
                name: name.to_string(),
                token: token(*byte),
                value: SecretValue::from(*value),
                allowed_hosts: patterns(hosts),
                version: 0,
            })
            .collect();
        self.proxy
            .register_session(SessionSpec {
                sandbox_id,
                source_ip: sandbox_ip(last),
                egress_allowlist: patterns(allowlist),
                secrets,
            })
            .unwrap();
        sandbox_id
    }

    pub fn events(&self) -> Vec<ProxyEvent> {
        self.events.0.lock().unwrap().clone()
    }
}

impl Harness {
    /// curl through the explicit proxy from 127.0.0.`last` (run off the async workers).
    pub async fn curl(&self, last: u8, args: &[&str]) -> super::client::Output {
        let proxy = self.proxy.explicit_addr();
        let ca = self.ca_file.path().to_owned();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            super::client::curl(proxy, sandbox_ip(last), &ca, &args)
        })
        .await
        .unwrap()
    }

    /// A Rust client tunnelled through CONNECT from 127.0.0.`last`.
    pub async fn client(&self, last: u8, host: &str, http2: bool) -> super::client::Client {
        super::client::Client::through(
            sandbox_ip(last),
            self.proxy.explicit_addr(),
            &self.at(host),
            self.proxy.ca_cert_pem(),
            http2,
        )
        .await
    }
}
