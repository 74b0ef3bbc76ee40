//! `odysseus deploy`: move the service to a new image tag, host by host, through Caddy,
//! with every step journaled before it runs.

use std::cell::RefCell;

use clap::Args;
use odysseus_engine::journal::{self, local_hostname, process_alive, process_start_ticks, Journal};
use odysseus_engine::machine::{
    DeploymentStarted, DeploymentState, Event, Fact, HookExit, HookName, MaintenancePage, Phase,
    Purpose, RetryPolicy,
};
use odysseus_engine::runtime::{
    self, plan_cleanup, plan_deployment, plan_maintenance, record_fact, Choice, Clock, Request,
    Runtime, Session, SystemClock, TargetSpec,
};
use odysseus_engine::{DeploymentId, Operator};
use odysseus_executors::docker::{DockerExecutor, PushOutcome};
use odysseus_executors::fleet_lock::LockFailure;
use odysseus_executors::steps::{self, Steps};

mod abandon;
mod hook_gates;
mod maintenance_check;
mod marks;
mod prepare;
mod refuse;
mod release;
mod summary;

use abandon::abandon;
use marks::{lock_release_command, mark_hosts, unmark_unstarted};
use prepare::{prepare_and_drive, Prep};
use refuse::refuse;
use summary::{print_summary, print_summary_json};

