//! `servers:` — the roles, their hosts, timeouts, resources, commands and health.

use odysseus_engine::machine::{RoleKind, Timeouts};
use odysseus_executors::docker::spec::{CmdCheck, Resources, RoleSpec};

use super::super::problems::Problems;
use super::super::raw::{RawRole, Scalar};
use super::super::values::{check_host, namespace_volumes, parse_bytes, valid_name};
use super::super::Role;

pub(super) fn roles(
    service: &str,
    servers: &[(String, RawRole)],
    has_proxy: bool,
    problems: &mut Problems,
) -> (Vec<Role>, Vec<RoleSpec>) {
    let mut roles = Vec::new();
    let mut specs = Vec::new();
    for (name, r) in servers {
        let key = format!("servers.{name}");
        if !valid_name(name) {
            problems.push(&key, "role names are lowercase letters, digits, - and _");
        }
        let kind = if name == "web" {
            RoleKind::Web
        } else {
            RoleKind::Job
        };
        if kind == RoleKind::Web && !has_proxy {
            problems.push(
                &key,
                "the web role is proxied through Caddy and needs `proxy.app_port`",
            );
        }
        let stop_default = if kind == RoleKind::Job { 30 } else { 10 };
        let d = r.deploy.as_ref();
        let timeouts = Timeouts {
            drain_ms: seconds(
                d.and_then(|d| d.drain_timeout.map(|s| s.0)),
                &key,
                "drain_timeout",
                30,
                problems,
            ) * 1000,
            stop_ms: seconds(
                d.and_then(|d| d.stop_timeout.map(|s| s.0)),
                &key,
                "stop_timeout",
                stop_default,
                problems,
            ) * 1000,
            boot_ms: seconds(
                d.and_then(|d| d.boot_timeout.map(|s| s.0)),
                &key,
                "boot_timeout",
                60,
                problems,
            ) * 1000,
            op_ms: 30_000,
        };
        hosts(&r.hosts, &key, problems);
        let resources = resources(r, &key, problems);
        let cmd = r
            .cmd
            .as_ref()
            .and_then(|c| match super::super::values::command(c) {
                Ok(argv) => Some(argv),
                Err(why) => {
                    problems.push(format!("{key}.cmd"), why);
                    None
                }
            });
        if let Some(h) = &r.healthcheck {
            for (field, value) in [
                ("interval", h.interval.map(|s| s.0)),
                ("timeout", h.timeout.map(|s| s.0)),
            ] {
                if value.is_some_and(|v| v == 0 || v > MAX_SECONDS) {
                    problems.push(
                        format!("{key}.healthcheck.{field}"),
                        format!("must be 1 to {MAX_SECONDS} seconds"),
                    );
                }
            }
        }
        let healthcheck = r.healthcheck.as_ref().map(|h| CmdCheck {
            cmd: h.cmd.clone(),
            interval_s: h.interval.map(|s| s.0).unwrap_or(30),
            timeout_s: h.timeout.map(|s| s.0).unwrap_or(10),
            retries: h.retries.unwrap_or(3),
        });
        roles.push(Role {
            name: name.clone(),
            kind,
            hosts: r.hosts.clone(),
            timeouts,
        });
        specs.push(RoleSpec {
            name: name.clone(),
            web: kind == RoleKind::Web,
            cmd,
            volumes: namespace_volumes(service, r.volumes.clone().unwrap_or_default()),
            resources,
            healthcheck,
        });
    }
    (roles, specs)
}

/// The longest timeout accepted: a day. Longer is a typo, and milliseconds of it must
/// never overflow.
const MAX_SECONDS: u64 = 86_400;

/// A timeout in seconds: positive, at most a day, `default` when absent.
fn seconds(v: Option<u64>, key: &str, field: &str, default: u64, problems: &mut Problems) -> u64 {
    match v {
        Some(0) => {
            problems.push(
                format!("{key}.deploy.{field}"),
                "must be a positive number of seconds",
            );
            default
        }
        Some(s) if s > MAX_SECONDS => {
            problems.push(
                format!("{key}.deploy.{field}"),
                format!("{s} seconds is more than a day ({MAX_SECONDS}); give a number of seconds"),
            );
            default
        }
        Some(s) => s,
        None => default,
    }
}

fn hosts(hosts: &[String], key: &str, problems: &mut Problems) {
    if hosts.is_empty() {
        problems.push(format!("{key}.hosts"), "needs at least one host");
    }
    let mut seen = std::collections::HashSet::new();
    for host in hosts {
        if host.trim().is_empty() {
            problems.push(format!("{key}.hosts"), "a host is empty");
        } else if let Err(why) = check_host(host) {
            problems.push(format!("{key}.hosts"), why);
        } else if !seen.insert(host) {
            problems.push(format!("{key}.hosts"), format!("{host} is listed twice"));
        }
    }
}

fn resources(r: &RawRole, key: &str, problems: &mut Problems) -> Resources {
    let mut resources = Resources::default();
    let Some(o) = &r.options else {
        return resources;
    };
    let size = |field: &str, value: &Option<Scalar>, problems: &mut Problems| {
        let Some(Scalar(m)) = value else {
            return None;
        };
        parse_bytes(m).or_else(|| {
            problems.push(
                format!("{key}.options.{field}"),
                format!("`{m}` is not a size like 512m or 4g"),
            );
            None
        })
    };
    resources.memory = size("memory", &o.memory, problems);
    resources.memory_reservation = size("memory_reservation", &o.memory_reservation, problems);
    if let Some(Scalar(c)) = &o.cpus {
        match c.parse::<f64>() {
            Ok(n) if n > 0.0 => resources.nano_cpus = Some((n * 1e9) as i64),
            _ => problems.push(
                format!("{key}.options.cpus"),
                format!("`{c}` is not a positive number of CPUs"),
            ),
        }
    }
    resources.cpu_shares = o.cpu_shares;
    resources
}
