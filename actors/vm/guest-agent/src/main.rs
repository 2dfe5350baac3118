//! `osb-guest-agent`: runs inside a microVM sandbox as root, started by the guest init. It opens
//! the virtio-serial port `osb.agent`, greets the worker, then serves frames: `Exec` starts a
//! command (own process group, given uid/gid, env and cwd, stdin empty) and streams its output
//! back; `Kill` kills a command's process group; `Sync` flushes the guest's file systems (before
//! a checkpoint copies the disk). Output bounds are the worker's job; the agent bounds each
//! frame. It must never keep a command's environment after the command started, and never run
//! anything the worker did not ask for.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use osb_guest_agent::protocol::{
    encode, encode_json, Decoder, ExecStart, Exited, Frame, Hello, Kind, OUTPUT_CHUNK_BYTES,
    PORT_NAME, PROTOCOL_VERSION,
};

/// How long output may keep arriving after the command exited (as the host-side runtimes).
const OUTPUT_GRACE: Duration = Duration::from_millis(200);
/// How long to wait for the port's device node at boot.
const PORT_WAIT: Duration = Duration::from_secs(30);
const TIMEOUT_EXIT_CODE: i32 = 124;

/// The port, shared by every thread that sends frames (one frame per lock: never interleaved).
type Port = Arc<Mutex<File>>;
/// Process groups of running commands, by exec id.
type Running = Arc<Mutex<HashMap<u64, Pid>>>;

fn main() {
    if let Err(error) = serve() {
        eprintln!("osb-guest-agent: {error}");
        std::process::exit(1);
    }
}

fn serve() -> Result<(), String> {
    let path = find_port()?;
    let file = File::options()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    let mut reader = file
        .try_clone()
        .map_err(|e| format!("cloning the port handle: {e}"))?;
    let port: Port = Arc::new(Mutex::new(file));
    let running: Running = Arc::new(Mutex::new(HashMap::new()));
    send(
        &port,
        &encode_json(
            Kind::Hello,
            0,
            &Hello {
                version: PROTOCOL_VERSION,
            },
        ),
    );
    let mut decoder = Decoder::default();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match reader.read(&mut buffer) {
            // No worker connected yet (or it went away): wait for the next one.
            Ok(0) => {
                thread::sleep(Duration::from_millis(50));
                continue;
            }
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(format!("reading the port: {error}")),
        };
        decoder.push(&buffer[..read]);
        while let Some(frame) = decoder.next_frame().map_err(|e| e.to_string())? {
            dispatch(frame, &port, &running);
        }
    }
}

