//! Each deployment step, written once: what `execute` does and what `observe` answers,
//! over the host operations of `ops`. The Docker + Caddy hosts and the simulated world
//! both run this code, so the property tests exercise the same step logic as a real
//! deploy.
//!
//! Rules every step follows:
//! - it re-checks, at the moment it acts, what it depends on (the new container routed
//!   and healthy before the old one is unrouted or stopped; another routed, healthy
//!   upstream before the new one is removed);
//! - old containers are handled with what they were deployed with (their labels), never
//!   with today's config: dials are matched by container name whatever the port, and a
//!   drain counts every connection the container serves;
//! - the route's settings are written in the same change as its upstreams, so the proxy
//!   never judges a container by a health check it was not deployed with.

mod health;
mod journal_copies;
mod marks;
mod ops;

pub use health::{await_healthy, check_of, dial_of, drain, healthy_now, port_of, JOB_SETTLE};
pub use marks::{clear_marks, mark_hosts, Mark, MarkRefusal};
pub use ops::{dial_container, ContainerView, HostOps, Probe, ProxySettings};

use odysseus_engine::machine::{Effect, Observation, Purpose, RoleKind, StepName};
use odysseus_engine::runtime::{ExecError, Executor, Survey};
use odysseus_engine::DeploymentId;

use crate::docker::spec::HttpCheck;

/// How long a drain waits between two checks that the new container still serves.
const DRAIN_SLICE_MS: u64 = 1_000;

/// The engine's `Executor`, for any host operations.
pub struct Steps<H> {
    pub ops: H,
    /// How many records of a deployment each host's copy of the journal is known to hold.
    copies: journal_copies::Known,
}

impl<H: HostOps> Steps<H> {
    pub fn new(ops: H) -> Self {
        Steps {
            ops,
            copies: Default::default(),
        }
    }

    async fn view(&self, host: &str, name: &str) -> Result<Option<ContainerView>, ExecError> {
        self.ops.container(host, name).await
    }

    /// The route's health check while `name` is the container that is to serve.
    async fn check_for(&self, host: &str, name: &str) -> Result<Option<HttpCheck>, ExecError> {
        Ok(match self.view(host, name).await? {
            Some(view) => check_of(&self.ops, &view),
            None => self.ops.proxy().and_then(|p| p.healthcheck),
        })
    }

    /// Is `name` routed (under any port) and healthy right now?
    async fn serving(&self, host: &str, name: &str, kind: RoleKind) -> Result<bool, ExecError> {
        if kind == RoleKind::Web {
            let routed = self
                .ops
                .route(host)
                .await?
                .unwrap_or_default()
                .iter()
                .any(|d| dial_container(d) == name);
            if !routed {
                return Ok(false);
            }
        }
        healthy_now(&self.ops, host, name, kind).await
    }

