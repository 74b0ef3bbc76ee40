//! What a deployment will do: ordered targets, each with its steps, and the fleet policy.
//!
//! A plan is built once, before the first side effect, from the validated config and a
//! survey of what each host runs now. It is recorded in the `DeploymentStarted` event,
//! so a resumed deployment follows the plan it started with even if the config changed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The step names are part of the product: they appear in progress output, `--json`
/// and `odysseus replay`. Never rename one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum StepName {
    StartNew,
    AwaitHealthy,
    AddUpstream,
    RemoveOldUpstream,
    DrainOld,
    StopOld,
    CleanStaleUpstreams,
    // Undo steps, run in this order when a target rolls back.
    RestoreOldUpstream,
    RemoveNew,
    // A cleanup's own steps (`odysseus cleanup HOST`), between drain-old/stop-old.
    UnrouteOld,
    RemoveOld,
    RemoveRoute,
    // Maintenance mode's (`odysseus app maintenance|live`).
    EnterMaintenance,
    LeaveMaintenance,
}

impl StepName {
    pub const ALL: [StepName; 14] = [
        StepName::StartNew,
        StepName::AwaitHealthy,
        StepName::AddUpstream,
        StepName::RemoveOldUpstream,
        StepName::DrainOld,
        StepName::StopOld,
        StepName::CleanStaleUpstreams,
        StepName::RestoreOldUpstream,
        StepName::RemoveNew,
        StepName::UnrouteOld,
        StepName::RemoveOld,
        StepName::RemoveRoute,
        StepName::EnterMaintenance,
        StepName::LeaveMaintenance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepName::StartNew => "start-new",
            StepName::AwaitHealthy => "await-healthy",
            StepName::AddUpstream => "add-upstream",
            StepName::RemoveOldUpstream => "remove-old-upstream",
            StepName::DrainOld => "drain-old",
            StepName::StopOld => "stop-old",
            StepName::CleanStaleUpstreams => "clean-stale-upstreams",
            StepName::RestoreOldUpstream => "restore-old-upstream",
            StepName::RemoveNew => "remove-new",
            StepName::UnrouteOld => "unroute-old",
            StepName::RemoveOld => "remove-old",
            StepName::RemoveRoute => "remove-route",
            StepName::EnterMaintenance => "enter-maintenance",
            StepName::LeaveMaintenance => "leave-maintenance",
        }
    }

    pub fn is_undo(self) -> bool {
        matches!(self, StepName::RestoreOldUpstream | StepName::RemoveNew)
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a step; steps are start-new, await-healthy, add-upstream, remove-old-upstream, drain-old, stop-old, clean-stale-upstreams, restore-old-upstream, remove-new, unroute-old, remove-old, remove-route")]
pub struct UnknownStep(pub String);

impl FromStr for StepName {
    type Err = UnknownStep;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepName::ALL
            .into_iter()
            .find(|step| step.as_str() == s)
            .ok_or_else(|| UnknownStep(s.to_string()))
    }
}

/// A role named `web` is proxied through Caddy; every other role is a job role.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum RoleKind {
    Web,
    Job,
}

/// What the fleet does when one target fails past its retries.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub enum FailurePolicy {
    /// Stop starting new targets; finished targets stay on the new version.
    #[default]
    Halt,
    /// Also return every finished target to the old version.
    Rollback,
}

impl FailurePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Halt => "halt",
            FailurePolicy::Rollback => "rollback",
        }
    }
}

/// Every timeout of a target, in milliseconds, taken from the config.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Timeouts {
    /// How long a new container may take to become healthy.
    pub boot_ms: u64,
    /// Ceiling on waiting for the old container's connections to finish.
    pub drain_ms: u64,
    /// SIGTERM-to-SIGKILL grace when stopping a container.
    pub stop_ms: u64,
    /// Any other single operation (a Docker or Caddy API call).
    pub op_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            boot_ms: 60_000,
            drain_ms: 30_000,
            stop_ms: 10_000,
            op_ms: 30_000,
        }
    }
}

