//! `odysseus lock status | release`: who holds the deploy lock, and breaking it.

use clap::{Args, Subcommand};
use odysseus_engine::journal::{local_hostname, Journal};
use odysseus_engine::machine::Fact;
use odysseus_engine::runtime::SystemClock;
use odysseus_engine::Operator;
use odysseus_executors::docker::DockerExecutor;
use odysseus_executors::steps::HostOps;

use crate::config::{self, Config};
use crate::exit::{print_stdout, Exit, UsageError};
use crate::state::state_dir;
use crate::GlobalArgs;

#[derive(Args, Debug)]
pub struct LockArgs {
    #[command(subcommand)]
    command: LockCommand,
}

#[derive(Subcommand, Debug)]
enum LockCommand {
    /// Who holds the deploy lock: in this state dir's journal and on every host.
    #[command(
        after_help = "Exit codes: 0 shown; 2 bad usage or config; 3 a host could not be reached."
    )]
    Status,
    /// Break the deploy lock everywhere and record it in the unfinished deployment's log.
    #[command(after_help = "\
Use it when the holder is gone for good (its machine died) or stuck. A holder that is still
running notices before its next side effect on a host (every step first checks that the
lock there is still its own) and stops acting; its deployment halts. The break is recorded
in the journal as a `lock-released` event of the unfinished deployment, if there is one.

Exit codes: 0 released; 2 bad usage or config; 3 a host could not be reached.")]
    Release,
}

fn operator() -> Operator {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    Operator {
        user,
        hostname: local_hostname(),
        pid: std::process::id(),
    }
}

async fn executors(config: &Config) -> Vec<(String, Result<DockerExecutor, String>)> {
    let mut out = Vec::new();
    for host in config.hosts() {
        let e = DockerExecutor::connect(
            config.spec.clone(),
            std::slice::from_ref(&host),
            &config.ssh,
            config.ssh_port,
        )
        .await
        .map_err(|e| e.to_string());
        out.push((host, e));
    }
    out
}

pub fn run(global: &GlobalArgs, args: LockArgs) -> anyhow::Result<Exit> {
    let config = config::load_with(
        &global.config,
        &|name| std::env::var(name).ok(),
        config::SecretsHere::MayLack,
    )
    .map_err(|e| UsageError(e.to_string()))?;
    let service = config.service.clone();
    let journal_path = state_dir(global).join("journal");
    // A running deploy keeps its journal open (and so holds its lock): say so.
    let (journal, journal_busy) = if journal_path.exists() {
        match Journal::open(&journal_path) {
            Ok(j) => (Some(j), false),
            Err(odysseus_engine::journal::Error::Busy { .. }) => (None, true),
            Err(e) => return Err(e.into()),
        }
    } else {
        (None, false)
    };
    let runtime = super::runtime()?;
    let mut out = String::new();
    let mut unreachable = false;
    match args.command {
        LockCommand::Status => {
            if journal_busy {
                out.push_str(&format!(
                    "journal ({}): in use by a running deploy, which holds the lock\n",
                    state_dir(global).display()
                ));
            } else {
                match journal
                    .as_ref()
                    .map(|j| j.lock_holder(&service))
                    .transpose()?
                    .flatten()
                {
                    Some(h) => out.push_str(&format!(
                        "journal ({}): held by {} since {}{}\n",
                        state_dir(global).display(),
                        h.owner,
                        h.since,
                        h.deployment
                            .map(|d| format!(", deployment {d}"))
                            .unwrap_or_default()
                    )),
                    None => out.push_str(&format!(
                        "journal ({}): free\n",
                        state_dir(global).display()
                    )),
                }
            }
            runtime.block_on(async {
                for (host, executor) in executors(&config).await {
                    match executor {
                        Ok(e) => match e.lock_holder(&host, &service).await {
                            Ok(Some(holder)) => {
                                out.push_str(&format!("{host}: held by {}\n", holder.trim()))
                            }
                            Ok(None) => out.push_str(&format!("{host}: free\n")),
                            Err(err) => {
                                unreachable = true;
                                out.push_str(&format!("{host}: {err}\n"));
                            }
                        },
                        Err(err) => {
                            unreachable = true;
                            out.push_str(&format!("{host}: UNREACHABLE: {err}\n"));
                        }
                    }
                }
            });
        }
        LockCommand::Release => {
            let me = operator();
            if journal_busy {
                return Err(UsageError(format!(
                    "the journal in {} is in use by a running deploy: stop it (Ctrl-C) instead of breaking its lock",
                    state_dir(global).display()
                ))
                .into());
            }
            if let Some(journal) = &journal {
                let previous = journal.break_lock(&service)?;
                if let Some(id) = journal.unfinished(&service)? {
                    let fact = Fact::LockReleased {
                        by: me.clone(),
                        from: previous.as_ref().map(|p| p.owner.clone()),
                    };
                    odysseus_engine::runtime::record_fact(journal, &SystemClock, id, fact)?;
                    out.push_str(&format!(
                        "journal: lock released, recorded in deployment {id}\n"
                    ));
                } else {
                    out.push_str("journal: lock released\n");
                }
            }
            runtime.block_on(async {
                for (host, executor) in executors(&config).await {
                    match executor.map_err(|e| e.to_string()) {
                        Ok(e) => match e.break_lock(&host, &service).await {
                            Ok(()) => {
                                out.push_str(&format!("{host}: lock released\n"));
                                // The unfinished deployment's mark goes too: its journal
                                // is the one place left that knows it.
                                match e.mark(&host).await {
                                    Ok(Some(mark)) => match e.remove_mark(&host).await {
                                        Ok(()) => out.push_str(&format!(
                                            "{host}: the mark of unfinished deployment {} was cleared\n",
                                            mark.deployment
                                        )),
                                        Err(err) => out.push_str(&format!("{host}: {err}\n")),
                                    },
                                    Ok(None) => {}
                                    Err(err) => out.push_str(&format!("{host}: {err}\n")),
                                }
                            }
                            Err(err) => {
                                unreachable = true;
                                out.push_str(&format!("{host}: {err}\n"));
                            }
                        },
                        Err(err) => {
                            unreachable = true;
                            out.push_str(&format!("{host}: UNREACHABLE: {err}\n"));
                        }
                    }
                }
            });
        }
    }
    print_stdout(&out)?;
    Ok(if unreachable { Exit::Blocked } else { Exit::Ok })
}
