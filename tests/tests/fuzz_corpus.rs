//! Replays the committed fuzz corpus (`fuzz/corpus/`) through the same entry points the
//! cargo-fuzz targets use, so every `cargo test` exercises the decoders.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| run(&data));
        assert!(result.is_ok(), "{} panics on {}", target, path.display());
        inputs += 1;
    }
    assert!(inputs >= 20, "the {target} corpus has only {inputs} inputs");
}

#[test]
fn the_record_decoder_survives_its_corpus() {
    replay("decode_record", odysseus_engine::fuzzing::decode_record);
}

#[test]
fn the_machine_survives_folding_its_corpus() {
    replay("fold_events", odysseus_engine::fuzzing::fold_events);
}

#[test]
fn the_config_parser_survives_its_corpus() {
    replay("parse_config", odysseus::config::fuzz_parse);
}
