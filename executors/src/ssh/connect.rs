//! Connecting and authenticating, with strict host key checking.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use odysseus_engine::runtime::ExecError;
use russh::client::{self, Handle};
use russh::keys::{
    check_known_hosts_path, load_secret_key, HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate,
};
use russh::ChannelMsg;

use super::remote_lock::{take, Claim, HeldLock, LockError, Take};

/// Where and as whom to connect.
#[derive(Clone, Debug)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug)]
pub struct SshSettings {
    pub user: String,
    pub keys: Vec<PathBuf>,
    pub known_hosts: PathBuf,
    pub connect_timeout: Duration,
    /// Where the server's Docker engine listens (forwarded with direct-streamlocal).
    pub docker_socket: String,
    /// Record an unknown host's key instead of refusing it (an explicit opt-in, for
    /// `odysseus trust`). A changed key is refused regardless.
    pub trust_unknown: bool,
}

/// Verifies the server's key against known_hosts; the verdict is kept so the error can
/// say exactly what to fix.
pub struct Verifier {
    target: SshTarget,
    known_hosts: PathBuf,
    trust_unknown: bool,
    problem: Arc<Mutex<Option<String>>>,
    learned: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            *self.problem.lock().unwrap() = Some(
                "the server offered a certificate; odysseus checks plain host keys only".into(),
            );
            return Ok(false);
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256);
        let file = self.known_hosts.display();
        let entry = if self.target.port == 22 {
            self.target.host.clone()
        } else {
            format!("[{}]:{}", self.target.host, self.target.port)
        };
        let verdict = match check_known_hosts_path(&self.target.host, self.target.port, key, &self.known_hosts) {
            Ok(true) => return Ok(true),
            Ok(false) if self.trust_unknown => {
                match russh::keys::known_hosts::learn_known_hosts_path(&self.target.host, self.target.port, key, &self.known_hosts) {
                    Ok(()) => {
                        *self.learned.lock().unwrap() = Some(fingerprint.to_string());
                        return Ok(true);
                    }
                    Err(e) => format!("cannot record the host key of {entry} in {file}: {e}"),
                }
            }
            Ok(false) => format!(
                "host key of {entry} is unknown ({fingerprint}); if that is the right key, record it in {file} \
                 with `odysseus trust {}` (or `ssh-keyscan -p {} {} >> {file}`)",
                self.target.host, self.target.port, self.target.host
            ),
            Err(russh::keys::Error::KeyChanged { line }) => format!(
                "host key of {entry} CHANGED (now {fingerprint}); it does not match line {line} of {file}. \
                 If the server was really reinstalled, remove that line and record the new key"
            ),
            Err(e) => format!("cannot check the host key of {entry} against {file}: {e}"),
        };
        *self.problem.lock().unwrap() = Some(verdict);
        Ok(false)
    }
}

pub type Session = Handle<Verifier>;

/// Connects, checks the host key, and authenticates with the first key that works.
pub async fn connect(
    target: &SshTarget,
    settings: &SshSettings,
) -> Result<Arc<Session>, ExecError> {
    connect_reporting(target, settings)
        .await
        .map(|(session, _)| session)
}

