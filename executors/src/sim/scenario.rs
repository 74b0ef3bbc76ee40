//! One simulated deployment from v1 to v2, end to end: build the world, plan, drive the
//! runtime against a real sled journal, crash and resume at the scheduled points, then
//! check the world against every invariant.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use odysseus_engine::journal::{self, Journal};
use odysseus_engine::machine::{
    DeploymentStarted, DeploymentState, Event, Fact, FailurePolicy, HostImage, Phase, RetryPolicy,
    RoleKind, TargetStatus, Timeouts,
};
use odysseus_engine::runtime::{
    self, plan_cleanup, plan_deployment, plan_maintenance, Choice, Refusal, Request, Runtime,
    Session, TargetSpec,
};
use odysseus_engine::{DeploymentId, Operator};

use super::clock::{SimClock, SIM_EPOCH_MS};
use super::crash::{CrashPoint, CrashSchedule, CrashingLog};
use super::executor::SimExecutor;
use super::faults::{Fault, FaultPlan};
use super::host_ops::SimHost;
use super::world::{AppShape, ContainerState, World};
use crate::docker::spec::{ExpectStatus, HttpCheck};
use crate::steps::{clear_marks, dial_container, mark_hosts, Mark, MarkRefusal, ProxySettings};

pub const OLD_VERSION: &str = "v1";
pub const NEW_VERSION: &str = "v2";

#[derive(Clone, Debug)]
pub struct RoleSetup {
    pub name: String,
    pub kind: RoleKind,
    /// Indexes into `Scenario::hosts`.
    pub hosts: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub service: String,
    pub hosts: Vec<String>,
    /// Per host: true when nothing runs there yet (a first deploy).
    pub first_deploy: Vec<bool>,
    pub roles: Vec<RoleSetup>,
    pub faults: Vec<Fault>,
    pub crashes: Vec<CrashPoint>,
    pub on_failure: FailurePolicy,
    pub batch_size: u32,
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
    /// After the run, let faults stop and `--resume` a halted deployment or `--abort`
    /// one whose rollback failed: liveness once faults stop.
    pub settle: bool,
    /// What the running version's image does, and the new one's. deploy.yml at the
    /// start says the new one's port and health path (a config that changed between
    /// releases when they differ).
    pub old_app: AppShape,
    pub new_app: AppShape,
    /// Old containers per target (several after an earlier interrupted deploy).
    pub old_per_target: usize,
    /// Whether the old containers carry odysseus's labels (port, health path).
    pub old_labelled: bool,
    /// deploy.yml as edited between a crash and the next process (config drift).
    pub config_after_crash: Option<AppShape>,
    /// What the operator runs after the first crash.
    pub after_crash: AfterCrash,
    /// After the first crash, a deployer with a journal of its own tries to deploy: it
    /// must be refused while the first deployment is unfinished.
    pub second_deployer: bool,
    /// This host goes down at the first crash and stays down through the recovery that
    /// follows (until faults stop).
    pub down_in_recovery: Option<String>,
    /// Once faults stop, a halted deployment is aborted rather than resumed.
    pub abort_when_halted: bool,
    /// Instead of deploying: `odysseus cleanup` of this host (after a crash, the operator
    /// resumes it: a cleanup is never aborted).
    pub cleanup: Option<String>,
    /// Instead of deploying: `odysseus app maintenance` (true: the fleet starts live) or
    /// `app live` (false: the fleet starts in maintenance). After a crash, the operator
    /// resumes it: neither is ever rolled back.
    pub maintenance: Option<bool>,
    /// Every crash takes the deployer's state dir with it (a CI runner that died): the
    /// next process starts from a journal rebuilt from the hosts' copies alone.
    pub journal_lost_at_crash: bool,
}

/// What the operator runs once the deploying process died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterCrash {
    Resume,
    Abort,
    /// `--abandon`: nothing is touched, the deployment ends.
    Abandon,
}

