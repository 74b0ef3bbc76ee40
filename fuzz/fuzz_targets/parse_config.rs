//! deploy.yml parsing and validation: whatever the bytes, a Config or a list of problems,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    odysseus::config::fuzz_parse(data);
});
