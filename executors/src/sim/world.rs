//! The simulated world: hosts, their containers (each listening on a port and answering
//! one health path, like a real app image), each host's proxy route (dials and its
//! active health check) and the requests in flight. Every change goes through a method
//! that checks the safety invariants at that instant and records any violation.

use std::collections::BTreeMap;

use odysseus_engine::DeploymentId;

use super::faults::FaultPlan;
use super::rng::Rng;
use crate::steps::{dial_container, ProxySettings};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Running,
    Stopped,
}

/// How an app image behaves: the port it listens on and the health path it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppShape {
    pub port: u16,
    pub health_path: String,
}

#[derive(Clone, Debug)]
pub struct Container {
    pub name: String,
    pub id: String,
    pub role: String,
    pub version: String,
    pub web: bool,
    pub state: ContainerState,
    /// What the image really does.
    pub app: AppShape,
    /// What odysseus labelled it with (None: a container from before the labels).
    pub label_port: Option<u16>,
    pub label_health_path: Option<String>,
    /// Counts its starts: Docker's StartedAt.
    pub starts: u32,
    /// When it becomes healthy after its last start (virtual ms); `None` = never.
    pub healthy_at: Option<u64>,
    /// End times of requests in flight when it was taken out of the upstreams.
    pub inflight: Vec<u64>,
    pub unrouted_at: Option<u64>,
    /// The deployment that created it (its label), if any.
    pub deployment: Option<DeploymentId>,
}

impl Container {
    pub fn healthy(&self, now: u64) -> bool {
        self.state == ContainerState::Running && self.healthy_at.is_some_and(|t| t <= now)
    }

    /// Would a request (or the proxy's health check, if `path`) to this port succeed?
    pub fn serves(&self, now: u64, port: u16, path: Option<&str>) -> bool {
        self.healthy(now) && self.app.port == port && path.is_none_or(|p| p == self.app.health_path)
    }

    pub fn inflight_at(&self, now: u64) -> u32 {
        self.inflight.iter().filter(|&&end| end > now).count() as u32
    }
}

#[derive(Clone, Debug, Default)]
pub struct Host {
    pub containers: Vec<Container>,
    /// The service's route exists in this host's proxy.
    pub routed: bool,
    /// The route's upstream dials, `name:port`.
    pub upstreams: Vec<String>,
    /// The route's active health check path (the proxy skips upstreams that fail it).
    pub route_health_path: Option<String>,
    /// The host had a routed healthy container before the deployment.
    pub was_serving: bool,
    /// The mark of the service's unfinished deployment.
    pub mark: Option<crate::steps::Mark>,
    /// The host's copies of the journal, by deployment: records as stored.
    pub journal: BTreeMap<odysseus_engine::DeploymentId, Vec<Vec<u8>>>,
    /// The page the route answers with instead of its upstreams (maintenance mode).
    pub maintenance: Option<odysseus_engine::machine::MaintenancePage>,
}

impl Host {
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.name == name)
    }

    fn container_mut(&mut self, name: &str) -> Option<&mut Container> {
        self.containers.iter_mut().find(|c| c.name == name)
    }

    /// Does `dial` reach a container that answers requests and the route's health check?
    pub fn dial_serves(&self, dial: &str, now: u64) -> bool {
        let port = dial.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
        match (self.container(dial_container(dial)), port) {
            (Some(c), Some(port)) => c.serves(now, port, self.route_health_path.as_deref()),
            _ => false,
        }
    }

    pub fn routed_healthy(&self, now: u64) -> usize {
        self.upstreams
            .iter()
            .filter(|d| self.dial_serves(d, now))
            .count()
    }

    pub fn is_routed(&self, name: &str) -> bool {
        self.upstreams.iter().any(|d| dial_container(d) == name)
    }
}

/// A host as `World::snapshot` sees it: name, (container, running), dials, health path.
pub type HostSnapshot = (String, Vec<(String, bool)>, Vec<String>, Option<String>);

