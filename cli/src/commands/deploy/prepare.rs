//! What a deployment that builds its image does between its start and its first step:
//! `build-started` (written before the build runs), the build, `built` with the image id
//! (or `build-failed`, which ends the deployment with nothing changed), the image's
//! delivery to the hosts, then `provenance`. A resume picks up where this stopped: it
//! builds again only when no `built` was recorded, and never from another commit.

use std::path::{Path, PathBuf};

use odysseus_engine::journal::Journal;
use odysseus_engine::machine::{DeploymentState, Fact, HookName};
use odysseus_engine::runtime::{self, ExecError, Executor, Runtime, SystemClock};
use odysseus_executors::docker::DockerExecutor;

use crate::commands::build::{self, BuilderEngine};
use crate::config::Config;

/// What the preparation needs from the deploy command.
pub(super) struct Prep<'a> {
    /// Connected before anything changed.
    pub builder: Option<BuilderEngine>,
    pub config: &'a Config,
    pub executor: &'a DockerExecutor,
    pub hosts: &'a [String],
    pub tag: &'a str,
    pub state_dir: PathBuf,
    pub config_path: &'a Path,
    /// Deliver through the registry instead of straight to the hosts.
    pub push: bool,
}

pub(super) async fn prepare_and_drive<E: Executor>(
    runtime: &mut Runtime<'_, Journal, E, SystemClock>,
    state: &mut DeploymentState,
    id: odysseus_engine::DeploymentId,
    prep: Prep<'_>,
) -> Result<(), runtime::Error> {
    let image = format!("{}:{}", prep.config.image, prep.tag);
    let failed = |e: ExecError| runtime::Error::Preparing(e.to_string());
    let builder = match prep.builder {
        Some(b) => b,
        None => BuilderEngine::connect(prep.config).await.map_err(|e| {
            runtime::Error::Preparing(format!("the builder cannot be reached: {e}"))
        })?,
    };
    let built_id = match state.build.as_ref().and_then(|b| b.image_id.clone()) {
        Some(id) => id,
        None => {
            // A build (again, on a resume too) is of a clean tree at the recorded commit:
            // the image must be what its version says.
            let head = match crate::version::head(prep.config_path) {
                Ok(c) => c.map(|c| c.id),
                Err(e) => {
                    return Err(runtime::Error::Preparing(format!(
                        "{} (deployment {id} is left to resume once the tree is clean, or to roll back)",
                        e.0
                    )))
                }
            };
            // The version names a commit: a build for it happens only at that commit.
            let commit = match state.build.as_ref() {
                Some(b) => {
                    if b.commit.is_some() && b.commit != head {
                        return Err(runtime::Error::Preparing(format!(
                            "deployment {id} builds commit {}, but the repository is at {}: check that commit out to resume, or roll back",
                            b.commit.as_deref().unwrap_or_default(),
                            head.as_deref().unwrap_or("no commit")
                        )));
                    }
                    b.commit.clone()
                }
                // A run killed inside its pre-build hook recorded no build yet: a version
                // that names a commit is built from that commit only.
                None if state.last_hook(HookName::PreBuild).is_some() => {
                    if let Some(named) = crate::version::commit_named(prep.config_path, prep.tag) {
                        if head.as_deref() != Some(named.as_str()) {
                            return Err(runtime::Error::Preparing(format!(
                                "deployment {id} builds commit {named}, but the repository is at {}: check that commit out to resume, or roll back",
                                head.as_deref().unwrap_or("no commit")
                            )));
                        }
                    }
                    head.filter(|c| c.starts_with(prep.tag))
                }
                None => head.filter(|c| c.starts_with(prep.tag)),
            };
            prep.config
                .check_buildable()
                .map_err(runtime::Error::Preparing)?;
            if !super::hook_gates::gate(runtime, state, id, HookName::PreBuild).await? {
                return Ok(());
            }
            let spec = &prep.config.build;
            runtime.record_now(
                id,
                state,
                Fact::BuildStarted {
                    commit: commit.clone(),
                    builder: spec.builder_name(),
                    platforms: spec.platforms.clone(),
                    args: spec.args.keys().cloned().collect(),
                },
            )?;
            // The start and the build reach the hosts before the build (where they
            // answer): a run from another machine finds this deployment.
            runtime.replicate(id, state, &[]).await?;
            match build::build(prep.config, &builder, &image, commit.as_deref()).await {
                Ok(b) => {
                    runtime.record_now(
                        id,
                        state,
                        Fact::Built {
                            image_id: b.image_id.clone(),
                            millis: b.millis,
                        },
                    )?;
                    b.announce(&image);
                    b.image_id
                }
                Err(ExecError::Permanent(reason)) => {
                    runtime.record_now(id, state, Fact::BuildFailed { reason })?;
                    // Final: the hosts hear it too (where they answer).
                    runtime.replicate(id, state, &[]).await?;
                    return Ok(());
                }
                Err(e) => return Err(failed(e)),
            }
        }
    };
    // What is delivered is what was built: a tag moved on the builder since is refused.
    let now = builder.engine().image_id(&image).await.map_err(failed)?;
    if now.as_deref() != Some(built_id.as_str()) {
        return Err(runtime::Error::Preparing(format!(
            "{image} on the builder ({}) is no longer the image deployment {id} built ({}); roll it back and deploy again",
            builder.engine().host,
            build::short_id(&built_id)
        )));
    }
    build::deliver(prep.config, &builder, prep.executor, &image, prep.push)
        .await
        .map_err(failed)?;
    prep.executor
        .pull_everywhere(&image)
        .await
        .map_err(failed)?;
    let provenance = super::provenance(
        prep.executor,
        prep.config,
        prep.hosts,
        prep.tag,
        &prep.state_dir,
    )
    .await;
    runtime.record_now(id, state, provenance)?;
    super::release::release_and_drive(runtime, state, id, prep.config, prep.executor).await
}
