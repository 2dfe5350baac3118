//! The real worker service over the real link (as root): a control-plane client with its
//! certificate creates a network-namespace sandbox over mutual TLS, registers its proxy session
//! with a sealed secret, and runs `curl` inside; the origin receives the value, the sandbox the
//! token. An update reaches the running sandbox's next request without a restart; a stale
//! update is ignored; the control plane's vault fan-out pushes the project's current value to
//! the running sandbox; destroy is idempotent and leaves nothing behind. The worker's
//! `ProxyActor` is made to panic before the update: the update still applies afterwards.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use osb_grpc::pki;
use osb_grpc::proto as wire;
use osb_grpc::{connect_worker, serve_worker, GrpcSecurity, GrpcSecurityConfig};
use osb_proto::{SandboxId, SealedToken};
use osb_proxy::{AddressPolicy, NullSink, ProxyConfig, SealingProxy};
use osb_testkit::{Canary, LlmOrigin};
use osb_vm::netns::{census_worker, reap_worker};
use osb_vm::{NetnsConfig, NetnsRuntime, ProxyEndpoints, RecordingSink, Runtime};
use osb_worker::{WorkerService, WorkerServiceConfig};

const HOST: &str = "api.example.test";
const PREFIX: &str = "osbws01";

struct Reap(std::path::PathBuf);

impl Drop for Reap {
    fn drop(&mut self) {
        let data_dir = self.0.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|runtime| runtime.block_on(reap_worker(PREFIX, &data_dir)))
        })
        .join();
    }
}

fn curl_with_key() -> wire::ExecRequest {
    wire::ExecRequest {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            format!("curl -sS -w '\\n%{{http_code}}' -H \"x-api-key: $ANTHROPIC_API_KEY\" https://{HOST}/v1/messages"),
        ],
        timeout_sec: 30,
        ..Default::default()
    }
}

