//! The Docker executor: performs the engine's effects on Docker engines and their Caddy,
//! with the same idempotency and observe contract as the simulator.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::HealthConfig;
use odysseus_engine::machine::{Effect, Observation, RoleKind, StepName};
use odysseus_engine::runtime::{Clock, ExecError, Executor, Survey, SystemClock};

use super::caddy::{ensure_caddy, CaddyAdmin};
use super::engine::{Engine, NewContainer};
use super::probe::{accepts, count_established, established_connections, http_status};
use super::spec::{ExpectStatus, RoleSpec, ServiceSpec};
use crate::ssh::{
    exec as ssh_exec, forward_tcp, forward_unix, open_tcp, Connection, SshSettings, SshTarget,
};

const POLL: Duration = Duration::from_millis(200);
/// A job role without a Docker health check is healthy once it has kept running this long.
const JOB_SETTLE: Duration = Duration::from_secs(2);

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
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl HostHandle {
    /// A TCP connection to `ip:port` as seen from the host (through SSH: from the server).
    async fn tcp_ok(&self, ip: &str, port: u16) -> bool {
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
    async fn http_ok(&self, ip: &str, port: u16, path: &str, expect: &ExpectStatus) -> bool {
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

    /// Established connections on `port` in the network namespace of process `pid`.
    async fn established(&self, pid: i64, port: u16) -> Result<u32, ExecError> {
        match &self.access {
            Access::Local => established_connections(pid, port),
            Access::Ssh { conn, .. } => {
                let session = conn.session().await?;
                let command = format!("cat /proc/{pid}/net/tcp /proc/{pid}/net/tcp6 2>/dev/null");
                let (_, out) = ssh_exec(&session, &command, Duration::from_secs(10)).await?;
                Ok(count_established(&String::from_utf8_lossy(&out), port))
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
    /// Set while this process holds the deploy lock on `local` (see `fleet_lock`).
    pub(crate) local_fence: std::sync::Mutex<Option<crate::fleet_lock::LocalFence>>,
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
        let mut handles = BTreeMap::new();
        for host in hosts {
            let handle = if host == "local" {
                let engine = Engine::connect(host, &local_socket()?).await?;
                HostHandle {
                    engine,
                    admin: CaddyAdmin::new("http://127.0.0.1:2019"),
                    access: Access::Local,
                }
            } else {
                let target = parse_host(host, default_port)?;
                let conn = Connection::open(target, ssh.clone())
                    .await
                    .map_err(|e| match e {
                        ExecError::Retryable(m) => {
                            ExecError::Retryable(format!("{host} is unreachable: {m}"))
                        }
                        other => other,
                    })?;
                let socket_dir = std::env::temp_dir().join(format!(
                    "odysseus-{}-{}",
                    std::process::id(),
                    sanitize(host)
                ));
                let remote = &ssh.docker_socket;
                let local = forward_unix(conn.clone(), &socket_dir, remote).await?;
                let admin_port = forward_tcp(conn.clone(), "127.0.0.1", 2019).await?;
                // The local end of the tunnel means nothing to the user: name the server's.
                let engine = Engine::connect(host, &local.to_string_lossy())
                    .await
                    .map_err(|_| {
                        ExecError::Permanent(format!(
                            "{host}: no Docker engine answers at {remote} on the server (ssh.docker_socket); \
                             is dockerd running there, and is that its socket?"
                        ))
                    })?;
                HostHandle {
                    engine,
                    admin: CaddyAdmin::new(&format!("http://127.0.0.1:{admin_port}")),
                    access: Access::Ssh { conn, socket_dir },
                }
            };
            handles.insert(host.clone(), handle);
        }
        Ok(DockerExecutor {
            spec,
            hosts: handles,
            local_fence: std::sync::Mutex::new(None),
        })
    }

    /// Checks, before anything changes, that every host can take the deployment.
    pub async fn preflight(&self, web_hosts: &[String]) -> Result<(), ExecError> {
        if let Some(proxy) = &self.spec.proxy {
            for host in web_hosts {
                super::caddy::check_existing_caddy(&self.host(host)?.engine, proxy).await?;
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
        self.hosts
            .get(host)
            .ok_or_else(|| ExecError::Permanent(format!("unknown host {host}")))
    }

    fn role(&self, role: &str) -> Result<&RoleSpec, ExecError> {
        self.spec
            .role(role)
            .ok_or_else(|| ExecError::Permanent(format!("role {role} is not in the config")))
    }

    fn app_port(&self) -> Result<u16, ExecError> {
        self.spec
            .proxy
            .as_ref()
            .map(|p| p.app_port)
            .ok_or_else(|| ExecError::Permanent("the web role needs proxy.app_port".into()))
    }

    fn dial(&self, container: &str) -> Result<String, ExecError> {
        Ok(format!("{container}:{}", self.app_port()?))
    }

    async fn start_new(&self, e: &Effect) -> Result<Observation, ExecError> {
        let h = self.host(&e.host)?;
        let role = self.role(&e.role)?;
        h.engine
            .ensure_network(self.spec.network_subnet.as_deref())
            .await?;
        if let Some(existing) = h.engine.inspect(&e.new_container).await? {
            // Adopt: a redo after a crash finds the container it created.
            if !existing.running {
                h.engine.start(&e.new_container).await?;
            }
            return Ok(Observation::Container { id: existing.id });
        }
        let image = e.image_ref();
        h.engine
            .ensure_image(&image, self.spec.registry.as_ref())
            .await?;
        let labels: HashMap<String, String> = [
            ("odysseus.service", e.service.clone()),
            ("odysseus.role", e.role.clone()),
            ("odysseus.version", e.version.clone()),
            ("odysseus.deployment", e.deployment.to_string()),
            ("odysseus.deployed_at", SystemClock.now().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let env: Vec<String> = self
            .spec
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let healthcheck = role.healthcheck.as_ref().map(|hc| HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), hc.cmd.clone()]),
            interval: Some(secs_ns(hc.interval_s)),
            timeout: Some(secs_ns(hc.timeout_s)),
            retries: Some(i64::from(hc.retries)),
            ..Default::default()
        });
        let id = h
            .engine
            .create(NewContainer {
                name: &e.new_container,
                image: &image,
                cmd: role.cmd.clone(),
                env,
                labels,
                binds: role.volumes.clone(),
                resources: &role.resources,
                healthcheck,
                publish: vec![],
                aliases: vec![],
                sysctls: vec![],
            })
            .await?;
        h.engine.start(&e.new_container).await?;
        Ok(Observation::Container { id })
    }

    /// One look: is this container healthy right now, by the checks that apply to it?
    async fn healthy_now(
        &self,
        host: &str,
        name: &str,
        kind: RoleKind,
        running_since: Option<Instant>,
    ) -> Result<bool, ExecError> {
        let h = self.host(host)?;
        let Some(info) = h.engine.inspect(name).await? else {
            return Ok(false);
        };
        if !info.running {
            return Ok(false);
        }
        if let Some(health) = &info.health {
            if health != "healthy" {
                return Ok(false);
            }
        }
        match kind {
            RoleKind::Web => {
                let Some(ip) = info.ip.as_deref() else {
                    return Ok(false);
                };
                let port = self.app_port()?;
                match self
                    .spec
                    .proxy
                    .as_ref()
                    .and_then(|p| p.healthcheck.as_ref())
                {
                    Some(hc) => Ok(h.http_ok(ip, port, &hc.path, &hc.expect).await),
                    None if info.health.is_some() => Ok(true),
                    None => Ok(h.tcp_ok(ip, port).await),
                }
            }
            RoleKind::Job if info.health.is_some() => Ok(true),
            RoleKind::Job => Ok(running_since.is_none_or(|t| t.elapsed() >= JOB_SETTLE)),
        }
    }

    /// Waits for health, bounded by `boot_ms`. On failure the error carries the
    /// container's last log lines.
    pub(crate) async fn await_healthy(
        &self,
        host: &str,
        name: &str,
        kind: RoleKind,
        boot_ms: u64,
    ) -> Result<(), ExecError> {
        let h = self.host(host)?;
        let started = Instant::now();
        let mut running_since = None;
        loop {
            let info = h.engine.inspect(name).await?;
            match &info {
                None => {
                    return Err(ExecError::Permanent(format!(
                        "container {name} does not exist"
                    )))
                }
                Some(i) if !i.running => {
                    let logs = h.engine.last_logs(name, 20).await;
                    return Err(ExecError::Permanent(format!(
                        "{name} exited before becoming healthy; its last lines:\n{logs}"
                    )));
                }
                Some(_) => {
                    running_since.get_or_insert_with(Instant::now);
                }
            }
            if self.healthy_now(host, name, kind, running_since).await? {
                return Ok(());
            }
            if started.elapsed() >= Duration::from_millis(boot_ms) {
                let logs = h.engine.last_logs(name, 20).await;
                return Err(ExecError::Permanent(format!(
                    "{name} did not become healthy within {} s (boot_timeout); its last lines:\n{}",
                    boot_ms / 1000,
                    if logs.trim().is_empty() {
                        "(no output)".to_string()
                    } else {
                        logs
                    }
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn ensure_route(&self, host: &str) -> Result<&HostHandle, ExecError> {
        let h = self.host(host)?;
        let proxy = self
            .spec
            .proxy
            .as_ref()
            .ok_or_else(|| ExecError::Permanent("the web role needs a proxy section".into()))?;
        ensure_caddy(
            &h.engine,
            &h.admin,
            proxy,
            self.spec.network_subnet.as_deref(),
            self.spec.registry.as_ref(),
        )
        .await?;
        h.admin.ensure_route(&self.spec.service, proxy).await?;
        Ok(h)
    }

    /// Waits until the containers serve no established connection, capped by `drain_ms`.
    async fn drain(
        &self,
        host: &str,
        names: &[String],
        drain_ms: u64,
    ) -> Result<(u64, u32), ExecError> {
        let h = self.host(host)?;
        let port = self.app_port()?;
        let started = Instant::now();
        loop {
            let mut remaining = 0;
            for name in names {
                if let Some(info) = h.engine.inspect(name).await? {
                    if let (true, Some(pid)) = (info.running, info.pid) {
                        remaining += h.established(pid, port).await?;
                    }
                }
            }
            let waited = started.elapsed().as_millis() as u64;
            if remaining == 0 || waited >= drain_ms {
                return Ok((waited, remaining));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The service's upstreams on a host; None when it has no route — also when the host
    /// has no Caddy at all (a first deploy that failed before anything was routed), so an
    /// undo never depends on a Caddy that was never created.
    async fn upstreams(&self, h: &HostHandle) -> Result<Option<Vec<String>>, ExecError> {
        match h.admin.upstreams(&self.spec.service).await {
            Ok(u) => Ok(u),
            Err(e) => match h.engine.inspect(super::caddy::CADDY_CONTAINER).await? {
                None => Ok(None),
                Some(_) => Err(e),
            },
        }
    }

    async fn perform(&self, e: &Effect) -> Result<Observation, ExecError> {
        // The host-level fence: a deployer that lost its lock on this host stops here.
        self.check_lock(&e.host).await?;
        let web = e.kind == RoleKind::Web;
        let service = &self.spec.service;
        match e.step {
            StepName::StartNew => self.start_new(e).await,
            StepName::AwaitHealthy => {
                self.await_healthy(&e.host, &e.new_container, e.kind, e.timeouts.boot_ms)
                    .await?;
                Ok(Observation::Done)
            }
            StepName::AddUpstream => {
                if web {
                    // Never route what is not healthy, even when redone after a crash.
                    if !self
                        .healthy_now(&e.host, &e.new_container, e.kind, None)
                        .await?
                    {
                        return Err(ExecError::Permanent(format!(
                            "{} is not healthy: not routing it",
                            e.new_container
                        )));
                    }
                    let h = self.ensure_route(&e.host).await?;
                    let dial = self.dial(&e.new_container)?;
                    h.admin
                        .edit_upstreams(service, |u| {
                            if !u.contains(&dial) {
                                u.push(dial.clone())
                            }
                        })
                        .await?;
                }
                Ok(Observation::Done)
            }
            StepName::RemoveOldUpstream => {
                let h = self.host(&e.host)?;
                if h.admin.upstreams(service).await?.is_none() {
                    return Ok(Observation::Count { n: 0 });
                }
                let olds: Vec<String> = e
                    .old_containers
                    .iter()
                    .map(|o| self.dial(o))
                    .collect::<Result<_, _>>()?;
                let (before, after) = h
                    .admin
                    .edit_upstreams(service, |u| u.retain(|d| !olds.contains(d)))
                    .await?;
                Ok(Observation::Count {
                    n: (before.len() - after.len()) as u32,
                })
            }
            StepName::DrainOld => {
                let (waited_ms, remaining) = self
                    .drain(&e.host, &e.old_containers, e.timeouts.drain_ms)
                    .await?;
                Ok(Observation::Drained {
                    waited_ms,
                    remaining,
                })
            }
            StepName::StopOld => {
                let h = self.host(&e.host)?;
                let mut n = 0;
                for old in &e.old_containers {
                    if h.engine.inspect(old).await?.is_some_and(|c| c.running) {
                        h.engine.stop(old, e.timeouts.stop_ms / 1000).await?;
                        n += 1;
                    }
                }
                Ok(Observation::Count { n })
            }
            StepName::CleanStaleUpstreams => {
                let h = self.ensure_route(&e.host).await?;
                let current = h.admin.upstreams(service).await?.unwrap_or_default();
                let mut stale = Vec::new();
                for dial in current {
                    let name = dial.rsplit_once(':').map_or(dial.as_str(), |(n, _)| n);
                    if !h.engine.inspect(name).await?.is_some_and(|c| c.running) {
                        stale.push(dial.clone());
                    }
                }
                if !stale.is_empty() {
                    h.admin
                        .edit_upstreams(service, |u| u.retain(|d| !stale.contains(d)))
                        .await?;
                }
                Ok(Observation::Count {
                    n: stale.len() as u32,
                })
            }
            StepName::RestoreOldUpstream => {
                let h = self.host(&e.host)?;
                for old in &e.old_containers {
                    match h.engine.inspect(old).await? {
                        None => {
                            return Err(ExecError::Permanent(format!(
                                "old container {old} no longer exists; it cannot be restored"
                            )))
                        }
                        Some(c) if !c.running => h.engine.start(old).await?,
                        Some(_) => {}
                    }
                }
                for old in &e.old_containers {
                    self.await_healthy(&e.host, old, e.kind, e.timeouts.boot_ms)
                        .await
                        .map_err(|err| match err {
                            ExecError::Permanent(m) => ExecError::Retryable(m),
                            other => other,
                        })?;
                }
                if web {
                    let h = self.ensure_route(&e.host).await?;
                    let dials: Vec<String> = e
                        .old_containers
                        .iter()
                        .map(|o| self.dial(o))
                        .collect::<Result<_, _>>()?;
                    h.admin
                        .edit_upstreams(service, |u| {
                            dials.iter().for_each(|d| {
                                if !u.contains(d) {
                                    u.push(d.clone())
                                }
                            })
                        })
                        .await?;
                }
                Ok(Observation::Done)
            }
            StepName::RemoveNew => {
                let h = self.host(&e.host)?;
                // Undo must not depend on creating anything: with no route there is
                // nothing to unroute.
                if web && self.upstreams(h).await?.is_some() {
                    let dial = self.dial(&e.new_container)?;
                    h.admin
                        .edit_upstreams(service, |u| u.retain(|d| *d != dial))
                        .await?;
                    self.drain(
                        &e.host,
                        std::slice::from_ref(&e.new_container),
                        e.timeouts.drain_ms,
                    )
                    .await?;
                }
                if h.engine
                    .inspect(&e.new_container)
                    .await?
                    .is_some_and(|c| c.running)
                {
                    h.engine
                        .stop(&e.new_container, e.timeouts.stop_ms / 1000)
                        .await?;
                }
                h.engine.remove(&e.new_container).await?;
                Ok(Observation::Done)
            }
        }
    }

    async fn look(&self, e: &Effect) -> Result<Option<Observation>, ExecError> {
        let h = self.host(&e.host)?;
        let web = e.kind == RoleKind::Web;
        let routed = || async {
            if !web {
                return Ok::<Vec<String>, ExecError>(Vec::new());
            }
            Ok(self.upstreams(h).await?.unwrap_or_default())
        };
        let done = match e.step {
            StepName::StartNew => {
                return Ok(h
                    .engine
                    .inspect(&e.new_container)
                    .await?
                    .filter(|c| c.running)
                    .map(|c| Observation::Container { id: c.id }))
            }
            StepName::AwaitHealthy => {
                self.healthy_now(&e.host, &e.new_container, e.kind, None)
                    .await?
            }
            StepName::AddUpstream => {
                !web || routed().await?.contains(&self.dial(&e.new_container)?)
            }
            StepName::RemoveOldUpstream => {
                let upstreams = routed().await?;
                e.old_containers
                    .iter()
                    .map(|o| self.dial(o))
                    .collect::<Result<Vec<_>, _>>()?
                    .iter()
                    .all(|d| !upstreams.contains(d))
            }
            StepName::DrainOld => self.drain(&e.host, &e.old_containers, 0).await?.1 == 0,
            StepName::StopOld => {
                let mut all_stopped = true;
                for old in &e.old_containers {
                    all_stopped &= !h.engine.inspect(old).await?.is_some_and(|c| c.running);
                }
                all_stopped
            }
            StepName::CleanStaleUpstreams => {
                let mut clean = true;
                for dial in routed().await? {
                    let name = dial.rsplit_once(':').map_or(dial.as_str(), |(n, _)| n);
                    clean &= h.engine.inspect(name).await?.is_some_and(|c| c.running);
                }
                clean
            }
            StepName::RestoreOldUpstream => {
                let upstreams = routed().await?;
                let mut ok = true;
                for old in &e.old_containers {
                    ok &= self.healthy_now(&e.host, old, e.kind, None).await?;
                    ok &= !web || upstreams.contains(&self.dial(old)?);
                }
                ok
            }
            StepName::RemoveNew => {
                h.engine.inspect(&e.new_container).await?.is_none()
                    && !routed().await?.contains(&self.dial(&e.new_container)?)
            }
        };
        Ok(done.then_some(match e.step {
            StepName::RemoveOldUpstream | StepName::StopOld | StepName::CleanStaleUpstreams => {
                Observation::Count { n: 0 }
            }
            StepName::DrainOld => Observation::Drained {
                waited_ms: 0,
                remaining: 0,
            },
            _ => Observation::Done,
        }))
    }
}

/// `name` or `name:port`; `[v6addr]:port` too.
pub fn parse_host(host: &str, default_port: u16) -> Result<SshTarget, ExecError> {
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

fn sanitize(host: &str) -> String {
    host.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

pub(crate) fn secs_ns(s: u64) -> i64 {
    (s.max(1) * 1_000_000_000).min(i64::MAX as u64) as i64
}

impl DockerExecutor {
    /// An error seen through a dead SSH connection says so first: "client error
    /// (SendRequest)" from the tunnelled Docker socket means nothing to a person.
    async fn explain(&self, host: &str, e: ExecError) -> ExecError {
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

impl Executor for DockerExecutor {
    async fn execute(&self, effect: &Effect) -> Result<Observation, ExecError> {
        match self.perform(effect).await {
            Err(e) => Err(self.explain(&effect.host, e).await),
            ok => ok,
        }
    }

    async fn observe(&self, effect: &Effect) -> Result<Option<Observation>, ExecError> {
        match self.look(effect).await {
            Err(e) => Err(self.explain(&effect.host, e).await),
            ok => ok,
        }
    }

    async fn survey(
        &self,
        service: &str,
        role: &str,
        _kind: RoleKind,
        host: &str,
    ) -> Result<Survey, ExecError> {
        let h = self.host(host)?;
        let list = h
            .engine
            .list(
                &[("odysseus.service", service), ("odysseus.role", role)],
                false,
            )
            .await?;
        let mut containers: Vec<(String, String)> = list
            .into_iter()
            .map(|(_, name, labels)| {
                (
                    name,
                    labels.get("odysseus.version").cloned().unwrap_or_default(),
                )
            })
            .collect();
        containers.sort();
        Ok(Survey {
            version: containers
                .first()
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty()),
            containers: containers.into_iter().map(|(n, _)| n).collect(),
        })
    }
}
