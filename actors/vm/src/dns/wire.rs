//! DNS wire format, just enough for the sandbox resolver: parse a standard query with one
//! question, build a response with zero or one A record. Pure functions over byte slices; this
//! module must never do I/O. Anything unusual (compression in a query, several questions, a
//! non-query opcode) is rejected and answered FORMERR or ignored by the server.

use std::net::Ipv4Addr;

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Class IN.
pub const CLASS_IN: u16 = 1;
/// Response code: no error.
pub const RCODE_NOERROR: u8 = 0;
/// Response code: format error.
pub const RCODE_FORMERR: u8 = 1;
/// Response code: name does not exist.
pub const RCODE_NXDOMAIN: u8 = 3;
/// Response code: refused.
pub const RCODE_REFUSED: u8 = 5;
/// TTL of synthetic answers (short: allowlists can change).
pub const ANSWER_TTL: u32 = 30;

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Transaction id.
    pub id: u16,
    /// Whether recursion was desired (echoed back).
    pub recursion_desired: bool,
    /// The queried name, lowercase, without trailing dot.
    pub name: String,
    /// Question type.
    pub qtype: u16,
    /// Question class.
    pub qclass: u16,
    /// Offset just past the question section.
    pub question_end: usize,
}

/// Parses a query; `None` when it is not a well-formed standard query with one question.
pub fn parse_query(packet: &[u8]) -> Option<Query> {
    if packet.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    let is_response = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0x0f;
    let questions = u16::from_be_bytes([packet[4], packet[5]]);
    if is_response || opcode != 0 || questions != 1 {
        return None;
    }
    let mut at = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let length = usize::from(*packet.get(at)?);
        at += 1;
        if length == 0 {
            break;
        }
        if length > 63 {
            // Compression pointers (and the reserved 0x40/0x80 forms) never occur in queries.
            return None;
        }
        let label = packet.get(at..at + length)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += length;
    }
    let name = labels.join(".");
    if name.len() > 253 {
        return None;
    }
    let fixed = packet.get(at..at + 4)?;
    Some(Query {
        id,
        recursion_desired: flags & 0x0100 != 0,
        name,
        qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
        qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
        question_end: at + 4,
    })
}

/// Builds the response to `query` (whose raw bytes are `packet`) with `rcode` and an optional A
/// record.
pub fn build_response(
    packet: &[u8],
    query: &Query,
    rcode: u8,
    answer: Option<Ipv4Addr>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(query.question_end + 16);
    out.extend_from_slice(&query.id.to_be_bytes());
    let mut flags: u16 = 0x8000 | 0x0080 | u16::from(rcode & 0x0f);
    if query.recursion_desired {
        flags |= 0x0100;
    }
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&u16::from(answer.is_some()).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(packet.get(12..query.question_end).unwrap_or_default());
    if let Some(address) = answer {
        out.extend_from_slice(&0xc00cu16.to_be_bytes());
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ANSWER_TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&address.octets());
    }
    out
}

/// A FORMERR response echoing only the transaction id (for packets that do not parse).
pub fn format_error(packet: &[u8]) -> Option<Vec<u8>> {
    let id = packet.get(0..2)?;
    let mut out = id.to_vec();
    out.extend_from_slice(&(0x8000u16 | u16::from(RCODE_FORMERR)).to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    Some(out)
}

/// Encodes a query (used by tests and the health check).
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&[0; 6]);
    for label in name.trim_end_matches('.').split('.') {
        out.push(u8::try_from(label.len()).unwrap_or(0));
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_round_trips_into_an_answer() {
        let packet = encode_query(0x1234, "API.Example.com", TYPE_A);
        let query = parse_query(&packet).unwrap();
        assert_eq!(query.name, "api.example.com");
        assert_eq!(query.qtype, TYPE_A);
        assert!(query.recursion_desired);
        let response = build_response(
            &packet,
            &query,
            RCODE_NOERROR,
            Some(Ipv4Addr::new(100, 96, 0, 1)),
        );
        assert_eq!(&response[0..2], &[0x12, 0x34]);
        assert_eq!(response[3] & 0x0f, RCODE_NOERROR);
        assert_eq!(u16::from_be_bytes([response[6], response[7]]), 1);
        assert_eq!(&response[response.len() - 4..], &[100, 96, 0, 1]);
    }

    #[test]
    fn nxdomain_has_no_answer() {
        let packet = encode_query(7, "evil.example", TYPE_A);
        let query = parse_query(&packet).unwrap();
        let response = build_response(&packet, &query, RCODE_NXDOMAIN, None);
        assert_eq!(response[3] & 0x0f, RCODE_NXDOMAIN);
        assert_eq!(u16::from_be_bytes([response[6], response[7]]), 0);
        assert_eq!(response.len(), packet.len());
    }

    #[test]
    fn malformed_packets_are_rejected() {
        assert!(parse_query(&[0; 5]).is_none());
        let mut response_bit = encode_query(1, "a.b", TYPE_A);
        response_bit[2] |= 0x80;
        assert!(parse_query(&response_bit).is_none());
        let mut pointer = encode_query(1, "a.b", TYPE_A);
        pointer[12] = 0xc0;
        assert!(parse_query(&pointer).is_none());
        let truncated = &encode_query(1, "abc.def", TYPE_A)[..15];
        assert!(parse_query(truncated).is_none());
        assert_eq!(format_error(&[9, 9, 0]).map(|r| r.len()), Some(12));
    }

    proptest::proptest! {
        /// Twin of the `dns_wire` fuzz target (actors/proxy/fuzz): any bytes parse or are
        /// refused without a panic, and a parsed question is echoed exactly.
        #[test]
        fn any_packet_is_parsed_or_refused_without_panicking(
            packet in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let _ = format_error(&packet);
            if let Some(query) = parse_query(&packet) {
                proptest::prop_assert!(query.question_end <= packet.len() && query.question_end >= 12);
                let answer = build_response(&packet, &query, RCODE_NOERROR, Some([10, 0, 0, 1].into()));
                proptest::prop_assert_eq!(&answer[12..query.question_end], &packet[12..query.question_end]);
            }
        }
    }
}
