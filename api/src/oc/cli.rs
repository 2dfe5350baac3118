//! `oc` arguments and dispatch. Exit codes: 0 ok, 1 failure, 2 bad usage or input, 3 missing or
//! wrong API key, 4 not found, 5 conflict.

use std::io::{IsTerminal, Read, Write};

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Map, Value};

use super::client::{ApiClient, ApiResponse, API_KEY_ENV, API_URL_ENV, DEFAULT_API_URL};
use super::output::{object, table};

pub const EXIT_USAGE: i32 = 2;
pub const EXIT_AUTH: i32 = 3;
pub const EXIT_NOT_FOUND: i32 = 4;
pub const EXIT_CONFLICT: i32 = 5;

/// OpenSandbox CLI.
#[derive(Debug, Parser)]
#[command(name = "oc", version, about = "OpenSandbox CLI: projects, secrets and sandboxes", long_about = None)]
pub struct OcCli {
    /// Print the API's JSON instead of tables
    #[arg(long, global = true)]
    json: bool,
    /// API base URL (or OPENSANDBOX_API_URL)
    #[arg(long, global = true, env = API_URL_ENV, default_value = DEFAULT_API_URL)]
    api_url: String,
    #[command(subcommand)]
    command: OcCommand,
}

#[derive(Debug, Subcommand)]
enum OcCommand {
    /// Manage projects
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Manage a project's secrets (values are read from stdin, never from arguments)
    #[command(subcommand)]
    Secret(SecretCommand),
}

#[derive(Debug, Args)]
struct ProjectFields {
    /// Allowed egress host pattern (repeatable): host, *.suffix, optional :port
    #[arg(long = "allow")]
    allow: Vec<String>,
    /// CPUs per sandbox
    #[arg(long)]
    cpu: Option<u32>,
    /// Memory per sandbox in MiB
    #[arg(long)]
    memory_mb: Option<u32>,
    /// Sandbox timeout in seconds
    #[arg(long)]
    timeout_sec: Option<u32>,
}

#[derive(Debug, Subcommand)]
enum ProjectCommand {
    /// Create a project
    Create {
        name: String,
        #[command(flatten)]
        fields: ProjectFields,
    },
    /// List projects
    List,
    /// Show one project (by name or id)
    Get { project: String },
    /// Change a project; --allow replaces the allowlist, --clear-allowlist empties it
    Update {
        project: String,
        #[command(flatten)]
        fields: ProjectFields,
        #[arg(long, conflicts_with = "allow")]
        clear_allowlist: bool,
    },
    /// Delete a project and its secrets
    Delete { project: String },
}

#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// Set a secret; the value is read from stdin (e.g. `printf %s "$KEY" | oc secret set web API_KEY`)
    Set {
        project: String,
        name: String,
        /// Host the secret may be sent to (repeatable); default: the project's allowlist
        #[arg(long = "allowed-host")]
        allowed_hosts: Vec<String>,
    },
    /// List a project's secrets (names, hosts, versions; never values)
    List { project: String },
    /// Delete a secret
    Delete { project: String, name: String },
}

/// A command's failure: message and exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: i32,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: EXIT_USAGE,
    }
}

fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn expect(response: ApiResponse, ok: &[u16]) -> Result<Value, Failure> {
    if ok.contains(&response.status) {
        return Ok(response.body);
    }
    let sentence = response.body["error"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("the API answered {}", response.status));
    let code = response.body["code"].as_str().unwrap_or("unknown");
    let exit = match response.status {
        400 | 413 | 422 => EXIT_USAGE,
        401 | 403 => EXIT_AUTH,
        404 => EXIT_NOT_FOUND,
        409 => EXIT_CONFLICT,
        _ => 1,
    };
    let hint = if response.status == 401 {
        format!("; export {API_KEY_ENV}=<key> (create one with `osbd admin create-org`)")
    } else {
        String::new()
    };
    Err(Failure {
        message: format!("{sentence} ({code}){hint}"),
        code: exit,
    })
}

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

const PROJECT_FIELDS: &[&str] = &[
    "id",
    "name",
    "egressAllowlist",
    "cpuCount",
    "memoryMB",
    "timeoutSec",
    "createdAt",
];

