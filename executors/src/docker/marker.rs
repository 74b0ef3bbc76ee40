//! An unfinished deployment is visible on each of its hosts, so a deployer with another
//! journal (another machine, another state dir) cannot act on a half-switched host it
//! knows nothing about. The marker is a Docker volume named
//! `odysseus-deployment-<service>` whose labels name the deployment and who drives it:
//! it lives with the engine (the same access odysseus already needs, nothing written to
//! a shared directory), survives reboots, and holds no data.

use std::collections::HashMap;

use bollard::models::VolumeCreateRequest;
use odysseus_engine::runtime::ExecError;

use super::engine::is_not_found;
use super::executor::DockerExecutor;

const LABEL_DEPLOYMENT: &str = "odysseus.deployment";
const LABEL_OWNER: &str = "odysseus.owner";

/// Who drives the unfinished deployment of a service on a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub deployment: String,
    /// The operator, machine and state dir, as the lock's holder line says them.
    pub owner: String,
}

pub fn marker_name(service: &str) -> String {
    format!("odysseus-deployment-{service}")
}

impl DockerExecutor {
    /// The marker on `host`, if a deployment of the service is unfinished there.
    pub async fn marker(&self, host: &str) -> Result<Option<Marker>, ExecError> {
        let name = marker_name(&self.spec().service);
        match self.host(host)?.engine.docker().inspect_volume(&name).await {
            Ok(v) => Ok(Some(Marker {
                deployment: v.labels.get(LABEL_DEPLOYMENT).cloned().unwrap_or_default(),
                owner: v.labels.get(LABEL_OWNER).cloned().unwrap_or_default(),
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(ExecError::Retryable(format!(
                "{host}: reading the deployment marker: {e}"
            ))),
        }
    }

    /// Marks `host` as taken by `deployment`; refuses (naming the owner) when another
    /// deployment's marker is there. Called under the host's deploy lock.
    pub async fn set_marker(
        &self,
        host: &str,
        deployment: &str,
        owner: &str,
    ) -> Result<(), Marker> {
        let other = |e: ExecError| Marker {
            deployment: String::new(),
            owner: e.to_string(),
        };
        if let Some(existing) = self.marker(host).await.map_err(other)? {
            if existing.deployment == deployment {
                return Ok(());
            }
            return Err(existing);
        }
        let labels: HashMap<String, String> = [
            (LABEL_DEPLOYMENT.to_string(), deployment.to_string()),
            (LABEL_OWNER.to_string(), owner.to_string()),
            ("odysseus.service".to_string(), self.spec().service.clone()),
        ]
        .into_iter()
        .collect();
        let request = VolumeCreateRequest {
            name: Some(marker_name(&self.spec().service)),
            labels: Some(labels),
            ..Default::default()
        };
        let h = self.host(host).map_err(other)?;
        h.engine
            .docker()
            .create_volume(request)
            .await
            .map_err(|e| other(ExecError::Retryable(format!("{host}: writing the deployment marker: {e}"))))?;
        // Docker returns an existing volume of the same name unchanged: read it back.
        match self.marker(host).await.map_err(other)? {
            Some(m) if m.deployment == deployment => Ok(()),
            Some(m) => Err(m),
            None => Err(other(ExecError::Retryable(format!(
                "{host}: the deployment marker vanished as it was written"
            )))),
        }
    }

    /// Removes the marker on `host` if it names `deployment` (any marker when None).
    pub async fn clear_marker(&self, host: &str, deployment: Option<&str>) -> Result<bool, ExecError> {
        let Some(existing) = self.marker(host).await? else {
            return Ok(false);
        };
        if deployment.is_some_and(|d| d != existing.deployment) {
            return Ok(false);
        }
        let name = marker_name(&self.spec().service);
        match self
            .host(host)?
            .engine
            .docker()
            .remove_volume(&name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(ExecError::Retryable(format!(
                "{host}: removing the deployment marker: {e}"
            ))),
        }
    }
}
