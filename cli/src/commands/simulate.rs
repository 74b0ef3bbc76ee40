//! `odysseus simulate`: run a deployment against the simulated world and show what a
//! failure or a crash does before it happens for real.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use odysseus_engine::machine::{FailurePolicy, RoleKind, StepName};
use odysseus_executors::sim::{self, CrashPoint, Fault, Scenario};
use serde_json::json;

use crate::exit::{Exit, UsageError};
use crate::render;

#[derive(Args, Debug)]
#[command(after_help = "\
Simulated hosts are named host1 … hostN; the deployment moves service `app` from v1 (already
serving everywhere) to v2. The run uses a real journal in a temporary directory and the
same runtime as `odysseus deploy`.

Examples:
  odysseus simulate --hosts 3
  odysseus simulate --hosts 3 --fail host2:await-healthy --on-failure rollback
  odysseus simulate --hosts 2 --roles web,jobs --crash-after 7 --crash-after 15

Exit codes: 0 every invariant held and the deployment reached a terminal state;
1 an invariant was violated (the seed replays it); 2 bad usage.")]
pub struct SimulateArgs {
    /// Number of simulated hosts (1-50).
    #[arg(long, default_value_t = 3)]
    hosts: usize,
    /// Roles, comma-separated, in config order; `web` is proxied, any other is a job role.
    #[arg(long, value_delimiter = ',', default_value = "web")]
    roles: Vec<String>,
    /// Make STEP fail on HOST, TIMES times (default: every time). Repeatable.
    #[arg(long, value_name = "HOST:STEP[:TIMES]")]
    fail: Vec<String>,
    /// Kill the simulated process right after the Nth journal append, then resume it
    /// from the journal. Repeatable.
    #[arg(long, value_name = "N")]
    crash_after: Vec<u64>,
    /// What the fleet does when a host fails.
    #[arg(long, value_name = "halt|rollback", default_value = "halt")]
    on_failure: String,
    /// How many hosts deploy at once.
    #[arg(long, default_value_t = 1)]
    batch: u32,
    /// Treat every host as a first deploy (nothing running yet).
    #[arg(long)]
    first_deploy: bool,
    /// Seed of the simulated world's timing; the same seed gives the same output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// One JSON object per event, then a summary object.
    #[arg(long)]
    json: bool,
}

fn parse_fail(spec: &str, hosts: usize) -> Result<Fault, UsageError> {
    let parts: Vec<&str> = spec.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(UsageError(format!(
            "--fail {spec}: expected HOST:STEP[:TIMES], e.g. host2:await-healthy:2"
        )));
    }
    let host = parts[0];
    let valid_host = host
        .strip_prefix("host")
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| (1..=hosts).contains(&n));
    if !valid_host {
        return Err(UsageError(format!(
            "--fail {spec}: no simulated host `{host}` (hosts are host1..host{hosts})"
        )));
    }
    let step: StepName = parts[1]
        .parse()
        .map_err(|e| UsageError(format!("--fail {spec}: {e}")))?;
    let times = match parts.get(2) {
        Some(t) => t
            .parse::<u32>()
            .map_err(|_| UsageError(format!("--fail {spec}: TIMES must be a number")))?,
        None => u32::MAX,
    };
    Ok(Fault::Fail {
        host: host.to_string(),
        step,
        times,
        permanent: false,
    })
}