impl Scenario {
    /// `hosts` hosts named host1..hostN, every role on every host, v1 serving everywhere.
    pub fn simple(seed: u64, hosts: usize, roles: &[(&str, RoleKind)]) -> Self {
        Scenario {
            seed,
            service: "app".to_string(),
            hosts: (1..=hosts).map(|i| format!("host{i}")).collect(),
            first_deploy: vec![false; hosts],
            roles: roles
                .iter()
                .map(|(name, kind)| RoleSetup {
                    name: name.to_string(),
                    kind: *kind,
                    hosts: (0..hosts).collect(),
                })
                .collect(),
            faults: Vec::new(),
            crashes: Vec::new(),
            on_failure: FailurePolicy::Halt,
            batch_size: 1,
            retry: RetryPolicy::default(),
            timeouts: Timeouts {
                boot_ms: 10_000,
                drain_ms: 5_000,
                stop_ms: 5_000,
                op_ms: 5_000,
            },
            settle: false,
            old_app: AppShape::default_app(),
            new_app: AppShape::default_app(),
            old_per_target: 1,
            old_labelled: true,
            config_after_crash: None,
            after_crash: AfterCrash::Resume,
            second_deployer: false,
            down_in_recovery: None,
            abort_when_halted: false,
            cleanup: None,
            maintenance: None,
            journal_lost_at_crash: false,
        }
    }

    pub fn deployment_id(&self) -> DeploymentId {
        DeploymentId {
            millis: SIM_EPOCH_MS,
            nonce: (self.seed ^ (self.seed >> 32)) as u32,
        }
    }

    /// Targets host by host; on one host, roles in config order.
    fn target_specs(&self) -> Vec<TargetSpec> {
        let mut specs = Vec::new();
        for (h, host) in self.hosts.iter().enumerate() {
            for role in &self.roles {
                if role.hosts.contains(&h) {
                    specs.push(TargetSpec {
                        role: role.name.clone(),
                        host: host.clone(),
                        kind: role.kind,
                        timeouts: self.timeouts,
                    });
                }
            }
        }
        specs
    }
}

/// What one target runs at the end, read off the world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetReport {
    pub host: String,
    pub role: String,
    pub status: TargetStatus,
    /// The version(s) of the role's running containers: `v1`, `v2`, `none` or `v1+v2`.
    pub version: String,
}

pub struct Outcome {
    /// How often a deployer with another journal was refused by the hosts' marks.
    pub second_refused: usize,
    pub deployment: DeploymentId,
    /// The deployment's log as the journal holds it.
    pub events: Vec<Event>,
    pub records: Vec<Vec<u8>>,
    /// After which sequence numbers the process crashed.
    pub crashes: Vec<(u64, CrashPoint)>,
    /// The state as the last live runtime held it.
    pub live: DeploymentState,
    /// The state folded again from the journal.
    pub folded: DeploymentState,
    pub targets: Vec<TargetReport>,
    /// Safety violations seen during the run and convergence problems at its end.
    pub violations: Vec<String>,
    /// Errors that ended the run other than the scheduled crashes.
    pub errors: Vec<String>,
}

impl Outcome {
    pub fn invariants_held(&self) -> bool {
        self.violations.is_empty() && self.errors.is_empty()
    }

    pub fn phase(&self) -> Phase {
        self.live.phase
    }
}

impl AppShape {
    /// The image both versions are unless a scenario says otherwise.
    pub fn default_app() -> Self {
        AppShape {
            port: 3000,
            health_path: "/up".into(),
        }
    }
}

/// deploy.yml's proxy settings that describe `app` correctly.
fn config_for(app: &AppShape) -> ProxySettings {
    ProxySettings {
        app_port: app.port,
        healthcheck: Some(HttpCheck {
            path: app.health_path.clone(),
            interval_s: 1,
            timeout_s: 2,
            expect: ExpectStatus::Any2xx,
        }),
    }
}

