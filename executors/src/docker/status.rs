//! What a host runs for a service right now, read from its engine and its Caddy.

use odysseus_engine::runtime::ExecError;
use serde::Serialize;

use super::executor::DockerExecutor;

#[derive(Debug, Clone, Serialize)]
pub struct ContainerStatus {
    pub name: String,
    pub role: String,
    pub version: String,
    pub running: bool,
    /// Docker's health status, when the container has a health check.
    pub health: Option<String>,
    pub routed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub host: String,
    pub containers: Vec<ContainerStatus>,
    /// The service's Caddy upstreams; `None` when the host has no route for it.
    pub upstreams: Option<Vec<String>>,
    /// The path of the route's active health check, as Caddy holds it.
    pub route_health_path: Option<String>,
    /// The page the route answers with instead of the containers (`app maintenance`).
    pub maintenance: Option<odysseus_engine::machine::MaintenancePage>,
    /// The mark of an unfinished deployment on the host (its id and driver).
    pub unfinished_mark: Option<String>,
    pub lock_holder: Option<String>,
    /// Why the lock could not be looked at (its directory refused, say): the host
    /// answered, so the rest of its status stands.
    pub lock_problem: Option<String>,
}

impl DockerExecutor {
    pub async fn host_status(&self, host: &str) -> Result<HostStatus, ExecError> {
        let h = self.host(host)?;
        let service = &self.spec().service;
        let upstreams = super::route::dials(&h.engine, &h.admin, service)
            .await
            .unwrap_or(None);
        let mut containers = Vec::new();
        for (_, name, labels) in h
            .engine
            .list(&[("odysseus.service", service)], true)
            .await?
        {
            let info = h.engine.inspect(&name).await?;
            let routed = upstreams.as_ref().is_some_and(|u| {
                u.iter()
                    .any(|d| d.rsplit_once(':').map(|(n, _)| n) == Some(name.as_str()))
            });
            containers.push(ContainerStatus {
                role: labels.get("odysseus.role").cloned().unwrap_or_default(),
                version: labels.get("odysseus.version").cloned().unwrap_or_default(),
                running: info.as_ref().is_some_and(|i| i.running),
                health: info.and_then(|i| i.health),
                routed,
                name,
            });
        }
        containers
            .sort_by(|a, b| (!a.running, &a.role, &a.name).cmp(&(!b.running, &b.role, &b.name)));
        let (lock_holder, lock_problem) = match self.lock_holder(host, service).await {
            Ok(holder) => (holder, None),
            Err(e) => (None, Some(e.to_string())),
        };
        let route_health_path = h.admin.route_health_path(service).await.unwrap_or(None);
        let maintenance = super::maintenance::current(&h.engine, &h.admin, service)
            .await
            .unwrap_or(None);
        let unfinished_mark = self
            .read_mark(host)
            .await?
            .map(|m| format!("{} ({})", m.deployment, m.owner.trim()));
        Ok(HostStatus {
            host: host.to_string(),
            containers,
            upstreams,
            route_health_path,
            maintenance,
            unfinished_mark,
            lock_holder,
            lock_problem,
        })
    }
}
