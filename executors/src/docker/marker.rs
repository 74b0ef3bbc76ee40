//! Where a Docker host keeps the mark of an unfinished deployment (`crate::steps::marks`
//! has the protocol): a volume named `odysseus-deployment-<service>` whose labels name
//! the deployment and who drives it. It lives with the engine (the access odysseus
//! already needs; nothing written to a shared directory), survives reboots, holds no
//! data.

use std::collections::HashMap;

use bollard::models::VolumeCreateRequest;
use odysseus_engine::runtime::ExecError;

use super::engine::is_not_found;
use super::executor::DockerExecutor;
use crate::steps::Mark;

const LABEL_DEPLOYMENT: &str = "odysseus.deployment";
const LABEL_OWNER: &str = "odysseus.owner";
const LABEL_JOURNAL: &str = "odysseus.journal";
const LABEL_COPIES: &str = "odysseus.journal-on-hosts";

pub fn mark_volume(service: &str) -> String {
    format!("odysseus-deployment-{service}")
}

impl DockerExecutor {
    pub(crate) async fn read_mark(&self, host: &str) -> Result<Option<Mark>, ExecError> {
        let name = mark_volume(&self.spec().service);
        match self.host(host)?.engine.docker().inspect_volume(&name).await {
            Ok(v) => Ok(Some(Mark {
                deployment: v.labels.get(LABEL_DEPLOYMENT).cloned().unwrap_or_default(),
                owner: v.labels.get(LABEL_OWNER).cloned().unwrap_or_default(),
                journal: v.labels.get(LABEL_JOURNAL).cloned().unwrap_or_default(),
                copies: v.labels.get(LABEL_COPIES).is_some_and(|c| c == "1"),
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(ExecError::Retryable(format!(
                "{host}: reading the deployment mark: {e}"
            ))),
        }
    }

    /// Docker returns an existing volume of the same name unchanged: a mark already
    /// there stays as it is.
    pub(crate) async fn write_mark(&self, host: &str, mark: &Mark) -> Result<(), ExecError> {
        let labels: HashMap<String, String> = [
            (LABEL_DEPLOYMENT.to_string(), mark.deployment.clone()),
            (LABEL_OWNER.to_string(), mark.owner.clone()),
            (LABEL_JOURNAL.to_string(), mark.journal.clone()),
            (
                LABEL_COPIES.to_string(),
                if mark.copies { "1" } else { "0" }.to_string(),
            ),
            ("odysseus.service".to_string(), self.spec().service.clone()),
        ]
        .into_iter()
        .collect();
        let request = VolumeCreateRequest {
            name: Some(mark_volume(&self.spec().service)),
            labels: Some(labels),
            ..Default::default()
        };
        self.host(host)?
            .engine
            .docker()
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(|e| ExecError::Retryable(format!("{host}: writing the deployment mark: {e}")))
    }

    pub(crate) async fn delete_mark(&self, host: &str) -> Result<(), ExecError> {
        let name = mark_volume(&self.spec().service);
        match self
            .host(host)?
            .engine
            .docker()
            .remove_volume(
                &name,
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(ExecError::Retryable(format!(
                "{host}: removing the deployment mark: {e}"
            ))),
        }
    }
}
