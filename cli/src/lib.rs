//! The parts of the `odysseus` binary that other crates use: the deploy.yml parser, for
//! the fuzz target and the tests that replay its corpus.

pub mod config;
pub mod files;
