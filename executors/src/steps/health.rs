//! Is a container healthy, by what it was deployed with? One answer for the first
//! wait, for an observation after a crash and for every re-check before a step acts.

use std::time::Duration;

use odysseus_engine::machine::RoleKind;
use odysseus_engine::runtime::ExecError;
use tokio::time::Instant;

use super::ops::{ContainerView, HostOps, Probe};
use crate::docker::spec::HttpCheck;

const POLL: Duration = Duration::from_millis(200);
/// A job role without a health check is healthy once it has kept running this long
/// under one start: a crash-looping worker never is.
pub const JOB_SETTLE: Duration = Duration::from_secs(2);

/// The port a container serves on: the one it was deployed with (its label); for a
/// container from before the labels, today's `app_port` if it listens there, else the
/// port it does listen on.
pub async fn port_of<H: HostOps>(
    ops: &H,
    host: &str,
    name: &str,
    view: &ContainerView,
) -> Result<u16, ExecError> {
    if let Some(port) = view.app_port {
        return Ok(port);
    }
    let configured = ops.proxy().map(|p| p.app_port);
    let listening = if view.running {
        ops.listening_ports(host, name).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    match (configured, listening.first()) {
        (Some(port), _) if listening.is_empty() || listening.contains(&port) => Ok(port),
        (_, Some(&port)) => Ok(port),
        (Some(port), None) => Ok(port),
        (None, None) => Err(ExecError::Permanent(
            "the web role needs proxy.app_port".into(),
        )),
    }
}

/// The HTTP check a container is judged by: the one it was deployed with (its labels;
/// "none" too), today's for a container from before the labels.
pub fn check_of<H: HostOps>(ops: &H, view: &ContainerView) -> Option<HttpCheck> {
    match &view.health_check {
        Some(deployed) => deployed.clone(),
        None => ops.proxy().and_then(|p| p.healthcheck),
    }
}

/// The dial a container is routed under.
pub async fn dial_of<H: HostOps>(
    ops: &H,
    host: &str,
    name: &str,
    view: &ContainerView,
) -> Result<String, ExecError> {
    Ok(format!("{name}:{}", port_of(ops, host, name, view).await?))
}

/// One look (a job's takes `JOB_SETTLE`): is this container healthy right now, by the
/// checks that apply to it?
pub async fn healthy_now<H: HostOps>(
    ops: &H,
    host: &str,
    name: &str,
    kind: RoleKind,
) -> Result<bool, ExecError> {
    let Some(view) = ops.container(host, name).await? else {
        return Ok(false);
    };
    healthy_view(ops, host, name, kind, &view).await
}

async fn healthy_view<H: HostOps>(
    ops: &H,
    host: &str,
    name: &str,
    kind: RoleKind,
    view: &ContainerView,
) -> Result<bool, ExecError> {
    if !view.running || view.health.as_deref().is_some_and(|h| h != "healthy") {
        return Ok(false);
    }
    match kind {
        RoleKind::Web => {
            let port = port_of(ops, host, name, view).await?;
            Ok(match check_of(ops, view) {
                Some(hc) => {
                    let probe = Probe::Http {
                        path: &hc.path,
                        expect: &hc.expect,
                    };
                    ops.probe(host, name, port, probe).await
                }
                // A command health check says nothing about the port it will be
                // routed on: that port must accept connections too.
                None => ops.probe(host, name, port, Probe::Tcp).await,
            })
        }
        RoleKind::Job if view.health.is_some() => Ok(true),
        RoleKind::Job => settled(ops, host, name, view).await,
    }
}

/// Still running under the same start after `JOB_SETTLE`.
async fn settled<H: HostOps>(
    ops: &H,
    host: &str,
    name: &str,
    view: &ContainerView,
) -> Result<bool, ExecError> {
    tokio::time::sleep(JOB_SETTLE).await;
    Ok(ops
        .container(host, name)
        .await?
        .is_some_and(|now| now.running && now.started == view.started))
}

/// Waits for health, bounded by `boot_ms`. On failure the error carries the
/// container's last log lines.
pub async fn await_healthy<H: HostOps>(
    ops: &H,
    host: &str,
    name: &str,
    kind: RoleKind,
    boot_ms: u64,
) -> Result<(), ExecError> {
    let started = Instant::now();
    loop {
        let view = ops.container(host, name).await?;
        let Some(view) = view else {
            return Err(ExecError::Permanent(format!(
                "container {name} does not exist"
            )));
        };
        if !view.running {
            let logs = ops.last_logs(host, name).await;
            return Err(ExecError::Permanent(format!(
                "{name} exited before becoming healthy; its last lines:\n{}",
                or_none(logs)
            )));
        }
        if healthy_view(ops, host, name, kind, &view).await? {
            return Ok(());
        }
        if started.elapsed() >= Duration::from_millis(boot_ms) {
            let logs = ops.last_logs(host, name).await;
            return Err(ExecError::Permanent(format!(
                "{name} did not become healthy within {} s (boot_timeout); its last lines:\n{}",
                boot_ms / 1000,
                or_none(logs)
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn or_none(logs: String) -> String {
    if logs.trim().is_empty() {
        "(no output)".to_string()
    } else {
        logs
    }
}

/// Waits until the containers serve no connection, capped by `drain_ms`; returns the
/// time waited and what was left.
pub async fn drain<H: HostOps>(
    ops: &H,
    host: &str,
    names: &[String],
    drain_ms: u64,
) -> Result<(u64, u32), ExecError> {
    let started = Instant::now();
    loop {
        let mut remaining = 0;
        for name in names {
            if ops.container(host, name).await?.is_some_and(|c| c.running) {
                remaining += ops.inbound_connections(host, name).await?;
            }
        }
        let waited = started.elapsed().as_millis() as u64;
        if remaining == 0 || waited >= drain_ms {
            return Ok((waited, remaining));
        }
        let left = drain_ms - waited;
        tokio::time::sleep(Duration::from_millis(100).min(Duration::from_millis(left))).await;
    }
}