fn scenario(args: &SimulateArgs) -> Result<Scenario, UsageError> {
    if !(1..=50).contains(&args.hosts) {
        return Err(UsageError("--hosts must be between 1 and 50".into()));
    }
    if args.batch == 0 {
        return Err(UsageError("--batch must be at least 1".into()));
    }
    let mut roles: Vec<(&str, RoleKind)> = Vec::new();
    for role in &args.roles {
        let role = role.trim();
        if role.is_empty()
            || !role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(UsageError(format!(
                "--roles: `{role}` is not a role name (letters, digits, - and _)"
            )));
        }
        if roles.iter().any(|(r, _)| *r == role) {
            return Err(UsageError(format!("--roles: `{role}` is listed twice")));
        }
        roles.push((
            role,
            if role == "web" {
                RoleKind::Web
            } else {
                RoleKind::Job
            },
        ));
    }
    let mut s = Scenario::simple(args.seed, args.hosts, &roles);
    s.on_failure = match args.on_failure.as_str() {
        "halt" => FailurePolicy::Halt,
        "rollback" => FailurePolicy::Rollback,
        other => {
            return Err(UsageError(format!(
                "--on-failure: `{other}` is neither halt nor rollback"
            )))
        }
    };
    s.batch_size = args.batch;
    s.first_deploy = vec![args.first_deploy; args.hosts];
    s.faults = args
        .fail
        .iter()
        .map(|f| parse_fail(f, args.hosts))
        .collect::<Result<_, _>>()?;
    s.crashes = args
        .crash_after
        .iter()
        .map(|&n| CrashPoint::AfterAppend(n))
        .collect();
    Ok(s)
}

pub fn run(args: SimulateArgs) -> anyhow::Result<Exit> {
    let scenario = scenario(&args)?;
    let dir = scratch_dir()?;
    let outcome = sim::run(&scenario, &dir);
    let _ = std::fs::remove_dir_all(&dir);

    let started = outcome.live.started().or(outcome.folded.started());
    let t0 = outcome.events.first().map_or(0, |e| e.at.0);
    let mut out = String::new();
    if !args.json {
        out.push_str(&format!(
            "simulate: {} host(s), roles {}, batch {}, on_failure {}, seed {}\n",
            args.hosts,
            args.roles.join(","),
            args.batch,
            scenario.on_failure.as_str(),
            args.seed
        ));
        out.push_str(&format!(
            "deployment {}: app v1 -> v2\n",
            outcome.deployment
        ));
    }
    for (seq, event) in outcome.events.iter().enumerate() {
        let seq = seq as u64;
        if args.json {
            out.push_str(&render::event::json(seq, event, started).to_string());
        } else {
            out.push_str(&render::event::text_line(seq, event, started, t0));
        }
        out.push('\n');
        if !args.json {
            for (after, _) in outcome.crashes.iter().filter(|(after, _)| *after == seq) {
                out.push_str(&format!("-- the process was killed after #{after}; a new one resumes from the journal --\n"));
            }
        }
    }
    let held = outcome.invariants_held();
    let problems: Vec<&String> = outcome
        .violations
        .iter()
        .chain(outcome.errors.iter())
        .collect();
    if args.json {
        let summary = json!({
            "type": "summary",
            "seed": args.seed,
            "deployment": outcome.deployment.to_string(),
            "terminal_state": outcome.phase().as_str(),
            "invariants_held": held,
            "violations": problems,
            "crashes": outcome.crashes.iter().map(|(after, _)| json!({"after_seq": after})).collect::<Vec<_>>(),
            "targets": outcome.targets.iter().map(|t| json!({
                "host": t.host, "role": t.role, "version": t.version, "status": t.status.as_str()
            })).collect::<Vec<_>>(),
        });
        out.push_str(&summary.to_string());
        out.push('\n');
    } else {
        out.push_str(&format!("result: {}\n", outcome.phase().as_str()));
        for t in &outcome.targets {
            out.push_str(&format!(
                "  {:<8} {:<8} {:<6} ({})\n",
                t.host,
                t.role,
                t.version,
                t.status.as_str()
            ));
        }
        if held {
            out.push_str("invariants: all held (availability, routing, draining, convergence, no twins, replay)\n");
        } else {
            out.push_str("invariants: VIOLATED\n");
            for p in &problems {
                out.push_str(&format!("  - {p}\n"));
            }
        }
        out.push_str(&format!("seed: {}\n", args.seed));
    }
    crate::exit::print_stdout(&out)?;
    Ok(if held { Exit::Ok } else { Exit::Failed })
}

fn scratch_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = base.join(format!("odysseus-simulate-{}-{nanos}", std::process::id()));
    if dir.exists() {
        bail!("scratch directory {} already exists", dir.display());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
