#![no_main]
//! Arbitrary bytes decoded as a journal record or log: never a panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| odysseus_engine::fuzzing::decode_record(data));
