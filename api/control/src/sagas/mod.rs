//! The orchestrated sagas of the control plane (DESIGN.md §3): create (with fork and
//! snapshot boots), destroy, checkpoint, golden snapshot and restore-in-place. Each is a
//! `SagaDefinition<ControlPlane>` run by the `osb-saga` executor, which logs every step in the
//! store before the worker is asked to act. Each step has a typed name (`StepName<Output>`)
//! that later steps and undos read its output through; steps with nothing to undo have none.

mod checkpoint;
mod create;
mod destroy;
pub mod params;
mod restore;
mod session;

pub use checkpoint::{
    checkpoint_saga, snapshot_saga, CHECKPOINT_ON_WORKER, CHECKPOINT_SAGA, RECORD_CHECKPOINT,
    RECORD_SNAPSHOT, SNAPSHOT_SAGA,
};
pub use create::{
    create_saga, BOOT_SANDBOX, CREATE_SAGA, MARK_RUNNING, PLACE_ON_WORKER, REGISTER_SESSION,
    RESOLVE_PROJECT, SEAL_SECRETS,
};
pub use destroy::{destroy_saga, DESTROY_SAGA, DESTROY_SANDBOX};
pub use restore::{restore_saga, CHECK_RESTORABLE, RESTORE_ON_WORKER, RESTORE_SAGA};
