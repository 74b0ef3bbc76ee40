//! Journal format version 1, frozen.
//!
//! bincode stores enum variants by position and struct fields by order, so these types
//! ARE the on-disk format. Never reorder, rename-with-reorder, insert or remove a variant
//! or field here: add a `wire_v2` module and a conversion instead. The golden logs in
//! `tests/golden/` are decoded by a test on every run to hold this promise.

use serde::{Deserialize, Serialize};

use crate::ids::{DeploymentId, Operator, Timestamp};
use crate::machine as m;

#[derive(Serialize, Deserialize)]
pub struct EventV1 {
    pub at_millis: u64,
    pub fact: FactV1,
}

#[derive(Serialize, Deserialize)]
pub enum FactV1 {
    DeploymentStarted(StartedV1),
    StepStarted {
        target: u32,
        step: StepV1,
        attempt: u32,
        key: String,
    },
    StepSucceeded {
        target: u32,
        step: StepV1,
        attempt: u32,
        observed: ObservationV1,
    },
    StepFailed {
        target: u32,
        step: StepV1,
        attempt: u32,
        kind: FailureKindV1,
        reason: String,
    },
    StepObserved {
        target: u32,
        step: StepV1,
        attempt: u32,
        done: Option<ObservationV1>,
    },
    TargetCompleted {
        target: u32,
    },
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
        outcome: FailedOutcomeV1,
        reason: String,
    },
    AbortRequested {
        by: OperatorV1,
    },
    DeploymentAborted,
    Resumed {
        by: OperatorV1,
        lock_token: u64,
    },
    LockTakenOver {
        from: OperatorV1,
        by: OperatorV1,
        lock_token: u64,
    },
    // Appended after the golden logs were recorded: variants only ever go at the end.
    Interrupted {
        by: OperatorV1,
        signal: String,
    },
    LockReleased {
        by: OperatorV1,
        from: Option<OperatorV1>,
    },
    Provenance {
        /// (host, image id)
        images: Vec<(String, Option<String>)>,
        secrets: Vec<String>,
        secrets_digest: Option<String>,
    },
    Abandoned {
        by: OperatorV1,
        reason: String,
    },
    Superseded {
        by: OperatorV1,
        /// (millis, nonce)
        deployment: (u64, u32),
    },
    Supersedes {
        deployment: (u64, u32),
    },
    BuildStarted {
        commit: Option<String>,
        builder: String,
        platforms: Vec<String>,
        args: Vec<String>,
    },
    Built {
        image_id: String,
        millis: u64,
    },
    BuildFailed {
        reason: String,
    },
    /// A deployment of purpose cleanup: the same record as `DeploymentStarted` (v1's
    /// plan has no room for the purpose, so the fact's kind carries it).
    CleanupStarted(StartedV1),
    ReleaseStarted {
        host: String,
        container: String,
        command: Vec<String>,
    },
    Released {
        millis: u64,
    },
    ReleaseFailed {
        exit_code: Option<i64>,
        reason: String,
    },
    HooksFound {
        hooks: Vec<String>,
    },
    HookStarted {
        hook: String,
        hosts: Vec<String>,
    },
    HookEnded {
        hook: String,
        exit_code: Option<i32>,
        reason: String,
        millis: u64,
    },
    HookFailed {
        hook: String,
        reason: String,
    },
    /// A deployment of purpose maintenance (`app maintenance`), as `CleanupStarted`.
    MaintenanceStarted(StartedV1),
    /// A deployment of purpose live (`app live`), as `CleanupStarted`.
    LiveStarted(StartedV1),
    MaintenancePage {
        message: String,
        retry_after_s: u32,
    },
}

