//! `odysseus dependency boot|status|restart|upgrade|remove [NAME…]` and
//! `logs|exec|shell NAME`: the services the app needs beside it (deploy.yml's
//! `dependencies`, or `accessories` in older files).

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
        /// One JSON document: `[{host, name, state: running|stopped|absent|unreachable,
        /// health, image, error}]`.
        #[arg(long)]
        json: bool,
    },
    /// Stop each dependency and start the same container again, then wait until healthy.
    #[command(after_help = "\
There is a gap in service while it restarts: the app's connections to it break.

Exit codes: 0 restarted and healthy; 1 one failed; 2 bad usage or config; 3 a host could
not be reached.")]
    Restart {
        /// Dependency names (default: all).
        names: Vec<String>,
    },
    /// Replace each dependency's container with one made from deploy.yml as it is now (a new
    /// image, env, ports), keeping its named volumes. Asks first.
    #[command(after_help = "\
A dependency is one container per host: replacing it is NOT zero-downtime. The new image
is pulled first; then the old container is stopped and removed and the new one started
and checked, and during that gap the app cannot reach it. The gap is measured and shown.
Asks on a terminal; elsewhere --yes is required.

Exit codes: 0 upgraded and healthy; 1 one failed; 2 bad usage or config, or not confirmed;
3 a host could not be reached.")]
    Upgrade {
        /// Dependency names (at least one).
        #[arg(required = true)]
        names: Vec<String>,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// What a dependency printed (`-f` to follow).
    #[command(
        after_help = "Exit codes: 0 shown; 2 bad usage or config; 3 the host could not be reached or the container does not exist."
    )]
    Logs {
        name: String,
        /// The host (needed when the dependency runs on several).
        #[arg(long)]
        host: Option<String>,
        /// Keep printing new output until interrupted.
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many lines from the end to start with.
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: usize,
    },
    /// Run a command in the running dependency container (`docker exec`).
    #[command(
        after_help = "Exit codes: the command's own; 2 bad usage or config; 3 the host could not be reached or the container is not running."
    )]
    Exec {
        name: String,
        /// The command, run by /bin/sh -c.
        #[arg(long)]
        command: String,
        /// The host (needed when the dependency runs on several).
        #[arg(long)]
        host: Option<String>,
        /// Pass this terminal's input to the command (a PTY when at a terminal).
        #[arg(short = 'i', long)]
        interactive: bool,
    },
    /// An interactive shell in the running dependency container.
    #[command(
        after_help = "Exit codes: the shell's own; 2 bad usage or config; 3 the host could not be reached or the container is not running."
    )]
    Shell {
        name: String,
        /// The host (needed when the dependency runs on several).
        #[arg(long)]
        host: Option<String>,
        /// The shell to start.
        #[arg(long, default_value = "/bin/sh")]
        shell: String,
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
        | DependencyCommand::Status { names, .. }
        | DependencyCommand::Restart { names }
        | DependencyCommand::Upgrade { names, .. }
        | DependencyCommand::Remove { names } => names.clone(),
        DependencyCommand::Logs { name, host, .. }
        | DependencyCommand::Exec { name, host, .. }
        | DependencyCommand::Shell { name, host, .. } => {
            let dep = chosen(&config.spec.dependencies, std::slice::from_ref(name))?[0];
            let host = one_host(dep, host.as_deref())?.to_string();
            return on_one(&config, dep, &host, args.command);
        }
    };
    if let DependencyCommand::Upgrade { yes, .. } = &args.command {
        let question = format!(
            "Upgrading {} replaces its container: the app cannot reach it from the old one's stop until the new one is healthy. Go on?",
            names.join(", ")
        );
        if !crate::ask::confirm(&question, *yes)? {
            eprintln!("odysseus: nothing changed");
            return Ok(Exit::Usage);
        }
    }
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
        let mut rows: Vec<serde_json::Value> = Vec::new();
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
                    DependencyCommand::Restart { .. } => {
                        match executor.restart_dependency(host, d).await {
                            Ok(()) => eprintln!("[{host}] {}: restarted, healthy", d.name),
                            Err(e) => {
                                eprintln!("[{host}] {}: FAILED: {e}", d.name);
                                exit = Exit::Failed;
                            }
                        }
                    }
                    DependencyCommand::Upgrade { .. } => {
                        match executor.upgrade_dependency(host, d).await {
                            Ok(u) => eprintln!(
                                "[{host}] {}: {} → {}, healthy; out of service for {} ms",
                                d.name,
                                u.from.as_deref().unwrap_or("(none)"),
                                d.image,
                                u.gap_ms
                            ),
                            Err(e) => {
                                eprintln!("[{host}] {}: FAILED: {e}", d.name);
                                exit = Exit::Failed;
                            }
                        }
                    }
                    DependencyCommand::Logs { .. }
                    | DependencyCommand::Exec { .. }
                    | DependencyCommand::Shell { .. } => unreachable!("handled by on_one"),
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
                        Ok(Some(s)) => {
                            rows.push(serde_json::json!({
                                "host": host, "name": d.name,
                                "state": if s.running { "running" } else { "stopped" },
                                "health": s.health, "image": s.image, "error": null,
                            }));
                            out.push_str(&format!(
                                "{host:<20} {:<12} {:<10} {:<10} {}\n",
                                d.name,
                                if s.running { "running" } else { "stopped" },
                                s.health.clone().unwrap_or_else(|| "-".into()),
                                s.image
                            ))
                        }
                        Ok(None) => {
                            rows.push(serde_json::json!({
                                "host": host, "name": d.name, "state": "absent",
                                "health": null, "image": null, "error": null,
                            }));
                            out.push_str(&format!("{host:<20} {:<12} absent\n", d.name))
                        }
                        Err(e) => {
                            rows.push(serde_json::json!({
                                "host": host, "name": d.name, "state": "unreachable",
                                "health": null, "image": null, "error": e.to_string(),
                            }));
                            out.push_str(&format!("{host:<20} {:<12} UNREACHABLE: {e}\n", d.name));
                            exit = Exit::Blocked;
                        }
                    },
                }
            }
        }
        if matches!(args.command, DependencyCommand::Status { json: true, .. }) {
            out = format!("{}\n", serde_json::to_string_pretty(&rows)?);
        }
        print_stdout(&out)?;
        Ok(exit)
    })
}

