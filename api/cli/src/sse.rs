//! A server-sent events parser (the WHATWG `text/event-stream` rules that the API uses): lines in,
//! complete events out. It is pure — no I/O — so it is tested line by line; it must not lose an
//! event split across reads nor invent one from keep-alive comments (`: ping`).

/// One dispatched event: its type (the API puts the subject there) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) event: String,
    pub(crate) data: String,
}

/// The parser's state between lines.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    event: String,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// Feeds one line (without its line ending); returns an event when `line` completes one.
    pub(crate) fn line(&mut self, line: &str) -> Option<SseEvent> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            let data = std::mem::take(&mut self.data);
            let had_data = std::mem::take(&mut self.has_data);
            if !had_data {
                return None;
            }
            let event = if event.is_empty() {
                "message".to_owned()
            } else {
                event
            };
            return Some(SseEvent { event, data });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(text: &str) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        text.split('\n')
            .filter_map(|line| parser.line(line))
            .collect()
    }

    #[test]
    fn events_comments_and_multiline_data() {
        let events = feed(
            ": ping\n\nevent: osb.sandbox.sbx_1.created\ndata: {\"a\":1}\n\n: ping\n\nevent:x\ndata:1\ndata: 2\r\n\r\ndata: bare\n\n",
        );
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: "osb.sandbox.sbx_1.created".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: "x".into(),
                    data: "1\n2".into()
                },
                SseEvent {
                    event: "message".into(),
                    data: "bare".into()
                },
            ]
        );
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_does_not_leak_its_type() {
        let events = feed("event: lonely\n\ndata: x\n\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "message");
    }
}
