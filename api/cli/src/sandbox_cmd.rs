//! Sandbox lifecycle: `oc create`, `oc sandbox list|get|kill|allowed-hosts`, `oc restore` and
//! `oc fork`. Create and fork print only the new sandbox id on stdout (so `ID=$(oc create …)`
//! works) and any platform warning on stderr; the calls that boot a sandbox wait with the long
//! timeout and a spinner. Envs given here are plain; this module never sends or shows a secret.

use serde_json::{json, Map, Value};

use super::cli::{CreateArgs, ForkArgs, SandboxCommand};
use super::client::{CallOptions, LONG_TIMEOUT};
use super::envs::env_object;
use super::failure::Failure;
use super::render::{object, table};
use super::run::{encode, Call, Ctx, Done};

const LIST: &str = "oc sandbox list";

const SANDBOX_FIELDS: &[&str] = &[
    "sandboxID",
    "status",
    "project",
    "projectID",
    "template",
    "workerID",
    "cpuCount",
    "memoryMB",
    "timeoutSec",
    "runtime",
    "egress",
    "warning",
    "failureReason",
    "createdAt",
    "updatedAt",
];

const SANDBOX_COLUMNS: &[&str] = &[
    "sandboxID",
    "status",
    "project",
    "template",
    "egress",
    "createdAt",
];

pub(crate) fn create(args: CreateArgs, ctx: &mut Ctx<'_>) -> Result<Done, Failure> {
    let envs = env_object(&args.envs)?;
    let mut body = Map::new();
    body.insert("project".into(), json!(args.project));
    let optional = [
        ("template", args.template.map(Value::from)),
        ("snapshot", args.snapshot.map(Value::from)),
        ("cpuCount", args.cpu.map(Value::from)),
        ("memoryMB", args.memory_mb.map(Value::from)),
        ("timeoutSec", args.timeout_sec.map(Value::from)),
    ];
    for (field, value) in optional {
        if let Some(value) = value {
            body.insert(field.into(), value);
        }
    }
    if !envs.is_empty() {
        body.insert("envs".into(), Value::Object(envs));
    }
    let options = CallOptions {
        timeout: LONG_TIMEOUT,
        idempotency_key: args.idempotency_key,
    };
    let call = Call::new("POST", "/sandboxes".into(), &[200, 201])
        .body(Value::Object(body))
        .listed_by("oc project list` or `oc snapshot list")
        .long(options, format!("creating a sandbox in {}", args.project));
    let sandbox = ctx.send(call)?;
    Ok(new_sandbox(sandbox, ctx))
}

pub(crate) fn fork(args: ForkArgs, ctx: &mut Ctx<'_>) -> Result<Done, Failure> {
    let envs = env_object(&args.envs)?;
    let mut body = Map::new();
    if let Some(project) = args.project {
        body.insert("project".into(), json!(project));
    }
    if !envs.is_empty() {
        body.insert("envs".into(), Value::Object(envs));
    }
    let path = format!("/sandboxes/from-checkpoint/{}", encode(&args.checkpoint));
    let call = Call::new("POST", path, &[200, 201])
        .body(Value::Object(body))
        .listed_by("oc checkpoint list SANDBOX")
        .long(
            CallOptions::long(LONG_TIMEOUT),
            format!("forking {}", args.checkpoint),
        );
    let sandbox = ctx.send(call)?;
    Ok(new_sandbox(sandbox, ctx))
}

pub(crate) fn restore(sandbox: &str, checkpoint: &str, ctx: &mut Ctx<'_>) -> Result<Done, Failure> {
    let path = format!("/sandboxes/{}/restore", encode(sandbox));
    let call = Call::new("POST", path, &[200])
        .body(json!({ "checkpointID": checkpoint }))
        .listed_by("oc sandbox list` and `oc checkpoint list SANDBOX")
        .long(
            CallOptions::long(LONG_TIMEOUT),
            format!("restoring {sandbox} from {checkpoint}"),
        );
    let value = ctx.send(call)?;
    warn(&value, ctx);
    let human = format!(
        "sandbox {} restored from {checkpoint} ({})\n",
        text(&value, "sandboxID", sandbox),
        text(&value, "status", "?")
    );
    Ok(Done::Show { value, human })
}

pub(crate) fn run(command: SandboxCommand, ctx: &mut Ctx<'_>) -> Result<Done, Failure> {
    match command {
        SandboxCommand::List => {
            let value = ctx.send(Call::get("/sandboxes".into()))?;
            let human = table(&value, SANDBOX_COLUMNS);
            Ok(Done::Show { value, human })
        }
        SandboxCommand::Get { sandbox } => {
            let call = Call::get(format!("/sandboxes/{}", encode(&sandbox))).listed_by(LIST);
            let value = ctx.send(call)?;
            let human = object(&value, SANDBOX_FIELDS);
            Ok(Done::Show { value, human })
        }
        SandboxCommand::Kill { sandbox } => {
            let call = Call::new(
                "DELETE",
                format!("/sandboxes/{}", encode(&sandbox)),
                &[200, 204],
            )
            .listed_by(LIST)
            .long(
                CallOptions::long(LONG_TIMEOUT),
                format!("destroying {sandbox}"),
            );
            let value = ctx.send(call)?;
            let human = format!(
                "sandbox {} {}\n",
                text(&value, "sandboxID", &sandbox),
                text(&value, "status", "destroyed")
            );
            Ok(Done::Show { value, human })
        }
        SandboxCommand::AllowedHosts { sandbox } => {
            let call =
                Call::get(format!("/sandboxes/{}/allowed-hosts", encode(&sandbox))).listed_by(LIST);
            let value = ctx.send(call)?;
            let mut human = format!(
                "egress allowlist: {}\n",
                super::render::cell(&value["egressAllowlist"])
            );
            if value["secrets"]
                .as_array()
                .is_some_and(|list| !list.is_empty())
            {
                human.push_str(&table(&value["secrets"], &["name", "allowedHosts"]));
            }
            Ok(Done::Show { value, human })
        }
    }
}

/// Prints the new sandbox's id (its human rendering) after showing any warning.
fn new_sandbox(sandbox: Value, ctx: &mut Ctx<'_>) -> Done {
    warn(&sandbox, ctx);
    let human = format!("{}\n", text(&sandbox, "sandboxID", "?"));
    Done::Show {
        value: sandbox,
        human,
    }
}

/// The platform's warning about a sandbox (e.g. cooperative egress) goes to stderr.
fn warn(sandbox: &Value, ctx: &mut Ctx<'_>) {
    if let Some(warning) = sandbox["warning"].as_str().filter(|text| !text.is_empty()) {
        let _ = writeln!(ctx.err, "warning: {warning}");
    }
}

fn text<'v>(value: &'v Value, field: &str, fallback: &'v str) -> &'v str {
    value[field].as_str().unwrap_or(fallback)
}
