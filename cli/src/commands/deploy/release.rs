//! The release step of a deployment (deploy.yml's `release_command`): between the image's
//! arrival on the hosts (`provenance`) and the first step. `release-started` is written
//! before the container runs; `released` or `release-failed` after it exits. A resume
//! finds the same container (its name comes from the deployment id) and waits for it; a
//! release that ended is never run again; a failed one ends the deployment with nothing
//! switched.
//!
//! The `pre-deploy` hook runs before it, `post-deploy` once the targets completed.

use odysseus_engine::journal::Journal;
use odysseus_engine::machine::{DeploymentState, Fact, HookName, Phase, TargetStatus};
use odysseus_engine::runtime::{self, ExecError, Executor, Runtime, SystemClock};
use odysseus_executors::docker::release::release_container;
use odysseus_executors::docker::DockerExecutor;

use crate::config::Config;

/// Runs (or finishes) the release when the deployment has one to run, then drives it on.
pub(super) async fn release_and_drive<E: Executor>(
    runtime: &mut Runtime<'_, Journal, E, SystemClock>,
    state: &mut DeploymentState,
    id: odysseus_engine::DeploymentId,
    config: &Config,
    executor: &DockerExecutor,
) -> Result<(), runtime::Error> {
    // The deployment's start reaches the hosts now (where they answer), so a run from
    // another machine finds it even if this one dies before its first step.
    runtime.replicate(id, state, &[]).await?;
    if !super::hook_gates::gate(runtime, state, id, HookName::PreDeploy).await? {
        return Ok(());
    }
    release(runtime, state, id, config, executor).await?;
    if state.phase.is_final() {
        return Ok(());
    }
    runtime.drive_on(id, state).await?;
    super::hook_gates::report(runtime, state, id).await
}

/// Runs (or waits for) the release command when the deployment has one that has not
/// ended yet.
async fn release<E: Executor>(
    runtime: &mut Runtime<'_, Journal, E, SystemClock>,
    state: &mut DeploymentState,
    id: odysseus_engine::DeploymentId,
    config: &Config,
    executor: &DockerExecutor,
) -> Result<(), runtime::Error> {
    let Some((host, container, command)) = pending(state, id, config) else {
        return Ok(());
    };
    if state.release.is_none() {
        runtime.record_now(
            id,
            state,
            Fact::ReleaseStarted {
                host: host.clone(),
                container: container.clone(),
                command: command.clone(),
            },
        )?;
    }
    // Write-ahead on the host that runs it: a run from anywhere finds the release there
    // and waits for its container instead of running it a second time.
    if let Some((_, why)) = runtime
        .replicate(id, state, std::slice::from_ref(&host))
        .await?
        .into_iter()
        .next()
    {
        return Err(runtime::Error::Preparing(format!(
            "the release's record could not be written to the journal's copy on {host} ({why}); the release command did not run"
        )));
    }
    let Some(started) = state.started() else {
        return Ok(());
    };
    let image = format!("{}:{}", started.image, started.version);
    let role = primary_role(config);
    eprintln!("Release command on {host}: {}", command.join(" "));
    match executor
        .run_release(&host, &role, &container, &image, &command)
        .await
    {
        Ok(run) if run.exit_code == 0 => {
            runtime.record_now(id, state, Fact::Released { millis: run.millis })?;
            // The outcome is on the host before the container that proves it goes: a
            // resume from anywhere never takes a removed container for one never run.
            if runtime
                .replicate(id, state, std::slice::from_ref(&host))
                .await?
                .is_empty()
            {
                executor.remove_release(&host, &container).await;
            }
            eprintln!("Release command done ({:.1}s)", run.millis as f64 / 1000.0);
            Ok(())
        }
        Ok(run) => {
            let reason = format!(
                "the release command exited {} on {host}: nothing was switched; its last lines:\n{}",
                run.exit_code,
                run.last_lines.trim_end()
            );
            runtime.record_now(
                id,
                state,
                Fact::ReleaseFailed {
                    exit_code: Some(run.exit_code),
                    reason,
                },
            )?;
            if runtime
                .replicate(id, state, std::slice::from_ref(&host))
                .await?
                .is_empty()
            {
                executor.remove_release(&host, &container).await;
            }
            Ok(())
        }
        // It could not start at all (no such command in the image, say): a failure of the
        // release, recorded; anything else leaves it to a resume, which finds the same
        // container.
        Err(ExecError::Permanent(why)) => {
            runtime.record_now(
                id,
                state,
                Fact::ReleaseFailed {
                    exit_code: None,
                    reason: format!("the release command could not run on {host}: {why}"),
                },
            )?;
            if runtime
                .replicate(id, state, std::slice::from_ref(&host))
                .await?
                .is_empty()
            {
                executor.remove_release(&host, &container).await;
            }
            Ok(())
        }
        Err(e) => Err(runtime::Error::Preparing(format!(
            "the release command on {host}: {e} (a resume waits for the same container)"
        ))),
    }
}

/// The release this deployment still has to run or finish: the one it started (as
/// recorded: host, container, command), or — when deploy.yml has a `release_command` and
/// no target has moved yet — a new one on the plan's first host.
fn pending(
    state: &DeploymentState,
    id: odysseus_engine::DeploymentId,
    config: &Config,
) -> Option<(String, String, Vec<String>)> {
    if state.phase != Phase::Running
        || state
            .started()
            .is_some_and(|s| s.plan.purpose != odysseus_engine::machine::Purpose::Deploy)
    {
        return None;
    }
    if let Some(r) = &state.release {
        return r
            .running()
            .then(|| (r.host.clone(), r.container.clone(), r.command.clone()));
    }
    let untouched = state
        .targets
        .iter()
        .all(|t| t.status == TargetStatus::Pending);
    let command = config.release_command.clone()?;
    let started = state.started()?;
    let host = started.plan.targets.first()?.host.clone();
    untouched.then(|| {
        (
            host,
            release_container(&config.service, &id.short()),
            command,
        )
    })
}

/// The role whose env, volumes and network the release runs with: the web role, else the
/// first role of deploy.yml.
fn primary_role(config: &Config) -> String {
    config
        .roles
        .iter()
        .find(|r| r.kind == odysseus_engine::machine::RoleKind::Web)
        .or(config.roles.first())
        .map(|r| r.name.clone())
        .unwrap_or_else(|| "web".into())
}
