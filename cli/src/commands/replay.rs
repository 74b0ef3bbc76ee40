//! `odysseus replay` and `odysseus history`: the audit trail, read from the journal.

use clap::Args;
use odysseus_engine::journal::Journal;
use odysseus_engine::machine::{DeploymentState, Event};
use odysseus_engine::DeploymentId;
use serde_json::{json, Value};

use crate::exit::{print_stdout, Exit, UsageError};
use crate::render;
use crate::state::open_journal;
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(after_help = "\
Shows every event of a deployment in order: time, host, role, step, attempt, outcome and
duration; who deployed which image from which config digest; resumes and lock takeovers.

Exit codes: 0 shown (and verified); 1 --verify found a corrupt or missing record (the
message names the deployment and sequence number); 2 bad usage.")]
pub struct ReplayArgs {
    /// A deployment id (or a unique prefix of one), or `latest`.
    #[arg(default_value = "latest")]
    deployment: String,
    /// One JSON document: `deployment` and `events`.
    #[arg(long)]
    json: bool,
    /// Check every record's checksum and the sequence of every deployment of the service.
    #[arg(long)]
    verify: bool,
    /// Read only this state dir's journal, not the hosts' copies.
    #[arg(long)]
    local: bool,
}

#[derive(Args, Debug)]
#[command(after_help = "Exit codes: 0 shown; 2 bad usage.")]
pub struct HistoryArgs {
    /// One JSON document: a list of deployments, newest first.
    #[arg(long)]
    json: bool,
    /// Read only this state dir's journal, not the hosts' copies.
    #[arg(long)]
    local: bool,
}

/// The journal to read: this state dir's, first brought up to the hosts' copies (the
/// audit trail lives with the fleet: a new machine reads it there). Unless `local`, or
/// when deploy.yml cannot be loaded (then with a warning). The conflicts found, if any.
fn journal_with_hosts(
    global: &GlobalArgs,
    local: bool,
) -> anyhow::Result<(Journal, Option<crate::journal_sync::Synced>)> {
    if local {
        return Ok((open_journal(global, false)?, None));
    }
    let config = match crate::config::load_with(
        &global.config,
        &|name| std::env::var(name).ok(),
        crate::config::SecretsHere::MayLack,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "warning: {} does not load, so the hosts' journal is not read (this state dir's only):\n{e}",
                global.config.display()
            );
            return Ok((open_journal(global, false)?, None));
        }
    };
    let journal = open_journal(global, true)?;
    let synced =
        crate::commands::runtime()?.block_on(crate::journal_sync::from_hosts(&journal, &config))?;
    for note in synced.notes() {
        eprintln!("{note}");
    }
    Ok((journal, Some(synced).filter(|s| s.conflicts())))
}

/// The service named by deploy.yml; only its `service:` key is needed here.
fn service_name(global: &GlobalArgs) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(&global.config)
        .map_err(|e| UsageError(format!("{}: cannot read: {e}", global.config.display())))?;
    let value: Value = serde_saphyr::from_str(&text).map_err(|e| {
        UsageError(format!(
            "{}: {}",
            global.config.display(),
            e.without_snippet()
        ))
    })?;
    value
        .get("service")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| UsageError(format!("{}: no `service:` key", global.config.display())).into())
}

fn resolve(journal: &Journal, service: &str, wanted: &str) -> anyhow::Result<DeploymentId> {
    let ids = journal.deployments(service)?;
    if wanted == "latest" {
        return ids
            .first()
            .copied()
            .ok_or_else(|| UsageError(format!("service {service} has no deployment yet")).into());
    }
    let matches: Vec<_> = ids
        .iter()
        .filter(|id| id.to_string().starts_with(wanted))
        .collect();
    match matches.as_slice() {
        [one] => Ok(**one),
        [] => Err(UsageError(format!(
            "no deployment of {service} starts with `{wanted}` (see `odysseus history`)"
        ))
        .into()),
        _ => Err(UsageError(format!(
            "`{wanted}` names {} deployments; give more digits",
            matches.len()
        ))
        .into()),
    }
}