/// The envelope's kind byte for each fact, frozen with the format.
pub fn kind_code(fact: &m::Fact) -> u8 {
    match fact {
        m::Fact::DeploymentStarted(s) => match s.plan.purpose {
            m::Purpose::Deploy => 1,
            m::Purpose::Cleanup => 25,
            m::Purpose::Maintenance => 33,
            m::Purpose::Live => 34,
        },
        m::Fact::StepStarted { .. } => 2,
        m::Fact::StepSucceeded { .. } => 3,
        m::Fact::StepFailed { .. } => 4,
        m::Fact::StepObserved { .. } => 5,
        m::Fact::TargetCompleted { .. } => 6,
        m::Fact::TargetRollbackStarted { .. } => 7,
        m::Fact::TargetRolledBack { .. } => 8,
        m::Fact::TargetRollbackFailed { .. } => 9,
        m::Fact::DeploymentCompleted => 10,
        m::Fact::DeploymentFailed { .. } => 11,
        m::Fact::AbortRequested { .. } => 12,
        m::Fact::DeploymentAborted => 13,
        m::Fact::Resumed { .. } => 14,
        m::Fact::LockTakenOver { .. } => 15,
        m::Fact::Interrupted { .. } => 16,
        m::Fact::LockReleased { .. } => 17,
        m::Fact::Provenance { .. } => 18,
        m::Fact::Abandoned { .. } => 19,
        m::Fact::Superseded { .. } => 20,
        m::Fact::Supersedes { .. } => 21,
        m::Fact::BuildStarted { .. } => 22,
        m::Fact::Built { .. } => 23,
        m::Fact::BuildFailed { .. } => 24,
        m::Fact::ReleaseStarted { .. } => 26,
        m::Fact::Released { .. } => 27,
        m::Fact::ReleaseFailed { .. } => 28,
        m::Fact::HooksFound { .. } => 29,
        m::Fact::HookStarted { .. } => 30,
        m::Fact::HookEnded { .. } => 31,
        m::Fact::HookFailed { .. } => 32,
        m::Fact::MaintenancePage(_) => 35,
    }
}

#[derive(Serialize, Deserialize)]
pub struct StartedV1 {
    pub id_millis: u64,
    pub id_nonce: u32,
    pub service: String,
    pub image: String,
    pub version: String,
    pub config_digest: String,
    pub plan: PlanV1,
    pub operator: OperatorV1,
    pub lock_token: u64,
}

#[derive(Serialize, Deserialize)]
pub struct PlanV1 {
    pub targets: Vec<TargetV1>,
    pub batch_size: u32,
    pub on_failure: FailurePolicyV1,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
}

#[derive(Serialize, Deserialize)]
pub struct TargetV1 {
    pub role: String,
    pub host: String,
    pub kind: RoleKindV1,
    pub old_containers: Vec<String>,
    pub old_version: Option<String>,
    pub boot_ms: u64,
    pub drain_ms: u64,
    pub stop_ms: u64,
    pub op_ms: u64,
}

#[derive(Serialize, Deserialize)]
pub enum RoleKindV1 {
    Web,
    Job,
}

#[derive(Serialize, Deserialize)]
pub enum FailurePolicyV1 {
    Halt,
    Rollback,
}

#[derive(Serialize, Deserialize)]
pub enum StepV1 {
    StartNew,
    AwaitHealthy,
    AddUpstream,
    RemoveOldUpstream,
    DrainOld,
    StopOld,
    CleanStaleUpstreams,
    RestoreOldUpstream,
    RemoveNew,
    UnrouteOld,
    RemoveOld,
    RemoveRoute,
    EnterMaintenance,
    LeaveMaintenance,
}

#[derive(Serialize, Deserialize)]
pub enum ObservationV1 {
    Done,
    Container { id: String },
    Drained { waited_ms: u64, remaining: u32 },
    Count { n: u32 },
}

#[derive(Serialize, Deserialize)]
pub enum FailureKindV1 {
    Retryable,
    Permanent,
    OutcomeUnknown,
}

