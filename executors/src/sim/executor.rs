//! The simulated executor: performs effects on the simulated world with the same
//! idempotency and observe contract as the Docker/Caddy executors.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use odysseus_engine::machine::{Effect, Observation, RoleKind, StepName};
use odysseus_engine::runtime::{Clock, ExecError, Executor, Survey};
use odysseus_engine::Timestamp;
use tokio::time::Instant;

use super::faults::Injected;
use super::world::{ContainerState, World};

/// How often the simulated executor polls health and connection counts.
const POLL_MS: u64 = 250;

/// Virtual time: tokio's paused clock, reported as wall time from a fixed epoch so the
/// same seed gives the same timestamps.
#[derive(Clone)]
pub struct SimClock {
    base: Instant,
    epoch_ms: u64,
}

/// 2026-01-01T00:00:00Z: the simulated runs' wall clock starts here.
pub const SIM_EPOCH_MS: u64 = 1_767_225_600_000;

impl SimClock {
    pub fn new() -> Self {
        SimClock {
            base: Instant::now(),
            epoch_ms: SIM_EPOCH_MS,
        }
    }

    pub fn elapsed_ms(&self) -> u64 {
        Instant::now().duration_since(self.base).as_millis() as u64
    }
}

impl Default for SimClock {
    fn default() -> Self {
        SimClock::new()
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.epoch_ms + self.elapsed_ms())
    }
}

pub struct SimExecutor {
    pub world: Rc<RefCell<World>>,
    clock: SimClock,
}

impl SimExecutor {
    pub fn new(world: Rc<RefCell<World>>, clock: SimClock) -> Self {
        SimExecutor { world, clock }
    }

    /// Brings the world's clock to now and borrows it. Never held across an await.
    fn world(&self) -> std::cell::RefMut<'_, World> {
        let mut w = self.world.borrow_mut();
        w.now_ms = self.clock.elapsed_ms();
        w
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    fn gate(&self, host: &str, step: Option<StepName>) -> Injected {
        self.world().faults.next_call(host, step)
    }

    async fn perform(&self, e: &Effect) -> Result<Observation, ExecError> {
        let host = e.host.as_str();
        let web = e.kind == RoleKind::Web;
        match e.step {
            StepName::StartNew => {
                let id = self.world().create_or_start(
                    host,
                    &e.new_container,
                    &e.role,
                    web,
                    &e.version,
                    e.deployment,
                    e.timeouts.boot_ms,
                );
                Ok(Observation::Container { id })
            }
            StepName::AwaitHealthy => {
                let started = self.clock.elapsed_ms();
                loop {
                    {
                        let w = self.world();
                        let Some(c) = w.host(host).and_then(|h| h.container(&e.new_container))
                        else {
                            return Err(ExecError::Permanent(format!(
                                "container {} does not exist",
                                e.new_container
                            )));
                        };
                        if c.healthy(w.now_ms) {
                            return Ok(Observation::Done);
                        }
                        if c.state != ContainerState::Running {
                            return Err(ExecError::Permanent(format!(
                                "container {} is not running",
                                e.new_container
                            )));
                        }
                    }
                    if self.clock.elapsed_ms() - started >= e.timeouts.boot_ms {
                        return Err(ExecError::Permanent(format!(
                            "{} did not become healthy within {} ms",
                            e.new_container, e.timeouts.boot_ms
                        )));
                    }
                    self.sleep(POLL_MS).await;
                }
            }
            StepName::AddUpstream => {
                if web {
                    let mut w = self.world();
                    let healthy = w
                        .host(host)
                        .and_then(|h| h.container(&e.new_container))
                        .is_some_and(|c| c.healthy(w.now_ms));
                    if !healthy {
                        // Never route a container that is not healthy: refuse instead.
                        return Err(ExecError::Permanent(format!(
                            "{} is not healthy: not routing it",
                            e.new_container
                        )));
                    }
                    w.route(host, &e.new_container)
                        .map_err(ExecError::Permanent)?;
                }
                Ok(Observation::Done)
            }
            StepName::RemoveOldUpstream => {
                let mut w = self.world();
                let n = e
                    .old_containers
                    .iter()
                    .filter(|old| w.unroute(host, old, e.timeouts.drain_ms))
                    .count();
                Ok(Observation::Count { n: n as u32 })
            }
            StepName::DrainOld => {
                let (waited_ms, remaining) = self
                    .drain(host, &e.old_containers, e.timeouts.drain_ms)
                    .await;
                Ok(Observation::Drained {
                    waited_ms,
                    remaining,
                })
            }
            StepName::StopOld => {
                let mut w = self.world();
                let n = e
                    .old_containers
                    .iter()
                    .filter(|old| w.stop(host, old, e.timeouts.drain_ms))
                    .count();
                Ok(Observation::Count { n: n as u32 })
            }
            StepName::CleanStaleUpstreams => Ok(Observation::Count {
                n: self.world().clean_stale(host),
            }),
            StepName::RestoreOldUpstream => {
                for old in &e.old_containers {
                    if !self.world().restart(host, old, e.timeouts.boot_ms) {
                        return Err(ExecError::Permanent(format!(
                            "old container {old} no longer exists"
                        )));
                    }
                }
                let started = self.clock.elapsed_ms();
                loop {
                    let ready = {
                        let w = self.world();
                        let h = w.host(host).expect("simulated host exists");
                        e.old_containers
                            .iter()
                            .all(|old| h.container(old).is_some_and(|c| c.healthy(w.now_ms)))
                    };
                    if ready {
                        break;
                    }
                    if self.clock.elapsed_ms() - started >= e.timeouts.boot_ms {
                        return Err(ExecError::Retryable(
                            "old containers did not become healthy again".into(),
                        ));
                    }
                    self.sleep(POLL_MS).await;
                }
                if web {
                    let mut w = self.world();
                    for old in &e.old_containers {
                        w.route(host, old).map_err(ExecError::Retryable)?;
                    }
                }
                Ok(Observation::Done)
            }
            StepName::RemoveNew => {
                let name = std::slice::from_ref(&e.new_container);
                self.world()
                    .unroute(host, &e.new_container, e.timeouts.drain_ms);
                self.drain(host, name, e.timeouts.drain_ms).await;
                let mut w = self.world();
                w.stop(host, &e.new_container, e.timeouts.drain_ms);
                w.remove(host, &e.new_container);
                Ok(Observation::Done)
            }
        }
    }

