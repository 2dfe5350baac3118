//! Small helpers the whole-platform tests share: a free loopback port and a real `osbd`
//! process (the guard that reaps a worker's host objects is `osbd::testkit::Reap`).

pub(crate) use osbd::testkit::Reap;

/// A port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// A running `osbd` process: killed when dropped (a test that wants a clean stop signals it and
/// waits first). Its stderr (the logs) is collected for canary checks.
pub(crate) struct Osbd {
    pub child: std::process::Child,
    /// Everything it printed on stdout up to and including its `ready …` line.
    pub banner: String,
    pub logs: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Osbd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Osbd {
    /// Sends `signal` (`INT`, `TERM`) and waits; true when it exited successfully.
    pub(crate) fn stop(&mut self, signal: &str) -> bool {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid])
            .status()
            .is_ok_and(|status| status.success());
        sent && self.child.wait().is_ok_and(|status| status.success())
    }
}

/// Starts `osbd args` with exactly `env` among the OpenSandbox settings (the test's own
/// `OPENSANDBOX_*`, `DATABASE_URL` and `NATS_URL` are removed) and waits up to 90 s for its
/// `ready` line.
pub(crate) fn spawn_osbd(args: &[&str], env: &[(String, String)]) -> Osbd {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut command = Command::new(env!("CARGO_BIN_EXE_osbd"));
    for (name, _) in std::env::vars() {
        if name.starts_with("OPENSANDBOX_") || name == "DATABASE_URL" || name == "NATS_URL" {
            command.env_remove(name);
        }
    }
    let mut child = command
        .args(args)
        .envs(
            env.iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("osbd starts");
    let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = child.stderr.take().expect("stderr");
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut logs = sink.lock().expect("logs");
            logs.push_str(&line);
            logs.push('\n');
        }
    });
    let stdout = child.stdout.take().expect("stdout");
    let (ready, banner) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with("ready") {
                let _ = ready.send(seen.clone());
            }
        }
    });
    let banner = banner
        .recv_timeout(std::time::Duration::from_secs(90))
        .unwrap_or_else(|_| panic!("osbd {args:?} did not become ready"));
    Osbd {
        child,
        banner,
        logs,
    }
}

/// `(name, value)` pairs as owned strings, for `spawn_osbd`.
pub(crate) fn env_of(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}