#[derive(Serialize, Deserialize)]
pub enum FailedOutcomeV1 {
    Halted,
    RolledBack,
    RollbackIncomplete,
}

#[derive(Serialize, Deserialize)]
pub struct OperatorV1 {
    pub user: String,
    pub hostname: String,
    pub pid: u32,
}

// ---- domain -> wire ----

impl From<&m::Event> for EventV1 {
    fn from(e: &m::Event) -> Self {
        EventV1 {
            at_millis: e.at.0,
            fact: FactV1::from(&e.fact),
        }
    }
}

impl From<&m::Fact> for FactV1 {
    fn from(f: &m::Fact) -> Self {
        use m::Fact as F;
        match f {
            F::DeploymentStarted(s) => {
                let started = StartedV1 {
                    id_millis: s.id.millis,
                    id_nonce: s.id.nonce,
                    service: s.service.clone(),
                    image: s.image.clone(),
                    version: s.version.clone(),
                    config_digest: s.config_digest.clone(),
                    plan: PlanV1::from(&s.plan),
                    operator: OperatorV1::from(&s.operator),
                    lock_token: s.lock_token,
                };
                match s.plan.purpose {
                    m::Purpose::Deploy => FactV1::DeploymentStarted(started),
                    m::Purpose::Cleanup => FactV1::CleanupStarted(started),
                    m::Purpose::Maintenance => FactV1::MaintenanceStarted(started),
                    m::Purpose::Live => FactV1::LiveStarted(started),
                }
            }
            F::StepStarted {
                target,
                step,
                attempt,
                key,
            } => FactV1::StepStarted {
                target: *target,
                step: (*step).into(),
                attempt: *attempt,
                key: key.clone(),
            },
            F::StepSucceeded {
                target,
                step,
                attempt,
                observed,
            } => FactV1::StepSucceeded {
                target: *target,
                step: (*step).into(),
                attempt: *attempt,
                observed: observed.into(),
            },
            F::StepFailed {
                target,
                step,
                attempt,
                kind,
                reason,
            } => FactV1::StepFailed {
                target: *target,
                step: (*step).into(),
                attempt: *attempt,
                kind: (*kind).into(),
                reason: reason.clone(),
            },
            F::StepObserved {
                target,
                step,
                attempt,
                done,
            } => FactV1::StepObserved {
                target: *target,
                step: (*step).into(),
                attempt: *attempt,
                done: done.as_ref().map(Into::into),
            },
            F::TargetCompleted { target } => FactV1::TargetCompleted { target: *target },
            F::TargetRollbackStarted { target, reason } => FactV1::TargetRollbackStarted {
                target: *target,
                reason: reason.clone(),
            },
            F::TargetRolledBack { target } => FactV1::TargetRolledBack { target: *target },
            F::TargetRollbackFailed { target, reason } => FactV1::TargetRollbackFailed {
                target: *target,
                reason: reason.clone(),
            },
            F::DeploymentCompleted => FactV1::DeploymentCompleted,
            F::DeploymentFailed { outcome, reason } => FactV1::DeploymentFailed {
                outcome: (*outcome).into(),
                reason: reason.clone(),
            },
            F::AbortRequested { by } => FactV1::AbortRequested { by: by.into() },
            F::DeploymentAborted => FactV1::DeploymentAborted,
            F::Resumed { by, lock_token } => FactV1::Resumed {
                by: by.into(),
                lock_token: *lock_token,
            },
            F::LockTakenOver {
                from,
                by,
                lock_token,
            } => FactV1::LockTakenOver {
                from: from.into(),
                by: by.into(),
                lock_token: *lock_token,
            },
            F::Interrupted { by, signal } => FactV1::Interrupted {
                by: by.into(),
                signal: signal.clone(),
            },
            F::LockReleased { by, from } => FactV1::LockReleased {
                by: by.into(),
                from: from.as_ref().map(Into::into),
            },
            F::Provenance {
                images,
                secrets,
                secrets_digest,
            } => FactV1::Provenance {
                images: images
                    .iter()
                    .map(|i| (i.host.clone(), i.image_id.clone()))
                    .collect(),
                secrets: secrets.clone(),
                secrets_digest: secrets_digest.clone(),
            },
            F::Abandoned { by, reason } => FactV1::Abandoned {
                by: by.into(),
                reason: reason.clone(),
            },
            F::Superseded { by, deployment } => FactV1::Superseded {
                by: by.into(),
                deployment: (deployment.millis, deployment.nonce),
            },
            F::Supersedes { deployment } => FactV1::Supersedes {
                deployment: (deployment.millis, deployment.nonce),
            },
            F::BuildStarted {
                commit,
                builder,
                platforms,
                args,
            } => FactV1::BuildStarted {
                commit: commit.clone(),
                builder: builder.clone(),
                platforms: platforms.clone(),
                args: args.clone(),
            },
            F::Built { image_id, millis } => FactV1::Built {
                image_id: image_id.clone(),
                millis: *millis,
            },
            F::ReleaseStarted {
                host,
                container,
                command,
            } => FactV1::ReleaseStarted {
                host: host.clone(),
                container: container.clone(),
                command: command.clone(),
            },
            F::Released { millis } => FactV1::Released { millis: *millis },
            F::ReleaseFailed { exit_code, reason } => FactV1::ReleaseFailed {
                exit_code: *exit_code,
                reason: reason.clone(),
            },
            F::BuildFailed { reason } => FactV1::BuildFailed {
                reason: reason.clone(),
            },
            F::HooksFound { hooks } => FactV1::HooksFound {
                hooks: hooks.clone(),
            },
            F::HookStarted { hook, hosts } => FactV1::HookStarted {
                hook: hook.clone(),
                hosts: hosts.clone(),
            },
            F::HookEnded {
                hook,
                exit_code,
                reason,
                millis,
            } => FactV1::HookEnded {
                hook: hook.clone(),
                exit_code: *exit_code,
                reason: reason.clone(),
                millis: *millis,
            },
            F::HookFailed { hook, reason } => FactV1::HookFailed {
                hook: hook.clone(),
                reason: reason.clone(),
            },
            F::MaintenancePage(page) => FactV1::MaintenancePage {
                message: page.message.clone(),
                retry_after_s: page.retry_after_s,
            },
        }
    }
}

