//! Fuzz target `express_request`: the oracle `osb_proxy::fuzzing::express_request` (its proptest twin runs in CI).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    osb_proxy::fuzzing::express_request(data);
});
