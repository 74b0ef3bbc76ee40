//! A Docker engine, through bollard. Every question is answered by the engine itself.

use std::collections::HashMap;

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HealthConfig, HostConfig,
    Ipam, IpamConfig, NetworkCreateRequest, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StopContainerOptions, UploadToContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use odysseus_engine::runtime::ExecError;

pub const NETWORK: &str = "odysseus";

pub struct Engine {
    docker: Docker,
    pub host: String,
}

/// What odysseus needs to know about a container.
#[derive(Clone, Debug)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub running: bool,
    /// Docker's `State.StartedAt`: changes at every (re)start.
    pub started: String,
    pub pid: Option<i64>,
    /// `None` when the container has no health check.
    pub health: Option<String>,
    pub ip: Option<String>,
    pub labels: HashMap<String, String>,
    /// The image reference it was created from (`repo:tag`).
    pub image: String,
    /// Published ports: (container port, host port).
    pub published: Vec<(u16, u16)>,
}

fn transient(what: &str, e: bollard::errors::Error) -> ExecError {
    ExecError::Retryable(format!("{what}: {e}"))
}

pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Options for the container odysseus creates.
pub struct NewContainer<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub labels: HashMap<String, String>,
    pub binds: Vec<String>,
    pub resources: &'a super::spec::Resources,
    pub healthcheck: Option<HealthConfig>,
    /// (container port, host address, host port) to publish.
    pub publish: Vec<(u16, String, u16)>,
    pub aliases: Vec<String>,
    /// Namespaced kernel settings for the container's network namespace.
    pub sysctls: Vec<(String, String)>,
    /// A one-off command's container: never restarted by the engine (a command that
    /// fails must not run again); with `stdin`, it reads this process's input, on a PTY
    /// with `tty`.
    pub oneoff: Option<OneOff>,
}

#[derive(Clone, Copy, Debug)]
pub struct OneOff {
    pub stdin: bool,
    pub tty: bool,
}

