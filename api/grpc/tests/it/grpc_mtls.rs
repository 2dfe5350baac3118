//! The worker gRPC link over real sockets on 127.0.0.1: mutual TLS 1.3 between a control-plane
//! certificate and a worker certificate works and tells each side who the other is; a client
//! without a certificate, with one from another CA, offering only TLS 1.2, or holding a worker
//! certificate is refused before any call reaches the service; partial TLS configuration and
//! plaintext off loopback refuse to start; and no value-carrying message prints its value.

// Helpers outside #[test] fns unwrap too; clippy's test exemption does not reach them.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use hyper_util::rt::TokioIo;
use osb_grpc::pki::{self, DevPki};
use osb_grpc::proto::worker_client::WorkerClient;
use osb_grpc::proto::worker_server::Worker;
use osb_grpc::proto::{self as wire, ExecRequest};
use osb_grpc::{
    connect_worker, grpc_peer, serve_worker, GrpcConfigError, GrpcError, GrpcSecurity,
    GrpcSecurityConfig, PeerIdentity, PeerRole, TlsPaths, INSECURE_LOOPBACK_ENV, TLS_CA_ENV,
    TLS_CERT_ENV, TLS_KEY_ENV,
};
use osb_testkit::Canary;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tonic::transport::Endpoint;
use tonic::{Request, Response, Status};

// ---------------------------------------------------------------------------------------------
// A test-only worker service: Exec echoes its command; everything it sees is recorded.

/// What the test worker observed.
#[derive(Debug, Default)]
struct Observed {
    callers: Vec<Option<PeerIdentity>>,
    registered_values: Vec<Vec<u8>>,
}

/// Test-only `Worker`: answers `Exec` with its own input, records callers. Not the real worker.
#[derive(Debug, Clone, Default)]
struct EchoTestWorker {
    observed: Arc<Mutex<Observed>>,
}

impl EchoTestWorker {
    fn record_caller<T>(&self, request: &Request<T>) {
        let caller = grpc_peer(request).and_then(|peer| peer.identity().cloned());
        self.observed.lock().unwrap().callers.push(caller);
    }

    fn callers(&self) -> Vec<Option<PeerIdentity>> {
        self.observed.lock().unwrap().callers.clone()
    }
}

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("test worker"))
}

#[tonic::async_trait]
impl Worker for EchoTestWorker {
    async fn create_sandbox(
        &self,
        _: Request<wire::CreateSandboxRequest>,
    ) -> Result<Response<wire::CreateSandboxResponse>, Status> {
        unimplemented()
    }
    async fn destroy_sandbox(
        &self,
        _: Request<wire::DestroySandboxRequest>,
    ) -> Result<Response<wire::DestroySandboxResponse>, Status> {
        unimplemented()
    }
    async fn exec(
        &self,
        request: Request<ExecRequest>,
    ) -> Result<Response<wire::ExecResponse>, Status> {
        self.record_caller(&request);
        let echoed = request.into_inner().cmd.join(" ");
        Ok(Response::new(wire::ExecResponse {
            exit_code: 0,
            stdout: echoed.into_bytes(),
            ..Default::default()
        }))
    }

    type ExecStreamStream =
        futures_util::stream::Iter<std::vec::IntoIter<Result<wire::ExecChunk, Status>>>;