impl From<&m::Plan> for PlanV1 {
    fn from(p: &m::Plan) -> Self {
        PlanV1 {
            targets: p
                .targets
                .iter()
                .map(|t| TargetV1 {
                    role: t.role.clone(),
                    host: t.host.clone(),
                    kind: match t.kind {
                        m::RoleKind::Web => RoleKindV1::Web,
                        m::RoleKind::Job => RoleKindV1::Job,
                    },
                    old_containers: t.old_containers.clone(),
                    old_version: t.old_version.clone(),
                    boot_ms: t.timeouts.boot_ms,
                    drain_ms: t.timeouts.drain_ms,
                    stop_ms: t.timeouts.stop_ms,
                    op_ms: t.timeouts.op_ms,
                })
                .collect(),
            batch_size: p.batch_size,
            on_failure: match p.on_failure {
                m::FailurePolicy::Halt => FailurePolicyV1::Halt,
                m::FailurePolicy::Rollback => FailurePolicyV1::Rollback,
            },
            max_attempts: p.retry.max_attempts,
            backoff_base_ms: p.retry.backoff_base_ms,
            backoff_max_ms: p.retry.backoff_max_ms,
        }
    }
}

impl From<m::StepName> for StepV1 {
    fn from(s: m::StepName) -> Self {
        use m::StepName as S;
        match s {
            S::StartNew => StepV1::StartNew,
            S::AwaitHealthy => StepV1::AwaitHealthy,
            S::AddUpstream => StepV1::AddUpstream,
            S::RemoveOldUpstream => StepV1::RemoveOldUpstream,
            S::DrainOld => StepV1::DrainOld,
            S::StopOld => StepV1::StopOld,
            S::CleanStaleUpstreams => StepV1::CleanStaleUpstreams,
            S::RestoreOldUpstream => StepV1::RestoreOldUpstream,
            S::RemoveNew => StepV1::RemoveNew,
            S::UnrouteOld => StepV1::UnrouteOld,
            S::RemoveOld => StepV1::RemoveOld,
            S::RemoveRoute => StepV1::RemoveRoute,
            S::EnterMaintenance => StepV1::EnterMaintenance,
            S::LeaveMaintenance => StepV1::LeaveMaintenance,
        }
    }
}

