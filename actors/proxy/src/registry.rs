//! The session registry: source address → session snapshot, read lock-free by every request
//! (`arc-swap`) and changed by whole-snapshot swaps under a writer lock, so an update never tears
//! an in-flight request. It must never hand out a mutable session or print a value.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use osb_proto::{HostPattern, SandboxId};

use crate::secret_value::SecretValue;
use crate::session::{SealedSecret, SecretSpec, Session, SessionSpec};
use crate::versions::{decide, VersionDecision};

/// Keyed by the addresses the worker assigned (`proxy_keys`: no keyed hash needed).
type SessionMap = HashMap<IpAddr, Arc<Session>, crate::proxy_keys::ProxyKeys>;

/// Why a registry change was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("source address {source_ip} already belongs to sandbox {owner}: unregister it first")]
    AddressInUse { source_ip: IpAddr, owner: SandboxId },
    #[error("sandbox {0} has no proxy session: register it first")]
    UnknownSandbox(SandboxId),
    #[error("sandbox {sandbox_id} has no secret named {name:?}")]
    UnknownSecret { sandbox_id: SandboxId, name: String },
    #[error("secret {name:?} has an empty value: secrets must be non-empty")]
    EmptyValue { name: String },
    #[error("secret {name:?} reuses a token or name already in the session: each secret needs its own name and token")]
    DuplicateSecret { name: String },
}

/// A versioned change of one secret: a new value under the same token, and optionally new hosts.
pub struct SecretUpdate {
    pub name: String,
    pub version: u64,
    pub value: SecretValue,
    /// `None` keeps the secret's allowed hosts.
    pub allowed_hosts: Option<Vec<HostPattern>>,
}

impl std::fmt::Debug for SecretUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretUpdate")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("value", &self.value)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

/// Lock-free readable map of sessions.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    sessions: ArcSwap<SessionMap>,
    writer: Mutex<()>,
}