    async fn exec_stream(
        &self,
        request: Request<ExecRequest>,
    ) -> Result<Response<Self::ExecStreamStream>, Status> {
        self.record_caller(&request);
        let mut chunks: Vec<Result<wire::ExecChunk, Status>> = request
            .into_inner()
            .cmd
            .into_iter()
            .map(|word| {
                Ok(wire::ExecChunk {
                    chunk: Some(wire::exec_chunk::Chunk::Stdout(word.into_bytes())),
                })
            })
            .collect();
        chunks.push(Ok(wire::ExecChunk {
            chunk: Some(wire::exec_chunk::Chunk::Exit(wire::ExecExit {
                exit_code: 7,
                timed_out: false,
            })),
        }));
        Ok(Response::new(futures_util::stream::iter(chunks)))
    }
    async fn checkpoint(
        &self,
        _: Request<wire::CheckpointRequest>,
    ) -> Result<Response<wire::CheckpointResponse>, Status> {
        unimplemented()
    }
    async fn delete_checkpoint(
        &self,
        _: Request<wire::DeleteCheckpointRequest>,
    ) -> Result<Response<wire::DeleteCheckpointResponse>, Status> {
        unimplemented()
    }
    async fn update_egress_allowlist(
        &self,
        _: Request<wire::UpdateEgressAllowlistRequest>,
    ) -> Result<Response<wire::UpdateEgressAllowlistResponse>, Status> {
        unimplemented()
    }
    async fn list_sandboxes(
        &self,
        _: Request<wire::ListSandboxesRequest>,
    ) -> Result<Response<wire::ListSandboxesResponse>, Status> {
        unimplemented()
    }
    async fn restore(
        &self,
        _: Request<wire::RestoreRequest>,
    ) -> Result<Response<wire::RestoreResponse>, Status> {
        unimplemented()
    }
    async fn fork(
        &self,
        _: Request<wire::ForkRequest>,
    ) -> Result<Response<wire::ForkResponse>, Status> {
        unimplemented()
    }
    async fn register_session(
        &self,
        request: Request<wire::RegisterSessionRequest>,
    ) -> Result<Response<wire::RegisterSessionResponse>, Status> {
        self.record_caller(&request);
        let request = request.into_inner();
        let mut observed = self.observed.lock().unwrap();
        for secret in &request.secrets {
            observed.registered_values.push(secret.value.clone());
        }
        Ok(Response::new(wire::RegisterSessionResponse {
            secrets: request.secrets.len() as u32,
        }))
    }
    async fn update_secret_value(
        &self,
        _: Request<wire::UpdateSecretValueRequest>,
    ) -> Result<Response<wire::UpdateSecretValueResponse>, Status> {
        unimplemented()
    }
    async fn remove_secret(
        &self,
        _: Request<wire::RemoveSecretRequest>,
    ) -> Result<Response<wire::RemoveSecretResponse>, Status> {
        unimplemented()
    }
    async fn unregister_session(
        &self,
        _: Request<wire::UnregisterSessionRequest>,
    ) -> Result<Response<wire::UnregisterSessionResponse>, Status> {
        unimplemented()
    }
    async fn stage_values(
        &self,
        _: Request<wire::StageValuesRequest>,
    ) -> Result<Response<wire::StageValuesResponse>, Status> {
        unimplemented()
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

struct Fixture {
    _dir: tempfile::TempDir,
    dev: DevPki,
    other_ca_dir: std::path::PathBuf,
    worker: EchoTestWorker,
    server: osb_grpc::WorkerServerHandle,
}

impl Fixture {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let dev = pki::generate_dev_pki(&dir.path().join("pki")).unwrap();
        let other_ca_dir = dir.path().join("other-ca");
        pki::init(&other_ca_dir, "main", false).unwrap();
        let worker = EchoTestWorker::default();
        let security = load(dev.worker_tls());
        let server = serve_worker(loopback(), &security, worker.clone())
            .await
            .unwrap();
        Self {
            _dir: dir,
            dev,
            other_ca_dir,
            worker,
            server,
        }
    }

    fn target(&self) -> String {
        self.server.local_addr().to_string()
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn load(paths: TlsPaths) -> GrpcSecurity {
    GrpcSecurity::load(&GrpcSecurityConfig::MutualTls(paths)).unwrap()
}

fn echo_request() -> ExecRequest {
    ExecRequest {
        sandbox_id: "sbx_test".into(),
        cmd: vec!["echo".into(), "hello".into()],
        ..Default::default()
    }
}

/// A hand-built rustls client (the library's own client refuses to build the bad ones).
fn raw_client_config(
    ca: &Path,
    client_cert: Option<(&Path, &Path)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match client_cert {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            builder
                .with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key).unwrap())
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    config
}

/// Calls Exec through tonic over a hand-built TLS client; the error text on refusal.
async fn exec_with_raw_client(
    target: &str,
    config: rustls::ClientConfig,
) -> Result<String, String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let address = target.to_owned();
    let dial = tower_connector(move || {
        let connector = connector.clone();
        let address = address.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(&address).await?;
            let tls = connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await?;
            Ok(TokioIo::new(tls))
        }
    });
    let channel = Endpoint::from_shared(format!("http://{target}"))
        .unwrap()
        .connect_with_connector(dial)
        .await
        .map_err(|error| format!("connect: {error:?}"))?;
    let response = WorkerClient::new(channel)
        .exec(echo_request())
        .await
        .map_err(|status| format!("call: {status:?}"))?;
    Ok(String::from_utf8(response.into_inner().stdout).unwrap())
}

