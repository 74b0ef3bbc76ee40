//! The simulated world's host operations: the same `HostOps` the Docker + Caddy hosts
//! implement, over `World`. The steps that run over it are the real ones (`crate::steps`).
//! A crash scheduled in the middle of an effect makes the process "die" before one of
//! these operations: it and every later one never return, as after kill -9.

use std::cell::RefCell;
use std::rc::Rc;

use odysseus_engine::machine::{Effect, MaintenancePage, RoleKind};
use odysseus_engine::runtime::{ExecError, Survey};
use odysseus_engine::DeploymentId;

use super::clock::SimClock;
use super::crash::CrashSchedule;
use super::world::{ContainerState, World};
use crate::docker::spec::{ExpectStatus, HttpCheck};
use crate::steps::{ContainerView, HostOps, Mark, Probe, ProxySettings};

pub struct SimHost {
    pub world: Rc<RefCell<World>>,
    clock: SimClock,
    crashes: Option<Rc<CrashSchedule>>,
}

impl SimHost {
    pub fn new(
        world: Rc<RefCell<World>>,
        clock: SimClock,
        crashes: Option<Rc<CrashSchedule>>,
    ) -> Self {
        SimHost {
            world,
            clock,
            crashes,
        }
    }

    /// Brings the world's clock to now and borrows it. Never held across an await.
    fn world(&self) -> std::cell::RefMut<'_, World> {
        let mut w = self.world.borrow_mut();
        w.now_ms = self.clock.elapsed_ms();
        w
    }

    /// Before every operation: a dead process does nothing more; a crash scheduled at
    /// this mutating operation kills it first.
    async fn alive(&self, mutating: bool) {
        if let Some(c) = &self.crashes {
            if c.is_dead() || (mutating && c.host_op()) {
                std::future::pending::<()>().await;
            }
        }
    }

    fn no_host(host: &str) -> ExecError {
        ExecError::Permanent(format!("unknown host {host}"))
    }
}

impl HostOps for SimHost {
    fn proxy(&self) -> Option<ProxySettings> {
        self.world.borrow().config.clone()
    }

    async fn check_lock(&self, _host: &str) -> Result<(), ExecError> {
        self.alive(false).await;
        Ok(())
    }

    async fn container(&self, host: &str, name: &str) -> Result<Option<ContainerView>, ExecError> {
        self.alive(false).await;
        let w = self.world();
        let h = w.host(host).ok_or_else(|| Self::no_host(host))?;
        Ok(h.container(name).map(|c| ContainerView {
            id: c.id.clone(),
            running: c.state == ContainerState::Running,
            // A job that never becomes healthy crash-loops: its start changes all the
            // time, so it never settles.
            started: if c.healthy_at.is_none() && !c.web {
                format!("{}-{}", c.starts, w.now_ms / 500)
            } else {
                c.starts.to_string()
            },
            health: None,
            app_port: c.label_port,
            health_check: c.label_health_path.clone().map(|path| {
                Some(HttpCheck {
                    path,
                    interval_s: 1,
                    timeout_s: 2,
                    expect: ExpectStatus::Any2xx,
                })
            }),
        }))
    }

    async fn create(
        &self,
        e: &Effect,
        settings: Option<&ProxySettings>,
    ) -> Result<String, ExecError> {
        self.alive(true).await;
        Ok(self.world().create(
            &e.host,
            &e.new_container,
            &e.role,
            e.kind == RoleKind::Web,
            &e.version,
            e.deployment,
            settings,
        ))
    }

    async fn start(&self, host: &str, name: &str) -> Result<(), ExecError> {
        self.alive(true).await;
        let boot_ms = self.world().boot_ms;
        if self.world().start(host, name, boot_ms) {
            Ok(())
        } else {
            Err(ExecError::Permanent(format!("no container {name}")))
        }
    }

    async fn stop(&self, host: &str, name: &str, stop_ms: u64) -> Result<(), ExecError> {
        self.alive(true).await;
        // What SIGTERM and the stop timeout achieve.
        let _ = stop_ms;
        let drain_ms = self.world().drain_ms;
        self.world().stop(host, name, drain_ms);
        Ok(())
    }

    async fn remove(&self, host: &str, name: &str) -> Result<(), ExecError> {
        self.alive(true).await;
        self.world().remove(host, name);
        Ok(())
    }

    async fn probe(&self, host: &str, name: &str, port: u16, probe: Probe<'_>) -> bool {
        self.alive(false).await;
        let w = self.world();
        let path = match probe {
            Probe::Tcp => None,
            Probe::Http { path, .. } => Some(path),
        };
        w.host(host)
            .and_then(|h| h.container(name))
            .is_some_and(|c| c.serves(w.now_ms, port, path))
    }

    async fn listening_ports(&self, host: &str, name: &str) -> Result<Vec<u16>, ExecError> {
        self.alive(false).await;
        let w = self.world();
        Ok(w.host(host)
            .and_then(|h| h.container(name))
            .filter(|c| c.state == ContainerState::Running)
            .map(|c| vec![c.app.port])
            .unwrap_or_default())
    }

    async fn inbound_connections(&self, host: &str, name: &str) -> Result<u32, ExecError> {
        self.alive(false).await;
        let w = self.world();
        Ok(w.host(host)
            .and_then(|h| h.container(name))
            .map(|c| c.inflight_at(w.now_ms))
            .unwrap_or(0))
    }

