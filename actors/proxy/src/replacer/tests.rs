//! Unit tests and the proptest of the streaming replacer against a naive reference.

use std::collections::HashMap;

use bytes::Bytes;
use osb_proto::{SealedToken, SEALED_TOKEN_LEN};
use proptest::prelude::*;

use super::*;

struct MapResolver(HashMap<SealedToken, Vec<u8>>);

impl TokenResolver for MapResolver {
    fn resolve(&mut self, token: &SealedToken) -> Result<&[u8], Refusal> {
        self.0
            .get(token)
            .map(Vec::as_slice)
            .ok_or_else(|| Refusal::unknown_token("test"))
    }
}

fn token(byte: u8) -> SealedToken {
    SealedToken::from_random_bytes([byte; 16])
}

fn resolver() -> MapResolver {
    MapResolver(HashMap::from([
        (token(0x11), b"VALUE-ONE".to_vec()),
        (
            token(0x22),
            b"a-much-longer-second-value-for-testing".to_vec(),
        ),
        (token(0x33), b"x".to_vec()),
    ]))
}

/// The reference: scan byte by byte, no cleverness.
fn naive(input: &[u8], resolver: &mut MapResolver) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    let mut index = 0;
    while index < input.len() {
        if let Some(window) = input.get(index..index + SEALED_TOKEN_LEN) {
            if let Ok(parsed) = SealedToken::from_bytes(window) {
                out.extend_from_slice(resolver.resolve(&parsed)?);
                index += SEALED_TOKEN_LEN;
                continue;
            }
        }
        out.push(input[index]);
        index += 1;
    }
    Ok(out)
}

fn stream(chunks: &[&[u8]], resolver: &mut MapResolver) -> Result<Vec<u8>, Refusal> {
    let mut replacer = StreamReplacer::new();
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend_from_slice(&replacer.feed(Bytes::copy_from_slice(chunk), resolver)?);
        assert!(replacer.pending() < SEALED_TOKEN_LEN);
    }
    out.extend_from_slice(&replacer.finish());
    Ok(out)
}

#[test]
fn replaces_a_token_in_one_buffer() {
    let input = format!("Bearer {}", token(0x11));
    let out = substitute_all(input.as_bytes(), &mut resolver()).unwrap();
    assert_eq!(&*out, b"Bearer VALUE-ONE");
    let untouched = substitute_all(b"nothing here", &mut resolver()).unwrap();
    assert!(matches!(untouched, Cow::Borrowed(_)));
}

#[test]
fn unknown_token_is_refused() {
    let input = format!("x={}", token(0x99));
    assert!(substitute_all(input.as_bytes(), &mut resolver()).is_err());
    assert!(stream(&[input.as_bytes()], &mut resolver()).is_err());
}

#[test]
fn near_misses_pass_through() {
    let input = b"osb_sealed_ osb_sealed_ABC osb_sealed_0123 osb_seal";
    assert_eq!(&*substitute_all(input, &mut resolver()).unwrap(), input);
    assert_eq!(stream(&[input], &mut resolver()).unwrap(), input);
}

#[test]
fn token_split_at_every_offset() {
    let body = format!("{{\"key\":\"{}\",\"n\":1}}", token(0x22));
    let expected = naive(body.as_bytes(), &mut resolver()).unwrap();
    let start = body.find("osb_sealed_").unwrap();
    for split in start..=start + SEALED_TOKEN_LEN {
        let (left, right) = body.as_bytes().split_at(split);
        assert_eq!(
            stream(&[left, right], &mut resolver()).unwrap(),
            expected,
            "split {split}"
        );
    }
    let bytes: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
    assert_eq!(stream(&bytes, &mut resolver()).unwrap(), expected);
}

fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..20),
        Just(token(0x11).as_bytes().to_vec()),
        Just(token(0x22).as_bytes().to_vec()),
        Just(token(0x33).as_bytes().to_vec()),
        Just(b"osb_sealed_".to_vec()),
        Just(b"osb_sea".to_vec()),
        Just(b"osb_sealed_0123456789abcdef".to_vec()),
    ]
}

proptest! {
    #[test]
    fn streaming_matches_the_naive_reference(
        pieces in proptest::collection::vec(piece(), 0..12),
        cuts in proptest::collection::vec(0usize..400, 0..8),
    ) {
        let input: Vec<u8> = pieces.concat();
        let expected = naive(&input, &mut resolver()).unwrap();
        let whole = substitute_all(&input, &mut resolver()).unwrap();
        prop_assert_eq!(&*whole, &expected[..]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|cut| cut.min(input.len())).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for cut in cuts {
            chunks.push(&input[last..cut]);
            last = cut;
        }
        chunks.push(&input[last..]);
        prop_assert_eq!(stream(&chunks, &mut resolver()).unwrap(), expected);
    }
}