/// A `Service<Uri>` from a closure, for `connect_with_connector`.
fn tower_connector<F, Fut, IO>(dial: F) -> ClosureConnector<F>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<IO>>,
{
    ClosureConnector(dial)
}

#[derive(Clone)]
struct ClosureConnector<F>(F);

impl<F, Fut, IO> tonic::codegen::Service<tonic::codegen::http::Uri> for ClosureConnector<F>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<IO>> + Send + 'static,
{
    type Response = IO;
    type Error = std::io::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<IO>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tonic::codegen::http::Uri) -> Self::Future {
        Box::pin((self.0)())
    }
}

// ---------------------------------------------------------------------------------------------
// Happy paths

#[tokio::test]
async fn mutual_tls_call_sees_both_identities() {
    let fixture = Fixture::start().await;
    let control = load(fixture.dev.control_tls());
    let connection = connect_worker(&fixture.target(), &control, Some("local"))
        .await
        .unwrap();
    assert_eq!(
        connection.worker,
        Some(PeerIdentity::new(PeerRole::Worker, "local").unwrap()),
        "the control plane knows which worker answered"
    );
    let response = connection
        .client
        .clone()
        .exec(echo_request())
        .await
        .unwrap();
    assert_eq!(response.into_inner().stdout, b"echo hello");
    assert_eq!(
        fixture.worker.callers(),
        vec![Some(PeerIdentity::new(PeerRole::Control, "local").unwrap())],
        "the worker knows which control plane called"
    );

    // Server streaming over the same connection: every chunk, then the exit code last.
    let mut stream = connection
        .client
        .clone()
        .exec_stream(echo_request())
        .await
        .unwrap()
        .into_inner();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        chunks.push(chunk.chunk.unwrap());
    }
    assert_eq!(
        chunks,
        vec![
            wire::exec_chunk::Chunk::Stdout(b"echo".to_vec()),
            wire::exec_chunk::Chunk::Stdout(b"hello".to_vec()),
            wire::exec_chunk::Chunk::Exit(wire::ExecExit {
                exit_code: 7,
                timed_out: false
            }),
        ]
    );
    fixture.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn secret_values_cross_the_link_intact() {
    let fixture = Fixture::start().await;
    let control = load(fixture.dev.control_tls());
    let connection = connect_worker(&fixture.target(), &control, None)
        .await
        .unwrap();
    let canary = Canary::new("grpc-wire");
    let response = connection
        .client
        .clone()
        .register_session(register_request(&canary))
        .await
        .unwrap();
    assert_eq!(response.into_inner().secrets, 1);
    assert_eq!(
        fixture.worker.observed.lock().unwrap().registered_values,
        vec![canary.value().as_bytes().to_vec()]
    );
}

