//! The facts a deployment's log is made of. Each is past tense: something that was
//! decided or observed. The runtime stamps every fact with the time it was appended.

use serde::{Deserialize, Serialize};

use super::plan::{Plan, StepName};
use crate::ids::{DeploymentId, Operator, Timestamp};

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    pub fact: Fact,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DeploymentStarted {
    pub id: DeploymentId,
    pub service: String,
    /// The image repository, without the tag.
    pub image: String,
    /// The tag being deployed, e.g. `v2`.
    pub version: String,
    /// A digest of the config the plan was built from (secret values are not part of it).
    pub config_digest: String,
    pub plan: Plan,
    pub operator: Operator,
    /// The fencing token of the lock this deployment runs under.
    pub lock_token: u64,
}

/// What an executor saw when a step finished, kept for the audit trail.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Observation {
    /// The step had nothing further to report.
    Done,
    /// A container the step created or adopted.
    Container { id: String },
    /// How a drain ended: `remaining` > 0 means the drain timeout cut it short.
    Drained { waited_ms: u64, remaining: u32 },
    /// How many things the step acted on (containers stopped, stale upstreams removed).
    Count { n: u32 },
}

/// Who must react to a failed step.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum FailureKind {
    /// A transient problem: the same step may be tried again.
    Retryable,
    /// Trying again will not help (e.g. the new container never became healthy).
    Permanent,
    /// The step may or may not have taken effect (a timeout, a lost connection): the
    /// world must be observed before anything is redone.
    OutcomeUnknown,
}

/// How a deployment that did not complete ended this run.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum FailedOutcome {
    /// Fleet policy `halt`: finished targets stay new, the rest old. Resumable.
    Halted,
    /// Fleet policy `rollback`: every target is back on the old version. Final.
    RolledBack,
    /// A target's own undo failed past its retries; it needs `--abort` again (or a
    /// person) once the host answers. Resumable.
    RollbackIncomplete,
}

impl FailedOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            FailedOutcome::Halted => "halted",
            FailedOutcome::RolledBack => "rolled-back",
            FailedOutcome::RollbackIncomplete => "rollback-incomplete",
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Fact {
    DeploymentStarted(Box<DeploymentStarted>),
    /// Written (and flushed) before the effect runs.
    StepStarted {
        target: u32,
        step: StepName,
        attempt: u32,
        key: String,
    },
    StepSucceeded {
        target: u32,
        step: StepName,
        attempt: u32,
        observed: Observation,
    },
    StepFailed {
        target: u32,
        step: StepName,
        attempt: u32,
        kind: FailureKind,
        reason: String,
    },
    /// After a restart, what the world showed about a step whose outcome was in doubt:
    /// `Some` means it had taken effect, `None` that it had not.
    StepObserved {
        target: u32,
        step: StepName,
        attempt: u32,
        done: Option<Observation>,
    },
    TargetCompleted {
        target: u32,
    },
    /// The target's own steps will now be undone, newest first.
    TargetRollbackStarted {
        target: u32,
        reason: String,
    },
    TargetRolledBack {
        target: u32,
    },
    TargetRollbackFailed {
        target: u32,
        reason: String,
    },
    DeploymentCompleted,
    DeploymentFailed {
        outcome: FailedOutcome,
        reason: String,
    },
    AbortRequested {
        by: Operator,
    },
    DeploymentAborted,
    Resumed {
        by: Operator,
        lock_token: u64,
    },
    LockTakenOver {
        from: Operator,
        by: Operator,
        lock_token: u64,
    },
    /// The driving process was asked to stop (Ctrl-C, SIGTERM) and abandoned the run; a
    /// step it had started is observed by whoever resumes.
    Interrupted {
        by: Operator,
        signal: String,
    },
    /// An operator broke the deploy lock (`odysseus lock release`), taking it from `from`.
    LockReleased {
        by: Operator,
        from: Option<Operator>,
    },
    /// What exactly is being deployed, recorded right after `DeploymentStarted`: the
    /// image id each host has for the tag (pulled first where missing; None only in
    /// logs of runs that could not tell),
    /// and the names of the secrets with a digest of their values (never the values).
    Provenance {
        images: Vec<HostImage>,
        secrets: Vec<String>,
        secrets_digest: Option<String>,
    },
    /// An operator ended a deployment that can never finish (`deploy --abandon`): its
    /// containers are left as they are, and the journal says who and why.
    Abandoned {
        by: Operator,
        reason: String,
    },
    /// A halted deployment that a new one replaces (recorded in the halted one).
    Superseded {
        by: Operator,
        deployment: DeploymentId,
    },
    /// The halted deployment this one replaces (recorded in the new one, after
    /// `deployment-started`).
    Supersedes {
        deployment: DeploymentId,
    },
    /// The image is about to be built (write-ahead: a run that dies while building builds
    /// again when resumed). Only before any step and before provenance.
    BuildStarted {
        /// The commit the version was taken from, when it came from git.
        commit: Option<String>,
        /// `local`, or `remote HOST`.
        builder: String,
        platforms: Vec<String>,
        /// Build arg names (values may be secrets: never recorded).
        args: Vec<String>,
    },
    /// What the build made: the image id on the builder. A resume never builds again.
    Built {
        image_id: String,
        millis: u64,
    },
    /// The build failed: nothing changed on any host, and the deployment is over.
    BuildFailed {
        reason: String,
    },
    /// deploy.yml's `release_command` is about to run once, in a one-off container of the
    /// new image on `host`, before any target moves. Write-ahead: a run that dies while it
    /// runs is resumed by waiting for that same container (`container`, named from the
    /// deployment id), never by a second run.
    ReleaseStarted {
        host: String,
        container: String,
        command: Vec<String>,
    },
    /// The release command exited 0: the targets may move.
    Released {
        millis: u64,
    },
    /// The release command failed (its exit code, or why it could not run): nothing was
    /// switched, and the deployment is over.
    ReleaseFailed {
        exit_code: Option<i64>,
        reason: String,
    },
    /// The hooks the project had when the deployment started (by name, e.g.
    /// `pre-app-boot`): the app-boot ones are due at every batch of this deployment, a
    /// resume included, whatever the project holds by then.
    HooksFound {
        hooks: Vec<String>,
    },
    /// A hook is about to run on the deploying machine (write-ahead: one that dies while
    /// it runs runs again when the deployment is resumed). Its output is never recorded:
    /// it may hold secrets.
    HookStarted {
        hook: String,
        hosts: Vec<String>,
    },
    /// How the hook that started last ended. A gate (`pre-*`) that did not exit 0 stops
    /// what it guards; a `post-*` one is reported.
    HookEnded {
        hook: String,
        exit_code: Option<i32>,
        reason: String,
        millis: u64,
    },
    /// The `pre-build` or `pre-deploy` hook that just ended did not exit 0: the deployment
    /// is over, with nothing changed on any host.
    HookFailed {
        hook: String,
        reason: String,
    },
    /// What the routes of a maintenance deployment answer (in its preamble, before its
    /// first step): a resume writes this page, not today's flags.
    MaintenancePage(super::maintenance::MaintenancePage),
}

