//! `dependencies:` (once `accessories:`) — one container per host beside the service.

use std::collections::BTreeMap;

use odysseus_executors::docker::spec::{CmdCheck, DependencySpec};

use super::super::problems::Problems;
use super::super::raw::RawDependency;
use super::super::values::{namespace_volumes, parse_port, valid_name};
use super::secrets::SecretSource;

pub(super) fn dependencies(
    service: &str,
    dep_key: &str,
    raw: Option<&BTreeMap<String, RawDependency>>,
    secrets: &mut SecretSource,
    problems: &mut Problems,
) -> Vec<DependencySpec> {
    let mut out = Vec::new();
    for (name, d) in raw.into_iter().flatten() {
        let key = format!("{dep_key}.{name}");
        if !valid_name(name) {
            problems.push(
                &key,
                "dependency names are lowercase letters, digits, - and _",
            );
        }
        if d.image.trim().is_empty() {
            problems.push(format!("{key}.image"), "must name an image");
        }
        if d.hosts.is_empty() {
            problems.push(format!("{key}.hosts"), "needs at least one host");
        }
        let mut ports = Vec::new();
        for p in d.ports.iter().flatten() {
            match parse_port(p) {
                Some(port) => ports.push(port),
                None => problems.push(
                    format!("{key}.ports"),
                    format!("`{p}` is not CONTAINER, HOST:CONTAINER or ADDRESS:HOST:CONTAINER"),
                ),
            }
        }
        let env = secrets.env(d.env.as_ref(), &format!("{key}.env"), problems);
        out.push(DependencySpec {
            name: name.clone(),
            image: d.image.clone(),
            hosts: d.hosts.clone(),
            cmd: d
                .cmd
                .as_ref()
                .and_then(|c| match super::super::values::command(c) {
                    Ok(argv) => Some(argv),
                    Err(why) => {
                        problems.push(format!("{key}.cmd"), why);
                        None
                    }
                }),
            ports,
            volumes: namespace_volumes(service, d.volumes.clone().unwrap_or_default()),
            env,
            healthcheck: d.healthcheck.as_ref().map(|h| CmdCheck {
                cmd: h.cmd.clone(),
                interval_s: h.interval.map(|s| s.0).unwrap_or(30),
                timeout_s: h.timeout.map(|s| s.0).unwrap_or(10),
                retries: h.retries.unwrap_or(3),
            }),
        });
    }
    out
}
