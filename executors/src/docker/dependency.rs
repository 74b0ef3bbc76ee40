//! Dependencies (deploy.yml's `dependencies`, once `accessories`): a database or a cache
//! beside the app, one long-running container per host, named `<service>-<name>` and
//! reachable under that name on the `odysseus` network. They are booted and removed on
//! request (`odysseus dependency`), never rolled by a deploy: replacing a database is not
//! a zero-downtime operation, and doing it implicitly would surprise.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::HealthConfig;
use odysseus_engine::machine::RoleKind;
use odysseus_engine::runtime::ExecError;

use super::engine::NewContainer;
use super::executor::{secs_ns, DockerExecutor};
use super::spec::{DependencySpec, Resources};

/// How long a dependency may take to become healthy (or, without a health check, to keep
/// running) when booted.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// What booting did on a host.
#[derive(Debug, PartialEq, Eq)]
pub enum Booted {
    AlreadyRunning,
    Started,
    Created,
}

/// How long a dependency gets to stop cleanly (a database flushing) before it is killed.
const DEPENDENCY_STOP_SECS: u64 = 30;

/// What an upgrade did on a host.
#[derive(Debug)]
pub struct Upgraded {
    /// The image the replaced container ran (`None`: there was none).
    pub from: Option<String>,
    /// From the old container's stop to the new one healthy.
    pub gap_ms: u64,
}

/// One dependency on one host, for `status`.
#[derive(Debug)]
pub struct DependencyState {
    pub container: String,
    pub running: bool,
    pub health: Option<String>,
    pub image: String,
}

pub fn container_name(service: &str, dependency: &str) -> String {
    format!("{service}-{dependency}")
}

impl DockerExecutor {
    /// Makes sure the dependency runs on `host`, healthy: an existing container is kept
    /// (started if stopped, never replaced), else one is created.
    pub async fn boot_dependency(
        &self,
        host: &str,
        dep: &DependencySpec,
    ) -> Result<Booted, ExecError> {
        let h = self.host(host)?;
        let name = container_name(&self.spec().service, &dep.name);
        h.engine
            .ensure_network(self.spec().network_subnet.as_deref())
            .await?;
        let outcome = match h.engine.inspect(&name).await? {
            Some(c) if c.running => return Ok(Booted::AlreadyRunning),
            Some(_) => {
                h.engine.start(&name).await?;
                Booted::Started
            }
            None => {
                h.engine
                    .ensure_image(&dep.image, self.spec().registry.as_ref())
                    .await?;
                let labels: HashMap<String, String> = [
                    ("odysseus.dependency", dep.name.clone()),
                    ("odysseus.dependency.service", self.spec().service.clone()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                let healthcheck = dep.healthcheck.as_ref().map(|hc| HealthConfig {
                    test: Some(vec!["CMD-SHELL".into(), hc.cmd.clone()]),
                    interval: Some(secs_ns(hc.interval_s)),
                    timeout: Some(secs_ns(hc.timeout_s)),
                    retries: Some(i64::from(hc.retries)),
                    ..Default::default()
                });
                let resources = Resources::default();
                h.engine
                    .create(NewContainer {
                        name: &name,
                        image: &dep.image,
                        cmd: dep.cmd.clone(),
                        env: dep.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                        labels,
                        binds: dep.volumes.clone(),
                        resources: &resources,
                        healthcheck,
                        publish: dep.ports.clone(),
                        aliases: vec![],
                        sysctls: vec![],
                        oneoff: None,
                    })
                    .await?;
                h.engine.start(&name).await?;
                Booted::Created
            }
        };
        // Health as for a job role: its Docker health check, else still running after a
        // moment.
        crate::steps::await_healthy(
            self,
            host,
            &name,
            RoleKind::Job,
            BOOT_TIMEOUT.as_millis() as u64,
        )
        .await?;
        Ok(outcome)
    }

    /// Stops and removes the dependency's container on `host` (its named volumes stay).
    pub async fn remove_dependency(
        &self,
        host: &str,
        dep: &DependencySpec,
    ) -> Result<bool, ExecError> {
        let h = self.host(host)?;
        let name = container_name(&self.spec().service, &dep.name);
        let Some(c) = h.engine.inspect(&name).await? else {
            return Ok(false);
        };
        if c.running {
            h.engine.stop(&name, DEPENDENCY_STOP_SECS).await?;
        }
        h.engine.remove(&name).await?;
        Ok(true)
    }

    /// Stops the dependency's container on `host` and starts it again (same container,
    /// same image), then waits until it is healthy. An absent one is an error: booting
    /// is `boot`'s job.
    pub async fn restart_dependency(
        &self,
        host: &str,
        dep: &DependencySpec,
    ) -> Result<(), ExecError> {
        let h = self.host(host)?;
        let name = self.dependency_container(host, dep).await?;
        h.engine.stop(&name, DEPENDENCY_STOP_SECS).await?;
        h.engine.start(&name).await?;
        crate::steps::await_healthy(
            self,
            host,
            &name,
            RoleKind::Job,
            BOOT_TIMEOUT.as_millis() as u64,
        )
        .await
    }

    /// Replaces the dependency's container on `host` with one made from deploy.yml as it
    /// is now (its image, env, ports, volumes): the image is pulled first, so the gap in
    /// service is only the stop, the start and the health check. Named volumes are kept.
    pub async fn upgrade_dependency(
        &self,
        host: &str,
        dep: &DependencySpec,
    ) -> Result<Upgraded, ExecError> {
        let h = self.host(host)?;
        let name = container_name(&self.spec().service, &dep.name);
        h.engine
            .ensure_image(&dep.image, self.spec().registry.as_ref())
            .await?;
        let before = h.engine.inspect(&name).await?.map(|c| c.image);
        let gap = std::time::Instant::now();
        if before.is_some() {
            h.engine.stop(&name, DEPENDENCY_STOP_SECS).await?;
            h.engine.remove(&name).await?;
        }
        self.boot_dependency(host, dep).await?;
        Ok(Upgraded {
            from: before,
            gap_ms: gap.elapsed().as_millis() as u64,
        })
    }

    /// The dependency's container on `host`, which must exist.
    pub async fn dependency_container(
        &self,
        host: &str,
        dep: &DependencySpec,
    ) -> Result<String, ExecError> {
        let h = self.host(host)?;
        let name = container_name(&self.spec().service, &dep.name);
        match h.engine.inspect(&name).await? {
            Some(_) => Ok(name),
            None => Err(ExecError::Permanent(format!(
                "{name} does not exist on {host}: `odysseus dependency boot {}` creates it",
                dep.name
            ))),
        }
    }

    pub async fn dependency_state(
        &self,
        host: &str,
        dep: &DependencySpec,
    ) -> Result<Option<DependencyState>, ExecError> {
        let h = self.host(host)?;
        let name = container_name(&self.spec().service, &dep.name);
        Ok(h.engine.inspect(&name).await?.map(|c| DependencyState {
            container: name,
            running: c.running,
            health: c.health,
            image: c.image,
        }))
    }
}
