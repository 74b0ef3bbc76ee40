//! One-off commands (`odysseus app exec|shell|console`): a fresh container from the image a
//! role serves on a host, with the role's env, volumes and network; its output streamed
//! back (and this process's input passed in, on a PTY at a terminal) and its exit code
//! returned. The container is removed afterwards, also after Ctrl-C.

use std::collections::HashMap;

use futures_util::StreamExt;
use odysseus_engine::runtime::ExecError;

use super::engine::{NewContainer, OneOff};
use super::executor::DockerExecutor;
use super::interactive::{converse, wants_tty, Ended, Interrupt, Target};

/// The exit code reported when the user interrupted the command (as a shell does).
pub const INTERRUPTED: i64 = 130;

impl DockerExecutor {
    /// Runs `command` (argv) once on `host` in `role`'s image and environment. With
    /// `stdin`, this process's input goes to it (on a PTY when the user is at a terminal).
    pub async fn run_oneoff(
        &self,
        host: &str,
        role: &str,
        command: Vec<String>,
        stdin: bool,
    ) -> Result<i64, ExecError> {
        let mut interrupt = Interrupt::catch()?;
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
        let tty = stdin && wants_tty();
        h.engine
            .create(NewContainer {
                name: &name,
                image: &image,
                cmd: Some(command),
                env,
                labels: oneoff_labels,
                binds: role_spec.volumes.clone(),
                resources: &role_spec.resources,
                healthcheck: None,
                publish: vec![],
                aliases: vec![],
                sysctls: vec![],
                oneoff: Some(OneOff { stdin, tty }),
            })
            .await?;
        let result = async {
            // Attached before it starts, so nothing it prints is missed; reading its log
            // with `follow` instead repeated the output of a command that exits at once
            // (a dockerd 20.10 race between the log file and the follower).
            let attach = bollard::query_parameters::AttachContainerOptions {
                stdout: true,
                stderr: true,
                stdin,
                stream: true,
                logs: false,
                detach_keys: None,
            };
            let attached = h
                .engine
                .docker()
                .attach_container(&name, Some(attach))
                .await
                .map_err(|e| ExecError::Retryable(format!("attaching to {name}: {e}")))?;
            h.engine.start(&name).await?;
            let ended = converse(
                &h.engine,
                Target::Container(&name),
                attached.output,
                attached.input,
                stdin,
                tty,
                &mut interrupt,
            )
            .await?;
            if ended == Ended::Interrupted {
                return Ok(INTERRUPTED);
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
