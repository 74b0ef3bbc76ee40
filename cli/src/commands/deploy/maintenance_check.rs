//! What maintenance mode looks like on the hosts before anything changes: `app
//! maintenance` needs a route on every host to put in it, `app live` has nothing to do
//! where no host is in it, and a deploy says which hosts will keep (or not get) the page.

use odysseus_executors::docker::DockerExecutor;
use odysseus_executors::steps::HostOps;

use crate::exit::Exit;

/// Refuses `app maintenance` (with `on`) where a host has no route for the service, and
/// ends `app live` at once where no host is in maintenance. `None`: go on.
pub(super) async fn before_toggle(
    executor: &DockerExecutor,
    service: &str,
    hosts: &[String],
    on: bool,
) -> Option<Exit> {
    let mut in_maintenance = 0;
    for host in hosts {
        let answer = if on {
            executor.route(host).await.map(|r| r.is_some())
        } else {
            executor.maintenance(host).await.map(|p| p.is_some())
        };
        match answer {
            Ok(true) => in_maintenance += 1,
            Ok(false) if on => {
                eprintln!(
                    "odysseus: {service} has no route on {host} (no odysseus-caddy there, or {service} was never deployed there): there is nothing to put in maintenance. Deploy it there first.\nNothing was changed."
                );
                return Some(Exit::Blocked);
            }
            Ok(false) => {}
            Err(e) => {
                eprintln!("odysseus: {host}: {e}\nNothing was changed.");
                return Some(Exit::Blocked);
            }
        }
    }
    if !on && in_maintenance == 0 {
        eprintln!(
            "{service} is not in maintenance on {}: nothing to do.",
            hosts.join(", ")
        );
        return Some(Exit::Ok);
    }
    None
}

/// For a deploy: where the service is in maintenance (the page stays) and, when some
/// hosts are, which ones will serve the app all the same (a host new to the service, or
/// one taken out of maintenance alone). Asked before anything changes; `None` when no
/// host is in maintenance (or the hosts could not say).
pub(super) async fn note_for_deploy(
    executor: &DockerExecutor,
    service: &str,
    hosts: &[String],
) -> Option<String> {
    let mut on = Vec::new();
    let mut off = Vec::new();
    for host in hosts {
        match executor.maintenance(host).await {
            Ok(Some(_)) => on.push(host.clone()),
            Ok(None) => off.push(host.clone()),
            Err(_) => {}
        }
    }
    if on.is_empty() {
        return None;
    }
    let mut note = format!(
        "note: {service} is in maintenance on {}: Caddy keeps answering 503 there after this deploy; `odysseus app live` ends it",
        on.join(", ")
    );
    if !off.is_empty() {
        note.push_str(&format!(
            "\nwarning: {} will serve {service} all the same (not in maintenance); `odysseus app maintenance` puts every host in it",
            off.join(", ")
        ));
    }
    Some(note)
}
