//! Reads the gRPC security settings from the environment through a lookup function (so tests
//! pass a map): all three TLS paths → mutual TLS; none → refused unless plaintext on loopback is
//! explicitly allowed; anything in between → a startup error naming the missing variables. The
//! reference system silently fell back to plaintext here; this module must never do that.

use std::path::PathBuf;

use super::error::GrpcConfigError;

/// PEM file of the CA that signs every control-plane and worker certificate.
pub const TLS_CA_ENV: &str = "OPENSANDBOX_GRPC_TLS_CA";
/// PEM file of this process's certificate (chain).
pub const TLS_CERT_ENV: &str = "OPENSANDBOX_GRPC_TLS_CERT";
/// PEM file of this process's private key (keep it mode 0600).
pub const TLS_KEY_ENV: &str = "OPENSANDBOX_GRPC_TLS_KEY";
/// Development only: `1` allows plaintext gRPC when every address involved is loopback.
pub const INSECURE_LOOPBACK_ENV: &str = "OPENSANDBOX_GRPC_INSECURE_LOOPBACK";

/// Where the mutual TLS material lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What the environment asks for. Load it into a [`super::GrpcSecurity`] with `load`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcSecurityConfig {
    /// Mutual TLS 1.3 with the given files.
    MutualTls(TlsPaths),
    /// Plaintext, allowed only on loopback addresses (checked where addresses are known).
    InsecureLoopback,
}

impl GrpcSecurityConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, GrpcConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (an empty or blank value counts as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, GrpcConfigError> {
        let read = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let variables = [TLS_CA_ENV, TLS_CERT_ENV, TLS_KEY_ENV];
        let values = variables.map(&read);
        let insecure = match read(INSECURE_LOOPBACK_ENV) {
            None => false,
            Some(given) => parse_flag(INSECURE_LOOPBACK_ENV, &given)?,
        };
        let present: Vec<&'static str> = variables
            .iter()
            .zip(&values)
            .filter(|(_, value)| value.is_some())
            .map(|(name, _)| *name)
            .collect();
        let missing: Vec<&'static str> = variables
            .iter()
            .zip(&values)
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| *name)
            .collect();
        if !present.is_empty() && !missing.is_empty() {
            return Err(GrpcConfigError::PartialTls { missing, present });
        }
        match values {
            [Some(ca), Some(cert), Some(key)] if !insecure => Ok(Self::MutualTls(TlsPaths {
                ca: PathBuf::from(ca),
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            })),
            [Some(_), Some(_), Some(_)] => Err(GrpcConfigError::TlsAndInsecure),
            _ if insecure => Ok(Self::InsecureLoopback),
            _ => Err(GrpcConfigError::NotConfigured),
        }
    }
}

fn parse_flag(name: &'static str, given: &str) -> Result<bool, GrpcConfigError> {
    match given.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(GrpcConfigError::InvalidFlag {
            name,
            given: given.chars().take(40).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<GrpcSecurityConfig, GrpcConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        GrpcSecurityConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn all_three_paths_mean_mutual_tls() {
        let parsed = config(&[
            (TLS_CA_ENV, "/a"),
            (TLS_CERT_ENV, "/b"),
            (TLS_KEY_ENV, "/c"),
        ]);
        assert_eq!(
            parsed,
            Ok(GrpcSecurityConfig::MutualTls(TlsPaths {
                ca: "/a".into(),
                cert: "/b".into(),
                key: "/c".into(),
            }))
        );
    }

    #[test]
    fn every_partial_combination_names_what_is_missing() {
        let all = [TLS_CA_ENV, TLS_CERT_ENV, TLS_KEY_ENV];
        for mask in 1..7u8 {
            let pairs: Vec<(&str, &str)> = all
                .iter()
                .enumerate()
                .filter(|(index, _)| mask & (1 << index) != 0)
                .map(|(_, name)| (*name, "/x.pem"))
                .collect();
            // The plaintext flag never rescues a partial configuration.
            for flag in [None, Some("1")] {
                let mut with_flag = pairs.clone();
                if let Some(value) = flag {
                    with_flag.push((INSECURE_LOOPBACK_ENV, value));
                }
                let error = config(&with_flag).expect_err("partial config refused");
                let message = error.to_string();
                for (index, name) in all.iter().enumerate() {
                    if mask & (1 << index) == 0 {
                        assert!(message.contains(name), "{message} names {name}");
                    }
                }
                assert!(matches!(error, GrpcConfigError::PartialTls { .. }));
            }
        }
    }

    #[test]
    fn nothing_set_is_refused_unless_plaintext_is_explicit() {
        assert_eq!(config(&[]), Err(GrpcConfigError::NotConfigured));
        assert_eq!(
            config(&[(INSECURE_LOOPBACK_ENV, "0")]),
            Err(GrpcConfigError::NotConfigured)
        );
        assert_eq!(
            config(&[(INSECURE_LOOPBACK_ENV, "1")]),
            Ok(GrpcSecurityConfig::InsecureLoopback)
        );
        assert!(matches!(
            config(&[(INSECURE_LOOPBACK_ENV, "maybe")]),
            Err(GrpcConfigError::InvalidFlag { .. })
        ));
    }

    #[test]
    fn blank_values_count_as_unset() {
        let parsed = config(&[(TLS_CA_ENV, "/a"), (TLS_CERT_ENV, " "), (TLS_KEY_ENV, "/c")]);
        assert_eq!(
            parsed,
            Err(GrpcConfigError::PartialTls {
                missing: vec![TLS_CERT_ENV],
                present: vec![TLS_CA_ENV, TLS_KEY_ENV],
            })
        );
    }

    #[test]
    fn tls_and_plaintext_together_are_ambiguous() {
        let parsed = config(&[
            (TLS_CA_ENV, "/a"),
            (TLS_CERT_ENV, "/b"),
            (TLS_KEY_ENV, "/c"),
            (INSECURE_LOOPBACK_ENV, "1"),
        ]);
        assert_eq!(parsed, Err(GrpcConfigError::TlsAndInsecure));
    }
}
