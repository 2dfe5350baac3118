//! Running one parsed `oc` command: resolve where to connect, dispatch to the command's module,
//! print the result (a table, or the API's JSON with `--json`) or the failure, and return the exit
//! code. The terminal, stdin and the output streams are passed in so the binary stays three lines.
//! Nothing here prints a secret value or the API key.

use std::io::{Read, Write};

use clap::CommandFactory;
use serde_json::Value;

use super::cli::{OcCli, OcCommand};
use super::client::{ApiClient, CallOptions, Unreachable};
use super::connection::{resolve, Connection};
use super::failure::{expect, missing_key_hint, Failure, Hints, EXIT_AUTH, EXIT_FAILURE};
use super::spinner::Spinner;
use super::{events_cmd, exec_cmd, project_cmd, sandbox_cmd, secret_cmd, snapshot_cmd};

/// The process's streams and whether stdin and stderr are terminals.
pub struct Io<'a> {
    pub stdin: &'a mut dyn Read,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    pub stdin_is_terminal: bool,
    pub stderr_is_terminal: bool,
}

impl std::fmt::Debug for Io<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Io")
            .field("stdin_is_terminal", &self.stdin_is_terminal)
            .field("stderr_is_terminal", &self.stderr_is_terminal)
            .finish_non_exhaustive()
    }
}

/// What a command produced.
pub(crate) enum Done {
    /// An API object or list, and its human rendering.
    Show { value: Value, human: String },
    /// The command printed its own output; exit with this code.
    Exit(i32),
}

/// One API call of a command: what to send, which statuses mean success, and how to explain a
/// refusal.
pub(crate) struct Call {
    method: &'static str,
    path: String,
    body: Option<Value>,
    ok: &'static [u16],
    list_with: &'static str,
    options: CallOptions,
    spinner: Option<String>,
}

impl Call {
    pub(crate) fn new(method: &'static str, path: String, ok: &'static [u16]) -> Self {
        Self {
            method,
            path,
            body: None,
            ok,
            list_with: "oc --help",
            options: CallOptions::default(),
            spinner: None,
        }
    }

    pub(crate) fn get(path: String) -> Self {
        Self::new("GET", path, &[200])
    }

    pub(crate) fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// The command listing what a 404 did not find.
    pub(crate) fn listed_by(mut self, command: &'static str) -> Self {
        self.list_with = command;
        self
    }

    /// A long call: its own timeout and a spinner with `message` on a terminal.
    pub(crate) fn long(mut self, options: CallOptions, message: String) -> Self {
        self.options = options;
        self.spinner = Some(message);
        self
    }

    /// No spinner: the command's own output follows (exec).
    pub(crate) fn quiet(mut self) -> Self {
        self.spinner = None;
        self
    }
}

/// What every command gets: the API, the output streams and the user's choices.
pub(crate) struct Ctx<'a> {
    pub(crate) api: ApiClient,
    pub(crate) connection: Connection,
    pub(crate) json: bool,
    pub(crate) spinners: bool,
    pub(crate) stdin: &'a mut dyn Read,
    pub(crate) stdin_is_terminal: bool,
    pub(crate) out: &'a mut dyn Write,
    pub(crate) err: &'a mut dyn Write,
}

