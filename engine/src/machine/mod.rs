//! The deployment state machine: pure, synchronous, deterministic.
//!
//! Architecture invariant: nothing in this module does IO, reads a clock, spawns, or
//! logs. It imports neither tokio nor sled (a test in `tests/` checks the sources).
//! `evolve` folds events into state; `decide` turns state into the next facts or effects.

mod decide;
mod effect;
mod event;
mod hooks;
mod maintenance;
mod plan;
mod state;

pub use decide::{decide, Action, Decision};
pub use effect::{deadline_ms, new_container_name, Effect};
pub use event::{
    DeploymentStarted, Event, Fact, FailedOutcome, FailureKind, HostImage, Observation,
};
pub use hooks::{HookCall, HookExit, HookName};
pub use maintenance::MaintenancePage;
pub use plan::{
    FailurePolicy, Plan, Purpose, RetryPolicy, RoleKind, StepName, Target, Timeouts, UnknownStep,
};
pub use state::{
    DeploymentState, HookRun, Phase, Provenance, Serving, StepFailure, TargetState, TargetStatus,
};

/// The log and the code disagree: an event cannot happen in the state the earlier
/// events produced. This is never the user's fault and never silently skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the log and the code disagree at event {seq} ({kind}): {why}")]
    Impossible {
        seq: u64,
        kind: &'static str,
        why: String,
    },
    #[error("the log has no deployment-started event")]
    NotStarted,
    #[error("the log and the code disagree: the deployment is {phase} but no target can move")]
    NoProgress { phase: &'static str },
}