#[tokio::test]
async fn plaintext_works_on_loopback_only_with_the_explicit_mode() {
    let worker = EchoTestWorker::default();
    let server = serve_worker(loopback(), &GrpcSecurity::InsecureLoopback, worker.clone())
        .await
        .unwrap();
    let connection = connect_worker(
        &server.local_addr().to_string(),
        &GrpcSecurity::InsecureLoopback,
        None,
    )
    .await
    .unwrap();
    assert_eq!(connection.worker, None);
    let response = connection
        .client
        .clone()
        .exec(echo_request())
        .await
        .unwrap();
    assert_eq!(response.into_inner().stdout, b"echo hello");
    assert_eq!(worker.callers(), vec![None]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_raw_test_client_succeeds_with_good_material() {
    // Guards the refusal tests below: the same hand-built client with a control certificate
    // and TLS 1.3 gets through, so their failures come from what they change.
    let fixture = Fixture::start().await;
    let config = raw_client_config(
        &fixture.dev.ca_cert,
        Some((&fixture.dev.control.cert, &fixture.dev.control.key)),
        &[&rustls::version::TLS13],
    );
    assert_eq!(
        exec_with_raw_client(&fixture.target(), config).await,
        Ok("echo hello".to_owned())
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals on the wire

/// The call fails, for the expected reason (the TLS alert), and never reaches the service.
async fn assert_refused(fixture: &Fixture, config: rustls::ClientConfig, what: &str, alert: &str) {
    let outcome = exec_with_raw_client(&fixture.target(), config).await;
    let error = outcome.expect_err(what);
    assert!(
        error.contains(alert),
        "{what}: expected alert {alert}, got {error}"
    );
    assert!(
        fixture.worker.callers().is_empty(),
        "{what}: no call may reach the service"
    );
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let fixture = Fixture::start().await;
    let config = raw_client_config(&fixture.dev.ca_cert, None, &[&rustls::version::TLS13]);
    assert_refused(
        &fixture,
        config,
        "a client without a certificate",
        "CertificateRequired",
    )
    .await;
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused() {
    let fixture = Fixture::start().await;
    let foreign = pki::cert_paths(
        &fixture.other_ca_dir,
        &PeerIdentity::new(PeerRole::Control, "main").unwrap(),
    );
    let config = raw_client_config(
        &fixture.dev.ca_cert,
        Some((&foreign.cert, &foreign.key)),
        &[&rustls::version::TLS13],
    );
    assert_refused(
        &fixture,
        config,
        "a certificate from another CA",
        "UnknownCA",
    )
    .await;
}

#[tokio::test]
async fn client_offering_only_tls12_is_refused() {
    let fixture = Fixture::start().await;
    let config = raw_client_config(
        &fixture.dev.ca_cert,
        Some((&fixture.dev.control.cert, &fixture.dev.control.key)),
        &[&rustls::version::TLS12],
    );
    assert_refused(&fixture, config, "a TLS 1.2-only client", "ProtocolVersion").await;
}

#[tokio::test]
async fn worker_certificate_calling_a_worker_is_refused() {
    let fixture = Fixture::start().await;
    let config = raw_client_config(
        &fixture.dev.ca_cert,
        Some((&fixture.dev.worker.cert, &fixture.dev.worker.key)),
        &[&rustls::version::TLS13],
    );
    assert_refused(
        &fixture,
        config,
        "a worker certificate as a client",
        "CertificateUnknown",
    )
    .await;

    // The library refuses to even dial with a worker certificate.
    let as_worker = load(fixture.dev.worker_tls());
    let error = connect_worker(&fixture.target(), &as_worker, None)
        .await
        .unwrap_err();
    assert!(matches!(error, GrpcError::WrongOwnRole { .. }), "{error}");
    assert!(fixture.worker.callers().is_empty());
}

#[tokio::test]
async fn control_plane_refuses_a_server_of_the_wrong_name_or_role() {
    let fixture = Fixture::start().await;
    let control = load(fixture.dev.control_tls());
    let wrong_name = connect_worker(&fixture.target(), &control, Some("w-other")).await;
    assert!(wrong_name.is_err(), "a worker named differently is refused");

    // A control-plane certificate cannot serve the worker service.
    let error = serve_worker(loopback(), &control, EchoTestWorker::default())
        .await
        .unwrap_err();
    assert!(matches!(error, GrpcError::WrongOwnRole { .. }), "{error}");
    assert!(error.to_string().contains("osbd certs issue --role worker"));
    assert!(fixture.worker.callers().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Refusals at startup

#[tokio::test]
async fn partial_tls_configuration_refuses_to_start_naming_each_missing_variable() {
    let all = [TLS_CA_ENV, TLS_CERT_ENV, TLS_KEY_ENV];
    for missing in all {
        for plaintext_flag in [false, true] {
            let lookup = |name: &str| {
                if name == INSECURE_LOOPBACK_ENV && plaintext_flag {
                    return Some("1".to_owned());
                }
                (all.contains(&name) && name != missing).then(|| "/etc/osb/x.pem".to_owned())
            };
            let error = GrpcSecurityConfig::from_lookup(lookup).unwrap_err();
            assert!(
                matches!(&error, GrpcConfigError::PartialTls { missing: names, .. } if names == &vec![missing]),
                "{error}"
            );
            let message = error.to_string();
            assert!(message.contains(missing), "{message}");
            assert!(message.contains("osbd certs init"), "{message}");
        }
    }
}

#[tokio::test]
async fn plaintext_refuses_non_loopback_addresses_even_with_the_flag() {
    let config = GrpcSecurityConfig::from_lookup(|name| {
        (name == INSECURE_LOOPBACK_ENV).then(|| "1".to_owned())
    })
    .unwrap();
    let security = GrpcSecurity::load(&config).unwrap();
    let error = serve_worker(
        "0.0.0.0:0".parse().unwrap(),
        &security,
        EchoTestWorker::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, GrpcError::PlaintextNotLoopback { .. }),
        "{error}"
    );
    // An IP literal resolves without DNS: refused before any packet is sent.
    let error = connect_worker("192.0.2.1:7443", &security, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, GrpcError::PlaintextNotLoopback { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn unreadable_or_foreign_material_refuses_to_load() {
    let dir = tempfile::tempdir().unwrap();
    let dev = pki::generate_dev_pki(dir.path()).unwrap();
    // Key of another identity: the pair does not match.
    let mismatched = TlsPaths {
        key: dev.control.key.clone(),
        ..dev.worker_tls()
    };
    assert!(GrpcSecurity::load(&GrpcSecurityConfig::MutualTls(mismatched)).is_err());
    let missing = TlsPaths {
        ca: dir.path().join("nope.pem"),
        ..dev.worker_tls()
    };
    let error = GrpcSecurity::load(&GrpcSecurityConfig::MutualTls(missing)).unwrap_err();
    assert!(error.to_string().contains("nope.pem"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Redaction

fn register_request(canary: &Canary) -> wire::RegisterSessionRequest {
    wire::RegisterSessionRequest {
        idempotency_key: "saga_1:seal_secrets:do".into(),
        sandbox_id: "sbx_test".into(),
        source_address: "10.200.0.2".into(),
        secrets: vec![wire::SecretMaterial {
            name: "OPENAI_API_KEY".into(),
            sealed_token: "osb_sealed_00112233445566778899aabbccddeeff".into(),
            value: canary.value().as_bytes().to_vec(),
            allowed_hosts: vec!["api.openai.com".into()],
            version: 1,
        }],
        egress_allowlist: vec!["api.openai.com".into()],
    }
}

fn assert_debug_clean(canary: &Canary, place: &str, printed: &str) {
    canary.assert_absent(place, printed);
    // The derive's default for bytes is a list of numbers: look for that form too.
    let as_numbers = format!("{:?}", canary.value().as_bytes());
    let inner = as_numbers.trim_start_matches('[').trim_end_matches(']');
    assert!(
        !printed.contains(inner),
        "{place} printed the value as numbers"
    );
    assert!(
        !printed.contains("osb_sealed_00112233445566778899aabbccddeeff"),
        "{place} printed a token"
    );
}

#[test]
fn debug_of_value_carrying_requests_never_prints_the_value() {
    let canary = Canary::new("grpc-debug");
    let register = register_request(&canary);
    assert_debug_clean(
        &canary,
        "RegisterSessionRequest Debug",
        &format!("{register:?}"),
    );
    assert_debug_clean(
        &canary,
        "RegisterSessionRequest pretty Debug",
        &format!("{register:#?}"),
    );
    let update = wire::UpdateSecretValueRequest {
        sandbox_id: "sbx_test".into(),
        name: "OPENAI_API_KEY".into(),
        value: canary.value().as_bytes().to_vec(),
        version: 2,
        allowed_hosts: None,
    };
    let printed = format!("{update:?} {:?}", Request::new(update.clone()));
    assert_debug_clean(&canary, "UpdateSecretValueRequest Debug", &printed);
    assert!(printed.contains("[redacted]"));
}
