//! The state of one deployment, as folded from its log, and `evolve`, the only way it
//! changes. `evolve` validates an event against the state before touching it: an event
//! that cannot happen in the current state is a typed error and leaves the state as it
//! was.

use serde::Serialize;

use super::event::{
    DeploymentStarted, Event, Fact, FailedOutcome, FailureKind, HostImage, Observation,
};
use super::hooks::{HookExit, HookName};
use super::plan::StepName;
use super::Error;
use crate::ids::Timestamp;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// No event yet.
    Empty,
    Running,
    /// An operator asked to roll everything back.
    Aborting,
    /// Stopped by a failure under `on_failure: halt`; can be resumed or aborted.
    Halted,
    /// A target could not be rolled back; can be resumed or aborted.
    RollbackIncomplete,
    Completed,
    /// Failed under `on_failure: rollback`; every target is back on the old version.
    RolledBack,
    Aborted,
    /// Ended by an operator without finishing (`deploy --abandon`).
    Abandoned,
    /// A halted deployment replaced by a newer one.
    Superseded,
    /// The image could not be built: no host was touched.
    BuildFailed,
    /// The release command failed: no target moved.
    ReleaseFailed,
    /// A `pre-build` or `pre-deploy` hook failed: no target moved.
    HookFailed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Empty => "empty",
            Phase::Running => "running",
            Phase::Aborting => "aborting",
            Phase::Halted => "halted",
            Phase::RollbackIncomplete => "rollback-incomplete",
            Phase::Completed => "completed",
            Phase::RolledBack => "rolled-back",
            Phase::Aborted => "aborted",
            Phase::Abandoned => "abandoned",
            Phase::Superseded => "superseded",
            Phase::BuildFailed => "build-failed",
            Phase::ReleaseFailed => "release-failed",
            Phase::HookFailed => "hook-failed",
        }
    }

    /// Nothing more will happen to the deployment.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Phase::Completed
                | Phase::RolledBack
                | Phase::Aborted
                | Phase::Abandoned
                | Phase::Superseded
                | Phase::BuildFailed
                | Phase::ReleaseFailed
                | Phase::HookFailed
        )
    }

    /// The deployment stopped short and waits for `--resume` or `--abort`.
    pub fn is_suspended(self) -> bool {
        matches!(self, Phase::Halted | Phase::RollbackIncomplete)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetStatus {
    /// Not touched yet: still on the old version.
    Pending,
    Deploying,
    /// On the new version.
    Completed,
    RollingBack,
    /// Back on the old version.
    RolledBack,
    /// Undo failed past its retries: the host's state needs `--abort` again.
    RollbackFailed,
}

impl TargetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetStatus::Pending => "pending",
            TargetStatus::Deploying => "deploying",
            TargetStatus::Completed => "completed",
            TargetStatus::RollingBack => "rolling-back",
            TargetStatus::RolledBack => "rolled-back",
            TargetStatus::RollbackFailed => "rollback-failed",
        }
    }

    /// A target in this status has a step to run or observe.
    pub fn is_active(self) -> bool {
        matches!(self, TargetStatus::Deploying | TargetStatus::RollingBack)
    }
}

/// The last failure of a target's current step.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct StepFailure {
    pub step: StepName,
    pub attempt: u32,
    pub kind: FailureKind,
    pub reason: String,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct TargetState {
    pub status: TargetStatus,
    /// Forward steps that took effect, in order.
    pub done: Vec<StepName>,
    /// Forward steps that were ever started, so an undo covers half-done ones too.
    pub started: Vec<StepName>,
    /// The undo steps chosen when the rollback started, in the order they run.
    pub undo: Vec<StepName>,
    /// Undo steps that took effect.
    pub undone: Vec<StepName>,
    /// A step that started and has no known outcome: it must be observed first.
    pub in_doubt: Option<(StepName, u32)>,
    /// Failures of the current step in this round of attempts.
    pub failures: u32,
    pub last_failure: Option<StepFailure>,
    /// The latest attempt number of each step, so attempts are unique for ever.
    pub attempts: Vec<(StepName, u32)>,
    /// The rollback was caused by this target's own failure (not by the fleet or an abort).
    pub failed: bool,
    /// Once rolled back, go forward again (set by a resume of a suspended deployment).
    pub redeploy_after_rollback: bool,
    pub rollback_reason: Option<String>,
    /// The id the executor reported for the new container.
    pub new_container_id: Option<String>,
}