impl From<&m::Observation> for ObservationV1 {
    fn from(o: &m::Observation) -> Self {
        match o {
            m::Observation::Done => ObservationV1::Done,
            m::Observation::Container { id } => ObservationV1::Container { id: id.clone() },
            m::Observation::Drained {
                waited_ms,
                remaining,
            } => ObservationV1::Drained {
                waited_ms: *waited_ms,
                remaining: *remaining,
            },
            m::Observation::Count { n } => ObservationV1::Count { n: *n },
        }
    }
}

impl From<m::FailureKind> for FailureKindV1 {
    fn from(k: m::FailureKind) -> Self {
        match k {
            m::FailureKind::Retryable => FailureKindV1::Retryable,
            m::FailureKind::Permanent => FailureKindV1::Permanent,
            m::FailureKind::OutcomeUnknown => FailureKindV1::OutcomeUnknown,
        }
    }
}

impl From<m::FailedOutcome> for FailedOutcomeV1 {
    fn from(o: m::FailedOutcome) -> Self {
        match o {
            m::FailedOutcome::Halted => FailedOutcomeV1::Halted,
            m::FailedOutcome::RolledBack => FailedOutcomeV1::RolledBack,
            m::FailedOutcome::RollbackIncomplete => FailedOutcomeV1::RollbackIncomplete,
        }
    }
}

impl From<&Operator> for OperatorV1 {
    fn from(o: &Operator) -> Self {
        OperatorV1 {
            user: o.user.clone(),
            hostname: o.hostname.clone(),
            pid: o.pid,
        }
    }
}

// ---- wire -> domain ----

impl From<EventV1> for m::Event {
    fn from(e: EventV1) -> Self {
        m::Event {
            at: Timestamp(e.at_millis),
            fact: e.fact.into(),
        }
    }
}

