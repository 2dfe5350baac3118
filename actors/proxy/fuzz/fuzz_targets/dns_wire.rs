//! Fuzz target `dns_wire`: the worker resolver's DNS wire parser never panics, a parsed query's
//! question lies inside the packet, and the response built from it echoes that question.
#![no_main]

use osb_vm::dns::wire::{build_response, format_error, parse_query, RCODE_NOERROR};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = format_error(data);
    if let Some(query) = parse_query(data) {
        assert!(query.question_end <= data.len() && query.question_end >= 12);
        let answer = build_response(data, &query, RCODE_NOERROR, Some([10, 0, 0, 1].into()));
        assert_eq!(&answer[12..query.question_end], &data[12..query.question_end]);
    }
});
