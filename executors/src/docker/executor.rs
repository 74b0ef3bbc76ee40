//! The Docker fleet handle: one connection per host (this machine's engine, or a server
//! over SSH) with its Docker engine and Caddy admin API. The deployment steps run over
//! it through `host_ops.rs`; the other commands (status, logs, prune, …) use it directly.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use odysseus_engine::runtime::ExecError;

use super::caddy::CaddyAdmin;
use super::engine::Engine;
use super::probe::{accepts, http_status};
use super::spec::{ExpectStatus, ServiceSpec};
use crate::ssh::{
    exec as ssh_exec, forward_unix, open_tcp, private_dir, Connection, SshSettings, SshTarget,
};

/// How odysseus reaches a host: this machine's engine, or a server over SSH.
pub enum Access {
    Local,
    Ssh {
        conn: Arc<Connection>,
        socket_dir: PathBuf,
    },
}

pub struct HostHandle {
    pub engine: Engine,
    pub admin: CaddyAdmin,
    pub access: Access,
    /// Whether this host's Caddy switches through upstream slots (asked once).
    pub(crate) slots: tokio::sync::OnceCell<bool>,
    /// Caddy, the service's TLS policy and route checked against deploy.yml (once a run).
    pub(crate) route_checked: tokio::sync::OnceCell<()>,
    /// Where this host's copy of each deployment's journal ends, as this run last wrote
    /// or read it: (records, bytes); complete (a copy absent from it does not exist) once
    /// every copy was read, and kept so while this run holds the lock (only it writes).
    pub(crate) journal_ends: std::sync::Mutex<JournalEnds>,
}

/// See `HostHandle::journal_ends`.
#[derive(Default)]
pub(crate) struct JournalEnds {
    pub ends: HashMap<odysseus_engine::DeploymentId, (u64, u64)>,
    pub complete: bool,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl HostHandle {
    /// A TCP connection to `ip:port` as seen from the host (through SSH: from the server).
    pub(crate) async fn tcp_ok(&self, ip: &str, port: u16) -> bool {
        match &self.access {
            Access::Local => {
                matches!(
                    tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect((ip, port)))
                        .await,
                    Ok(Ok(_))
                )
            }
            Access::Ssh { conn, .. } => match conn.session().await {
                Ok(session) => tokio::time::timeout(PROBE_TIMEOUT, open_tcp(&session, ip, port))
                    .await
                    .is_ok_and(|r| r.is_ok()),
                Err(_) => false,
            },
        }
    }

    /// An HTTP GET of `path` on `ip:port`, from the host's side.
    pub(crate) async fn http_ok(
        &self,
        ip: &str,
        port: u16,
        path: &str,
        expect: &ExpectStatus,
    ) -> bool {
        let host = format!("{ip}:{port}");
        let status = match &self.access {
            Access::Local => match tokio::time::timeout(
                PROBE_TIMEOUT,
                tokio::net::TcpStream::connect((ip, port)),
            )
            .await
            {
                Ok(Ok(stream)) => http_status(stream, &host, path).await,
                _ => None,
            },
            Access::Ssh { conn, .. } => match conn.session().await {
                Ok(session) => {
                    match tokio::time::timeout(PROBE_TIMEOUT, open_tcp(&session, ip, port)).await {
                        Ok(Ok(stream)) => http_status(stream, &host, path).await,
                        _ => None,
                    }
                }
                Err(_) => None,
            },
        };
        accepts(status, expect)
    }

    /// The TCP tables (/proc/PID/net/tcp and tcp6) of process `pid`'s network
    /// namespace, read on the host.
    pub(crate) async fn tcp_tables(&self, pid: i64) -> Result<String, ExecError> {
        match &self.access {
            Access::Local => {
                let mut text = String::new();
                for table in ["tcp", "tcp6"] {
                    if let Ok(t) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
                        text.push_str(&t);
                    }
                }
                if text.is_empty() {
                    return Err(ExecError::Retryable(format!(
                        "cannot read /proc/{pid}/net/tcp"
                    )));
                }
                Ok(text)
            }
            Access::Ssh { conn, .. } => {
                let session = conn.session().await?;
                let command = format!("cat /proc/{pid}/net/tcp /proc/{pid}/net/tcp6 2>/dev/null");
                let (_, out) = ssh_exec(&session, &command, Duration::from_secs(10)).await?;
                // A readable table always has its header line: nothing at all means the
                // server would not show it (hidepid, a pid gone) — never "0 connections".
                if out.is_empty() {
                    return Err(ExecError::Retryable(format!(
                        "cannot read /proc/{pid}/net/tcp on the server"
                    )));
                }
                Ok(String::from_utf8_lossy(&out).into_owned())
            }
        }
    }
}

