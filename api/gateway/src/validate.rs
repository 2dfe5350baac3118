//! Input rules shared by the resources: project names, secret names, sandbox sizes, host
//! patterns. Each check returns an `ApiError` naming the field, what is wrong and what is
//! allowed.

use osb_proto::{ErrorCode, HostPattern};

use super::error::ApiError;

/// Longest project name.
pub const MAX_PROJECT_NAME: usize = 63;
/// Longest secret name.
pub const MAX_SECRET_NAME: usize = 128;
/// Most entries in an allowlist.
pub const MAX_HOST_PATTERNS: usize = 256;

/// Environment names the sandbox runtime sets itself; a secret may not shadow them.
pub const RESERVED_ENV_NAMES: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "DENO_CERT",
    "PATH",
    "HOME",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
];

/// Sandbox size bounds.
pub const CPU_RANGE: (u32, u32) = (1, 16);
pub const MEMORY_MB_RANGE: (u32, u32) = (128, 65_536);
pub const TIMEOUT_SEC_RANGE: (u32, u32) = (1, 86_400);

/// Lowercase letters, digits and '-', 1–63 characters, starting and ending with a letter or digit.
pub fn project_name(name: &str) -> Result<String, ApiError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_PROJECT_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(ApiError::invalid(format!(
            "name {:?} is not valid: use 1-{MAX_PROJECT_NAME} lowercase letters, digits and '-', starting and ending with a letter or digit",
            truncate(name)
        )))
    }
}

/// An environment-variable name (`[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters), not one the
/// runtime reserves.
pub fn secret_name(name: &str) -> Result<String, ApiError> {
    let mut bytes = name.bytes();
    let valid = name.len() <= MAX_SECRET_NAME
        && bytes
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(ApiError::invalid(format!(
            "secret name {:?} is not valid: it becomes an environment variable, so use letters, digits and '_' (not starting with a digit), at most {MAX_SECRET_NAME} characters",
            truncate(name)
        )));
    }
    if RESERVED_ENV_NAMES.contains(&name) {
        return Err(ApiError::new(
            ErrorCode::Unprocessable,
            format!(
                "secret name {name} is reserved: the sandbox runtime sets it; choose another name"
            ),
        ));
    }
    Ok(name.to_owned())
}

/// Most user envs per sandbox, and the longest value.
pub const MAX_ENVS: usize = 128;
pub const MAX_ENV_VALUE: usize = 32 * 1024;

/// Plain user envs: env-var names not reserved by the runtime, bounded values without NUL.
pub fn env_vars(
    field: &str,
    envs: &std::collections::BTreeMap<String, String>,
) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    if envs.len() > MAX_ENVS {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "{field} has {} entries; the limit is {MAX_ENVS}",
                envs.len()
            ),
        ));
    }
    for (name, value) in envs {
        let mut bytes = name.bytes();
        let valid = name.len() <= MAX_SECRET_NAME
            && bytes
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(ApiError::invalid(format!(
                "{field} name {:?} is not an environment variable name: use letters, digits and '_' (not starting with a digit)",
                truncate(name)
            )));
        }
        if RESERVED_ENV_NAMES.contains(&name.as_str()) {
            return Err(ApiError::new(
                ErrorCode::Unprocessable,
                format!("{field} name {name} is reserved: the sandbox runtime sets it"),
            ));
        }
        if value.len() > MAX_ENV_VALUE || value.contains('\0') {
            return Err(ApiError::invalid(format!(
                "{field}.{name} must be at most {MAX_ENV_VALUE} bytes without NUL characters"
            )));
        }
    }
    Ok(envs.clone())
}

/// A golden snapshot name: 1-64 of `[A-Za-z0-9._-]`, not starting with '.'.
pub fn snapshot_name(name: &str) -> Result<String, ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(ApiError::invalid(format!(
            "snapshot name {:?} is not valid: use 1-64 letters, digits, '.', '-' and '_', not starting with '.'",
            truncate(name)
        )))
    }
}

/// Parses, normalises and de-duplicates host patterns; `field` names the JSON field.
pub fn host_patterns(field: &str, entries: &[String]) -> Result<Vec<String>, ApiError> {
    if entries.len() > MAX_HOST_PATTERNS {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "{field} has {} entries; the limit is {MAX_HOST_PATTERNS}",
                entries.len()
            ),
        ));
    }
    let mut normalised: Vec<String> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let pattern = HostPattern::parse(entry).map_err(|error| {
            ApiError::invalid(format!(
                "{field}[{index}] is not a valid host pattern: {error}"
            ))
        })?;
        let text = pattern.to_string();
        if !normalised.contains(&text) {
            normalised.push(text);
        }
    }
    Ok(normalised)
}

/// A runtime name (`netns` or `microvm`), or 400 listing the valid names.
pub fn runtime(field: &str, name: &str) -> Result<osb_proto::RuntimeName, ApiError> {
    name.parse()
        .map_err(|error: osb_proto::UnknownRuntime| ApiError::invalid(format!("{field}: {error}")))
}

/// A bounded integer field.
pub fn bounded(field: &str, value: u32, (min, max): (u32, u32)) -> Result<u32, ApiError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{field} must be between {min} and {max}, got {value}"),
        ))
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        assert!(project_name("web-app-2").is_ok());
        for bad in ["", "-a", "a-", "Web", "a_b", "a b", &"x".repeat(64)] {
            assert!(project_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secret_names() {
        assert!(secret_name("ANTHROPIC_API_KEY").is_ok());
        assert!(secret_name("_x1").is_ok());
        for bad in ["", "1A", "A-B", "A B", &"A".repeat(129)] {
            assert_eq!(
                secret_name(bad).unwrap_err().code,
                ErrorCode::InvalidInput,
                "{bad:?}"
            );
        }
        assert_eq!(
            secret_name("HTTPS_PROXY").unwrap_err().code,
            ErrorCode::Unprocessable
        );
    }

    #[test]
    fn host_patterns_are_normalised_and_deduplicated() {
        let out = host_patterns(
            "egressAllowlist",
            &[
                " API.Example.TEST ".into(),
                "api.example.test".into(),
                "*.svc.test:8443".into(),
            ],
        )
        .unwrap();
        assert_eq!(out, ["api.example.test", "*.svc.test:8443"]);
        let error = host_patterns("egressAllowlist", &["*".into()]).unwrap_err();
        assert!(error.message.contains("egressAllowlist[0]"));
    }
}
