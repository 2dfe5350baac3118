//! `oc secret set|list|delete`. A value is read from stdin only — never from an argument, which
//! would land in shell history and process listings — and refused when stdin is a terminal (a
//! pipe or redirect is the only way in). The value is sent once and dropped; it is never printed,
//! not even in errors, and `list` shows names, hosts and versions only.

use serde_json::json;

use super::cli::SecretCommand;
use super::failure::Failure;
use super::render::table;
use super::run::{encode, Call, Ctx, Done};

const LIST: &str = "oc project list` and `oc secret list PROJECT";

pub(crate) fn run(command: SecretCommand, ctx: &mut Ctx<'_>) -> Result<Done, Failure> {
    match command {
        SecretCommand::Set {
            project,
            name,
            allowed_hosts,
        } => {
            if ctx.stdin_is_terminal {
                return Err(Failure::usage(format!(
                    "oc reads the secret value from stdin, not from the terminal or an argument: printf %s \"$VALUE\" | oc secret set {project} {name}"
                )));
            }
            let mut value = String::new();
            ctx.stdin.read_to_string(&mut value).map_err(|error| {
                Failure::usage(format!("cannot read the value from stdin: {error}"))
            })?;
            // A single trailing newline comes from `echo`; the value itself keeps its bytes.
            if value.ends_with('\n') {
                value.pop();
                if value.ends_with('\r') {
                    value.pop();
                }
            }
            let mut body = json!({ "value": value });
            drop(value);
            if !allowed_hosts.is_empty() {
                body["allowedHosts"] = json!(allowed_hosts);
            }
            let path = format!("/projects/{}/secrets/{}", encode(&project), encode(&name));
            let call = Call::new("PUT", path, &[200, 201])
                .body(body)
                .listed_by("oc project list");
            let value = ctx.send(call)?;
            let human = format!(
                "secret {} set (version {})\n",
                value["name"].as_str().unwrap_or(&name),
                value["version"]
            );
            Ok(Done::Show { value, human })
        }
        SecretCommand::List { project } => {
            let call = Call::get(format!("/projects/{}/secrets", encode(&project)))
                .listed_by("oc project list");
            let value = ctx.send(call)?;
            let human = table(&value, &["name", "version", "allowedHosts", "updatedAt"]);
            Ok(Done::Show { value, human })
        }
        SecretCommand::Delete { project, name } => {
            let path = format!("/projects/{}/secrets/{}", encode(&project), encode(&name));
            ctx.send(Call::new("DELETE", path, &[204]).listed_by(LIST))?;
            Ok(Done::Show {
                value: json!({ "deleted": name }),
                human: format!("deleted secret {name}\n"),
            })
        }
    }
}
