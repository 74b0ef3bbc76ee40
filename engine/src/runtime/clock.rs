//! Wall-clock time for event timestamps. Waiting always goes through `tokio::time`, so a
//! simulation can run on tokio's paused clock and stay deterministic.

use crate::ids::Timestamp;

pub trait Clock {
    fn now(&self) -> Timestamp;
}

/// The machine's real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since_epoch.as_millis() as u64)
    }
}
