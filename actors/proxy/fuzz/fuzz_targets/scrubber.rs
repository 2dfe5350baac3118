//! Fuzz target `scrubber`: the oracle `osb_proxy::fuzzing::scrubber_differential` (its proptest twin runs in CI).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    osb_proxy::fuzzing::scrubber_differential(data);
});
