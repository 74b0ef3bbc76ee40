//! The boundary between the engine and the world. Real executors (Docker, Caddy, SSH)
//! and the simulator implement the same contract:
//!
//! - `execute` is idempotent under the effect's key: redoing a step adopts what exists
//!   (the container named `new_container`, an upstream already present) instead of
//!   creating a twin;
//! - `observe` answers from the world itself, never from memory, whether the step has
//!   taken effect;
//! - every error says whether trying again can help, and whether the step may have
//!   happened anyway.

use std::future::Future;

use std::pin::Pin;

use crate::ids::DeploymentId;
use crate::machine::{Effect, HookCall, HookExit, Observation, RoleKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// A transient problem; the step may be tried again.
    #[error("{0}")]
    Retryable(String),
    /// Trying again will not help.
    #[error("{0}")]
    Permanent(String),
    /// The step may or may not have taken effect: observe before redoing it.
    #[error("{0}")]
    OutcomeUnknown(String),
}

impl ExecError {
    /// The same kind of error with its message rewritten (who must react stays the same).
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> ExecError {
        match self {
            ExecError::Retryable(m) => ExecError::Retryable(f(m)),
            ExecError::Permanent(m) => ExecError::Permanent(f(m)),
            ExecError::OutcomeUnknown(m) => ExecError::OutcomeUnknown(f(m)),
        }
    }
}

/// What runs on a host for a role before a deployment starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Survey {
    /// Running containers of the service and role: the ones a deployment replaces.
    pub containers: Vec<String>,
    /// Their version, from their labels.
    pub version: Option<String>,
}

pub trait Executor {
    fn execute(&self, effect: &Effect) -> impl Future<Output = Result<Observation, ExecError>>;
    fn observe(
        &self,
        effect: &Effect,
    ) -> impl Future<Output = Result<Option<Observation>, ExecError>>;
    fn survey(
        &self,
        service: &str,
        role: &str,
        kind: RoleKind,
        host: &str,
    ) -> impl Future<Output = Result<Survey, ExecError>>;
    /// Every container of the role on the host, running or stopped (what a cleanup
    /// removes).
    fn survey_all(
        &self,
        service: &str,
        role: &str,
        host: &str,
    ) -> impl Future<Output = Result<Survey, ExecError>>;
    /// Brings each host's copy of the deployment's journal up to `records` (all of them,
    /// as stored, from record 0), durable there: every host in `changing` must succeed;
    /// the others are tried without waiting long. Only a process holding the deploy lock on
    /// a host may write its copy. Returns every host that could not be brought up to date,
    /// and why.
    fn replicate(
        &self,
        service: &str,
        deployment: DeploymentId,
        records: &[Vec<u8>],
        hosts: &[String],
        changing: &[String],
    ) -> impl Future<Output = Vec<(String, ExecError)>>;
}

/// Runs the project's hooks on the deploying machine (the real one spawns the
/// executable; the simulator decides an exit). Never fails: how the hook ended, including
/// "could not be started", is the answer.
pub trait HookRunner {
    fn run<'a>(&'a self, call: &'a HookCall) -> Pin<Box<dyn Future<Output = HookExit> + 'a>>;
}
