//! `deploy --abandon REASON`: shows what each host of the deployment runs, then records
//! the abandonment. Never touches a container; works with hosts down.

use odysseus_engine::journal::Journal;
use odysseus_engine::machine::DeploymentState;
use odysseus_engine::runtime::{Session, SystemClock};
use odysseus_engine::DeploymentId;
use odysseus_executors::docker::DockerExecutor;
use odysseus_executors::steps;

use super::plan_hosts;
use crate::config::Config;
use crate::exit::Exit;

/// `deploy --abandon REASON`: shows what each host of the deployment runs, then records
/// the abandonment. Never touches a container; works with hosts down.
pub(super) async fn abandon(
    config: &Config,
    journal: &Journal,
    session: &Session<'_>,
    id: DeploymentId,
    reason: String,
) -> anyhow::Result<Exit> {
    let state = DeploymentState::fold(&journal.load(id)?)?;
    let hosts = plan_hosts(&state);
    let mut out = format!(
        "Deployment {id} is {}; what each of its hosts runs now:\n",
        state.phase.as_str()
    );
    let mut reached = Vec::new();
    for host in &hosts {
        let executor = match DockerExecutor::connect(
            config.spec.clone(),
            std::slice::from_ref(host),
            &config.ssh,
            config.ssh_port,
        )
        .await
        {
            Ok(executor) => executor,
            Err(e) => {
                out.push_str(&format!("  {host}: UNREACHABLE ({e})\n"));
                continue;
            }
        };
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
        reached.push((host, executor));
    }
    eprint!("{out}");
    let state = session.abandon(journal, &SystemClock, id, reason)?;
    // Its hosts no longer carry it (a host down now keeps its mark: `lock release`).
    for (host, executor) in &reached {
        steps::clear_marks(executor, std::slice::from_ref(*host), &id.to_string()).await;
    }
    for host in hosts
        .iter()
        .filter(|h| !reached.iter().any(|(r, _)| r == h))
    {
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
