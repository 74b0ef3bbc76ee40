#![no_main]
//! Arbitrary event sequences folded by the state machine: never a panic, and every
//! event round-trips through the journal encoding.
libfuzzer_sys::fuzz_target!(|data: &[u8]| odysseus_engine::fuzzing::fold_events(data));
