//! How events and states are shown to people (text) and to machines (JSON). Field
//! names in JSON are stable: they are documented in README.md.

pub mod event;