    async fn perform(&self, e: &Effect) -> Result<Observation, ExecError> {
        // The host-level fence: a deployer that lost its lock on this host stops here.
        self.ops.check_lock(&e.host).await?;
        let host = e.host.as_str();
        let web = e.kind == RoleKind::Web;
        let new = e.new_container.as_str();
        match e.step {
            StepName::StartNew => {
                if let Some(existing) = self.view(host, new).await? {
                    // Adopt: a redo after a crash finds the container it created.
                    if !existing.running {
                        self.ops.start(host, new).await?;
                    }
                    return Ok(Observation::Container { id: existing.id });
                }
                let settings = if web { self.ops.proxy() } else { None };
                let id = self.ops.create(e, settings.as_ref()).await?;
                self.ops.start(host, new).await?;
                Ok(Observation::Container { id })
            }
            StepName::AwaitHealthy => {
                await_healthy(&self.ops, host, new, e.kind, e.timeouts.boot_ms).await?;
                Ok(Observation::Done)
            }
            StepName::AddUpstream => {
                if web {
                    // Never route what is not healthy, even when redone after a crash.
                    let view = match self.view(host, new).await? {
                        Some(v) if healthy_now(&self.ops, host, new, e.kind).await? => v,
                        _ => {
                            return Err(ExecError::Permanent(format!(
                                "{new} is not healthy: not routing it"
                            )))
                        }
                    };
                    let dial = dial_of(&self.ops, host, new, &view).await?;
                    // While old containers serve, the route keeps judging by their check:
                    // should the new one fail now, they must not be marked down by a path
                    // they never served. The check moves with the traffic, in
                    // remove-old-upstream.
                    let check = match self.routed_old(e).await? {
                        Some(old) => self.check_for(host, &old).await?,
                        None => check_of(&self.ops, &view),
                    };
                    self.ops
                        .write_route(host, check.as_ref(), &|u| {
                            u.retain(|d| dial_container(d) != new || *d == dial);
                            if !u.contains(&dial) {
                                u.push(dial.clone());
                            }
                        })
                        .await?;
                }
                Ok(Observation::Done)
            }
            StepName::RemoveOldUpstream => {
                if self.ops.route(host).await?.is_none() {
                    return Ok(Observation::Count { n: 0 });
                }
                self.new_must_serve(e, "unrouting the old containers")
                    .await?;
                let check = self.check_for(host, new).await?;
                let olds = &e.old_containers;
                let (before, after) = self
                    .ops
                    .write_route(host, check.as_ref(), &|u| {
                        // Inside the read-modify-write: only while the new one is there.
                        if u.iter().any(|d| dial_container(d) == new) {
                            u.retain(|d| !olds.iter().any(|o| o == dial_container(d)))
                        }
                    })
                    .await?;
                if after
                    .iter()
                    .any(|d| olds.iter().any(|o| o == dial_container(d)))
                {
                    return Err(ExecError::Retryable(format!(
                        "{new} left the route while the old containers were being unrouted: not unrouting them"
                    )));
                }
                Ok(Observation::Count {
                    n: (before.len() - after.len()) as u32,
                })
            }
            StepName::DrainOld => {
                // A second at a time, and between two the new container must still
                // serve: if it dies now, the old one is wanted back at once, not after the
                // whole drain.
                let started = tokio::time::Instant::now();
                let drain_ms = e.timeouts.drain_ms;
                loop {
                    let spent = started.elapsed().as_millis() as u64;
                    let slice = DRAIN_SLICE_MS.min(drain_ms.saturating_sub(spent));
                    let (_, remaining) = drain(&self.ops, host, &e.old_containers, slice).await?;
                    let waited_ms = started.elapsed().as_millis() as u64;
                    if remaining == 0 || waited_ms >= drain_ms {
                        return Ok(Observation::Drained {
                            waited_ms,
                            remaining,
                        });
                    }
                    if e.purpose == Purpose::Deploy {
                        self.new_must_serve(e, "waiting for the old containers to drain")
                            .await?;
                    }
                }
            }
            StepName::StopOld => {
                if e.purpose == Purpose::Deploy {
                    self.new_must_serve(e, "stopping the old containers")
                        .await?;
                }
                let routed = if web {
                    self.ops.route(host).await?.unwrap_or_default()
                } else {
                    Vec::new()
                };
                let mut n = 0;
                for old in &e.old_containers {
                    // Never stop a container the proxy still sends requests to.
                    if routed.iter().any(|d| dial_container(d) == old) {
                        return Err(ExecError::Retryable(format!(
                            "{old} is routed again: not stopping it"
                        )));
                    }
                    if self.view(host, old).await?.is_some_and(|c| c.running) {
                        self.ops.stop(host, old, e.timeouts.stop_ms).await?;
                        n += 1;
                    }
                }
                Ok(Observation::Count { n })
            }
            StepName::CleanStaleUpstreams => {
                // The target's last word: it is done only while its new container serves.
                self.new_must_serve(e, "calling the target done").await?;
                let current = self.ops.route(host).await?.unwrap_or_default();
                let mut stale = Vec::new();
                for dial in current {
                    let running = self
                        .view(host, dial_container(&dial))
                        .await?
                        .is_some_and(|c| c.running);
                    if !running {
                        stale.push(dial);
                    }
                }
                let check = self.check_for(host, new).await?;
                self.ops
                    .write_route(host, check.as_ref(), &|u| u.retain(|d| !stale.contains(d)))
                    .await?;
                Ok(Observation::Count {
                    n: stale.len() as u32,
                })
            }
            // A cleanup's steps (`odysseus cleanup`): the service leaves the host.
            StepName::UnrouteOld => {
                let Some(dials) = self.ops.route(host).await? else {
                    return Ok(Observation::Count { n: 0 });
                };
                let olds = &e.old_containers;
                if !dials
                    .iter()
                    .any(|d| olds.iter().any(|o| o == dial_container(d)))
                {
                    return Ok(Observation::Count { n: 0 });
                }
                // The route keeps the check its containers were deployed with.
                let check = self.check_for(host, &olds[0]).await?;
                let (before, after) = self
                    .ops
                    .write_route(host, check.as_ref(), &|u| {
                        u.retain(|d| !olds.iter().any(|o| o == dial_container(d)))
                    })
                    .await?;
                Ok(Observation::Count {
                    n: (before.len() - after.len()) as u32,
                })
            }
            StepName::RemoveOld => {
                let routed = if web {
                    self.ops.route(host).await?.unwrap_or_default()
                } else {
                    Vec::new()
                };
                let mut n = 0;
                for old in &e.old_containers {
                    let Some(view) = self.view(host, old).await? else {
                        continue;
                    };
                    // Removing is the last thing done to a container: only once it is out
                    // of the route and stopped (by stop-old, with its drain).
                    if routed.iter().any(|d| dial_container(d) == old) {
                        return Err(ExecError::Retryable(format!(
                            "{old} is routed again: not removing it"
                        )));
                    }
                    if view.running {
                        return Err(ExecError::Retryable(format!(
                            "{old} runs again: not removing it"
                        )));
                    }
                    self.ops.remove(host, old).await?;
                    n += 1;
                }
                Ok(Observation::Count { n })
            }
            StepName::RemoveRoute => {
                let dials = self.ops.route(host).await?.unwrap_or_default();
                if !dials.is_empty() {
                    return Err(ExecError::Retryable(format!(
                        "the route still sends to {}: not removing it",
                        dials.join(", ")
                    )));
                }
                self.ops.remove_route(host).await?;
                Ok(Observation::Done)
            }
            StepName::EnterMaintenance => {
                let Some(page) = e.page.as_ref() else {
                    return Err(ExecError::Permanent(
                        "this maintenance deployment recorded no page".into(),
                    ));
                };
                self.ops.set_maintenance(host, Some(page)).await?;
                Ok(Observation::Done)
            }
            StepName::LeaveMaintenance => {
                self.ops.set_maintenance(host, None).await?;
                Ok(Observation::Done)
            }
            StepName::RestoreOldUpstream => {
                for old in &e.old_containers {
                    match self.view(host, old).await? {
                        None => {
                            return Err(ExecError::Permanent(format!(
                                "old container {old} no longer exists; it cannot be restored"
                            )))
                        }
                        Some(c) if !c.running => self.ops.start(host, old).await?,
                        Some(_) => {}
                    }
                }
                let mut dials = Vec::new();
                let mut check = None;
                for old in &e.old_containers {
                    await_healthy(&self.ops, host, old, e.kind, e.timeouts.boot_ms)
                        .await
                        .map_err(|err| match err {
                            ExecError::Permanent(m) => ExecError::Retryable(m),
                            other => other,
                        })?;
                    if web {
                        if let Some(view) = self.view(host, old).await? {
                            dials.push(dial_of(&self.ops, host, old, &view).await?);
                            check = check.or_else(|| check_of(&self.ops, &view));
                        }
                    }
                }
                if web {
                    self.ops
                        .write_route(host, check.as_ref(), &|u| {
                            for d in &dials {
                                if !u.contains(d) {
                                    u.push(d.clone())
                                }
                            }
                        })
                        .await?;
                }
                Ok(Observation::Done)
            }
            StepName::RemoveNew => {
                // The new container goes only when an old one serves in its place (a
                // first deploy had none to begin with).
                let mut serving_old = None;
                for old in &e.old_containers {
                    if self.serving(host, old, e.kind).await? {
                        serving_old = Some(old.clone());
                        break;
                    }
                }
                if !e.old_containers.is_empty() && serving_old.is_none() {
                    return Err(ExecError::Retryable(format!(
                        "no old container of {} is {}healthy: not removing {new}, the last one that could serve",
                        e.role,
                        if web { "routed and " } else { "" }
                    )));
                }
                // Undo must not depend on creating anything: with no route there is
                // nothing to unroute.
                if web && self.ops.route(host).await?.is_some() {
                    let check = match &serving_old {
                        Some(old) => self.check_for(host, old).await?,
                        None => self.check_for(host, new).await?,
                    };
                    self.ops
                        .write_route(host, check.as_ref(), &|u| {
                            u.retain(|d| dial_container(d) != new)
                        })
                        .await?;
                    drain(
                        &self.ops,
                        host,
                        std::slice::from_ref(&e.new_container),
                        e.timeouts.drain_ms,
                    )
                    .await?;
                }
                if self.view(host, new).await?.is_some_and(|c| c.running) {
                    self.ops.stop(host, new, e.timeouts.stop_ms).await?;
                }
                self.ops.remove(host, new).await?;
                Ok(Observation::Done)
            }
        }
    }

