//! Where a `GET /api/events` stream starts, and how its frames look. A client resumes with the
//! `Last-Event-ID` header (what `EventSource` sends on reconnect, and what the SDKs send) or
//! `?since=` (an event id, or an RFC 3339 time); without either the stream is live only.
//! `Last-Event-ID` wins over `since`: it is the newer of the two on a reconnect to the same URL.
//!
//! Each event frame carries `id: <stream sequence>`; a replay that reaches before what the
//! stream holds starts with an `osb.replay.truncated` event (no id) saying what was lost. It
//! must never emit a frame a client could split into extra fields: line breaks in data are
//! flattened.

use actix_web::HttpRequest;
use chrono::{DateTime, Utc};
use osb_bus::{ReplayFrom, StoredEvent, Truncation};
use serde_json::json;

use super::error::ApiError;

/// The SSE event name of a truncation notice.
pub const TRUNCATED_EVENT: &str = "osb.replay.truncated";
const LAST_EVENT_ID: &str = "last-event-id";

/// Reads `Last-Event-ID`, then `since`; neither → live only.
pub fn replay_start(request: &HttpRequest, since: Option<&str>) -> Result<ReplayFrom, ApiError> {
    if let Some(header) = request.headers().get(LAST_EVENT_ID) {
        let text = header.to_str().unwrap_or("\u{fffd}").trim();
        // An empty Last-Event-ID is what EventSource sends when it has seen no id.
        if !text.is_empty() {
            return text.parse::<u64>().map(ReplayFrom::AfterSequence).map_err(|_| {
                ApiError::invalid(format!(
                    "Last-Event-ID {:?} is not an event id of this stream (a number from an `id:` line); drop the header to follow live events",
                    shorten(text)
                ))
            });
        }
    }
    let Some(since) = since.map(str::trim) else {
        return Ok(ReplayFrom::Live);
    };
    if let Ok(sequence) = since.parse::<u64>() {
        return Ok(ReplayFrom::AfterSequence(sequence));
    }
    DateTime::parse_from_rfc3339(since)
        .map(|time| ReplayFrom::Since(time.with_timezone(&Utc)))
        .map_err(|_| {
            ApiError::invalid(format!(
                "since {:?} is neither an event id (e.g. 1042) nor an RFC 3339 time (e.g. 2026-01-31T09:00:00Z)",
                shorten(since)
            ))
        })
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

/// `id:`, `event:` and `data:` lines of one stored event.
pub fn event_frame(event: &StoredEvent) -> String {
    let data = flatten(&String::from_utf8_lossy(&event.message.payload));
    format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        event.sequence,
        flatten(&event.message.subject)
    )
}

/// The `osb.replay.truncated` notice: where the stream resumes and what was lost.
pub fn truncated_frame(truncation: &Truncation) -> String {
    let data = json!({
        "resumesAt": truncation.resumes_at.map(|sequence| sequence.to_string()),
        "detail": truncation.detail,
    });
    format!(
        "event: {TRUNCATED_EVENT}\ndata: {}\n\n",
        flatten(&data.to_string())
    )
}

/// SSE ends a line at `\n`, `\r` or `\r\n`: none may reach the wire inside a field.
fn flatten(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_start_comes_from_the_header_then_the_query() {
        let plain = TestRequest::default().to_http_request();
        assert_eq!(replay_start(&plain, None).unwrap(), ReplayFrom::Live);
        assert_eq!(
            replay_start(&plain, Some("42")).unwrap(),
            ReplayFrom::AfterSequence(42)
        );
        let time = replay_start(&plain, Some("2026-01-31T09:00:00+01:00")).unwrap();
        assert_eq!(
            time,
            ReplayFrom::Since("2026-01-31T08:00:00Z".parse().unwrap())
        );
        let resumed = TestRequest::default()
            .insert_header(("Last-Event-ID", "7"))
            .to_http_request();
        assert_eq!(
            replay_start(&resumed, Some("42")).unwrap(),
            ReplayFrom::AfterSequence(7)
        );
        let empty = TestRequest::default()
            .insert_header(("Last-Event-ID", ""))
            .to_http_request();
        assert_eq!(replay_start(&empty, None).unwrap(), ReplayFrom::Live);
    }

    #[test]
    fn bad_starts_say_which_field_and_what_to_send() {
        let plain = TestRequest::default().to_http_request();
        let error = replay_start(&plain, Some("yesterday")).unwrap_err();
        assert!(error.to_string().contains("since \"yesterday\""), "{error}");
        let bad = TestRequest::default()
            .insert_header(("Last-Event-ID", "-1"))
            .to_http_request();
        let error = replay_start(&bad, None).unwrap_err();
        assert!(error.to_string().contains("Last-Event-ID"), "{error}");
    }

    #[test]
    fn frames_cannot_be_split_into_extra_fields() {
        let event = StoredEvent {
            sequence: 9,
            stored_at: Utc::now(),
            message: osb_bus::Delivered {
                subject: "osb.sandbox.x.egress_blocked".into(),
                reply: None,
                headers: Default::default(),
                payload: "{\"host\":\"a\r\nid: 1\nevent: x\"}".into(),
            },
        };
        let frame = event_frame(&event);
        assert_eq!(frame.matches('\n').count(), 4, "{frame:?}");
        assert!(frame.starts_with("id: 9\nevent: osb.sandbox.x.egress_blocked\ndata: "));
        assert!(!frame.contains('\r'));
        let notice = truncated_frame(&Truncation {
            resumes_at: Some(5),
            detail: "gone\nid: 3".into(),
        });
        assert!(notice.starts_with("event: osb.replay.truncated\ndata: {"));
        assert_eq!(notice.matches('\n').count(), 3, "{notice:?}");
        assert!(notice.contains("\"resumesAt\":\"5\""));
    }
}
