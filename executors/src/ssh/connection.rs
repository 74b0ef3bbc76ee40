//! One host's connection for a whole deploy: re-established when it drops, and when
//! the deploy lock is held through it, the lock is taken again before any other use.

use std::sync::Arc;

use odysseus_engine::runtime::ExecError;

use super::session::{connect, Session, SshSettings, SshTarget};
use crate::host_lock::{take_over_ssh, AppendError, Claim, HeldLock, LockError, Take};

/// One host's SSH connection for the whole deploy, re-established when it drops (the
/// runtime observes any step that was in doubt before redoing it). When the deploy lock is
/// held through it, a re-established connection takes the lock again before anything else
/// uses it, and refuses every later use if the lock is not ours any more.
pub struct Connection {
    pub target: SshTarget,
    settings: SshSettings,
    current: tokio::sync::Mutex<Option<Arc<Session>>>,
    /// Set while a dropped connection is being re-established.
    reconnecting: std::sync::atomic::AtomicBool,
    lock: tokio::sync::Mutex<LockState>,
}

enum LockState {
    None,
    Held {
        claim: Claim,
        held: Option<HeldLock>,
    },
    /// Every use fails with this: the lock was lost, so this process must not act here.
    Lost(ExecError),
}

impl Connection {
    pub async fn open(
        target: SshTarget,
        settings: SshSettings,
    ) -> Result<Arc<Connection>, ExecError> {
        let session = connect(&target, &settings).await?;
        Ok(Arc::new(Connection {
            target,
            settings,
            current: tokio::sync::Mutex::new(Some(session)),
            reconnecting: std::sync::atomic::AtomicBool::new(false),
            lock: tokio::sync::Mutex::new(LockState::None),
        }))
    }

