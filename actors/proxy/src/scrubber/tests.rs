//! Tests of the scrubber: every form of a value is replaced, the streaming scrubber equals the
//! whole-buffer reference whatever the chunk boundaries, and its output shape never depends on
//! whether a chunk ends in a prefix of a secret.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use proptest::prelude::*;

use super::*;

const TOKEN_A: &[u8] = b"osb_sealed_0101010101010101010101010101010a";
const TOKEN_B: &[u8] = b"osb_sealed_0202020202020202020202020202020b";

fn table() -> ScrubTable {
    ScrubTable::from_values(&[
        (b"sk-live-abcdef", TOKEN_A),
        (b"p@ss/w+rd \"q\"&x=1", TOKEN_B),
    ])
    .unwrap()
}

fn stream(table: &ScrubTable, chunks: &[&[u8]]) -> Vec<u8> {
    let mut scrubber = StreamScrubber::new(table.clone());
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend_from_slice(&scrubber.feed(chunk));
    }
    out.extend_from_slice(&scrubber.finish());
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn the_raw_value_and_every_encoding_become_tokens() {
    let table = table();
    let value = b"p@ss/w+rd \"q\"&x=1";
    let mut body = Vec::new();
    for prefix in [&b""[..], b"a", b"ab", b"user:"] {
        let mut joined = prefix.to_vec();
        joined.extend_from_slice(value);
        for engine in [STANDARD, URL_SAFE] {
            body.extend_from_slice(b" ");
            body.extend_from_slice(engine.encode(&joined).as_bytes());
        }
    }
    body.extend_from_slice(b" ");
    body.extend_from_slice(
        serde_json::to_string("p@ss/w+rd \"q\"&x=1")
            .unwrap()
            .as_bytes(),
    );
    body.extend_from_slice(b" p%40ss%2Fw%2Brd%20%22q%22%26x%3D1 p%40ss%2fw%2brd+%22q%22%26x%3d1 ");
    body.extend_from_slice(value);
    let out = table.scrub_all(&body).unwrap();
    assert!(!contains(&out, value));
    assert!(!contains(&out, b"%2Fw"));
    assert!(!contains(&out, b"%2fw"));
    assert!(!contains(&out, b"\\\"q"));
    // No base64 run decodes to anything holding the value.
    let text = String::from_utf8(out.clone()).unwrap();
    for run in text.split(' ') {
        for skip in 0..4 {
            let run = run.trim_end_matches('=');
            let run = &run[skip.min(run.len())..];
            let usable = run.len() / 4 * 4;
            for engine in [STANDARD, URL_SAFE] {
                if let Ok(decoded) = engine.decode(&run[..usable]) {
                    assert!(!contains(&decoded, b"ss/w+rd"), "{run}");
                }
            }
        }
    }
    assert!(contains(&out, TOKEN_B));
}

#[test]
fn a_base64_value_loses_its_mixed_neighbour_characters_too() {
    let table = table();
    // "x" + value: the value starts at byte offset 1, so its first character shares bits with
    // "x", and its last one with what follows.
    let encoded = STANDARD.encode(b"xp@ss/w+rd \"q\"&x=1yz");
    let out = table.scrub_all(encoded.as_bytes()).unwrap();
    let replacement = STANDARD_NO_PAD_TOKEN();
    let at = out
        .windows(replacement.len())
        .position(|w| w == replacement.as_slice())
        .unwrap();
    // Only the first character (all bits of "x") and the padding-free tail past the value remain.
    assert_eq!(at, 1, "{}", String::from_utf8_lossy(&out));
}

#[allow(non_snake_case)]
fn STANDARD_NO_PAD_TOKEN() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(TOKEN_B)
        .into_bytes()
}

#[test]
fn the_shape_of_the_output_never_depends_on_a_prefix_of_a_secret() {
    let table = table();
    let value = b"sk-live-abcdef";
    for known in 1..value.len() {
        let right = &value[..known];
        let wrong: Vec<u8> = right
            .iter()
            .map(|b| if *b == b'#' { b'!' } else { b'#' })
            .collect();
        let probe = |guess: &[u8]| {
            let mut scrubber = StreamScrubber::new(table.clone());
            let mut first = vec![b'.'; 200];
            first.extend_from_slice(guess);
            let a = scrubber.feed(&first).len();
            let b = scrubber.feed(b"-tail").len();
            let c = scrubber.flush().len();
            let d = scrubber.feed(b"more").len();
            let e = scrubber.finish().len();
            (a, b, c, d, e)
        };
        assert_eq!(probe(right), probe(&wrong), "prefix of {known} bytes");
    }
}

