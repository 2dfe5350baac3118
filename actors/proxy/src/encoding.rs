//! Content codings and scrubbing (ADR 0109): toward an upstream of a session with secrets the
//! proxy offers only codings it can decode (`gzip`, `deflate`; `identity` for range requests),
//! and a response in one of them is decoded — in bounded steps, so a compression bomb costs at
//! most one step of memory — scrubbed and handed to the sandbox as identity. A response in any
//! other coding (`br`, `zstd`, `compress`, stacked codings) cannot be scrubbed and is refused
//! with a 502. It must never hand the sandbox bytes it could not scrub.

use bytes::{Buf, Bytes, BytesMut};
use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use http::header::{self, HeaderMap};

/// What the proxy offers upstream in `Accept-Encoding` for sessions with secrets.
pub const OFFERED: &str = "gzip, deflate";
/// What it offers for range requests (a range of a compressed representation cannot be decoded).
pub const OFFERED_FOR_RANGES: &str = "identity";

/// Most decoded bytes one step produces.
const STEP_OUTPUT: usize = 64 * 1024;
/// Compressed bytes handed to the decoder at a time.
const STEP_INPUT: usize = 8 * 1024;

/// The `Accept-Encoding` to send upstream, for a request with or without a `Range` header.
pub fn accept_encoding_for(has_range: bool) -> &'static str {
    if has_range {
        OFFERED_FOR_RANGES
    } else {
        OFFERED
    }
}

/// A response's content coding as far as scrubbing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Deflate,
}

/// The coding of a response, or why it cannot be scrubbed.
pub fn response_coding(headers: &HeaderMap) -> Result<Coding, String> {
    coding_of(
        headers
            .get_all(header::CONTENT_ENCODING)
            .iter()
            .map(|value| value.as_bytes()),
    )
}

/// The coding named by `Content-Encoding` values, or why it cannot be scrubbed.
pub fn coding_of<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<Coding, String> {
    let mut codings = Vec::new();
    for value in values {
        let text = String::from_utf8_lossy(value).to_ascii_lowercase();
        for coding in text.split(',').map(str::trim) {
            if !(coding.is_empty() || coding == "identity") {
                codings.push(coding.to_owned());
            }
        }
    }
    match codings.as_slice() {
        [] => Ok(Coding::Identity),
        [one] if one == "gzip" || one == "x-gzip" => Ok(Coding::Gzip),
        [one] if one == "deflate" => Ok(Coding::Deflate),
        _ => Err(format!(
            "it answered with content-encoding {}, which the proxy cannot decode to scrub secret values from (it offers only {OFFERED})",
            describe(&codings)
        )),
    }
}

/// A transfer coding other than `chunked` (which hyper leaves undecoded and the proxy would hand
/// over still coded, with the header that says so dropped), or `None`.
pub fn unsupported_transfer_coding(headers: &HeaderMap) -> Option<String> {
    let codings: Vec<String> = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .split(',')
                .map(|coding| coding.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|coding| !coding.is_empty())
        .collect();
    codings
        .iter()
        .any(|coding| coding != "chunked")
        .then(|| describe(&codings))
}

/// Names codings for a refusal without quoting what the upstream sent: registered coding names
/// are named, anything else is "an unknown coding" (an upstream could put a value there).
fn describe(codings: &[String]) -> String {
    const KNOWN: [&str; 9] = [
        "gzip",
        "x-gzip",
        "deflate",
        "br",
        "zstd",
        "compress",
        "x-compress",
        "chunked",
        "identity",
    ];
    let named: Vec<&str> = codings
        .iter()
        .map(|coding| {
            KNOWN
                .iter()
                .find(|known| **known == coding.as_str())
                .copied()
                .unwrap_or("(an unknown coding)")
        })
        .collect();
    format!("\"{}\"", named.join(", "))
}

enum Inflater {
    /// `deflate` before its first two bytes arrived (zlib-wrapped or raw is decided then).
    Undecided,
    Gzip(MultiGzDecoder<Vec<u8>>),
    Zlib(ZlibDecoder<Vec<u8>>),
    Raw(DeflateDecoder<Vec<u8>>),
}

