//! This state dir's journal and the hosts' copies of it, brought together: whatever a
//! host holds that the local journal lacks is imported (a fresh CI runner, a laptop that
//! did not run the last deploy); what the local journal holds that a host lacks is noted,
//! for the lock holder to send (`push_behind`). Copies that differ on a record are
//! reported with both versions, and nothing of that deployment is imported.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::join_all;
use odysseus_engine::journal::{self, copy::CopyError, reconcile, Disagreement, Journal, Source};
use odysseus_engine::machine::DeploymentState;
use odysseus_engine::runtime::Executor;
use odysseus_engine::DeploymentId;
use odysseus_executors::docker::DockerExecutor;
use odysseus_executors::host_journal::HostCopy;
use odysseus_executors::host_lock::JOURNAL_ROOT;
use odysseus_executors::steps::Steps;

/// What a look at the hosts' copies found.
#[derive(Debug, Default)]
pub struct Synced {
    /// Records imported into the local journal, by deployment.
    pub imported: BTreeMap<DeploymentId, u64>,
    /// Hosts that could not be read, and why.
    pub unreadable: BTreeMap<String, String>,
    /// Copies that differ from another copy: nothing of those deployments was imported.
    pub disagreements: Vec<(DeploymentId, Disagreement)>,
    /// Copies that cannot be read at all (changed by hand, a newer format).
    pub unusable: Vec<(String, DeploymentId, CopyError)>,
    /// (host, deployment, records it holds, records there are): copies a lock holder
    /// should bring up to date.
    pub behind: Vec<(String, DeploymentId, u64, u64)>,
    /// Copies that end in bytes of a write that never finished (cut at the next append).
    pub torn: Vec<(String, DeploymentId)>,
    /// Deployments whose import the local journal refused, why, and whether what stood
    /// in the way is an unfinished deployment no host holds.
    pub refused: Vec<(DeploymentId, String, bool)>,
    /// Hosts holding a readable copy of each deployment.
    pub held_elsewhere: BTreeMap<DeploymentId, Vec<String>>,
}

impl Synced {
    /// Whether something stops a deploy: copies that differ or cannot be read, or a
    /// deployment that could not be imported.
    pub fn conflicts(&self) -> bool {
        !self.disagreements.is_empty() || !self.unusable.is_empty() || !self.refused.is_empty()
    }

    /// The only conflicts are deployments the local journal would not take in (an
    /// unfinished deployment of its own is in the way).
    pub fn only_refused(&self) -> bool {
        self.disagreements.is_empty() && self.unusable.is_empty() && !self.refused.is_empty()
    }

    /// The conflicts, worded for a person, each with what to do.
    pub fn conflict_report(&self, service: &str) -> String {
        let dir = format!("{JOURNAL_ROOT}/journal/{service}");
        let mut out = Vec::new();
        for (id, d) in &self.disagreements {
            out.push(format!(
                "the copies of deployment {id}'s journal differ at record {}:\n  {}: {}\n  {}: {}\n\
                 Records are only ever appended, by the one deploy that holds the lock on every host, so one of these \
                 copies was changed by something else. Nothing was merged. Keep the copy you trust: remove the other \
                 ({}), and odysseus brings it back from the rest.",
                d.seq,
                d.first.0,
                describe(&d.first.1),
                d.second.0,
                describe(&d.second.1),
                remove_hint(&d.second.0, &dir, *id),
            ));
        }
        for (host, id, why) in &self.unusable {
            if let CopyError::Unreadable(_) = why {
                out.push(format!(
                    "{host}'s copy of deployment {id}'s journal ({dir}/{id}.journal) {why}, so what it holds is not known: \
                     nothing is decided without it. Make it a file the deploy user and the Docker engine's group can read \
                     and write (as root on {host}: chgrp --reference={dir} {dir}/{id}.journal && chmod 660 {dir}/{id}.journal)."
                ));
                continue;
            }
            let others = self
                .held_elsewhere
                .get(id)
                .is_some_and(|hosts| hosts.iter().any(|h| h != host));
            out.push(format!(
                "{host}'s copy of deployment {id}'s journal cannot be used: {why}. Nothing was merged; {}",
                if others {
                    format!(
                        "other hosts hold the deployment: remove this copy ({}) and odysseus brings it back from them.",
                        remove_hint(host, &dir, *id)
                    )
                } else {
                    "no other host holds a readable copy of it: keep the file for whoever investigates, and move it aside \
                     (the deployment is then unknown to odysseus; look at `odysseus status` before deploying)."
                        .to_string()
                }
            ));
        }
        for (id, why, local_only) in &self.refused {
            out.push(if *local_only {
                format!(
                    "deployment {id} from the hosts was not taken in: {why}. No host's journal holds that unfinished \
                     deployment (it never reached them, or their copies were removed), and {id} ran since. Look at what \
                     runs with `odysseus status`, end it here with `odysseus deploy --abandon REASON`, then run again."
                )
            } else {
                format!(
                    "deployment {id} from the hosts was not taken in: {why}. The hosts hold both; this state dir's \
                     record of the unfinished one is behind theirs. Look with `odysseus history --local` and \
                     `odysseus history` from an empty state dir (--state-dir), then finish or end the unfinished one \
                     (--resume, --abort or --abandon REASON)."
                )
            });
        }
        out.join("\n")
    }