use crate::config::{self, Config};
use crate::exit::{Exit, UsageError};
use crate::progress::Progress;
use crate::render::json_lines::JsonLines;
use crate::state::{open_journal, state_dir};
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(after_help = "\
If a deployment of the service is unfinished (interrupted, halted, or its rollback failed):
  --resume continues it, --abort rolls it back, --abandon REASON ends it without touching
  anything; a plain deploy of the same image resumes it and says so; a plain deploy of
  another image supersedes a halted one that no host serves (--supersede: even if some do)
  and is refused otherwise, naming the unfinished one.

Exit codes: 0 deployed (or aborted as asked); 1 the deployment failed or was rolled back;
2 bad usage or config; 3 blocked or interrupted (the message names the next command).")]
pub struct DeployArgs {
    /// Run none of the project's hooks (`.odysseus/hooks/`, `.kamal/hooks/`).
    #[arg(long, short = 'H')]
    skip_hooks: bool,
    /// The tag to deploy: the image is `<image>:<TAG>`.
    #[arg(long, value_name = "TAG")]
    image: Option<String>,
    /// Continue the unfinished deployment.
    #[arg(long, conflicts_with = "abort")]
    resume: bool,
    /// Roll back the unfinished deployment.
    #[arg(long, conflicts_with = "abandon")]
    abort: bool,
    /// End the unfinished deployment without touching any container (it can never
    /// finish: a host is gone for good). Prints what each host runs, then records who
    /// abandoned it and REASON in the journal.
    #[arg(long, value_name = "REASON", conflicts_with_all = ["resume", "image", "push_image", "dry_run"])]
    abandon: Option<String>,
    /// Start a new deployment even though the halted one has hosts on its new version
    /// (a halted deployment with none is superseded without asking).
    #[arg(long, conflicts_with_all = ["resume", "abort", "abandon"])]
    supersede: bool,
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
    /// Build the image first (the default when the version comes from git and there is a
    /// `builder` section or a Dockerfile beside deploy.yml).
    #[arg(long, conflicts_with_all = ["resume", "abort", "abandon", "dry_run"])]
    build: bool,
    /// Deploy an image already built for this version instead of building it.
    #[arg(long, conflicts_with = "build")]
    no_build: bool,
    /// Set by `odysseus cleanup HOST`: a deployment of purpose cleanup on that host.
    #[arg(skip)]
    cleanup: Option<String>,
    /// Set by `odysseus app maintenance` (the page) and `app live` (None): a deployment
    /// of purpose maintenance or live on the service's web hosts.
    #[arg(skip)]
    maintenance: Option<Option<MaintenancePage>>,
    /// What hooks are told the command is (`KAMAL_COMMAND`): `rollback` sets it.
    #[arg(skip)]
    hook_command: Option<&'static str>,
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
    let nonce = match odysseus::files::random_bytes::<4>() {
        Ok(bytes) => u32::from_le_bytes(bytes),
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
    what_next_for(global, Purpose::Deploy)
}

/// The next commands for an unfinished deployment of `purpose`: one that is never undone
/// (a cleanup, maintenance on or off) is finished or ended, not rolled back.
fn what_next_for(global: &GlobalArgs, purpose: Purpose) -> String {
    if purpose.is_undoable() {
        format!(
            "To continue: {}\nTo roll back: {}",
            next_command(global, "--resume"),
            next_command(global, "--abort")
        )
    } else {
        format!(
            "To continue: {}\nTo end it where it stands: {}",
            next_command(global, "--resume"),
            next_command(global, "--abandon REASON")
        )
    }
}

/// What deployment `id` is for, as its record says (a deploy when it cannot be read).
fn purpose_of(journal: &Journal, id: DeploymentId) -> Purpose {
    journal
        .load(id)
        .ok()
        .and_then(|events| DeploymentState::fold(&events).ok())
        .and_then(|state| state.started().map(|s| s.plan.purpose))
        .unwrap_or_default()
}

impl DeployArgs {
    /// A plain deploy of one version (what `rollback` runs).
    pub fn for_version(version: String) -> Self {
        DeployArgs {
            image: Some(version),
            resume: false,
            abort: false,
            abandon: None,
            supersede: false,
            dry_run: false,
            push_image: false,
            json: false,
            hosts: Vec::new(),
            roles: Vec::new(),
            build: false,
            no_build: true,
            cleanup: None,
            maintenance: None,
            hook_command: None,
            skip_hooks: false,
        }
    }

    /// A deploy of an earlier version (what `rollback` runs): hooks hear `rollback`.
    pub fn for_rollback(version: String) -> Self {
        DeployArgs {
            hook_command: Some("rollback"),
            ..DeployArgs::for_version(version)
        }
    }

    /// Maintenance mode on with `page`, or off (what `app maintenance|live` run). The
    /// project's hooks are for deploys: none runs.
    pub fn for_maintenance(page: Option<MaintenancePage>) -> Self {
        DeployArgs {
            image: None,
            maintenance: Some(page),
            skip_hooks: true,
            ..DeployArgs::for_version(String::new())
        }
    }

    /// A cleanup of `host` (what `cleanup` runs).
    pub fn for_cleanup(host: String) -> Self {
        DeployArgs {
            image: None,
            cleanup: Some(host),
            ..DeployArgs::for_version(String::new())
        }
    }
}

pub fn run(global: &GlobalArgs, args: DeployArgs) -> anyhow::Result<Exit> {
    let mut config = config::load(&global.config, &|name| std::env::var(name).ok())
        .map_err(|e| UsageError(e.to_string()))?;
    config
        .restrict(&args.hosts, &args.roles)
        .map_err(UsageError)?;
    // A cleanup may be of a host deploy.yml no longer lists (a server being retired).
    if let Some(host) = &args.cleanup {
        if !config.hosts().contains(host) {
            eprintln!(
                "warning: {host} is not a host of {}: removing what {} left there",
                config.path.display(),
                config.service
            );
        }
    }
    for key in &config.not_yet_supported {
        eprintln!(
            "warning: `{key}` in {} is accepted but not acted on yet",
            config.path.display()
        );
    }
    for warning in &config.warnings {
        eprintln!("warning: {}: {warning}", config.path.display());
    }
    // Containers of a version taken from git carry its full commit (host_ops).
    config.spec.git_commit = crate::version::head_id(&global.config);
    if args.starts_one() && !args.dry_run && args.builds(&config) {
        config.check_buildable().map_err(UsageError)?;
    }
    // odysseus's own state dir is never part of an image's context.
    config.build.never_send.push(state_dir(global));
    let runtime = super::runtime()?;
    if args.dry_run {
        return runtime.block_on(dry_run(global, args, config));
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
async fn dry_run(global: &GlobalArgs, args: DeployArgs, config: Config) -> anyhow::Result<Exit> {
    let tag = crate::version::choose(
        args.image.as_deref(),
        config.default_tag.as_deref(),
        &global.config,
    )?
    .ok_or_else(|| UsageError(crate::version::none_message(&global.config)))?;
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
    if args.builds(&config) {
        let b = &config.build;
        out.push_str(&format!(
            "  first builds {}:{tag} on {} from {} (Dockerfile {}{}), then sends it to every host{}\n",
            config.image,
            b.remote_host.as_deref().unwrap_or("this machine"),
            b.context.display(),
            b.dockerfile.display(),
            if b.args.is_empty() {
                String::new()
            } else {
                format!(", build args {}", b.args.keys().cloned().collect::<Vec<_>>().join(", "))
            },
            if b.push { " through the registry" } else { "" }
        ));
    }
    if let (Some(command), Some(first)) = (&config.release_command, plan.targets.first()) {
        out.push_str(&format!(
            "  then runs the release command `{}` once on {}, before the first host switches\n",
            command.join(" "),
            first.host
        ));
    }
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

/// What a run does once chosen and not refused.
enum Mode {
    Start {
        tag: String,
        supersedes: Option<DeploymentId>,
    },
    Resume(DeploymentId, &'static str),
    Abort(DeploymentId),
    /// Take the service off this host.
    Cleanup(String),
    /// Maintenance mode on, with this page, or off (None).
    Maintenance(Option<MaintenancePage>),
}

impl DeployArgs {
    /// A new deployment (not a resume, an abort or an abandon).
    fn starts_one(&self) -> bool {
        !self.resume
            && !self.abort
            && self.abandon.is_none()
            && self.cleanup.is_none()
            && self.maintenance.is_none()
    }

    /// Whether a new deployment builds its image: asked for, or the version comes from
    /// git and the repository has something to build it from.
    fn builds(&self, config: &Config) -> bool {
        self.build
            || (!self.no_build
                && self.image.is_none()
                && config.default_tag.is_none()
                && (config.builder_configured || config.build.dockerfile.is_file()))
    }

    fn request(&self, version: Option<String>) -> Request {
        if self.cleanup.is_some() || self.maintenance.is_some() {
            Request::Operate
        } else if self.resume {
            Request::Resume
        } else if self.abort {
            Request::Abort
        } else if let Some(reason) = &self.abandon {
            Request::Abandon {
                reason: reason.clone(),
            }
        } else {
            Request::Deploy {
                version,
                narrowed: !self.hosts.is_empty() || !self.roles.is_empty(),
                supersede: self.supersede,
            }
        }
    }
}

async fn deploy(global: &GlobalArgs, args: DeployArgs, config: Config) -> anyhow::Result<Exit> {
    let journal = open_journal(global, true)?;
    // The version is this machine's to choose (a tag, a commit): before any connection.
    let version = if args.starts_one() {
        crate::version::choose(
            args.image.as_deref(),
            config.default_tag.as_deref(),
            &global.config,
        )?
    } else {
        None
    };
    let mut hooks = crate::hooks::Hooks::discover(
        &global.config,
        config.hooks_path.as_deref(),
        args.skip_hooks,
    )
    .command(args.hook_command.unwrap_or("deploy"));
    hooks.describe(
        &config.service,
        version.as_deref().unwrap_or_default(),
        &operator().user,
    );
    // Before a deploy or its resume: not before the escape hatches (--abort, --abandon,
    // a cleanup), which a broken hook must never block.
    // One watch for Ctrl-C, SIGTERM and SIGHUP from here to the end: once its handlers are
    // installed (the first time it is awaited), a signal is never lost between two waits.
    let mut stop: StopSignal = Box::pin(stop_signal());
    let pre_connect = if hooks.has(HookName::PreConnect) && (args.starts_one() || args.resume) {
        let hosts = config.hosts();
        eprintln!("[pre-connect] running for {}", hosts.join(", "));
        // Ctrl-C here ends the hook (its whole group) and the command: nothing started.
        let exit = tokio::select! {
            exit = hooks.run_named(HookName::PreConnect, &hosts, None) => exit,
            signal = &mut stop => {
                eprintln!(
                    "odysseus: interrupted by {signal} while the pre-connect hook ran (it was stopped).\nNothing was changed."
                );
                return Ok(Exit::Blocked);
            }
        };
        if exit.ok() {
            eprintln!(
                "[pre-connect] ok: {} in {:.2}s",
                exit.describe(),
                exit.millis as f64 / 1000.0
            );
        } else {
            eprintln!(
                "odysseus: the pre-connect hook {}.\nNothing was changed.",
                exit.describe()
            );
            return Ok(Exit::Blocked);
        }
        Some((hosts, exit))
    } else {
        None
    };
    // The hosts' copies of the journal first: a fresh CI runner or another laptop learns
    // there what was deployed, and what was left unfinished, before choosing anything.
    let (synced, connected) = crate::journal_sync::connect_and_sync(&journal, &config).await?;
    for note in synced.notes() {
        eprintln!("{note}");
    }
    // Ending a deployment this state dir holds alone is how a refused import is
    // settled: --abandon goes on past it (it touches nothing on the hosts).
    let settling = args.abandon.is_some() && synced.only_refused();
    if synced.conflicts() && !settling {
        eprintln!(
            "odysseus: {}\nNothing was changed.",
            synced.conflict_report(&config.service)
        );
        return Ok(Exit::Blocked);
    }
    let service = config.service.clone();
    let clock = SystemClock;
    let me = operator();
    let my_start = process_start_ticks(me.pid).unwrap_or(0);

    let session =
        match Session::open(
            &journal,
            &service,
            me,
            my_start,
            clock.now(),
            &process_alive,
        ) {
            Ok(session) => session,
            Err(runtime::Error::Journal(journal::Error::Locked { holder, .. })) => {
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
    let hooks = Hooks {
        runner: &mut hooks,
        pre_connect,
    };
    let result = match session.choose(&args.request(version.clone()))? {
        Choice::Refuse(refusal) => {
            let wanted = version;
            refuse(global, &config, wanted, refusal)
        }
        Choice::Abandon { id, reason } => {
            abandon(global, &config, &journal, &session, id, reason).await
        }
        Choice::Start {
            version,
            supersedes,
        } => {
            let mode = Mode::Start {
                tag: version,
                supersedes,
            };
            drive(
                global, &config, &journal, &clock, &session, mode, &args, connected, hooks, stop,
            )
            .await
        }
        Choice::Resume { id, why } => {
            let mode = Mode::Resume(id, why);
            drive(
                global, &config, &journal, &clock, &session, mode, &args, connected, hooks, stop,
            )
            .await
        }
        Choice::Abort { id } => {
            let mode = Mode::Abort(id);
            drive(
                global, &config, &journal, &clock, &session, mode, &args, connected, hooks, stop,
            )
            .await
        }
        Choice::StartOperation => {
            let mode = match &args.maintenance {
                Some(page) => Mode::Maintenance(page.clone()),
                None => Mode::Cleanup(args.cleanup.clone().unwrap_or_default()),
            };
            drive(
                global, &config, &journal, &clock, &session, mode, &args, connected, hooks, stop,
            )
            .await
        }
    };
    session.close()?;
    result
}

/// The hosts a deployment's recorded plan names, in plan order.
fn plan_hosts(state: &DeploymentState) -> Vec<String> {
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

/// Hosts the service's last completed deployment ran on that deploy.yml no longer names
/// (and no completed cleanup has emptied since): they keep serving the old version, and
/// a deploy does not touch them.
fn hosts_left_behind(journal: &Journal, config: &Config) -> Vec<String> {
    let current = config.hosts();
    let mut cleaned: Vec<String> = Vec::new();
    for id in journal.deployments(&config.service).unwrap_or_default() {
        let Ok(events) = journal.load(id) else {
            continue;
        };
        let Ok(state) = DeploymentState::fold(&events) else {
            continue;
        };
        let Some(started) = state.started() else {
            continue;
        };
        if state.phase != Phase::Completed {
            continue;
        }
        let hosts: Vec<String> = started
            .plan
            .hosts()
            .into_iter()
            .map(str::to_string)
            .collect();
        if started.plan.purpose == Purpose::Cleanup {
            cleaned.extend(hosts);
            continue;
        }
        // Maintenance on or off says nothing about which hosts run the service.
        if matches!(started.plan.purpose, Purpose::Maintenance | Purpose::Live) {
            continue;
        }
        return hosts
            .into_iter()
            .filter(|h| !current.contains(h) && !cleaned.contains(h))
            .collect();
    }
    Vec::new()
}

// As `mark_hosts`: the parts of one run, each used on its own.
#[allow(clippy::too_many_arguments)]
async fn drive(
    global: &GlobalArgs,
    config: &Config,
    journal: &Journal,
    clock: &SystemClock,
    session: &Session<'_>,
    mode: Mode,
    args: &DeployArgs,
    connected: Option<DockerExecutor>,
    hooks: Hooks<'_>,
    mut stop: StopSignal,
) -> anyhow::Result<Exit> {
    let Hooks {
        runner: hooks,
        pre_connect,
    } = hooks;
    let me = session.operator();
    if let Mode::Start { .. } = &mode {
        for host in hosts_left_behind(journal, config) {
            eprintln!(
                "warning: {host} ran {} in its last deployment but is not in {} any more: it keeps serving the old version; `odysseus cleanup {host} -c {}` takes it off",
                config.service,
                config.path.display(),
                global.config.display()
            );
        }
    }
    // A new deployment goes to the config's hosts; an unfinished one to the hosts its
    // recorded plan names (deploy.yml may have changed since).
    let hosts = match &mode {
        Mode::Start { .. } => config.hosts(),
        Mode::Cleanup(host) => vec![host.clone()],
        Mode::Maintenance(_) => web_hosts_of(config),
        Mode::Resume(id, _) | Mode::Abort(id) => {
            plan_hosts(&DeploymentState::fold(&journal.load(*id)?)?)
        }
    };
    // A new deployment needs every host; a recovery goes on without the ones that are
    // down (their targets fail and stay resumable; the others move).
    // The connections made to read the hosts' journal serve when they reach exactly
    // these hosts (and, for a new deployment, all of them answered).
    let mut sorted = hosts.clone();
    sorted.sort();
    sorted.dedup();
    let reusable = connected.filter(|e| {
        e.all_hosts() == sorted
            && (e.down_hosts().is_empty() || matches!(mode, Mode::Resume(..) | Mode::Abort(..)))
    });
    let connected = match (&mode, reusable) {
        (_, Some(e)) => Ok(e),
        (Mode::Start { .. } | Mode::Cleanup(_) | Mode::Maintenance(_), None) => {
            DockerExecutor::connect(config.spec.clone(), &hosts, &config.ssh, config.ssh_port).await
        }
        (Mode::Resume(..) | Mode::Abort(..), None) => {
            DockerExecutor::connect_reachable(
                config.spec.clone(),
                &hosts,
                &config.ssh,
                config.ssh_port,
            )
            .await
        }
    };
    let executor = match connected {
        Ok(e) => e,
        Err(e) => {
            eprintln!("odysseus: {e}\nNothing was changed.");
            return Ok(Exit::Blocked);
        }
    };
    if !executor.down_hosts().is_empty() && executor.hosts_sorted().next().is_none() {
        eprintln!("odysseus: no host of the deployment answers.\nNothing was changed.");
        return Ok(Exit::Blocked);
    }
    for (host, why) in executor.down_hosts() {
        eprintln!(
            "warning: {why}; going on without {host}: its targets fail{}",
            if config.on_failure == odysseus_engine::machine::FailurePolicy::Rollback
                && matches!(mode, Mode::Resume(..))
            {
                " — and with on_failure: rollback a failed target rolls the whole fleet back; --abort, or resume once it is back, if that is not what you want"
            } else {
                " and the deployment stays resumable for them"
            }
        );
    }
    let web_hosts: Vec<String> = config
        .roles
        .iter()
        .filter(|r| r.kind == odysseus_engine::machine::RoleKind::Web)
        .flat_map(|r| r.hosts.clone())
        .filter(|h| hosts.contains(h) && !executor.down_hosts().contains_key(h))
        .collect();
    // A cleanup needs no Caddy ready for new routes; it asks what there is to remove.
    let cleanup_specs = match &mode {
        Mode::Cleanup(host) => match cleanup_specs(config, &executor, host).await {
            Ok(Some(specs)) => Some(specs),
            Ok(None) => {
                eprintln!(
                    "{host} runs nothing of {} (no container, no route): nothing to clean up.",
                    config.service
                );
                return Ok(Exit::Ok);
            }
            Err(e) => {
                eprintln!("odysseus: {e}\nNothing was changed.");
                return Ok(Exit::Blocked);
            }
        },
        _ => None,
    };
    // Maintenance mode changes routes that exist and nothing else: nothing to get ready,
    // but a host where the service has no route yet is refused before anything starts.
    if let Mode::Maintenance(page) = &mode {
        if let Some(exit) =
            maintenance_check::before_toggle(&executor, &config.service, &hosts, page.is_some())
                .await
        {
            return Ok(exit);
        }
    }
    // A deploy says where the page stays, and where the app will serve all the same.
    let maintenance_note = match &mode {
        Mode::Start { .. } => {
            maintenance_check::note_for_deploy(&executor, &config.service, &web_hosts).await
        }
        _ => None,
    };
    if let Some(note) = &maintenance_note {
        eprintln!("{note}");
    }
    if cleanup_specs.is_none() && !matches!(mode, Mode::Maintenance(_)) {
        if let Err(e) = executor.preflight(&web_hosts).await {
            eprintln!("odysseus: {e}\nNothing was changed.");
            return Ok(Exit::Blocked);
        }
    }
    // A deployment that builds its image records the build (and the image's delivery)
    // after its start, before its first step; a resume finishes what of that is missing.
    let prepares = match &mode {
        Mode::Start { .. } => args.builds(config),
        Mode::Resume(id, _) => {
            // A run killed inside its pre-build hook has no build on record yet, but its
            // gate's run says it was going to build.
            let state = DeploymentState::fold(&journal.load(*id)?)?;
            state.provenance.is_none()
                && (state.build.is_some() || state.last_hook(HookName::PreBuild).is_some())
        }
        Mode::Abort(_) | Mode::Cleanup(_) | Mode::Maintenance(_) => false,
    };
    // The builder is reached before anything changes: one that cannot be is a refusal,
    // not a deployment left unfinished.
    let builder = match (&mode, prepares) {
        (Mode::Start { .. }, true) | (Mode::Resume(..), true) => {
            match crate::commands::build::BuilderEngine::connect(config).await {
                Ok(b) => Some(b),
                Err(e) => {
                    eprintln!("odysseus: the builder cannot be reached: {e}\nNothing was changed.");
                    return Ok(Exit::Blocked);
                }
            }
        }
        _ => None,
    };
    // The lock on the hosts themselves: refuses a second operator (another machine or
    // another state dir) and frees itself when this process or its connection dies.
    let dir = state_dir(global);
    let holder = format!(
        "{me}, since {}, state dir {}",
        clock.now(),
        std::fs::canonicalize(&dir).unwrap_or(dir).display()
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
    // Under the lock, the hosts' copies again: a deploy that ran between the first look
    // and the lock is seen here (and this run stops, nothing changed); copies that are
    // behind this journal (a host that was down, a run that died before its records
    // reached a host) are brought up to date by the lock holder.
    let every_copy_read = match crate::journal_sync::sync(journal, &executor, &config.service).await
    {
        Ok(synced) if synced.conflicts() => {
            eprintln!(
                "odysseus: {}\nNothing was changed.",
                synced.conflict_report(&config.service)
            );
            return Ok(Exit::Blocked);
        }
        Ok(synced) if !synced.imported.is_empty() => {
            eprintln!(
                "odysseus: another deploy of {} ran while this one was starting; the journal is now up to date with the hosts: run the command again.\nNothing was changed.",
                config.service
            );
            return Ok(Exit::Blocked);
        }
        Ok(synced) => {
            for (host, id, why) in crate::journal_sync::push_behind(
                journal,
                &Steps::new(&executor),
                &config.service,
                &synced,
            )
            .await
            {
                eprintln!(
                    "warning: {host}'s copy of deployment {id}'s journal is still behind: {why}"
                );
            }
            // The rule for orphaned marks stands on the copies: only when every host was
            // read and holds the service's journal (a host whose copies were all removed
            // keeps its marks' full protection).
            synced.unreadable.is_empty()
                && executor.down_hosts().is_empty()
                && executor
                    .hosts_sorted()
                    .all(|(h, _)| executor.copies_held(h).is_some_and(|n| n > 0))
        }
        Err(e) => return Err(e.into()),
    };
    // Known before anything changes: the hosts carry it while it is unfinished, and an
    // interruption is recorded against it.
    let id = match &mode {
        Mode::Start { .. } | Mode::Cleanup(_) | Mode::Maintenance(_) => {
            new_deployment_id(clock.now().0)
        }
        Mode::Resume(id, _) | Mode::Abort(id) => *id,
    };
    // Before the marks: a refused resume leaves the hosts as it found them.
    if let Mode::Resume(id, _) = &mode {
        let state = DeploymentState::fold(&journal.load(*id)?)?;
        let foreign = runtime::foreign_containers(&Steps::new(&executor), &state).await;
        if !foreign.is_empty() {
            eprintln!(
                "odysseus: the hosts changed since deployment {id} was planned: {}.\n\
                 Another deployment ran there meanwhile; resuming would put two versions side by side.\n\
                 Nothing was changed. Look with `odysseus status`, then end this one without touching anything ({}); \
                 rolling it back ({}) would restart its old containers beside the other deployment's.",
                foreign.join("; "),
                next_command(global, "--abandon REASON"),
                next_command(global, "--abort")
            );
            return Ok(Exit::Blocked);
        }
    }
    if let Err(exit) = mark_hosts(
        global,
        config,
        journal,
        &executor,
        id,
        &holder,
        &mode,
        every_copy_read,
    )
    .await
    {
        return Ok(exit);
    }
    if args.push_image && !prepares {
        if let Mode::Start { tag, .. } = &mode {
            if let Err(e) = push_and_report(&executor, &format!("{}:{tag}", config.image)).await {
                unmark_unstarted(journal, &executor, id).await;
                eprintln!("odysseus: {e}\nNothing was changed.");
                return Ok(Exit::Blocked);
            }
        }
    }
    if let (Mode::Start { tag, .. }, false) = (&mode, prepares) {
        if let Err(e) = executor
            .pull_everywhere(&format!("{}:{tag}", config.image))
            .await
        {
            unmark_unstarted(journal, &executor, id).await;
            eprintln!("odysseus: {e}\nNothing was changed.");
            return Ok(Exit::Blocked);
        }
    }
    // What exactly is deployed; a resume records it too when the log lacks it (a run
    // killed between `deployment-started` and its provenance).
    let tag = match &mode {
        Mode::Start { tag, .. } => tag.clone(),
        Mode::Cleanup(_) => CLEANUP_VERSION.to_string(),
        Mode::Maintenance(Some(_)) => MAINTENANCE_VERSION.to_string(),
        Mode::Maintenance(None) => LIVE_VERSION.to_string(),
        Mode::Resume(id, _) | Mode::Abort(id) => DeploymentState::fold(&journal.load(*id)?)?
            .started()
            .map(|s| s.version.clone())
            .unwrap_or_default(),
    };
    let built_here = match &mode {
        Mode::Start { .. } | Mode::Cleanup(_) | Mode::Maintenance(_) => false,
        Mode::Resume(id, _) | Mode::Abort(id) => {
            DeploymentState::fold(&journal.load(*id)?)?.build.is_some()
        }
    };
    // Provenance is what the hosts have for the tag once it is delivered: a build
    // records it itself after delivering (and an abort of one has nothing to record).
    // An operation (a cleanup, maintenance on or off) deploys no image: none to record.
    let cleaning = match &mode {
        Mode::Cleanup(_) | Mode::Maintenance(_) => true,
        Mode::Start { .. } => false,
        Mode::Resume(id, _) | Mode::Abort(id) => DeploymentState::fold(&journal.load(*id)?)?
            .started()
            .is_some_and(|s| !s.plan.purpose.is_undoable()),
    };
    let mut preamble = if prepares || built_here || cleaning {
        Vec::new()
    } else {
        vec![provenance(&executor, config, &hosts, &tag, &state_dir(global)).await]
    };
    // The hooks a new deployment runs are the ones the project has now: a resume
    // follows the record, not the tree it runs from.
    if matches!(mode, Mode::Start { .. }) && !hooks.names().is_empty() {
        preamble.push(Fact::HooksFound {
            hooks: hooks.names(),
        });
    }
    // The page is part of the record: a resume writes this one, whatever is asked then.
    if let Mode::Maintenance(Some(page)) = &mode {
        preamble.push(Fact::MaintenancePage(page.clone()));
    }
    // A maintenance run killed before its page was on record changed nothing: its resume
    // puts up the default page (and says so).
    if let Mode::Resume(id, _) = &mode {
        let state = DeploymentState::fold(&journal.load(*id)?)?;
        let maintenance = state
            .started()
            .is_some_and(|s| s.plan.purpose == Purpose::Maintenance);
        if maintenance && state.maintenance_page.is_none() {
            eprintln!(
                "note: deployment {id} has no page on record (it was stopped before): the default page goes up; `odysseus app maintenance --message …` changes it afterwards"
            );
            preamble.push(Fact::MaintenancePage(MaintenancePage {
                message: MaintenancePage::DEFAULT_MESSAGE.to_string(),
                retry_after_s: 60,
            }));
        }
    }
    hooks.describe(&config.service, &tag, &me.user);
    let hooks: &crate::hooks::Hooks = hooks;
    let progress = RefCell::new(Progress::new());
    let json_lines = RefCell::new(args.json.then(JsonLines::default));
    let steps = Steps::new(&executor);
    let mut runtime = Runtime::new(journal, &steps, clock)
        .hooks(hooks)
        .preamble(preamble)
        .on_event(|seq, event: &Event, state| {
            progress.borrow_mut().event(seq, event, state);
            if let Some(lines) = json_lines.borrow_mut().as_mut() {
                lines.event(seq, event, state);
            }
        });
    let aborting = matches!(mode, Mode::Abort(_));
    let prep = Prep {
        builder,
        config,
        executor: &executor,
        hosts: &hosts,
        tag: &tag,
        state_dir: state_dir(global),
        config_path: &global.config,
        push: config.build.push,
    };
    let run = async {
        match mode {
            Mode::Start { tag, supersedes } => {
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
                let started = DeploymentStarted {
                    id,
                    service: config.service.clone(),
                    image: config.image.clone(),
                    version: tag,
                    config_digest: config.digest.clone(),
                    plan,
                    operator: me.clone(),
                    lock_token: session.lock().token(),
                };
                let announce = format!(
                    "Deploying {}:{} (deployment {id}); journal in {} and on the hosts",
                    started.image,
                    started.version,
                    state_dir(global).display()
                );
                let mut state = session
                    .begin(&mut runtime, started, supersedes)
                    .map_err(Err)?;
                record_pre_connect(&mut runtime, &mut state, id, &pre_connect).map_err(Err)?;
                // The id is shown once the deployment is on record: here, and on the
                // hosts that answer.
                if let Err(e) = runtime.replicate(id, &state, &[]).await {
                    return Ok(Err(e));
                }
                eprintln!("{announce}");
                if let Some(old) = supersedes {
                    // Its end (`superseded`) reaches the hosts' copies too: a runner that
                    // reads them later must not find it unfinished.
                    if let Ok(events) = journal.load(old) {
                        if let Ok(old_state) = DeploymentState::fold(&events) {
                            if let Err(e) = runtime.replicate(old, &old_state, &[]).await {
                                return Ok(Err(e));
                            }
                        }
                    }
                    eprintln!("Deployment {old} (halted) is superseded by this one");
                }
                if !prepares {
                    return Ok(release::release_and_drive(
                        &mut runtime,
                        &mut state,
                        id,
                        config,
                        &executor,
                    )
                    .await
                    .map(|()| state));
                }
                Ok(prepare_and_drive(&mut runtime, &mut state, id, prep)
                    .await
                    .map(|()| state))
            }
            Mode::Resume(id, why) => {
                eprintln!("Deployment {id}: {why}");
                if !prepares {
                    let mut state = session.reopen_to_resume(&mut runtime, id).map_err(Err)?;
                    record_pre_connect(&mut runtime, &mut state, id, &pre_connect).map_err(Err)?;
                    return Ok(release::release_and_drive(
                        &mut runtime,
                        &mut state,
                        id,
                        config,
                        &executor,
                    )
                    .await
                    .map(|()| state));
                }
                let mut state = session.reopen_to_resume(&mut runtime, id).map_err(Err)?;
                record_pre_connect(&mut runtime, &mut state, id, &pre_connect).map_err(Err)?;
                Ok(prepare_and_drive(&mut runtime, &mut state, id, prep)
                    .await
                    .map(|()| state))
            }
            Mode::Abort(id) => {
                eprintln!("Deployment {id}: rolling back every target it touched");
                Ok(session.abort(&mut runtime, id).await)
            }
            Mode::Cleanup(host) => {
                let specs = cleanup_specs.unwrap_or_default();
                let plan = plan_cleanup(
                    &steps,
                    &config.service,
                    &host,
                    &specs,
                    RetryPolicy::default(),
                )
                .await
                .map_err(Err::<anyhow::Error, _>)?;
                let started = DeploymentStarted {
                    id,
                    service: config.service.clone(),
                    image: config.image.clone(),
                    version: CLEANUP_VERSION.to_string(),
                    config_digest: config.digest.clone(),
                    plan,
                    operator: me.clone(),
                    lock_token: session.lock().token(),
                };
                eprintln!(
                    "Removing {} from {host} (deployment {id}); journal in {}",
                    config.service,
                    state_dir(global).display()
                );
                Ok(session.start(&mut runtime, started, None).await)
            }
            Mode::Maintenance(page) => {
                let purpose = if page.is_some() {
                    Purpose::Maintenance
                } else {
                    Purpose::Live
                };
                let plan = plan_maintenance(
                    purpose,
                    &target_specs(config, &hosts),
                    RetryPolicy::default(),
                );
                if plan.targets.is_empty() {
                    return Err(Ok(anyhow::anyhow!(
                        "{} has no web role: it has no route to put in maintenance",
                        config.service
                    )));
                }
                let started = DeploymentStarted {
                    id,
                    service: config.service.clone(),
                    image: config.image.clone(),
                    version: tag.clone(),
                    config_digest: config.digest.clone(),
                    plan,
                    operator: me.clone(),
                    lock_token: session.lock().token(),
                };
                eprintln!(
                    "{} {} {} maintenance on {} (deployment {id}); journal in {} and on the hosts",
                    if page.is_some() { "Putting" } else { "Taking" },
                    config.service,
                    if page.is_some() { "in" } else { "out of" },
                    hosts.join(", "),
                    state_dir(global).display()
                );
                let outcome = session.start(&mut runtime, started, None).await;
                Ok(outcome)
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
        signal = &mut stop => {
            match ended(journal, id) {
                // Stopped in what follows the end (the post-deploy hook, the hosts'
                // copy of the end): the deployment is over, and is closed as such.
                Some(state) => {
                    eprintln!("odysseus: {signal}: stopped after deployment {id} ended ({}); closing it", state.phase.as_str());
                    Ok(Ok(state))
                }
                None => {
                    drop(runtime);
                    progress.borrow_mut().finish();
                    unmark_unstarted(journal, &executor, id).await;
                    return interrupted(global, journal, me, id, &signal);
                }
            }
        }
    };
    // The spinners go before any closing message is printed.
    progress.borrow_mut().finish();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(Ok(e)) => {
            unmark_unstarted(journal, &executor, id).await;
            return Err(e);
        }
        Err(Err(e)) => {
            unmark_unstarted(journal, &executor, id).await;
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
                what_next_for(global, purpose_of(journal, id))
            );
            return Ok(Exit::Internal);
        }
        Err(e) => {
            eprintln!(
                "odysseus: the deployment was interrupted: {e}\n{}",
                what_next_for(global, purpose_of(journal, id))
            );
            return Ok(Exit::Blocked);
        }
    };
    if state.phase == Phase::Completed && !cleaning {
        prune(&executor, config, &hosts).await;
    }
    if state.phase.is_final() {
        let hosts: Vec<String> = executor.hosts_sorted().map(|(h, _)| h.clone()).collect();
        let mut left = steps::clear_marks(&executor, &hosts, &id.to_string()).await;
        left.extend(executor.down_hosts().keys().cloned());
        for host in left {
            eprintln!(
                "[{host}] still carries this deployment's mark (it could not be reached); once it is back, {} clears it",
                lock_release_command(global)
            );
        }
    }
    fleet_lock.release().await;
    if args.json {
        print_summary_json(&state);
    } else {
        print_summary(global, &state);
    }
    if let Some(note) = &maintenance_note {
        eprintln!("{note}");
    }

    Ok(match state.phase {
        Phase::Completed => Exit::Ok,
        Phase::Aborted if aborting => Exit::Ok,
        _ => Exit::Failed,
    })
}

/// Deployment `id`'s state, when its record shows it ended.
fn ended(journal: &Journal, id: DeploymentId) -> Option<DeploymentState> {
    let state = DeploymentState::fold(&journal.load(id).ok()?).ok()?;
    state.phase.is_final().then_some(state)
}

/// The project's hooks for this run, and the `pre-connect` run made before any
/// connection (recorded once the run knows its deployment).
struct Hooks<'h> {
    runner: &'h mut crate::hooks::Hooks,
    pre_connect: Option<(Vec<String>, HookExit)>,
}

/// Puts the `pre-connect` run of this process on record, in the deployment it led to.
fn record_pre_connect<E: odysseus_engine::runtime::Executor>(
    runtime: &mut Runtime<'_, Journal, E, SystemClock>,
    state: &mut DeploymentState,
    id: DeploymentId,
    pre_connect: &Option<(Vec<String>, HookExit)>,
) -> Result<(), runtime::Error> {
    let Some((hosts, exit)) = pre_connect else {
        return Ok(());
    };
    // A deployment that is rolling back (a resumed abort) runs no hooks: the run that
    // led here is not part of its record.
    if state.phase != Phase::Running {
        return Ok(());
    }
    let hook = HookName::PreConnect.as_str().to_string();
    runtime.record_now(
        id,
        state,
        Fact::HookStarted {
            hook: hook.clone(),
            hosts: hosts.clone(),
        },
    )?;
    runtime.record_now(
        id,
        state,
        Fact::HookEnded {
            hook,
            exit_code: exit.exit_code,
            reason: exit.reason.clone(),
            millis: exit.millis,
        },
    )?;
    Ok(())
}

/// The version a cleanup records: it deploys nothing.
pub const CLEANUP_VERSION: &str = "(cleanup)";
/// The versions `app maintenance` and `app live` record: they deploy nothing either.
pub const MAINTENANCE_VERSION: &str = "(maintenance)";
pub const LIVE_VERSION: &str = "(live)";

/// The hosts deploy.yml gives a web role, in config order: where the service is routed.
fn web_hosts_of(config: &Config) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for role in config
        .roles
        .iter()
        .filter(|r| r.kind == odysseus_engine::machine::RoleKind::Web)
    {
        for h in &role.hosts {
            if !hosts.contains(h) {
                hosts.push(h.clone());
            }
        }
    }
    hosts
}

/// What a cleanup of `host` goes through: a target per role with containers of the
/// service there (deploy.yml's kind and timeouts for its roles; a role it no longer has
/// is handled as a web role, which unroutes before it stops), plus the route alone when
/// no container is left to hold it. `None`: nothing of the service is on the host.
async fn cleanup_specs(
    config: &Config,
    executor: &DockerExecutor,
    host: &str,
) -> Result<Option<Vec<TargetSpec>>, odysseus_engine::runtime::ExecError> {
    use odysseus_executors::docker::containers::Kind;
    let mut specs: Vec<TargetSpec> = Vec::new();
    for listed in executor.containers_on(host).await? {
        let Kind::Role(role) = listed.kind else {
            continue;
        };
        if specs.iter().any(|s| s.role == role) {
            continue;
        }
        let known = config.roles.iter().find(|r| r.name == role);
        specs.push(TargetSpec {
            role: role.clone(),
            host: host.to_string(),
            kind: known.map_or(odysseus_engine::machine::RoleKind::Web, |r| r.kind),
            timeouts: known.map_or_else(Default::default, |r| r.timeouts),
        });
    }
    let routed = executor.host_status(host).await?.upstreams.is_some();
    if specs.is_empty() && !routed {
        return Ok(None);
    }
    if routed
        && !specs
            .iter()
            .any(|s| s.kind == odysseus_engine::machine::RoleKind::Web)
    {
        // Its route outlived its containers: a web target with nothing to remove takes it.
        let web = config
            .roles
            .iter()
            .find(|r| r.kind == odysseus_engine::machine::RoleKind::Web);
        specs.push(TargetSpec {
            role: web.map_or_else(|| "web".to_string(), |r| r.name.clone()),
            host: host.to_string(),
            kind: odysseus_engine::machine::RoleKind::Web,
            timeouts: web.map_or_else(Default::default, |r| r.timeouts),
        });
    }
    Ok(Some(specs))
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
        // Nothing to prune: no round trip.
        if executor
            .copies_held(host)
            .is_some_and(|n| n <= config.journal_keep)
        {
            continue;
        }
        match executor
            .prune_copies(host, &config.service, config.journal_keep, &[])
            .await
        {
            Ok(gone) if !gone.is_empty() => eprintln!(
                "[{host}] kept the journal of the newest {} deployment(s): removed {} older one(s)",
                config.journal_keep,
                gone.len()
            ),
            Ok(_) => {}
            Err(e) => eprintln!(
                "[{host}] could not remove old journal copies ({e}); the next deploy tries again"
            ),
        }
    }
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

/// A pending `stop_signal`.
type StopSignal = std::pin::Pin<Box<dyn std::future::Future<Output = String>>>;

/// Waits for Ctrl-C, SIGTERM or SIGHUP and names it.
async fn stop_signal() -> String {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    // SIGHUP: the terminal or the SSH session that ran odysseus went away.
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT".to_string(),
        _ = term.recv() => "SIGTERM".to_string(),
        _ = hup.recv() => "SIGHUP".to_string(),
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
        if !DeploymentState::fold(&events)?.phase.is_final() {
            let fact = Fact::Interrupted {
                by: me.clone(),
                signal: signal.to_string(),
            };
            record_fact(journal, &SystemClock, id, fact)?;
        }
    }
    eprintln!(
        "odysseus: interrupted by {signal}; the step in progress was abandoned and the journal records where it stopped.\n{}",
        what_next_for(global, purpose_of(journal, id))
    );
    Ok(Exit::Blocked)
}