/// Runs the scenario with its journal in `dir` (which must be empty or absent).
pub fn run(scenario: &Scenario, dir: &Path) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds");
    rt.block_on(run_async(scenario, dir))
}

enum Mode {
    Drive,
    Resume,
    Abort,
    Abandon,
}

async fn run_async(scenario: &Scenario, dir: &Path) -> Outcome {
    let clock = SimClock::new();
    let mut world = World::new(
        &scenario.service,
        scenario.seed,
        FaultPlan::new(scenario.faults.clone()),
    );
    world.new_app = scenario.new_app.clone();
    world.config = Some(config_for(&scenario.new_app));
    world.boot_ms = scenario.timeouts.boot_ms;
    world.drain_ms = scenario.timeouts.drain_ms;
    for (h, host) in scenario.hosts.iter().enumerate() {
        world.add_host(host);
        if !scenario.first_deploy.get(h).copied().unwrap_or(false) {
            for role in scenario.roles.iter().filter(|r| r.hosts.contains(&h)) {
                for i in 0..scenario.old_per_target.max(1) {
                    world.seed_container(
                        host,
                        &role.name,
                        role.kind == RoleKind::Web,
                        OLD_VERSION,
                        i,
                        &scenario.old_app,
                        scenario.old_labelled,
                    );
                }
            }
        }
    }
    if scenario.maintenance == Some(false) {
        for host in world.hosts.values_mut().filter(|h| h.routed) {
            host.maintenance = Some(sim_page());
        }
    }
    let initial = world.snapshot();
    let world = Rc::new(RefCell::new(world));
    let schedule = Rc::new(CrashSchedule::new(scenario.crashes.clone()));
    let executor = SimExecutor::new(world.clone(), clock.clone(), Some(schedule.clone()));
    let id = scenario.deployment_id();
    let mut errors = Vec::new();
    let mut live = DeploymentState::default();
    let mut incarnation: u32 = 0;
    let mut mode = Mode::Drive;
    let mut settled = false;
    let mut crashed_once = false;
    let mut second_refused = 0;
    let mut violations_extra = Vec::new();
    let journal_name = dir.display().to_string();
    let max_incarnations = scenario.crashes.len() as u32 + 3;

    let mut rebuild = false;
    while incarnation < max_incarnations {
        schedule.revive();
        if std::mem::take(&mut rebuild) {
            if let Err(e) = rebuild_from_hosts(dir, &world.borrow()) {
                errors.push(format!("rebuilding the journal from the hosts: {e}"));
                break;
            }
        }
        let journal = match Journal::open(dir) {
            Ok(j) => j,
            Err(e) => {
                errors.push(format!("journal did not open: {e}"));
                break;
            }
        };
        let operator = Operator {
            user: "sim".into(),
            hostname: "simulator".into(),
            pid: 4000 + incarnation,
        };
        let me = operator.pid;
        // Earlier incarnations are dead processes: their lock is taken over.
        let session = match Session::open(
            &journal,
            &scenario.service,
            operator.clone(),
            incarnation as u64,
            odysseus_engine::Timestamp(0),
            &|l: &journal::LockRecord| l.owner.pid == me,
        ) {
            Ok(session) => session,
            Err(e) => {
                errors.push(format!("lock: {e}"));
                break;
            }
        };
        let log = CrashingLog {
            journal: &journal,
            schedule: &schedule,
        };
        let live_cell = RefCell::new(live.clone());
        // What the CLI records after `deployment-started` (or on a resume whose log
        // lacks it): the image each host has.
        let provenance = Fact::Provenance {
            images: scenario
                .hosts
                .iter()
                .map(|h| HostImage {
                    host: h.clone(),
                    image_id: Some(format!("sim:{}:{NEW_VERSION}", scenario.service)),
                })
                .collect(),
            secrets: Vec::new(),
            secrets_digest: None,
        };
        // A cleanup deploys no image: the CLI records no provenance for it.
        let preamble = match scenario.maintenance {
            // The page is part of the record (and no image is deployed).
            Some(true) => vec![Fact::MaintenancePage(sim_page())],
            Some(false) => Vec::new(),
            None if scenario.cleanup.is_some() => Vec::new(),
            None => vec![provenance],
        };
        let mut runtime = Runtime::new(&log, &executor, &clock)
            .preamble(preamble)
            .on_event(|_, _, state| {
                *live_cell.borrow_mut() = state.clone();
            });
        let request = match mode {
            Mode::Drive if scenario.cleanup.is_some() || scenario.maintenance.is_some() => {
                Request::Operate
            }
            Mode::Drive => Request::Deploy {
                version: Some(NEW_VERSION.to_string()),
                narrowed: false,
                supersede: false,
            },
            Mode::Resume => Request::Resume,
            Mode::Abort => Request::Abort,
            Mode::Abandon => Request::Abandon {
                reason: "the operator gave up".into(),
            },
        };
        let choice = match session.choose(&request) {
            Ok(c) => c,
            Err(e) => {
                errors.push(format!("choose: {e}"));
                break;
            }
        };
        let exists = journal.raw_records(id).is_ok();
        let hosts = scenario.hosts.clone();
        let ops = executor.host_ops();
        if matches!(
            choice,
            Choice::Start { .. }
                | Choice::StartOperation
                | Choice::Resume { .. }
                | Choice::Abort { .. }
        ) || (!exists && matches!(choice, Choice::Refuse(Refusal::NothingUnfinished)))
        {
            // As the CLI does, under the host locks and before anything changes.
            let unfinished = journal.unfinished(&scenario.service).ok().flatten();
            let mark = Mark {
                deployment: id.to_string(),
                journal: journal_name.clone(),
                owner: format!("{operator}"),
                copies: true,
            };
            let stale = |m: &Mark| {
                m.journal == journal_name
                    && unfinished.map(|u| u.to_string()) != Some(m.deployment.clone())
            };
            if let Err(refusal) = mark_hosts(ops, &hosts, &mark, &stale, true).await {
                errors.push(format!(
                    "the deployer's own hosts were refused: {refusal:?}"
                ));
                break;
            }
        }
        let result = match choice {
            Choice::Abort { id: d } => session.abort(&mut runtime, d).await,
            Choice::Resume { id: d, .. } => session.resume(&mut runtime, d).await,
            Choice::Abandon { id: d, reason } => {
                // Abandoning touches nothing: the world before and after must match.
                let before = world.borrow().snapshot();
                let r = session.abandon(&log, &clock, d, reason);
                if world.borrow().snapshot() != before {
                    violations_extra.push("abandoning the deployment changed the world".into());
                }
                clear_marks(ops, &hosts, &d.to_string()).await;
                r
            }
            // An abort with nothing started finds nothing to abort: the operator deploys.
            // Nothing was journaled before the crash: the operator runs the cleanup again.
            Choice::StartOperation | Choice::Refuse(Refusal::NothingUnfinished)
                if !exists && scenario.maintenance.is_some() =>
            {
                start_maintenance(scenario, &session, &mut runtime, id).await
            }
            Choice::StartOperation | Choice::Refuse(Refusal::NothingUnfinished)
                if !exists && scenario.cleanup.is_some() =>
            {
                start_cleanup(scenario, &executor, &session, &mut runtime, id).await
            }
            Choice::Start { .. } | Choice::Refuse(Refusal::NothingUnfinished) if !exists => {
                start(scenario, &executor, &session, &mut runtime, id).await
            }
            _ => {
                // The last process died after the deployment's final event: nothing is
                // left to do, and what it knew is what the journal says.
                drop(runtime);
                if let Ok(events) = journal.load(id) {
                    live = DeploymentState::fold(&events).unwrap_or_default();
                }
                let _ = session.close();
                break;
            }
        };
        drop(runtime);
        live = live_cell.into_inner();
        incarnation += 1;
        match result {
            Err(runtime::Error::Interrupted(_)) => {
                // The process died; a new one resumes (or aborts, or abandons), maybe
                // after the operator edited deploy.yml, maybe with a host down.
                if let Some(edited) = &scenario.config_after_crash {
                    world.borrow_mut().config = Some(config_for(edited));
                }
                // Whatever comes next is another process: the dead one is gone.
                schedule.revive();
                rebuild = scenario.journal_lost_at_crash;
                if !crashed_once {
                    crashed_once = true;
                    if let Some(host) = &scenario.down_in_recovery {
                        world.borrow_mut().faults.set_down(host);
                        // A fault that arrived after faults stopped: they stop once more.
                        settled = false;
                    }
                    if scenario.second_deployer {
                        let first_unfinished = journal.unfinished(&scenario.service).ok().flatten();
                        match second_deployer(dir, &hosts, ops).await {
                            Ok(true) => second_refused += 1,
                            Ok(false) if first_unfinished.is_some() => violations_extra.push(format!(
                                "a deployer with another journal marked the hosts while deployment {} was unfinished",
                                id
                            )),
                            Ok(false) => {}
                            Err(e) => errors.push(format!("second deployer: {e}")),
                        }
                    }
                    mode = match scenario.after_crash {
                        _ if !matches!(mode, Mode::Drive) => mode,
                        _ if scenario.cleanup.is_some() || scenario.maintenance.is_some() => {
                            Mode::Resume
                        }
                        AfterCrash::Resume => Mode::Drive,
                        AfterCrash::Abort => Mode::Abort,
                        AfterCrash::Abandon => Mode::Abandon,
                    };
                }
                continue;
            }
            Err(e) => {
                errors.push(e.to_string());
                break;
            }
            Ok(state) => {
                live = state;
                if live.phase.is_final() {
                    clear_marks(ops, &hosts, &id.to_string()).await;
                }
                let _ = session.close();
                if scenario.settle && !settled && live.phase.is_suspended() {
                    settled = true;
                    world.borrow_mut().faults.clear();
                    mode = if live.phase == Phase::Halted && !scenario.abort_when_halted {
                        Mode::Resume
                    } else {
                        Mode::Abort
                    };
                    continue;
                }
                break;
            }
        }
    }

    let journal = Journal::open(dir);
    let (events, records) = match &journal {
        Ok(j) => (
            j.load(id).unwrap_or_default(),
            j.raw_records(id)
                .map(|r| r.into_iter().map(|r| r.bytes).collect())
                .unwrap_or_default(),
        ),
        Err(e) => {
            errors.push(format!("journal did not reopen: {e}"));
            (Vec::new(), Vec::new())
        }
    };
    drop(journal);
    let folded = DeploymentState::fold(&events).unwrap_or_else(|e| {
        errors.push(format!("the journal does not fold: {e}"));
        DeploymentState::default()
    });
    if folded != live {
        errors.push("folding the journal does not reproduce the live state".to_string());
    }
    let world = world.borrow();
    let mut violations = world.violations.clone();
    violations.extend(violations_extra);
    let targets = if let Some(on) = scenario.maintenance {
        check_maintenance_end_state(on, &initial, &world, &folded, &mut violations);
        Vec::new()
    } else if scenario.cleanup.is_some() {
        check_cleanup_end_state(scenario, &world, &folded, &mut violations);
        Vec::new()
    } else {
        check_end_state(scenario, &world, &folded, id, &mut violations)
    };
    let crashes = schedule.crashed_after_seq.borrow().clone();
    Outcome {
        second_refused,
        deployment: id,
        events,
        records,
        crashes,
        live,
        folded,
        targets,
        violations,
        errors,
    }
}

