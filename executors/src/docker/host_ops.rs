//! The host operations of a real deploy: Docker engine calls (bollard), Caddy admin API
//! calls, and probes and connection counts taken from the host's side (locally, or on
//! the server through the SSH connection). The steps themselves live in `crate::steps`.

use std::collections::HashMap;

use bollard::models::HealthConfig;
use odysseus_engine::machine::{Effect, MaintenancePage};
use odysseus_engine::runtime::{Clock, ExecError, Survey, SystemClock};

use super::caddy::{ensure_caddy, CADDY_CONTAINER};
use super::engine::NewContainer;
use super::executor::{secs_ns, DockerExecutor, HostHandle};
use super::probe::{count_inbound, listening_ports};
use super::route;
use super::spec::{ExpectStatus, HttpCheck};
use crate::steps::{ContainerView, HostOps, Mark, Probe, ProxySettings};

/// Labels that record what a container was deployed with, so a later deployment (or
/// its undo) handles it by them rather than by today's config.
pub const LABEL_APP_PORT: &str = "odysseus.app_port";
/// The HTTP check's path; empty when it was deployed without one.
pub const LABEL_HEALTH_PATH: &str = "odysseus.health_path";
const LABEL_HEALTH_EXPECT: &str = "odysseus.health_expect";
const LABEL_HEALTH_INTERVAL: &str = "odysseus.health_interval";
const LABEL_HEALTH_TIMEOUT: &str = "odysseus.health_timeout";