impl SessionRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current session of a source address.
    pub fn lookup(&self, source_ip: IpAddr) -> Option<Arc<Session>> {
        self.sessions.load().get(&source_ip).cloned()
    }

    /// The current session of a sandbox.
    pub fn session_of(&self, sandbox_id: SandboxId) -> Option<Arc<Session>> {
        self.sessions
            .load()
            .values()
            .find(|session| session.sandbox_id == sandbox_id)
            .cloned()
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.sessions.load().len()
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sandboxes with a session, sorted.
    pub fn sandbox_ids(&self) -> Vec<SandboxId> {
        let mut ids: Vec<SandboxId> = self
            .sessions
            .load()
            .values()
            .map(|s| s.sandbox_id)
            .collect();
        ids.sort();
        ids
    }

    /// Opens (or replaces, for the same sandbox) a session. Returns the new snapshot.
    pub fn register(&self, spec: SessionSpec) -> Result<Arc<Session>, RegistryError> {
        let mut secrets: Vec<Arc<SealedSecret>> = Vec::with_capacity(spec.secrets.len());
        for secret in spec.secrets {
            validate_new_secret(&secrets, &secret)?;
            secrets.push(Arc::new(SealedSecret::from(secret)));
        }
        let session = Arc::new(Session::new(
            spec.sandbox_id,
            spec.source_ip,
            spec.egress_allowlist,
            secrets,
        ));
        self.change(|map| {
            if let Some(existing) = map.get(&spec.source_ip) {
                if existing.sandbox_id != spec.sandbox_id {
                    return Err(RegistryError::AddressInUse {
                        source_ip: spec.source_ip,
                        owner: existing.sandbox_id,
                    });
                }
            }
            map.retain(|_, other| other.sandbox_id != spec.sandbox_id);
            map.insert(spec.source_ip, Arc::clone(&session));
            Ok(())
        })?;
        Ok(session)
    }

    /// Replaces one secret's value in place: same token, same allowed hosts.
    pub fn update_secret_value(
        &self,
        sandbox_id: SandboxId,
        name: &str,
        value: SecretValue,
    ) -> Result<(), RegistryError> {
        if value.is_empty() {
            return Err(RegistryError::EmptyValue {
                name: name.to_owned(),
            });
        }
        let mut value = Some(value);
        self.change_session(sandbox_id, |session| {
            let current =
                session
                    .secret_named(name)
                    .ok_or_else(|| RegistryError::UnknownSecret {
                        sandbox_id,
                        name: name.to_owned(),
                    })?;
            let new_value = value.take().ok_or_else(|| RegistryError::UnknownSecret {
                sandbox_id,
                name: name.to_owned(),
            })?;
            let replaced = Arc::new(SealedSecret {
                name: current.name.clone(),
                token: current.token,
                value: new_value,
                allowed_hosts: current.allowed_hosts.clone(),
                version: current.version,
            });
            let secrets = session
                .secrets()
                .filter(|secret| secret.name != name)
                .cloned()
                .chain(std::iter::once(replaced));
            Ok(rebuild(session, session.egress_allowlist.clone(), secrets))
        })
    }

    /// Applies a versioned update of an existing secret (same token): the new value, and the new
    /// allowed hosts when given. Decided by the version rule inside the writer lock, so two
    /// racing updates cannot both win. Returns whether it applied (false: this or a newer
    /// version is already held).
    pub fn update_secret_versioned(
        &self,
        sandbox_id: SandboxId,
        update: SecretUpdate,
    ) -> Result<bool, RegistryError> {
        if update.value.is_empty() {
            return Err(RegistryError::EmptyValue { name: update.name });
        }
        let mut update = Some(update);
        self.change_session_if(sandbox_id, |session| {
            let SecretUpdate {
                name,
                version,
                value,
                allowed_hosts,
            } = update
                .take()
                .ok_or(RegistryError::UnknownSandbox(sandbox_id))?;
            let current =
                session
                    .secret_named(&name)
                    .ok_or_else(|| RegistryError::UnknownSecret {
                        sandbox_id,
                        name: name.clone(),
                    })?;
            if decide(current.version, version) == VersionDecision::AlreadyCurrent {
                return Ok(None);
            }
            let replaced = Arc::new(SealedSecret {
                name: current.name.clone(),
                token: current.token,
                value,
                allowed_hosts: allowed_hosts.unwrap_or_else(|| current.allowed_hosts.clone()),
                version,
            });
            let secrets = session
                .secrets()
                .filter(|secret| secret.name != name)
                .cloned()
                .chain(std::iter::once(replaced));
            Ok(Some(rebuild(
                session,
                session.egress_allowlist.clone(),
                secrets,
            )))
        })
    }

    /// Adds a secret, or replaces the secret of the same name (its token may change).
    pub fn upsert_secret(
        &self,
        sandbox_id: SandboxId,
        spec: SecretSpec,
    ) -> Result<(), RegistryError> {
        let mut spec = Some(spec);
        self.change_session(sandbox_id, |session| {
            let spec = spec
                .take()
                .ok_or(RegistryError::UnknownSandbox(sandbox_id))?;
            let others: Vec<Arc<SealedSecret>> = session
                .secrets()
                .filter(|secret| secret.name != spec.name)
                .cloned()
                .collect();
            validate_new_secret(&others, &spec)?;
            let secrets = others
                .into_iter()
                .chain(std::iter::once(Arc::new(SealedSecret::from(spec))));
            Ok(rebuild(session, session.egress_allowlist.clone(), secrets))
        })
    }

    /// Removes a secret: its token is refused from the next request on.
    pub fn remove_secret(&self, sandbox_id: SandboxId, name: &str) -> Result<(), RegistryError> {
        self.change_session(sandbox_id, |session| {
            if session.secret_named(name).is_none() {
                return Err(RegistryError::UnknownSecret {
                    sandbox_id,
                    name: name.to_owned(),
                });
            }
            let secrets = session
                .secrets()
                .filter(|secret| secret.name != name)
                .cloned();
            Ok(rebuild(session, session.egress_allowlist.clone(), secrets))
        })
    }

    /// Replaces the egress allowlist.
    pub fn set_egress_allowlist(
        &self,
        sandbox_id: SandboxId,
        allowlist: Vec<HostPattern>,
    ) -> Result<(), RegistryError> {
        let mut allowlist = Some(allowlist);
        self.change_session(sandbox_id, |session| {
            let allowlist = allowlist.take().unwrap_or_default();
            Ok(rebuild(session, allowlist, session.secrets().cloned()))
        })
    }

    /// Closes a sandbox's session; its source address is refused from the next request on.
    pub fn unregister(&self, sandbox_id: SandboxId) -> Result<(), RegistryError> {
        self.change(|map| {
            let before = map.len();
            map.retain(|_, session| session.sandbox_id != sandbox_id);
            if map.len() == before {
                return Err(RegistryError::UnknownSandbox(sandbox_id));
            }
            Ok(())
        })
    }

    fn change_session(
        &self,
        sandbox_id: SandboxId,
        mut edit: impl FnMut(&Session) -> Result<Session, RegistryError>,
    ) -> Result<(), RegistryError> {
        self.change_session_if(sandbox_id, |session| edit(session).map(Some))
            .map(|_| ())
    }

    /// Edits one session; `Ok(None)` from `edit` leaves it as it is. Returns whether it changed.
    fn change_session_if(
        &self,
        sandbox_id: SandboxId,
        edit: impl FnOnce(&Session) -> Result<Option<Session>, RegistryError>,
    ) -> Result<bool, RegistryError> {
        let mut changed = false;
        self.change(|map| {
            let (ip, session) = map
                .iter()
                .find(|(_, session)| session.sandbox_id == sandbox_id)
                .map(|(ip, session)| (*ip, Arc::clone(session)))
                .ok_or(RegistryError::UnknownSandbox(sandbox_id))?;
            if let Some(edited) = edit(&session)? {
                map.insert(ip, Arc::new(edited));
                changed = true;
            }
            Ok(())
        })?;
        Ok(changed)
    }

    fn change(
        &self,
        edit: impl FnOnce(&mut SessionMap) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut map: SessionMap = self.sessions.load().as_ref().clone();
        edit(&mut map)?;
        self.sessions.store(Arc::new(map));
        Ok(())
    }
}

fn rebuild(
    session: &Session,
    allowlist: Vec<HostPattern>,
    secrets: impl IntoIterator<Item = Arc<SealedSecret>>,
) -> Session {
    Session::new(session.sandbox_id, session.source_ip, allowlist, secrets)
}

fn validate_new_secret(
    existing: &[Arc<SealedSecret>],
    spec: &SecretSpec,
) -> Result<(), RegistryError> {
    if spec.value.is_empty() {
        return Err(RegistryError::EmptyValue {
            name: spec.name.clone(),
        });
    }
    if existing
        .iter()
        .any(|secret| secret.name == spec.name || secret.token == spec.token)
    {
        return Err(RegistryError::DuplicateSecret {
            name: spec.name.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
