//! The hosts' copies of a deployment's journal, brought up to date before each side
//! effect: written once over `HostOps`, so the simulator's hosts keep copies by the same
//! rules as real ones.
//!
//! A host an effect is about to change must hold every record so far, or the effect does
//! not run: so whatever a host's containers or routes went through is in that host's copy
//! (and a run from anywhere that reads every host finds it). The deployment's other hosts
//! are sent the records too, but not waited for long: a host that is down must not stop
//! the rollout elsewhere (its steps fail on their own), and it is brought up to date by
//! the first append after it comes back — each append starts where that host's copy ends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::join_all;
use odysseus_engine::runtime::ExecError;
use odysseus_engine::DeploymentId;
use tokio::time::Instant;

use super::HostOps;

/// How long a host that an effect changes may take to make the records durable.
const CHANGING_WAIT: Duration = Duration::from_secs(30);
/// How long the other hosts get; after a failure such a host is left alone a while, so a
/// dead host does not slow every step of the rollout.
const OTHERS_WAIT: Duration = Duration::from_secs(3);
const OTHERS_PAUSE: Duration = Duration::from_secs(20);

/// What this run knows of the hosts' copies.
#[derive(Default)]
pub struct Known {
    /// Records of a deployment that a host's copy holds, as last written or read.
    lengths: Mutex<HashMap<(String, DeploymentId), u64>>,
    /// Hosts not tried as bystanders until then.
    paused: Mutex<HashMap<String, Instant>>,
}

pub async fn replicate<H: HostOps>(
    ops: &H,
    known: &Known,
    service: &str,
    deployment: DeploymentId,
    records: &[Vec<u8>],
    hosts: &[String],
    changing: &[String],
) -> Vec<(String, ExecError)> {
    let tries = hosts.iter().map(|host| async move {
        let must = changing.contains(host);
        if !must {
            let paused = known.paused.lock().unwrap().get(host).copied();
            if paused.is_some_and(|until| Instant::now() < until) {
                return Some((
                    host.clone(),
                    ExecError::Retryable("left alone after it did not answer".into()),
                ));
            }
        }
        let wait = if must { CHANGING_WAIT } else { OTHERS_WAIT };
        let result = tokio::time::timeout(
            wait,
            bring_up(ops, known, service, deployment, records, host),
        )
        .await
        .unwrap_or_else(|_| {
            Err(ExecError::OutcomeUnknown(format!(
                "no answer within {} s",
                wait.as_secs()
            )))
        });
        match result {
            Ok(()) => {
                known.paused.lock().unwrap().remove(host);
                None
            }
            Err(e) => {
                // What was written is not known now: read the copy again next time.
                known
                    .lengths
                    .lock()
                    .unwrap()
                    .remove(&(host.clone(), deployment));
                if !must {
                    known
                        .paused
                        .lock()
                        .unwrap()
                        .insert(host.clone(), Instant::now() + OTHERS_PAUSE);
                }
                tracing::warn!(host = %host, error = %e, "the journal's copy on this host is behind");
                Some((host.clone(), e))
            }
        }
    });
    join_all(tries).await.into_iter().flatten().collect()
}

async fn bring_up<H: HostOps>(
    ops: &H,
    known: &Known,
    service: &str,
    deployment: DeploymentId,
    records: &[Vec<u8>],
    host: &str,
) -> Result<(), ExecError> {
    let key = (host.to_string(), deployment);
    let cached = known.lengths.lock().unwrap().get(&key).copied();
    let have = match cached {
        Some(n) => n,
        None => ops.journal_len(host, service, deployment).await?,
    };
    let total = records.len() as u64;
    if have > total {
        return Err(ExecError::Permanent(format!(
            "its copy of deployment {deployment} holds {have} records, more than this run's {total}: \
             another run wrote it; run odysseus again to read it from the hosts"
        )));
    }
    if have < total {
        ops.journal_append(host, service, deployment, have, &records[have as usize..])
            .await?;
    }
    known.lengths.lock().unwrap().insert(key, total);
    Ok(())
}
