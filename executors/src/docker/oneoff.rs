//! One-off commands (`odysseus app exec`): a fresh container from the image a role
//! serves on a host, with the role's env and network; its output streamed back and its
//! exit code returned. The container is removed afterwards.

use std::collections::HashMap;
use std::io::Write;

use futures_util::StreamExt;
use odysseus_engine::runtime::ExecError;

use super::engine::NewContainer;
use super::executor::DockerExecutor;

impl DockerExecutor {
    pub async fn run_oneoff(
        &self,
        host: &str,
        role: &str,
        command: &str,
    ) -> Result<i64, ExecError> {
        let h = self.host(host)?;
        let role_spec = self
            .spec()
            .role(role)
            .ok_or_else(|| ExecError::Permanent(format!("role {role} is not in the config")))?;
        let Some((id, _, labels)) = self.serving_container(host, role).await? else {
            return Err(ExecError::Permanent(format!(
                "{role} runs nothing on {host}: deploy it first"
            )));
        };
        let image = h
            .engine
            .docker()
            .inspect_container(&id, None)
            .await
            .map_err(|e| ExecError::Retryable(format!("inspecting {id}: {e}")))?
            .config
            .and_then(|c| c.image)
            .ok_or_else(|| ExecError::Permanent(format!("cannot tell which image {id} runs")))?;
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("{}-{role}-exec-{nonce:08x}", self.spec().service);
        let env: Vec<String> = self
            .spec()
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut oneoff_labels: HashMap<String, String> = HashMap::new();
        oneoff_labels.insert("odysseus.oneoff".into(), self.spec().service.clone());
        if let Some(v) = labels.get("odysseus.version") {
            oneoff_labels.insert("odysseus.oneoff.version".into(), v.clone());
        }
        h.engine
            .create(NewContainer {
                name: &name,
                image: &image,
                cmd: Some(vec!["/bin/sh".into(), "-c".into(), command.to_string()]),
                env,
                labels: oneoff_labels,
                binds: role_spec.volumes.clone(),
                resources: &role_spec.resources,
                healthcheck: None,
                publish: vec![],
                aliases: vec![],
                sysctls: vec![],
            })
            .await?;
        let result = async {
            // Attached before it starts, so nothing it prints is missed; reading its log
            // with `follow` instead repeated the output of a command that exits at once
            // (a dockerd 20.10 race between the log file and the follower).
            let attach = bollard::query_parameters::AttachContainerOptions {
                stdout: true,
                stderr: true,
                stream: true,
                logs: false,
                stdin: false,
                detach_keys: None,
            };
            let mut output = h
                .engine
                .docker()
                .attach_container(&name, Some(attach))
                .await
                .map_err(|e| ExecError::Retryable(format!("attaching to {name}: {e}")))?
                .output;
            h.engine.start(&name).await?;
            while let Some(Ok(chunk)) = output.next().await {
                match chunk {
                    bollard::container::LogOutput::StdErr { message } => {
                        let _ = std::io::stderr().write_all(&message);
                    }
                    other => {
                        let _ = std::io::stdout().write_all(&other.into_bytes());
                        let _ = std::io::stdout().flush();
                    }
                }
            }
            let mut wait = h.engine.docker().wait_container(&name, None);
            match wait.next().await {
                Some(Ok(r)) => Ok(r.status_code),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                    Ok(code)
                }
                Some(Err(e)) => Err(ExecError::OutcomeUnknown(format!(
                    "waiting for {name}: {e}"
                ))),
                None => Err(ExecError::OutcomeUnknown(format!("{name}: no exit status"))),
            }
        }
        .await;
        let _ = h.engine.remove(&name).await;
        result
    }
}
