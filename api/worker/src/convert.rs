//! Wire ↔ domain conversions with `INVALID_ARGUMENT` statuses that name the field, and the
//! mapping of runtime and proxy errors to gRPC statuses (their messages carry ids and names
//! only, never values).

use std::collections::BTreeMap;
use std::net::IpAddr;

use osb_proto::{CheckpointId, HostPattern, SealedToken};
use osb_proxy::{ProxyActorError, RegistryError, SecretSpec, SecretValue};
use osb_vm::{
    BootLayer, Isolation, ProxyEndpoints, RuntimeError, SandboxInfo, SandboxSpec, SealedEnv,
    HOST_SYSTEM_TEMPLATE,
};
use tonic::Status;

use osb_grpc::parse_id;
use osb_grpc::proto as wire;

/// Default memory when the spec leaves it at 0.
const DEFAULT_MEMORY_MB: u32 = 512;

pub(crate) fn sandbox_spec(
    spec: wire::SandboxSpec,
    proxy: ProxyEndpoints,
    ca_pem: &str,
) -> Result<SandboxSpec, Status> {
    let id = parse_id("spec.sandbox_id", &spec.sandbox_id)?;
    let mut out = SandboxSpec::new(id, proxy, ca_pem);
    out.template = if spec.template.is_empty() {
        HOST_SYSTEM_TEMPLATE.to_owned()
    } else {
        spec.template
    };
    out.user_envs = spec.user_envs.into_iter().collect::<BTreeMap<_, _>>();
    out.sealed_envs = spec
        .sealed_envs
        .iter()
        .map(|env| {
            Ok(SealedEnv {
                name: env.name.clone(),
                token: token("spec.sealed_envs.sealed_token", &env.sealed_token)?,
            })
        })
        .collect::<Result<_, Status>>()?;
    out.egress_allowlist = spec.egress_allowlist;
    out.cpu_count = spec.cpu_count.max(1);
    out.memory_mb = if spec.memory_mb == 0 {
        DEFAULT_MEMORY_MB
    } else {
        spec.memory_mb
    };
    // The runtime the control plane chose (empty: netns); an unknown one is refused, never
    // replaced by another.
    out.runtime = spec
        .runtime
        .parse()
        .map_err(|error| Status::invalid_argument(format!("spec.runtime: {error}")))?;
    out.boot_from = match spec.boot_from {
        None => BootLayer::Fresh,
        Some(wire::sandbox_spec::BootFrom::CheckpointId(id)) => {
            BootLayer::Checkpoint(parse_id::<CheckpointId>("spec.checkpoint_id", &id)?)
        }
        Some(wire::sandbox_spec::BootFrom::SnapshotName(name)) => BootLayer::Snapshot(name),
    };
    Ok(out)
}

pub(crate) fn token(field: &'static str, text: &str) -> Result<SealedToken, Status> {
    text.parse()
        .map_err(|error| Status::invalid_argument(format!("{field}: {error}")))
}

pub(crate) fn patterns(field: &'static str, list: &[String]) -> Result<Vec<HostPattern>, Status> {
    list.iter()
        .map(|entry| {
            HostPattern::parse(entry)
                .map_err(|error| Status::invalid_argument(format!("{field}: {error}")))
        })
        .collect()
}

pub(crate) fn address(text: &str) -> Result<IpAddr, Status> {
    text.parse().map_err(|_| {
        Status::invalid_argument(format!(
            "source_address: {text:?} is not an IP address (use the one CreateSandbox returned)"
        ))
    })
}

/// Takes the value out of a secret on the wire (the message zeroises what is left).
pub(crate) fn secret_spec(material: &mut wire::SecretMaterial) -> Result<SecretSpec, Status> {
    Ok(SecretSpec {
        name: material.name.clone(),
        token: token("secrets.sealed_token", &material.sealed_token)?,
        value: SecretValue::new(std::mem::take(&mut material.value)),
        allowed_hosts: patterns("secrets.allowed_hosts", &material.allowed_hosts)?,
        version: material.version,
    })
}

pub(crate) fn created(info: &SandboxInfo) -> wire::CreateSandboxResponse {
    let (runtime, egress) = match info.isolation {
        Isolation::Enforced => ("netns", wire::EgressEnforcement::Enforced),
        Isolation::DevelopmentCooperative => ("dev", wire::EgressEnforcement::Cooperative),
    };
    wire::CreateSandboxResponse {
        sandbox_id: info.sandbox_id.to_string(),
        runtime: runtime.to_owned(),
        egress: egress as i32,
        source_address: info.address.to_string(),
    }
}

pub(crate) fn runtime_status(error: RuntimeError) -> Status {
    match &error {
        RuntimeError::InvalidSpec(_)
        | RuntimeError::EmptyCommand
        | RuntimeError::UnknownTemplate(_)
        | RuntimeError::TemplateMismatch { .. } => Status::invalid_argument(error.to_string()),
        RuntimeError::UnknownSandbox(_)
        | RuntimeError::UnknownCheckpoint(_)
        | RuntimeError::UnknownSnapshot(_) => Status::not_found(error.to_string()),
        RuntimeError::AlreadyExists(_) => Status::already_exists(error.to_string()),
        RuntimeError::NotRunning(_) | RuntimeError::DiskFull { .. } => {
            Status::failed_precondition(error.to_string())
        }
        RuntimeError::PoolExhausted { .. } => Status::resource_exhausted(error.to_string()),
        _ => Status::internal(error.to_string()),
    }
}

/// A reply of the proxy's control actor, as a status.
pub(crate) fn proxy_reply<T>(
    reply: Result<Result<T, ProxyActorError>, actix::MailboxError>,
) -> Result<T, Status> {
    match reply {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(ProxyActorError::Refused(error))) => Err(registry_status(error)),
        Ok(Err(fatal @ ProxyActorError::Fatal { .. })) => {
            Err(Status::unavailable(fatal.to_string()))
        }
        Err(_) => Err(Status::unavailable(
            "the proxy control actor is not running: the worker is shutting down",
        )),
    }
}

pub(crate) fn registry_status(error: RegistryError) -> Status {
    match &error {
        RegistryError::UnknownSandbox(_) | RegistryError::UnknownSecret { .. } => {
            Status::not_found(error.to_string())
        }
        RegistryError::AddressInUse { .. } | RegistryError::DuplicateSecret { .. } => {
            Status::already_exists(error.to_string())
        }
        RegistryError::EmptyValue { .. } => Status::invalid_argument(error.to_string()),
    }
}
