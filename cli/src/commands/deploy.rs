//! `odysseus deploy`: move the service to a new image tag, host by host, through Caddy,
//! with every step journaled before it runs.

use std::cell::RefCell;

use anyhow::Context;
use clap::Args;
use odysseus_engine::journal::{
    self, local_hostname, process_alive, process_start_ticks, Acquired, Journal,
};
use odysseus_engine::machine::{
    DeploymentStarted, DeploymentState, Event, Fact, Phase, RetryPolicy,
};
use odysseus_engine::runtime::{self, plan_deployment, Clock, Runtime, SystemClock, TargetSpec};
use odysseus_engine::{DeploymentId, Operator};
use odysseus_executors::docker::{DockerExecutor, PushOutcome};
use odysseus_executors::fleet_lock::LockFailure;
use odysseus_executors::steps::Steps;

use crate::config::{self, Config};
use crate::exit::{Exit, UsageError};
use crate::progress::Progress;
use crate::render::json_lines::JsonLines;
use crate::state::{open_journal, state_dir};
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(after_help = "\
If a deployment of the service is unfinished (interrupted, halted, or its rollback failed):
  --resume continues it, --abort rolls it back; a plain deploy of the same image resumes it
  and says so; a plain deploy of another image is refused and names the unfinished one.

Exit codes: 0 deployed (or aborted as asked); 1 the deployment failed or was rolled back;
2 bad usage or config; 3 blocked or interrupted (the message names the next command).")]
pub struct DeployArgs {
    /// The tag to deploy: the image is `<image>:<TAG>`.
    #[arg(long, value_name = "TAG")]
    image: Option<String>,
    /// Continue the unfinished deployment.
    #[arg(long, conflicts_with = "abort")]
    resume: bool,
    /// Roll back the unfinished deployment.
    #[arg(long)]
    abort: bool,
    /// Print the plan the engine would run (targets, steps, timeouts, fleet policy) after
    /// looking at what each host runs now; change nothing, write no journal.
    #[arg(long, conflicts_with_all = ["resume", "abort", "push_image"])]
    dry_run: bool,
    /// First send the image from this machine's engine to every host that lacks it
    /// (no registry needed); hosts with the same image id are skipped.
    #[arg(long)]
    push_image: bool,
    /// Stream every event to stdout as it is recorded, one JSON object per line (JSON
    /// Lines), then one `summary` object; progress stays on stderr.
    #[arg(long)]
    json: bool,
    /// Deploy only to these hosts (comma-separated, as written in deploy.yml).
    #[arg(long, value_delimiter = ',', value_name = "HOST,..", conflicts_with_all = ["resume", "abort"])]
    hosts: Vec<String>,
    /// Deploy only these roles (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ROLE,..", conflicts_with_all = ["resume", "abort"])]
    roles: Vec<String>,
}

fn operator() -> Operator {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".into());
    Operator {
        user,
        hostname: local_hostname(),
        pid: std::process::id(),
    }
}

/// The login name of this process's real uid, from /proc and /etc/passwd (cron and
/// CI environments often have no USER).
fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_string())
    })
}

fn new_deployment_id(now_millis: u64) -> DeploymentId {
    let mut nonce = [0u8; 4];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut nonce));
    let nonce = match random {
        Ok(()) => u32::from_le_bytes(nonce),
        Err(_) => std::process::id() ^ (now_millis as u32).rotate_left(13),
    };
    DeploymentId {
        millis: now_millis,
        nonce,
    }
}

/// The command a person runs next, with the same config and state dir.
fn next_command(global: &GlobalArgs, flag: &str) -> String {
    let mut cmd = format!("odysseus deploy -c {}", global.config.display());
    if let Some(dir) = &global.state_dir {
        cmd.push_str(&format!(" --state-dir {}", dir.display()));
    }
    cmd.push(' ');
    cmd.push_str(flag);
    cmd
}

fn what_next(global: &GlobalArgs) -> String {
    format!(
        "To continue: {}\nTo roll back: {}",
        next_command(global, "--resume"),
        next_command(global, "--abort")
    )
}

