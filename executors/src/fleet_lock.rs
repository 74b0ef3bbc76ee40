//! The deploy lock held on the target hosts themselves, so two operators — from two
//! machines or two state dirs — cannot deploy one service at once, and a lock can never
//! go stale: on `local` it is a flock held by this process's open file; on a server it
//! is `flock` run by an SSH exec channel of this process's connection. When the process
//! dies, the kernel (or sshd, when the connection drops) releases it.

use std::io::Write;
use std::time::Duration;

use odysseus_engine::runtime::ExecError;
use std::sync::Arc;

use crate::docker::{Access, DockerExecutor};
use crate::ssh::exec as ssh_exec;
use crate::ssh::remote_lock::{holder_path, lock_path, Claim, LockError, LOCK_DIR};
use crate::ssh::Connection;

/// What blocked the lock.
#[derive(Debug)]
pub enum LockFailure {
    Held { host: String, holder: String },
    Failed(ExecError),
}

/// Held for as long as this value lives (remote locks until [`FleetLock::release`] or
/// until the connections close).
pub struct FleetLock {
    local: Option<LocalLock>,
    remote: Vec<Arc<Connection>>,
}

/// The lock on `local`: our open, flocked file (the lock lasts as long as it is open).
pub struct LocalLock {
    _file: std::fs::File,
}

/// The line we wrote as the local lock's holder, kept by the executor to check it.
pub struct LocalFence {
    holder_path: String,
    holder: String,
}

impl LocalFence {
    /// Still ours while the holder file names us (`odysseus lock release` removes it).
    fn check(&self, service: &str) -> Result<(), ExecError> {
        let now = std::fs::read_to_string(&self.holder_path).unwrap_or_default();
        if now.trim() == self.holder {
            return Ok(());
        }
        Err(LockError::Lost(now.trim().to_string()).into_exec("local", service))
    }
}

impl FleetLock {
    /// Releases the remote locks now (dropping also releases them, a little later).
    pub async fn release(self) {
        for conn in &self.remote {
            conn.release_lock().await;
        }
    }
}

fn paths(service: &str) -> (String, String) {
    (lock_path(service), holder_path(service))
}

impl DockerExecutor {
    /// Who holds the service's lock on `host`, if anyone (without taking it).
    pub async fn lock_holder(
        &self,
        host: &str,
        service: &str,
    ) -> Result<Option<String>, ExecError> {
        let (lock_path, holder_path) = paths(service);
        let handle = self.host(host)?;
        match &handle.access {
            Access::Local => {
                let Ok(file) = std::fs::OpenOptions::new().write(true).open(&lock_path) else {
                    return Ok(None);
                };
                match file.try_lock() {
                    Ok(()) => Ok(None),
                    Err(_) => Ok(Some(
                        std::fs::read_to_string(&holder_path)
                            .unwrap_or_else(|_| "another process".into()),
                    )),
                }
            }
            Access::Ssh { conn, .. } => {
                let session = conn.session().await?;
                let probe =
                    format!("[ -e {lock_path} ] && flock -n -E 75 {lock_path} true; echo $?");
                let (_, out) = ssh_exec(&session, &probe, Duration::from_secs(10)).await?;
                if String::from_utf8_lossy(&out).trim() != "75" {
                    return Ok(None);
                }
                let (_, holder) = ssh_exec(
                    &session,
                    &format!("cat {holder_path}"),
                    Duration::from_secs(10),
                )
                .await?;
                Ok(Some(String::from_utf8_lossy(&holder).into_owned()))
            }
        }
    }

    /// Breaks the service's lock on `host`: the lock file is removed, so the next locker
    /// locks a new file. A holder that is still alive keeps running: this is for holders
    /// known to be gone (or to be stopped next).
    pub async fn break_lock(&self, host: &str, service: &str) -> Result<(), ExecError> {
        let (lock_path, holder_path) = paths(service);
        match &self.host(host)?.access {
            Access::Local => {
                let _ = std::fs::remove_file(&lock_path);
                let _ = std::fs::remove_file(&holder_path);
                Ok(())
            }
            Access::Ssh { conn, .. } => {
                let session = conn.session().await?;
                ssh_exec(
                    &session,
                    &format!(
                        "rm -f {lock_path} {holder_path} {}",
                        crate::ssh::remote_lock::pid_path(service)
                    ),
                    Duration::from_secs(10),
                )
                .await
                .map(|_| ())
            }
        }
    }

    /// The host-level fence, asked before every side effect on `host`: fails for good once
    /// the deploy lock there is not ours any more. Free when no lock was taken (tests, dry
    /// runs, one-off commands).
    pub async fn check_lock(&self, host: &str) -> Result<(), ExecError> {
        match &self.host(host)?.access {
            Access::Local => match &*self.local_fence.lock().unwrap() {
                Some(lock) => lock.check(&self.spec().service),
                None => Ok(()),
            },
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
        for (host, handle) in self.hosts_sorted() {
            match &handle.access {
                Access::Local => {
                    let (lock_path, holder_path) = paths(service);
                    if std::fs::create_dir_all(LOCK_DIR).is_ok() {
                        // Any local deploy user may lock (see remote_lock::LOCK_DIR).
                        use std::os::unix::fs::PermissionsExt;
                        let _ = std::fs::set_permissions(
                            LOCK_DIR,
                            std::fs::Permissions::from_mode(0o777),
                        );
                    }
                    let file = std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(&lock_path)
                        .map_err(|e| {
                            LockFailure::Failed(ExecError::Permanent(format!("{lock_path}: {e}")))
                        })?;
                    match file.try_lock() {
                        Ok(()) => {
                            if let Ok(mut f) = std::fs::File::create(&holder_path) {
                                let _ = writeln!(f, "{}", claim.holder);
                            }
                            // The executor keeps the fence, never the file: the lock must
                            // end with the FleetLock.
                            *self.local_fence.lock().unwrap() = Some(LocalFence {
                                holder_path,
                                holder: claim.holder.clone(),
                            });
                            lock.local = Some(LocalLock { _file: file });
                        }
                        Err(std::fs::TryLockError::WouldBlock) => {
                            let holder = std::fs::read_to_string(&holder_path)
                                .unwrap_or_else(|_| "another process".into());
                            return Err(LockFailure::Held {
                                host: host.clone(),
                                holder: holder.trim().to_string(),
                            });
                        }
                        Err(std::fs::TryLockError::Error(e)) => {
                            return Err(LockFailure::Failed(ExecError::Permanent(format!(
                                "{lock_path}: {e}"
                            ))));
                        }
                    }
                }
                Access::Ssh { conn, .. } => match conn.take_lock(claim.clone()).await {
                    Ok(()) => lock.remote.push(conn.clone()),
                    Err(LockError::Held(holder)) | Err(LockError::Lost(holder)) => {
                        return Err(LockFailure::Held {
                            host: host.clone(),
                            holder,
                        })
                    }
                    Err(LockError::Failed(e)) => return Err(LockFailure::Failed(e)),
                },
            }
        }
        Ok(lock)
    }
}