/// The state dir is gone: a new one holds only what the hosts' copies hold, the longest
/// consistent copy of each deployment (as `odysseus` reads them from the hosts).
fn rebuild_from_hosts(dir: &Path, world: &World) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    let journal = Journal::open(dir).map_err(|e| e.to_string())?;
    let mut copies: std::collections::BTreeMap<DeploymentId, Vec<journal::Source>> =
        Default::default();
    for (name, host) in &world.hosts {
        for (id, records) in &host.journal {
            copies.entry(*id).or_default().push(journal::Source {
                name: name.clone(),
                records: records.clone(),
            });
        }
    }
    for (id, sources) in copies {
        let log = journal::reconcile(&sources)
            .map_err(|d| format!("the hosts' copies of {id} differ at record {}", d.seq))?;
        for (seq, bytes) in log.iter().enumerate() {
            journal
                .import(id, seq as u64, bytes)
                .map_err(|e| e.to_string())?;
        }
    }
    journal.flush().map_err(|e| e.to_string())?;
    Ok(())
}

/// A deployer with a journal of its own (another machine) tries to take the hosts:
/// true when it was refused. Whatever it marked, it takes back.
async fn second_deployer(dir: &Path, hosts: &[String], ops: &SimHost) -> Result<bool, String> {
    let other_dir = dir.with_extension("other-journal");
    let journal = Journal::open(&other_dir).map_err(|e| e.to_string())?;
    let service = ops.world.borrow().service.clone();
    let mark = Mark {
        deployment: "other-deployment".into(),
        journal: other_dir.display().to_string(),
        owner: "other@elsewhere".into(),
        // A deployer of before the journal lived on the hosts: refused by any mark.
        copies: false,
    };
    let unfinished = journal.unfinished(&service).ok().flatten();
    let stale = |m: &Mark| {
        m.journal == mark.journal && unfinished.map(|u| u.to_string()) != Some(m.deployment.clone())
    };
    match mark_hosts(ops, hosts, &mark, &stale, true).await {
        Err(MarkRefusal::Taken { .. }) => Ok(true),
        Err(MarkRefusal::Failed(e)) => Err(e.to_string()),
        Ok(()) => {
            clear_marks(ops, hosts, &mark.deployment).await;
            Ok(false)
        }
    }
}