impl Ctx<'_> {
    /// Sends `call` and returns the body on success, else the explained refusal.
    pub(crate) fn send(&mut self, call: Call) -> Result<Value, Failure> {
        self.require_key()?;
        let spinner = match &call.spinner {
            Some(message) => Spinner::start(self.spinners, message),
            None => Spinner::start(false, ""),
        };
        let response =
            self.api
                .call_with(call.method, &call.path, call.body.as_ref(), &call.options);
        drop(spinner);
        let mut response = response.map_err(|error| self.unreachable(error))?;
        // Lists answer in pages: follow the cursor so a listing shows everything.
        while let (true, Some(cursor), Value::Array(items)) =
            (call.method == "GET", &response.next_cursor, &response.body)
        {
            let mut items = items.clone();
            let separator = if call.path.contains('?') { '&' } else { '?' };
            let path = format!(
                "{}{separator}limit=500&cursor={}",
                call.path,
                encode(cursor)
            );
            let next = self
                .api
                .call_with("GET", &path, None, &call.options)
                .map_err(|error| self.unreachable(error))?;
            if next.status != 200 {
                response = next;
                break;
            }
            if let Value::Array(more) = next.body {
                items.extend(more);
            }
            response.body = Value::Array(items);
            response.next_cursor = next.next_cursor;
        }
        let hints = Hints {
            list_with: call.list_with,
            key_source: &self.connection.key_source,
        };
        expect(response, call.ok, hints)
    }

    /// Refuses to send anything without a key: the API would only answer 401.
    pub(crate) fn require_key(&self) -> Result<(), Failure> {
        match self.connection.key {
            Some(_) => Ok(()),
            None => Err(Failure::new(
                format!("no API key: {}", missing_key_hint()),
                EXIT_AUTH,
            )),
        }
    }

    pub(crate) fn unreachable(&self, error: Unreachable) -> Failure {
        let what_to_do = match error {
            Unreachable::TimedOut { .. } => "check with `oc sandbox list`".to_owned(),
            Unreachable::Connect { .. } => format!(
                "is `osbd up` running? {}",
                self.connection.url_source.how_to_change()
            ),
        };
        Failure::new(format!("{error}; {what_to_do}"), EXIT_FAILURE)
    }
}

/// Runs `cli` and returns the exit code; output and errors go to `io`.
pub fn run(cli: OcCli, io: Io<'_>) -> i32 {
    let Io {
        stdin,
        stdout,
        stderr,
        stdin_is_terminal,
        stderr_is_terminal,
    } = io;
    if let OcCommand::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut OcCli::command(), "oc", stdout);
        return 0;
    }
    let env = |name: &str| std::env::var(name).ok();
    let connection = match resolve(cli.api_url.as_deref(), &env, stderr) {
        Ok(connection) => connection,
        Err(failure) => return report(failure, stderr),
    };
    let api = ApiClient::new(&connection.url, connection.key.clone());
    let json = cli.json;
    let mut ctx = Ctx {
        api,
        connection,
        json,
        spinners: stderr_is_terminal,
        stdin,
        stdin_is_terminal,
        out: stdout,
        err: stderr,
    };
    let outcome = dispatch(cli.command, &mut ctx);
    match outcome {
        Ok(Done::Show { value, human }) => {
            let text = if json {
                format!(
                    "{}\n",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                )
            } else {
                human
            };
            match ctx.out.write_all(text.as_bytes()) {
                Ok(()) => 0,
                Err(_) => EXIT_FAILURE,
            }
        }
        Ok(Done::Exit(code)) => code,
        Err(failure) => report(failure, ctx.err),
    }
}

fn dispatch(command: OcCommand, ctx: &mut Ctx<'_>) -> Result<Done, Failure> {
    match command {
        OcCommand::Project(command) => project_cmd::run(command, ctx),
        OcCommand::Secret(command) => secret_cmd::run(command, ctx),
        OcCommand::Create(args) => sandbox_cmd::create(args, ctx),
        OcCommand::Sandbox(command) => sandbox_cmd::run(command, ctx),
        OcCommand::Restore {
            sandbox,
            checkpoint,
        } => sandbox_cmd::restore(&sandbox, &checkpoint, ctx),
        OcCommand::Fork(args) => sandbox_cmd::fork(args, ctx),
        OcCommand::Exec(args) => exec_cmd::run(args, ctx),
        OcCommand::Checkpoint(command) => snapshot_cmd::checkpoint(command, ctx),
        OcCommand::Snapshot(command) => snapshot_cmd::snapshot(command, ctx),
        OcCommand::Events(args) => events_cmd::run(args, ctx),
        OcCommand::Completions { .. } => Ok(Done::Exit(0)),
    }
}

fn report(failure: Failure, stderr: &mut dyn Write) -> i32 {
    let _ = writeln!(stderr, "error: {}", failure.message);
    failure.code
}

/// Percent-encodes one path segment or query value.
pub(crate) fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
