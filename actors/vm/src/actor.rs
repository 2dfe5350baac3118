//! placeholder
#[derive(Debug)]
pub struct VmActor;
