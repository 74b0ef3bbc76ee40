//! Each host's copy of the service's journal (`/var/lib/odysseus/journal/<service>/`, one
//! file per deployment, format in `odysseus_engine::journal::copy`): appended to only
//! through the deploy lock's loop on that host, so only the lock holder writes, and
//! read back by any run, from any machine, with deploy.yml and SSH access.

use odysseus_engine::journal::copy::{self, Copy, CopyError};
use odysseus_engine::runtime::ExecError;
use odysseus_engine::DeploymentId;

use crate::docker::{Access, DockerExecutor};
use crate::host_lock::{
    prune_journal_command, read_journal_command, AppendError, LockError, LockFiles,
};

/// One file read from a host: its copy, or why it cannot be used.
#[derive(Debug)]
pub enum HostCopy {
    Read(Copy),
    Unusable {
        deployment: DeploymentId,
        why: CopyError,
    },
}

impl HostCopy {
    pub fn deployment(&self) -> DeploymentId {
        match self {
            HostCopy::Read(c) => c.deployment,
            HostCopy::Unusable { deployment, .. } => *deployment,
        }
    }
}

/// One entry of the read script's output: a copy's bytes, or why it could not be read.
#[derive(Debug, PartialEq, Eq)]
enum Frame<'a> {
    Copy(String, &'a [u8]),
    Unreadable(String, String),
}

/// Splits the read script's output (`@@ NAME SIZE`, then SIZE bytes; `@! NAME why`).
fn frames(out: &[u8]) -> Vec<Frame<'_>> {
    let mut frames = Vec::new();
    let mut rest = out;
    while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
        let head = String::from_utf8_lossy(&rest[..nl]).into_owned();
        if let Some(bad) = head.strip_prefix("@! ") {
            let (name, why) = bad.split_once(' ').unwrap_or((bad, "cannot be read"));
            frames.push(Frame::Unreadable(name.to_string(), why.to_string()));
            rest = &rest[nl + 1..];
            continue;
        }
        let mut words = head.split(' ');
        let (Some("@@"), Some(name), Some(size)) = (words.next(), words.next(), words.next())
        else {
            break;
        };
        let Ok(size) = size.parse::<usize>() else {
            break;
        };
        let body_start = nl + 1;
        let body_end = (body_start + size).min(rest.len());
        frames.push(Frame::Copy(name.to_string(), &rest[body_start..body_end]));
        rest = &rest[body_end..];
    }
    frames
}

impl DockerExecutor {
    /// The copies of the service's journal on `host` (of one deployment, or all).
    pub async fn read_copies(
        &self,
        host: &str,
        service: &str,
        only: Option<DeploymentId>,
    ) -> Result<Vec<HostCopy>, ExecError> {
        let files = LockFiles::of(service);
        let only = only.map(|id| id.to_string());
        let out = self
            .lock_script_bytes(host, |socket| {
                read_journal_command(socket, &files, only.as_deref())
            })
            .await?;
        let mut copies = Vec::new();
        let mut ends = std::collections::HashMap::new();
        for frame in frames(&out) {
            let (name, body) = match frame {
                Frame::Copy(name, body) => (name, body),
                Frame::Unreadable(name, why) => {
                    if let Some(id) = name
                        .strip_suffix(".journal")
                        .and_then(|id| id.parse::<DeploymentId>().ok())
                    {
                        copies.push(HostCopy::Unusable {
                            deployment: id,
                            why: CopyError::Unreadable(why),
                        });
                    }
                    continue;
                }
            };
            let Some(id) = name
                .strip_suffix(".journal")
                .and_then(|id| id.parse::<DeploymentId>().ok())
            else {
                continue;
            };
            copies.push(match copy::parse(service, id, body) {
                Ok(c) => {
                    ends.insert(id, (c.records.len() as u64, c.valid_bytes));
                    HostCopy::Read(c)
                }
                Err(why) => HostCopy::Unusable {
                    deployment: id,
                    why,
                },
            });
        }
        // What this read saw is where the copies end now (a whole listing: every copy).
        let mut known = self.host(host)?.journal_ends.lock().unwrap();
        if only.is_none() && service == self.spec().service {
            known.ends = ends;
            known.complete = true;
        } else {
            known.ends.extend(ends);
        }
        Ok(copies)
    }

    /// How many deployments' copies `host` holds, when every copy was read this run.
    pub fn copies_held(&self, host: &str) -> Option<usize> {
        let known = self.host(host).ok()?.journal_ends.lock().unwrap();
        known.complete.then_some(known.ends.len())
    }

