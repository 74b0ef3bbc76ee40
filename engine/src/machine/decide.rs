//! `decide`: given the folded state, what happens next. Pure: the runtime performs the
//! answer and feeds the results back as events.

use super::effect::{deadline_ms, new_container_name, Effect};
use super::event::{Fact, FailedOutcome, FailureKind};
use super::hooks::{HookCall, HookName};
use super::plan::{FailurePolicy, StepName};
use super::state::{DeploymentState, Phase, TargetState, TargetStatus};
use super::Error;

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Decision {
    /// Append these facts (they announce no side effect), then decide again.
    Record(Vec<Fact>),
    /// Run these, one per target, possibly at once; append each outcome.
    Run(Vec<Action>),
    /// Append `hook-started`, run the hook on the deploying machine, append `hook-ended`.
    RunHook(HookCall),
    /// Nothing more to do in this run: the deployment is in this phase.
    Finished(Phase),
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Action {
    /// Append `StepStarted` (flushed), perform the effect, append its outcome.
    Execute(Effect),
    /// The step's outcome is in doubt: look at the world and record what it shows.
    Observe(Effect),
}

impl Action {
    pub fn effect(&self) -> &Effect {
        match self {
            Action::Execute(e) | Action::Observe(e) => e,
        }
    }
}

/// One target's next move.
enum Move {
    Record(Fact),
    Act(Box<Action>),
}

pub fn decide(state: &DeploymentState) -> Result<Decision, Error> {
    let Some(started) = state.started() else {
        return Err(Error::NotStarted);
    };
    if state.phase.is_final() || state.phase.is_suspended() {
        return Ok(Decision::Finished(state.phase));
    }

    let mut records = Vec::new();
    let mut actions = Vec::new();
    for index in 0..state.targets.len() {
        match decide_target(state, index) {
            Some(Move::Record(fact)) => records.push(fact),
            Some(Move::Act(action)) => actions.push(*action),
            None => {}
        }
    }
    if !records.is_empty() {
        return Ok(Decision::Record(records));
    }
    if let Some(call) = app_boot_hook_due(state) {
        return Ok(Decision::RunHook(call));
    }
    if !actions.is_empty() {
        return Ok(Decision::Run(actions));
    }

    // No target can move: the deployment as a whole ends this run.
    let targets = &state.targets;
    let first_failure = || {
        targets
            .iter()
            .enumerate()
            .find(|(_, t)| t.failed || t.status == TargetStatus::RollbackFailed)
            .map(|(i, t)| {
                let label = started.plan.targets[i].label();
                let why = t.rollback_reason.clone().unwrap_or_else(|| "failed".into());
                format!("{label}: {why}")
            })
            .unwrap_or_default()
    };
    let fact = match state.phase {
        Phase::Running if targets.iter().all(|t| t.status == TargetStatus::Completed) => {
            Fact::DeploymentCompleted
        }
        Phase::Running | Phase::Aborting
            if targets
                .iter()
                .any(|t| t.status == TargetStatus::RollbackFailed) =>
        {
            Fact::DeploymentFailed {
                outcome: FailedOutcome::RollbackIncomplete,
                reason: first_failure(),
            }
        }
        Phase::Running if targets.iter().any(|t| t.failed) => {
            let outcome = match started.plan.on_failure {
                FailurePolicy::Halt => FailedOutcome::Halted,
                FailurePolicy::Rollback => FailedOutcome::RolledBack,
            };
            Fact::DeploymentFailed {
                outcome,
                reason: first_failure(),
            }
        }
        Phase::Aborting => Fact::DeploymentAborted,
        _ => {
            return Err(Error::NoProgress {
                phase: state.phase.as_str(),
            })
        }
    };
    Ok(Decision::Record(vec![fact]))
}

fn decide_target(state: &DeploymentState, index: usize) -> Option<Move> {
    let started = state.started()?;
    let t = &state.targets[index];
    let max = started.plan.retry.max_attempts.max(1);
    let aborting = state.phase == Phase::Aborting;
    let fleet_rollback = started.plan.on_failure == FailurePolicy::Rollback
        && state.targets.iter().any(|t| t.failed);
    let rollback = |reason: String| {
        Some(Move::Record(Fact::TargetRollbackStarted {
            target: index as u32,
            reason,
        }))
    };
    let undo_reason = || {
        if aborting {
            "aborted by operator".to_string()
        } else {
            "fleet rollback: another target failed (on_failure: rollback)".to_string()
        }
    };

    match t.status {
        TargetStatus::Pending => {
            if may_start(state, index) {
                let step = state.next_step(index)?;
                Some(Move::Act(Box::new(Action::Execute(effect(
                    state,
                    index,
                    step,
                    t.last_attempt(step) + 1,
                    0,
                )))))
            } else {
                None
            }
        }
        TargetStatus::Deploying | TargetStatus::RollingBack => {
            let forward = t.status == TargetStatus::Deploying;
            let give_up = |reason: String| {
                if forward {
                    rollback(reason)
                } else {
                    Some(Move::Record(Fact::TargetRollbackFailed {
                        target: index as u32,
                        reason,
                    }))
                }
            };
            let backoff = started.plan.retry.backoff_ms(t.failures);
            if let Some((step, attempt)) = t.in_doubt {
                if t.failures < max {
                    return Some(Move::Act(Box::new(Action::Observe(effect(
                        state, index, step, attempt, backoff,
                    )))));
                }
                return give_up(failure_reason(t));
            }
            if forward && (aborting || fleet_rollback) {
                return rollback(undo_reason());
            }
            if let Some(failure) = &t.last_failure {
                if failure.kind == FailureKind::Permanent || t.failures >= max {
                    return give_up(failure_reason(t));
                }
            }
            match state.next_step(index) {
                Some(step) => Some(Move::Act(Box::new(Action::Execute(effect(
                    state,
                    index,
                    step,
                    t.last_attempt(step) + 1,
                    backoff,
                ))))),
                None if forward => Some(Move::Record(Fact::TargetCompleted {
                    target: index as u32,
                })),
                None => Some(Move::Record(Fact::TargetRolledBack {
                    target: index as u32,
                })),
            }
        }
        TargetStatus::Completed if aborting || fleet_rollback => rollback(undo_reason()),
        TargetStatus::Completed | TargetStatus::RolledBack | TargetStatus::RollbackFailed => None,
    }
}

/// The app-boot hook due before the rollout goes on, if any: `post-app-boot` of the
/// batch that just completed (it ran, whatever its exit), then `pre-app-boot` of the
/// batch about to start (until it exits 0; one that failed failed its batch's targets).
/// Only while the deployment runs forward without a failure.
fn app_boot_hook_due(state: &DeploymentState) -> Option<HookCall> {
    let started = state.started()?;
    if state.phase != Phase::Running || state.targets.iter().any(|t| t.failed) {
        return None;
    }
    let pre = state.has_hook(HookName::PreAppBoot);
    let post = state.has_hook(HookName::PostAppBoot);
    if !pre && !post {
        return None;
    }
    let plan = &started.plan;
    let batches = (0..plan.targets.len())
        .map(|i| plan.batch_of(i))
        .max()
        .map_or(0, |b| b + 1);
    for batch in 0..batches {
        let members: Vec<usize> = (0..plan.targets.len())
            .filter(|&i| plan.batch_of(i) == batch)
            .collect();
        let mut hosts: Vec<String> = Vec::new();
        for &i in &members {
            if !hosts.contains(&plan.targets[i].host) {
                hosts.push(plan.targets[i].host.clone());
            }
        }
        let call = |hook| {
            Some(HookCall {
                deployment: started.id,
                hook,
                hosts: hosts.clone(),
            })
        };
        let done = members
            .iter()
            .all(|&i| state.targets[i].status == TargetStatus::Completed);
        if done {
            let ran = state
                .last_hook_run(HookName::PostAppBoot, &hosts)
                .is_some_and(|r| r.ended.is_some());
            if post && !ran {
                return call(HookName::PostAppBoot);
            }
            continue;
        }
        let untouched = members
            .iter()
            .all(|&i| state.targets[i].status == TargetStatus::Pending);
        let passed = state
            .last_hook_run(HookName::PreAppBoot, &hosts)
            .and_then(|r| r.ended.as_ref())
            .is_some_and(|e| e.ok());
        if pre && untouched && !passed {
            return call(HookName::PreAppBoot);
        }
        return None;
    }
    None
}

fn failure_reason(t: &TargetState) -> String {
    match &t.last_failure {
        Some(f) => format!(
            "{} failed after {} attempt(s): {}",
            f.step, t.failures, f.reason
        ),
        None => "failed".to_string(),
    }
}

/// A pending target starts once the deployment runs without a failure, every target of
/// the earlier batches is completed, and so is every earlier role on its host.
fn may_start(state: &DeploymentState, index: usize) -> bool {
    let Some(started) = state.started() else {
        return false;
    };
    if state.phase != Phase::Running || state.targets.iter().any(|t| t.failed) {
        return false;
    }
    let plan = &started.plan;
    let batch = plan.batch_of(index);
    let host = &plan.targets[index].host;
    (0..state.targets.len()).filter(|&j| j != index).all(|j| {
        let earlier_batch = plan.batch_of(j) < batch;
        let earlier_on_host = j < index && &plan.targets[j].host == host;
        !(earlier_batch || earlier_on_host) || state.targets[j].status == TargetStatus::Completed
    })
}

fn effect(
    state: &DeploymentState,
    index: usize,
    step: StepName,
    attempt: u32,
    backoff_ms: u64,
) -> Effect {
    let started = state
        .started()
        .expect("decide checked that the deployment started");
    let target = &started.plan.targets[index];
    let new_container = new_container_name(&started.service, &target.role, started.id);
    Effect {
        deployment: started.id,
        target: index as u32,
        step,
        attempt,
        key: format!("{new_container}:{step}"),
        service: started.service.clone(),
        role: target.role.clone(),
        host: target.host.clone(),
        kind: target.kind,
        image: started.image.clone(),
        version: started.version.clone(),
        image_id: state
            .provenance
            .as_ref()
            .and_then(|p| p.images.iter().find(|i| i.host == target.host))
            .and_then(|i| i.image_id.clone()),
        new_container,
        old_containers: target.old_containers.clone(),
        purpose: started.plan.purpose,
        old_version: target.old_version.clone(),
        page: state.maintenance_page.clone(),
        timeouts: target.timeouts,
        backoff_ms,
        deadline_ms: deadline_ms(step, &target.timeouts, target.old_containers.len()),
    }
}