impl DeployArgs {
    /// A plain deploy of one version (what `rollback` runs).
    pub fn for_version(version: String) -> Self {
        DeployArgs {
            image: Some(version),
            resume: false,
            abort: false,
            dry_run: false,
            push_image: false,
            json: false,
            hosts: Vec::new(),
            roles: Vec::new(),
        }
    }
}

pub fn run(global: &GlobalArgs, args: DeployArgs) -> anyhow::Result<Exit> {
    let mut config = config::load(&global.config, &|name| std::env::var(name).ok())
        .map_err(|e| UsageError(e.to_string()))?;
    config
        .restrict(&args.hosts, &args.roles)
        .map_err(UsageError)?;
    for key in &config.not_yet_supported {
        eprintln!(
            "warning: `{key}` in {} is accepted but not acted on yet",
            config.path.display()
        );
    }
    for warning in &config.warnings {
        eprintln!("warning: {}: {warning}", config.path.display());
    }
    let runtime = super::runtime()?;
    if args.dry_run {
        return runtime.block_on(dry_run(args, config));
    }
    runtime.block_on(deploy(global, args, config))
}

fn target_specs(config: &Config, hosts: &[String]) -> Vec<TargetSpec> {
    hosts
        .iter()
        .flat_map(|host| {
            config
                .roles
                .iter()
                .filter(|r| r.hosts.contains(host))
                .map(|r| TargetSpec {
                    role: r.name.clone(),
                    host: host.clone(),
                    kind: r.kind,
                    timeouts: r.timeouts,
                })
        })
        .collect()
}

/// The plan, from a read-only look at every host: no lock, no journal, no side effect.
async fn dry_run(args: DeployArgs, config: Config) -> anyhow::Result<Exit> {
    let tag = args.image.or(config.default_tag.clone()).ok_or_else(|| {
        UsageError("which version? pass --image TAG (the image is `<image>:<TAG>`)".into())
    })?;
    let hosts = config.hosts();
    let executor =
        match DockerExecutor::connect(config.spec.clone(), &hosts, &config.ssh, config.ssh_port)
            .await
        {
            Ok(e) => e,
            Err(e) => {
                eprintln!("odysseus: {e}");
                return Ok(Exit::Blocked);
            }
        };
    let batch = config.batch_size.hosts(hosts.len());
    let retry = RetryPolicy::default();
    let plan = match plan_deployment(
        &Steps::new(&executor),
        &config.service,
        &target_specs(&config, &hosts),
        batch,
        config.on_failure,
        retry,
    )
    .await
    {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("odysseus: {e}");
            return Ok(Exit::Blocked);
        }
    };
    let mut out = format!(
        "Plan for {}:{tag} (dry run: nothing was changed)\n  batch {} host(s) at a time, on_failure {}, up to {} attempts per step\n",
        config.image,
        plan.batch_size,
        plan.on_failure.as_str(),
        plan.retry.max_attempts
    );
    for (i, t) in plan.targets.iter().enumerate() {
        let replaces = if t.old_containers.is_empty() {
            "first deploy".to_string()
        } else {
            format!(
                "replaces {} ({})",
                t.old_containers.join(", "),
                t.old_version.as_deref().unwrap_or("unknown version")
            )
        };
        out.push_str(&format!(
            "  {}. {} (batch {}) — {replaces}\n",
            i + 1,
            t.label(),
            plan.batch_of(i) + 1
        ));
        let steps: Vec<&str> = t.steps().iter().map(|s| s.as_str()).collect();
        out.push_str(&format!("     steps: {}\n", steps.join(" → ")));
        out.push_str(&format!(
            "     timeouts: boot {}s, drain {}s, stop {}s\n",
            t.timeouts.boot_ms / 1000,
            t.timeouts.drain_ms / 1000,
            t.timeouts.stop_ms / 1000
        ));
    }
    crate::exit::print_stdout(&out)?;
    Ok(Exit::Ok)
}