#[tokio::test]
async fn control_plane_drives_a_sandbox_and_its_secrets_over_mutual_tls() {
    let first = Canary::new("worker-v1");
    let second = Canary::new("worker-v2");
    let temp = tempfile::tempdir().unwrap();
    let origin_ip = Ipv4Addr::new(127, 77, 4, 9);
    let origin = LlmOrigin::start(
        HOST,
        SocketAddr::from((origin_ip, 443)),
        first.value().to_owned(),
    )
    .await;

    let mut proxy_config = ProxyConfig::new(temp.path().join("proxy"));
    proxy_config.explicit_listen = SocketAddr::from(([0, 0, 0, 0], 0));
    proxy_config.transparent_listen = Some(SocketAddr::from(([0, 0, 0, 0], 0)));
    proxy_config.addresses = AddressPolicy {
        allow_loopback: true,
        allow_private: false,
    };
    proxy_config.resolve_overrides = HashMap::from([(HOST.to_owned(), IpAddr::V4(origin_ip))]);
    proxy_config.use_system_roots = false;
    proxy_config.extra_upstream_ca_pems = vec![origin.ca_pem.clone().into_bytes()];
    let proxy = Arc::new(
        SealingProxy::start(proxy_config, Arc::new(NullSink))
            .await
            .unwrap(),
    );
    let endpoints = ProxyEndpoints {
        transparent_port: proxy.transparent_addr().unwrap().port(),
        explicit_port: proxy.explicit_addr().port(),
    };

    let data_dir = temp.path().join("worker");
    let _reap = Reap(data_dir.clone());
    let mut runtime_config = NetnsConfig::new(PREFIX, &data_dir);
    runtime_config.address_pool = "100.100.202.0/24".parse().unwrap();
    let runtime: Arc<dyn Runtime> = Arc::new(
        NetnsRuntime::new(runtime_config, Arc::new(RecordingSink::default()))
            .await
            .expect("netns runtime (root, nftables)"),
    );

    let dev = pki::generate_dev_pki(&temp.path().join("pki")).unwrap();
    let worker_security =
        GrpcSecurity::load(&GrpcSecurityConfig::MutualTls(dev.worker_tls())).unwrap();
    let control_security =
        GrpcSecurity::load(&GrpcSecurityConfig::MutualTls(dev.control_tls())).unwrap();
    let service = WorkerService::new(
        runtime.clone(),
        proxy.clone(),
        WorkerServiceConfig {
            proxy_endpoints: endpoints,
        },
    )
    .unwrap();
    let proxy_actor = service.proxy_actor().clone();
    let server = serve_worker(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        &worker_security,
        service,
    )
    .await
    .unwrap();
    let mut client = connect_worker(
        &server.local_addr().to_string(),
        &control_security,
        Some("local"),
    )
    .await
    .unwrap()
    .client;

    let sandbox = SandboxId::new();
    let token = SealedToken::from_random_bytes(*uuid::Uuid::new_v4().as_bytes());
    let spec = wire::SandboxSpec {
        sandbox_id: sandbox.to_string(),
        sealed_envs: vec![wire::SealedEnv {
            name: "ANTHROPIC_API_KEY".into(),
            sealed_token: token.to_string(),
        }],
        egress_allowlist: vec![HOST.into()],
        cpu_count: 1,
        memory_mb: 256,
        ..Default::default()
    };
    let create = wire::CreateSandboxRequest {
        idempotency_key: format!("{sandbox}:create"),
        spec: Some(spec),
    };
    let created = client
        .create_sandbox(create.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.egress, wire::EgressEnforcement::Enforced as i32);
    let replayed = client.create_sandbox(create).await.unwrap().into_inner();
    assert_eq!(
        replayed, created,
        "a replayed create returns the same sandbox"
    );

    let session = |value: &str, version: u64| wire::RegisterSessionRequest {
        idempotency_key: format!("{sandbox}:seal:{version}"),
        sandbox_id: sandbox.to_string(),
        source_address: created.source_address.clone(),
        egress_allowlist: vec![HOST.into()],
        secrets: vec![wire::SecretMaterial {
            name: "ANTHROPIC_API_KEY".into(),
            sealed_token: token.to_string(),
            value: value.as_bytes().to_vec(),
            allowed_hosts: vec![],
            version,
        }],
    };
    let registered = client
        .register_session(session(first.value(), 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(registered.secrets, 1);

    let mut exec = curl_with_key();
    exec.sandbox_id = sandbox.to_string();
    let out = client.exec(exec.clone()).await.unwrap().into_inner();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.trim_end().ends_with("200"),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(token.as_str()),
        "the echo comes back as the token: {stdout}"
    );
    first.assert_absent("the sandbox's output", &stdout);

    // The worker's proxy control actor panics mid-flow: its supervisor restarts it, the
    // live session stays, and the version rule still holds afterwards.
    let crashed = proxy_actor
        .send(osb_proxy::actor::InjectPanic)
        .await
        .unwrap();
    assert!(
        matches!(crashed, Err(osb_proxy::ProxyActorError::Fatal { .. })),
        "{crashed:?}"
    );
    // An update reaches the running sandbox's next request; a stale one is ignored.
    let update = |value: &str, version: u64| wire::UpdateSecretValueRequest {
        sandbox_id: sandbox.to_string(),
        name: "ANTHROPIC_API_KEY".into(),
        value: value.as_bytes().to_vec(),
        version,
        allowed_hosts: None,
    };
    assert!(
        client
            .update_secret_value(update(second.value(), 2))
            .await
            .unwrap()
            .into_inner()
            .applied
    );
    assert!(
        !client
            .update_secret_value(update(first.value(), 1))
            .await
            .unwrap()
            .into_inner()
            .applied
    );
    let out = client.exec(exec).await.unwrap().into_inner();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    second.assert_absent("the sandbox's output", &stdout);
    assert_eq!(
        origin.seen_keys.lock().unwrap().clone(),
        vec![first.value().to_owned(), second.value().to_owned()],
        "the second request carried the updated value, without a restart"
    );
    let proxy_state = proxy_actor
        .send(osb_proxy::actor::GetObservableState)
        .await
        .unwrap();
    assert_eq!(proxy_state.restarts, 1);
    assert_eq!(proxy_state.sandbox_ids, vec![sandbox]);

    // The control plane's fan-out: the vault decrypts the project's current value and pushes it
    // to the worker of every running sandbox of the project, over the same mutual-TLS link.
    let third = Canary::new("worker-v3");
    let database = osb_testkit::TestDatabase::postgres().await.unwrap();
    let store = database.migrated_store().await.unwrap();
    let vault = osb_vault::Vault::open(
        store.clone(),
        osb_vault::KeyringConfig {
            primary: osb_vault::MasterKey::generate(),
            retired: Vec::new(),
        },
    )
    .await
    .unwrap();
    let org = store.create_org("acme").await.unwrap();
    let project = store
        .create_project(osb_store::NewProject {
            org_id: org.id,
            name: "web".into(),
            template: None,
            cpu_count: 1,
            memory_mb: 256,
            timeout_sec: 60,
            egress_allowlist: vec![HOST.into()],
            runtime: None,
        })
        .await
        .unwrap();
    for value in [first.value(), second.value(), third.value()] {
        let value = osb_vault::SecretValue::from_string(value.to_owned());
        vault
            .put_secret(org.id, project.id, "ANTHROPIC_API_KEY", &value, None)
            .await
            .unwrap();
    }
    store
        .insert_sandbox(osb_store::NewSandbox {
            id: sandbox,
            org_id: org.id,
            project_id: Some(project.id),
            project_name: Some("web".into()),
            template: "host-system".into(),
            cpu_count: 1,
            memory_mb: 256,
            timeout_sec: 60,
            metadata: Default::default(),
        })
        .await
        .unwrap();
    let local: osb_proto::WorkerName = "local".parse().unwrap();
    store
        .transition_sandbox(
            sandbox,
            0,
            osb_store::SandboxStatus::Running,
            Some(&local),
            None,
        )
        .await
        .unwrap();
    let links = Arc::new(osb_control::WorkerLinks::fixed(control_security.clone()));
    links.insert(&local, client.clone());
    let pusher = osb_control::GrpcSecretPusher::new(links);
    let report = vault
        .fan_out_secret(
            project.id,
            "ANTHROPIC_API_KEY",
            &pusher,
            osb_vault::DeliveryPolicy::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        (report.refreshed, report.failed.len()),
        (1, 0),
        "{report:?}"
    );
    let again = vault
        .fan_out_secret(
            project.id,
            "ANTHROPIC_API_KEY",
            &pusher,
            osb_vault::DeliveryPolicy::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        again.already_current, 1,
        "a repeated fan-out changes nothing"
    );
    let mut exec = curl_with_key();
    exec.sandbox_id = sandbox.to_string();
    let out = client.exec(exec).await.unwrap().into_inner();
    third.assert_absent(
        "the sandbox's output",
        &String::from_utf8_lossy(&out.stdout),
    );
    assert_eq!(
        origin.seen_keys.lock().unwrap().last().cloned(),
        Some(third.value().to_owned()),
        "the fanned-out value is used by the running sandbox's next request"
    );
    assert!(format!("{report:?}{again:?}").find(third.value()).is_none());

    // Bad input is refused with the field named.
    let bad = client
        .register_session(wire::RegisterSessionRequest {
            source_address: "not-an-ip".into(),
            ..session(first.value(), 3)
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("source_address"));
    // A session only for a sandbox this worker runs, only at its own address: a stale
    // registration must never claim an address a later sandbox may be given.
    let stranger = SandboxId::new();
    let unknown = client
        .register_session(wire::RegisterSessionRequest {
            sandbox_id: stranger.to_string(),
            idempotency_key: format!("{stranger}:register"),
            ..session(first.value(), 3)
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::FailedPrecondition);
    assert!(unknown.message().contains("holds no sandbox"), "{unknown}");
    let elsewhere = client
        .register_session(wire::RegisterSessionRequest {
            source_address: "100.127.255.254".into(),
            ..session(first.value(), 3)
        })
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), tonic::Code::InvalidArgument);
    assert!(
        elsewhere.message().contains("not the address"),
        "{elsewhere}"
    );

    let destroy = wire::DestroySandboxRequest {
        idempotency_key: format!("{sandbox}:destroy"),
        sandbox_id: sandbox.to_string(),
    };
    assert!(
        client
            .destroy_sandbox(destroy.clone())
            .await
            .unwrap()
            .into_inner()
            .existed
    );
    assert!(
        !client
            .destroy_sandbox(destroy)
            .await
            .unwrap()
            .into_inner()
            .existed
    );
    assert!(
        proxy.registry().session_of(sandbox).is_none(),
        "the session went with the sandbox"
    );
    let census = census_worker(PREFIX, &data_dir).await.unwrap();
    assert!(census.is_empty(), "nothing left behind: {census:?}");
    server.shutdown().await.unwrap();
}

/// On the development runtime every sandbox is a host process coming from 127.0.0.1, so the
/// proxy can tell only one apart: a second sandbox with secrets is refused with a sentence that
/// says why and what to do, and the first one keeps working.
#[tokio::test]
async fn the_development_runtime_refuses_a_second_session_clearly() {
    use osb_grpc::proto::worker_server::Worker;

    let temp = tempfile::tempdir().unwrap();
    let mut proxy_config = ProxyConfig::new(temp.path().join("proxy"));
    proxy_config.explicit_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    proxy_config.transparent_listen = None;
    let proxy = Arc::new(
        SealingProxy::start(proxy_config, Arc::new(NullSink))
            .await
            .unwrap(),
    );
    let runtime: Arc<dyn Runtime> =
        Arc::new(osb_vm::DevelopmentRuntime::new(&temp.path().join("dev")).unwrap());
    let service = WorkerService::new(
        runtime,
        proxy.clone(),
        WorkerServiceConfig {
            proxy_endpoints: ProxyEndpoints {
                transparent_port: proxy.explicit_addr().port(),
                explicit_port: proxy.explicit_addr().port(),
            },
        },
    )
    .unwrap();
    let session = |sandbox: SandboxId| wire::RegisterSessionRequest {
        idempotency_key: format!("{sandbox}:register"),
        sandbox_id: sandbox.to_string(),
        source_address: "127.0.0.1".into(),
        secrets: vec![wire::SecretMaterial {
            name: "API_KEY".into(),
            sealed_token: SealedToken::from_random_bytes(*uuid::Uuid::new_v4().as_bytes())
                .to_string(),
            value: b"dev-value".to_vec(),
            allowed_hosts: vec![],
            version: 1,
        }],
        egress_allowlist: vec![HOST.into()],
    };
    // Sessions are registered only for sandboxes the worker runs: create two.
    let create = |sandbox: SandboxId| {
        let service = &service;
        async move {
            service
                .create_sandbox(tonic::Request::new(wire::CreateSandboxRequest {
                    idempotency_key: format!("{sandbox}:create"),
                    spec: Some(wire::SandboxSpec {
                        sandbox_id: sandbox.to_string(),
                        egress_allowlist: vec![HOST.into()],
                        cpu_count: 1,
                        memory_mb: 256,
                        ..Default::default()
                    }),
                }))
                .await
                .expect("a development sandbox")
        }
    };
    let (first, second) = (SandboxId::new(), SandboxId::new());
    create(first).await;
    create(second).await;
    service
        .register_session(tonic::Request::new(session(first)))
        .await
        .unwrap();
    let refused = service
        .register_session(tonic::Request::new(session(second)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("one sandbox at a time") && refused.message().contains("root"),
        "{}",
        refused.message()
    );
    assert!(proxy.registry().session_of(first).is_some());
}
