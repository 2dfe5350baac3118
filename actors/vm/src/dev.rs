//! placeholder
#[derive(Debug)]
pub struct DevelopmentRuntime;