enum Mode {
    Start(String),
    Resume(DeploymentId, &'static str),
    Abort(DeploymentId),
}

async fn deploy(global: &GlobalArgs, args: DeployArgs, config: Config) -> anyhow::Result<Exit> {
    let journal = open_journal(global, true)?;
    let service = config.service.clone();
    let clock = SystemClock;
    let me = operator();
    let my_start = process_start_ticks(me.pid).unwrap_or(0);

    // Decide what this run does before touching anything.
    let unfinished = journal.unfinished(&service)?;
    let mode = match (unfinished, args.resume, args.abort) {
        (Some(id), _, true) => Mode::Abort(id),
        (Some(id), true, _) => Mode::Resume(id, "resuming"),
        (Some(id), false, false) if !args.hosts.is_empty() || !args.roles.is_empty() => {
            // Its plan names its own targets; a narrowed run cannot continue it.
            eprintln!(
                "odysseus: deployment {id} is unfinished; --hosts and --roles apply to new deployments only.\n{}",
                what_next(global)
            );
            return Ok(Exit::Blocked);
        }
        (Some(id), false, false) => {
            let state = DeploymentState::fold(&journal.load(id)?)?;
            let started = state
                .started()
                .context("the unfinished deployment has no start event")?;
            let wanted = args.image.clone().or(config.default_tag.clone());
            if wanted.is_none() || wanted.as_deref() == Some(started.version.as_str()) {
                Mode::Resume(
                    id,
                    "an unfinished deployment of the same image exists: resuming it",
                )
            } else {
                eprintln!(
                    "odysseus: deployment {id} of {}:{} is unfinished ({}); refusing to start {}:{}.\n{}",
                    started.image,
                    started.version,
                    state.phase.as_str(),
                    config.image,
                    wanted.unwrap_or_default(),
                    what_next(global)
                );
                return Ok(Exit::Blocked);
            }
        }
        (None, true, _) | (None, _, true) => {
            return Err(UsageError(format!(
                "service {service} has no unfinished deployment to resume or abort"
            ))
            .into());
        }
        (None, false, false) => match args.image.clone().or(config.default_tag.clone()) {
            Some(tag) => Mode::Start(tag),
            None => {
                return Err(UsageError(
                    "which version? pass --image TAG (the image is `<image>:<TAG>`)".into(),
                )
                .into())
            }
        },
    };

    let lock =
        match journal.acquire_lock(&service, &me, my_start, clock.now(), None, &process_alive) {
            Ok(lock) => lock,
            Err(journal::Error::Locked { holder, .. }) => {
                eprintln!(
                "odysseus: {service} is being deployed by {} since {}{}; try again when it is done",
                holder.owner,
                holder.since,
                holder.deployment.map(|d| format!(" (deployment {d})")).unwrap_or_default()
            );
                return Ok(Exit::Blocked);
            }
            Err(e) => return Err(e.into()),
        };
    let result = drive(global, &config, &journal, &clock, &me, &lock, mode, &args).await;
    journal.release_lock(&service, lock.token())?;
    result
}

// The run's whole context, passed as it is rather than bundled into a one-use struct.
#[allow(clippy::too_many_arguments)]
async fn drive(
    global: &GlobalArgs,
    config: &Config,
    journal: &Journal,
    clock: &SystemClock,
    me: &Operator,
    lock: &Acquired,
    mode: Mode,
    args: &DeployArgs,
) -> anyhow::Result<Exit> {
    // A new deployment goes to the config's hosts; an unfinished one to the hosts its
    // recorded plan names (deploy.yml may have changed since).
    let hosts = match &mode {
        Mode::Start(_) => config.hosts(),
        Mode::Resume(id, _) | Mode::Abort(id) => {
            let state = DeploymentState::fold(&journal.load(*id)?)?;
            let mut hosts: Vec<String> = Vec::new();
            for t in state
                .started()
                .map(|s| s.plan.targets.as_slice())
                .unwrap_or_default()
            {
                if !hosts.contains(&t.host) {
                    hosts.push(t.host.clone());
                }
            }
            hosts
        }
    };
    let executor =
        match DockerExecutor::connect(config.spec.clone(), &hosts, &config.ssh, config.ssh_port)
            .await
        {
            Ok(e) => e,
            Err(e) => {
                eprintln!("odysseus: {e}\nNothing was changed.");
                return Ok(Exit::Blocked);
            }
        };
    let web_hosts: Vec<String> = config
        .roles
        .iter()
        .filter(|r| r.kind == odysseus_engine::machine::RoleKind::Web)
        .flat_map(|r| r.hosts.clone())
        .filter(|h| hosts.contains(h))
        .collect();
    if let Err(e) = executor.preflight(&web_hosts).await {
        eprintln!("odysseus: {e}\nNothing was changed.");
        return Ok(Exit::Blocked);
    }
    // The lock on the hosts themselves: refuses a second operator (another machine or
    // another state dir) and frees itself when this process or its connection dies.
    let holder = format!(
        "{me}, since {}, state dir {}",
        clock.now(),
        state_dir(global).display()
    );
    let fleet_lock = match executor.lock_fleet(&config.service, &holder).await {
        Ok(lock) => lock,
        Err(LockFailure::Held { host, holder }) => {
            eprintln!(
                "odysseus: {} is being deployed on {host} by {}; try again when it is done.\nNothing was changed.",
                config.service,
                holder.trim()
            );
            return Ok(Exit::Blocked);
        }
        Err(LockFailure::Failed(e)) => {
            eprintln!("odysseus: could not take the deploy lock: {e}\nNothing was changed.");
            return Ok(Exit::Blocked);
        }
    };
    if args.push_image {
        if let Mode::Start(tag) = &mode {
            if let Err(e) = push_and_report(&executor, &format!("{}:{tag}", config.image)).await {
                eprintln!("odysseus: {e}\nNothing was changed.");
                return Ok(Exit::Blocked);
            }
        }
    }
    if let Mode::Start(tag) = &mode {
        if let Err(e) = executor
            .pull_everywhere(&format!("{}:{tag}", config.image))
            .await
        {
            eprintln!("odysseus: {e}\nNothing was changed.");
            return Ok(Exit::Blocked);
        }
    }
    let preamble = match &mode {
        Mode::Start(tag) => {
            vec![provenance(&executor, config, &hosts, tag, &state_dir(global)).await]
        }
        _ => Vec::new(),
    };
    let progress = RefCell::new(Progress::new());
    let json_lines = RefCell::new(args.json.then(JsonLines::default));
    let steps = Steps::new(&executor);
    let mut runtime = Runtime::new(journal, &steps, clock)
        .preamble(preamble)
        .on_event(|seq, event: &Event, state| {
            progress.borrow_mut().event(seq, event, state);
            if let Some(lines) = json_lines.borrow_mut().as_mut() {
                lines.event(seq, event, state);
            }
        });
    let aborting = matches!(mode, Mode::Abort(_));
    // Known before anything runs, so an interruption can be recorded against it.
    let id = match &mode {
        Mode::Start(_) => new_deployment_id(clock.now().0),
        Mode::Resume(id, _) | Mode::Abort(id) => *id,
    };
    let run = async {
        match mode {
            Mode::Start(tag) => {
                let specs = target_specs(config, &hosts);
                let batch = config.batch_size.hosts(hosts.len());
                let plan = plan_deployment(
                    &steps,
                    &config.service,
                    &specs,
                    batch,
                    config.on_failure,
                    RetryPolicy::default(),
                )
                .await
                .map_err(Err::<anyhow::Error, _>)?;
                journal
                    .set_lock_deployment(&config.service, lock.token(), id)
                    .map_err(|e| Ok(e.into()))?;
                let started = DeploymentStarted {
                    id,
                    service: config.service.clone(),
                    image: config.image.clone(),
                    version: tag,
                    config_digest: config.digest.clone(),
                    plan,
                    operator: me.clone(),
                    lock_token: lock.token(),
                };
                eprintln!(
                    "Deploying {}:{} (deployment {id}); journal in {}",
                    started.image,
                    started.version,
                    state_dir(global).display()
                );
                Ok(runtime.start(started, lock).await)
            }
            Mode::Resume(id, why) => {
                eprintln!("Deployment {id}: {why}");
                journal
                    .set_lock_deployment(&config.service, lock.token(), id)
                    .map_err(|e| Ok(e.into()))?;
                Ok(runtime.resume(id, me.clone(), lock).await)
            }
            Mode::Abort(id) => {
                eprintln!("Deployment {id}: rolling back every target it touched");
                journal
                    .set_lock_deployment(&config.service, lock.token(), id)
                    .map_err(|e| Ok(e.into()))?;
                Ok(runtime.abort(id, me.clone(), lock).await)
            }
        }
    };
    // Ctrl-C or SIGTERM: abandon the current step (its intent is in the journal, and
    // whoever resumes observes it), record the interruption, release the lock.
    let outcome: Result<
        Result<DeploymentState, runtime::Error>,
        Result<anyhow::Error, runtime::Error>,
    > = tokio::select! {
        outcome = run => outcome,
        signal = stop_signal() => {
            drop(runtime);
            progress.borrow_mut().finish();
            return interrupted(global, journal, me, id, &signal);
        }
    };
    // The spinners go before any closing message is printed.
    progress.borrow_mut().finish();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(Ok(e)) => return Err(e),
        Err(Err(e)) => {
            eprintln!("odysseus: {e}\nNothing was changed.");
            return Ok(Exit::Blocked);
        }
    };
    drop(runtime);
    let state = match outcome {
        Ok(state) => state,
        Err(runtime::Error::NotResumable(id, phase)) => {
            return Err(UsageError(format!(
                "deployment {id} is {phase}: there is nothing to resume"
            ))
            .into());
        }
        Err(e @ runtime::Error::Machine(_)) => {
            eprintln!(
                "odysseus: {e}\nThis is a bug in odysseus; the journal is intact.\n{}",
                what_next(global)
            );
            return Ok(Exit::Internal);
        }
        Err(e) => {
            eprintln!(
                "odysseus: the deployment was interrupted: {e}\n{}",
                what_next(global)
            );
            return Ok(Exit::Blocked);
        }
    };
    if state.phase == Phase::Completed {
        prune(&executor, config, &hosts).await;
    }
    fleet_lock.release().await;
    if args.json {
        print_summary_json(&state);
    } else {
        print_summary(global, &state);
    }

