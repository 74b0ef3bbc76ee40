//! `odysseus status`: per host, what serves the service now, from the hosts themselves,
//! plus the unfinished deployment and lock holders from the journal and the hosts.

use clap::Args;
use odysseus_engine::machine::DeploymentState;
use odysseus_executors::docker::DockerExecutor;
use serde_json::{json, Value};

use crate::config;
use crate::exit::{print_stdout, Exit, UsageError};
use crate::state::state_dir;
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(after_help = "\
For each host: the service's containers (role, version, running, health, routed by
Caddy), Caddy's upstreams for the service, whether it is in maintenance (`app
maintenance`), and who holds the deploy lock there; then the unfinished deployment, if
any, from the journal.

Exit codes: 0 every host answered; 2 bad usage or config; 3 a host could not be reached
(the others are still shown).")]
pub struct StatusArgs {
    /// One JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(global: &GlobalArgs, args: StatusArgs) -> anyhow::Result<Exit> {
    let config = config::load_with(
        &global.config,
        &|name| std::env::var(name).ok(),
        config::SecretsHere::MayLack,
    )
    .map_err(|e| UsageError(e.to_string()))?;
    let runtime = super::runtime()?;
    let hosts = runtime.block_on(async {
        let mut hosts = Vec::new();
        for host in config.hosts() {
            let status = match DockerExecutor::connect(
                config.spec.clone(),
                std::slice::from_ref(&host),
                &config.ssh,
                config.ssh_port,
            )
            .await
            {
                Ok(executor) => executor.host_status(&host).await,
                Err(e) => Err(e),
            };
            hosts.push((host, status));
        }
        hosts
    });
    // The journal, if this state dir has one (read-only; a running deploy holds it).
    let journal_path = state_dir(global).join("journal");
    let unfinished: Option<Value> = if journal_path.exists() {
        match odysseus_engine::journal::Journal::open(&journal_path) {
            Ok(journal) => match journal.unfinished(&config.service)? {
                Some(id) => {
                    let state = DeploymentState::fold(&journal.load(id)?)?;
                    let s = state.started();
                    // A cleanup (or maintenance on or off) is never rolled back: it is
                    // finished or abandoned.
                    let cleanup = s.is_some_and(|s| !s.plan.purpose.is_undoable());
                    Some(json!({
                        "id": id.to_string(),
                        "purpose": s.map(|s| s.plan.purpose.as_str()),
                        "version": s.filter(|_| !cleanup).map(|s| s.version.clone()),
                        "hosts": s.map(|s| s.plan.hosts().join(", ")),
                        "status": state.phase.as_str(),
                        "resume": format!("odysseus deploy -c {} --resume", global.config.display()),
                        "abort": (!cleanup).then(|| format!("odysseus deploy -c {} --abort", global.config.display())),
                        "abandon": format!("odysseus deploy -c {} --abandon REASON", global.config.display()),
                    }))
                }
                None => None,
            },
            Err(odysseus_engine::journal::Error::Busy { .. }) => {
                Some(json!({"status": "a deploy is running right now"}))
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    let unreachable = hosts.iter().any(|(_, s)| s.is_err());
    if args.json {
        let doc = json!({
            "service": config.service,
            "hosts": hosts.iter().map(|(h, s)| match s {
                Ok(s) => serde_json::to_value(s).unwrap_or(Value::Null),
                Err(e) => json!({"host": h, "error": e.to_string()}),
            }).collect::<Vec<_>>(),
            "unfinished_deployment": unfinished,
        });
        print_stdout(&(serde_json::to_string_pretty(&doc)? + "\n"))?;
    } else {
        let mut out = format!("{}\n", config.service);
        for (host, status) in &hosts {
            match status {
                Err(e) => out.push_str(&format!("  {host}: UNREACHABLE: {e}\n")),
                Ok(s) => {
                    out.push_str(&format!("  {host}\n"));
                    for c in s.containers.iter().filter(|c| c.running) {
                        out.push_str(&format!(
                            "    {:<8} {:<10} {:<28} {}{}\n",
                            c.role,
                            c.version,
                            c.name,
                            if c.routed { "routed" } else { "-" },
                            c.health
                                .as_ref()
                                .map(|h| format!(", {h}"))
                                .unwrap_or_default()
                        ));
                    }
                    let stopped = s.containers.iter().filter(|c| !c.running).count();
                    if stopped > 0 {
                        out.push_str(&format!(
                            "    ({stopped} stopped container(s) of earlier versions)\n"
                        ));
                    }
                    match &s.upstreams {
                        Some(u) => out.push_str(&format!(
                            "    caddy upstreams: {}\n",
                            if u.is_empty() {
                                "(none)".into()
                            } else {
                                u.join(", ")
                            }
                        )),
                        None => out.push_str("    caddy: no route for this service\n"),
                    }
                    if let Some(page) = &s.maintenance {
                        // One line per host, however long the message (`--json` has it all).
                        let mut message: String = page.message.chars().take(80).collect();
                        if message.len() < page.message.len() {
                            message.push('…');
                        }
                        out.push_str(&format!(
                            "    MAINTENANCE: Caddy answers 503 (Retry-After {}s): {message:?}; `odysseus app live` ends it\n",
                            page.retry_after_s
                        ));
                    }
                    if let Some(path) = &s.route_health_path {
                        out.push_str(&format!("    caddy health check: GET {path}\n"));
                    }
                    if let Some(mark) = &s.unfinished_mark {
                        out.push_str(&format!("    unfinished deployment marked here: {mark}\n"));
                    }
                    if let Some(holder) = &s.lock_holder {
                        out.push_str(&format!("    deploy lock held by {}\n", holder.trim()));
                    }
                    if let Some(problem) = &s.lock_problem {
                        out.push_str(&format!("    deploy lock: {problem}\n"));
                    }
                }
            }
        }
        if let Some(u) = &unfinished {
            match u["id"].as_str() {
                Some(id) if u["abort"].is_null() => out.push_str(&format!(
                    "unfinished {} {id} on {} ({})\n  to finish it: {}\n  to end it where it stands: {}\n",
                    u["purpose"].as_str().unwrap_or("?"),
                    u["hosts"].as_str().unwrap_or("?"),
                    u["status"].as_str().unwrap_or("?"),
                    u["resume"].as_str().unwrap_or_default(),
                    u["abandon"].as_str().unwrap_or_default()
                )),
                Some(id) => out.push_str(&format!(
                    "unfinished deployment {id} of version {} ({})\n  to continue: {}\n  to roll back: {}\n",
                    u["version"].as_str().unwrap_or("?"),
                    u["status"].as_str().unwrap_or("?"),
                    u["resume"].as_str().unwrap_or_default(),
                    u["abort"].as_str().unwrap_or_default()
                )),
                None => out.push_str(&format!(
                    "unfinished deployment: {}\n",
                    u["status"].as_str().unwrap_or("?")
                )),
            }
        }
        print_stdout(&out)?;
    }
    Ok(if unreachable { Exit::Blocked } else { Exit::Ok })
}
