//! Progress on stderr while a deployment runs: one plain line per step outcome, with
//! its duration, stable enough for logs and CI.

use std::collections::HashMap;

use odysseus_engine::machine::{DeploymentState, Event, Fact, Observation};

pub struct Progress {
    started: HashMap<(u32, String), u64>,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            started: HashMap::new(),
        }
    }

    pub fn event(&mut self, _seq: u64, event: &Event, state: &DeploymentState) {
        let Some(started) = state.started() else {
            return;
        };
        let place = |t: u32| {
            started
                .plan
                .targets
                .get(t as usize)
                .map(|t| format!("[{}@{}]", t.role, t.host))
                .unwrap_or_default()
        };
        let line = match &event.fact {
            Fact::StepStarted { target, step, .. } => {
                self.started.insert((*target, step.to_string()), event.at.0);
                return;
            }
            Fact::StepSucceeded {
                target,
                step,
                observed,
                ..
            }
            | Fact::StepObserved {
                target,
                step,
                done: Some(observed),
                ..
            } => {
                let took = self.took(*target, &step.to_string(), event.at.0);
                let detail = match (step, observed) {
                    (
                        odysseus_engine::machine::StepName::CleanStaleUpstreams,
                        Observation::Count { n },
                    ) => {
                        format!("Removed {n} stale upstream(s)")
                    }
                    (_, Observation::Container { id }) => {
                        format!("container {}", &id[..id.len().min(12)])
                    }
                    (
                        _,
                        Observation::Drained {
                            waited_ms,
                            remaining: 0,
                        },
                    ) => format!("drained after {:.1}s", *waited_ms as f64 / 1000.0),
                    (_, Observation::Drained { remaining, .. }) => {
                        format!("drain timeout with {remaining} connection(s) left")
                    }
                    (_, Observation::Count { n }) => format!("{n} affected"),
                    _ => String::new(),
                };
                let verb = if matches!(event.fact, Fact::StepObserved { .. }) {
                    "found done"
                } else {
                    "ok"
                };
                format!("{} {step} {verb} {took} {detail}", place(*target))
            }
            Fact::StepObserved {
                target,
                step,
                done: None,
                ..
            } => format!("{} {step} was not done; running it again", place(*target)),
            Fact::StepFailed {
                target,
                step,
                attempt,
                reason,
                ..
            } => {
                let took = self.took(*target, &step.to_string(), event.at.0);
                format!(
                    "{} {step} FAILED (attempt {attempt}) {took}: {reason}",
                    place(*target)
                )
            }
            Fact::TargetCompleted { target } => format!("{} done", place(*target)),
            Fact::TargetRollbackStarted { target, reason } => {
                format!("{} rolling back: {reason}", place(*target))
            }
            Fact::TargetRolledBack { target } => {
                format!("{} rolled back: the old container serves", place(*target))
            }
            Fact::TargetRollbackFailed { target, reason } => {
                format!("{} ROLLBACK FAILED: {reason}", place(*target))
            }
            Fact::LockTakenOver { from, .. } => {
                format!("took over the deploy lock from {from} (that process is gone)")
            }
            _ => return,
        };
        eprintln!("{}", line.trim_end());
    }

    fn took(&self, target: u32, step: &str, now: u64) -> String {
        match self.started.get(&(target, step.to_string())) {
            Some(t0) => format!("{:.2}s", now.saturating_sub(*t0) as f64 / 1000.0),
            None => String::new(),
        }
    }
}