pub struct World {
    pub service: String,
    pub hosts: BTreeMap<String, Host>,
    pub faults: FaultPlan,
    pub rng: Rng,
    /// Virtual milliseconds since the run began (tokio's paused clock).
    pub now_ms: u64,
    pub violations: Vec<String>,
    next_id: u64,
    /// Largest number of simultaneous containers one deployment had for a role on a host.
    pub max_twins: usize,
    /// deploy.yml as the running process loaded it (it may change between processes).
    pub config: Option<ProxySettings>,
    /// What the image being deployed does.
    pub new_app: AppShape,
    /// The plan's timeouts: a new container is healthy within a quarter of `boot_ms`;
    /// a stop before `drain_ms` with requests in flight is a violation.
    pub boot_ms: u64,
    pub drain_ms: u64,
    /// Hosts a cleanup empties on purpose: serving nothing there is no violation (every
    /// other rule still holds: nothing stopped while routed or before its drain).
    pub decommissioning: std::collections::BTreeSet<String>,
}

impl World {
    pub fn new(service: &str, seed: u64, faults: FaultPlan) -> Self {
        World {
            service: service.to_string(),
            hosts: BTreeMap::new(),
            faults,
            rng: Rng::new(seed ^ 0x005e_ed0f_0d15_5e05),
            now_ms: 0,
            violations: Vec::new(),
            next_id: 1,
            max_twins: 0,
            config: None,
            new_app: AppShape {
                port: 3000,
                health_path: "/up".into(),
            },
            boot_ms: 10_000,
            drain_ms: 5_000,
            decommissioning: Default::default(),
        }
    }

    pub fn host_mut(&mut self, host: &str) -> Option<&mut Host> {
        self.hosts.get_mut(host)
    }

    pub fn host(&self, host: &str) -> Option<&Host> {
        self.hosts.get(host)
    }

    /// What runs and what is routed, host by host: to tell whether anything changed.
    pub fn snapshot(&self) -> Vec<HostSnapshot> {
        self.hosts
            .iter()
            .map(|(name, h)| {
                (
                    name.clone(),
                    h.containers
                        .iter()
                        .map(|c| (c.name.clone(), c.state == ContainerState::Running))
                        .collect(),
                    h.upstreams.clone(),
                    h.route_health_path.clone(),
                )
            })
            .collect()
    }

    fn violation(&mut self, what: String) {
        self.violations.push(format!("t={}ms: {what}", self.now_ms));
    }

    /// Puts an already running, healthy (and for web, routed) container on a host: the
    /// state before the deployment.
    #[allow(clippy::too_many_arguments)]
    pub fn seed_container(
        &mut self,
        host: &str,
        role: &str,
        web: bool,
        version: &str,
        index: usize,
        app: &AppShape,
        labelled: bool,
    ) {
        let name = if index == 0 {
            format!("{}-{role}-{version}", self.service)
        } else {
            format!("{}-{role}-{version}-{index}", self.service)
        };
        let id = self.fresh_id();
        let h = self.hosts.entry(host.to_string()).or_default();
        h.containers.push(Container {
            name: name.clone(),
            id,
            role: role.to_string(),
            version: version.to_string(),
            web,
            state: ContainerState::Running,
            app: app.clone(),
            label_port: (web && labelled).then_some(app.port),
            label_health_path: (web && labelled).then(|| app.health_path.clone()),
            starts: 1,
            healthy_at: Some(0),
            inflight: Vec::new(),
            unrouted_at: None,
            deployment: None,
        });
        if web {
            h.routed = true;
            h.route_health_path = Some(app.health_path.clone());
            h.upstreams.push(format!("{name}:{}", app.port));
            h.was_serving = true;
        }
    }

    pub fn add_host(&mut self, host: &str) {
        self.hosts.entry(host.to_string()).or_default();
    }

    fn fresh_id(&mut self) -> String {
        let id = format!("c{:04}", self.next_id);
        self.next_id += 1;
        id
    }

