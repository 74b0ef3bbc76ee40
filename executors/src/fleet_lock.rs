//! The deploy lock on every host of a deployment (`host_lock` holds one), taken in a
//! fixed order, and the host-level fence each side effect asks first.

use std::sync::Arc;
use std::time::Duration;

use odysseus_engine::runtime::ExecError;

use crate::docker::{local_socket, Access, DockerExecutor};
use crate::host_lock::{
    break_command, probe_command, take_local, unsafe_dir, Claim, HeldLock, LockError, LockFiles,
};
use crate::ssh::exec as ssh_exec;
use crate::ssh::Connection;

const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What blocked the lock.
#[derive(Debug)]
pub enum LockFailure {
    Held { host: String, holder: String },
    Failed(ExecError),
}

/// The lock on `local` while this process holds it: shared by the fleet lock (which ends
/// it) and the executor (whose fence asks it).
pub type LocalHold = Arc<tokio::sync::Mutex<Option<HeldLock>>>;

/// Held until [`FleetLock::release`]; dropped without it, the remote locks end when the
/// connections close and the local one when this process exits.
pub struct FleetLock {
    local: Option<LocalHold>,
    remote: Vec<Arc<Connection>>,
}

impl FleetLock {
    /// Releases every lock now.
    pub async fn release(self) {
        if let Some(local) = &self.local {
            if let Some(held) = local.lock().await.take() {
                held.release().await;
            }
        }
        for conn in &self.remote {
            conn.release_lock().await;
        }
    }
}

impl DockerExecutor {
    /// Runs one of `host_lock`'s scripts on `host`; what it printed, once it exited 0.
    pub(crate) async fn lock_script(
        &self,
        host: &str,
        command: impl Fn(&str) -> String,
    ) -> Result<String, ExecError> {
        let out = self.lock_script_bytes(host, command).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// The same, its output as bytes (a journal's copies are read this way).
    pub(crate) async fn lock_script_bytes(
        &self,
        host: &str,
        command: impl Fn(&str) -> String,
    ) -> Result<Vec<u8>, ExecError> {
        let (status, out) = match &self.host(host)?.access {
            Access::Local => {
                let out = tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(command(&local_socket()?))
                    .stdin(std::process::Stdio::null())
                    .output()
                    .await
                    .map_err(|e| ExecError::Permanent(format!("running sh for the lock: {e}")))?;
                (out.status.code().map_or(255, |c| c as u32), out.stdout)
            }
            Access::Ssh { conn, .. } => {
                let session = conn.session().await?;
                ssh_exec(&session, &command(conn.docker_socket()), PROBE_TIMEOUT)
                    .await
                    // The command is the whole script: not worth a screen of output.
                    .map_err(|e| match e {
                        ExecError::OutcomeUnknown(m) if m.contains("timed out") => {
                            ExecError::Retryable(
                                "the lock script did not answer within 10 s".into(),
                            )
                        }
                        other => other,
                    })?
            }
        };
        // Only a script's first line can say the directory is unsafe (a copy's bytes
        // could hold anything).
        let first = out.split(|b| *b == b'\n').next().unwrap_or_default();
        if let Some(e) = unsafe_dir(&String::from_utf8_lossy(first)) {
            return Err(e);
        }
        if status != 0 {
            return Err(ExecError::Permanent(format!(
                "the lock script failed (exit {status}): cannot read or change {} (permissions?)",
                crate::host_lock::LOCK_DIR
            )));
        }
        Ok(out)
    }

    /// Who holds the service's lock on `host`, if anyone (without taking it).
    pub async fn lock_holder(
        &self,
        host: &str,
        service: &str,
    ) -> Result<Option<String>, ExecError> {
        let files = LockFiles::of(service);
        let out = self
            .lock_script(host, |socket| probe_command(socket, &files))
            .await?;
        Ok(out.trim().strip_prefix("held").map(|h| {
            let h = h.trim();
            if h.is_empty() {
                "another process".to_string()
            } else {
                h.to_string()
            }
        }))
    }

    /// Breaks the service's lock on `host`: the lock file is removed, so the next locker
    /// locks a new file. A holder that is still alive keeps running: this is for holders
    /// known to be gone (or to be stopped next).
    pub async fn break_lock(&self, host: &str, service: &str) -> Result<(), ExecError> {
        let files = LockFiles::of(service);
        self.lock_script(host, |socket| break_command(socket, &files))
            .await
            .map(|_| ())
    }

    /// The host-level fence, asked before every side effect on `host`: fails for good once
    /// the deploy lock there is not ours any more. Free when no lock was taken (tests, dry
    /// runs, one-off commands).
    pub async fn check_lock(&self, host: &str) -> Result<(), ExecError> {
        match &self.host(host)?.access {
            Access::Local => {
                let mut held = self.local_hold.lock().await;
                match held.as_mut() {
                    Some(lock) => lock.check().await.map_err(|e| match e {
                        // No reconnecting here: the loop is our own child.
                        LockError::Failed(e) => ExecError::Permanent(format!(
                            "the deploy lock on local ended under this deploy ({e}); nothing more is done there"
                        )),
                        lost => lost.into_exec("local", &self.spec().service),
                    }),
                    None => Ok(()),
                }
            }
            Access::Ssh { conn, .. } => conn.check_lock().await,
        }
    }

    /// Takes the service's lock on every host, in a fixed order, or names who holds it.
    /// While it is held, every side effect first checks it is still ours.
    pub async fn lock_fleet(&self, service: &str, holder: &str) -> Result<FleetLock, LockFailure> {
        let claim = Claim::new(service, holder);
        let mut lock = FleetLock {
            local: None,
            remote: Vec::new(),
        };
        let refused = |host: &str, e: LockError| match e {
            LockError::Held(holder) | LockError::Lost(holder) => LockFailure::Held {
                host: host.to_string(),
                holder,
            },
            LockError::Failed(e) => LockFailure::Failed(e.map_message(|m| format!("{host}: {m}"))),
        };
        for (host, handle) in self.hosts_sorted() {
            match &handle.access {
                Access::Local => {
                    let socket = local_socket().map_err(LockFailure::Failed)?;
                    let held = take_local(&socket, &claim)
                        .await
                        .map_err(|e| refused(host, e))?;
                    *self.local_hold.lock().await = Some(held);
                    lock.local = Some(self.local_hold.clone());
                }
                Access::Ssh { conn, .. } => match conn.take_lock(claim.clone()).await {
                    Ok(()) => lock.remote.push(conn.clone()),
                    Err(e) => return Err(refused(host, e)),
                },
            }
        }
        Ok(lock)
    }
}
