//! Virtual time: tokio's paused clock, reported as wall time from a fixed epoch so the
//! same seed gives the same timestamps.

use odysseus_engine::runtime::Clock;
use odysseus_engine::Timestamp;
use tokio::time::Instant;

#[derive(Clone)]
pub struct SimClock {
    base: Instant,
    epoch_ms: u64,
}

/// 2026-01-01T00:00:00Z: the simulated runs' wall clock starts here.
pub const SIM_EPOCH_MS: u64 = 1_767_225_600_000;

impl SimClock {
    pub fn new() -> Self {
        SimClock {
            base: Instant::now(),
            epoch_ms: SIM_EPOCH_MS,
        }
    }

    pub fn elapsed_ms(&self) -> u64 {
        Instant::now().duration_since(self.base).as_millis() as u64
    }
}

impl Default for SimClock {
    fn default() -> Self {
        SimClock::new()
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.epoch_ms + self.elapsed_ms())
    }
}