impl Drop for DockerExecutor {
    fn drop(&mut self) {
        for h in self.hosts.values() {
            if let Access::Ssh { socket_dir, .. } = &h.access {
                let _ = std::fs::remove_dir_all(socket_dir);
            }
        }
    }
}

pub struct DockerExecutor {
    spec: ServiceSpec,
    hosts: BTreeMap<String, HostHandle>,
    /// Hosts that did not answer when a recovery connected (see `connect_reachable`).
    down: BTreeMap<String, String>,
    /// Set while this process holds the deploy lock on `local` (see `fleet_lock`).
    pub(crate) local_hold: crate::fleet_lock::LocalHold,
}

/// Where the local engine listens: DOCKER_HOST (unix:// only) or the default socket.
pub fn local_socket() -> Result<String, ExecError> {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => Ok(h.trim_start_matches("unix://").to_string()),
        Ok(h) if !h.is_empty() => Err(ExecError::Permanent(format!(
            "DOCKER_HOST={h}: only unix sockets are supported for the local engine"
        ))),
        _ => Ok("/var/run/docker.sock".to_string()),
    }
}

impl DockerExecutor {
    /// Connects to every host of the config: `local` is this machine's engine; any other
    /// host (`name` or `name:port`) is reached over SSH, one connection for the deploy.
    pub async fn connect(
        spec: ServiceSpec,
        hosts: &[String],
        ssh: &SshSettings,
        default_port: u16,
    ) -> Result<Self, ExecError> {
        let executor = Self::connect_reachable(spec, hosts, ssh, default_port).await?;
        match executor.down.values().next() {
            Some(why) => Err(ExecError::Retryable(why.clone())),
            None => Ok(executor),
        }
    }