/// Bounded retries with exponential backoff for retryable failures.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts per step, the first one included.
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            backoff_base_ms: 500,
            backoff_max_ms: 10_000,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt` (1-based) after `failures` failures.
    pub fn backoff_ms(&self, failures: u32) -> u64 {
        if failures == 0 {
            return 0;
        }
        let factor = 1u64
            .checked_shl(failures.saturating_sub(1).min(32))
            .unwrap_or(u64::MAX);
        self.backoff_base_ms
            .saturating_mul(factor)
            .min(self.backoff_max_ms)
    }
}

/// One (role, host) pair to move to the new version.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Target {
    pub role: String,
    pub host: String,
    pub kind: RoleKind,
    /// Containers of this role running on the host when the plan was made. Empty means
    /// a first deploy: the old-container steps are skipped.
    pub old_containers: Vec<String>,
    /// The version those containers run, when their labels say.
    pub old_version: Option<String>,
    pub timeouts: Timeouts,
}

impl Target {
    pub fn is_first_deploy(&self) -> bool {
        self.old_containers.is_empty()
    }

    /// The forward steps of this target in a deployment of `purpose`.
    pub fn steps_for(&self, purpose: Purpose) -> Vec<StepName> {
        use StepName::*;
        match (purpose, self.kind) {
            (Purpose::Deploy, _) => self.steps(),
            // Out of the route first, then its connections drain, then it stops and goes;
            // the route itself goes last, once nothing of the service is left to serve.
            (Purpose::Cleanup, RoleKind::Web) => {
                vec![UnrouteOld, DrainOld, StopOld, RemoveOld, RemoveRoute]
            }
            (Purpose::Cleanup, RoleKind::Job) => vec![StopOld, RemoveOld],
            // The route answers for the service on its host: only web targets have one.
            (Purpose::Maintenance, RoleKind::Web) => vec![EnterMaintenance],
            (Purpose::Live, RoleKind::Web) => vec![LeaveMaintenance],
            (Purpose::Maintenance | Purpose::Live, RoleKind::Job) => Vec::new(),
        }
    }

    /// The forward steps of this target, in the order the product promises.
    pub fn steps(&self) -> Vec<StepName> {
        use StepName::*;
        let has_old = !self.is_first_deploy();
        match self.kind {
            RoleKind::Web if has_old => vec![
                StartNew,
                AwaitHealthy,
                AddUpstream,
                RemoveOldUpstream,
                DrainOld,
                StopOld,
                CleanStaleUpstreams,
            ],
            RoleKind::Web => vec![StartNew, AwaitHealthy, AddUpstream, CleanStaleUpstreams],
            RoleKind::Job if has_old => vec![StartNew, AwaitHealthy, StopOld],
            RoleKind::Job => vec![StartNew, AwaitHealthy],
        }
    }

    pub fn label(&self) -> String {
        format!("{}@{}", self.role, self.host)
    }
}

/// What a deployment is for. Both run through the same machine, journal, lock and
/// recovery; only the steps of their targets differ.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub enum Purpose {
    /// Move each target to a new version (the product's deploy sequence).
    #[default]
    Deploy,
    /// Take the service off a host (`odysseus cleanup`): unroute, drain, stop and remove
    /// its containers, then its route. Never undone: its on-failure policy is halt and an
    /// abort is refused (what is removed cannot be restored).
    Cleanup,
    /// Put the service's routes in maintenance (`odysseus app maintenance`): Caddy answers
    /// 503 with a page while the containers keep running. Never undone: `app live` is
    /// its own deployment.
    Maintenance,
    /// Take the routes out of maintenance (`odysseus app live`). Never undone.
    Live,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Deploy => "deploy",
            Purpose::Cleanup => "cleanup",
            Purpose::Maintenance => "maintenance",
            Purpose::Live => "live",
        }
    }

    /// A deploy's targets roll back on failure; the others' never do (what a cleanup
    /// removed cannot come back; maintenance and live are each other's undo, asked
    /// for by an operator): they halt, an abort is refused, a resume finishes them.
    pub fn is_undoable(self) -> bool {
        self == Purpose::Deploy
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// Ordered host by host; on one host, roles in config order.
    pub targets: Vec<Target>,
    /// In the journal as the kind of the starting fact (`deployment-started` or
    /// `cleanup-started`), not as a field of the plan: the frozen v1 plan has none.
    #[serde(default)]
    pub purpose: Purpose,
    /// How many hosts deploy at once (at least 1).
    pub batch_size: u32,
    pub on_failure: FailurePolicy,
    pub retry: RetryPolicy,
}

impl Plan {
    /// Hosts in the order they first appear among the targets.
    pub fn hosts(&self) -> Vec<&str> {
        let mut hosts: Vec<&str> = Vec::new();
        for target in &self.targets {
            if !hosts.contains(&target.host.as_str()) {
                hosts.push(&target.host);
            }
        }
        hosts
    }

    /// The batch a target belongs to: hosts are grouped `batch_size` at a time.
    pub fn batch_of(&self, target: usize) -> usize {
        let host = &self.targets[target].host;
        let index = self.hosts().iter().position(|h| h == host).unwrap_or(0);
        index / self.batch_size.max(1) as usize
    }
}
