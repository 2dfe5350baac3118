//! Fuzz target `websocket_frames`: the oracle `osb_proxy::fuzzing::websocket_frames` (its proptest twin runs in CI).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    osb_proxy::fuzzing::websocket_frames(data);
});