pub fn replay(global: &GlobalArgs, args: ReplayArgs) -> anyhow::Result<Exit> {
    let service = service_name(global)?;
    let (journal, conflicts) = journal_with_hosts(global, args.local)?;
    if let Some(c) = &conflicts {
        eprintln!("odysseus: {}", c.conflict_report(&service));
        if args.verify {
            return Ok(Exit::Failed);
        }
    }
    let in_conflict = |id: DeploymentId| {
        conflicts.as_ref().is_some_and(|c| {
            c.disagreements.iter().any(|(d, _)| *d == id)
                || c.unusable.iter().any(|(_, d, _)| *d == id)
                || c.refused.iter().any(|(d, _, _)| *d == id)
        })
    };
    if args.verify {
        let mut total = 0;
        for id in journal.deployments(&service)? {
            match journal.verify(id) {
                Ok(n) => total += n,
                Err(e) => {
                    eprintln!("odysseus: {e}");
                    return Ok(Exit::Failed);
                }
            }
        }
        eprintln!("verified {total} record(s) of every deployment of {service}: checksums and sequence intact");
    }
    let id = match resolve(&journal, &service, &args.deployment) {
        Ok(id) => id,
        // The deployment may be the one the report above is about.
        Err(_) if conflicts.is_some() => return Ok(Exit::Failed),
        Err(e) => return Err(e),
    };
    if in_conflict(id) {
        // Shown from one copy, it would take a side the copies do not agree on.
        return Ok(Exit::Failed);
    }
    let events = journal.load(id)?;
    let state = DeploymentState::fold(&events)?;
    let started = state.started();
    let mut out = String::new();
    if args.json {
        let durations = step_durations(&events);
        let events: Vec<Value> = events
            .iter()
            .enumerate()
            .map(|(seq, e)| {
                let mut v = render::event::json(seq as u64, e, started);
                if let Some(ms) = durations[seq] {
                    v["duration_ms"] = json!(ms);
                }
                v
            })
            .collect();
        out = serde_json::to_string_pretty(
            &json!({"deployment": render::deployment_json(&state), "events": events}),
        )?;
        out.push('\n');
    } else if let Some(s) = started {
        // A cleanup deployed no version: it says which hosts it emptied.
        let what = if !s.plan.purpose.is_undoable() {
            let verb = match s.plan.purpose {
                odysseus_engine::machine::Purpose::Cleanup => "off",
                _ => "on",
            };
            format!(
                "{} {} of {}: {verb} {}",
                s.plan.purpose.as_str(),
                s.id,
                s.service,
                s.plan.hosts().join(", ")
            )
        } else {
            format!(
                "deployment {} of {}: {}:{}",
                s.id, s.service, s.image, s.version
            )
        };
        out.push_str(&format!(
            "{what} — {}\nstarted {} by {}, config {}\n",
            state.phase.as_str(),
            state.started_at,
            s.operator,
            s.config_digest
        ));
        if let Some(p) = &state.provenance {
            let ids: Vec<String> = p
                .images
                .iter()
                .map(|i| format!("{} {}", i.host, i.image_id.as_deref().unwrap_or("(none)")))
                .collect();
            out.push_str(&format!("image ids: {}\n", ids.join(", ")));
            if !p.secrets.is_empty() {
                out.push_str(&format!(
                    "secrets: {} (values {})\n",
                    p.secrets.join(", "),
                    p.secrets_digest.as_deref().unwrap_or("-")
                ));
            }
        }
        let t0 = state.started_at.0;
        let durations = step_durations(&events);
        for (seq, event) in events.iter().enumerate() {
            out.push_str(&render::event::text_line(seq as u64, event, started, t0));
            if let Some(ms) = durations[seq] {
                out.push_str(&format!(" ({:.2}s)", ms as f64 / 1000.0));
            }
            out.push('\n');
        }
    }
    print_stdout(&out)?;
    Ok(Exit::Ok)
}

/// For each event, the duration of the step it ends (time since its step-started).
fn step_durations(events: &[Event]) -> Vec<Option<u64>> {
    let mut timer = render::event::StepTimer::default();
    events.iter().map(|e| timer.duration(e)).collect()
}

pub fn history(global: &GlobalArgs, args: HistoryArgs) -> anyhow::Result<Exit> {
    let service = service_name(global)?;
    let (journal, conflicts) = journal_with_hosts(global, args.local)?;
    let mut rows = Vec::new();
    let mut unreadable = 0;
    for id in journal.deployments(&service)? {
        let state = match journal
            .load(id)
            .map_err(anyhow::Error::from)
            .and_then(|e| Ok(DeploymentState::fold(&e)?))
        {
            Ok(s) => s,
            Err(e) => {
                unreadable += 1;
                rows.push(
                    json!({"id": id.to_string(), "status": "unreadable", "error": e.to_string()}),
                );
                continue;
            }
        };
        rows.push(render::deployment_json(&state));
    }
    let out = if args.json {
        serde_json::to_string_pretty(&rows)? + "\n"
    } else {
        let mut out = String::new();
        for r in &rows {
            out.push_str(&format!(
                "{}  {:<24} {:<20} {:<20} {:>8.1}s  {}\n",
                r["id"].as_str().unwrap_or(""),
                r["started_at"].as_str().unwrap_or(""),
                format!(
                    "{}:{}",
                    r["image"].as_str().unwrap_or("?"),
                    r["version"].as_str().unwrap_or("?")
                ),
                r["status"].as_str().unwrap_or(""),
                r["duration_ms"].as_u64().unwrap_or(0) as f64 / 1000.0,
                r["operator"].as_str().unwrap_or(""),
            ));
        }
        if out.is_empty() {
            out = format!("no deployment of {service} yet\n");
        }
        out
    };
    print_stdout(&out)?;
    if let Some(c) = &conflicts {
        eprintln!("odysseus: {}", c.conflict_report(&service));
        return Ok(Exit::Failed);
    }
    if unreadable > 0 {
        eprintln!(
            "odysseus: {unreadable} deployment(s) above are unreadable: {}",
            crate::state::damaged_journal_advice(global)
        );
        return Ok(Exit::Failed);
    }
    Ok(Exit::Ok)
}
