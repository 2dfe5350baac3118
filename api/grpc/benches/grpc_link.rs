//! Cost of the worker gRPC link's mutual TLS 1.3 against plaintext loopback (the baseline), on
//! real sockets on 127.0.0.1: one unary Exec round trip on an established connection, a
//! RegisterSession carrying 8 secrets, and a fresh connection (TCP + handshake + first call).
//! The worker here is a bench-only echo service, not the real worker.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use osb_grpc::pki;
use osb_grpc::proto::worker_server::Worker;
use osb_grpc::proto::{self as wire};
use osb_grpc::{
    connect_worker, serve_worker, GrpcSecurity, GrpcSecurityConfig, WorkerServerHandle,
};
use tonic::{Request, Response, Status};

/// Bench-only worker: Exec echoes, RegisterSession counts; everything else is unimplemented.
#[derive(Debug, Clone, Default)]
struct EchoBenchWorker;

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("bench worker"))
}

#[tonic::async_trait]
impl Worker for EchoBenchWorker {
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
        request: Request<wire::ExecRequest>,
    ) -> Result<Response<wire::ExecResponse>, Status> {
        Ok(Response::new(wire::ExecResponse {
            stdout: request.into_inner().cmd.join(" ").into_bytes(),
            ..Default::default()
        }))
    }
    type ExecStreamStream = futures_util::stream::Empty<Result<wire::ExecChunk, Status>>;
    async fn exec_stream(
        &self,
        _: Request<wire::ExecRequest>,
    ) -> Result<Response<Self::ExecStreamStream>, Status> {
        unimplemented()
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
        Ok(Response::new(wire::RegisterSessionResponse {
            secrets: request.into_inner().secrets.len() as u32,
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

fn exec_request() -> wire::ExecRequest {
    wire::ExecRequest {
        sandbox_id: "sbx_bench".into(),
        cmd: vec!["echo".into(), "hello".into()],
        ..Default::default()
    }
}

fn register_request() -> wire::RegisterSessionRequest {
    wire::RegisterSessionRequest {
        idempotency_key: "saga_bench:seal_secrets:do".into(),
        sandbox_id: "sbx_bench".into(),
        source_address: "10.200.0.2".into(),
        secrets: (0..8)
            .map(|index| wire::SecretMaterial {
                name: format!("SECRET_{index}"),
                sealed_token: format!("osb_sealed_{index:032x}"),
                value: vec![b'v'; 64],
                allowed_hosts: vec!["api.example.com".into()],
                version: 1,
            })
            .collect(),
        egress_allowlist: vec!["api.example.com".into()],
    }
}

struct Link {
    label: &'static str,
    client_security: GrpcSecurity,
    server: WorkerServerHandle,
}

fn bench_link(c: &mut Criterion) {
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = pki::generate_dev_pki(dir.path()).expect("dev pki");
    let load = |paths| GrpcSecurity::load(&GrpcSecurityConfig::MutualTls(paths)).expect("tls");
    let address = "127.0.0.1:0".parse().expect("address");
    let links = runtime.block_on(async {
        let plain = serve_worker(address, &GrpcSecurity::InsecureLoopback, EchoBenchWorker)
            .await
            .expect("plain server");
        let tls = serve_worker(address, &load(dev.worker_tls()), EchoBenchWorker)
            .await
            .expect("tls server");
        vec![
            Link {
                label: "plaintext loopback (baseline)",
                client_security: GrpcSecurity::InsecureLoopback,
                server: plain,
            },
            Link {
                label: "mutual TLS 1.3",
                client_security: load(dev.control_tls()),
                server: tls,
            },
        ]
    });

    let mut group = c.benchmark_group("grpc_link");
    for link in &links {
        let target = link.server.local_addr().to_string();
        let connection = runtime
            .block_on(connect_worker(&target, &link.client_security, None))
            .expect("connect");
        group.bench_function(format!("exec round trip, {}", link.label), |b| {
            b.iter(|| {
                let mut client = connection.client.clone();
                runtime.block_on(client.exec(exec_request())).expect("exec")
            })
        });
        group.bench_function(format!("register 8 secrets, {}", link.label), |b| {
            b.iter(|| {
                let mut client = connection.client.clone();
                runtime
                    .block_on(client.register_session(register_request()))
                    .expect("register")
            })
        });
        group.bench_function(format!("connect + first exec, {}", link.label), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let fresh = connect_worker(&target, &link.client_security, None)
                        .await
                        .expect("connect");
                    fresh
                        .client
                        .clone()
                        .exec(exec_request())
                        .await
                        .expect("exec")
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_link);
criterion_main!(benches);