impl TargetState {
    fn new() -> Self {
        TargetState {
            status: TargetStatus::Pending,
            done: Vec::new(),
            started: Vec::new(),
            undo: Vec::new(),
            undone: Vec::new(),
            in_doubt: None,
            failures: 0,
            last_failure: None,
            attempts: Vec::new(),
            failed: false,
            redeploy_after_rollback: false,
            rollback_reason: None,
            new_container_id: None,
        }
    }

    pub fn last_attempt(&self, step: StepName) -> u32 {
        self.attempts
            .iter()
            .find(|(s, _)| *s == step)
            .map_or(0, |(_, n)| *n)
    }

    fn set_attempt(&mut self, step: StepName, attempt: u32) {
        match self.attempts.iter_mut().find(|(s, _)| *s == step) {
            Some(entry) => entry.1 = attempt,
            None => self.attempts.push((step, attempt)),
        }
    }

    /// Which version this target serves now, as far as the log knows.
    pub fn serving(&self) -> Serving {
        match self.status {
            TargetStatus::Pending | TargetStatus::RolledBack => Serving::Old,
            TargetStatus::Completed => Serving::New,
            TargetStatus::Deploying | TargetStatus::RollingBack | TargetStatus::RollbackFailed => {
                Serving::InTransition
            }
        }
    }

    /// Start a fresh forward round: a target that was rolled back is deployed again.
    fn reset_for_redeploy(&mut self) {
        let attempts = std::mem::take(&mut self.attempts);
        *self = TargetState::new();
        self.attempts = attempts;
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Serving {
    Old,
    New,
    InTransition,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeploymentState {
    pub started: Option<Box<DeploymentStarted>>,
    pub phase: Phase,
    pub targets: Vec<TargetState>,
    /// Number of events folded so far: the sequence number the next event gets.
    pub next_seq: u64,
    pub lock_token: u64,
    pub started_at: Timestamp,
    pub last_at: Timestamp,
    /// Why the deployment failed, once it did.
    pub failure: Option<String>,
    /// What exactly was deployed, from the `provenance` event (logs written before that
    /// event existed have none).
    pub provenance: Option<Provenance>,
    /// The image build this deployment made, when it built one.
    pub build: Option<BuildRecord>,
    /// The release command this deployment ran, when deploy.yml has one.
    pub release: Option<ReleaseRecord>,
    /// The hooks the project had when the deployment started (`hooks-found`).
    pub hooks_found: Vec<String>,
    /// Every hook run, in order.
    pub hook_runs: Vec<HookRun>,
    /// What the routes answer, for a deployment of purpose maintenance.
    pub maintenance_page: Option<super::maintenance::MaintenancePage>,
}

/// A hook the deployment started, and how it ended once it did.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HookRun {
    pub hook: String,
    pub hosts: Vec<String>,
    /// `None` while it runs, or when the run that started it died meanwhile.
    pub ended: Option<HookExit>,
}

/// A release command the deployment started, and how it ended once it did.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReleaseRecord {
    pub host: String,
    pub container: String,
    pub command: Vec<String>,
    /// `None` while it runs (or a run died while it ran); `Some(Ok(millis))` once it
    /// exited 0; `Some(Err(reason))` once it failed.
    pub outcome: Option<Result<u64, String>>,
}

impl ReleaseRecord {
    pub fn running(&self) -> bool {
        self.outcome.is_none()
    }
}

/// A build the deployment started, and its image once it finished.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BuildRecord {
    pub commit: Option<String>,
    pub builder: String,
    pub platforms: Vec<String>,
    pub args: Vec<String>,
    pub image_id: Option<String>,
    pub millis: u64,
}

