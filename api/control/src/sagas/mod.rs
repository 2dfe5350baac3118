//! The orchestrated sagas of the control plane (DESIGN.md §3): create (with fork and
//! snapshot boots), destroy, checkpoint, golden snapshot and restore-in-place. Each is a
//! `SagaDefinition<ControlPlane>` run by the `osb-saga` executor, which logs every step in the
//! store before the worker is asked to act.

mod checkpoint;
mod create;
mod destroy;
pub mod params;
mod restore;
mod session;

pub use checkpoint::{checkpoint_saga, snapshot_saga, CHECKPOINT_SAGA, SNAPSHOT_SAGA};
pub use create::{create_saga, CREATE_SAGA};
pub use destroy::{destroy_saga, DESTROY_SAGA};
pub use restore::{restore_saga, RESTORE_SAGA};
