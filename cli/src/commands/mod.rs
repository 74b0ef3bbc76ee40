//! One file per command. The helpers here are what every command that talks to hosts
//! shares.

pub mod app;
pub mod build;
pub mod dependency;
pub mod deploy;
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