/// The host a single-container command acts on: the one named (which must run the
/// dependency), or the only one it runs on.
fn one_host<'a>(dep: &'a DependencySpec, named: Option<&'a str>) -> Result<&'a str, UsageError> {
    match (named, dep.hosts.as_slice()) {
        (Some(h), hosts) if hosts.iter().any(|x| x == h) => Ok(h),
        (Some(h), hosts) => Err(UsageError(format!(
            "{} does not run on {h} (its hosts: {})",
            dep.name,
            hosts.join(", ")
        ))),
        (None, [only]) => Ok(only),
        (None, hosts) => Err(UsageError(format!(
            "{} runs on several hosts: say which with --host ({})",
            dep.name,
            hosts.join(", ")
        ))),
    }
}

/// `logs`, `exec` and `shell`: one container on one host.
fn on_one(
    config: &config::Config,
    dep: &DependencySpec,
    host: &str,
    command: DependencyCommand,
) -> anyhow::Result<Exit> {
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let executor = match super::connect(config, &[host.to_string()]).await {
            Ok(e) => e,
            Err(exit) => return Ok(exit),
        };
        let container = match executor.dependency_container(host, dep).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("odysseus: {e}");
                return Ok(Exit::Blocked);
            }
        };
        let engine = &executor.host(host)?.engine;
        let result = match command {
            DependencyCommand::Logs { follow, lines, .. } => {
                let printing = odysseus_executors::docker::logs::print_container_logs(
                    engine, &container, lines, follow,
                );
                tokio::select! {
                    r = printing => r.map(|_| 0),
                    _ = tokio::signal::ctrl_c() => Ok(0),
                }
            }
            DependencyCommand::Exec {
                command,
                interactive,
                ..
            } => {
                odysseus_executors::docker::interactive::exec_in(
                    engine,
                    &container,
                    vec!["/bin/sh".into(), "-c".into(), command],
                    interactive,
                )
                .await
            }
            DependencyCommand::Shell { shell, .. } => {
                odysseus_executors::docker::interactive::exec_in(
                    engine,
                    &container,
                    vec![shell],
                    true,
                )
                .await
            }
            _ => unreachable!("only single-container commands come here"),
        };
        match result {
            Ok(code) => Ok(Exit::Code(code.clamp(0, 255) as u8)),
            Err(e) => {
                eprintln!("odysseus: {e}");
                Ok(Exit::Blocked)
            }
        }
    })
}