/// A streaming decoder that yields at most [`STEP_OUTPUT`] bytes per step.
pub struct Decoder {
    inflater: Inflater,
    input: BytesMut,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("input", &self.input.len())
            .finish_non_exhaustive()
    }
}

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("the response body is not valid {0}")]
pub struct DecodeError(&'static str);

impl Decoder {
    /// A decoder for `coding` (`None` for identity).
    pub fn for_coding(coding: Coding) -> Option<Self> {
        let inflater = match coding {
            Coding::Identity => return None,
            Coding::Gzip => Inflater::Gzip(MultiGzDecoder::new(Vec::new())),
            Coding::Deflate => Inflater::Undecided,
        };
        Some(Self {
            inflater,
            input: BytesMut::new(),
        })
    }

    /// Takes more compressed input and returns the first step of output.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Bytes, DecodeError> {
        self.input.extend_from_slice(chunk);
        self.step()
    }

    /// Whether compressed input is waiting that a step can use (a `deflate` body needs two
    /// bytes before its wrapping is known).
    pub fn has_input(&self) -> bool {
        match self.inflater {
            Inflater::Undecided => self.input.len() >= 2,
            _ => !self.input.is_empty(),
        }
    }

    /// The next step of output from input already received (empty when there is none).
    pub fn step(&mut self) -> Result<Bytes, DecodeError> {
        if matches!(self.inflater, Inflater::Undecided) {
            if self.input.len() < 2 {
                return Ok(Bytes::new());
            }
            let header = u16::from_be_bytes([self.input[0], self.input[1]]);
            self.inflater = if self.input[0] & 0x0f == 8 && header % 31 == 0 {
                Inflater::Zlib(ZlibDecoder::new(Vec::new()))
            } else {
                Inflater::Raw(DeflateDecoder::new(Vec::new()))
            };
        }
        let mut produced = Vec::new();
        while !self.input.is_empty() && produced.len() < STEP_OUTPUT {
            let take = self.input.len().min(STEP_INPUT);
            let written = match &mut self.inflater {
                Inflater::Gzip(decoder) => write_some(decoder, &self.input[..take], "gzip")?,
                Inflater::Zlib(decoder) => write_some(decoder, &self.input[..take], "deflate")?,
                Inflater::Raw(decoder) => write_some(decoder, &self.input[..take], "deflate")?,
                Inflater::Undecided => 0,
            };
            produced.append(&mut self.output_buffer());
            if written == 0 {
                // The stream ended; anything after it is ignored.
                self.input.clear();
                break;
            }
            self.input.advance(written);
        }
        Ok(Bytes::from(produced))
    }

    /// The end of the body: whatever the decoder still holds.
    pub fn finish(&mut self) -> Result<Bytes, DecodeError> {
        if matches!(self.inflater, Inflater::Undecided) {
            // Fewer than two bytes of a deflate body: not a valid stream.
            return if self.input.is_empty() {
                Ok(Bytes::new())
            } else {
                Err(DecodeError("deflate"))
            };
        }
        let mut all = Vec::new();
        while self.has_input() {
            let step = self.step()?;
            all.extend_from_slice(&step);
        }
        let flushed = match &mut self.inflater {
            Inflater::Gzip(decoder) => decoder.try_finish().map_err(|_| DecodeError("gzip")),
            Inflater::Zlib(decoder) => decoder.try_finish().map_err(|_| DecodeError("deflate")),
            Inflater::Raw(decoder) => decoder.try_finish().map_err(|_| DecodeError("deflate")),
            Inflater::Undecided => Ok(()),
        };
        flushed?;
        all.append(&mut self.output_buffer());
        Ok(Bytes::from(all))
    }

    fn output_buffer(&mut self) -> Vec<u8> {
        match &mut self.inflater {
            Inflater::Gzip(decoder) => std::mem::take(decoder.get_mut()),
            Inflater::Zlib(decoder) => std::mem::take(decoder.get_mut()),
            Inflater::Raw(decoder) => std::mem::take(decoder.get_mut()),
            Inflater::Undecided => Vec::new(),
        }
    }
}

/// Writes what the decoder takes of `input` and flushes its output into its inner buffer.
fn write_some<W: std::io::Write>(
    decoder: &mut W,
    input: &[u8],
    name: &'static str,
) -> Result<usize, DecodeError> {
    let written = decoder.write(input).map_err(|_| DecodeError(name))?;
    decoder.flush().map_err(|_| DecodeError(name))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use http::HeaderValue;

    use super::*;

    fn decode_in_pieces(coding: Coding, wire: &[u8], piece: usize) -> Vec<u8> {
        let mut decoder = Decoder::for_coding(coding).unwrap();
        let mut out = Vec::new();
        for part in wire.chunks(piece.max(1)) {
            out.extend_from_slice(&decoder.push(part).unwrap());
            while decoder.has_input() {
                out.extend_from_slice(&decoder.step().unwrap());
            }
        }
        out.extend_from_slice(&decoder.finish().unwrap());
        out
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_decode_in_any_pieces() {
        let text: Vec<u8> = b"hello scrubbed world ".repeat(5000);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&text).unwrap();
        let gzip = gzip.finish().unwrap();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&text).unwrap();
        let zlib = zlib.finish().unwrap();
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&text).unwrap();
        let raw = raw.finish().unwrap();
        for piece in [1, 7, 100, 100_000] {
            assert_eq!(decode_in_pieces(Coding::Gzip, &gzip, piece), text);
            assert_eq!(decode_in_pieces(Coding::Deflate, &zlib, piece), text);
            assert_eq!(decode_in_pieces(Coding::Deflate, &raw, piece), text);
        }
    }

    #[test]
    fn a_compression_bomb_is_decoded_in_bounded_steps() {
        let zeros = vec![0u8; 64 * 1024 * 1024];
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gzip.write_all(&zeros).unwrap();
        let bomb = gzip.finish().unwrap();
        assert!(bomb.len() < 100 * 1024);
        let mut decoder = Decoder::for_coding(Coding::Gzip).unwrap();
        let mut total = decoder.push(&bomb).unwrap().len();
        assert!(total <= STEP_OUTPUT + 64 * 1024);
        while decoder.has_input() {
            let step = decoder.step().unwrap().len();
            assert!(
                step <= STEP_OUTPUT + 64 * 1024,
                "one step produced {step} bytes"
            );
            total += step;
        }
        total += decoder.finish().unwrap().len();
        assert_eq!(total, zeros.len());
    }

    #[test]
    fn codings_the_proxy_cannot_scrub_are_named() {
        let mut headers = HeaderMap::new();
        assert_eq!(response_coding(&headers), Ok(Coding::Identity));
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("GZIP"));
        assert_eq!(response_coding(&headers), Ok(Coding::Gzip));
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static("identity, deflate"),
        );
        assert_eq!(response_coding(&headers), Ok(Coding::Deflate));
        for refused in ["br", "zstd", "compress", "gzip, gzip", "gzip, br"] {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(refused));
            let reason = response_coding(&headers).unwrap_err();
            assert!(reason.contains("content-encoding"), "{reason}");
        }
        assert_eq!(accept_encoding_for(true), "identity");
    }
}