    /// One line per note that is not a conflict (hosts that could not be read, torn
    /// tails, records brought in).
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (host, why) in &self.unreadable {
            out.push(format!(
                "warning: the journal's copy on {host} could not be read: {why}"
            ));
        }
        for (host, id) in &self.torn {
            out.push(format!(
                "note: {host}'s copy of deployment {id} ends in a write that never finished (never acknowledged); it is cut at the next append"
            ));
        }
        let total: u64 = self.imported.values().sum();
        if total > 0 {
            out.push(format!(
                "note: {total} record(s) of {} deployment(s) brought in from the hosts' journal",
                self.imported.len()
            ));
        }
        out
    }
}

fn remove_hint(source: &str, dir: &str, id: DeploymentId) -> String {
    if source == "local" {
        "this state dir's journal: move the state dir aside".to_string()
    } else {
        format!("on {source}: rm {dir}/{id}.journal")
    }
}

/// A record as a person can compare it: its time and kind, or why it does not decode.
fn describe(bytes: &[u8]) -> String {
    match journal::decode(bytes) {
        Ok(event) => format!("{} {}", event.at, event.fact.kind_name()),
        Err(e) => format!("(does not decode: {e})"),
    }
}

/// Reads every connected host's copies of `service`'s journal and brings the local
/// journal up to the longest consistent copy of each deployment.
pub async fn sync(
    journal: &Journal,
    executor: &DockerExecutor,
    service: &str,
) -> Result<Synced, journal::Error> {
    let mut synced = Synced::default();
    let hosts: Vec<String> = executor.hosts_sorted().map(|(h, _)| h.clone()).collect();
    let reads = join_all(hosts.iter().map(|h| executor.read_copies(h, service, None))).await;
    let mut by_deployment: BTreeMap<DeploymentId, Vec<Source>> = BTreeMap::new();
    let mut unusable_ids = BTreeSet::new();
    for (host, read) in hosts.iter().zip(reads) {
        match read {
            Err(e) => {
                synced.unreadable.insert(host.clone(), e.to_string());
            }
            Ok(copies) => {
                for c in copies {
                    match c {
                        HostCopy::Read(copy) => {
                            if copy.torn_tail {
                                synced.torn.push((host.clone(), copy.deployment));
                            }
                            synced
                                .held_elsewhere
                                .entry(copy.deployment)
                                .or_default()
                                .push(host.clone());
                            by_deployment
                                .entry(copy.deployment)
                                .or_default()
                                .push(Source {
                                    name: host.clone(),
                                    records: copy.records,
                                });
                        }
                        HostCopy::Unusable { deployment, why } => {
                            unusable_ids.insert(deployment);
                            synced.unusable.push((host.clone(), deployment, why));
                        }
                    }
                }
            }
        }
    }
    // The local journal's deployments of the service that some host lacks are behind
    // there too (a run that stopped before its first step reached them, or a host that
    // was down).
    for id in journal.deployments(service)? {
        by_deployment.entry(id).or_default();
    }
    // The oldest deployment each host keeps a copy of, and the newest of all.
    let mut oldest_held: BTreeMap<String, DeploymentId> = BTreeMap::new();
    for (id, sources) in &by_deployment {
        for s in sources {
            oldest_held.entry(s.name.clone()).or_insert(*id);
        }
    }
    let newest = by_deployment.keys().next_back().copied();
    for (id, mut sources) in by_deployment {
        if unusable_ids.contains(&id) {
            continue;
        }
        let local = journal.raw_from(id, 0)?;
        let local_len = local.len() as u64;
        sources.push(Source {
            name: "local".into(),
            records: local,
        });
        let log = match reconcile(&sources) {
            Ok(log) => log,
            Err(d) => {
                synced.disagreements.push((id, d));
                continue;
            }
        };
        for (seq, bytes) in log.iter().enumerate().skip(local_len as usize) {
            if let Err(e) = journal.import(id, seq as u64, bytes) {
                let local_only = match &e {
                    journal::Error::Unfinished { deployment, .. } => {
                        !synced.held_elsewhere.contains_key(deployment)
                    }
                    _ => false,
                };
                synced.refused.push((id, e.to_string(), local_only));
                break;
            }
            *synced.imported.entry(id).or_default() += 1;
        }
        let total = log.len() as u64;
        // Which hosts should hold it: the ones its plan names — and of what a host does
        // not hold at all, only what is newer than the oldest copy it keeps (older ones
        // it pruned; sending them back would only see them pruned again), or the newest
        // deployment for a host that holds none.
        let plan_hosts = plan_hosts_of(&log);
        for host in &hosts {
            if !plan_hosts.contains(host) || synced.unreadable.contains_key(host) {
                continue;
            }
            let have = sources
                .iter()
                .find(|s| &s.name == host)
                .map_or(0, |s| s.records.len() as u64);
            let kept = oldest_held.get(host).copied();
            let in_window = have > 0
                || kept.is_some_and(|oldest| id > oldest)
                || (kept.is_none() && Some(id) == newest);
            if have < total && in_window {
                synced.behind.push((host.clone(), id, have, total));
            }
        }
    }
    if !synced.imported.is_empty() {
        journal.flush()?;
    }
    Ok(synced)
}

