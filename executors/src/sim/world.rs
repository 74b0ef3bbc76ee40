//! The simulated world: hosts, their containers, each host's Caddy upstream set and the
//! requests in flight. Every change goes through a method that checks the safety
//! invariants at that instant and records any violation.

use std::collections::BTreeMap;

use odysseus_engine::DeploymentId;

use super::faults::FaultPlan;
use super::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Running,
    Stopped,
}

#[derive(Clone, Debug)]
pub struct Container {
    pub name: String,
    pub id: String,
    pub role: String,
    pub version: String,
    pub web: bool,
    pub state: ContainerState,
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

    pub fn inflight_at(&self, now: u64) -> u32 {
        self.inflight.iter().filter(|&&end| end > now).count() as u32
    }
}

#[derive(Clone, Debug, Default)]
pub struct Host {
    pub containers: Vec<Container>,
    /// The service's route in this host's Caddy: container names.
    pub upstreams: Vec<String>,
    /// The host had a routed healthy container before the deployment.
    pub was_serving: bool,
}

impl Host {
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.name == name)
    }

    fn container_mut(&mut self, name: &str) -> Option<&mut Container> {
        self.containers.iter_mut().find(|c| c.name == name)
    }

    pub fn routed_healthy(&self, now: u64) -> usize {
        self.upstreams
            .iter()
            .filter(|u| self.container(u).is_some_and(|c| c.healthy(now)))
            .count()
    }
}

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
        }
    }

    pub fn host(&self, host: &str) -> Option<&Host> {
        self.hosts.get(host)
    }

    fn violation(&mut self, what: String) {
        self.violations.push(format!("t={}ms: {what}", self.now_ms));
    }

    /// Puts an already running, healthy (and for web, routed) container on a host: the
    /// state before the deployment.
    pub fn seed_container(&mut self, host: &str, role: &str, web: bool, version: &str) {
        let name = format!("{}-{role}-{version}", self.service);
        let id = self.fresh_id();
        let h = self.hosts.entry(host.to_string()).or_default();
        h.containers.push(Container {
            name: name.clone(),
            id,
            role: role.to_string(),
            version: version.to_string(),
            web,
            state: ContainerState::Running,
            healthy_at: Some(0),
            inflight: Vec::new(),
            unrouted_at: None,
            deployment: None,
        });
        if web {
            h.upstreams.push(name);
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

    /// Creates a container, or starts it again if one of that name exists (adoption).
    #[allow(clippy::too_many_arguments)]
    pub fn create_or_start(
        &mut self,
        host: &str,
        name: &str,
        role: &str,
        web: bool,
        version: &str,
        deployment: DeploymentId,
        boot_ms: u64,
    ) -> String {
        let now = self.now_ms;
        let never = self.faults.never_healthy(host);
        let delay = self.rng.upto(boot_ms / 4);
        let healthy_at = if never { None } else { Some(now + delay) };
        if self
            .hosts
            .get(host)
            .and_then(|h| h.container(name))
            .is_none()
        {
            let id = self.fresh_id();
            let h = self.hosts.get_mut(host).expect("simulated host exists");
            h.containers.push(Container {
                name: name.to_string(),
                id,
                role: role.to_string(),
                version: version.to_string(),
                web,
                state: ContainerState::Stopped,
                healthy_at: None,
                inflight: Vec::new(),
                unrouted_at: None,
                deployment: Some(deployment),
            });
        }
        let h = self.hosts.get_mut(host).expect("simulated host exists");
        let c = h.container_mut(name).expect("just ensured");
        if c.state != ContainerState::Running {
            c.state = ContainerState::Running;
            c.healthy_at = healthy_at;
        }
        let id = c.id.clone();
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

    /// Starts a stopped container again (for a restore).
    pub fn restart(&mut self, host: &str, name: &str, boot_ms: u64) -> bool {
        let now = self.now_ms;
        let delay = self.rng.upto(boot_ms / 4);
        let Some(c) = self.hosts.get_mut(host).and_then(|h| h.container_mut(name)) else {
            return false;
        };
        if c.state != ContainerState::Running {
            c.state = ContainerState::Running;
            c.healthy_at = Some(now + delay);
            c.inflight.clear();
        }
        true
    }

    pub fn route(&mut self, host: &str, name: &str) -> Result<(), String> {
        let now = self.now_ms;
        let h = self.hosts.get_mut(host).expect("simulated host exists");
        let Some(c) = h.container_mut(name) else {
            return Err(format!("no container {name}"));
        };
        if !c.healthy(now) {
            // The executor must refuse; reaching here would route an unhealthy container.
            self.violation(format!("routed {name} on {host} while it was not healthy"));
            return Err(format!("{name} is not healthy"));
        }
        c.unrouted_at = None;
        if !h.upstreams.iter().any(|u| u == name) {
            h.upstreams.push(name.to_string());
        }
        Ok(())
    }

    /// Takes a container out of the upstreams; the requests it was serving keep running.
    pub fn unroute(&mut self, host: &str, name: &str, drain_ms: u64) -> bool {
        let now = self.now_ms;
        let requests = self.rng.upto(3);
        let ends: Vec<u64> = (0..requests)
            .map(|_| now + 1 + self.rng.upto(drain_ms * 3 / 2))
            .collect();
        let h = self.hosts.get_mut(host).expect("simulated host exists");
        let Some(pos) = h.upstreams.iter().position(|u| u == name) else {
            return false;
        };
        h.upstreams.remove(pos);
        if let Some(c) = h.container_mut(name) {
            c.unrouted_at = Some(now);
            if c.state == ContainerState::Running {
                c.inflight = ends;
            }
        }
        self.check_availability(host);
        true
    }

    /// Stops a container gracefully (what SIGTERM + the stop timeout achieve).
    pub fn stop(&mut self, host: &str, name: &str, drain_ms: u64) -> bool {
        let now = self.now_ms;
        let h = &self.hosts[host];
        let Some(c) = h.container(name) else {
            return false;
        };
        if c.state != ContainerState::Running {
            return false;
        }
        let still_routed = h.upstreams.iter().any(|u| u == name);
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
            .unwrap()
            .container_mut(name)
            .unwrap();
        c.state = ContainerState::Stopped;
        c.inflight.clear();
        self.check_availability(host);
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

    /// Removes upstreams whose container is missing or not running.
    pub fn clean_stale(&mut self, host: &str) -> u32 {
        let h = self.hosts.get_mut(host).expect("simulated host exists");
        let before = h.upstreams.len();
        let containers = &h.containers;
        h.upstreams.retain(|u| {
            containers
                .iter()
                .any(|c| &c.name == u && c.state == ContainerState::Running)
        });
        (before - h.upstreams.len()) as u32
    }

    /// Availability: a host that served before the deployment must always have a
    /// routed healthy container.
    pub fn check_availability(&mut self, host: &str) {
        let now = self.now_ms;
        let h = &self.hosts[host];
        if h.was_serving && h.routed_healthy(now) == 0 {
            self.violation(format!("{host} has no routed healthy container"));
        }
    }
}