    /// The live session, reconnecting if the last one closed (and, when the deploy lock
    /// is held through this connection, taking it again first).
    pub async fn session(&self) -> Result<Arc<Session>, ExecError> {
        let mut current = self.current.lock().await;
        if let Some(s) = current.as_ref() {
            if !s.is_closed() {
                return Ok(s.clone());
            }
        }
        *current = None;
        {
            let mut lock = self.lock.lock().await;
            match &mut *lock {
                LockState::Lost(e) => return Err(e.clone()),
                // The lock's channel died with the old session.
                LockState::Held { held, .. } => *held = None,
                LockState::None => {}
            }
        }
        tracing::info!(host = %self.target.host, "SSH connection dropped; connecting again");
        use std::sync::atomic::Ordering;
        self.reconnecting.store(true, Ordering::SeqCst);
        let fresh = connect(&self.target, &self.settings)
            .await
            .map_err(|e| match e {
                ExecError::Retryable(m) => ExecError::OutcomeUnknown(m),
                other => other,
            });
        self.reconnecting.store(false, Ordering::SeqCst);
        let fresh = fresh?;
        self.renew(&fresh).await?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// True when the last session is gone (closed, or never re-established): an error
    /// seen through the tunnels is then really "the host is unreachable".
    pub async fn is_down(&self) -> bool {
        if self.reconnecting.load(std::sync::atomic::Ordering::SeqCst) {
            return true;
        }
        match self.current.try_lock() {
            Ok(current) => current.as_ref().is_none_or(|s| s.is_closed()),
            // Another task is using (not re-establishing) it right now.
            Err(_) => false,
        }
    }

    /// The server's Docker engine socket (its group may deploy, and touch the lock).
    pub fn docker_socket(&self) -> &str {
        &self.settings.docker_socket
    }

    /// Takes the deploy lock on this host, or says who holds it.
    pub async fn take_lock(&self, claim: Claim) -> Result<(), LockError> {
        let session = self.session().await.map_err(LockError::Failed)?;
        let held =
            take_over_ssh(&session, &self.settings.docker_socket, &claim, Take::Fresh).await?;
        *self.lock.lock().await = LockState::Held {
            claim,
            held: Some(held),
        };
        Ok(())
    }

    /// Lets go of the deploy lock (a no-op when it is not held).
    pub async fn release_lock(&self) {
        let state = std::mem::replace(&mut *self.lock.lock().await, LockState::None);
        if let LockState::Held {
            held: Some(held), ..
        } = state
        {
            held.release().await;
        }
    }

    /// The host-level fence, asked before each side effect: is the lock still ours?
    /// Fine when no lock is held through this connection.
    pub async fn check_lock(&self) -> Result<(), ExecError> {
        let session = self.session().await?;
        let mut state = self.lock.lock().await;
        let (claim, held) = match &mut *state {
            LockState::None => return Ok(()),
            LockState::Lost(e) => return Err(e.clone()),
            LockState::Held { claim, held } => (claim.clone(), held),
        };
        if let Some(h) = held.as_mut() {
            match h.check().await {
                Ok(()) => return Ok(()),
                Err(LockError::Failed(_)) => {
                    // Close the old loop's channel first, so our own loop does not
                    // hold the lock against our renewal.
                    if let Some(old) = held.take() {
                        old.release().await;
                    }
                }
                Err(lost) => {
                    let e = lost.into_exec(&self.target.host, &claim.service);
                    *state = LockState::Lost(e.clone());
                    return Err(e);
                }
            }
        }
        drop(state);
        // The channel is gone but the session is not (or was just re-established): take
        // the lock again, only if nobody else had it meanwhile.
        self.renew(&session).await
    }

    /// Appends to this host's copy of a deployment's journal through the held lock's loop
    /// (see `host_lock::script::FENCE_LOOP`): durable there when `Ok`. A dropped channel is
    /// taken again (only if nobody else locked meanwhile) and the append tried once more.
    pub async fn append_journal(
        &self,
        deployment: &str,
        offset: u64,
        lines: &[String],
    ) -> Result<(), AppendError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let last = attempts >= 2;
            let session = self
                .session()
                .await
                .map_err(|e| AppendError::Lock(LockError::Failed(e)))?;
            let mut state = self.lock.lock().await;
            let (claim, held) = match &mut *state {
                LockState::None => {
                    return Err(AppendError::Lock(LockError::Failed(ExecError::Permanent(
                        "the journal's copy on a host is written only under the deploy lock, and it is not held".into(),
                    ))))
                }
                LockState::Lost(e) => return Err(AppendError::Lock(LockError::Failed(e.clone()))),
                LockState::Held { claim, held } => (claim.clone(), held),
            };
            match held.as_mut() {
                Some(h) => match h.append_journal(deployment, offset, lines).await {
                    Err(AppendError::Lock(LockError::Failed(e))) => {
                        if let Some(old) = held.take() {
                            old.release().await;
                        }
                        if last {
                            return Err(AppendError::Lock(LockError::Failed(e)));
                        }
                    }
                    Err(AppendError::Lock(lost)) => {
                        let e = lost.into_exec(&self.target.host, &claim.service);
                        *state = LockState::Lost(e.clone());
                        return Err(AppendError::Lock(LockError::Failed(e)));
                    }
                    other => return other,
                },
                None if last => {
                    return Err(AppendError::Lock(LockError::Failed(ExecError::Retryable(
                        format!(
                            "the deploy lock's channel to {} closed again after it was taken again",
                            self.target.host
                        ),
                    ))))
                }
                None => {}
            }
            drop(state);
            // The channel is gone: take the lock again (only if nobody else had it
            // meanwhile) and try once more.
            self.renew(&session)
                .await
                .map_err(|e| AppendError::Lock(LockError::Failed(e)))?;
        }
    }

    async fn renew(&self, session: &Session) -> Result<(), ExecError> {
        let mut state = self.lock.lock().await;
        let claim = match &*state {
            // Another task renewed it meanwhile.
            LockState::Held { held: Some(_), .. } | LockState::None => return Ok(()),
            LockState::Held { claim, .. } => claim.clone(),
            LockState::Lost(e) => return Err(e.clone()),
        };
        match take_over_ssh(session, &self.settings.docker_socket, &claim, Take::Renew).await {
            Ok(held) => {
                tracing::info!(host = %self.target.host, "deploy lock taken again after reconnecting");
                *state = LockState::Held {
                    claim,
                    held: Some(held),
                };
                Ok(())
            }
            Err(LockError::Failed(e)) => Err(e),
            Err(lost) => {
                let e = lost.into_exec(&self.target.host, &claim.service);
                *state = LockState::Lost(e.clone());
                Err(e)
            }
        }
    }
}
