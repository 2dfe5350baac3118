//! `oc secret set|list|delete`. A value is read from stdin only — piped or redirected, or typed at
//! a hidden prompt when stdin is a terminal — never from an argument, which would land in shell
//! history and process listings. The value is sent once and dropped; it is never printed, not
//! even in errors, and `list` shows names, hosts and versions only.

use serde_json::json;

use super::cli::SecretCommand;
use super::failure::Failure;
use super::prompt::read_hidden;
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
            // No key means a refusal: say so before asking for the value.
            ctx.require_key()?;
            let value = read_value(&project, &name, ctx)?;
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

/// The value: typed at a hidden prompt on a terminal, else all of stdin less one trailing newline
/// (which comes from `echo`; the value itself keeps its bytes).
fn read_value(project: &str, name: &str, ctx: &mut Ctx<'_>) -> Result<String, Failure> {
    let cannot_read = |error: std::io::Error| {
        Failure::usage(format!(
            "cannot read the value of {name}: {error}; pipe it in instead: printf %s \"$VALUE\" | oc secret set {project} {name}"
        ))
    };
    let value = if ctx.stdin_is_terminal {
        let prompt = format!("value of {name} (input hidden): ");
        read_hidden(&prompt, ctx.stdin, ctx.err).map_err(cannot_read)?
    } else {
        let mut value = String::new();
        ctx.stdin.read_to_string(&mut value).map_err(cannot_read)?;
        if value.ends_with('\n') {
            value.pop();
            if value.ends_with('\r') {
                value.pop();
            }
        }
        value
    };
    if value.is_empty() {
        return Err(Failure::usage(format!(
            "no value given for {name}: type it at the prompt or pipe it in (printf %s \"$VALUE\" | oc secret set {project} {name})"
        )));
    }
    Ok(value)
}