    /// Waits until the containers have no request in flight, or the drain timeout.
    async fn drain(&self, host: &str, names: &[String], drain_ms: u64) -> (u64, u32) {
        let started = self.clock.elapsed_ms();
        loop {
            let remaining: u32 = {
                let w = self.world();
                let h = w.host(host).expect("simulated host exists");
                names
                    .iter()
                    .filter_map(|n| h.container(n))
                    .map(|c| c.inflight_at(w.now_ms))
                    .sum()
            };
            let waited = self.clock.elapsed_ms() - started;
            if remaining == 0 || waited >= drain_ms {
                return (waited, remaining);
            }
            self.sleep(POLL_MS.min(drain_ms - waited)).await;
        }
    }

    /// Has the step taken effect? Answered from the world, never from memory.
    fn look(&self, e: &Effect) -> Option<Observation> {
        let w = self.world();
        let now = w.now_ms;
        let h = w.host(&e.host)?;
        let new = h.container(&e.new_container);
        let routed = |name: &str| h.upstreams.iter().any(|u| u == name);
        let web = e.kind == RoleKind::Web;
        let done = match e.step {
            StepName::StartNew => {
                return new
                    .filter(|c| c.state == ContainerState::Running)
                    .map(|c| Observation::Container { id: c.id.clone() })
            }
            StepName::AwaitHealthy => new.is_some_and(|c| c.healthy(now)),
            StepName::AddUpstream => !web || routed(&e.new_container),
            StepName::RemoveOldUpstream => e.old_containers.iter().all(|o| !routed(o)),
            StepName::DrainOld => e
                .old_containers
                .iter()
                .all(|o| h.container(o).is_none_or(|c| c.inflight_at(now) == 0)),
            StepName::StopOld => e.old_containers.iter().all(|o| {
                h.container(o)
                    .is_none_or(|c| c.state != ContainerState::Running)
            }),
            StepName::CleanStaleUpstreams => h.upstreams.iter().all(|u| {
                h.container(u)
                    .is_some_and(|c| c.state == ContainerState::Running)
            }),
            StepName::RestoreOldUpstream => e
                .old_containers
                .iter()
                .all(|o| h.container(o).is_some_and(|c| c.healthy(now)) && (!web || routed(o))),
            StepName::RemoveNew => new.is_none() && !routed(&e.new_container),
        };
        done.then_some(match e.step {
            StepName::RemoveOldUpstream | StepName::StopOld | StepName::CleanStaleUpstreams => {
                Observation::Count { n: 0 }
            }
            StepName::DrainOld => Observation::Drained {
                waited_ms: 0,
                remaining: 0,
            },
            _ => Observation::Done,
        })
    }
}

impl Executor for SimExecutor {
    async fn execute(&self, e: &Effect) -> Result<Observation, ExecError> {
        match self.gate(&e.host, Some(e.step)) {
            Injected::None => self.perform(e).await,
            Injected::Fail { permanent: true } => Err(ExecError::Permanent(format!(
                "injected permanent failure of {}",
                e.step
            ))),
            Injected::Fail { permanent: false } => Err(ExecError::Retryable(format!(
                "injected failure of {}",
                e.step
            ))),
            Injected::Hang => std::future::pending().await,
            Injected::LoseReply => {
                self.perform(e).await?;
                Err(ExecError::OutcomeUnknown(format!(
                    "reply of {} lost",
                    e.step
                )))
            }
            Injected::Unreachable => Err(ExecError::OutcomeUnknown(format!(
                "{} is unreachable",
                e.host
            ))),
        }
    }

    async fn observe(&self, e: &Effect) -> Result<Option<Observation>, ExecError> {
        match self.gate(&e.host, None) {
            Injected::Unreachable => Err(ExecError::OutcomeUnknown(format!(
                "{} is unreachable",
                e.host
            ))),
            _ => Ok(self.look(e)),
        }
    }

    async fn survey(
        &self,
        service: &str,
        role: &str,
        _kind: RoleKind,
        host: &str,
    ) -> Result<Survey, ExecError> {
        let w = self.world();
        let h = w
            .host(host)
            .ok_or_else(|| ExecError::Permanent(format!("unknown host {host}")))?;
        let running: Vec<_> = h
            .containers
            .iter()
            .filter(|c| {
                c.role == role && c.state == ContainerState::Running && c.name.starts_with(service)
            })
            .collect();
        Ok(Survey {
            containers: running.iter().map(|c| c.name.clone()).collect(),
            version: running.first().map(|c| c.version.clone()),
        })
    }
}