    /// Creates a stopped container of the new image, labelled with `settings`.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        host: &str,
        name: &str,
        role: &str,
        web: bool,
        version: &str,
        deployment: DeploymentId,
        settings: Option<&ProxySettings>,
    ) -> String {
        if let Some(id) = self
            .hosts
            .get(host)
            .and_then(|h| h.container(name))
            .map(|c| c.id.clone())
        {
            self.violation(format!("created {name} on {host} twice"));
            return id;
        }
        let id = self.fresh_id();
        let app = self.new_app.clone();
        let h = self.hosts.get_mut(host).expect("simulated host exists");
        h.containers.push(Container {
            name: name.to_string(),
            id: id.clone(),
            role: role.to_string(),
            version: version.to_string(),
            web,
            state: ContainerState::Stopped,
            app,
            label_port: settings.map(|s| s.app_port),
            label_health_path: settings
                .and_then(|s| s.healthcheck.as_ref())
                .map(|hc| hc.path.clone()),
            starts: 0,
            healthy_at: None,
            inflight: Vec::new(),
            unrouted_at: None,
            deployment: Some(deployment),
        });
        self.check_twins(host, role, deployment);
        id
    }

    fn check_twins(&mut self, host: &str, role: &str, deployment: DeploymentId) {
        let twins = self.hosts[host]
            .containers
            .iter()
            .filter(|c| c.role == role && c.deployment == Some(deployment))
            .count();
        self.max_twins = self.max_twins.max(twins);
        if twins > 1 {
            self.violation(format!(
                "{twins} containers for one idempotency key ({role}@{host})"
            ));
        }
    }

    /// Starts a container (again); it becomes healthy after a while, or never when the
    /// host's new image is broken.
    pub fn start(&mut self, host: &str, name: &str, boot_ms: u64) -> bool {
        let now = self.now_ms;
        let delay = self.rng.upto(boot_ms / 4);
        let never = self.faults.never_healthy(host);
        let Some(c) = self.hosts.get_mut(host).and_then(|h| h.container_mut(name)) else {
            return false;
        };
        if c.state != ContainerState::Running {
            c.state = ContainerState::Running;
            c.starts += 1;
            c.healthy_at = if never && c.deployment.is_some() {
                None
            } else {
                Some(now + delay)
            };
            c.inflight.clear();
        }
        true
    }

    /// The container dies on its own (a crash, the OOM killer): the proxy is not told.
    pub fn kill(&mut self, host: &str, name: &str) {
        if let Some(c) = self.hosts.get_mut(host).and_then(|h| h.container_mut(name)) {
            c.state = ContainerState::Stopped;
            c.inflight.clear();
        }
        // The deployer's choices must leave the proxy a fallback: a routed container
        // that answers requests but is judged by a health check it does not serve is no
        // fallback when the other one dies.
        let now = self.now_ms;
        let h = &self.hosts[host];
        let stranded: Vec<String> = h
            .upstreams
            .iter()
            .filter(|d| {
                let port = d.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
                matches!((h.container(dial_container(d)), port), (Some(c), Some(port)) if c.serves(now, port, None))
            })
            .cloned()
            .collect();
        if h.routed_healthy(now) == 0 && !stranded.is_empty() {
            self.violation(format!(
                "{name} died on {host} and the proxy has no healthy upstream, though {stranded:?} answer: the route judges them by a health check they do not serve"
            ));
        }
    }

    /// Writes the route in one change: its health check and its dials. Every dial added
    /// must reach a container that serves by that health check; the requests of every
    /// dial removed keep running on their container.
    pub fn write_route(&mut self, host: &str, health_path: Option<String>, dials: Vec<String>) {
        let now = self.now_ms;
        let drain_ms = 1 + self.rng.upto(4_000);
        let before = self.hosts[host].routed_healthy(now);
        let h = self.hosts.get_mut(host).expect("simulated host exists");
        let removed: Vec<String> = h
            .upstreams
            .iter()
            .filter(|d| !dials.contains(d))
            .cloned()
            .collect();
        let added: Vec<String> = dials
            .iter()
            .filter(|d| !h.upstreams.contains(d))
            .cloned()
            .collect();
        h.routed = true;
        h.route_health_path = health_path;
        h.upstreams = dials;
        let mut problems = Vec::new();
        for dial in &added {
            // Every request sent to it must be answered (the route's health check may
            // still be another version's: the proxy then just sends it nothing).
            let port = dial.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
            let answers = match (h.container(dial_container(dial)), port) {
                (Some(c), Some(port)) => c.serves(now, port, None),
                _ => false,
            };
            if !answers {
                problems.push(format!(
                    "routed {dial} on {host} while it does not answer there"
                ));
            }
            if let Some(c) = h.container_mut(dial_container(dial)) {
                c.unrouted_at = None;
            }
        }
        // A container removed under every dial keeps serving its requests in flight.
        let unrouted: Vec<String> = removed
            .iter()
            .map(|d| dial_container(d).to_string())
            .filter(|name| !h.is_routed(name))
            .collect();
        for name in unrouted {
            let requests = self.rng.upto(3);
            let ends: Vec<u64> = (0..requests)
                .map(|_| now + 1 + self.rng.upto(drain_ms))
                .collect();
            let h = self.hosts.get_mut(host).expect("simulated host exists");
            if let Some(c) = h.container_mut(&name) {
                c.unrouted_at = Some(now);
                if c.state == ContainerState::Running {
                    c.inflight = ends;
                }
            }
        }
        for p in problems {
            self.violation(p);
        }
        self.check_availability(host, before);
    }

    /// Stops a container gracefully (what SIGTERM + the stop timeout achieve).
    pub fn stop(&mut self, host: &str, name: &str, drain_ms: u64) -> bool {
        let now = self.now_ms;
        let h = &self.hosts[host];
        let before = h.routed_healthy(now);
        let Some(c) = h.container(name) else {
            return false;
        };
        if c.state != ContainerState::Running {
            return false;
        }
        let still_routed = h.is_routed(name);
        let inflight = c.inflight_at(now);
        let drained_long_enough = c
            .unrouted_at
            .is_some_and(|t| now.saturating_sub(t) >= drain_ms);
        let web = c.web;
        if still_routed {
            self.violation(format!(
                "stopped {name} on {host} while it was still routed"
            ));
        }
        if web && inflight > 0 && !drained_long_enough {
            self.violation(format!(
                "stopped {name} on {host} with {inflight} request(s) in flight before its drain timeout"
            ));
        }
        let c = self
            .hosts
            .get_mut(host)
            .and_then(|h| h.container_mut(name))
            .expect("checked above");
        c.state = ContainerState::Stopped;
        c.inflight.clear();
        self.check_availability(host, before);
        true
    }

    pub fn remove(&mut self, host: &str, name: &str) -> bool {
        let h = self.hosts.get_mut(host).expect("simulated host exists");
        let Some(pos) = h.containers.iter().position(|c| c.name == name) else {
            return false;
        };
        let was_running = h.containers[pos].state == ContainerState::Running;
        h.containers.remove(pos);
        if was_running {
            self.violation(format!("removed {name} on {host} while it was running"));
        }
        true
    }

    /// The service's route goes: allowed only once nothing is routed (a cleanup unroutes
    /// first). `false` when there was none.
    pub fn remove_route(&mut self, host: &str) -> bool {
        let h = self.hosts.get_mut(host).expect("simulated host exists");
        if !h.routed {
            return false;
        }
        let left = h.upstreams.clone();
        h.routed = false;
        h.upstreams.clear();
        h.route_health_path = None;
        h.maintenance = None;
        if !left.is_empty() {
            self.violation(format!(
                "removed the route on {host} while it still had {left:?}"
            ));
        }
        true
    }

    /// Availability: a change made by the deployer must never take a host that served
    /// (a routed container answering the route's health check) to serving nothing.
    fn check_availability(&mut self, host: &str, before: usize) {
        if self.decommissioning.contains(host) {
            return;
        }
        let now = self.now_ms;
        let h = &self.hosts[host];
        if h.was_serving && before > 0 && h.routed_healthy(now) == 0 {
            self.violation(format!("{host} has no routed healthy container"));
        }
    }
}
