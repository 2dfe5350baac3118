//! Helpers for the `oc` tests: run the real binary with a clean environment, and a tiny recording
//! HTTP server (`StubApi`) that answers with the REST contract's shapes. The stub stands in for
//! the sandbox routes only where a running platform is not needed to check what `oc` sends and
//! prints (request bodies and headers, exit codes, stream handling); the full chain runs against
//! the real platform in `oc_sandbox.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A path no test machine has: keeps a developer's real config out of the tests.
pub(crate) const NO_CONFIG: &str = "/nonexistent/opensandbox-test/config.toml";

/// The real `oc` with every OpenSandbox variable removed and no config file, then `env` applied.
pub(crate) fn oc_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oc"));
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("OPENSANDBOX_") || name == "XDG_CONFIG_HOME" {
            command.env_remove(name);
        }
    }
    command.env("OPENSANDBOX_CONFIG", NO_CONFIG);
    for (name, value) in env {
        command.env(name, value);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `oc` to completion.
pub(crate) fn oc_run(args: &[&str], env: &[(&str, &str)]) -> Output {
    oc_command(args, env).output().expect("oc runs")
}

pub(crate) fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// One request the stub received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// What the stub answers.
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Keep the connection open this long after the body (for event streams).
    pub hold: Duration,
    /// Wait this long before answering (a slow operation).
    pub delay: Duration,
    /// An `X-Next-Cursor` header (a list page with a next one).
    pub next_cursor: Option<&'static str>,
}

impl Reply {
    pub(crate) fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.to_string(),
            hold: Duration::ZERO,
            delay: Duration::ZERO,
            next_cursor: None,
        }
    }

    /// The same answer as a list page followed by the page at `cursor`.
    pub(crate) fn with_next(mut self, cursor: &'static str) -> Self {
        self.next_cursor = Some(cursor);
        self
    }

    pub(crate) fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub(crate) fn events(body: &str, hold: Duration) -> Self {
        Self {
            status: 200,
            content_type: "text/event-stream",
            body: body.to_owned(),
            hold,
            delay: Duration::ZERO,
            next_cursor: None,
        }
    }
}

type Responder = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// A recording HTTP/1.1 server on a free loopback port; it lives as long as the test process.
pub(crate) struct StubApi {
    pub url: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl StubApi {
    pub(crate) fn start(respond: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Responder> = Arc::new(respond);
        let log = Arc::clone(&recorded);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, respond) = (Arc::clone(&log), Arc::clone(&respond));
                std::thread::spawn(move || serve(stream, &log, &*respond));
            }
        });
        Self { url, recorded }
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().expect("log").clone()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Recorded>>, respond: &Responder) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let request = Recorded {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let reply = respond(&request);
    std::thread::sleep(reply.delay);
    log.lock().expect("log").push(request);
    let mut stream = stream;
    let streaming = reply.content_type == "text/event-stream";
    let framing = if streaming {
        "Transfer-Encoding: chunked\r\n".to_owned()
    } else {
        format!("Content-Length: {}\r\n", reply.body.len())
    };
    let cursor = reply
        .next_cursor
        .map(|cursor| format!("X-Next-Cursor: {cursor}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\n{framing}{cursor}Connection: close\r\n\r\n",
        reply.status, reply.content_type
    );
    let _ = stream.write_all(head.as_bytes());
    if streaming {
        // One chunk per event, as a streaming server sends them; the last chunk only at the end.
        for event in reply.body.split_inclusive("\n\n") {
            let _ = write!(stream, "{:x}\r\n{event}\r\n", event.len());
            let _ = stream.flush();
        }
        std::thread::sleep(reply.hold);
        let _ = stream.write_all(b"0\r\n\r\n");
    } else {
        let _ = stream.write_all(reply.body.as_bytes());
    }
    let _ = stream.flush();
}

/// A listener that records whether anything connected: for "nothing was sent" checks.
pub(crate) struct Silent {
    listener: TcpListener,
    pub url: String,
}

impl Silent {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        Self { listener, url }
    }

    /// Whether a connection is waiting (the kernel queues it even though nobody accepted).
    pub(crate) fn was_contacted(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

/// Runs the shell command `inner` inside a pseudo-terminal (util-linux `script`) with `oc`'s clean
/// environment plus `env`; `typed`, when given, is typed into the terminal after `delay`.
/// Returns what `script` printed and everything the terminal showed.
pub(crate) fn in_terminal(
    inner: &str,
    env: &[(&str, &str)],
    typed: Option<(&str, Duration)>,
) -> (Output, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let typescript = dir.path().join("typescript");
    let clean = oc_command(&[], env);
    let mut shell = Command::new("sh");
    let (text, delay) = typed.unwrap_or(("", Duration::ZERO));
    shell
        .arg("-c")
        .arg(r#"(sleep "$OC_TEST_DELAY"; [ -n "$OC_TEST_TYPED" ] && printf '%s\n' "$OC_TEST_TYPED") | script -qec "$OC_TEST_INNER" "$OC_TEST_TYPESCRIPT""#)
        .env("OC_TEST_DELAY", format!("{:.1}", delay.as_secs_f64()))
        .env("OC_TEST_TYPED", text)
        .env("OC_TEST_INNER", inner)
        .env("OC_TEST_TYPESCRIPT", &typescript);
    for (name, value) in clean.get_envs() {
        match value {
            Some(value) => shell.env(name, value),
            None => shell.env_remove(name),
        };
    }
    let output = shell.output().expect("sh runs");
    let shown = std::fs::read_to_string(&typescript).unwrap_or_default() + &stdout_of(&output);
    (output, shown)
}
