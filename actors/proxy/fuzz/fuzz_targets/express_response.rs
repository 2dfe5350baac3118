//! Fuzz target `express_response`: the oracle `osb_proxy::fuzzing::express_response` (its proptest twin runs in CI).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    osb_proxy::fuzzing::express_response(data);
});