#[test]
fn a_value_completed_after_a_flush_is_still_replaced_from_where_the_output_stands() {
    let table = table();
    let mut scrubber = StreamScrubber::new(table.clone());
    let mut out = scrubber.feed(b"start sk-live-").to_vec();
    out.extend_from_slice(&scrubber.flush());
    out.extend_from_slice(&scrubber.feed(b"abcdef end"));
    out.extend_from_slice(&scrubber.finish());
    assert!(!contains(&out, b"sk-live-abcdef"));
    assert!(contains(&out, TOKEN_A));
}

#[test]
fn holdback_is_fixed_by_the_table_and_rounded() {
    let table = table();
    assert_eq!(table.holdback() % HOLDBACK_QUANTUM, HOLDBACK_QUANTUM - 1);
    let mut scrubber = StreamScrubber::new(table.clone());
    let out = scrubber.feed(&[b'.'; 1000]);
    assert_eq!(out.len(), 1000 - table.holdback() - 1);
}

fn pieces() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(
        prop_oneof![
            Just(b"sk-live-abcdef".to_vec()),
            Just(b"sk-live-".to_vec()),
            Just(STANDARD.encode(b"sk-live-abcdef").into_bytes()),
            Just(URL_SAFE.encode(b"zsk-live-abcdef").into_bytes()),
            Just(STANDARD.encode(b"p@ss/w+rd \"q\"&x=1").into_bytes()),
            Just(b"p%40ss%2Fw%2Brd%20%22q%22%26x%3D1".to_vec()),
            Just(b"A".to_vec()),
            Just(b"=".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..12),
        ],
        0..10,
    )
}

proptest! {
    /// The streaming scrubber equals the whole-buffer reference for any cut of any body.
    #[test]
    fn streaming_equals_whole_buffer(pieces in pieces(), cuts in proptest::collection::vec(0usize..400, 0..6)) {
        let table = table();
        let input = pieces.concat();
        let expected = table.scrub_all(&input).unwrap_or_else(|| input.clone());
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for cut in cuts { chunks.push(&input[last..cut]); last = cut; }
        chunks.push(&input[last..]);
        prop_assert_eq!(stream(&table, &chunks), expected);
    }

    /// Reading straight into the window ([`StreamScrubber::input`] then `ready`) gives the same
    /// output as `feed`, even while earlier output (which may share the window's memory) is
    /// still held when the next input is appended.
    #[test]
    fn appending_to_the_input_equals_whole_buffer(pieces in pieces(), reserve in 0usize..300) {
        let table = table();
        let input = pieces.concat();
        let expected = table.scrub_all(&input).unwrap_or_else(|| input.clone());
        let mut scrubber = StreamScrubber::new(table.clone());
        let mut held: Vec<Bytes> = Vec::new();
        for piece in &pieces {
            scrubber.input().reserve(reserve);
            scrubber.input().extend_from_slice(piece);
            held.push(scrubber.ready());
        }
        held.push(scrubber.finish());
        prop_assert_eq!(held.concat(), expected);
    }

    /// With flushes in between, no raw value ever passes whole.
    #[test]
    fn flushes_never_let_a_whole_value_through(pieces in pieces(), flush_at in proptest::collection::vec(any::<bool>(), 0..10)) {
        let table = table();
        let mut scrubber = StreamScrubber::new(table.clone());
        let mut out = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            out.extend_from_slice(&scrubber.feed(piece));
            if flush_at.get(i).copied().unwrap_or(false) {
                out.extend_from_slice(&scrubber.flush());
            }
        }
        out.extend_from_slice(&scrubber.finish());
        prop_assert!(!contains(&out, b"sk-live-abcdef"), "{}", String::from_utf8_lossy(&out));
    }
}