/// The image a host has for the deployed tag.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct HostImage {
    pub host: String,
    pub image_id: Option<String>,
}

impl Fact {
    /// How a hook run ended, for a `hook-ended` record.
    pub fn hook_exit(&self) -> Option<super::hooks::HookExit> {
        match self {
            Fact::HookEnded {
                exit_code,
                reason,
                millis,
                ..
            } => Some(super::hooks::HookExit {
                exit_code: *exit_code,
                reason: reason.clone(),
                millis: *millis,
            }),
            _ => None,
        }
    }

    /// A stable name per kind, used in the journal envelope, in `replay` and in JSON.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Fact::DeploymentStarted(s) => match s.plan.purpose {
                super::plan::Purpose::Deploy => "deployment-started",
                super::plan::Purpose::Cleanup => "cleanup-started",
                super::plan::Purpose::Maintenance => "maintenance-started",
                super::plan::Purpose::Live => "live-started",
            },
            Fact::StepStarted { .. } => "step-started",
            Fact::StepSucceeded { .. } => "step-succeeded",
            Fact::StepFailed { .. } => "step-failed",
            Fact::StepObserved { .. } => "step-observed",
            Fact::TargetCompleted { .. } => "target-completed",
            Fact::TargetRollbackStarted { .. } => "target-rollback-started",
            Fact::TargetRolledBack { .. } => "target-rolled-back",
            Fact::TargetRollbackFailed { .. } => "target-rollback-failed",
            Fact::DeploymentCompleted => "deployment-completed",
            Fact::DeploymentFailed { .. } => "deployment-failed",
            Fact::AbortRequested { .. } => "abort-requested",
            Fact::DeploymentAborted => "deployment-aborted",
            Fact::Resumed { .. } => "resumed",
            Fact::LockTakenOver { .. } => "lock-taken-over",
            Fact::Interrupted { .. } => "interrupted",
            Fact::LockReleased { .. } => "lock-released",
            Fact::Provenance { .. } => "provenance",
            Fact::Abandoned { .. } => "abandoned",
            Fact::Superseded { .. } => "superseded",
            Fact::Supersedes { .. } => "supersedes",
            Fact::BuildStarted { .. } => "build-started",
            Fact::Built { .. } => "built",
            Fact::BuildFailed { .. } => "build-failed",
            Fact::ReleaseStarted { .. } => "release-started",
            Fact::Released { .. } => "released",
            Fact::ReleaseFailed { .. } => "release-failed",
            Fact::HooksFound { .. } => "hooks-found",
            Fact::HookStarted { .. } => "hook-started",
            Fact::HookEnded { .. } => "hook-ended",
            Fact::HookFailed { .. } => "hook-failed",
            Fact::MaintenancePage(_) => "maintenance-page",
        }
    }

    /// The target a fact is about, if any.
    pub fn target(&self) -> Option<u32> {
        match self {
            Fact::StepStarted { target, .. }
            | Fact::StepSucceeded { target, .. }
            | Fact::StepFailed { target, .. }
            | Fact::StepObserved { target, .. }
            | Fact::TargetCompleted { target }
            | Fact::TargetRollbackStarted { target, .. }
            | Fact::TargetRolledBack { target }
            | Fact::TargetRollbackFailed { target, .. } => Some(*target),
            _ => None,
        }
    }

    /// True for facts after which nothing more can happen to the deployment, so the
    /// service no longer has it as its unfinished deployment.
    pub fn closes_deployment(&self) -> bool {
        matches!(
            self,
            Fact::DeploymentCompleted
                | Fact::DeploymentAborted
                | Fact::Abandoned { .. }
                | Fact::Superseded { .. }
                | Fact::BuildFailed { .. }
                | Fact::ReleaseFailed { .. }
                | Fact::HookFailed { .. }
                | Fact::DeploymentFailed {
                    outcome: FailedOutcome::RolledBack,
                    ..
                }
        )
    }

    /// True when the fact announces a side effect that is about to run.
    pub fn announces_effect(&self) -> bool {
        matches!(self, Fact::StepStarted { .. } | Fact::ReleaseStarted { .. })
    }
}
