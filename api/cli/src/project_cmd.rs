//! `oc project create|list|get|update|delete`: projects hold a sandbox's defaults and the egress
//! allowlist. This module only maps flags to the REST body (`--allow` → `egressAllowlist`, …) and
//! renders the answer; it never touches secrets.

use serde_json::{json, Map, Value};

use super::cli::{ProjectCommand, ProjectFields};
use super::failure::Failure;
use super::render::{object, table};
use super::run::{encode, Call, Ctx, Done};

const PROJECT_FIELDS: &[&str] = &[
    "id",
    "name",
    "egressAllowlist",
    "cpuCount",
    "memoryMB",
    "timeoutSec",
    "createdAt",
];

const LIST: &str = "oc project list";

fn fields_json(fields: &ProjectFields, map: &mut Map<String, Value>) {
    if !fields.allow.is_empty() {
        map.insert("egressAllowlist".into(), json!(fields.allow));
    }
    if let Some(cpu) = fields.cpu {
        map.insert("cpuCount".into(), json!(cpu));
    }
    if let Some(memory) = fields.memory_mb {
        map.insert("memoryMB".into(), json!(memory));
    }
    if let Some(timeout) = fields.timeout_sec {
        map.insert("timeoutSec".into(), json!(timeout));
    }
}

fn show(value: Value) -> Done {
    let human = object(&value, PROJECT_FIELDS);
    Done::Show { value, human }
}

pub(crate) fn run(command: ProjectCommand, ctx: &mut Ctx<'_>) -> Result<Done, Failure> {
    match command {
        ProjectCommand::Create { name, fields } => {
            let mut map = Map::new();
            map.insert("name".into(), json!(name));
            fields_json(&fields, &mut map);
            let call = Call::new("POST", "/projects".into(), &[201]).body(Value::Object(map));
            Ok(show(ctx.send(call)?))
        }
        ProjectCommand::List => {
            let value = ctx.send(Call::get("/projects".into()))?;
            let human = table(
                &value,
                &["name", "id", "egressAllowlist", "cpuCount", "memoryMB"],
            );
            Ok(Done::Show { value, human })
        }
        ProjectCommand::Get { project } => {
            let call = Call::get(format!("/projects/{}", encode(&project))).listed_by(LIST);
            Ok(show(ctx.send(call)?))
        }
        ProjectCommand::Update {
            project,
            fields,
            clear_allowlist,
        } => {
            let mut map = Map::new();
            fields_json(&fields, &mut map);
            if clear_allowlist {
                map.insert("egressAllowlist".into(), json!([]));
            }
            if map.is_empty() {
                return Err(Failure::usage(
                    "nothing to update: give --allow, --clear-allowlist, --cpu, --memory-mb or --timeout-sec",
                ));
            }
            let call = Call::new("PATCH", format!("/projects/{}", encode(&project)), &[200])
                .body(Value::Object(map))
                .listed_by(LIST);
            Ok(show(ctx.send(call)?))
        }
        ProjectCommand::Delete { project } => {
            let call = Call::new("DELETE", format!("/projects/{}", encode(&project)), &[204])
                .listed_by(LIST);
            ctx.send(call)?;
            Ok(Done::Show {
                value: json!({ "deleted": project }),
                human: format!("deleted project {project}\n"),
            })
        }
    }
}