/// `/dev/vportNpM` whose sysfs name is `osb.agent`.
fn find_port() -> Result<PathBuf, String> {
    let deadline = std::time::Instant::now() + PORT_WAIT;
    loop {
        if let Ok(entries) = std::fs::read_dir("/sys/class/virtio-ports") {
            for entry in entries.filter_map(Result::ok) {
                let name = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
                let device = Path::new("/dev").join(entry.file_name());
                if name.trim() == PORT_NAME && device.exists() {
                    return Ok(device);
                }
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("no virtio-serial port named {PORT_NAME} appeared"));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn send(port: &Port, frame: &[u8]) {
    if let Ok(mut file) = port.lock() {
        // A worker that went away loses the frame; the next one starts afresh.
        let _ = file.write_all(frame);
    }
}

fn dispatch(frame: Frame, port: &Port, running: &Running) {
    match frame.kind {
        Kind::Exec => match serde_json::from_slice::<ExecStart>(&frame.payload) {
            Ok(start) => {
                let (port, running) = (Arc::clone(port), Arc::clone(running));
                thread::spawn(move || run_exec(frame.id, start, &port, &running));
            }
            Err(error) => refuse(port, frame.id, 126, &format!("bad exec request: {error}")),
        },
        Kind::Kill => {
            let group = running
                .lock()
                .ok()
                .and_then(|map| map.get(&frame.id).copied());
            if let Some(group) = group {
                let _ = killpg(group, Signal::SIGKILL);
            }
        }
        Kind::Sync => {
            nix::unistd::sync();
            send(port, &encode(Kind::Synced, frame.id, b""));
        }
        // A worker that connected late asks again.
        Kind::Hello => send(
            port,
            &encode_json(
                Kind::Hello,
                0,
                &Hello {
                    version: PROTOCOL_VERSION,
                },
            ),
        ),
        // Frames only the agent sends: ignore.
        Kind::Stdout | Kind::Stderr | Kind::Exited | Kind::Synced => {}
    }
}

fn refuse(port: &Port, id: u64, exit_code: i32, message: &str) {
    send(
        port,
        &encode(
            Kind::Stderr,
            id,
            format!("osb-agent: {message}\n").as_bytes(),
        ),
    );
    send(
        port,
        &encode_json(
            Kind::Exited,
            id,
            &Exited {
                exit_code,
                timed_out: false,
            },
        ),
    );
}

fn run_exec(id: u64, start: ExecStart, port: &Port, running: &Running) {
    let Some((program, args)) = start.cmd.split_first() else {
        return refuse(port, id, 127, "empty command");
    };
    if !Path::new(&start.cwd).is_dir() {
        let message = format!(
            "cannot change directory to {:?}: not a directory",
            start.cwd
        );
        return refuse(port, id, 125, &message);
    }
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(start.env.iter().map(|(name, value)| (name, value)))
        .current_dir(&start.cwd)
        .uid(start.uid)
        .gid(start.gid)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    drop(start.env);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let code = if error.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            return refuse(port, id, code, &format!("cannot run {program:?}: {error}"));
        }
    };
    drop(command);
    let group = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    if let Ok(mut map) = running.lock() {
        map.insert(id, group);
    }
    let finished = Arc::new(AtomicBool::new(false));
    let (pumps_done, pumps_waiter) = mpsc::channel::<()>();
    let mut pumps = 0;
    if let Some(stdout) = child.stdout.take() {
        pumps += 1;
        spawn_pump(
            stdout,
            Kind::Stdout,
            id,
            port,
            &finished,
            pumps_done.clone(),
        );
    }
    if let Some(stderr) = child.stderr.take() {
        pumps += 1;
        spawn_pump(
            stderr,
            Kind::Stderr,
            id,
            port,
            &finished,
            pumps_done.clone(),
        );
    }
    drop(pumps_done);
    let timed_out = Arc::new(AtomicBool::new(false));
    let (exited, exit_waiter) = mpsc::channel::<()>();
    let timeout = Duration::from_millis(start.timeout_ms);
    let timer_flag = Arc::clone(&timed_out);
    thread::spawn(move || {
        if exit_waiter.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
            timer_flag.store(true, Ordering::SeqCst);
            let _ = killpg(group, Signal::SIGKILL);
        }
    });
    let status = child.wait();
    let _ = exited.send(());
    // Output written just before exit is still in the pipes: give the pumps a moment.
    let deadline = std::time::Instant::now() + OUTPUT_GRACE;
    for _ in 0..pumps {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if pumps_waiter.recv_timeout(left).is_err() {
            break;
        }
    }
    let timed_out = timed_out.load(Ordering::SeqCst);
    let exit_code = if timed_out {
        TIMEOUT_EXIT_CODE
    } else {
        status
            .ok()
            .and_then(|status| status.code().or_else(|| status.signal().map(|s| 128 + s)))
            .unwrap_or(-1)
    };
    if let Ok(mut map) = running.lock() {
        map.remove(&id);
    }
    // Under the port lock, so no output frame of this exec follows its Exited frame.
    if let Ok(mut file) = port.lock() {
        finished.store(true, Ordering::SeqCst);
        let _ = file.write_all(&encode_json(
            Kind::Exited,
            id,
            &Exited {
                exit_code,
                timed_out,
            },
        ));
    }
}

fn spawn_pump(
    mut pipe: impl Read + Send + 'static,
    kind: Kind,
    id: u64,
    port: &Port,
    finished: &Arc<AtomicBool>,
    done: mpsc::Sender<()>,
) {
    let (port, finished) = (Arc::clone(port), Arc::clone(finished));
    thread::spawn(move || {
        let mut buffer = vec![0u8; OUTPUT_CHUNK_BYTES];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => {
                    let Ok(mut file) = port.lock() else { break };
                    if finished.load(Ordering::SeqCst) {
                        break;
                    }
                    let _ = file.write_all(&encode(kind, id, &buffer[..read]));
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = done.send(());
    });
}