fn plan_hosts_of(log: &[Vec<u8>]) -> Vec<String> {
    let events: Vec<_> = log.iter().filter_map(|b| journal::decode(b).ok()).collect();
    DeploymentState::fold(&events)
        .ok()
        .and_then(|s| {
            s.started()
                .map(|s| s.plan.hosts().into_iter().map(String::from).collect())
        })
        .unwrap_or_default()
}

/// Sends the hosts whose copies are behind the records they lack (the lock must be
/// held); returns the copies still behind, and why.
pub async fn push_behind(
    journal: &Journal,
    steps: &Steps<&DockerExecutor>,
    service: &str,
    synced: &Synced,
) -> Vec<(String, DeploymentId, String)> {
    let mut by_deployment: BTreeMap<DeploymentId, Vec<String>> = BTreeMap::new();
    for (host, id, _, _) in &synced.behind {
        by_deployment.entry(*id).or_default().push(host.clone());
    }
    let mut left = Vec::new();
    for (id, hosts) in by_deployment {
        let Ok(records) = journal.raw_from(id, 0) else {
            continue;
        };
        for (host, e) in steps.replicate(service, id, &records, &hosts, &hosts).await {
            left.push((host, id, e.to_string()));
        }
    }
    left
}

/// Connects to deploy.yml's hosts (those that answer) and brings the local journal up to
/// their copies; the caller decides what a conflict stops.
pub async fn from_hosts(
    journal: &Journal,
    config: &crate::config::Config,
) -> anyhow::Result<Synced> {
    Ok(connect_and_sync(journal, config).await?.0)
}

/// The same, keeping the connections for the deploy that follows (`None` when the hosts
/// could not be connected: the deploy says why when it connects itself).
pub async fn connect_and_sync(
    journal: &Journal,
    config: &crate::config::Config,
) -> anyhow::Result<(Synced, Option<DockerExecutor>)> {
    let executor = match DockerExecutor::connect_reachable(
        config.spec.clone(),
        &config.hosts(),
        &config.ssh,
        config.ssh_port,
    )
    .await
    {
        Ok(e) => e,
        Err(e) => {
            let mut synced = Synced::default();
            synced.unreadable.insert("the hosts".into(), e.to_string());
            return Ok((synced, None));
        }
    };
    let mut synced = sync(journal, &executor, &config.service).await?;
    for (host, why) in executor.down_hosts() {
        synced.unreadable.insert(host.clone(), why.clone());
    }
    Ok((synced, Some(executor)))
}
