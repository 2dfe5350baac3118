//! placeholder
pub fn select_runtime() {}
