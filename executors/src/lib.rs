//! Executors perform the engine's effects. `sim` is an in-memory world for property
//! tests and `odysseus simulate`; it obeys the same contract as the real executors.

pub mod docker;
pub mod doctor;
pub mod fleet_lock;
pub mod host_journal;
pub mod host_lock;
pub mod redact;
pub mod sim;
pub mod ssh;
pub mod steps;
