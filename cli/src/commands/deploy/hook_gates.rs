//! The deployment-level hooks, around the machine's own (`pre-app-boot` and
//! `post-app-boot`, which the machine schedules per batch): `pre-build` before the build,
//! `pre-deploy` before the release command and the first target, `post-deploy` once the
//! deployment completed. Each run is journaled (`hook-started`, `hook-ended`); a gate that
//! passed is never run again by a resume, one whose run died with its process is.

use odysseus_engine::journal::Journal;
use odysseus_engine::machine::{DeploymentState, Fact, HookCall, HookExit, HookName, Phase};
use odysseus_engine::runtime::{self, Executor, Runtime, SystemClock};
use odysseus_engine::DeploymentId;

/// Every host of the deployment's plan, in plan order.
fn plan_hosts(state: &DeploymentState) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    if let Some(started) = state.started() {
        for h in started.plan.hosts() {
            hosts.push(h.to_string());
        }
    }
    hosts
}

/// Runs the gate `hook` unless the deployment has none or already passed it. `false`:
/// it failed, and the deployment is over (`hook-failed`) with nothing changed.
pub(super) async fn gate<E: Executor>(
    runtime: &mut Runtime<'_, Journal, E, SystemClock>,
    state: &mut DeploymentState,
    id: DeploymentId,
    hook: HookName,
) -> Result<bool, runtime::Error> {
    let hosts = plan_hosts(state);
    let passed = state
        .last_hook_run(hook, &hosts)
        .and_then(|r| r.ended.as_ref())
        .is_some_and(HookExit::ok);
    if !state.has_hook(hook) || passed {
        return Ok(true);
    }
    let exit = run(runtime, state, id, hook, hosts).await?;
    if exit.ok() {
        return Ok(true);
    }
    runtime.record_now(
        id,
        state,
        Fact::HookFailed {
            hook: hook.as_str().to_string(),
            reason: format!("the {hook} hook {}", exit.describe()),
        },
    )?;
    // The end reaches the hosts too (where they answer).
    runtime.replicate(id, state, &[]).await?;
    Ok(false)
}

/// Runs `post-deploy` once the deployment completed (when the project has it). A failure
/// is reported: the deployment stays completed.
pub(super) async fn report<E: Executor>(
    runtime: &mut Runtime<'_, Journal, E, SystemClock>,
    state: &mut DeploymentState,
    id: DeploymentId,
) -> Result<(), runtime::Error> {
    let hook = HookName::PostDeploy;
    let hosts = plan_hosts(state);
    if state.phase != Phase::Completed
        || !state.has_hook(hook)
        || state
            .last_hook_run(hook, &hosts)
            .is_some_and(|r| r.ended.is_some())
    {
        return Ok(());
    }
    let exit = run(runtime, state, id, hook, hosts).await?;
    // Its run is part of the deployment's record on the hosts too (where they answer).
    runtime.replicate(id, state, &[]).await?;
    if !exit.ok() {
        eprintln!(
            "warning: the post-deploy hook {}; the deployment is complete and stays so",
            exit.describe()
        );
    }
    Ok(())
}

async fn run<E: Executor>(
    runtime: &mut Runtime<'_, Journal, E, SystemClock>,
    state: &mut DeploymentState,
    id: DeploymentId,
    hook: HookName,
    hosts: Vec<String>,
) -> Result<HookExit, runtime::Error> {
    runtime
        .run_hook(
            id,
            state,
            HookCall {
                deployment: id,
                hook,
                hosts,
            },
        )
        .await
}
