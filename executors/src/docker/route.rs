//! A service's route on one host, read and written as one thing: which containers Caddy
//! sends the service's requests to, and the route's own settings (hosts, health check).
//!
//! With a Caddy that reads file placeholders the containers live in slot files (see
//! `slots`), so a switch rewrites a file and Caddy does not reload; otherwise (an older
//! Caddy, an image without `mv`) the route lists the containers and every switch is a
//! reload. Either way the caller sees a list of dials.

use odysseus_engine::runtime::ExecError;
use serde_json::Value;

use super::caddy::{listed_dials, route_config, CaddyAdmin, CADDY_CONTAINER};
use super::engine::Engine;
use super::slots::{self, slot_dial, slot_path, SLOT_DIR};
use super::spec::{HttpCheck, ProxySpec};

/// The route as it is now.
struct Current {
    route: Value,
    etag: Option<String>,
    /// What each slot names, when the route uses slots ("" for a slot whose file is
    /// missing: it names nothing, and the next write fills it).
    slots: Option<Vec<String>>,
}

impl Current {
    fn dials(&self) -> Vec<String> {
        match &self.slots {
            Some(held) => slots::distinct(held)
                .into_iter()
                .filter(|d| !d.is_empty())
                .collect(),
            None => listed_dials(&self.route),
        }
    }
}

async fn read_current(
    engine: &Engine,
    admin: &CaddyAdmin,
    service: &str,
) -> Result<Option<Current>, ExecError> {
    let Some((route, etag)) = admin.route(service).await? else {
        return Ok(None);
    };
    let slots = match slots::slots_of(service, &listed_dials(&route)) {
        Some(count) => Some(read_slots(engine, service, count).await?),
        None => None,
    };
    Ok(Some(Current { route, etag, slots }))
}

/// The containers `count` slots name, read in one archive of the service's slot
/// directory ("" for a slot whose file is missing).
async fn read_slots(
    engine: &Engine,
    service: &str,
    count: usize,
) -> Result<Vec<String>, ExecError> {
    let files = engine
        .read_dir_files(CADDY_CONTAINER, &slots::slot_dir(service), 64 * 1024)
        .await?
        .unwrap_or_default();
    Ok((0..count)
        .map(|slot| {
            files
                .iter()
                .find(|(name, _)| *name == slot.to_string())
                .map(|(_, bytes)| String::from_utf8_lossy(bytes).trim().to_string())
                .unwrap_or_default()
        })
        .collect())
}

/// Writes a slot so that Caddy never reads it half-written or missing: the new contents
/// go beside it, then a rename (atomic) replaces it.
async fn write_slot(
    engine: &Engine,
    service: &str,
    slot: usize,
    dial: &str,
) -> Result<(), ExecError> {
    let path = slot_path(service, slot);
    let beside = format!("{}/.{slot}.new", slots::slot_dir(service));
    engine
        .upload_file(CADDY_CONTAINER, &beside, format!("{dial}\n").as_bytes())
        .await?;
    let (code, output) = engine
        .exec(CADDY_CONTAINER, &["mv", "-f", &beside, &path])
        .await?;
    if code != 0 {
        return Err(ExecError::Retryable(format!(
            "moving {service}'s upstream slot {slot} into place in {CADDY_CONTAINER} failed ({code}): {}",
            output.trim()
        )));
    }
    Ok(())
}

/// The containers the service's route sends to; `None` when it has no route.
pub async fn dials(
    engine: &Engine,
    admin: &CaddyAdmin,
    service: &str,
) -> Result<Option<Vec<String>>, ExecError> {
    Ok(read_current(engine, admin, service)
        .await?
        .map(|c| c.dials()))
}

