//! One SSH session: connecting and authenticating with strict host key checking, and
//! running a command. No lock, no reconnection: `connection.rs` builds those on it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use odysseus_engine::runtime::ExecError;
use russh::client::{self, Handle};
use russh::keys::{load_secret_key, HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::ChannelMsg;

/// Where and as whom to connect.
#[derive(Clone, Debug)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
}

impl SshTarget {
    /// `name` or `name:port`; `[v6addr]:port` too.
    pub fn parse(host: &str, default_port: u16) -> Result<SshTarget, ExecError> {
        let bad = || ExecError::Permanent(format!("host `{host}`: expected NAME or NAME:PORT"));
        if let Some(rest) = host.strip_prefix('[') {
            let (addr, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => default_port,
                None => return Err(bad()),
            };
            return Ok(SshTarget {
                host: addr.to_string(),
                port,
            });
        }
        match host.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') => Ok(SshTarget {
                host: name.to_string(),
                port: port.parse().map_err(|_| bad())?,
            }),
            Some(_) => Ok(SshTarget {
                host: host.to_string(),
                port: default_port,
            }),
            None => Ok(SshTarget {
                host: host.to_string(),
                port: default_port,
            }),
        }
    }
}

#[derive(Clone, Debug)]
pub struct SshSettings {
    pub user: String,
    pub keys: Vec<PathBuf>,
    pub known_hosts: PathBuf,
    pub connect_timeout: Duration,
    /// Where the server's Docker engine listens (forwarded with direct-streamlocal).
    pub docker_socket: String,
    /// Record an unknown host's key when its SHA-256 fingerprint is this one, instead of
    /// refusing it (an explicit opt-in, for `odysseus trust`, after the person saw that
    /// fingerprint). A changed key is refused regardless.
    pub trust_fingerprint: Option<String>,
}

/// Verifies the server's key against known_hosts; the verdict is kept so the error can
/// say exactly what to fix.
pub struct Verifier {
    target: SshTarget,
    known_hosts: PathBuf,
    trust_fingerprint: Option<String>,
    /// The key the server offered: algorithm and fingerprint.
    offered: Arc<Mutex<Option<(String, String)>>>,
    /// Only look: note the verdict and end the handshake (`scan_host_key`).
    scan: Option<Arc<Mutex<Option<super::known_hosts::Verdict>>>>,
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
        *self.offered.lock().unwrap() =
            Some((key.algorithm().to_string(), fingerprint.to_string()));
        let file = self.known_hosts.display();
        let entry = if self.target.port == 22 {
            self.target.host.clone()
        } else {
            format!("[{}]:{}", self.target.host, self.target.port)
        };
        use super::known_hosts::{judge, read, Verdict};
        let text = match read(&self.known_hosts) {
            Ok(text) => text,
            Err(e) => {
                *self.problem.lock().unwrap() = Some(format!(
                    "cannot read {file} to check the host key of {entry}: {e}"
                ));
                return Ok(false);
            }
        };
        let judged = judge(&text, &self.target.host, self.target.port, key);
        if let Some(scan) = &self.scan {
            *scan.lock().unwrap() = Some(judged);
            return Ok(false);
        }
        let verdict = match judged {
            Verdict::Known => return Ok(true),
            Verdict::Unknown if self.trust_fingerprint.as_deref() == Some(&fingerprint.to_string()) => {
                match russh::keys::known_hosts::learn_known_hosts_path(&self.target.host, self.target.port, key, &self.known_hosts) {
                    Ok(()) => {
                        *self.learned.lock().unwrap() = Some(fingerprint.to_string());
                        return Ok(true);
                    }
                    Err(e) => format!("cannot record the host key of {entry} in {file}: {e}"),
                }
            }
            Verdict::Unknown => format!(
                "host key of {entry} is unknown ({fingerprint}); if that is the right key, record it in {file} \
                 with `odysseus trust {}` (or `ssh-keyscan -p {} {} >> {file}`)",
                self.target.host, self.target.port, self.target.host
            ),
            Verdict::Changed(lines) => format!(
                "host key of {entry} CHANGED (now {} {fingerprint}); it matches none of the keys recorded for it at line(s) {} of {file}. \
                 If the server was really reinstalled, remove those lines and record the new key; `odysseus trust` never replaces a recorded key",
                key.algorithm(),
                lines.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
            ),
            Verdict::Revoked(line) => format!(
                "host key of {entry} ({fingerprint}) is REVOKED at line {line} of {file}: refused"
            ),
            Verdict::CertAuthority(line) => format!(
                "{file} line {line} says {entry} presents host certificates (@cert-authority), which odysseus does not check: \
                 record the host's own key instead (`ssh-keyscan -p {} {}`, verified), or remove that line",
                self.target.port, self.target.host
            ),
            Verdict::UnreadableRevocation(line) => format!(
                "{file} line {line} is a @revoked line odysseus cannot read: it may revoke {entry}'s key, so nothing is trusted"
            ),
        };
        *self.problem.lock().unwrap() = Some(verdict);
        Ok(false)
    }
}

pub type Session = Handle<Verifier>;

/// The TCP connection an SSH session runs on, within the connect timeout.
async fn tcp_connect(
    target: &SshTarget,
    settings: &SshSettings,
) -> Result<tokio::net::TcpStream, ExecError> {
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
    Ok(tcp)
}

/// What a server offers as its host key, and what known_hosts says of it: looked at
/// only (the handshake ends there), nothing authenticated or recorded.
pub struct HostKeyScan {
    pub algorithm: String,
    pub fingerprint: String,
    pub verdict: super::known_hosts::Verdict,
}

pub async fn scan_host_key(
    target: &SshTarget,
    settings: &SshSettings,
) -> Result<HostKeyScan, ExecError> {
    let offered = Arc::new(Mutex::new(None));
    let scan = Arc::new(Mutex::new(None));
    let verifier = Verifier {
        target: target.clone(),
        known_hosts: settings.known_hosts.clone(),
        trust_fingerprint: None,
        offered: offered.clone(),
        scan: Some(scan.clone()),
        problem: Arc::new(Mutex::new(None)),
        learned: Arc::new(Mutex::new(None)),
    };
    let where_ = format!("{}:{}", target.host, target.port);
    let tcp = tcp_connect(target, settings).await?;
    let handshake = client::connect_stream(Arc::new(client::Config::default()), tcp, verifier);
    let _ = tokio::time::timeout(settings.connect_timeout, handshake).await;
    let verdict = scan.lock().unwrap().take();
    let offered = offered.lock().unwrap().take();
    match (verdict, offered) {
        (Some(verdict), Some((algorithm, fingerprint))) => Ok(HostKeyScan {
            algorithm,
            fingerprint,
            verdict,
        }),
        _ => Err(ExecError::Retryable(format!(
            "{where_}: the server offered no host key within {:?}",
            settings.connect_timeout
        ))),
    }
}

/// Connects, checks the host key, and authenticates with the first key that works.
pub async fn connect(
    target: &SshTarget,
    settings: &SshSettings,
) -> Result<Arc<Session>, ExecError> {
    connect_reporting(target, settings)
        .await
        .map(|(session, _)| session)
}

/// The same, also saying which key fingerprint was newly recorded (with
/// `trust_fingerprint`).
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
        trust_fingerprint: settings.trust_fingerprint.clone(),
        offered: Arc::new(Mutex::new(None)),
        scan: None,
        problem: problem.clone(),
        learned: learned.clone(),
    };
    let where_ = format!("{}:{}", target.host, target.port);
    let tcp = tcp_connect(target, settings).await?;
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
