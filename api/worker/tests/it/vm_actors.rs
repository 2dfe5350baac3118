//! The worker service drives each sandbox through its `VmActor`: a panic during a checkpoint
//! is answered UNAVAILABLE (retry), the actor restarts and resyncs, the retried checkpoint and
//! the rest of the flow complete, and destroy leaves no namespace, rule, layer, session or actor.

use std::net::SocketAddr;
use std::sync::Arc;

use osb_grpc::proto as wire;
use osb_grpc::proto::worker_server::Worker;
use osb_proto::{SandboxId, SealedToken};
use osb_proxy::{AddressPolicy, NullSink, ProxyConfig, SealingProxy};
use osb_vm::faults::PanicOnCheckpoint;
use osb_vm::netns::{census_worker, reap_worker};
use osb_vm::{NetnsConfig, NetnsRuntime, ProxyEndpoints, RecordingSink, Runtime};
use osb_worker::{WorkerService, WorkerServiceConfig};
use tonic::{Code, Request};

const PREFIX: &str = "osbwa01";

/// Reaps the test's host objects even when it fails.
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

fn exec(sandbox: SandboxId, script: &str) -> Request<wire::ExecRequest> {
    Request::new(wire::ExecRequest {
        sandbox_id: sandbox.to_string(),
        cmd: vec!["sh".into(), "-c".into(), script.into()],
        timeout_sec: 30,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_during_a_checkpoint_is_retried_and_nothing_is_orphaned() {
    let temp = tempfile::tempdir().unwrap();
    let mut proxy_config = ProxyConfig::new(temp.path().join("proxy"));
    proxy_config.explicit_listen = SocketAddr::from(([0, 0, 0, 0], 0));
    proxy_config.transparent_listen = Some(SocketAddr::from(([0, 0, 0, 0], 0)));
    proxy_config.addresses = AddressPolicy::default();
    let proxy = Arc::new(
        SealingProxy::start(proxy_config, Arc::new(NullSink))
            .await
            .unwrap(),
    );
    let data_dir = temp.path().join("worker");
    let _reap = Reap(data_dir.clone());
    let mut runtime_config = NetnsConfig::new(PREFIX, &data_dir);
    runtime_config.address_pool = "100.100.203.0/24".parse().unwrap();
    let netns = NetnsRuntime::new(runtime_config, Arc::new(RecordingSink::default()))
        .await
        .expect("netns runtime (root, nftables)");
    let runtime = Arc::new(PanicOnCheckpoint::new(Arc::new(netns)));
    let service = WorkerService::new(
        runtime.clone() as Arc<dyn Runtime>,
        proxy.clone(),
        WorkerServiceConfig {
            proxy_endpoints: ProxyEndpoints {
                transparent_port: proxy.transparent_addr().unwrap().port(),
                explicit_port: proxy.explicit_addr().port(),
            },
        },
    )
    .unwrap();

    // A command for a sandbox the worker does not hold is "not found", before any actor.
    let unknown = service.exec(exec(SandboxId::new(), "true")).await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);

    let sandbox = SandboxId::new();
    let token = SealedToken::from_random_bytes([9; 16]);
    let created = service
        .create_sandbox(Request::new(wire::CreateSandboxRequest {
            idempotency_key: format!("{sandbox}:boot_sandbox:do"),
            spec: Some(wire::SandboxSpec {
                sandbox_id: sandbox.to_string(),
                sealed_envs: vec![wire::SealedEnv {
                    name: "API_KEY".into(),
                    sealed_token: token.to_string(),
                }],
                cpu_count: 1,
                memory_mb: 256,
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    service
        .register_session(Request::new(wire::RegisterSessionRequest {
            idempotency_key: format!("{sandbox}:register_session:do"),
            sandbox_id: sandbox.to_string(),
            source_address: created.source_address.clone(),
            egress_allowlist: vec![],
            secrets: vec![wire::SecretMaterial {
                name: "API_KEY".into(),
                sealed_token: token.to_string(),
                value: b"worker-actor-value".to_vec(),
                allowed_hosts: vec![],
                version: 1,
            }],
        }))
        .await
        .unwrap();
    let wrote = service
        .exec(exec(sandbox, "echo kept > /workspace/f"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(wrote.exit_code, 0);

    runtime.arm();
    let checkpoint = |key: &str| {
        Request::new(wire::CheckpointRequest {
            sandbox_id: sandbox.to_string(),
            idempotency_key: key.to_owned(),
            ..Default::default()
        })
    };
    let crashed = service.checkpoint(checkpoint("saga:checkpoint:do")).await;
    assert_eq!(crashed.unwrap_err().code(), Code::Unavailable);
    // The retried step completes, and the sandbox kept its layer and its session.
    let made = service
        .checkpoint(checkpoint("saga:checkpoint:do"))
        .await
        .unwrap()
        .into_inner();
    let read = service
        .exec(exec(sandbox, "cat /workspace/f"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(String::from_utf8_lossy(&read.stdout), "kept\n");
    assert!(proxy.registry().session_of(sandbox).is_some());

    let destroyed = service
        .destroy_sandbox(Request::new(wire::DestroySandboxRequest {
            sandbox_id: sandbox.to_string(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(destroyed.existed);
    let again = service
        .destroy_sandbox(Request::new(wire::DestroySandboxRequest {
            sandbox_id: sandbox.to_string(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.existed, "a replayed destroy is harmless");
    let late = service.exec(exec(sandbox, "true")).await;
    assert_eq!(late.unwrap_err().code(), Code::NotFound);
    let deleted = service
        .delete_checkpoint(Request::new(wire::DeleteCheckpointRequest {
            checkpoint_id: made.checkpoint_id,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.existed);

    assert!(proxy.registry().is_empty(), "no proxy session is left");
    let listed = service
        .list_sandboxes(Request::new(wire::ListSandboxesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.sandbox_ids.is_empty());
    let census = census_worker(PREFIX, &data_dir).await.unwrap();
    assert!(census.is_empty(), "{census:?}");
}
