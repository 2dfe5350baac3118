//! Fuzz target `decoder`: the oracle `osb_proxy::fuzzing::decoder` (its proptest twin runs in CI).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    osb_proxy::fuzzing::decoder(data);
});
