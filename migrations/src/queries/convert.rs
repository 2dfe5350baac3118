//! Conversions between stored column types and record types, with clear errors for rows that
//! do not fit (a negative count, a malformed JSON list).

use crate::error::StoreError;

pub(crate) fn to_u32(value: i32, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::corrupt(what, format!("negative value {value}")))
}

pub(crate) fn to_i32(value: u32, what: &str) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| StoreError::corrupt(what, format!("{value} is too large")))
}

pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(what, format!("negative value {value}")))
}

pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::corrupt(what, format!("{value} is too large")))
}

pub(crate) fn to_u16(value: i32, what: &str) -> Result<u16, StoreError> {
    u16::try_from(value).map_err(|_| StoreError::corrupt(what, format!("{value} is out of range")))
}

pub(crate) fn to_i16(value: u16, what: &str) -> Result<i16, StoreError> {
    i16::try_from(value).map_err(|_| StoreError::corrupt(what, format!("{value} is too large")))
}

pub(crate) fn string_list_to_json(list: &[String]) -> serde_json::Value {
    serde_json::Value::Array(
        list.iter()
            .map(|item| serde_json::Value::String(item.clone()))
            .collect(),
    )
}

pub(crate) fn json_to_string_list(
    value: &serde_json::Value,
    what: &str,
) -> Result<Vec<String>, StoreError> {
    let items = value
        .as_array()
        .ok_or_else(|| StoreError::corrupt(what, "not a JSON array"))?;
    items
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_owned)
                .ok_or_else(|| StoreError::corrupt(what, "array item is not a string"))
        })
        .collect()
}

/// The current time at the precision every supported engine stores (microseconds), so a
/// record returned by a write equals the same record read back.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