    Ok(match state.phase {
        Phase::Completed => Exit::Ok,
        Phase::Aborted if aborting => Exit::Ok,
        _ => Exit::Failed,
    })
}

/// What exactly is deployed, for the journal: each host's image id for the tag and the
/// secrets' names with a digest of their values.
async fn provenance(
    executor: &DockerExecutor,
    config: &Config,
    hosts: &[String],
    tag: &str,
    state_dir: &std::path::Path,
) -> Fact {
    let image = format!("{}:{tag}", config.image);
    let mut images = Vec::new();
    for host in hosts {
        let image_id = match executor.host(host) {
            Ok(h) => h.engine.image_id(&image).await.ok().flatten(),
            Err(_) => None,
        };
        images.push(odysseus_engine::machine::HostImage {
            host: host.clone(),
            image_id,
        });
    }
    Fact::Provenance {
        images,
        secrets: config.secret_names.clone(),
        // A failure to make the key leaves the digest out; it never stops a deploy.
        secrets_digest: crate::secrets_digest::secrets_digest(
            state_dir,
            &config.secret_names,
            &config.spec.env,
        )
        .ok()
        .flatten(),
    }
}

/// `retain_versions`, after a completed deployment, while the lock is still held. A
/// failure here is reported and changes nothing else: the next deploy prunes again.
async fn prune(executor: &DockerExecutor, config: &Config, hosts: &[String]) {
    let keep = config.retain_versions as usize;
    for host in hosts {
        match executor.prune(host, &config.image, keep).await {
            Ok(p) if p.containers > 0 || !p.images.is_empty() => eprintln!(
                "[{host}] kept the newest {keep} version(s): removed {} old container(s){}",
                p.containers,
                if p.images.is_empty() {
                    String::new()
                } else {
                    format!(" and image(s) {}", p.images.join(", "))
                }
            ),
            Ok(_) => {}
            Err(e) => eprintln!(
                "[{host}] could not remove old versions ({e}); the next deploy tries again"
            ),
        }
    }
}

