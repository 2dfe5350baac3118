//! Request fields that have two names: the canonical one and an alias (the reference system's
//! sandbox-create names `templateID` and `timeout`, and the deprecated `checkpointId` /
//! `sandboxId` spellings of `checkpointID` / `sandboxID`). Either name may be sent; both with
//! the same value is fine; both with different values is a 400 naming the two fields, never a
//! silent choice. Also the bounds of sandbox `metadata`.

use std::collections::BTreeMap;

use super::error::ApiError;

/// One value from a canonical field and its alias.
pub fn either<T: PartialEq>(
    (canonical_name, canonical): (&str, Option<T>),
    (alias_name, alias): (&str, Option<T>),
) -> Result<Option<T>, ApiError> {
    match (canonical, alias) {
        (Some(one), Some(other)) if one != other => Err(ApiError::invalid(format!(
            "{canonical_name} and {alias_name} name the same field but differ; send only {canonical_name}"
        ))),
        (Some(one), _) | (None, Some(one)) => Ok(Some(one)),
        (None, None) => Ok(None),
    }
}

/// Like [`either`], for a field that is required.
pub fn required<T: PartialEq>(
    canonical: (&str, Option<T>),
    alias: (&str, Option<T>),
) -> Result<T, ApiError> {
    let name = canonical.0.to_owned();
    either(canonical, alias)?.ok_or_else(|| ApiError::invalid(format!("{name} is required")))
}

/// Most metadata entries per sandbox, and the longest key and value (in characters).
pub const MAX_METADATA_KEYS: usize = 64;
pub const MAX_METADATA_KEY: usize = 64;
pub const MAX_METADATA_VALUE: usize = 512;

/// Sandbox metadata: at most 64 entries, keys of 1-64 characters, values of at most 512
/// characters, no control characters (they would corrupt logs and tables).
pub fn metadata(
    entries: Option<BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let entries = entries.unwrap_or_default();
    if entries.len() > MAX_METADATA_KEYS {
        return Err(ApiError::invalid(format!(
            "metadata has {} keys; the limit is {MAX_METADATA_KEYS}",
            entries.len()
        )));
    }
    for (key, value) in &entries {
        let shown: String = key.chars().take(40).collect();
        let key_length = key.chars().count();
        if key_length == 0 || key_length > MAX_METADATA_KEY {
            return Err(ApiError::invalid(format!(
                "metadata key {shown:?} must be 1-{MAX_METADATA_KEY} characters"
            )));
        }
        if value.chars().count() > MAX_METADATA_VALUE {
            return Err(ApiError::invalid(format!(
                "metadata.{shown} must be at most {MAX_METADATA_VALUE} characters"
            )));
        }
        if key.chars().chain(value.chars()).any(char::is_control) {
            return Err(ApiError::invalid(format!(
                "metadata.{shown} must not contain control characters"
            )));
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_agree_or_are_refused() {
        assert_eq!(either(("a", Some(1)), ("b", None)).unwrap(), Some(1));
        assert_eq!(either(("a", None), ("b", Some(2))).unwrap(), Some(2));
        assert_eq!(either(("a", Some(3)), ("b", Some(3))).unwrap(), Some(3));
        assert_eq!(either::<u8>(("a", None), ("b", None)).unwrap(), None);
        let error = either(("timeoutSec", Some(1)), ("timeout", Some(2))).unwrap_err();
        assert!(error.message.contains("timeoutSec") && error.message.contains("timeout"));
        assert!(
            required::<u8>(("checkpointID", None), ("checkpointId", None))
                .unwrap_err()
                .message
                .contains("checkpointID is required")
        );
    }

    #[test]
    fn metadata_is_bounded() {
        let many: BTreeMap<String, String> =
            (0..65).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(metadata(Some(many)).is_err());
        for (key, value) in [
            (String::new(), String::new()),
            ("k".repeat(65), String::new()),
            ("k".into(), "v".repeat(513)),
            ("k".into(), "a\nb".into()),
        ] {
            assert!(metadata(Some(BTreeMap::from([(key, value)]))).is_err());
        }
        let fine = BTreeMap::from([("k".repeat(64), "é".repeat(512))]);
        assert_eq!(metadata(Some(fine.clone())).unwrap(), fine);
    }
}
