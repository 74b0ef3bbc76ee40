//! The deploy lock held on the target hosts themselves, so two operators — from two
//! machines or two state dirs — cannot deploy one service at once, and a lock can never
//! go stale: on `local` it is a flock held by this process's open file; on a server it
//! is `flock` run by an SSH exec channel of this process's connection. When the process
//! dies, the kernel (or sshd, when the connection drops) releases it.

use std::io::Write;
use std::time::Duration;

use odysseus_engine::runtime::ExecError;
use russh::client::Msg;
use russh::{Channel, ChannelMsg};

use crate::docker::{Access, DockerExecutor};
use crate::ssh::exec as ssh_exec;

/// What blocked the lock.
#[derive(Debug)]
pub enum LockFailure {
    Held { host: String, holder: String },
    Failed(ExecError),
}

/// Held for as long as this value lives.
pub struct FleetLock {
    _local: Option<std::fs::File>,
    remote: Vec<Channel<Msg>>,
}

impl FleetLock {
    /// Releases the remote locks now (dropping also releases them, a little later).
    pub async fn release(self) {
        for channel in &self.remote {
            let _ = channel.eof().await;
            let _ = channel.close().await;
        }
    }
}

fn paths(service: &str) -> (String, String) {
    (
        format!("/run/lock/odysseus-{service}.lock"),
        format!("/run/lock/odysseus-{service}.holder"),
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
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
                    &format!("rm -f {lock_path} {holder_path}"),
                    Duration::from_secs(10),
                )
                .await
                .map(|_| ())
            }
        }
    }

    /// Takes the service's lock on every host, in a fixed order, or names who holds it.
    pub async fn lock_fleet(&self, service: &str, holder: &str) -> Result<FleetLock, LockFailure> {
        let (lock_path, holder_path) = paths(service);
        let mut lock = FleetLock {
            _local: None,
            remote: Vec::new(),
        };
        for (host, handle) in self.hosts_sorted() {
            match &handle.access {
                Access::Local => {
                    std::fs::create_dir_all("/run/lock").ok();
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
                                let _ = f.write_all(holder.as_bytes());
                            }
                            lock._local = Some(file);
                        }
                        Err(std::fs::TryLockError::WouldBlock) => {
                            let holder = std::fs::read_to_string(&holder_path)
                                .unwrap_or_else(|_| "another process".into());
                            return Err(LockFailure::Held {
                                host: host.clone(),
                                holder,
                            });
                        }
                        Err(std::fs::TryLockError::Error(e)) => {
                            return Err(LockFailure::Failed(ExecError::Permanent(format!(
                                "{lock_path}: {e}"
                            ))));
                        }
                    }
                }
                Access::Ssh { conn, .. } => {
                    let session = conn.session().await.map_err(LockFailure::Failed)?;
                    let mut channel = session.channel_open_session().await.map_err(|e| {
                        LockFailure::Failed(ExecError::Retryable(format!("{host}: {e}")))
                    })?;
                    // flock holds the lock while `cat` waits on this channel's input: it
                    // ends, and the lock with it, when this process or its connection dies.
                    let command = format!(
                        "mkdir -p /run/lock && exec flock -n -E 75 {lock_path} sh -c 'printf %s \"$0\" > {holder_path}; echo locked; exec cat >/dev/null' {}",
                        shell_quote(holder)
                    );
                    channel.exec(true, command).await.map_err(|e| {
                        LockFailure::Failed(ExecError::Retryable(format!("{host}: {e}")))
                    })?;
                    let verdict = tokio::time::timeout(Duration::from_secs(10), async {
                        while let Some(msg) = channel.wait().await {
                            match msg {
                                ChannelMsg::Data { data } if data.starts_with(b"locked") => {
                                    return Some(true)
                                }
                                ChannelMsg::ExitStatus { .. } => return Some(false),
                                _ => {}
                            }
                        }
                        Some(false)
                    })
                    .await
                    .ok()
                    .flatten();
                    match verdict {
                        Some(true) => lock.remote.push(channel),
                        Some(false) => {
                            let (_, out) = ssh_exec(
                                &session,
                                &format!("cat {holder_path}"),
                                Duration::from_secs(10),
                            )
                            .await
                            .unwrap_or((1, b"another process".to_vec()));
                            return Err(LockFailure::Held {
                                host: host.clone(),
                                holder: String::from_utf8_lossy(&out).into_owned(),
                            });
                        }
                        None => {
                            return Err(LockFailure::Failed(ExecError::Retryable(format!(
                                "{host}: taking the lock timed out"
                            ))))
                        }
                    }
                }
            }
        }
        Ok(lock)
    }
}
