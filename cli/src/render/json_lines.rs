//! `deploy --json`: every event on stdout as it is recorded, one JSON object per line,
//! in the same shape as `replay --json`'s events (with `duration_ms` on step outcomes).

use std::io::Write;

use odysseus_engine::machine::{DeploymentState, Event};

use super::event::{json, StepTimer};

#[derive(Default)]
pub struct JsonLines {
    timer: StepTimer,
}

impl JsonLines {
    pub fn event(&mut self, seq: u64, event: &Event, state: &DeploymentState) {
        let mut v = json(seq, event, state.started());
        if let Some(ms) = self.timer.duration(event) {
            v["duration_ms"] = serde_json::json!(ms);
        }
        // Flushed line by line: a reader acts on each event as it happens. A closed
        // stdout must not stop the deploy, so write errors are ignored here.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }
}
