//! `SecretVaultActor`: the vault's actix shell (DESIGN.md §3). It owns the one capability that
//! sends plaintext values anywhere — fan-out of a changed or deleted secret to the proxies of
//! the project's live sandboxes, through a `SecretPusher` (the mutual-TLS gRPC link) — and
//! runs under `actix::Supervisor`. It keeps no state of its own: every message re-reads the
//! store, so a restart resyncs from Postgres by construction.
//!
//! `spawn_secret_vault` runs it on a dedicated thread with its own actix system, so callers on
//! any tokio runtime (the gateway, sagas) reach it through its `Addr`. It must never log or
//! return a value: replies are counts and sandbox ids.

use std::sync::Arc;

use actix::prelude::*;
use osb_proto::ProjectId;

use crate::error::VaultError;
use crate::fanout::{FanoutReport, SecretPusher};
use crate::vault::Vault;

/// Push the current value (and allowed hosts) of a secret to every live sandbox of its project.
#[derive(Debug, Message)]
#[rtype(result = "Result<FanoutReport, VaultError>")]
pub struct FanOutSecret {
    pub project: ProjectId,
    pub name: String,
}

/// Remove a deleted secret from every live sandbox of its project.
#[derive(Debug, Message)]
#[rtype(result = "Result<FanoutReport, VaultError>")]
pub struct FanOutRemoval {
    pub project: ProjectId,
    pub name: String,
}

/// The actor.
pub struct SecretVaultActor {
    vault: Arc<Vault>,
    pusher: Arc<dyn SecretPusher>,
}

impl std::fmt::Debug for SecretVaultActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVaultActor").finish_non_exhaustive()
    }
}

impl SecretVaultActor {
    /// An actor over `vault` pushing through `pusher`.
    pub fn new(vault: Arc<Vault>, pusher: Arc<dyn SecretPusher>) -> Self {
        Self { vault, pusher }
    }
}

impl Actor for SecretVaultActor {
    type Context = Context<Self>;
}

impl Supervised for SecretVaultActor {
    fn restarting(&mut self, _context: &mut Context<Self>) {
        tracing::warn!("secret vault actor restarted; state is re-read from the store");
    }
}

impl Handler<FanOutSecret> for SecretVaultActor {
    type Result = ResponseFuture<Result<FanoutReport, VaultError>>;

    fn handle(&mut self, message: FanOutSecret, _context: &mut Context<Self>) -> Self::Result {
        let (vault, pusher) = (self.vault.clone(), self.pusher.clone());
        Box::pin(async move {
            vault
                .fan_out_secret(message.project, &message.name, pusher.as_ref())
                .await
        })
    }
}

impl Handler<FanOutRemoval> for SecretVaultActor {
    type Result = ResponseFuture<Result<FanoutReport, VaultError>>;

    fn handle(&mut self, message: FanOutRemoval, _context: &mut Context<Self>) -> Self::Result {
        let (vault, pusher) = (self.vault.clone(), self.pusher.clone());
        Box::pin(async move {
            vault
                .fan_out_removal(message.project, &message.name, pusher.as_ref())
                .await
        })
    }
}

/// Starts the actor under a supervisor on its own thread and actix system; returns its address.
/// The thread lives as long as the process (the system stops when every address is dropped).
pub fn spawn_secret_vault(
    vault: Arc<Vault>,
    pusher: Arc<dyn SecretPusher>,
) -> std::io::Result<Addr<SecretVaultActor>> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("secret-vault".into())
        .spawn(move || {
            let system = System::new();
            system.block_on(async move {
                let address = Supervisor::start(move |_| SecretVaultActor::new(vault, pusher));
                let _ = sender.send(address);
            });
            let _ = system.run();
        })?;
    receiver
        .recv()
        .map_err(|_| std::io::Error::other("the secret vault actor did not start"))
}