impl Engine {
    /// Connects to a unix socket and negotiates the API version first: bollard's default
    /// version is newer than the engines we meet (20.10 speaks 1.41).
    pub async fn connect(host: &str, socket: &str) -> Result<Engine, ExecError> {
        let docker =
            Docker::connect_with_unix(socket, 30, bollard::API_DEFAULT_VERSION).map_err(|e| {
                ExecError::Permanent(format!("cannot reach the Docker engine at {socket}: {e}"))
            })?;
        let docker = docker.negotiate_version().await.map_err(|e| {
            ExecError::Permanent(format!(
                "the Docker engine at {socket} does not answer: {e}"
            ))
        })?;
        Ok(Engine {
            docker,
            host: host.to_string(),
        })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub async fn ensure_network(&self, subnet: Option<&str>) -> Result<(), ExecError> {
        match self.docker.inspect_network(NETWORK, None).await {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(transient("inspecting network odysseus", e)),
        }
        let ipam = subnet.map(|s| Ipam {
            config: Some(vec![IpamConfig {
                subnet: Some(s.to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let request = NetworkCreateRequest {
            name: NETWORK.to_string(),
            driver: Some("bridge".into()),
            ipam,
            labels: Some(HashMap::from([(
                "odysseus.managed".to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(()),
            // Created by a concurrent call between our inspect and create.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(ExecError::Retryable(format!(
                "creating network odysseus: {e}"
            ))),
        }
    }

    pub async fn image_present(&self, image: &str) -> Result<bool, ExecError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(transient("inspecting image", e)),
        }
    }

    /// Uses an image already on the engine as it is; pulls it only when missing, with
    /// `auth` when the image lives on that registry.
    pub async fn ensure_image(
        &self,
        image: &str,
        auth: Option<&super::spec::RegistryAuth>,
    ) -> Result<(), ExecError> {
        if self.image_present(image).await? {
            return Ok(());
        }
        let (from_image, tag) = match image.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
            _ => (image.to_string(), "latest".to_string()),
        };
        let options = bollard::query_parameters::CreateImageOptions {
            from_image: Some(from_image),
            tag: Some(tag),
            ..Default::default()
        };
        let credentials =
            auth.filter(|a| a.covers(image))
                .map(|a| bollard::auth::DockerCredentials {
                    username: Some(a.username.clone()),
                    password: Some(a.password.clone()),
                    serveraddress: a.server.clone(),
                    ..Default::default()
                });
        let mut pull = self.docker.create_image(Some(options), None, credentials);
        while let Some(item) = pull.next().await {
            if let Err(e) = item {
                return Err(ExecError::Permanent(format!(
                    "image {image} is not on {} and could not be pulled ({e}); build it there or push it with `odysseus deploy --push-image`",
                    self.host
                )));
            }
        }
        Ok(())
    }

    pub async fn inspect(&self, name: &str) -> Result<Option<ContainerInfo>, ExecError> {
        match self.docker.inspect_container(name, None).await {
            Ok(c) => Ok(Some(info(c))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(transient("inspecting container", e)),
        }
    }

    /// Containers carrying all these labels (running or not), with their names.
    pub async fn list(
        &self,
        labels: &[(&str, &str)],
        all: bool,
    ) -> Result<Vec<(String, String, HashMap<String, String>)>, ExecError> {
        let filters = HashMap::from([(
            "label".to_string(),
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )]);
        let options = ListContainersOptions {
            all,
            filters: Some(filters),
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| transient("listing containers", e))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let name = c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default();
                (c.id.unwrap_or_default(), name, c.labels.unwrap_or_default())
            })
            .collect())
    }

    pub async fn create(&self, c: NewContainer<'_>) -> Result<String, ExecError> {
        let port_bindings: HashMap<String, Option<Vec<PortBinding>>> = c
            .publish
            .iter()
            .map(|(port, ip, host_port)| {
                (
                    format!("{port}/tcp"),
                    Some(vec![PortBinding {
                        host_ip: Some(ip.clone()),
                        host_port: Some(host_port.to_string()),
                    }]),
                )
            })
            .collect();
        let exposed: Vec<String> = c
            .publish
            .iter()
            .map(|(port, _, _)| format!("{port}/tcp"))
            .collect();
        let host_config = HostConfig {
            binds: (!c.binds.is_empty()).then(|| c.binds.clone()),
            restart_policy: Some(RestartPolicy {
                name: Some(if c.oneoff.is_some() {
                    RestartPolicyNameEnum::NO
                } else {
                    RestartPolicyNameEnum::UNLESS_STOPPED
                }),
                maximum_retry_count: None,
            }),
            memory: c.resources.memory,
            memory_reservation: c.resources.memory_reservation,
            nano_cpus: c.resources.nano_cpus,
            cpu_shares: c.resources.cpu_shares,
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            network_mode: Some(NETWORK.to_string()),
            sysctls: (!c.sysctls.is_empty()).then(|| c.sysctls.iter().cloned().collect()),
            ..Default::default()
        };
        let endpoint = EndpointSettings {
            aliases: Some(c.aliases.clone()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(c.image.to_string()),
            cmd: c.cmd.clone(),
            env: Some(c.env.clone()),
            labels: Some(c.labels.clone()),
            healthcheck: c.healthcheck.clone(),
            tty: c.oneoff.map(|o| o.tty),
            open_stdin: c.oneoff.map(|o| o.stdin),
            // Closing the attached stdin closes the command's: `echo ls | app shell` ends.
            stdin_once: c.oneoff.map(|o| o.stdin),
            attach_stdin: c.oneoff.map(|o| o.stdin),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(NETWORK.to_string(), endpoint)])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(c.name.to_string()),
            ..Default::default()
        };
        match self.docker.create_container(Some(options), body).await {
            Ok(r) => Ok(r.id),
            // A container of this name exists already: the caller adopts it.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {
                let existing = self.inspect(c.name).await?;
                existing.map(|e| e.id).ok_or_else(|| {
                    ExecError::Retryable(format!("{} vanished while being created", c.name))
                })
            }
            Err(e) => Err(ExecError::Permanent(format!("creating {}: {e}", c.name))),
        }
    }

    pub async fn upload_file(
        &self,
        container: &str,
        path: &str,
        contents: &[u8],
    ) -> Result<(), ExecError> {
        let tar = super::tar::single_file(path, contents, 0o644)
            .map_err(|e| ExecError::Permanent(format!("archiving {path}: {e}")))?;
        let options = UploadToContainerOptions {
            path: "/".to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(container, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(|e| transient("placing a file in the container", e))
    }

    pub async fn start(&self, name: &str) -> Result<(), ExecError> {
        match self.docker.start_container(name, None).await {
            Ok(()) => Ok(()),
            // 304: already running.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(ExecError::Retryable(format!("starting {name}: {e}"))),
        }
    }

    /// SIGTERM, then SIGKILL after `stop_secs`: Docker's stop does exactly that.
    pub async fn stop(&self, name: &str, stop_secs: u64) -> Result<(), ExecError> {
        let options = StopContainerOptions {
            t: Some(stop_secs.min(i32::MAX as u64) as i32),
            signal: None,
        };
        // The API call lasts as long as the grace period: give it that, beyond the
        // client's usual 30 s.
        let docker = self
            .docker
            .clone()
            .with_timeout(std::time::Duration::from_secs(stop_secs.saturating_add(30)));
        match docker.stop_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => Ok(()),
            Err(e) => Err(ExecError::OutcomeUnknown(format!("stopping {name}: {e}"))),
        }
    }

    pub async fn remove(&self, name: &str) -> Result<(), ExecError> {
        let options = RemoveContainerOptions {
            force: true,
            v: false,
            link: false,
        };
        match self.docker.remove_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 409: removal already in progress.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(ExecError::OutcomeUnknown(format!("removing {name}: {e}"))),
        }
    }

    /// Removes an image (by `repo:tag`: a tag shared with other names only loses that
    /// name). `false` when it is still used by a container, or already gone.
    pub async fn remove_image(&self, image: &str) -> Result<bool, ExecError> {
        let options = bollard::query_parameters::RemoveImageOptions {
            force: false,
            noprune: false,
            platforms: None,
        };
        match self.docker.remove_image(image, Some(options), None).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(false),
            Err(e) => Err(transient(&format!("removing image {image}"), e)),
        }
    }