/// The HTTP check a container was deployed with, from its labels: `None` for a container
/// from before the labels, `Some(None)` for one deployed without a check.
fn labelled_check(labels: &HashMap<String, String>) -> Option<Option<HttpCheck>> {
    let path = labels.get(LABEL_HEALTH_PATH)?;
    if path.is_empty() {
        return Some(None);
    }
    let number = |key: &str, default: u64| {
        labels
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Some(Some(HttpCheck {
        path: path.clone(),
        interval_s: number(LABEL_HEALTH_INTERVAL, 1),
        timeout_s: number(LABEL_HEALTH_TIMEOUT, 2),
        expect: labels
            .get(LABEL_HEALTH_EXPECT)
            .and_then(|e| ExpectStatus::from_label(e))
            .unwrap_or(ExpectStatus::Any2xx),
    }))
}

fn check_labels(check: Option<&HttpCheck>) -> Vec<(String, String)> {
    match check {
        None => vec![(LABEL_HEALTH_PATH.into(), String::new())],
        Some(hc) => vec![
            (LABEL_HEALTH_PATH.into(), hc.path.clone()),
            (LABEL_HEALTH_EXPECT.into(), hc.expect.to_label()),
            (LABEL_HEALTH_INTERVAL.into(), hc.interval_s.to_string()),
            (LABEL_HEALTH_TIMEOUT.into(), hc.timeout_s.to_string()),
        ],
    }
}

impl DockerExecutor {
    /// The service's upstreams on a host; None when it has no route — also when the host
    /// has no Caddy at all (a first deploy that failed before anything was routed), so an
    /// undo never depends on a Caddy that was never created.
    async fn upstreams(&self, h: &HostHandle) -> Result<Option<Vec<String>>, ExecError> {
        match route::dials(&h.engine, &h.admin, &self.spec().service).await {
            Ok(u) => Ok(u),
            Err(e) => match h.engine.inspect(CADDY_CONTAINER).await? {
                None => Ok(None),
                Some(_) => Err(e),
            },
        }
    }

    /// Caddy running on the host, odysseus's server and the service's route in it.
    async fn ensure_route(
        &self,
        h: &HostHandle,
        proxy: &super::spec::ProxySpec,
    ) -> Result<(), ExecError> {
        let spec = self.spec();
        ensure_caddy(
            &h.engine,
            &h.admin,
            proxy,
            spec.network_subnet.as_deref(),
            spec.registry.as_ref(),
        )
        .await?;
        h.admin.ensure_route(&spec.service, proxy).await
    }

    /// Once per host and run, before odysseus first writes a route there: the admin API
    /// kept on Caddy's loopback (an older odysseus left it on every interface), and
    /// whether upstream changes go through slots (no Caddy reload), said once when they
    /// cannot.
    pub(crate) async fn prepare_caddy(
        &self,
        host: &str,
        h: &HostHandle,
    ) -> Result<bool, ExecError> {
        h.slots
            .get_or_try_init(|| async {
                if h.admin.keep_admin_on_loopback().await? {
                    tracing::info!("{host}: Caddy's admin API moved onto its container's loopback");
                }
                Ok(match route::can_use_slots(&h.engine).await {
                    Ok(()) => true,
                    Err(why) => {
                        tracing::warn!(
                            "{host}: every upstream change reloads Caddy ({why}); a reload closes idle keep-alive connections, so a client may see one closed without a response at each switch. Use caddy:2-alpine 2.8 or later (proxy.image)"
                        );
                        false
                    }
                })
            })
            .await
            .copied()
    }

    async fn pid_of(&self, host: &str, name: &str) -> Result<Option<i64>, ExecError> {
        Ok(self
            .host(host)?
            .engine
            .inspect(name)
            .await?
            .filter(|c| c.running)
            .and_then(|c| c.pid))
    }
}

impl DockerExecutor {
    /// The role's containers on the host (running ones, or `all`), sorted by name, with
    /// the version the first one's label says.
    async fn role_containers(
        &self,
        host: &str,
        service: &str,
        role: &str,
        all: bool,
    ) -> Result<Survey, ExecError> {
        let h = self.host(host)?;
        let list = h
            .engine
            .list(
                &[("odysseus.service", service), ("odysseus.role", role)],
                all,
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

impl HostOps for DockerExecutor {
    fn proxy(&self) -> Option<ProxySettings> {
        self.spec().proxy.as_ref().map(|p| ProxySettings {
            app_port: p.app_port,
            healthcheck: p.healthcheck.clone(),
        })
    }

    async fn check_lock(&self, host: &str) -> Result<(), ExecError> {
        DockerExecutor::check_lock(self, host).await
    }

    async fn container(&self, host: &str, name: &str) -> Result<Option<ContainerView>, ExecError> {
        Ok(self
            .host(host)?
            .engine
            .inspect(name)
            .await?
            .map(|c| ContainerView {
                app_port: c.labels.get(LABEL_APP_PORT).and_then(|p| p.parse().ok()),
                health_check: labelled_check(&c.labels),
                id: c.id,
                running: c.running,
                started: c.started,
                health: c.health,
            }))
    }

    async fn create(
        &self,
        e: &Effect,
        settings: Option<&ProxySettings>,
    ) -> Result<String, ExecError> {
        let spec = self.spec();
        let h = self.host(&e.host)?;
        let role = spec
            .role(&e.role)
            .ok_or_else(|| ExecError::Permanent(format!("role {} is not in the config", e.role)))?;
        h.engine
            .ensure_network(spec.network_subnet.as_deref())
            .await?;
        let image = e.image_ref();
        h.engine
            .ensure_image(&image, spec.registry.as_ref())
            .await?;
        // The tag must still name the image the deployment recorded: a tag moved (a
        // push, a pull) during the deployment would mix two images in one fleet.
        if let Some(recorded) = &e.image_id {
            let now = h.engine.image_id(&image).await?;
            if now.as_deref() != Some(recorded.as_str()) {
                return Err(ExecError::Permanent(format!(
                    "{image} on {} is now {}, not {recorded} that this deployment recorded: the tag moved during the deployment; roll it back (--abort), then deploy again to take the new image",
                    e.host,
                    now.as_deref().unwrap_or("missing")
                )));
            }
        }
        let mut labels: HashMap<String, String> = [
            ("odysseus.service", e.service.clone()),
            ("odysseus.role", e.role.clone()),
            ("odysseus.version", e.version.clone()),
            ("odysseus.deployment", e.deployment.to_string()),
            ("odysseus.deployed_at", SystemClock.now().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        // Only a version that is a commit's short id (12 hex digits) names a commit: a tag
        // like `1` or `beef` merely starting HEAD's id does not.
        let is_short_id = e.version.len() == 12 && e.version.chars().all(|c| c.is_ascii_hexdigit());
        if let Some(commit) = spec
            .git_commit
            .as_ref()
            .filter(|c| is_short_id && c.starts_with(&e.version))
        {
            labels.insert("odysseus.git-commit".into(), commit.clone());
        }
        if let Some(s) = settings {
            labels.insert(LABEL_APP_PORT.into(), s.app_port.to_string());
            labels.extend(check_labels(s.healthcheck.as_ref()));
        }
        let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let healthcheck = role.healthcheck.as_ref().map(|hc| HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), hc.cmd.clone()]),
            interval: Some(secs_ns(hc.interval_s)),
            timeout: Some(secs_ns(hc.timeout_s)),
            retries: Some(i64::from(hc.retries)),
            ..Default::default()
        });
        h.engine
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
                oneoff: None,
            })
            .await
    }

    async fn start(&self, host: &str, name: &str) -> Result<(), ExecError> {
        self.host(host)?.engine.start(name).await
    }

    async fn stop(&self, host: &str, name: &str, stop_ms: u64) -> Result<(), ExecError> {
        self.host(host)?.engine.stop(name, stop_ms / 1000).await
    }

    async fn remove(&self, host: &str, name: &str) -> Result<(), ExecError> {
        self.host(host)?.engine.remove(name).await
    }

    async fn probe(&self, host: &str, name: &str, port: u16, probe: Probe<'_>) -> bool {
        let Ok(h) = self.host(host) else {
            return false;
        };
        let Ok(Some(info)) = h.engine.inspect(name).await else {
            return false;
        };
        let Some(ip) = info.ip.as_deref() else {
            return false;
        };
        match probe {
            Probe::Tcp => h.tcp_ok(ip, port).await,
            Probe::Http { path, expect } => h.http_ok(ip, port, path, expect).await,
        }
    }

    async fn listening_ports(&self, host: &str, name: &str) -> Result<Vec<u16>, ExecError> {
        match self.pid_of(host, name).await? {
            Some(pid) => Ok(listening_ports(&self.host(host)?.tcp_tables(pid).await?)),
            None => Ok(Vec::new()),
        }
    }

    async fn inbound_connections(&self, host: &str, name: &str) -> Result<u32, ExecError> {
        match self.pid_of(host, name).await? {
            Some(pid) => Ok(count_inbound(&self.host(host)?.tcp_tables(pid).await?)),
            None => Ok(0),
        }
    }

    async fn last_logs(&self, host: &str, name: &str) -> String {
        match self.host(host) {
            Ok(h) => crate::redact::clean(
                &h.engine.last_logs(name, 20).await,
                &self.spec().secret_values,
            ),
            Err(_) => String::new(),
        }
    }

    async fn survey_all(&self, host: &str, service: &str, role: &str) -> Result<Survey, ExecError> {
        self.role_containers(host, service, role, true).await
    }

    async fn remove_route(&self, host: &str) -> Result<bool, ExecError> {
        let h = self.host(host)?;
        if h.engine.inspect(CADDY_CONTAINER).await?.is_none() {
            return Ok(false);
        }
        let service = &self.spec().service;
        let had = h.admin.remove_route(service).await?;
        // What only this service's route used: its upstream slots and its CA root.
        let _ = h
            .engine
            .exec(
                CADDY_CONTAINER,
                &[
                    "rm",
                    "-rf",
                    &super::slots::slot_dir(service),
                    &super::maintenance::page_dir(service),
                    &super::caddy::ca_root_path(service),
                ],
            )
            .await;
        // The shared Caddy goes only when nothing else is routed through it (its volumes,
        // with certificates and ACME account, stay).
        if !h.admin.any_route().await? {
            h.engine.stop(CADDY_CONTAINER, 10).await?;
            h.engine.remove(CADDY_CONTAINER).await?;
        }
        Ok(had)
    }

    async fn maintenance(&self, host: &str) -> Result<Option<MaintenancePage>, ExecError> {
        let h = self.host(host)?;
        if h.engine.inspect(CADDY_CONTAINER).await?.is_none() {
            return Ok(None);
        }
        super::maintenance::current(&h.engine, &h.admin, &self.spec().service).await
    }

    async fn set_maintenance(
        &self,
        host: &str,
        page: Option<&MaintenancePage>,
    ) -> Result<(), ExecError> {
        let h = self.host(host)?;
        let service = &self.spec().service;
        if h.engine.inspect(CADDY_CONTAINER).await?.is_none() {
            return match page {
                None => Ok(()),
                Some(_) => Err(ExecError::Permanent(format!(
                    "{host} runs no {CADDY_CONTAINER}: {service} is not routed there (deploy it first)"
                ))),
            };
        }
        let files = match h.slots.get() {
            Some(known) => *known,
            None => self.prepare_caddy(host, h).await?,
        };
        super::maintenance::set(&h.engine, &h.admin, service, page, files).await
    }

    async fn route(&self, host: &str) -> Result<Option<Vec<String>>, ExecError> {
        self.upstreams(self.host(host)?).await
    }

    async fn write_route(
        &self,
        host: &str,
        health: Option<&HttpCheck>,
        edit: &dyn Fn(&mut Vec<String>),
    ) -> Result<(Vec<String>, Vec<String>), ExecError> {
        let spec = self.spec();
        let h = self.host(host)?;
        let proxy = spec
            .proxy
            .as_ref()
            .ok_or_else(|| ExecError::Permanent("the web role needs a proxy section".into()))?;
        // Once per run and host: Caddy running, the TLS policy as deploy.yml says now
        // (ssl, email, CA may change between releases), the route in the server its ssl
        // says (see caddy_servers). Each check is a round trip to the host, so only once.
        h.route_checked
            .get_or_try_init(|| self.ensure_route(h, proxy))
            .await?;
        let slots = match h.slots.get() {
            Some(known) => *known,
            None => self.prepare_caddy(host, h).await?,
        };
        let write = || {
            route::write(
                &h.engine,
                &h.admin,
                &spec.service,
                proxy,
                health,
                slots,
                edit,
            )
        };
        if let Some(written) = write().await? {
            return Ok(written);
        }
        self.ensure_route(h, proxy).await?;
        write()
            .await?
            .ok_or_else(|| ExecError::Retryable(format!("Caddy has no route for {}", spec.service)))
    }

    async fn survey(&self, host: &str, service: &str, role: &str) -> Result<Survey, ExecError> {
        self.role_containers(host, service, role, false).await
    }

    async fn mark(&self, host: &str) -> Result<Option<Mark>, ExecError> {
        self.read_mark(host).await
    }

    async fn create_mark(&self, host: &str, mark: &Mark) -> Result<(), ExecError> {
        self.write_mark(host, mark).await
    }

    async fn remove_mark(&self, host: &str) -> Result<(), ExecError> {
        self.delete_mark(host).await
    }

    async fn journal_len(
        &self,
        host: &str,
        service: &str,
        deployment: odysseus_engine::DeploymentId,
    ) -> Result<u64, ExecError> {
        self.copy_len(host, service, deployment).await
    }

    async fn journal_append(
        &self,
        host: &str,
        service: &str,
        deployment: odysseus_engine::DeploymentId,
        from: u64,
        records: &[Vec<u8>],
    ) -> Result<(), ExecError> {
        self.append_copy(host, service, deployment, from, records)
            .await
    }

    async fn explain(&self, host: &str, e: ExecError) -> ExecError {
        crate::redact::clean_error(self.explain_lost(host, e).await, &self.spec().secret_values)
    }
}