/// Sends the image to every host that lacks it, one line per host on stderr.
pub async fn push_and_report(
    executor: &DockerExecutor,
    image: &str,
) -> Result<(), odysseus_engine::runtime::ExecError> {
    for (host, outcome) in executor.push_image(image).await? {
        match outcome {
            PushOutcome::Sent { bytes, millis } => {
                eprintln!(
                    "[{host}] sent {image} ({:.1} MB in {:.1}s)",
                    bytes as f64 / 1e6,
                    millis as f64 / 1000.0
                )
            }
            PushOutcome::AlreadyPresent => eprintln!("[{host}] already has {image}"),
            PushOutcome::Local => {}
        }
    }
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM and names it.
async fn stop_signal() -> String {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT".to_string(),
        _ = term.recv() => "SIGTERM".to_string(),
    }
}

fn interrupted(
    global: &GlobalArgs,
    journal: &Journal,
    me: &Operator,
    id: DeploymentId,
    signal: &str,
) -> anyhow::Result<Exit> {
    if let Ok(events) = journal.load(id) {
        let state = DeploymentState::fold(&events)?;
        if !state.phase.is_final() {
            let event = Event {
                at: SystemClock.now(),
                fact: Fact::Interrupted {
                    by: me.clone(),
                    signal: signal.to_string(),
                },
            };
            journal.append(id, state.next_seq, &event)?;
        }
    }
    eprintln!(
        "odysseus: interrupted by {signal}; the step in progress was abandoned and the journal records where it stopped.\n{}",
        what_next(global)
    );
    Ok(Exit::Blocked)
}