/// Whether this host's Caddy can switch through slots: it reads file placeholders (2.8
/// and later) and its image has `mv` to replace a slot atomically. Asked once per host.
pub async fn can_use_slots(engine: &Engine) -> Result<(), String> {
    let version = match engine
        .exec(CADDY_CONTAINER, &["/usr/bin/caddy", "version"])
        .await
    {
        Ok((0, out)) => out.trim().to_string(),
        Ok((_, out)) => return Err(format!("`caddy version` failed: {}", out.trim())),
        Err(e) => return Err(e.to_string()),
    };
    if !slots::reads_file_placeholders(&version) {
        return Err(format!(
            "its Caddy is {version} (2.8 or later reads upstreams from files)"
        ));
    }
    // A name of this run's own: deployers of other services probe the same Caddy at the
    // same time (their locks are per service), and a shared name would make one of them
    // find the file already moved and wrongly give up slots.
    let probe = format!("{SLOT_DIR}/.probe-{}", unique_suffix());
    let moved = format!("{SLOT_DIR}/.probe-moved");
    if let Err(e) = engine
        .upload_file(CADDY_CONTAINER, &probe, b"probe\n")
        .await
    {
        return Err(e.to_string());
    }
    match engine
        .exec(CADDY_CONTAINER, &["mv", "-f", &probe, &moved])
        .await
    {
        Ok((0, _)) => Ok(()),
        Ok((_, out)) => Err(format!("its Caddy image cannot `mv` ({})", out.trim())),
        Err(e) => Err(e.to_string()),
    }
}

/// Process id and time: distinct between deployers running at once.
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}

/// Writes the service's route: its upstreams edited by `edit`, its matcher and active
/// health check as `proxy` and `health` say now. Returns the dials before and after, or
/// None when the service has no route.
///
/// Through slots, a change of containers alone rewrites slot files and Caddy does not
/// reload. When the route's own settings change too (a reload), slots the new route
/// names for the first time are written before it, and slots it already named after it:
/// the route then judges its containers by the new health check from the moment the
/// switch completes, and never names a slot that holds nothing.
pub async fn write(
    engine: &Engine,
    admin: &CaddyAdmin,
    service: &str,
    proxy: &ProxySpec,
    health: Option<&HttpCheck>,
    use_slots: bool,
    edit: &dyn Fn(&mut Vec<String>),
) -> Result<Option<(Vec<String>, Vec<String>)>, ExecError> {
    let settings = ProxySpec {
        healthcheck: health.cloned(),
        ..proxy.clone()
    };
    for _ in 0..10 {
        let Some(current) = read_current(engine, admin, service).await? else {
            return Ok(None);
        };
        let before = current.dials();
        let mut after = before.clone();
        edit(&mut after);
        let held: &[String] = current.slots.as_deref().unwrap_or(&[]);
        let new_slots = (use_slots && !after.is_empty()).then(|| slots::assign(held, &after));
        let listed: Vec<String> = match &new_slots {
            Some(s) => (0..s.len()).map(|i| slot_dial(service, i)).collect(),
            None => after.clone(),
        };
        let mut wanted = route_config(service, &settings, &listed);
        // In maintenance it stays so; on a Caddy that reads files it carries the switch,
        // so that maintenance on or off is a file, not a reload.
        super::maintenance::carry_over(&current.route, &mut wanted);
        if use_slots {
            super::maintenance::with_switch(service, &mut wanted);
        }
        let named_now = held.len();
        if wanted != current.route {
            if let Some(s) = &new_slots {
                for (slot, dial) in s.iter().enumerate().skip(named_now) {
                    write_slot(engine, service, slot, dial).await?;
                }
            }
            // The host matcher changed (deploy.yml's proxy.hosts): the route may have to
            // move, and a route for any host must not stand where another one does.
            let matcher_changed = current.route.get("match") != wanted.get("match");
            if matcher_changed && wanted.get("match").is_none() {
                admin.refuse_second_catch_all(service).await?;
            }
            if !admin
                .replace_route(service, &wanted, current.etag.as_deref())
                .await?
            {
                continue;
            }
            if matcher_changed {
                admin.order_routes().await?;
            }
        }
        if let Some(s) = &new_slots {
            for (slot, dial) in s.iter().enumerate().take(named_now) {
                if held[slot] != *dial {
                    write_slot(engine, service, slot, dial).await?;
                }
            }
        }
        return Ok(Some((before, after)));
    }
    Err(ExecError::Retryable(
        "the Caddy route kept changing under us (412 ten times)".into(),
    ))
}