    async fn last_logs(&self, _host: &str, _name: &str) -> String {
        String::new()
    }

    async fn route(&self, host: &str) -> Result<Option<Vec<String>>, ExecError> {
        self.alive(false).await;
        let w = self.world();
        let h = w.host(host).ok_or_else(|| Self::no_host(host))?;
        Ok(h.routed.then(|| h.upstreams.clone()))
    }

    async fn write_route(
        &self,
        host: &str,
        health: Option<&HttpCheck>,
        edit: &dyn Fn(&mut Vec<String>),
    ) -> Result<(Vec<String>, Vec<String>), ExecError> {
        self.alive(true).await;
        let mut w = self.world();
        let h = w.host(host).ok_or_else(|| Self::no_host(host))?;
        let before = h.upstreams.clone();
        let mut after = before.clone();
        edit(&mut after);
        let path = health.map(|hc| hc.path.clone());
        if h.routed && after == before && h.route_health_path == path {
            return Ok((before, after));
        }
        w.write_route(host, path, after.clone());
        Ok((before, after))
    }

    async fn mark(&self, host: &str) -> Result<Option<Mark>, ExecError> {
        // Marks are written before and after the step loop, never inside an effect:
        // they are not crash points.
        self.alive(false).await;
        let w = self.world();
        Ok(w.host(host)
            .ok_or_else(|| Self::no_host(host))?
            .mark
            .clone())
    }

    async fn create_mark(&self, host: &str, mark: &Mark) -> Result<(), ExecError> {
        self.alive(false).await;
        let mut w = self.world();
        let h = w.hosts.get_mut(host).ok_or_else(|| Self::no_host(host))?;
        h.mark.get_or_insert_with(|| mark.clone());
        Ok(())
    }

    async fn remove_mark(&self, host: &str) -> Result<(), ExecError> {
        self.alive(false).await;
        let mut w = self.world();
        w.hosts
            .get_mut(host)
            .ok_or_else(|| Self::no_host(host))?
            .mark = None;
        Ok(())
    }

    async fn journal_len(
        &self,
        host: &str,
        _service: &str,
        deployment: DeploymentId,
    ) -> Result<u64, ExecError> {
        self.alive(false).await;
        let w = self.world();
        let h = w.host(host).ok_or_else(|| Self::no_host(host))?;
        Ok(h.journal.get(&deployment).map_or(0, |r| r.len() as u64))
    }

    async fn journal_append(
        &self,
        host: &str,
        _service: &str,
        deployment: DeploymentId,
        from: u64,
        records: &[Vec<u8>],
    ) -> Result<(), ExecError> {
        // A crash may come before the copy is written, never halfway: the real append
        // is one durable write under the host's lock.
        self.alive(true).await;
        let mut w = self.world();
        let h = w.hosts.get_mut(host).ok_or_else(|| Self::no_host(host))?;
        let copy = h.journal.entry(deployment).or_default();
        if copy.len() as u64 != from {
            return Err(ExecError::Retryable(format!(
                "the copy holds {} records, not {from}",
                copy.len()
            )));
        }
        copy.extend_from_slice(records);
        Ok(())
    }

    async fn survey_all(&self, host: &str, service: &str, role: &str) -> Result<Survey, ExecError> {
        self.alive(false).await;
        let w = self.world();
        let h = w.host(host).ok_or_else(|| Self::no_host(host))?;
        let mut all: Vec<_> = h
            .containers
            .iter()
            .filter(|c| c.role == role && c.name.starts_with(service))
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Survey {
            containers: all.iter().map(|c| c.name.clone()).collect(),
            version: all.first().map(|c| c.version.clone()),
        })
    }

    async fn remove_route(&self, host: &str) -> Result<bool, ExecError> {
        self.alive(true).await;
        let mut w = self.world();
        w.host(host).ok_or_else(|| Self::no_host(host))?;
        Ok(w.remove_route(host))
    }

    async fn maintenance(&self, host: &str) -> Result<Option<MaintenancePage>, ExecError> {
        self.alive(false).await;
        let w = self.world();
        let h = w.host(host).ok_or_else(|| Self::no_host(host))?;
        Ok(h.maintenance.clone())
    }

    async fn set_maintenance(
        &self,
        host: &str,
        page: Option<&MaintenancePage>,
    ) -> Result<(), ExecError> {
        self.alive(true).await;
        let mut w = self.world();
        let h = w.host_mut(host).ok_or_else(|| Self::no_host(host))?;
        if !h.routed {
            return match page {
                None => Ok(()),
                Some(_) => Err(ExecError::Permanent(format!(
                    "the service has no route on {host}: nothing to put in maintenance"
                ))),
            };
        }
        h.maintenance = page.cloned();
        Ok(())
    }

    async fn survey(&self, host: &str, service: &str, role: &str) -> Result<Survey, ExecError> {
        self.alive(false).await;
        let w = self.world();
        let h = w.host(host).ok_or_else(|| Self::no_host(host))?;
        let mut running: Vec<_> = h
            .containers
            .iter()
            .filter(|c| {
                c.role == role && c.state == ContainerState::Running && c.name.starts_with(service)
            })
            .collect();
        running.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Survey {
            containers: running.iter().map(|c| c.name.clone()).collect(),
            version: running.first().map(|c| c.version.clone()),
        })
    }
}
