//! `retain_versions`: after a deployment completes, each host keeps the containers and
//! images of the newest N versions of the service and loses the rest.
//!
//! Housekeeping outside the state machine, on purpose: it only ever removes *stopped*
//! containers of versions that are not serving, and the images only those containers
//! used. Interrupted, the containers left are removed after the next deployment; an image
//! whose container is already gone is not found again (it stays until removed by hand).
//! Images that no container of the service has run (a version pushed ahead of its
//! deploy) are never touched.

use std::collections::{BTreeMap, BTreeSet};

use odysseus_engine::runtime::ExecError;

use super::executor::DockerExecutor;

/// One container of the service on a host, as the selection sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    pub role: String,
    pub version: String,
    /// `odysseus.deployed_at`: RFC 3339 in UTC, so it sorts as text.
    pub deployed_at: String,
    pub running: bool,
}

/// What to remove: stopped containers beyond the kept versions (and older duplicates of a
/// kept version), and the versions whose images may go.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub containers: Vec<String>,
    pub versions: Vec<String>,
}

/// Keeps the `keep` most recently deployed versions, and every version still running.
pub fn select(seen: &[Seen], keep: usize) -> Selection {
    let mut newest: BTreeMap<&str, &str> = BTreeMap::new();
    for c in seen {
        let at = newest.entry(&c.version).or_insert(&c.deployed_at);
        if c.deployed_at.as_str() > *at {
            *at = &c.deployed_at;
        }
    }
    let mut by_age: Vec<(&str, &str)> = newest.into_iter().map(|(v, at)| (at, v)).collect();
    by_age.sort_by(|a, b| b.cmp(a));
    let running: BTreeSet<&str> = seen
        .iter()
        .filter(|c| c.running)
        .map(|c| c.version.as_str())
        .collect();
    let kept: BTreeSet<&str> = by_age
        .iter()
        .take(keep.max(1))
        .map(|(_, v)| *v)
        .chain(running.iter().copied())
        .collect();
    let mut selection = Selection::default();
    // Of a kept version that is not running, the newest stopped container of each role
    // stays (its logs may still matter); older twins go.
    let mut newest_stopped: BTreeMap<(&str, &str), &Seen> = BTreeMap::new();
    for c in seen.iter().filter(|c| !c.running) {
        // A stopped container of a version that is running (left by a redeploy of the
        // same version) is no use either: a rollback starts from the image.
        if !kept.contains(c.version.as_str()) || running.contains(c.version.as_str()) {
            selection.containers.push(c.name.clone());
            continue;
        }
        let slot = (c.role.as_str(), c.version.as_str());
        match newest_stopped.get(&slot) {
            Some(other) if other.deployed_at >= c.deployed_at => {
                selection.containers.push(c.name.clone())
            }
            Some(other) => {
                selection.containers.push(other.name.clone());
                newest_stopped.insert(slot, c);
            }
            None => {
                newest_stopped.insert(slot, c);
            }
        }
    }
    selection.versions = by_age
        .iter()
        .map(|(_, v)| v.to_string())
        .filter(|v| !kept.contains(v.as_str()))
        .collect();
    selection.containers.sort();
    selection
}

/// What a host lost.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub containers: usize,
    pub images: Vec<String>,
}