async fn start<L: runtime::EventLog>(
    scenario: &Scenario,
    executor: &SimExecutor,
    session: &Session<'_>,
    runtime: &mut Runtime<'_, L, SimExecutor, SimClock>,
    id: DeploymentId,
) -> Result<DeploymentState, runtime::Error> {
    let plan = plan_deployment(
        executor,
        &scenario.service,
        &scenario.target_specs(),
        scenario.batch_size,
        scenario.on_failure,
        scenario.retry,
    )
    .await?;
    let started = DeploymentStarted {
        id,
        service: scenario.service.clone(),
        image: format!("registry.example/{}", scenario.service),
        version: NEW_VERSION.to_string(),
        config_digest: format!("sim-{:016x}", scenario.seed),
        plan,
        operator: session.operator().clone(),
        lock_token: session.lock().token(),
    };
    session.start(runtime, started, None).await
}

async fn start_cleanup<L: runtime::EventLog>(
    scenario: &Scenario,
    executor: &SimExecutor,
    session: &Session<'_>,
    runtime: &mut Runtime<'_, L, SimExecutor, SimClock>,
    id: DeploymentId,
) -> Result<DeploymentState, runtime::Error> {
    let host = scenario.cleanup.clone().unwrap_or_default();
    let plan = plan_cleanup(
        executor,
        &scenario.service,
        &host,
        &scenario.target_specs(),
        scenario.retry,
    )
    .await?;
    let started = DeploymentStarted {
        id,
        service: scenario.service.clone(),
        image: format!("registry.example/{}", scenario.service),
        version: "(cleanup)".to_string(),
        config_digest: format!("sim-{:016x}", scenario.seed),
        plan,
        operator: session.operator().clone(),
        lock_token: session.lock().token(),
    };
    session.start(runtime, started, None).await
}

