//! `odysseus dependency boot|status|remove [NAME…]`: the services the app needs beside it
//! (deploy.yml's `dependencies`, or `accessories` in older files).

use clap::{Args, Subcommand};
use odysseus_executors::docker::dependency::Booted;
use odysseus_executors::docker::spec::DependencySpec;

use crate::config;
use crate::exit::{print_stdout, Exit, UsageError};
use crate::GlobalArgs;

#[derive(Args, Debug)]
pub struct DependencyArgs {
    #[command(subcommand)]
    command: DependencyCommand,
}

#[derive(Subcommand, Debug)]
enum DependencyCommand {
    /// Start the dependencies (all, or those named) on their hosts and wait until healthy.
    #[command(after_help = "\
Each dependency runs as one container per host, named <service>-<name>, reachable under
that name on the `odysseus` network (and on its published `ports`). A container that
exists is kept as it is (started if stopped), never replaced: to change one, `remove` it
and `boot` it again (named volumes are kept). Deploys never touch dependencies.

Exit codes: 0 all running and healthy; 1 one failed to start; 2 bad usage or config;
3 a host could not be reached.")]
    Boot {
        /// Dependency names (default: all).
        names: Vec<String>,
    },
    /// Per host: whether each dependency runs, its health and image.
    #[command(
        after_help = "Exit codes: 0 shown; 2 bad usage or config; 3 a host could not be reached."
    )]
    Status {
        /// Dependency names (default: all).
        names: Vec<String>,
    },
    /// Stop and remove the dependencies named (their named volumes are kept).
    #[command(
        after_help = "Exit codes: 0 removed; 2 bad usage or config; 3 a host could not be reached."
    )]
    Remove {
        /// Dependency names (at least one: removing a database is never implied).
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// The dependencies named (all when none is), or a usage error naming the known ones.
fn chosen<'a>(
    all: &'a [DependencySpec],
    names: &[String],
) -> Result<Vec<&'a DependencySpec>, UsageError> {
    if all.is_empty() {
        return Err(UsageError("deploy.yml declares no dependencies".into()));
    }
    if names.is_empty() {
        return Ok(all.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            all.iter().find(|d| &d.name == n).ok_or_else(|| {
                UsageError(format!(
                    "no dependency named {n} (dependencies: {})",
                    all.iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
        })
        .collect()
}

pub fn run(global: &GlobalArgs, args: DependencyArgs) -> anyhow::Result<Exit> {
    let config = config::load(&global.config, &|name| std::env::var(name).ok())
        .map_err(|e| UsageError(e.to_string()))?;
    let names = match &args.command {
        DependencyCommand::Boot { names }
        | DependencyCommand::Status { names }
        | DependencyCommand::Remove { names } => names.clone(),
    };
    let deps = chosen(&config.spec.dependencies, &names)?;
    let mut hosts: Vec<String> = Vec::new();
    for d in &deps {
        for h in &d.hosts {
            if !hosts.contains(h) {
                hosts.push(h.clone());
            }
        }
    }
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let executor = match super::connect(&config, &hosts).await {
            Ok(e) => e,
            Err(exit) => return Ok(exit),
        };
        let mut exit = Exit::Ok;
        let mut out = String::new();
        for d in deps {
            for host in &d.hosts {
                match &args.command {
                    DependencyCommand::Boot { .. } => match executor.boot_dependency(host, d).await
                    {
                        Ok(b) => eprintln!(
                            "[{host}] {}: {}",
                            d.name,
                            match b {
                                Booted::AlreadyRunning => "already running",
                                Booted::Started => "started again, healthy",
                                Booted::Created => "created, healthy",
                            }
                        ),
                        Err(e) => {
                            eprintln!("[{host}] {}: FAILED: {e}", d.name);
                            exit = Exit::Failed;
                        }
                    },
                    DependencyCommand::Remove { .. } => match executor
                        .remove_dependency(host, d)
                        .await
                    {
                        Ok(true) => eprintln!("[{host}] {}: removed (named volumes kept)", d.name),
                        Ok(false) => eprintln!("[{host}] {}: not there", d.name),
                        Err(e) => {
                            eprintln!("[{host}] {}: FAILED: {e}", d.name);
                            exit = Exit::Failed;
                        }
                    },
                    DependencyCommand::Status { .. } => match executor
                        .dependency_state(host, d)
                        .await
                    {
                        Ok(Some(s)) => out.push_str(&format!(
                            "{host:<20} {:<12} {:<10} {:<10} {}\n",
                            d.name,
                            if s.running { "running" } else { "stopped" },
                            s.health.unwrap_or_else(|| "-".into()),
                            s.image
                        )),
                        Ok(None) => out.push_str(&format!("{host:<20} {:<12} absent\n", d.name)),
                        Err(e) => {
                            out.push_str(&format!("{host:<20} {:<12} UNREACHABLE: {e}\n", d.name));
                            exit = Exit::Blocked;
                        }
                    },
                }
            }
        }
        print_stdout(&out)?;
        Ok(exit)
    })
}