    /// The same, for a recovery (`--resume`, `--abort`): a host that does not answer is
    /// set aside as down instead of stopping the run — every step on it then fails as
    /// retryable, so the other hosts go on and the deployment stays resumable for it.
    /// A refused host key or a wrong engine socket still stops everything.
    pub async fn connect_reachable(
        spec: ServiceSpec,
        hosts: &[String],
        ssh: &SshSettings,
        default_port: u16,
    ) -> Result<Self, ExecError> {
        let mut handles = BTreeMap::new();
        let mut down = BTreeMap::new();
        for host in hosts {
            match connect_one(host, ssh, default_port).await {
                Ok(handle) => {
                    handles.insert(host.clone(), handle);
                }
                Err(ExecError::Retryable(why)) | Err(ExecError::OutcomeUnknown(why)) => {
                    down.insert(host.clone(), why);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(DockerExecutor {
            spec,
            hosts: handles,
            down,
            local_hold: Default::default(),
        })
    }

    /// Every host this executor was asked to reach (connected or set aside as down).
    pub fn all_hosts(&self) -> Vec<String> {
        let mut all: Vec<String> = self.hosts.keys().chain(self.down.keys()).cloned().collect();
        all.sort();
        all
    }

    /// The hosts set aside as down by `connect_reachable`, with why.
    pub fn down_hosts(&self) -> &BTreeMap<String, String> {
        &self.down
    }

    /// Checks, before anything changes, that every host can take the deployment.
    pub async fn preflight(&self, web_hosts: &[String]) -> Result<(), ExecError> {
        if let Some(proxy) = &self.spec.proxy {
            for host in web_hosts {
                let h = self.host(host)?;
                super::caddy::check_existing_caddy(&h.engine, proxy).await?;
                // Asked here rather than inside the first switch, where it would delay
                // the traffic moving (a few Docker execs on a server).
                if matches!(h.engine.inspect(super::caddy::CADDY_CONTAINER).await?, Some(c) if c.running)
                {
                    self.prepare_caddy(host, h).await?;
                }
            }
        }
        Ok(())
    }

    /// The container a role serves on a host: the most recently deployed running one,
    /// as (id, name, labels).
    pub(crate) async fn serving_container(
        &self,
        host: &str,
        role: &str,
    ) -> Result<Option<(String, String, HashMap<String, String>)>, ExecError> {
        let running = self
            .host(host)?
            .engine
            .list(
                &[
                    ("odysseus.service", &self.spec.service),
                    ("odysseus.role", role),
                ],
                false,
            )
            .await?;
        Ok(running
            .into_iter()
            .max_by_key(|(_, _, l)| l.get("odysseus.deployed_at").cloned()))
    }

    /// Makes sure every host has `image` (pulling where it is missing, with the registry
    /// login), before anything changes: a tag that cannot be pulled somewhere stops the
    /// deploy up front instead of after the first hosts moved.
    pub async fn pull_everywhere(&self, image: &str) -> Result<(), ExecError> {
        let pulls = self.hosts.values().map(|h| async move {
            h.engine
                .ensure_image(image, self.spec.registry.as_ref())
                .await
        });
        for result in futures_util::future::join_all(pulls).await {
            result?;
        }
        Ok(())
    }

    /// The hosts in a fixed order (so two lockers never wait on each other in a cycle).
    pub fn hosts_sorted(&self) -> impl Iterator<Item = (&String, &HostHandle)> {
        self.hosts.iter()
    }

    pub fn spec(&self) -> &ServiceSpec {
        &self.spec
    }

    pub fn host(&self, host: &str) -> Result<&HostHandle, ExecError> {
        if let Some(why) = self.down.get(host) {
            return Err(ExecError::Retryable(format!(
                "{why} (it was down when this run connected; run it again once the host is back, or --abandon)"
            )));
        }
        self.hosts
            .get(host)
            .ok_or_else(|| ExecError::Permanent(format!("unknown host {host}")))
    }
}

/// Connects to one host: this machine's engine, or a server over SSH with its Docker
/// socket and Caddy admin API forwarded.
async fn connect_one(
    host: &str,
    ssh: &SshSettings,
    default_port: u16,
) -> Result<HostHandle, ExecError> {
    if host == "local" {
        let engine = Engine::connect(host, &local_socket()?).await?;
        return Ok(HostHandle {
            admin: CaddyAdmin::new(engine.docker().clone()),
            engine,
            access: Access::Local,
            slots: Default::default(),
            route_checked: Default::default(),
            journal_ends: Default::default(),
        });
    }
    let target = SshTarget::parse(host, default_port)?;
    let conn = Connection::open(target, ssh.clone())
        .await
        .map_err(|e| match e {
            ExecError::Retryable(m) => ExecError::Retryable(format!("{host} is unreachable: {m}")),
            other => other,
        })?;
    let socket_dir = private_dir()?;
    let remote = &ssh.docker_socket;
    let local = forward_unix(conn.clone(), &socket_dir, remote).await?;
    // The local end of the tunnel means nothing to the user: name the server's.
    let engine = Engine::connect(host, &local.to_string_lossy())
        .await
        .map_err(|_| {
            ExecError::Permanent(format!(
                "{host}: no Docker engine answers at {remote} on the server (ssh.docker_socket); \
                 is dockerd running there, and is that its socket?"
            ))
        })?;
    Ok(HostHandle {
        admin: CaddyAdmin::new(engine.docker().clone()),
        engine,
        access: Access::Ssh { conn, socket_dir },
        slots: Default::default(),
        route_checked: Default::default(),
        journal_ends: Default::default(),
    })
}

pub(crate) fn secs_ns(s: u64) -> i64 {
    s.max(1).saturating_mul(1_000_000_000).min(i64::MAX as u64) as i64
}

impl DockerExecutor {
    /// An error seen through a dead SSH connection says so first: "client error
    /// (SendRequest)" from the tunnelled Docker socket means nothing to a person.
    pub(crate) async fn explain_lost(&self, host: &str, e: ExecError) -> ExecError {
        let Ok(HostHandle {
            access: Access::Ssh { conn, .. },
            ..
        }) = self.host(host)
        else {
            return e;
        };
        if !conn.is_down().await {
            return e;
        }
        let say = |m: String| format!("{host}: the SSH connection is lost ({m})");
        match e {
            ExecError::Retryable(m) => ExecError::Retryable(say(m)),
            ExecError::OutcomeUnknown(m) => ExecError::OutcomeUnknown(say(m)),
            permanent => permanent,
        }
    }
}