impl From<FactV1> for m::Fact {
    fn from(f: FactV1) -> Self {
        use m::Fact as F;
        match f {
            FactV1::DeploymentStarted(s) => {
                F::DeploymentStarted(Box::new(started(s, m::Purpose::Deploy)))
            }
            FactV1::CleanupStarted(s) => {
                F::DeploymentStarted(Box::new(started(s, m::Purpose::Cleanup)))
            }
            FactV1::MaintenanceStarted(s) => {
                F::DeploymentStarted(Box::new(started(s, m::Purpose::Maintenance)))
            }
            FactV1::LiveStarted(s) => F::DeploymentStarted(Box::new(started(s, m::Purpose::Live))),
            FactV1::StepStarted {
                target,
                step,
                attempt,
                key,
            } => F::StepStarted {
                target,
                step: step.into(),
                attempt,
                key,
            },
            FactV1::StepSucceeded {
                target,
                step,
                attempt,
                observed,
            } => F::StepSucceeded {
                target,
                step: step.into(),
                attempt,
                observed: observed.into(),
            },
            FactV1::StepFailed {
                target,
                step,
                attempt,
                kind,
                reason,
            } => F::StepFailed {
                target,
                step: step.into(),
                attempt,
                kind: kind.into(),
                reason,
            },
            FactV1::StepObserved {
                target,
                step,
                attempt,
                done,
            } => F::StepObserved {
                target,
                step: step.into(),
                attempt,
                done: done.map(Into::into),
            },
            FactV1::TargetCompleted { target } => F::TargetCompleted { target },
            FactV1::TargetRollbackStarted { target, reason } => {
                F::TargetRollbackStarted { target, reason }
            }
            FactV1::TargetRolledBack { target } => F::TargetRolledBack { target },
            FactV1::TargetRollbackFailed { target, reason } => {
                F::TargetRollbackFailed { target, reason }
            }
            FactV1::DeploymentCompleted => F::DeploymentCompleted,
            FactV1::DeploymentFailed { outcome, reason } => F::DeploymentFailed {
                outcome: outcome.into(),
                reason,
            },
            FactV1::AbortRequested { by } => F::AbortRequested { by: by.into() },
            FactV1::DeploymentAborted => F::DeploymentAborted,
            FactV1::Resumed { by, lock_token } => F::Resumed {
                by: by.into(),
                lock_token,
            },
            FactV1::LockTakenOver {
                from,
                by,
                lock_token,
            } => F::LockTakenOver {
                from: from.into(),
                by: by.into(),
                lock_token,
            },
            FactV1::Interrupted { by, signal } => F::Interrupted {
                by: by.into(),
                signal,
            },
            FactV1::LockReleased { by, from } => F::LockReleased {
                by: by.into(),
                from: from.map(Into::into),
            },
            FactV1::Provenance {
                images,
                secrets,
                secrets_digest,
            } => F::Provenance {
                images: images
                    .into_iter()
                    .map(|(host, image_id)| m::HostImage { host, image_id })
                    .collect(),
                secrets,
                secrets_digest,
            },
            FactV1::Abandoned { by, reason } => F::Abandoned {
                by: by.into(),
                reason,
            },
            FactV1::Superseded {
                by,
                deployment: (millis, nonce),
            } => F::Superseded {
                by: by.into(),
                deployment: crate::ids::DeploymentId { millis, nonce },
            },
            FactV1::Supersedes {
                deployment: (millis, nonce),
            } => F::Supersedes {
                deployment: crate::ids::DeploymentId { millis, nonce },
            },
            FactV1::BuildStarted {
                commit,
                builder,
                platforms,
                args,
            } => F::BuildStarted {
                commit,
                builder,
                platforms,
                args,
            },
            FactV1::Built { image_id, millis } => F::Built { image_id, millis },
            FactV1::BuildFailed { reason } => F::BuildFailed { reason },
            FactV1::ReleaseStarted {
                host,
                container,
                command,
            } => F::ReleaseStarted {
                host,
                container,
                command,
            },
            FactV1::Released { millis } => F::Released { millis },
            FactV1::ReleaseFailed { exit_code, reason } => F::ReleaseFailed { exit_code, reason },
            FactV1::HooksFound { hooks } => F::HooksFound { hooks },
            FactV1::HookStarted { hook, hosts } => F::HookStarted { hook, hosts },
            FactV1::HookEnded {
                hook,
                exit_code,
                reason,
                millis,
            } => F::HookEnded {
                hook,
                exit_code,
                reason,
                millis,
            },
            FactV1::HookFailed { hook, reason } => F::HookFailed { hook, reason },
            FactV1::MaintenancePage {
                message,
                retry_after_s,
            } => F::MaintenancePage(m::MaintenancePage {
                message,
                retry_after_s,
            }),
        }
    }
}

fn started(s: StartedV1, purpose: m::Purpose) -> m::DeploymentStarted {
    let mut plan: m::Plan = s.plan.into();
    plan.purpose = purpose;
    m::DeploymentStarted {
        id: DeploymentId {
            millis: s.id_millis,
            nonce: s.id_nonce,
        },
        service: s.service,
        image: s.image,
        version: s.version,
        config_digest: s.config_digest,
        plan,
        operator: s.operator.into(),
        lock_token: s.lock_token,
    }
}