/// The last line of `deploy --json`: the deployment and what each target serves now.
fn print_summary_json(state: &DeploymentState) {
    let Some(started) = state.started() else {
        return;
    };
    let targets: Vec<serde_json::Value> = state
        .targets
        .iter()
        .zip(&started.plan.targets)
        .map(|(t, target)| {
            serde_json::json!({
                "host": target.host,
                "role": target.role,
                "serving": serving_version(started, t, target),
            })
        })
        .collect();
    let summary = serde_json::json!({
        "kind": "summary",
        "deployment": crate::render::deployment_json(state),
        "targets": targets,
        "failure": state.failure,
    });
    let _ = crate::exit::print_stdout(&format!("{summary}\n"));
}

fn serving_version(
    started: &odysseus_engine::machine::DeploymentStarted,
    t: &odysseus_engine::machine::TargetState,
    target: &odysseus_engine::machine::Target,
) -> Option<String> {
    match t.serving() {
        odysseus_engine::machine::Serving::New => Some(started.version.clone()),
        odysseus_engine::machine::Serving::Old => target.old_version.clone(),
        odysseus_engine::machine::Serving::InTransition => None,
    }
}

fn print_summary(global: &GlobalArgs, state: &DeploymentState) {
    let Some(started) = state.started() else {
        return;
    };
    let seconds = state.last_at.millis_since(state.started_at) as f64 / 1000.0;
    let mut out = String::new();
    let verdict = match state.phase {
        Phase::Completed => format!("Deployed {}:{}", started.image, started.version),
        Phase::Halted => {
            "Deployment halted: a target failed; finished targets stay on the new version"
                .to_string()
        }
        Phase::RolledBack => "Deployment failed and was rolled back everywhere".to_string(),
        Phase::Aborted => "Deployment aborted: every target is back on the old version".to_string(),
        Phase::RollbackIncomplete => "Deployment failed and a rollback did not finish".to_string(),
        other => format!("Deployment is {}", other.as_str()),
    };
    out.push_str(&format!(
        "{verdict} (deployment {}, {seconds:.1}s)\n",
        started.id
    ));
    for (t, target) in state.targets.iter().zip(&started.plan.targets) {
        let version = match t.serving() {
            odysseus_engine::machine::Serving::New => started.version.clone(),
            odysseus_engine::machine::Serving::Old => target
                .old_version
                .clone()
                .unwrap_or_else(|| "(none)".into()),
            odysseus_engine::machine::Serving::InTransition => "(in transition)".into(),
        };
        out.push_str(&format!(
            "  {:<20} {:<10} {}\n",
            target.host, target.role, version
        ));
    }
    if let Some(reason) = &state.failure {
        out.push_str(&format!("Reason: {reason}\n"));
    }
    out.push_str(&format!(
        "The full record: odysseus replay {} -c {}\n",
        started.id,
        global.config.display()
    ));
    if state.phase.is_suspended() {
        out.push_str(&what_next(global));
        out.push('\n');
    }
    let _ = crate::exit::print_stdout(&out);
}
