//! An unfinished deployment is visible on each of its hosts: a mark naming the
//! deployment and who drives it, set (under the host's deploy lock) before anything
//! changes and cleared once the deployment is final. A deployer with another journal —
//! another machine, another state dir — finds the mark and is refused before it can
//! mistake a half-switched host's containers for old ones. The protocol is written once
//! here, over `HostOps`; the Docker hosts keep the mark as a labelled volume, the
//! simulated world in memory.

use odysseus_engine::runtime::ExecError;

use super::HostOps;

/// Who drives the unfinished deployment of a service on a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub deployment: String,
    /// The journal that drives it: machine and state dir.
    pub journal: String,
    /// The operator, machine and state dir, as the lock's holder line says them.
    pub owner: String,
    /// Set by a deployer that keeps the journal on the hosts: its deployment's first
    /// records reach the hosts before anything but this mark changes there, so a mark
    /// whose deployment no host's journal holds was left by a run that changed nothing.
    pub copies: bool,
}

/// Why `mark_hosts` refused.
#[derive(Debug)]
pub enum MarkRefusal {
    /// `host` carries another deployment's mark.
    Taken { host: String, mark: Mark },
    /// A host could not be read or written.
    Failed(ExecError),
}

/// Marks `hosts` with `mark`. A host marked by another deployment refuses — unless
/// `stale` says the mark is over (this journal's own, left by a run killed before it
/// cleared its marks: the journal has no such unfinished deployment), which is
/// replaced. On a refusal, the marks this call set are taken back when `take_back` (a
/// new deployment that will not start).
pub async fn mark_hosts<H: HostOps>(
    ops: &H,
    hosts: &[String],
    mark: &Mark,
    stale: &dyn Fn(&Mark) -> bool,
    take_back: bool,
) -> Result<(), MarkRefusal> {
    let mut set = Vec::new();
    for host in hosts {
        match mark_one(ops, host, mark, stale).await {
            Ok(true) => set.push(host.clone()),
            Ok(false) => {}
            Err(refusal) => {
                if take_back {
                    clear_marks(ops, &set, &mark.deployment).await;
                }
                return Err(refusal);
            }
        }
    }
    Ok(())
}

/// True when this call set the mark (false: it was there already).
async fn mark_one<H: HostOps>(
    ops: &H,
    host: &str,
    mark: &Mark,
    stale: &dyn Fn(&Mark) -> bool,
) -> Result<bool, MarkRefusal> {
    // Written only where none is (an existing mark stays as it is), then read back:
    // two round trips when the host is free or already ours.
    for _ in 0..2 {
        ops.create_mark(host, mark)
            .await
            .map_err(MarkRefusal::Failed)?;
        match ops.mark(host).await.map_err(MarkRefusal::Failed)? {
            Some(m) if m.deployment == mark.deployment => return Ok(true),
            Some(m) if stale(&m) => {
                ops.remove_mark(host).await.map_err(MarkRefusal::Failed)?;
            }
            Some(m) => {
                return Err(MarkRefusal::Taken {
                    host: host.to_string(),
                    mark: m,
                })
            }
            None => {}
        }
    }
    Err(MarkRefusal::Failed(ExecError::Retryable(format!(
        "{host}: the deployment mark could not be written"
    ))))
}

/// Clears `deployment`'s mark from `hosts` (a host that cannot be reached keeps it:
/// `odysseus lock release` clears it there). Returns the hosts that still carry it.
pub async fn clear_marks<H: HostOps>(ops: &H, hosts: &[String], deployment: &str) -> Vec<String> {
    let mut left = Vec::new();
    for host in hosts {
        let cleared = match ops.mark(host).await {
            Ok(Some(m)) if m.deployment == deployment => ops.remove_mark(host).await.is_ok(),
            Ok(_) => true,
            Err(_) => false,
        };
        if !cleared {
            left.push(host.clone());
        }
    }
    left
}
