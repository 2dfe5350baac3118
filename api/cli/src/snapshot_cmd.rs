//! Checkpoints and golden snapshots: `oc checkpoint create|list|delete` and
//! `oc snapshot create|list|delete`.
//! `checkpoint create` prints only the checkpoint id, for scripts. Checkpoints hold names and
//! token ids, never secret values; this module only relays what the API returns.

use serde_json::json;

use super::cli::{CheckpointCommand, SnapshotCommand};
use super::client::{CallOptions, LONG_TIMEOUT};
use super::failure::Failure;
use super::render::table;
use super::run::{encode, Call, Ctx, Done};

pub(crate) fn checkpoint(command: CheckpointCommand, ctx: &mut Ctx<'_>) -> Result<Done, Failure> {
    match command {
        CheckpointCommand::Create { sandbox } => {
            let path = format!("/sandboxes/{}/checkpoints", encode(&sandbox));
            let call = Call::new("POST", path, &[200, 201])
                .listed_by("oc sandbox list")
                .long(
                    CallOptions::long(LONG_TIMEOUT),
                    format!("checkpointing {sandbox}"),
                );
            let value = ctx.send(call)?;
            let human = format!("{}\n", value["checkpointID"].as_str().unwrap_or("?"));
            Ok(Done::Show { value, human })
        }
        CheckpointCommand::List { sandbox } => {
            let path = format!("/sandboxes/{}/checkpoints", encode(&sandbox));
            let value = ctx.send(Call::get(path).listed_by("oc sandbox list"))?;
            let human = table(&value, &["checkpointID", "sandboxID", "createdAt"]);
            Ok(Done::Show { value, human })
        }
        CheckpointCommand::Delete {
            sandbox,
            checkpoint,
        } => {
            let path = format!(
                "/sandboxes/{}/checkpoints/{}",
                encode(&sandbox),
                encode(&checkpoint)
            );
            let call = Call::new("DELETE", path, &[204])
                .listed_by("oc checkpoint list SANDBOX")
                .long(
                    CallOptions::long(LONG_TIMEOUT),
                    format!("deleting {checkpoint}"),
                );
            let value = ctx.send(call)?;
            let human = format!("checkpoint {checkpoint} deleted\n");
            Ok(Done::Show { value, human })
        }
    }
}

pub(crate) fn snapshot(command: SnapshotCommand, ctx: &mut Ctx<'_>) -> Result<Done, Failure> {
    match command {
        SnapshotCommand::Create { name, sandbox } => {
            let call = Call::new("POST", "/snapshots".into(), &[200, 201])
                .body(json!({ "name": name, "sandboxID": sandbox }))
                .listed_by("oc sandbox list")
                .long(
                    CallOptions::long(LONG_TIMEOUT),
                    format!("snapshotting {sandbox} as {name}"),
                );
            let value = ctx.send(call)?;
            let human = format!(
                "snapshot {} registered (checkpoint {}); boot it with `oc create --project P --snapshot {}`\n",
                value["name"].as_str().unwrap_or(&name),
                value["checkpointID"].as_str().unwrap_or("?"),
                value["name"].as_str().unwrap_or(&name),
            );
            Ok(Done::Show { value, human })
        }
        SnapshotCommand::List => {
            let value = ctx.send(Call::get("/snapshots".into()))?;
            let human = table(
                &value,
                &["name", "checkpointID", "sandboxID", "workerID", "createdAt"],
            );
            Ok(Done::Show { value, human })
        }
        SnapshotCommand::Delete { name } => {
            let call = Call::new("DELETE", format!("/snapshots/{}", encode(&name)), &[204])
                .listed_by("oc snapshot list")
                .long(
                    CallOptions::long(LONG_TIMEOUT),
                    format!("deleting snapshot {name}"),
                );
            let value = ctx.send(call)?;
            let human = format!("snapshot {name} deleted (with its checkpoint)\n");
            Ok(Done::Show { value, human })
        }
    }
}
