//! Hand-written `Debug` (and zero-on-drop) for the generated messages that carry a plaintext
//! secret value or a sealed token; `build.rs` lists them in `REDACTED_MESSAGES` so prost does not
//! derive a printing `Debug`. Values print as [`REDACTED`]; tokens print only their short
//! diagnostic id, like `osb_proto::SealedToken`. Nothing here may ever format a value.

use std::fmt;

use zeroize::Zeroize;

use super::generated::{SealedEnv, SecretMaterial, StageValuesRequest, UpdateSecretValueRequest};
use crate::SealedToken;

/// What `Debug` prints in place of a secret value or a full sealed token.
pub const REDACTED: &str = "[redacted]";

/// A token's printable form: its short id when it parses, `[redacted]` otherwise (a malformed
/// token could be anything, including a value sent in the wrong field).
struct TokenId<'a>(&'a str);

impl fmt::Debug for TokenId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match SealedToken::from_bytes(self.0.as_bytes()) {
            Ok(token) => write!(f, "{}…", token.short_id()),
            Err(_) => f.write_str(REDACTED),
        }
    }
}

/// Prints [`REDACTED`] whatever the field holds.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Debug for SealedEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedEnv")
            .field("name", &self.name)
            .field("sealed_token", &TokenId(&self.sealed_token))
            .finish()
    }
}

impl fmt::Debug for SecretMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretMaterial")
            .field("name", &self.name)
            .field("sealed_token", &TokenId(&self.sealed_token))
            .field("value", &Redacted)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("version", &self.version)
            .finish()
    }
}

impl fmt::Debug for UpdateSecretValueRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateSecretValueRequest")
            .field("sandbox_id", &self.sandbox_id)
            .field("name", &self.name)
            .field("value", &Redacted)
            .field("version", &self.version)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

/// User env names only: their values are the user's and may be credentials.
struct EnvNames<'a>(&'a std::collections::HashMap<String, String>);

impl fmt::Debug for EnvNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        f.debug_list().entries(names).finish()
    }
}

impl fmt::Debug for StageValuesRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageValuesRequest")
            .field("idempotency_key", &self.idempotency_key)
            .field("sandbox_id", &self.sandbox_id)
            .field("user_env_names", &EnvNames(&self.user_envs))
            .field("sealed_envs", &self.sealed_envs)
            .field("secrets", &self.secrets)
            .finish()
    }
}

impl Drop for StageValuesRequest {
    fn drop(&mut self) {
        for value in self.user_envs.values_mut() {
            value.zeroize();
        }
    }
}

impl Drop for SecretMaterial {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl Drop for UpdateSecretValueRequest {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::{HostList, RegisterSessionRequest, SandboxSpec};

    const VALUE: &[u8] = b"sk-live-canary-4f1c9e";
    const TOKEN: &str = "osb_sealed_0123456789abcdef0123456789abcdef";

    fn material() -> SecretMaterial {
        SecretMaterial {
            name: "OPENAI_API_KEY".into(),
            sealed_token: TOKEN.into(),
            value: VALUE.to_vec(),
            allowed_hosts: vec!["api.openai.com".into()],
            version: 3,
        }
    }

    fn assert_clean(printed: &str) {
        assert!(
            !printed.contains("sk-live-canary"),
            "value leaked: {printed}"
        );
        assert!(!printed.contains(TOKEN), "token leaked: {printed}");
        // The bytes printed as a list of numbers would be the derive's default: also refused.
        assert!(
            !printed.contains("115, 107"),
            "value bytes leaked: {printed}"
        );
    }

    #[test]
    fn register_session_debug_hides_values_and_tokens() {
        let request = RegisterSessionRequest {
            idempotency_key: "k".into(),
            sandbox_id: "sbx_1".into(),
            source_address: "10.0.0.2".into(),
            secrets: vec![material()],
            egress_allowlist: vec![],
        };
        let printed = format!("{request:?} {request:#?}");
        assert_clean(&printed);
        assert!(printed.contains("OPENAI_API_KEY"));
        assert!(printed.contains(REDACTED));
        assert!(printed.contains("01234567…"));
    }

    #[test]
    fn staged_values_debug_hides_values_and_tokens() {
        let request = StageValuesRequest {
            idempotency_key: "sga_1:boot_sandbox:do".into(),
            sandbox_id: "sbx_1".into(),
            user_envs: [("DB_PASSWORD".to_owned(), "sk-live-canary-env".to_owned())].into(),
            sealed_envs: vec![SealedEnv {
                name: "OPENAI_API_KEY".into(),
                sealed_token: TOKEN.into(),
            }],
            secrets: vec![material()],
        };
        let printed = format!("{request:?} {request:#?}");
        assert_clean(&printed);
        assert!(printed.contains("DB_PASSWORD") && printed.contains("OPENAI_API_KEY"));
    }

    #[test]
    fn update_debug_hides_the_value() {
        let request = UpdateSecretValueRequest {
            sandbox_id: "sbx_1".into(),
            name: "OPENAI_API_KEY".into(),
            value: VALUE.to_vec(),
            version: 4,
            allowed_hosts: Some(HostList {
                patterns: vec!["*.openai.com".into()],
            }),
        };
        let printed = format!("{request:?}");
        assert_clean(&printed);
        assert!(printed.contains("*.openai.com"));
    }

    #[test]
    fn malformed_token_prints_redacted_not_the_text() {
        let spec = SandboxSpec {
            sealed_envs: vec![SealedEnv {
                name: "KEY".into(),
                sealed_token: "sk-live-canary-in-the-wrong-field".into(),
            }],
            ..SandboxSpec::default()
        };
        let printed = format!("{spec:?}");
        assert_clean(&printed);
        assert!(printed.contains(REDACTED));
    }
}
