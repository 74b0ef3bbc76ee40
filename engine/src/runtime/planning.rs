//! Building a plan: the config says which roles go to which hosts; a survey of every
//! host says what each target replaces.

use super::{Error, Executor};
use crate::machine::{FailurePolicy, Plan, Purpose, RetryPolicy, RoleKind, Target, Timeouts};

/// One (role, host) pair as the config describes it.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub role: String,
    pub host: String,
    pub kind: RoleKind,
    pub timeouts: Timeouts,
}

pub async fn plan_deployment<E: Executor>(
    executor: &E,
    service: &str,
    specs: &[TargetSpec],
    batch_size: u32,
    on_failure: FailurePolicy,
    retry: RetryPolicy,
) -> Result<Plan, Error> {
    let mut targets = Vec::with_capacity(specs.len());
    for spec in specs {
        let survey = executor
            .survey(service, &spec.role, spec.kind, &spec.host)
            .await
            .map_err(|error| Error::Survey {
                role: spec.role.clone(),
                host: spec.host.clone(),
                error,
            })?;
        targets.push(Target {
            role: spec.role.clone(),
            host: spec.host.clone(),
            kind: spec.kind,
            old_containers: survey.containers,
            old_version: survey.version,
            timeouts: spec.timeouts,
        });
    }
    Ok(Plan {
        targets,
        purpose: Purpose::Deploy,
        batch_size: batch_size.max(1),
        on_failure,
        retry,
    })
}

/// A cleanup of one host: a target per role that has containers of the service there
/// (every one of them, running or stopped, as the executor's survey of a cleanup lists
/// them). Never rolled back: halt on failure.
pub async fn plan_cleanup<E: Executor>(
    executor: &E,
    service: &str,
    host: &str,
    roles: &[TargetSpec],
    retry: RetryPolicy,
) -> Result<Plan, Error> {
    let mut targets = Vec::new();
    for spec in roles.iter().filter(|s| s.host == host) {
        let survey = executor
            .survey_all(service, &spec.role, host)
            .await
            .map_err(|error| Error::Survey {
                role: spec.role.clone(),
                host: host.to_string(),
                error,
            })?;
        if survey.containers.is_empty() {
            continue;
        }
        targets.push(Target {
            role: spec.role.clone(),
            host: host.to_string(),
            kind: spec.kind,
            old_containers: survey.containers,
            old_version: survey.version,
            timeouts: spec.timeouts,
        });
    }
    Ok(Plan {
        targets,
        purpose: Purpose::Cleanup,
        batch_size: 1,
        on_failure: FailurePolicy::Halt,
        retry,
    })
}

/// The plan of maintenance mode on (`Purpose::Maintenance`) or off (`Purpose::Live`): a
/// target per host that routes the service (its first web role there), all in one batch
/// (the hosts answer the same way as closely together as they can), halted on a failure
/// and never undone. No container is touched, so nothing is surveyed.
pub fn plan_maintenance(purpose: Purpose, specs: &[TargetSpec], retry: RetryPolicy) -> Plan {
    let mut targets: Vec<Target> = Vec::new();
    for spec in specs.iter().filter(|s| s.kind == RoleKind::Web) {
        if targets.iter().any(|t| t.host == spec.host) {
            continue;
        }
        targets.push(Target {
            role: spec.role.clone(),
            host: spec.host.clone(),
            kind: spec.kind,
            old_containers: Vec::new(),
            old_version: None,
            timeouts: spec.timeouts,
        });
    }
    Plan {
        batch_size: targets.len().max(1) as u32,
        targets,
        purpose,
        on_failure: FailurePolicy::Halt,
        retry,
    }
}

/// Before a resume: the containers of each target's role that run now and that the
/// recorded plan does not account for (neither one it replaces nor its own new one) —
/// the sign that another deployment changed the host since. Hosts that cannot be
/// surveyed are skipped: their steps fail on their own.
pub async fn foreign_containers<E: Executor>(
    executor: &E,
    state: &crate::machine::DeploymentState,
) -> Vec<String> {
    let Some(started) = state.started() else {
        return Vec::new();
    };
    // Maintenance on or off touches no container: whatever runs is not in its way.
    if matches!(
        started.plan.purpose,
        crate::machine::Purpose::Maintenance | crate::machine::Purpose::Live
    ) {
        return Vec::new();
    }
    let mut found = Vec::new();
    for target in &started.plan.targets {
        let own = crate::machine::new_container_name(&started.service, &target.role, started.id);
        let Ok(survey) = executor
            .survey(&started.service, &target.role, target.kind, &target.host)
            .await
        else {
            continue;
        };
        for name in survey.containers {
            if name != own && !target.old_containers.contains(&name) {
                found.push(format!("{} runs {name}", target.label()));
            }
        }
    }
    found
}
