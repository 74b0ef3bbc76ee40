//! What a step may ask of a host: the small set of operations that the Docker + Caddy
//! host and the simulated world both implement. Everything a step decides is written
//! once, in `steps`, over this trait; only these operations differ between a real
//! deploy and a simulated one.

use odysseus_engine::machine::{Effect, MaintenancePage};
use odysseus_engine::runtime::{ExecError, Survey};
use odysseus_engine::DeploymentId;

use crate::docker::spec::{ExpectStatus, HttpCheck};

/// A container as a step sees it, read from the world at that moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerView {
    pub id: String,
    pub running: bool,
    /// Changes every time the container (re)starts (Docker's `State.StartedAt`): a job
    /// is settled when it stays running under one start.
    pub started: String,
    /// The container's own health status (`healthy`, `starting`, …); `None` when it has
    /// no health check.
    pub health: Option<String>,
    /// What odysseus deployed it with, from its labels (`None` for containers created
    /// before odysseus recorded them): its port, and its HTTP check (`Some(None)`:
    /// deployed without one).
    pub app_port: Option<u16>,
    pub health_check: Option<Option<HttpCheck>>,
}

/// How a probe asks whether a container serves.
#[derive(Clone, Copy, Debug)]
pub enum Probe<'a> {
    /// A TCP connection is accepted on the port.
    Tcp,
    /// An HTTP GET of the path answers with an accepted status.
    Http {
        path: &'a str,
        expect: &'a ExpectStatus,
    },
}

/// The proxy settings of today's config that steps need (None: no proxy section).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySettings {
    pub app_port: u16,
    pub healthcheck: Option<HttpCheck>,
}

/// The host operations. Every call names its host; every answer comes from the world,
/// never from memory. Mutating calls are idempotent where a step redo needs it.
#[allow(async_fn_in_trait)]
pub trait HostOps {
    /// Today's proxy settings (deploy.yml as loaded by this process).
    fn proxy(&self) -> Option<ProxySettings>;

    /// The host-level fence: fails once this process no longer holds the host's lock.
    async fn check_lock(&self, host: &str) -> Result<(), ExecError>;