/// Each host's image id for the deployed tag, and the secrets' names with a digest.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Provenance {
    pub images: Vec<HostImage>,
    pub secrets: Vec<String>,
    pub secrets_digest: Option<String>,
}

impl Default for DeploymentState {
    fn default() -> Self {
        DeploymentState {
            started: None,
            phase: Phase::Empty,
            targets: Vec::new(),
            next_seq: 0,
            lock_token: 0,
            started_at: Timestamp(0),
            last_at: Timestamp(0),
            failure: None,
            provenance: None,
            build: None,
            release: None,
            hooks_found: Vec::new(),
            hook_runs: Vec::new(),
            maintenance_page: None,
        }
    }
}

impl DeploymentState {
    /// Fold a whole log. Stops at the first event the code cannot accept.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<Self, Error> {
        let mut state = DeploymentState::default();
        for event in events {
            state.evolve(event)?;
        }
        Ok(state)
    }

    pub fn started(&self) -> Option<&DeploymentStarted> {
        self.started.as_deref()
    }

    /// The project had this hook when the deployment started.
    pub fn has_hook(&self, hook: HookName) -> bool {
        self.hooks_found.iter().any(|h| h == hook.as_str())
    }

    /// The last run of `hook` for exactly `hosts`, if any.
    pub fn last_hook_run(&self, hook: HookName, hosts: &[String]) -> Option<&HookRun> {
        self.hook_runs
            .iter()
            .rev()
            .find(|r| r.hook == hook.as_str() && r.hosts == hosts)
    }

    /// The last run of `hook`, for whatever hosts.
    pub fn last_hook(&self, hook: HookName) -> Option<&HookRun> {
        self.hook_runs
            .iter()
            .rev()
            .find(|r| r.hook == hook.as_str())
    }

    /// Apply one event. On error the state is unchanged.
    pub fn evolve(&mut self, event: &Event) -> Result<(), Error> {
        self.check(&event.fact)?;
        self.apply(event);
        Ok(())
    }

    fn impossible(&self, fact: &Fact, why: impl Into<String>) -> Error {
        Error::Impossible {
            seq: self.next_seq,
            kind: fact.kind_name(),
            why: why.into(),
        }
    }

    fn target_ref(&self, fact: &Fact, target: u32) -> Result<&TargetState, Error> {
        self.targets.get(target as usize).ok_or_else(|| {
            self.impossible(
                fact,
                format!(
                    "target {target} is not in the plan ({} targets)",
                    self.targets.len()
                ),
            )
        })
    }

    /// Every rule an event must satisfy in the current state.
    fn check(&self, fact: &Fact) -> Result<(), Error> {
        use Phase::*;
        if self.phase == Empty && !matches!(fact, Fact::DeploymentStarted(_)) {
            return Err(self.impossible(fact, "the deployment has not started"));
        }
        let post_deploy = |hook: &str| hook == HookName::PostDeploy.as_str();
        let after_completion = self.phase == Completed
            && match fact {
                Fact::HookStarted { hook, .. } => post_deploy(hook),
                Fact::HookEnded { hook, .. } => post_deploy(hook),
                _ => false,
            };
        if self.phase.is_final() && !after_completion {
            return Err(self.impossible(
                fact,
                format!("the deployment is already {}", self.phase.as_str()),
            ));
        }
        let in_motion = matches!(self.phase, Running | Aborting);
        match fact {
            Fact::DeploymentStarted(started) => {
                if self.phase != Empty {
                    return Err(self.impossible(fact, "the deployment already started"));
                }
                if started.plan.batch_size == 0 {
                    return Err(self.impossible(fact, "the plan has a batch size of 0"));
                }
            }
            Fact::StepStarted {
                target,
                step,
                attempt,
                ..
            } => {
                let t = self.target_ref(fact, *target)?;
                if !in_motion {
                    return Err(
                        self.impossible(fact, format!("the deployment is {}", self.phase.as_str()))
                    );
                }
                if let Some((s, a)) = t.in_doubt {
                    return Err(
                        self.impossible(fact, format!("{s} attempt {a} has no outcome yet"))
                    );
                }
                if self.build.as_ref().is_some_and(|b| b.image_id.is_none()) {
                    return Err(self.impossible(fact, "the image is still being built"));
                }
                if self.release.as_ref().is_some_and(ReleaseRecord::running) {
                    return Err(self.impossible(fact, "the release command has no outcome yet"));
                }
                let expected = self.next_step(*target as usize);
                if expected != Some(*step) {
                    let expected = expected.map_or("none".to_string(), |s| s.to_string());
                    return Err(self.impossible(
                        fact,
                        format!("the next step of target {target} is {expected}, not {step}"),
                    ));
                }
                if *attempt <= t.last_attempt(*step) {
                    return Err(self.impossible(
                        fact,
                        format!("attempt {attempt} of {step} was already made"),
                    ));
                }
            }
            Fact::StepSucceeded {
                target,
                step,
                attempt,
                ..
            }
            | Fact::StepFailed {
                target,
                step,
                attempt,
                ..
            }
            | Fact::StepObserved {
                target,
                step,
                attempt,
                ..
            } => {
                let t = self.target_ref(fact, *target)?;
                if t.in_doubt != Some((*step, *attempt)) {
                    return Err(self.impossible(
                        fact,
                        format!("{step} attempt {attempt} of target {target} is not in progress"),
                    ));
                }
            }
            Fact::TargetCompleted { target } => {
                let t = self.target_ref(fact, *target)?;
                if t.status != TargetStatus::Deploying
                    || t.in_doubt.is_some()
                    || self.next_step(*target as usize).is_some()
                {
                    return Err(self.impossible(fact, format!("target {target} has steps left")));
                }
            }
            Fact::TargetRollbackStarted { target, .. } => {
                let t = self.target_ref(fact, *target)?;
                // A step still in doubt after its last observation may be rolled back:
                // undo steps are idempotent and cover half-done steps.
                if !matches!(t.status, TargetStatus::Deploying | TargetStatus::Completed) {
                    return Err(
                        self.impossible(fact, format!("target {target} is {}", t.status.as_str()))
                    );
                }
            }
            Fact::TargetRolledBack { target } => {
                let t = self.target_ref(fact, *target)?;
                if t.status != TargetStatus::RollingBack
                    || t.in_doubt.is_some()
                    || self.next_step(*target as usize).is_some()
                {
                    return Err(
                        self.impossible(fact, format!("target {target} has undo steps left"))
                    );
                }
            }
            Fact::TargetRollbackFailed { target, .. } => {
                let t = self.target_ref(fact, *target)?;
                if t.status != TargetStatus::RollingBack {
                    return Err(
                        self.impossible(fact, format!("target {target} is {}", t.status.as_str()))
                    );
                }
            }
            Fact::DeploymentCompleted => {
                if self.phase != Running
                    || self
                        .targets
                        .iter()
                        .any(|t| t.status != TargetStatus::Completed)
                {
                    return Err(self.impossible(fact, "not every target is completed"));
                }
            }
            Fact::DeploymentFailed { .. } => {
                if !in_motion || self.targets.iter().any(|t| t.status.is_active()) {
                    return Err(self.impossible(fact, "targets are still in motion"));
                }
            }
            Fact::AbortRequested { .. }
            | Fact::Resumed { .. }
            | Fact::LockTakenOver { .. }
            | Fact::Interrupted { .. }
            | Fact::LockReleased { .. } => {}
            Fact::Provenance { .. } => {
                if self.provenance.is_some() {
                    return Err(self.impossible(fact, "provenance is recorded once"));
                }
                if self.build.as_ref().is_some_and(|b| b.image_id.is_none()) {
                    return Err(self.impossible(fact, "the image is still being built"));
                }
            }
            Fact::BuildStarted { .. } | Fact::Built { .. } | Fact::BuildFailed { .. } => {
                let untouched = self.phase == Running
                    && self.provenance.is_none()
                    && self
                        .targets
                        .iter()
                        .all(|t| t.status == TargetStatus::Pending);
                let built = self.build.as_ref().map(|b| b.image_id.is_some());
                let order = match fact {
                    Fact::BuildStarted { .. } => built != Some(true),
                    _ => built == Some(false),
                };
                if !untouched || !order {
                    return Err(self.impossible(
                        fact,
                        "a build comes before any step and provenance: started, then built or failed, once",
                    ));
                }
            }
            Fact::ReleaseStarted { .. } => {
                let untouched = self.phase == Running
                    && self.provenance.is_some()
                    && self.build.as_ref().is_none_or(|b| b.image_id.is_some())
                    && self
                        .targets
                        .iter()
                        .all(|t| t.status == TargetStatus::Pending);
                if !untouched || self.release.is_some() {
                    return Err(self.impossible(
                        fact,
                        "a release runs once, after the image is on the hosts and before any step",
                    ));
                }
            }
            Fact::HooksFound { hooks } => {
                let untouched = self
                    .targets
                    .iter()
                    .all(|t| t.status == TargetStatus::Pending);
                if !untouched || !self.hooks_found.is_empty() {
                    return Err(self.impossible(fact, "the hooks are found once, before any step"));
                }
                if let Some(unknown) = hooks.iter().find(|h| HookName::parse(h).is_none()) {
                    return Err(self.impossible(fact, format!("`{unknown}` is not a hook")));
                }
            }
            Fact::MaintenancePage(_) => {
                let untouched = self.phase == Running
                    && self
                        .targets
                        .iter()
                        .all(|t| t.status == TargetStatus::Pending);
                let maintenance = self
                    .started()
                    .is_some_and(|s| s.plan.purpose == super::plan::Purpose::Maintenance);
                if !untouched || !maintenance || self.maintenance_page.is_some() {
                    return Err(self.impossible(
                        fact,
                        "a maintenance page is recorded once, by a maintenance deployment, before its first step",
                    ));
                }
            }
            Fact::HookStarted { hook, .. } => {
                if HookName::parse(hook).is_none() {
                    return Err(self.impossible(fact, format!("`{hook}` is not a hook")));
                }
                if !(self.phase == Running || after_completion) {
                    return Err(self.impossible(fact, "hooks run while the deployment runs"));
                }
            }
            Fact::HookEnded { hook, .. } => {
                if !self
                    .hook_runs
                    .last()
                    .is_some_and(|r| &r.hook == hook && r.ended.is_none())
                {
                    return Err(self.impossible(fact, format!("no {hook} hook is running")));
                }
            }
            Fact::HookFailed { hook, .. } => {
                let gate = matches!(
                    HookName::parse(hook),
                    Some(HookName::PreBuild | HookName::PreDeploy)
                );
                let failed = self
                    .hook_runs
                    .last()
                    .is_some_and(|r| &r.hook == hook && r.ended.as_ref().is_some_and(|e| !e.ok()));
                let untouched = self.phase == Running
                    && self
                        .targets
                        .iter()
                        .all(|t| t.status == TargetStatus::Pending);
                if !gate || !failed || !untouched {
                    return Err(self.impossible(
                        fact,
                        "only a pre-build or pre-deploy hook that just failed ends an untouched deployment",
                    ));
                }
            }
            Fact::Released { .. } | Fact::ReleaseFailed { .. } => {
                if self.phase != Running
                    || !self.release.as_ref().is_some_and(ReleaseRecord::running)
                {
                    return Err(self.impossible(fact, "no release command is running"));
                }
            }
            Fact::Supersedes { deployment } => {
                let own = self.started().map(|s| s.id);
                let untouched = self
                    .targets
                    .iter()
                    .all(|t| t.status == TargetStatus::Pending);
                if own == Some(*deployment) || !untouched {
                    return Err(self.impossible(
                        fact,
                        "a deployment supersedes another one before any step, never itself",
                    ));
                }
            }
            Fact::Abandoned { .. } => {
                if self.phase.is_final() || self.phase == Phase::Empty {
                    return Err(self.impossible(fact, "the deployment is not unfinished"));
                }
            }
            Fact::Superseded { deployment, .. } => {
                if self.phase != Phase::Halted || self.started().map(|s| s.id) == Some(*deployment)
                {
                    return Err(self.impossible(
                        fact,
                        "only a halted deployment is superseded, by another one",
                    ));
                }
            }
            Fact::DeploymentAborted => {
                let settled = self
                    .targets
                    .iter()
                    .all(|t| matches!(t.status, TargetStatus::Pending | TargetStatus::RolledBack));
                if self.phase != Aborting || !settled {
                    return Err(
                        self.impossible(fact, "targets are not all back on the old version")
                    );
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: &Event) {
        self.next_seq += 1;
        self.last_at = event.at;
        match &event.fact {
            Fact::DeploymentStarted(started) => {
                self.targets = started
                    .plan
                    .targets
                    .iter()
                    .map(|_| TargetState::new())
                    .collect();
                self.lock_token = started.lock_token;
                self.started_at = event.at;
                self.started = Some(started.clone());
                self.phase = Phase::Running;
            }
            Fact::StepStarted {
                target,
                step,
                attempt,
                ..
            } => {
                let t = &mut self.targets[*target as usize];
                if t.status == TargetStatus::Pending {
                    t.status = TargetStatus::Deploying;
                }
                if !step.is_undo() && !t.started.contains(step) {
                    t.started.push(*step);
                }
                t.set_attempt(*step, *attempt);
                t.in_doubt = Some((*step, *attempt));
            }
            Fact::StepSucceeded {
                target,
                step,
                observed,
                ..
            } => {
                self.step_took_effect(*target, *step, Some(observed));
            }
            Fact::StepObserved {
                target,
                step,
                done: Some(observed),
                ..
            } => {
                self.step_took_effect(*target, *step, Some(observed));
            }
            Fact::StepObserved {
                target, done: None, ..
            } => {
                // It did not happen: the same step runs again, as a new attempt.
                self.targets[*target as usize].in_doubt = None;
            }
            Fact::StepFailed {
                target,
                step,
                attempt,
                kind,
                reason,
            } => {
                let t = &mut self.targets[*target as usize];
                t.failures += 1;
                if *kind != FailureKind::OutcomeUnknown {
                    t.in_doubt = None;
                }
                t.last_failure = Some(StepFailure {
                    step: *step,
                    attempt: *attempt,
                    kind: *kind,
                    reason: reason.clone(),
                });
            }
            Fact::TargetCompleted { target } => {
                let t = &mut self.targets[*target as usize];
                t.status = TargetStatus::Completed;
                t.failures = 0;
                t.last_failure = None;
            }
            Fact::TargetRollbackStarted { target, reason } => {
                let has_old = self.has_old(*target as usize);
                // A cleanup is never undone (what it removed cannot come back), nor is
                // maintenance or live (each is the other's undo, an operator's call): its
                // target gives up where it stands, and a resume redoes its steps, which
                // find done what is done.
                let cleanup = self
                    .started()
                    .is_some_and(|s| !s.plan.purpose.is_undoable());
                let max = self
                    .started()
                    .map_or(1, |s| s.plan.retry.max_attempts.max(1));
                let running = self.phase == Phase::Running;
                let t = &mut self.targets[*target as usize];
                // Failed on its own: its own step gave up (a permanent failure, or the
                // retries spent). A target rolled back because another one failed, with
                // a retry of its own still pending, is not the one to blame.
                let gave_up = t.failures >= max
                    || t.last_failure
                        .as_ref()
                        .is_some_and(|f| f.kind == FailureKind::Permanent);
                t.failed = t.status == TargetStatus::Deploying && gave_up && running;
                t.in_doubt = None;
                t.undo = if cleanup {
                    Vec::new()
                } else {
                    undo_steps(&t.started, has_old)
                };
                t.undone.clear();
                t.status = TargetStatus::RollingBack;
                t.failures = 0;
                t.last_failure = None;
                t.rollback_reason = Some(reason.clone());
            }
            Fact::TargetRolledBack { target } => {
                let t = &mut self.targets[*target as usize];
                if t.redeploy_after_rollback {
                    t.reset_for_redeploy();
                } else {
                    t.status = TargetStatus::RolledBack;
                    t.failures = 0;
                    t.last_failure = None;
                }
            }
            Fact::TargetRollbackFailed { target, reason } => {
                let t = &mut self.targets[*target as usize];
                t.status = TargetStatus::RollbackFailed;
                t.in_doubt = None;
                t.rollback_reason = Some(reason.clone());
            }
            Fact::DeploymentCompleted => self.phase = Phase::Completed,
            Fact::DeploymentFailed { outcome, reason } => {
                self.phase = match outcome {
                    FailedOutcome::Halted => Phase::Halted,
                    FailedOutcome::RolledBack => Phase::RolledBack,
                    FailedOutcome::RollbackIncomplete => Phase::RollbackIncomplete,
                };
                self.failure = Some(reason.clone());
            }
            Fact::AbortRequested { .. } => {
                self.phase = Phase::Aborting;
                for t in &mut self.targets {
                    t.redeploy_after_rollback = false;
                    if t.status == TargetStatus::RollbackFailed {
                        t.status = TargetStatus::RollingBack;
                        t.failures = 0;
                        t.last_failure = None;
                    }
                }
            }
            Fact::DeploymentAborted => self.phase = Phase::Aborted,
            Fact::Resumed { lock_token, .. } => {
                self.lock_token = *lock_token;
                if self.phase.is_suspended() {
                    self.phase = Phase::Running;
                    self.failure = None;
                    for t in &mut self.targets {
                        match t.status {
                            TargetStatus::RolledBack => t.reset_for_redeploy(),
                            // Failed untouched by its batch's pre-app-boot hook: the hook
                            // runs again first.
                            TargetStatus::Pending => {
                                t.failed = false;
                                t.rollback_reason = None;
                            }
                            TargetStatus::RollbackFailed => {
                                // Finish the undo first, then go forward again.
                                t.status = TargetStatus::RollingBack;
                                t.failures = 0;
                                t.last_failure = None;
                                t.redeploy_after_rollback = true;
                            }
                            _ => {}
                        }
                    }
                }
            }
            Fact::LockTakenOver { lock_token, .. } => self.lock_token = *lock_token,
            Fact::Interrupted { .. } | Fact::LockReleased { .. } | Fact::Supersedes { .. } => {}
            Fact::Abandoned { .. } => self.phase = Phase::Abandoned,
            Fact::Superseded { .. } => self.phase = Phase::Superseded,
            Fact::BuildStarted {
                commit,
                builder,
                platforms,
                args,
            } => {
                self.build = Some(BuildRecord {
                    commit: commit.clone(),
                    builder: builder.clone(),
                    platforms: platforms.clone(),
                    args: args.clone(),
                    image_id: None,
                    millis: 0,
                })
            }
            Fact::Built { image_id, millis } => {
                if let Some(b) = &mut self.build {
                    b.image_id = Some(image_id.clone());
                    b.millis = *millis;
                }
            }
            Fact::BuildFailed { reason } => {
                self.phase = Phase::BuildFailed;
                self.failure = Some(reason.clone());
            }
            Fact::ReleaseStarted {
                host,
                container,
                command,
            } => {
                self.release = Some(ReleaseRecord {
                    host: host.clone(),
                    container: container.clone(),
                    command: command.clone(),
                    outcome: None,
                })
            }
            Fact::Released { millis } => {
                if let Some(r) = &mut self.release {
                    r.outcome = Some(Ok(*millis));
                }
            }
            Fact::HooksFound { hooks } => self.hooks_found = hooks.clone(),
            Fact::HookStarted { hook, hosts } => self.hook_runs.push(HookRun {
                hook: hook.clone(),
                hosts: hosts.clone(),
                ended: None,
            }),
            Fact::HookEnded { hook, .. } => {
                let exit = event.fact.hook_exit().unwrap_or_default();
                let why = format!("the {hook} hook {}", exit.describe());
                let ok = exit.ok();
                let hosts = match self.hook_runs.last_mut() {
                    Some(run) => {
                        run.ended = Some(exit);
                        run.hosts.clone()
                    }
                    None => Vec::new(),
                };
                match HookName::parse(hook) {
                    _ if ok => {}
                    // A failed gate before a batch: its targets fail untouched, and the
                    // fleet's policy decides about the others.
                    Some(HookName::PreAppBoot) => {
                        let plan_hosts: Vec<String> = self
                            .started()
                            .map(|s| s.plan.targets.iter().map(|t| t.host.clone()).collect())
                            .unwrap_or_default();
                        for (t, host) in self.targets.iter_mut().zip(plan_hosts) {
                            if t.status == TargetStatus::Pending && hosts.contains(&host) {
                                t.failed = true;
                                t.rollback_reason = Some(why.clone());
                            }
                        }
                    }
                    _ => {}
                }
            }
            Fact::MaintenancePage(page) => self.maintenance_page = Some(page.clone()),
            Fact::HookFailed { reason, .. } => {
                self.phase = Phase::HookFailed;
                self.failure = Some(reason.clone());
            }
            Fact::ReleaseFailed { reason, .. } => {
                if let Some(r) = &mut self.release {
                    r.outcome = Some(Err(reason.clone()));
                }
                self.phase = Phase::ReleaseFailed;
                self.failure = Some(reason.clone());
            }
            Fact::Provenance {
                images,
                secrets,
                secrets_digest,
            } => {
                self.provenance = Some(Provenance {
                    images: images.clone(),
                    secrets: secrets.clone(),
                    secrets_digest: secrets_digest.clone(),
                })
            }
        }
    }

    fn step_took_effect(&mut self, target: u32, step: StepName, observed: Option<&Observation>) {
        let t = &mut self.targets[target as usize];
        t.in_doubt = None;
        t.failures = 0;
        t.last_failure = None;
        if step.is_undo() {
            t.undone.push(step);
        } else {
            t.done.push(step);
        }
        if let (StepName::StartNew, Some(Observation::Container { id })) = (step, observed) {
            t.new_container_id = Some(id.clone());
        }
    }

    fn has_old(&self, target: usize) -> bool {
        self.started()
            .is_some_and(|s| !s.plan.targets[target].is_first_deploy())
    }

    /// The next step a target has to take, forward or undo, ignoring doubt and failures.
    pub fn next_step(&self, target: usize) -> Option<StepName> {
        let t = &self.targets[target];
        match t.status {
            TargetStatus::Pending | TargetStatus::Deploying => {
                let plan_target = &self.started()?.plan.targets[target];
                plan_target
                    .steps_for(self.started()?.plan.purpose)
                    .into_iter()
                    .find(|s| !t.done.contains(s))
            }
            TargetStatus::RollingBack => t.undo.iter().copied().find(|s| !t.undone.contains(s)),
            _ => None,
        }
    }
}

/// What undoing a target takes, given the forward steps it ever started. The old
/// upstream is restored before the new container goes, so the host always has a routed
/// healthy container. A step that only started may have half-happened: it is undone too
/// (undo steps are idempotent).
fn undo_steps(started: &[StepName], has_old: bool) -> Vec<StepName> {
    let mut undo = Vec::new();
    let old_touched = started.iter().any(|s| {
        matches!(
            s,
            StepName::RemoveOldUpstream | StepName::DrainOld | StepName::StopOld
        )
    });
    if has_old && old_touched {
        undo.push(StepName::RestoreOldUpstream);
    }
    if started.contains(&StepName::StartNew) {
        undo.push(StepName::RemoveNew);
    }
    undo
}
