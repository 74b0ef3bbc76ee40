//! Effects are data: what the runtime must ask an executor to do (or to observe).

use serde::Serialize;

use super::plan::{RoleKind, StepName, Timeouts};
use crate::ids::DeploymentId;

/// Everything an executor needs to perform one step on one target. It is derived from
/// the log alone, so the same step redone after a crash carries the same names and keys.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Effect {
    pub deployment: DeploymentId,
    pub target: u32,
    pub step: StepName,
    pub attempt: u32,
    /// The idempotency key of this step: redoing it adopts what exists under this key.
    pub key: String,
    pub service: String,
    pub role: String,
    pub host: String,
    pub kind: RoleKind,
    /// The image repository and the tag being deployed.
    pub image: String,
    pub version: String,
    /// The image id the host had for the tag when the deployment recorded its provenance:
    /// the new container must be created from exactly that image.
    pub image_id: Option<String>,
    /// The new container's name: the key under which it is created and adopted.
    pub new_container: String,
    /// The containers this deployment replaces on the target (a cleanup: removes).
    pub old_containers: Vec<String>,
    /// A cleanup's steps have no new container to check before they act.
    pub purpose: super::plan::Purpose,
    pub old_version: Option<String>,
    /// What a route in maintenance answers (`enter-maintenance`), from the log.
    pub page: Option<super::maintenance::MaintenancePage>,
    pub timeouts: Timeouts,
    /// Wait this long before running it (backoff after a failure).
    pub backoff_ms: u64,
    /// The hard ceiling on the whole effect; past it the outcome is unknown.
    pub deadline_ms: u64,
}

impl Effect {
    /// The full image reference, `repository:tag`.
    pub fn image_ref(&self) -> String {
        format!("{}:{}", self.image, self.version)
    }
}

/// The name of the container a deployment creates for a role: deterministic, so a
/// redone `start-new` finds the container instead of creating a twin.
pub fn new_container_name(service: &str, role: &str, deployment: DeploymentId) -> String {
    format!("{service}-{role}-{}", deployment.short())
}

/// How long a step may take in all, from the target's timeouts. A step that waits on
/// each of several old containers in turn (restart and health, stop) gets each one's
/// time: one shared deadline would give spurious outcome-unknown failures.
pub fn deadline_ms(step: StepName, t: &Timeouts, old_containers: usize) -> u64 {
    let base = match step {
        StepName::StartNew => t.op_ms,
        StepName::AwaitHealthy => t.boot_ms,
        StepName::AddUpstream | StepName::RemoveOldUpstream | StepName::CleanStaleUpstreams => {
            t.op_ms
        }
        StepName::DrainOld => t.drain_ms,
        StepName::StopOld => t.stop_ms,
        StepName::RestoreOldUpstream => t.boot_ms,
        StepName::RemoveNew => t.drain_ms + t.stop_ms,
        StepName::UnrouteOld
        | StepName::RemoveOld
        | StepName::RemoveRoute
        | StepName::EnterMaintenance
        | StepName::LeaveMaintenance => t.op_ms,
    };
    let each = match step {
        StepName::StopOld | StepName::RestoreOldUpstream | StepName::RemoveOld => {
            old_containers.max(1) as u64
        }
        _ => 1,
    };
    // Every step also makes a few API calls of its own.
    base.saturating_mul(each).saturating_add(t.op_ms)
}