/// The same, also saying which key fingerprint was newly recorded (with `trust_unknown`).
pub async fn connect_reporting(
    target: &SshTarget,
    settings: &SshSettings,
) -> Result<(Arc<Session>, Option<String>), ExecError> {
    let config = client::Config {
        keepalive_interval: Some(Duration::from_secs(5)),
        keepalive_max: 3,
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    };
    let problem = Arc::new(Mutex::new(None));
    let learned = Arc::new(Mutex::new(None));
    let verifier = Verifier {
        target: target.clone(),
        known_hosts: settings.known_hosts.clone(),
        trust_unknown: settings.trust_unknown,
        problem: problem.clone(),
        learned: learned.clone(),
    };
    let where_ = format!("{}:{}", target.host, target.port);
    let tcp = tokio::time::timeout(
        settings.connect_timeout,
        tokio::net::TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| {
        ExecError::Retryable(format!(
            "{where_}: no TCP connection within {:?}",
            settings.connect_timeout
        ))
    })?
    .map_err(|e| ExecError::Retryable(format!("{where_}: {e}")))?;
    tcp.set_nodelay(true).ok();
    let handshake = client::connect_stream(Arc::new(config), tcp, verifier);
    let mut session = match tokio::time::timeout(settings.connect_timeout, handshake).await {
        Err(_) => {
            return Err(ExecError::Retryable(format!(
                "{where_}: no SSH handshake within {:?}",
                settings.connect_timeout
            )))
        }
        Ok(Ok(session)) => session,
        Ok(Err(e)) => {
            if let Some(problem) = problem.lock().unwrap().take() {
                return Err(ExecError::Permanent(problem));
            }
            return Err(ExecError::Retryable(format!(
                "{where_}: SSH handshake failed: {e}"
            )));
        }
    };
    let mut tried = Vec::new();
    for path in &settings.keys {
        let key = match load_secret_key(path, None) {
            Ok(k) => Arc::new(k),
            Err(e) => {
                tried.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let hash = if key.algorithm().is_rsa() {
            session
                .best_supported_rsa_hash()
                .await
                .ok()
                .flatten()
                .flatten()
        } else {
            None
        };
        let auth = tokio::time::timeout(
            settings.connect_timeout,
            session.authenticate_publickey(&settings.user, PrivateKeyWithHashAlg::new(key, hash)),
        )
        .await
        .map_err(|_| ExecError::Retryable(format!("{where_}: authentication timed out")))?
        .map_err(|e| ExecError::Retryable(format!("{where_}: authentication failed: {e}")))?;
        if auth.success() {
            tracing::debug!(host = %where_, key = %path.display(), "SSH connected");
            let learned = learned.lock().unwrap().take();
            return Ok((Arc::new(session), learned));
        }
        tried.push(format!("{}: refused", path.display()));
    }
    // Then the keys of a running ssh-agent (SSH_AUTH_SOCK), if there is one.
    if let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await {
        let identities = agent.request_identities().await.unwrap_or_default();
        for identity in identities {
            let key = identity.public_key().into_owned();
            let hash = if key.algorithm().is_rsa() {
                session
                    .best_supported_rsa_hash()
                    .await
                    .ok()
                    .flatten()
                    .flatten()
            } else {
                None
            };
            let fingerprint = key.fingerprint(HashAlg::Sha256);
            let auth = tokio::time::timeout(
                settings.connect_timeout,
                session.authenticate_publickey_with(&settings.user, key, hash, &mut agent),
            )
            .await;
            match auth {
                Ok(Ok(result)) if result.success() => {
                    let learned = learned.lock().unwrap().take();
                    return Ok((Arc::new(session), learned));
                }
                _ => tried.push(format!("ssh-agent key {fingerprint}: refused")),
            }
        }
    }
    Err(ExecError::Permanent(format!(
        "{where_}: no key was accepted for user {} (tried {})",
        settings.user,
        if tried.is_empty() {
            "no keys: set ssh.keys".to_string()
        } else {
            tried.join("; ")
        }
    )))
}

/// Runs a command on the host; returns its exit status and standard output.
pub async fn exec(
    session: &Session,
    command: &str,
    timeout: Duration,
) -> Result<(u32, Vec<u8>), ExecError> {
    let run = async {
        let mut channel = session
            .channel_open_session()
            .await
            .map_err(|e| ExecError::OutcomeUnknown(format!("ssh exec: {e}")))?;
        channel
            .exec(true, command)
            .await
            .map_err(|e| ExecError::OutcomeUnknown(format!("ssh exec: {e}")))?;
        let mut out = Vec::new();
        let mut status = None;
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                _ => {}
            }
        }
        Ok((status.unwrap_or(255), out))
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| ExecError::OutcomeUnknown(format!("ssh exec `{command}` timed out")))?
}

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

    /// Takes the deploy lock on this host, or says who holds it.
    pub async fn take_lock(&self, claim: Claim) -> Result<(), LockError> {
        let session = self.session().await.map_err(LockError::Failed)?;
        let held = take(&session, &claim, Take::Fresh).await?;
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

    async fn renew(&self, session: &Session) -> Result<(), ExecError> {
        let mut state = self.lock.lock().await;
        let claim = match &*state {
            // Another task renewed it meanwhile.
            LockState::Held { held: Some(_), .. } | LockState::None => return Ok(()),
            LockState::Held { claim, .. } => claim.clone(),
            LockState::Lost(e) => return Err(e.clone()),
        };
        match take(session, &claim, Take::Renew).await {
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
