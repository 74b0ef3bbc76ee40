//! The hosts' marks around one run: set before anything changes, taken back when the
//! run stops before its deployment is journaled.

use odysseus_engine::journal::Journal;
use odysseus_engine::DeploymentId;
use odysseus_executors::docker::DockerExecutor;
use odysseus_executors::steps::{self, Mark, MarkRefusal};

use super::Mode;
use crate::config::Config;
use crate::exit::Exit;
use crate::GlobalArgs;

/// Marks every reachable host as taken by deployment `id`, or refuses (before anything
/// changed) when a host carries another journal's unfinished deployment.
// Each argument is a different part of the run (config, journal, hosts, who, what):
// a struct bundling them would only rename them.
#[allow(clippy::too_many_arguments)]
pub(super) async fn mark_hosts(
    global: &GlobalArgs,
    config: &Config,
    journal: &Journal,
    executor: &DockerExecutor,
    id: DeploymentId,
    holder: &str,
    mode: &Mode,
    every_copy_read: bool,
) -> Result<(), Exit> {
    let hosts: Vec<String> = executor.hosts_sorted().map(|(h, _)| h.clone()).collect();
    let me = match crate::state::journal_id(global) {
        Ok(me) => me,
        Err(e) => {
            eprintln!("odysseus: {e:#}\nNothing was changed.");
            return Err(Exit::Blocked);
        }
    };
    let mark = Mark {
        deployment: id.to_string(),
        journal: me.clone(),
        owner: holder.to_string(),
        copies: true,
    };
    // A mark of this journal that is not its unfinished deployment was left by a run
    // killed before it cleared it (or before its start was journaled), and the mark of
    // the halted deployment this one supersedes is over too: both are replaced.
    let unfinished = journal.unfinished(&config.service).ok().flatten();
    let superseded = match mode {
        Mode::Start { supersedes, .. } => supersedes.map(|d| d.to_string()),
        _ => None,
    };
    // A mark of a deployer that keeps the journal on the hosts, whose deployment no
    // host's journal holds (every host read, under the lock): that run stopped before
    // its first record reached the hosts, so it changed nothing but the mark.
    let orphan = |other: &Mark| {
        every_copy_read
            && other.copies
            && other
                .deployment
                .parse::<DeploymentId>()
                .is_ok_and(|d| journal.load(d).is_err())
    };
    let stale = |other: &Mark| {
        (other.journal == me
            && (unfinished.map(|u| u.to_string()) != Some(other.deployment.clone())
                || superseded.as_ref() == Some(&other.deployment)))
            || orphan(other)
    };
    let new = matches!(mode, Mode::Start { .. });
    match steps::mark_hosts(executor, &hosts, &mark, &stale, new).await {
        Ok(()) => Ok(()),
        Err(MarkRefusal::Failed(e)) => {
            eprintln!("odysseus: {e}\nNothing was changed.");
            Err(Exit::Blocked)
        }
        Err(MarkRefusal::Taken { host, mark }) => {
            eprintln!(
                "odysseus: {host} is in the middle of deployment {} of {}, driven by {} — a journal this run does not have.\n\
                 Nothing was changed. Finish it from there (odysseus deploy --resume, --abort or --abandon REASON);\n\
                 if that journal is lost for good: {} clears the mark, then look at `odysseus status` before deploying.",
                mark.deployment,
                config.service,
                mark.owner.trim(),
                lock_release_command(global)
            );
            Err(Exit::Blocked)
        }
    }
}

/// A run that marked the hosts but stopped before its deployment was journaled takes
/// its marks back: nothing anyone could finish is left behind.
pub(super) async fn unmark_unstarted(
    journal: &Journal,
    executor: &DockerExecutor,
    id: DeploymentId,
) {
    if journal.load(id).is_ok_and(|events| !events.is_empty()) {
        return;
    }
    let hosts: Vec<String> = executor.hosts_sorted().map(|(h, _)| h.clone()).collect();
    steps::clear_marks(executor, &hosts, &id.to_string()).await;
}

pub(super) fn lock_release_command(global: &GlobalArgs) -> String {
    format!("odysseus lock release -c {}", global.config.display())
}