    async fn container(&self, host: &str, name: &str) -> Result<Option<ContainerView>, ExecError>;
    /// Creates (does not start) the effect's new container, labelled with what it is
    /// deployed with (`settings`). Never called when a container of that name exists.
    async fn create(
        &self,
        effect: &Effect,
        settings: Option<&ProxySettings>,
    ) -> Result<String, ExecError>;
    async fn start(&self, host: &str, name: &str) -> Result<(), ExecError>;
    async fn stop(&self, host: &str, name: &str, stop_ms: u64) -> Result<(), ExecError>;
    async fn remove(&self, host: &str, name: &str) -> Result<(), ExecError>;
    /// Asks from the host's side whether the container serves on `port`.
    async fn probe(&self, host: &str, name: &str, port: u16, probe: Probe<'_>) -> bool;
    /// The TCP ports the container listens on.
    async fn listening_ports(&self, host: &str, name: &str) -> Result<Vec<u16>, ExecError>;
    /// Established connections to any port the container listens on: the requests it
    /// still serves.
    async fn inbound_connections(&self, host: &str, name: &str) -> Result<u32, ExecError>;
    /// The container's last output lines, for a failure report.
    async fn last_logs(&self, host: &str, name: &str) -> String;

    /// The service's upstream dials (`name:port`); `None` when it has no route (also
    /// when the host has no proxy at all).
    async fn route(&self, host: &str) -> Result<Option<Vec<String>>, ExecError>;
    /// Writes the service's route in one change: its settings from `health` and today's
    /// config, its upstreams edited by `edit`. Creates the proxy and the route when
    /// missing; writes nothing when nothing differs. Returns the dials before and after.
    async fn write_route(
        &self,
        host: &str,
        health: Option<&HttpCheck>,
        edit: &dyn Fn(&mut Vec<String>),
    ) -> Result<(Vec<String>, Vec<String>), ExecError>;

    /// The mark of the service's unfinished deployment on the host (see `marks`).
    async fn mark(&self, host: &str) -> Result<Option<super::Mark>, ExecError>;
    /// Writes the mark where none is (an existing one is left as it is).
    async fn create_mark(&self, host: &str, mark: &super::Mark) -> Result<(), ExecError>;
    async fn remove_mark(&self, host: &str) -> Result<(), ExecError>;

    /// Which containers of the role run on the host now (for planning).
    async fn survey(&self, host: &str, service: &str, role: &str) -> Result<Survey, ExecError>;
    /// Every container of the role on the host, running or stopped (for a cleanup).
    async fn survey_all(&self, host: &str, service: &str, role: &str) -> Result<Survey, ExecError>;
    /// Removes the service's route from the host's proxy (and whatever the route alone
    /// needed); `false` when there was none. Idempotent.
    async fn remove_route(&self, host: &str) -> Result<bool, ExecError>;
    /// The page the service's route answers with instead of its containers; `None` when
    /// it is not in maintenance (or has no route).
    async fn maintenance(&self, host: &str) -> Result<Option<MaintenancePage>, ExecError>;
    /// Puts the service's route in maintenance with `page`, or takes it out (`None`),
    /// leaving its upstreams as they are. A route that does not exist is an error: there
    /// is nothing of the service to put in maintenance there. Idempotent.
    async fn set_maintenance(
        &self,
        host: &str,
        page: Option<&MaintenancePage>,
    ) -> Result<(), ExecError>;

    /// How many records the host's copy of `deployment`'s journal holds (0: none yet).
    async fn journal_len(
        &self,
        host: &str,
        service: &str,
        deployment: DeploymentId,
    ) -> Result<u64, ExecError>;
    /// Appends `records`, numbered from `from` (the copy's length), to the host's copy,
    /// durable there when this returns — only while this process holds the host's lock.
    async fn journal_append(
        &self,
        host: &str,
        service: &str,
        deployment: DeploymentId,
        from: u64,
        records: &[Vec<u8>],
    ) -> Result<(), ExecError>;

    /// Rewords an error for a person (e.g. "the SSH connection is lost").
    async fn explain(&self, _host: &str, e: ExecError) -> ExecError {
        e
    }
}

impl<T: HostOps> HostOps for &T {
    fn proxy(&self) -> Option<ProxySettings> {
        (**self).proxy()
    }
    async fn check_lock(&self, host: &str) -> Result<(), ExecError> {
        (**self).check_lock(host).await
    }
    async fn container(&self, host: &str, name: &str) -> Result<Option<ContainerView>, ExecError> {
        (**self).container(host, name).await
    }
    async fn create(
        &self,
        effect: &Effect,
        settings: Option<&ProxySettings>,
    ) -> Result<String, ExecError> {
        (**self).create(effect, settings).await
    }
    async fn start(&self, host: &str, name: &str) -> Result<(), ExecError> {
        (**self).start(host, name).await
    }
    async fn stop(&self, host: &str, name: &str, stop_ms: u64) -> Result<(), ExecError> {
        (**self).stop(host, name, stop_ms).await
    }
    async fn remove(&self, host: &str, name: &str) -> Result<(), ExecError> {
        (**self).remove(host, name).await
    }
    async fn probe(&self, host: &str, name: &str, port: u16, probe: Probe<'_>) -> bool {
        (**self).probe(host, name, port, probe).await
    }
    async fn listening_ports(&self, host: &str, name: &str) -> Result<Vec<u16>, ExecError> {
        (**self).listening_ports(host, name).await
    }
    async fn inbound_connections(&self, host: &str, name: &str) -> Result<u32, ExecError> {
        (**self).inbound_connections(host, name).await
    }
    async fn last_logs(&self, host: &str, name: &str) -> String {
        (**self).last_logs(host, name).await
    }
    async fn route(&self, host: &str) -> Result<Option<Vec<String>>, ExecError> {
        (**self).route(host).await
    }
    async fn write_route(
        &self,
        host: &str,
        health: Option<&HttpCheck>,
        edit: &dyn Fn(&mut Vec<String>),
    ) -> Result<(Vec<String>, Vec<String>), ExecError> {
        (**self).write_route(host, health, edit).await
    }
    async fn survey(&self, host: &str, service: &str, role: &str) -> Result<Survey, ExecError> {
        (**self).survey(host, service, role).await
    }
    async fn survey_all(&self, host: &str, service: &str, role: &str) -> Result<Survey, ExecError> {
        (**self).survey_all(host, service, role).await
    }
    async fn remove_route(&self, host: &str) -> Result<bool, ExecError> {
        (**self).remove_route(host).await
    }
    async fn maintenance(&self, host: &str) -> Result<Option<MaintenancePage>, ExecError> {
        (**self).maintenance(host).await
    }
    async fn set_maintenance(
        &self,
        host: &str,
        page: Option<&MaintenancePage>,
    ) -> Result<(), ExecError> {
        (**self).set_maintenance(host, page).await
    }
    async fn mark(&self, host: &str) -> Result<Option<super::Mark>, ExecError> {
        (**self).mark(host).await
    }
    async fn create_mark(&self, host: &str, mark: &super::Mark) -> Result<(), ExecError> {
        (**self).create_mark(host, mark).await
    }
    async fn remove_mark(&self, host: &str) -> Result<(), ExecError> {
        (**self).remove_mark(host).await
    }
    async fn journal_len(
        &self,
        host: &str,
        service: &str,
        deployment: DeploymentId,
    ) -> Result<u64, ExecError> {
        (**self).journal_len(host, service, deployment).await
    }
    async fn journal_append(
        &self,
        host: &str,
        service: &str,
        deployment: DeploymentId,
        from: u64,
        records: &[Vec<u8>],
    ) -> Result<(), ExecError> {
        (**self)
            .journal_append(host, service, deployment, from, records)
            .await
    }
    async fn explain(&self, host: &str, e: ExecError) -> ExecError {
        (**self).explain(host, e).await
    }
}

/// The container a dial names: `name:port` → `name`.
pub fn dial_container(dial: &str) -> &str {
    dial.rsplit_once(':').map_or(dial, |(name, _)| name)
}
