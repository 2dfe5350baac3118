//! `oc events [--follow] [--subject PATTERN]`: prints the org's events from `GET /api/events`, one
//! line each — `subject  json` for people, `{"subject","data"}` per line with `--json`. Without
//! `--follow` it prints what arrives until a second passes without an event (at most ten seconds)
//! and exits 0; with it, it runs until interrupted or the server closes the stream. Events carry
//! names, hosts and ids, never secret values; this module prints them as the API sent them.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::cli::EventsArgs;
use super::failure::{expect, Failure, Hints, EXIT_FAILURE};
use super::run::{encode, Ctx, Done};
use super::sse::{SseEvent, SseParser};

/// Without `--follow`: stop after this long without an event…
const IDLE: Duration = Duration::from_secs(1);
/// …or after this long in all.
const MAX_WINDOW: Duration = Duration::from_secs(10);
/// The longest line accepted from the stream.
const MAX_LINE: u64 = 1024 * 1024;

/// What the reader thread hands over.
enum Received {
    Event(SseEvent),
    Closed,
    Failed(String),
}

pub(crate) fn run(args: EventsArgs, ctx: &mut Ctx<'_>) -> Result<Done, Failure> {
    ctx.require_key()?;
    let path = match &args.subject {
        Some(pattern) => format!("/events?subject={}", encode(pattern)),
        None => "/events".to_owned(),
    };
    let reader = match ctx
        .api
        .stream(&path)
        .map_err(|error| ctx.unreachable(error))?
    {
        Ok(reader) => reader,
        Err(refusal) => {
            let hints = Hints {
                list_with: "oc --help",
                key_source: &ctx.connection.key_source,
            };
            return Err(expect(refusal, &[200], hints)
                .err()
                .unwrap_or_else(|| Failure::new("the event stream was refused", EXIT_FAILURE)));
        }
    };
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || read_events(reader, &sender));
    let started = Instant::now();
    loop {
        let received = if args.follow {
            receiver.recv().unwrap_or(Received::Closed)
        } else {
            let left = MAX_WINDOW.saturating_sub(started.elapsed());
            match receiver.recv_timeout(IDLE.min(left)) {
                Ok(received) => received,
                Err(RecvTimeoutError::Timeout) => return Ok(Done::Exit(0)),
                Err(RecvTimeoutError::Disconnected) => Received::Closed,
            }
        };
        match received {
            Received::Event(event) => {
                let line = render(&event, ctx.json);
                match writeln!(ctx.out, "{line}").and_then(|()| ctx.out.flush()) {
                    Ok(()) => {}
                    // A closed pipe (`oc events -f | head -1`) is the reader saying it has enough.
                    Err(error) if error.kind() == ErrorKind::BrokenPipe => {
                        return Ok(Done::Exit(0))
                    }
                    Err(error) => {
                        return Err(Failure::new(
                            format!("cannot write events: {error}"),
                            EXIT_FAILURE,
                        ))
                    }
                }
            }
            Received::Closed if !args.follow => return Ok(Done::Exit(0)),
            Received::Closed => {
                return Err(Failure::new(
                    "the API closed the event stream; run the command again to resume",
                    EXIT_FAILURE,
                ))
            }
            Received::Failed(reason) => {
                return Err(Failure::new(
                    format!("the event stream broke: {reason}; run the command again to resume"),
                    EXIT_FAILURE,
                ))
            }
        }
    }
}

/// One output line for `event`.
fn render(event: &SseEvent, json: bool) -> String {
    let data: Value =
        serde_json::from_str(&event.data).unwrap_or_else(|_| Value::String(event.data.clone()));
    if json {
        json!({ "subject": event.event, "data": data }).to_string()
    } else {
        format!("{}  {}", event.event, data)
    }
}

/// Reads the stream line by line on its own thread and sends complete events.
fn read_events(reader: Box<dyn Read + Send>, sender: &mpsc::Sender<Received>) {
    let mut reader = BufReader::new(reader);
    let mut parser = SseParser::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line);
        let outcome = match read {
            Ok(0) => Received::Closed,
            Ok(_) if !line.ends_with(b"\n") && line.len() as u64 >= MAX_LINE => {
                Received::Failed(format!("a line longer than {MAX_LINE} bytes"))
            }
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                match parser.line(text.trim_end_matches('\n')) {
                    Some(event) => Received::Event(event),
                    None => continue,
                }
            }
            Err(error) => Received::Failed(error.to_string()),
        };
        let last = !matches!(outcome, Received::Event(_));
        if sender.send(outcome).is_err() || last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_subject_then_compact_json() {
        let event = SseEvent {
            event: "osb.sandbox.sbx_1.created".into(),
            data: "{ \"sandboxID\": \"sbx_1\" }".into(),
        };
        assert_eq!(
            render(&event, false),
            "osb.sandbox.sbx_1.created  {\"sandboxID\":\"sbx_1\"}"
        );
        let line: Value = serde_json::from_str(&render(&event, true)).expect("json line");
        assert_eq!(line["data"]["sandboxID"], "sbx_1");
        assert_eq!(line["subject"], "osb.sandbox.sbx_1.created");
    }
}