/// The page the simulated maintenance puts up.
pub fn sim_page() -> odysseus_engine::machine::MaintenancePage {
    odysseus_engine::machine::MaintenancePage {
        message: "back soon".into(),
        retry_after_s: 60,
    }
}

async fn start_maintenance<L: runtime::EventLog>(
    scenario: &Scenario,
    session: &Session<'_>,
    runtime: &mut Runtime<'_, L, SimExecutor, SimClock>,
    id: DeploymentId,
) -> Result<DeploymentState, runtime::Error> {
    let on = scenario.maintenance == Some(true);
    let purpose = if on {
        odysseus_engine::machine::Purpose::Maintenance
    } else {
        odysseus_engine::machine::Purpose::Live
    };
    let started = DeploymentStarted {
        id,
        service: scenario.service.clone(),
        image: format!("registry.example/{}", scenario.service),
        version: if on { "(maintenance)" } else { "(live)" }.to_string(),
        config_digest: format!("sim-{:016x}", scenario.seed),
        plan: plan_maintenance(purpose, &scenario.target_specs(), scenario.retry),
        operator: session.operator().clone(),
        lock_token: session.lock().token(),
    };
    session.start(runtime, started, None).await
}

/// Maintenance on or off touches no container and no upstream; once it completes, every
/// routed host answers with the recorded page (on) or with its containers (off).
fn check_maintenance_end_state(
    on: bool,
    initial: &[super::world::HostSnapshot],
    world: &World,
    state: &DeploymentState,
    violations: &mut Vec<String>,
) {
    if state.phase != Phase::Completed {
        violations.push(format!(
            "maintenance {} ended {}",
            if on { "on" } else { "off" },
            state.phase.as_str()
        ));
    }
    if world.snapshot() != initial {
        violations.push("maintenance on or off changed containers or upstreams".into());
    }
    let wanted = on.then(sim_page);
    for (name, host) in &world.hosts {
        if host.routed && state.phase == Phase::Completed && host.maintenance != wanted {
            violations.push(format!(
                "{name} answers {:?} after maintenance {} completed",
                host.maintenance,
                if on { "on" } else { "off" }
            ));
        }
    }
}

