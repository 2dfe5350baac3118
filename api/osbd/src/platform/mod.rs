//! The assembled platform: a control-plane node (gateway + placement + sagas) and, beside it
//! in `osb_worker`, a worker node. `osbd up`, `osbd control` and the end-to-end tests build
//! the platform from these pieces, so the embedded default runs the same code as a cluster.

mod control_node;

pub use control_node::{ControlNode, ControlNodeConfig};
