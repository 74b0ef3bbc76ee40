//! `odysseus rollback [VERSION] [--list]`: deploy an earlier version again, refused
//! before anything changes when its image is missing on any host.

use clap::Args;
use odysseus_engine::machine::{DeploymentState, Phase};
use odysseus_executors::docker::DockerExecutor;

use crate::config;
use crate::exit::{print_stdout, Exit, UsageError};
use crate::state::open_journal;
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(after_help = "\
Without VERSION: the version that served before the latest completed deployment. The
rollback is an ordinary deploy of that tag (same steps, same zero-downtime guarantees,
its own journal entry); it is refused before anything changes when the image is missing
on any host (`odysseus push --image VERSION` sends it).

Exit codes: as `odysseus deploy`; 3 also when the image is missing on a host.")]
pub struct RollbackArgs {
    /// The version (tag) to return to.
    version: Option<String>,
    /// List the versions this service was deployed with, newest first.
    #[arg(long)]
    list: bool,
}

/// Versions of completed deployments, newest first, without repeats.
fn completed_versions(global: &GlobalArgs, service: &str) -> anyhow::Result<Vec<(String, String)>> {
    let journal = open_journal(global, false)?;
    let mut versions: Vec<(String, String)> = Vec::new();
    for id in journal.deployments(service)? {
        let state = DeploymentState::fold(&journal.load(id)?)?;
        if state.phase != Phase::Completed {
            continue;
        }
        // A cleanup deployed no version.
        if let Some(s) = state
            .started()
            .filter(|s| s.plan.purpose == odysseus_engine::machine::Purpose::Deploy)
        {
            if !versions.iter().any(|(v, _)| *v == s.version) {
                versions.push((s.version.clone(), state.started_at.to_string()));
            }
        }
    }
    Ok(versions)
}

/// For each tag, the hosts whose engine lacks `<image>:<tag>`.
async fn missing_on(
    config: &config::Config,
    tags: &[String],
) -> Result<std::collections::BTreeMap<String, Vec<String>>, odysseus_engine::runtime::ExecError> {
    let executor = DockerExecutor::connect(
        config.spec.clone(),
        &config.hosts(),
        &config.ssh,
        config.ssh_port,
    )
    .await?;
    let mut missing = std::collections::BTreeMap::new();
    for tag in tags {
        let image = format!("{}:{tag}", config.image);
        let mut hosts = Vec::new();
        for (host, handle) in executor.hosts_sorted() {
            if !handle.engine.image_present(&image).await? {
                hosts.push(host.clone());
            }
        }
        missing.insert(tag.clone(), hosts);
    }
    Ok(missing)
}

pub fn run(global: &GlobalArgs, args: RollbackArgs) -> anyhow::Result<Exit> {
    let config = config::load(&global.config, &|name| std::env::var(name).ok())
        .map_err(|e| UsageError(e.to_string()))?;
    let versions = completed_versions(global, &config.service)?;
    let runtime = super::runtime()?;
    if args.list {
        // Which versions can still be rolled back to: their image on every host
        // (retain_versions prunes old ones). Without the hosts, the journal alone.
        let tags: Vec<String> = versions.iter().map(|(v, _)| v.clone()).collect();
        let presence = runtime.block_on(missing_on(&config, &tags));
        let mut out = String::new();
        for (i, (version, at)) in versions.iter().enumerate() {
            let availability = match &presence {
                Ok(missing) => match missing.get(version) {
                    Some(hosts) if !hosts.is_empty() => {
                        format!("  image missing on {}", hosts.join(", "))
                    }
                    _ => String::new(),
                },
                Err(_) => String::new(),
            };
            out.push_str(&format!(
                "{version:<20} deployed {at}{}{availability}\n",
                if i == 0 { "  (current)" } else { "" }
            ));
        }
        if out.is_empty() {
            out = format!("no completed deployment of {} yet\n", config.service);
        } else if let Err(e) = &presence {
            out.push_str(&format!("(could not check the images on the hosts: {e})\n"));
        }
        print_stdout(&out)?;
        return Ok(Exit::Ok);
    }
    let version = match args.version {
        Some(v) => v,
        None => versions.get(1).map(|(v, _)| v.clone()).ok_or_else(|| {
            UsageError(format!(
                "{} has no earlier version to return to (see `odysseus rollback --list`)",
                config.service
            ))
        })?,
    };
    let image = format!("{}:{version}", config.image);
    let missing = runtime
        .block_on(missing_on(&config, std::slice::from_ref(&version)))
        .map(|mut m| m.remove(&version).unwrap_or_default());
    // An image that lives on a registry can still be pulled where it is missing.
    let pullable = image.split('/').count() > 1
        && image
            .split('/')
            .next()
            .is_some_and(|r| r.contains('.') || r.contains(':') || r == "localhost")
        || config.spec.registry.is_some();
    match missing {
        Err(e) => {
            eprintln!("odysseus: {e}\nNothing was changed.");
            return Ok(Exit::Blocked);
        }
        Ok(missing) if !missing.is_empty() && pullable => {
            eprintln!(
                "odysseus: {image} is not on {}: it will be pulled from its registry first.",
                missing.join(", ")
            );
        }
        Ok(missing) if !missing.is_empty() => {
            eprintln!(
                "odysseus: {image} is not on {}; send it first with `odysseus push --image {version}`.\nNothing was changed.",
                missing.join(", ")
            );
            return Ok(Exit::Blocked);
        }
        Ok(_) => {}
    }
    drop(runtime);
    eprintln!("Rolling back {} to {version}", config.service);
    super::deploy::run(global, super::deploy::DeployArgs::for_rollback(version))
}