/// A cleanup's convergence: a completed one leaves the host nothing of the service (no
/// container, no route); every other host is as it was (still serving).
fn check_cleanup_end_state(
    scenario: &Scenario,
    world: &World,
    state: &DeploymentState,
    violations: &mut Vec<String>,
) {
    let cleaned = scenario.cleanup.as_deref().unwrap_or_default();
    if !(state.phase == Phase::Completed || state.phase == Phase::Halted) {
        violations.push(format!("the cleanup ended {}", state.phase.as_str()));
    }
    for (name, host) in &world.hosts {
        let ours: Vec<&str> = host
            .containers
            .iter()
            .filter(|c| c.name.starts_with(&scenario.service))
            .map(|c| c.name.as_str())
            .collect();
        if name == cleaned {
            if state.phase == Phase::Completed && (!ours.is_empty() || host.routed) {
                violations.push(format!(
                    "the cleanup of {name} completed but {ours:?} are left (routed: {})",
                    host.routed
                ));
            }
        } else if host
            .containers
            .iter()
            .any(|c| c.state != ContainerState::Running)
            || (host.containers.iter().any(|c| c.web) && host.routed_healthy(world.now_ms) == 0)
        {
            violations.push(format!("the cleanup of {cleaned} touched {name}"));
        }
    }
}

