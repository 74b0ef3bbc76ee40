//! Every container a service has on a host, whatever made it (`odysseus containers`): the
//! roles' containers of every version, one-off commands, dependencies, and the Caddy in
//! front. Read from the engine's own list, so a container odysseus lost track of shows too.

use std::collections::HashMap;

use bollard::query_parameters::ListContainersOptions;
use odysseus_engine::runtime::ExecError;

use super::caddy::CADDY_CONTAINER;
use super::executor::DockerExecutor;

/// What a listed container is to the service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A container of a role (`web`, `workers`, …), any version.
    Role(String),
    /// A one-off command's container (`app exec`, `app shell`, a release command).
    OneOff,
    /// A dependency (`dependency boot`).
    Dependency(String),
    /// The shared Caddy.
    Proxy,
}

#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    pub kind: Kind,
    /// The version label for role and one-off containers; else empty.
    pub version: String,
    pub image: String,
    /// Docker's state word: running, exited, created, restarting, …
    pub state: String,
    /// Docker's status line: "Up 3 minutes (healthy)", "Exited (0) 2 hours ago".
    pub status: String,
}

impl DockerExecutor {
    /// The service's containers on `host`, roles first (newest version first), then
    /// one-offs, dependencies and Caddy.
    pub async fn containers_on(&self, host: &str) -> Result<Vec<Listed>, ExecError> {
        let h = self.host(host)?;
        let service = self.spec().service.as_str();
        let mut listed = Vec::new();
        // One query per kind: the engine's label filter is an AND of its terms.
        let queries: [(&str, &str); 3] = [
            ("label", &format!("odysseus.service={service}")),
            ("label", &format!("odysseus.oneoff={service}")),
            ("label", &format!("odysseus.dependency.service={service}")),
        ];
        let mut seen = std::collections::HashSet::new();
        for (key, value) in queries.iter().copied().chain([("name", CADDY_CONTAINER)]) {
            let options = ListContainersOptions {
                all: true,
                filters: Some(HashMap::from([(key.to_string(), vec![value.to_string()])])),
                ..Default::default()
            };
            let summaries = h
                .engine
                .docker()
                .list_containers(Some(options))
                .await
                .map_err(|e| ExecError::Retryable(format!("listing containers: {e}")))?;
            for c in summaries {
                let name = c
                    .names
                    .as_ref()
                    .and_then(|n| n.first())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default();
                // The name filter matches substrings: only the Caddy itself.
                if key == "name" && name != CADDY_CONTAINER {
                    continue;
                }
                if !seen.insert(name.clone()) {
                    continue;
                }
                let labels = c.labels.clone().unwrap_or_default();
                let kind = if key == "name" {
                    Kind::Proxy
                } else if let Some(d) = labels.get("odysseus.dependency") {
                    Kind::Dependency(d.clone())
                } else if labels.contains_key("odysseus.oneoff") {
                    Kind::OneOff
                } else {
                    Kind::Role(labels.get("odysseus.role").cloned().unwrap_or_default())
                };
                let version = labels
                    .get("odysseus.version")
                    .or_else(|| labels.get("odysseus.oneoff.version"))
                    .cloned()
                    .unwrap_or_default();
                listed.push((
                    labels
                        .get("odysseus.deployed_at")
                        .cloned()
                        .unwrap_or_default(),
                    Listed {
                        name,
                        kind,
                        version,
                        image: c.image.unwrap_or_default(),
                        state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                        status: c.status.unwrap_or_default(),
                    },
                ));
            }
        }
        let rank = |k: &Kind| match k {
            Kind::Role(_) => 0,
            Kind::OneOff => 1,
            Kind::Dependency(_) => 2,
            Kind::Proxy => 3,
        };
        // A version label is the deployment's time: newest first within a kind.
        listed.sort_by(|(at_a, a), (at_b, b)| {
            (rank(&a.kind), &a.kind, std::cmp::Reverse(at_a), &a.name).cmp(&(
                rank(&b.kind),
                &b.kind,
                std::cmp::Reverse(at_b),
                &b.name,
            ))
        });
        Ok(listed.into_iter().map(|(_, l)| l).collect())
    }
}