    /// Removes the copies of all but the `keep` newest deployments on `host` (never those
    /// in `spare`); the ids removed.
    pub async fn prune_copies(
        &self,
        host: &str,
        service: &str,
        keep: usize,
        spare: &[DeploymentId],
    ) -> Result<Vec<String>, ExecError> {
        let files = LockFiles::of(service);
        let spare: Vec<String> = spare.iter().map(|id| id.to_string()).collect();
        let out = self
            .lock_script_bytes(host, |socket| {
                prune_journal_command(socket, &files, keep, &spare)
            })
            .await?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.strip_prefix("pruned ").map(String::from))
            .collect())
    }

    /// How many records `host`'s copy of `deployment` holds; remembers where it ends.
    pub(crate) async fn copy_len(
        &self,
        host: &str,
        service: &str,
        deployment: DeploymentId,
    ) -> Result<u64, ExecError> {
        {
            let known = self.host(host)?.journal_ends.lock().unwrap();
            if let Some((records, _)) = known.ends.get(&deployment) {
                return Ok(*records);
            }
            if known.complete {
                return Ok(0);
            }
        }
        let copies = self.read_copies(host, service, Some(deployment)).await?;
        let (records, bytes) = match copies.into_iter().next() {
            None => (0, 0),
            Some(HostCopy::Read(c)) => (c.records.len() as u64, c.valid_bytes),
            Some(HostCopy::Unusable { why, .. }) => {
                return Err(ExecError::Permanent(format!(
                    "its copy of deployment {deployment}'s journal cannot be used: {why}"
                )))
            }
        };
        self.host(host)?
            .journal_ends
            .lock()
            .unwrap()
            .ends
            .insert(deployment, (records, bytes));
        Ok(records)
    }

    /// Appends records `from..` to `host`'s copy through the held lock's loop.
    pub(crate) async fn append_copy(
        &self,
        host: &str,
        service: &str,
        deployment: DeploymentId,
        from: u64,
        records: &[Vec<u8>],
    ) -> Result<(), ExecError> {
        let handle = self.host(host)?;
        let known = handle
            .journal_ends
            .lock()
            .unwrap()
            .ends
            .get(&deployment)
            .copied();
        let (have, offset) = match known {
            Some(end) => end,
            None => {
                self.copy_len(host, service, deployment).await?;
                handle
                    .journal_ends
                    .lock()
                    .unwrap()
                    .ends
                    .get(&deployment)
                    .copied()
                    .unwrap_or((0, 0))
            }
        };
        if have != from {
            self.forget_copy(host, deployment);
            return Err(ExecError::Retryable(format!(
                "its copy holds {have} records where {from} were expected"
            )));
        }
        // A copy without a record (a first append cut short) is written again from its
        // start: the header comes with record 0, and the loop cuts what is there.
        let offset = if from == 0 { 0 } else { offset };
        let lines = copy::lines(service, deployment, from, records);
        let added: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();
        let id = deployment.to_string();
        let result = match &handle.access {
            Access::Local => {
                let mut hold = self.local_hold.lock().await;
                match hold.as_mut() {
                    Some(held) => held.append_journal(&id, offset, &lines).await,
                    None => Err(AppendError::Lock(LockError::Failed(ExecError::Permanent(
                        "the journal's copy on a host is written only under the deploy lock, and it is not held".into(),
                    )))),
                }
            }
            Access::Ssh { conn, .. } => conn.append_journal(&id, offset, &lines).await,
        };
        match result {
            Ok(()) => {
                handle
                    .journal_ends
                    .lock()
                    .unwrap()
                    .ends
                    .insert(deployment, (from + records.len() as u64, offset + added));
                Ok(())
            }
            Err(e) => {
                self.forget_copy(host, deployment);
                Err(match e {
                    AppendError::Gap(size) => ExecError::Retryable(format!(
                        "its copy is {size} bytes, shorter than this run read it (changed by hand?)"
                    )),
                    AppendError::Unwritable => ExecError::Retryable(format!(
                        "its copy in {} cannot be written (a full disk?)",
                        LockFiles::of(service).journal
                    )),
                    AppendError::Lock(LockError::Failed(e)) => e,
                    AppendError::Lock(lost) => lost.into_exec(host, service),
                })
            }
        }
    }
}

impl DockerExecutor {
    /// What this run knew of a copy is stale (an append failed or found another end):
    /// read it again next time.
    fn forget_copy(&self, host: &str, deployment: DeploymentId) {
        if let Ok(handle) = self.host(host) {
            let mut known = handle.journal_ends.lock().unwrap();
            known.ends.remove(&deployment);
            known.complete = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{frames, Frame};

    #[test]
    fn frames_split_copies_by_their_sizes_whatever_they_hold() {
        let out = b"@@ a.journal 5\nab\n@\n@! d.journal cannot be read by deploy\n@@ b.journal 0\n@@ c.journal 3\nxyz";
        let f = frames(out);
        assert_eq!(
            f,
            vec![
                Frame::Copy("a.journal".to_string(), &b"ab\n@\n"[..]),
                Frame::Unreadable(
                    "d.journal".to_string(),
                    "cannot be read by deploy".to_string()
                ),
                Frame::Copy("b.journal".to_string(), &b""[..]),
                Frame::Copy("c.journal".to_string(), &b"xyz"[..]),
            ]
        );
    }
}
