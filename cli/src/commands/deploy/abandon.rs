//! `deploy --abandon REASON`: shows what each host of the deployment runs, then records
//! the abandonment — under the deploy lock of every host that answers, and into their
//! copies of the journal, like any other record. Never touches a container; works with
//! hosts down.

use odysseus_engine::journal::Journal;
use odysseus_engine::machine::DeploymentState;
use odysseus_engine::runtime::{Clock, Executor, Session, SystemClock};
use odysseus_engine::DeploymentId;
use odysseus_executors::docker::DockerExecutor;
use odysseus_executors::fleet_lock::LockFailure;
use odysseus_executors::steps::{self, Steps};

use super::plan_hosts;
use crate::config::Config;
use crate::exit::Exit;
use crate::state::state_dir;
use crate::GlobalArgs;

pub(super) async fn abandon(
    global: &GlobalArgs,
    config: &Config,
    journal: &Journal,
    session: &Session<'_>,
    id: DeploymentId,
    reason: String,
) -> anyhow::Result<Exit> {
    let state = DeploymentState::fold(&journal.load(id)?)?;
    let hosts = plan_hosts(&state);
    let executor = match DockerExecutor::connect_reachable(
        config.spec.clone(),
        &hosts,
        &config.ssh,
        config.ssh_port,
    )
    .await
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("odysseus: {e}\nNothing was changed.");
            return Ok(Exit::Blocked);
        }
    };
    // The lock first: a deploy that is still running (another runner) is not abandoned
    // under it.
    let dir = state_dir(global);
    let holder = format!(
        "{}, since {}, state dir {}",
        session.operator(),
        SystemClock.now(),
        std::fs::canonicalize(&dir).unwrap_or(dir).display()
    );
    let fleet_lock = match executor.lock_fleet(&config.service, &holder).await {
        Ok(lock) => lock,
        Err(LockFailure::Held { host, holder }) => {
            eprintln!(
                "odysseus: {} is being deployed on {host} by {}; try again when it is done.\nNothing was changed.",
                config.service,
                holder.trim()
            );
            return Ok(Exit::Blocked);
        }
        Err(LockFailure::Failed(e)) => {
            eprintln!("odysseus: could not take the deploy lock: {e}\nNothing was changed.");
            return Ok(Exit::Blocked);
        }
    };
    // Under the lock, the hosts' journal again: the deployment may have moved on since
    // this run read it.
    let synced = crate::journal_sync::sync(journal, &executor, &config.service).await?;
    if synced.conflicts() && !synced.only_refused() {
        eprintln!(
            "odysseus: {}\nNothing was changed.",
            synced.conflict_report(&config.service)
        );
        fleet_lock.release().await;
        return Ok(Exit::Blocked);
    }
    if synced.imported.contains_key(&id) {
        eprintln!(
            "odysseus: deployment {id} moved on while this run was starting (another run drove it); the journal is now up to date: look with `odysseus history`, then run the command again.\nNothing was changed."
        );
        fleet_lock.release().await;
        return Ok(Exit::Blocked);
    }
    let mut out = format!(
        "Deployment {id} is {}; what each of its hosts runs now:\n",
        state.phase.as_str()
    );
    for host in &hosts {
        if let Some(why) = executor.down_hosts().get(host) {
            out.push_str(&format!("  {host}: UNREACHABLE ({why})\n"));
            continue;
        }
        match executor.host_status(host).await {
            Ok(status) => {
                let running: Vec<String> = status
                    .containers
                    .iter()
                    .filter(|c| c.running)
                    .map(|c| format!("{} ({})", c.name, c.version))
                    .collect();
                out.push_str(&format!(
                    "  {host}: {}\n",
                    if running.is_empty() {
                        "nothing of the service runs".to_string()
                    } else {
                        running.join(", ")
                    }
                ));
            }
            Err(e) => out.push_str(&format!("  {host}: could not look ({e})\n")),
        }
    }
    eprint!("{out}");
    let state = session.abandon(journal, &SystemClock, id, reason)?;
    // The end reaches the hosts' journal like every record; a host down now gets it from
    // the next run.
    let reached: Vec<String> = executor.hosts_sorted().map(|(h, _)| h.clone()).collect();
    let records = journal.raw_from(id, 0)?;
    let steps = Steps::new(&executor);
    for (host, why) in steps
        .replicate(&config.service, id, &records, &reached, &reached)
        .await
    {
        eprintln!("warning: {host}'s copy of the journal does not have the abandonment yet ({why}); the next deploy sends it");
    }
    // Its hosts no longer carry it (a host down now keeps its mark: `lock release`).
    steps::clear_marks(&executor, &reached, &id.to_string()).await;
    fleet_lock.release().await;
    for host in executor.down_hosts().keys() {
        eprintln!(
            "[{host}] still carries the deployment's mark (it could not be reached); once it is back, `odysseus lock release -c {}` clears it",
            config.path.display()
        );
    }
    eprintln!(
        "Deployment {id} is {}: no container was touched. `odysseus replay {id}` shows its journal.",
        state.phase.as_str()
    );
    Ok(Exit::Ok)
}