    /// The regular files directly in a container's directory, as (name, contents), read
    /// in one archive of at most `limit` bytes; `None` when there is no such directory.
    pub async fn read_dir_files(
        &self,
        container: &str,
        dir: &str,
        limit: u64,
    ) -> Result<Option<Vec<(String, Vec<u8>)>>, ExecError> {
        let options = DownloadFromContainerOptions {
            path: dir.to_string(),
        };
        let mut stream = self
            .docker
            .download_from_container(container, Some(options));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => return Err(transient(&format!("reading {dir} in {container}"), e)),
            }
            if archive.len() as u64 > limit {
                return Err(ExecError::Permanent(format!(
                    "{dir} in {container} holds more than {limit} bytes"
                )));
            }
        }
        super::tar::files_in(&archive)
            .map(Some)
            .map_err(|e| ExecError::OutcomeUnknown(format!("reading {dir} in {container}: {e}")))
    }

    /// Runs `cmd` in a running container and waits for it: its exit code and output.
    pub async fn exec(&self, container: &str, cmd: &[&str]) -> Result<(i64, String), ExecError> {
        let what = format!("running {} in {container}", cmd.join(" "));
        let created = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(cmd.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| transient(&what, e))?;
        let mut output = String::new();
        match self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(|e| transient(&what, e))?
        {
            StartExecResults::Attached {
                output: mut out, ..
            } => {
                while let Some(chunk) = out.next().await {
                    match chunk {
                        Ok(c) => output.push_str(&c.to_string()),
                        Err(e) => return Err(transient(&what, e)),
                    }
                }
            }
            StartExecResults::Detached => {}
        }
        let inspected = self
            .docker
            .inspect_exec(&created.id)
            .await
            .map_err(|e| transient(&what, e))?;
        Ok((inspected.exit_code.unwrap_or(-1), output))
    }

    /// The last lines the container printed, for failure reports.
    pub async fn last_logs(&self, name: &str, lines: usize) -> String {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let mut stream = self.docker.logs(name, Some(options));
        let mut out = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            out.push_str(&chunk.to_string());
        }
        out
    }
}

fn info(c: ContainerInspectResponse) -> ContainerInfo {
    let restart_count = c.restart_count.unwrap_or(0);
    let state = c.state.unwrap_or_default();
    let published = c
        .host_config
        .as_ref()
        .and_then(|h| h.port_bindings.as_ref())
        .map(|bindings| {
            bindings
                .iter()
                .filter_map(|(port, b)| {
                    let container_port = port.split('/').next()?.parse().ok()?;
                    let host_port = b.as_ref()?.first()?.host_port.as_ref()?.parse().ok()?;
                    Some((container_port, host_port))
                })
                .collect()
        })
        .unwrap_or_default();
    let health = state
        .health
        .and_then(|h| h.status)
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty() && s != "none");
    let image = c
        .config
        .as_ref()
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let ip = c
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|nets| nets.get(NETWORK).and_then(|n| n.ip_address.clone()))
        .filter(|ip| !ip.is_empty());
    ContainerInfo {
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        // A container waiting to be restarted by its policy still says Running (with pid
        // 0): it is not running, whatever the flag says.
        running: state.running.unwrap_or(false)
            && !state.restarting.unwrap_or(false)
            && state.pid.is_some_and(|p| p > 0),
        // A restart changes StartedAt, and RestartCount even when StartedAt looks alike.
        started: format!(
            "{}#{}",
            state.started_at.clone().unwrap_or_default(),
            restart_count
        ),
        pid: state.pid.filter(|p| *p > 0),
        health,
        ip,
        labels: c.config.and_then(|c| c.labels).unwrap_or_default(),
        image,
        published,
    }
}