/// Convergence: each target runs exactly what its final status says, nothing the
/// deployment created is left running unrouted, no upstream points at a dead container.
fn check_end_state(
    scenario: &Scenario,
    world: &World,
    state: &DeploymentState,
    id: DeploymentId,
    violations: &mut Vec<String>,
) -> Vec<TargetReport> {
    let mut reports = Vec::new();
    if !(state.phase.is_final() || state.phase == Phase::Halted) {
        violations.push(format!(
            "the deployment ended {}, not in a terminal state",
            state.phase.as_str()
        ));
    }
    let Some(started) = state.started() else {
        return reports;
    };
    if state.phase == Phase::Abandoned {
        // The operator gave up: the hosts are as the last run left them, by design.
        return reports;
    }
    for (i, target) in started.plan.targets.iter().enumerate() {
        let status = state.targets[i].status;
        let host = &world.hosts[&target.host];
        let running: Vec<_> = host
            .containers
            .iter()
            .filter(|c| c.role == target.role && c.state == ContainerState::Running)
            .collect();
        let mut versions: Vec<&str> = running.iter().map(|c| c.version.as_str()).collect();
        versions.sort();
        versions.dedup();
        let version = if versions.is_empty() {
            "none".to_string()
        } else {
            versions.join("+")
        };
        let label = target.label();
        let web = target.kind == RoleKind::Web;
        let new_name =
            odysseus_engine::machine::new_container_name(&scenario.service, &target.role, id);
        let routed: Vec<&str> = host
            .upstreams
            .iter()
            .map(|d| dial_container(d))
            .filter(|name| host.container(name).is_some_and(|c| c.role == target.role))
            .collect();
        match status {
            TargetStatus::Completed => {
                if running.len() != 1 || running[0].name != new_name {
                    violations.push(format!(
                        "{label} completed but runs {} container(s) of version {version}",
                        running.len()
                    ));
                } else if running[0].healthy_at.is_none() {
                    violations.push(format!(
                        "{label} completed with {new_name}, which never became healthy (it crash-loops)"
                    ));
                }
                if web && routed != vec![new_name.as_str()] {
                    violations.push(format!("{label} completed but routes {routed:?}"));
                }
                if web && host.routed_healthy(world.now_ms) == 0 {
                    violations.push(format!(
                        "{label} completed but the proxy finds no healthy upstream ({:?}, health check {:?})",
                        host.upstreams, host.route_health_path
                    ));
                }
            }
            TargetStatus::Pending | TargetStatus::RolledBack => {
                if host.container(&new_name).is_some() {
                    violations.push(format!(
                        "{label} is back on the old version but {new_name} still exists"
                    ));
                }
                if web
                    && !target.old_containers.is_empty()
                    && host.routed_healthy(world.now_ms) == 0
                {
                    violations.push(format!(
                        "{label} is back on the old version but the proxy finds no healthy upstream ({:?}, health check {:?})",
                        host.upstreams, host.route_health_path
                    ));
                }
                for old in &target.old_containers {
                    let ok = host
                        .container(old)
                        .is_some_and(|c| c.state == ContainerState::Running);
                    if !ok {
                        violations.push(format!(
                            "{label} is back on the old version but {old} is not running"
                        ));
                    }
                    if web && !host.is_routed(old) {
                        violations.push(format!(
                            "{label} is back on the old version but {old} is not routed"
                        ));
                    }
                }
            }
            other => violations.push(format!("{label} ended {}", other.as_str())),
        }
        reports.push(TargetReport {
            host: target.host.clone(),
            role: target.role.clone(),
            status,
            version,
        });
    }
    for (name, host) in &world.hosts {
        for upstream in &host.upstreams {
            if !host
                .container(dial_container(upstream))
                .is_some_and(|c| c.state == ContainerState::Running)
            {
                violations.push(format!(
                    "{name}: upstream {upstream} points at a container that is not running"
                ));
            }
        }
        for c in &host.containers {
            if c.deployment == Some(id)
                && c.web
                && c.state == ContainerState::Running
                && !host.is_routed(&c.name)
            {
                violations.push(format!(
                    "{name}: {} was created by the deployment and runs unrouted",
                    c.name
                ));
            }
        }
    }
    reports
}
