//! One file per command. The helpers here are what every command that talks to hosts
//! shares.

pub mod app;
pub mod build;
pub mod cleanup;
pub mod containers;
pub mod dependency;
pub mod deploy;
pub mod doctor;
pub mod lock;
pub mod logs;
pub mod push;
pub mod replay;
pub mod rollback;
pub mod secrets;
pub mod simulate;
pub mod status;
pub mod trust;
pub mod validate;

use odysseus_executors::docker::DockerExecutor;

use crate::config::Config;
use crate::exit::Exit;

/// The single-threaded async runtime a command runs on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Connects to `hosts` of the config; on failure says why and gives the exit code.
pub async fn connect(config: &Config, hosts: &[String]) -> Result<DockerExecutor, Exit> {
    DockerExecutor::connect(config.spec.clone(), hosts, &config.ssh, config.ssh_port)
        .await
        .map_err(|e| {
            eprintln!("odysseus: {e}");
            Exit::Blocked
        })
}

/// The hosts a command names, checked against the config (all of them when none is named).
pub fn hosts_of(
    config: &Config,
    file: &std::path::Path,
    named: &[String],
) -> Result<Vec<String>, crate::exit::UsageError> {
    let all = config.hosts();
    if named.is_empty() {
        return Ok(all);
    }
    for host in named {
        if !all.contains(host) {
            return Err(crate::exit::UsageError(format!(
                "{host} is not a host of {} (hosts: {})",
                file.display(),
                all.join(", ")
            )));
        }
    }
    Ok(named.to_vec())
}

/// Connects to one host, giving the reason as text when it cannot (for commands that
/// report every host and go on).
pub async fn connect_quiet(config: &Config, host: &str) -> Result<DockerExecutor, String> {
    DockerExecutor::connect(
        config.spec.clone(),
        std::slice::from_ref(&host.to_string()),
        &config.ssh,
        config.ssh_port,
    )
    .await
    .map_err(|e| e.to_string())
}
