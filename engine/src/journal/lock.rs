//! The deploy lock of a service in this journal: one process drives a deployment at a
//! time. The record names its owner and carries a fencing token that is written to the
//! event log and checked before every side effect, so a process that lost the lock
//! cannot keep acting.

use serde::{Deserialize, Serialize};

use crate::ids::{DeploymentId, Operator, Timestamp};

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LockRecord {
    pub owner: Operator,
    /// The owner process's start time (clock ticks since boot, from /proc), so a
    /// recycled pid is not mistaken for the owner.
    pub process_start: u64,
    pub since: Timestamp,
    pub token: u64,
    pub deployment: Option<DeploymentId>,
}

/// How a lock was obtained.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Acquired {
    Fresh {
        token: u64,
    },
    /// The previous holder's process is gone: the lock was taken over. The caller
    /// records a `LockTakenOver` event.
    TakenOver {
        token: u64,
        previous: LockRecord,
    },
}

impl Acquired {
    pub fn token(&self) -> u64 {
        match self {
            Acquired::Fresh { token } | Acquired::TakenOver { token, .. } => *token,
        }
    }
}

const LOCK_FORMAT_V1: u8 = 1;

/// Frozen wire form of a lock record (format 1).
#[derive(Serialize, Deserialize)]
struct LockV1 {
    user: String,
    hostname: String,
    pid: u32,
    process_start: u64,
    since_millis: u64,
    token: u64,
    deployment: Option<(u64, u32)>,
}

pub(super) fn encode_lock(lock: &LockRecord) -> Vec<u8> {
    let wire = LockV1 {
        user: lock.owner.user.clone(),
        hostname: lock.owner.hostname.clone(),
        pid: lock.owner.pid,
        process_start: lock.process_start,
        since_millis: lock.since.0,
        token: lock.token,
        deployment: lock.deployment.map(|d| (d.millis, d.nonce)),
    };
    let mut out = vec![LOCK_FORMAT_V1];
    out.extend(
        bincode::serde::encode_to_vec(&wire, bincode::config::standard())
            .expect("encoding to a Vec"),
    );
    out
}

pub(super) fn decode_lock(bytes: &[u8]) -> Result<LockRecord, String> {
    match bytes.split_first() {
        Some((&LOCK_FORMAT_V1, payload)) => {
            let (w, _): (LockV1, usize) =
                bincode::serde::decode_from_slice(payload, bincode::config::standard())
                    .map_err(|e| e.to_string())?;
            Ok(LockRecord {
                owner: Operator {
                    user: w.user,
                    hostname: w.hostname,
                    pid: w.pid,
                },
                process_start: w.process_start,
                since: Timestamp(w.since_millis),
                token: w.token,
                deployment: w
                    .deployment
                    .map(|(millis, nonce)| DeploymentId { millis, nonce }),
            })
        }
        Some((version, _)) => Err(format!("unknown lock format {version}")),
        None => Err("empty lock record".to_string()),
    }
}

/// This machine's hostname, as the kernel reports it.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

/// The start time of a process in clock ticks since boot (field 22 of /proc/PID/stat).
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether a lock's owner process still runs. An owner on another machine cannot be
/// checked from here and counts as alive.
pub fn process_alive(lock: &LockRecord) -> bool {
    if lock.owner.hostname != local_hostname() {
        return true;
    }
    process_start_ticks(lock.owner.pid) == Some(lock.process_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_recycled_pid_is_not() {
        let me = std::process::id();
        let start = process_start_ticks(me).expect("own /proc entry");
        let mut lock = LockRecord {
            owner: Operator {
                user: "u".into(),
                hostname: local_hostname(),
                pid: me,
            },
            process_start: start,
            since: Timestamp(1),
            token: 7,
            deployment: None,
        };
        assert!(process_alive(&lock));
        assert_eq!(decode_lock(&encode_lock(&lock)), Ok(lock.clone()));
        lock.process_start += 1;
        assert!(!process_alive(&lock));
    }
}