impl DockerExecutor {
    /// Applies `retain_versions` on `host`; `repository` is the service's image without a
    /// tag (deploy.yml's `image`).
    pub async fn prune(
        &self,
        host: &str,
        repository: &str,
        keep: usize,
    ) -> Result<Pruned, ExecError> {
        // Removing is a side effect like any other: only while the lock is ours.
        self.check_lock(host).await?;
        let h = self.host(host)?;
        let service = &self.spec().service;
        let labels = [("odysseus.service", service.as_str())];
        let running: BTreeSet<String> = h
            .engine
            .list(&labels, false)
            .await?
            .into_iter()
            .map(|(_, name, _)| name)
            .collect();
        let seen: Vec<Seen> = h
            .engine
            .list(&labels, true)
            .await?
            .into_iter()
            .filter_map(|(_, name, l)| {
                Some(Seen {
                    running: running.contains(&name),
                    role: l.get("odysseus.role").cloned().unwrap_or_default(),
                    version: l.get("odysseus.version")?.clone(),
                    deployed_at: l.get("odysseus.deployed_at").cloned().unwrap_or_default(),
                    name,
                })
            })
            .collect();
        let selection = select(&seen, keep);
        let mut pruned = Pruned::default();
        // The images the removed containers were created from, when they are this
        // version of the service's image (a container of another repository — deploy.yml
        // changed its `image` since — leaves its image alone).
        let mut images = BTreeSet::new();
        for name in &selection.containers {
            if let Some(c) = h.engine.inspect(name).await? {
                if c.running {
                    continue; // never a running container, whatever the listing said
                }
                let version = c
                    .labels
                    .get("odysseus.version")
                    .cloned()
                    .unwrap_or_default();
                if selection.versions.contains(&version)
                    && c.image == format!("{repository}:{version}")
                {
                    images.insert(c.image.clone());
                }
            }
            h.engine.remove(name).await?;
            pruned.containers += 1;
        }
        for image in images {
            // Refused while any container (of any service) still uses it: then it stays.
            if h.engine.remove_image(&image).await? {
                pruned.images.push(image);
            }
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, version: &str, at: &str, running: bool) -> Seen {
        Seen {
            name: name.into(),
            role: "web".into(),
            version: version.into(),
            deployed_at: at.into(),
            running,
        }
    }

    #[test]
    fn the_newest_versions_and_the_serving_one_stay() {
        let seen = [
            c("a1", "v1", "2026-01-01", false),
            c("a2", "v2", "2026-01-02", false),
            c("a3", "v3", "2026-01-03", false),
            c("a4", "v4", "2026-01-04", true),
        ];
        let s = select(&seen, 2);
        assert_eq!(s.containers, ["a1", "a2"]);
        assert_eq!(s.versions, ["v2", "v1"]);
        // A rolled-back fleet serves an old version: it stays whatever its age.
        let seen = [
            c("a1", "v1", "2026-01-01", true),
            c("a2", "v2", "2026-01-02", false),
            c("a3", "v3", "2026-01-03", false),
        ];
        let s = select(&seen, 1);
        assert_eq!(s.containers, ["a2"]);
        assert_eq!(s.versions, ["v2"]);
    }

    #[test]
    fn older_stopped_twins_of_a_kept_version_go_and_nothing_runs_is_fine() {
        let seen = [
            c("web-v2-a", "v2", "2026-01-02", false),
            c("web-v2-b", "v2", "2026-01-05", false),
            c("web-v3", "v3", "2026-01-06", true),
        ];
        let s = select(&seen, 5);
        assert_eq!(s.containers, ["web-v2-a"]);
        assert!(s.versions.is_empty());
        // A redeploy of the serving version leaves a stopped twin of it: it goes.
        let seen = [
            c("web-v3-a", "v3", "2026-01-06", false),
            c("web-v3-b", "v3", "2026-01-07", true),
        ];
        assert_eq!(select(&seen, 1).containers, ["web-v3-a"]);
        assert_eq!(select(&[], 3), Selection::default());
        // Each role keeps its own newest stopped container of a kept version.
        let jobs = Seen {
            role: "jobs".into(),
            ..c("jobs-v2", "v2", "2026-01-03", false)
        };
        let seen = [
            c("web-v2", "v2", "2026-01-02", false),
            jobs,
            c("web-v3", "v3", "2026-01-06", true),
        ];
        assert!(select(&seen, 2).containers.is_empty());
        // keep 0 is treated as 1: the newest version always stays.
        let s = select(&[c("x", "v1", "2026", false)], 0);
        assert!(s.containers.is_empty());
    }
}
