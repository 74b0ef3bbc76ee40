//! Progress on stderr while a deployment runs. Always one line per step outcome, with its
//! duration — the same plain, stable lines on a terminal and in CI logs. On a terminal
//! (stderr is a TTY) each target in flight also gets a spinner below those lines naming
//! its current step and how long it has been running (indicatif); colour only on a
//! terminal and never when NO_COLOR is set.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use odysseus_engine::machine::{DeploymentState, Event, Fact, HookName, Observation};

pub struct Progress {
    started: HashMap<(u32, String), u64>,
    tty: Option<Spinners>,
}

/// The live part of a terminal display: one spinner per target with a step running.
struct Spinners {
    multi: MultiProgress,
    bars: HashMap<u32, ProgressBar>,
    color: bool,
}

impl Spinners {
    fn new() -> Self {
        Spinners {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: HashMap::new(),
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn step(&mut self, target: u32, what: String) {
        let color = self.color;
        let multi = &self.multi;
        let bar = self.bars.entry(target).or_insert_with(|| {
            let template = if color {
                "{spinner:.cyan} {msg} {elapsed:.dim}"
            } else {
                "{spinner} {msg} {elapsed}"
            };
            let bar = multi.add(ProgressBar::new_spinner());
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        bar.set_message(what);
        bar.reset_elapsed();
    }

    fn done(&mut self, target: u32) {
        if let Some(bar) = self.bars.remove(&target) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    /// A finished line, printed above the spinners; failures in red, successes in green.
    fn println(&self, line: &str) {
        let line = if !self.color {
            line.to_string()
        } else if line.contains("FAILED") {
            format!("\x1b[31m{line}\x1b[0m")
        } else if line.contains(" ok ") || line.ends_with(" done") {
            format!("\x1b[32m{line}\x1b[0m")
        } else {
            line.to_string()
        };
        // Beside the CLI's eprintln!: the config's secret values never reach the terminal.
        let _ = self
            .multi
            .println(odysseus_executors::redact::hide_known(&line));
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        for bar in self.bars.values() {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            started: HashMap::new(),
            tty: std::io::stderr().is_terminal().then(Spinners::new),
        }
    }

    /// Clears the spinners (a terminal shows only the finished lines from here on).
    pub fn finish(&mut self) {
        self.tty = None;
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
                if let Some(tty) = self.tty.as_mut() {
                    tty.step(*target, format!("{} {step}", place(*target)));
                }
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
            // A cleanup or maintenance on/off is never undone: its target stops where it
            // stands, and a resume redoes its steps.
            Fact::TargetRollbackStarted { target, reason }
                if !started.plan.purpose.is_undoable() =>
            {
                format!("{} gave up: {reason}", place(*target))
            }
            Fact::TargetRolledBack { target } if !started.plan.purpose.is_undoable() => format!(
                "{} stopped where it stands (a {} is not undone; --resume redoes it)",
                place(*target),
                started.plan.purpose.as_str()
            ),
            Fact::TargetRollbackStarted { target, reason } => {
                format!("{} rolling back: {reason}", place(*target))
            }
            Fact::TargetRolledBack { target } => {
                let first = started
                    .plan
                    .targets
                    .get(*target as usize)
                    .is_some_and(|t| t.is_first_deploy());
                if first {
                    format!(
                        "{} rolled back: nothing of it is left (it was a first deploy)",
                        place(*target)
                    )
                } else {
                    format!("{} rolled back: the old container serves", place(*target))
                }
            }
            Fact::TargetRollbackFailed { target, reason } => {
                format!("{} ROLLBACK FAILED: {reason}", place(*target))
            }
            Fact::LockTakenOver { from, .. } => {
                format!("took over the deploy lock from {from} (that process is gone)")
            }
            // pre-connect ran before any connection and was shown as it ran.
            Fact::HookStarted { hook, .. } | Fact::HookEnded { hook, .. }
                if hook == HookName::PreConnect.as_str() =>
            {
                return
            }
            Fact::HookStarted { hook, hosts } => {
                format!("[{hook}] running for {}", hosts.join(", "))
            }
            Fact::HookEnded { hook, .. } => {
                let exit = event.fact.hook_exit().unwrap_or_default();
                let millis = &exit.millis;
                let verdict = match HookName::parse(hook) {
                    _ if exit.ok() => "ok",
                    Some(h) if h.is_gate() => "FAILED",
                    _ => "failed (reported; nothing is undone)",
                };
                format!(
                    "[{hook}] {verdict}: {} in {:.2}s",
                    exit.describe(),
                    *millis as f64 / 1000.0
                )
            }
            _ => return,
        };
        if let Some(tty) = self.tty.as_mut() {
            if let Some(target) = event.fact.target() {
                if matches!(
                    event.fact,
                    Fact::TargetCompleted { .. }
                        | Fact::TargetRolledBack { .. }
                        | Fact::TargetRollbackFailed { .. }
                ) {
                    tty.done(target);
                }
            }
            tty.println(line.trim_end());
        } else {
            eprintln!("{}", line.trim_end());
        }
    }

    fn took(&self, target: u32, step: &str, now: u64) -> String {
        match self.started.get(&(target, step.to_string())) {
            Some(t0) => format!("{:.2}s", now.saturating_sub(*t0) as f64 / 1000.0),
            None => String::new(),
        }
    }
}
