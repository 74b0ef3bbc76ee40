//! The release command (deploy.yml's `release_command`, e.g. a migration): run once per
//! deployment in a one-off container of the new image on one host, with the role's env,
//! volumes and network, before any target moves. The container's name comes from the
//! deployment, so a run that died while it ran finds it again: a container that exists is
//! never started a second time — running, it is waited for; exited, its exit code is read.

use std::collections::HashMap;
use std::io::Write;

use futures_util::StreamExt;
use odysseus_engine::runtime::ExecError;

use super::engine::{NewContainer, OneOff};
use super::executor::DockerExecutor;

/// How a release command ended.
#[derive(Debug)]
pub struct ReleaseRun {
    pub exit_code: i64,
    /// Its last lines of output (for a failure report), secrets hidden.
    pub last_lines: String,
    pub millis: u64,
}

/// The release container of a deployment.
pub fn release_container(service: &str, deployment_short: &str) -> String {
    format!("{service}-release-{deployment_short}")
}

impl DockerExecutor {
    /// Runs the release command in `name` on `host` — or, when `name` exists (an earlier
    /// run died while it ran), waits for that one — streaming its output to stderr with
    /// secrets hidden. Returns its exit code.
    pub async fn run_release(
        &self,
        host: &str,
        role: &str,
        name: &str,
        image: &str,
        command: &[String],
    ) -> Result<ReleaseRun, ExecError> {
        let started = std::time::Instant::now();
        let h = self.host(host)?;
        let role_spec = self
            .spec()
            .role(role)
            .ok_or_else(|| ExecError::Permanent(format!("role {role} is not in the config")))?;
        let existing = match h.engine.docker().inspect_container(name, None).await {
            Ok(c) => Some(c.state.and_then(|s| s.status).map(|s| s.to_string())),
            Err(e) if super::engine::is_not_found(&e) => None,
            Err(e) => return Err(ExecError::Retryable(format!("inspecting {name}: {e}"))),
        };
        match existing.as_ref().map(|s| s.as_deref().unwrap_or_default()) {
            None => {
                h.engine
                    .ensure_network(self.spec().network_subnet.as_deref())
                    .await?;
                let labels: HashMap<String, String> = [
                    ("odysseus.oneoff", self.spec().service.clone()),
                    ("odysseus.release", name.to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                h.engine
                    .create(NewContainer {
                        name,
                        image,
                        cmd: Some(command.to_vec()),
                        env: self
                            .spec()
                            .env
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect(),
                        labels,
                        binds: role_spec.volumes.clone(),
                        resources: &role_spec.resources,
                        healthcheck: None,
                        publish: vec![],
                        aliases: vec![],
                        sysctls: vec![],
                        oneoff: Some(OneOff {
                            stdin: false,
                            tty: false,
                        }),
                    })
                    .await?;
                h.engine.start(name).await?;
            }
            // Made by a run that died before it started it: it never ran.
            Some("created") => h.engine.start(name).await?,
            // Running (waited for below) or exited (its code is read): never run again.
            Some(_) => {}
        }
        // Its output so far and as it comes, until it exits.
        let options = bollard::query_parameters::LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut logs = h.engine.docker().logs(name, Some(options));
        while let Some(Ok(chunk)) = logs.next().await {
            let text = crate::redact::hide_known(&String::from_utf8_lossy(&chunk.into_bytes()));
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
        let mut wait = h.engine.docker().wait_container(name, None);
        let exit_code = match wait.next().await {
            Some(Ok(r)) => r.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => {
                return Err(ExecError::OutcomeUnknown(format!(
                    "waiting for {name}: {e}"
                )))
            }
            None => return Err(ExecError::OutcomeUnknown(format!("{name}: no exit status"))),
        };
        let last_lines = crate::redact::hide_known(&h.engine.last_logs(name, 15).await);
        Ok(ReleaseRun {
            exit_code,
            last_lines,
            millis: started.elapsed().as_millis() as u64,
        })
    }

    /// Removes a release container once its outcome is in the journal.
    pub async fn remove_release(&self, host: &str, name: &str) {
        if let Ok(h) = self.host(host) {
            let _ = h.engine.remove(name).await;
        }
    }
}