impl From<PlanV1> for m::Plan {
    fn from(p: PlanV1) -> Self {
        m::Plan {
            purpose: m::Purpose::Deploy,
            targets: p
                .targets
                .into_iter()
                .map(|t| m::Target {
                    role: t.role,
                    host: t.host,
                    kind: match t.kind {
                        RoleKindV1::Web => m::RoleKind::Web,
                        RoleKindV1::Job => m::RoleKind::Job,
                    },
                    old_containers: t.old_containers,
                    old_version: t.old_version,
                    timeouts: m::Timeouts {
                        boot_ms: t.boot_ms,
                        drain_ms: t.drain_ms,
                        stop_ms: t.stop_ms,
                        op_ms: t.op_ms,
                    },
                })
                .collect(),
            batch_size: p.batch_size,
            on_failure: match p.on_failure {
                FailurePolicyV1::Halt => m::FailurePolicy::Halt,
                FailurePolicyV1::Rollback => m::FailurePolicy::Rollback,
            },
            retry: m::RetryPolicy {
                max_attempts: p.max_attempts,
                backoff_base_ms: p.backoff_base_ms,
                backoff_max_ms: p.backoff_max_ms,
            },
        }
    }
}

impl From<StepV1> for m::StepName {
    fn from(s: StepV1) -> Self {
        use m::StepName as S;
        match s {
            StepV1::StartNew => S::StartNew,
            StepV1::AwaitHealthy => S::AwaitHealthy,
            StepV1::AddUpstream => S::AddUpstream,
            StepV1::RemoveOldUpstream => S::RemoveOldUpstream,
            StepV1::DrainOld => S::DrainOld,
            StepV1::StopOld => S::StopOld,
            StepV1::CleanStaleUpstreams => S::CleanStaleUpstreams,
            StepV1::RestoreOldUpstream => S::RestoreOldUpstream,
            StepV1::RemoveNew => S::RemoveNew,
            StepV1::UnrouteOld => S::UnrouteOld,
            StepV1::RemoveOld => S::RemoveOld,
            StepV1::RemoveRoute => S::RemoveRoute,
            StepV1::EnterMaintenance => S::EnterMaintenance,
            StepV1::LeaveMaintenance => S::LeaveMaintenance,
        }
    }
}

impl From<ObservationV1> for m::Observation {
    fn from(o: ObservationV1) -> Self {
        match o {
            ObservationV1::Done => m::Observation::Done,
            ObservationV1::Container { id } => m::Observation::Container { id },
            ObservationV1::Drained {
                waited_ms,
                remaining,
            } => m::Observation::Drained {
                waited_ms,
                remaining,
            },
            ObservationV1::Count { n } => m::Observation::Count { n },
        }
    }
}

impl From<FailureKindV1> for m::FailureKind {
    fn from(k: FailureKindV1) -> Self {
        match k {
            FailureKindV1::Retryable => m::FailureKind::Retryable,
            FailureKindV1::Permanent => m::FailureKind::Permanent,
            FailureKindV1::OutcomeUnknown => m::FailureKind::OutcomeUnknown,
        }
    }
}

impl From<FailedOutcomeV1> for m::FailedOutcome {
    fn from(o: FailedOutcomeV1) -> Self {
        match o {
            FailedOutcomeV1::Halted => m::FailedOutcome::Halted,
            FailedOutcomeV1::RolledBack => m::FailedOutcome::RolledBack,
            FailedOutcomeV1::RollbackIncomplete => m::FailedOutcome::RollbackIncomplete,
        }
    }
}

impl From<OperatorV1> for Operator {
    fn from(o: OperatorV1) -> Self {
        Operator {
            user: o.user,
            hostname: o.hostname,
            pid: o.pid,
        }
    }
}