/// Runs a parsed command; `stdin` supplies secret values. Returns what to print on stdout.
pub fn run(cli: OcCli, stdin: &mut dyn Read, stdin_is_terminal: bool) -> Result<String, Failure> {
    let key = std::env::var(API_KEY_ENV)
        .ok()
        .filter(|key| !key.is_empty());
    let client = ApiClient::new(&cli.api_url, key);
    let call = |method: &str, path: &str, body: Option<&Value>| {
        client.call(method, path, body).map_err(|error| Failure {
            message: error.to_string(),
            code: 1,
        })
    };
    let (value, human) = match cli.command {
        OcCommand::Project(ProjectCommand::Create { name, fields }) => {
            let mut map = Map::new();
            map.insert("name".into(), json!(name));
            fields_json(&fields, &mut map);
            let value = expect(
                call("POST", "/projects", Some(&Value::Object(map)))?,
                &[201],
            )?;
            let human = object(&value, PROJECT_FIELDS);
            (value, human)
        }
        OcCommand::Project(ProjectCommand::List) => {
            let value = expect(call("GET", "/projects", None)?, &[200])?;
            let human = table(
                &value,
                &["name", "id", "egressAllowlist", "cpuCount", "memoryMB"],
            );
            (value, human)
        }
        OcCommand::Project(ProjectCommand::Get { project }) => {
            let value = expect(
                call("GET", &format!("/projects/{}", encode(&project)), None)?,
                &[200],
            )?;
            let human = object(&value, PROJECT_FIELDS);
            (value, human)
        }
        OcCommand::Project(ProjectCommand::Update {
            project,
            fields,
            clear_allowlist,
        }) => {
            let mut map = Map::new();
            fields_json(&fields, &mut map);
            if clear_allowlist {
                map.insert("egressAllowlist".into(), json!([]));
            }
            if map.is_empty() {
                return Err(usage("nothing to update: give --allow, --clear-allowlist, --cpu, --memory-mb or --timeout-sec"));
            }
            let path = format!("/projects/{}", encode(&project));
            let value = expect(call("PATCH", &path, Some(&Value::Object(map)))?, &[200])?;
            let human = object(&value, PROJECT_FIELDS);
            (value, human)
        }
        OcCommand::Project(ProjectCommand::Delete { project }) => {
            expect(
                call("DELETE", &format!("/projects/{}", encode(&project)), None)?,
                &[204],
            )?;
            (
                json!({ "deleted": project }),
                format!("deleted project {project}\n"),
            )
        }
        OcCommand::Secret(SecretCommand::Set {
            project,
            name,
            allowed_hosts,
        }) => {
            if stdin_is_terminal {
                return Err(usage(format!(
                    "oc reads the secret value from stdin, not from the terminal or an argument: printf %s \"$VALUE\" | oc secret set {project} {name}"
                )));
            }
            let mut value = String::new();
            stdin
                .read_to_string(&mut value)
                .map_err(|error| usage(format!("cannot read the value from stdin: {error}")))?;
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
            let response = call("PUT", &path, Some(&body));
            body["value"] = Value::Null;
            let value = expect(response?, &[200, 201])?;
            let human = format!(
                "secret {} set (version {})\n",
                value["name"].as_str().unwrap_or(&name),
                value["version"]
            );
            (value, human)
        }
        OcCommand::Secret(SecretCommand::List { project }) => {
            let path = format!("/projects/{}/secrets", encode(&project));
            let value = expect(call("GET", &path, None)?, &[200])?;
            let human = table(&value, &["name", "version", "allowedHosts", "updatedAt"]);
            (value, human)
        }
        OcCommand::Secret(SecretCommand::Delete { project, name }) => {
            let path = format!("/projects/{}/secrets/{}", encode(&project), encode(&name));
            expect(call("DELETE", &path, None)?, &[204])?;
            (
                json!({ "deleted": name }),
                format!("deleted secret {name}\n"),
            )
        }
    };
    if cli.json {
        Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ))
    } else {
        Ok(human)
    }
}

/// Whether stdin is a terminal (the binary passes this in so tests can decide).
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Writes the outcome and returns the exit code.
pub fn finish(outcome: Result<String, Failure>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match outcome {
        Ok(text) => {
            let _ = out.write_all(text.as_bytes());
            0
        }
        Err(failure) => {
            let _ = writeln!(err, "error: {}", failure.message);
            failure.code
        }
    }
}