    /// The first old container of the target that the route sends requests to now.
    async fn routed_old(&self, e: &Effect) -> Result<Option<String>, ExecError> {
        let dials = self.ops.route(&e.host).await?.unwrap_or_default();
        Ok(e.old_containers
            .iter()
            .find(|o| dials.iter().any(|d| dial_container(d) == o.as_str()))
            .cloned())
    }

    /// The new container must serve (routed, for the web role, and healthy) before the
    /// old ones lose their traffic or stop: a container that died or turned unhealthy
    /// since its own step must not be left alone.
    async fn new_must_serve(&self, e: &Effect, doing: &str) -> Result<(), ExecError> {
        if self.serving(&e.host, &e.new_container, e.kind).await? {
            return Ok(());
        }
        Err(ExecError::Retryable(format!(
            "{} is not {}healthy now: not {doing}",
            e.new_container,
            if e.kind == RoleKind::Web {
                "routed and "
            } else {
                ""
            }
        )))
    }

    /// Has the step taken effect? Answered from the world, never from memory.
    async fn look(&self, e: &Effect) -> Result<Option<Observation>, ExecError> {
        let host = e.host.as_str();
        let web = e.kind == RoleKind::Web;
        let new = e.new_container.as_str();
        let routed = || async {
            if !web {
                return Ok::<Vec<String>, ExecError>(Vec::new());
            }
            Ok(self.ops.route(host).await?.unwrap_or_default())
        };
        let names = |dials: &[String], name: &str| dials.iter().any(|d| dial_container(d) == name);
        let done = match e.step {
            StepName::StartNew => {
                return Ok(self
                    .view(host, new)
                    .await?
                    .filter(|c| c.running)
                    .map(|c| Observation::Container { id: c.id }))
            }
            StepName::AwaitHealthy => healthy_now(&self.ops, host, new, e.kind).await?,
            StepName::AddUpstream => !web || names(&routed().await?, new),
            StepName::RemoveOldUpstream => {
                let dials = routed().await?;
                e.old_containers.iter().all(|o| !names(&dials, o))
            }
            StepName::DrainOld => drain(&self.ops, host, &e.old_containers, 0).await?.1 == 0,
            StepName::StopOld => {
                let mut all_stopped = true;
                for old in &e.old_containers {
                    all_stopped &= !self.view(host, old).await?.is_some_and(|c| c.running);
                }
                all_stopped
            }
            StepName::CleanStaleUpstreams => {
                // Done means what the step itself requires too: the new one serves.
                let mut clean = self.serving(host, new, e.kind).await?;
                for dial in routed().await? {
                    clean &= self
                        .view(host, dial_container(&dial))
                        .await?
                        .is_some_and(|c| c.running);
                }
                clean
            }
            StepName::RestoreOldUpstream => {
                let dials = routed().await?;
                let mut ok = true;
                for old in &e.old_containers {
                    ok &= !web || names(&dials, old);
                    ok &= ok && healthy_now(&self.ops, host, old, e.kind).await?;
                }
                ok
            }
            StepName::RemoveNew => {
                self.view(host, new).await?.is_none() && !names(&routed().await?, new)
            }
            StepName::UnrouteOld => {
                let dials = routed().await?;
                e.old_containers.iter().all(|o| !names(&dials, o))
            }
            StepName::RemoveOld => {
                let mut gone = true;
                for old in &e.old_containers {
                    gone &= self.view(host, old).await?.is_none();
                }
                gone
            }
            StepName::RemoveRoute => self.ops.route(host).await?.is_none(),
            StepName::EnterMaintenance => {
                e.page.is_some() && self.ops.maintenance(host).await? == e.page
            }
            StepName::LeaveMaintenance => {
                // Done where the route answers from its containers again (a route that
                // is gone is in no maintenance either).
                self.ops.maintenance(host).await?.is_none()
            }
        };
        Ok(done.then_some(match e.step {
            StepName::RemoveOldUpstream
            | StepName::StopOld
            | StepName::CleanStaleUpstreams
            | StepName::UnrouteOld
            | StepName::RemoveOld => Observation::Count { n: 0 },
            StepName::DrainOld => Observation::Drained {
                waited_ms: 0,
                remaining: 0,
            },
            _ => Observation::Done,
        }))
    }
}

impl<H: HostOps> Executor for Steps<H> {
    async fn execute(&self, effect: &Effect) -> Result<Observation, ExecError> {
        match self.perform(effect).await {
            Err(e) => Err(self.ops.explain(&effect.host, e).await),
            ok => ok,
        }
    }

    async fn observe(&self, effect: &Effect) -> Result<Option<Observation>, ExecError> {
        match self.look(effect).await {
            Err(e) => Err(self.ops.explain(&effect.host, e).await),
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
        self.ops.survey(host, service, role).await
    }

    async fn survey_all(&self, service: &str, role: &str, host: &str) -> Result<Survey, ExecError> {
        self.ops.survey_all(host, service, role).await
    }

    async fn replicate(
        &self,
        service: &str,
        deployment: DeploymentId,
        records: &[Vec<u8>],
        hosts: &[String],
        changing: &[String],
    ) -> Vec<(String, ExecError)> {
        journal_copies::replicate(
            &self.ops,
            &self.copies,
            service,
            deployment,
            records,
            hosts,
            changing,
        )
        .await
    }
}
