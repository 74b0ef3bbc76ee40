//! Property: whatever the plan, the faults and the moments the process is killed, a
//! deployment stays safe at every instant and converges once faults stop.
//!
//! Each case builds a random fleet (1-5 hosts; web and job roles; first deploys and
//! redeploys), a random fault schedule and random crash points, then runs the real
//! runtime against a real sled journal and the simulated world. A crash drops the
//! runtime and the sled handle mid-step; a new "process" reopens the same directory and
//! resumes. Safety is checked by the world at every change; convergence and replay at
//! the end. Failures shrink and print the scenario; regressions are committed under
//! `proptest-regressions/`.

mod support;

use odysseus_engine::machine::{
    FailurePolicy, Phase, RetryPolicy, RoleKind, StepName, TargetStatus, Timeouts,
};
use odysseus_executors::sim::{self, AfterCrash, AppShape, CrashPoint, Fault, RoleSetup, Scenario};
use proptest::prelude::*;
use support::{cases, ScratchDir};

fn step() -> impl Strategy<Value = StepName> {
    proptest::sample::select(StepName::ALL.to_vec())
}

/// The steps after which a new container may die on its own and the deployment can
/// still notice (after `stop-old` nothing is left to fall back on).
fn death_step() -> impl Strategy<Value = StepName> {
    proptest::sample::select(vec![
        StepName::StartNew,
        StepName::AwaitHealthy,
        StepName::AddUpstream,
        StepName::RemoveOldUpstream,
        StepName::DrainOld,
    ])
}

fn fault(hosts: usize) -> impl Strategy<Value = Fault> {
    let host = (1..=hosts).prop_map(|i| format!("host{i}"));
    let role = proptest::sample::select(vec!["web", "jobs"]).prop_map(str::to_string);
    prop_oneof![
        4 => (host.clone(), step(), 1u32..5, proptest::bool::weighted(0.25))
            .prop_map(|(host, step, times, permanent)| Fault::Fail { host, step, times, permanent }),
        2 => (host.clone(), step(), 1u32..3).prop_map(|(host, step, times)| Fault::Hang { host, step, times }),
        2 => (host.clone(), step(), 1u32..3).prop_map(|(host, step, times)| Fault::LoseReply { host, step, times }),
        1 => host.clone().prop_map(|host| Fault::NeverHealthy { host }),
        2 => (host.clone(), role, death_step()).prop_map(|(host, role, after)| Fault::Dies { host, role, after }),
        2 => (host, 1u32..25, 1u32..8).prop_map(|(host, from_call, calls)| Fault::HostDown { host, from_call, calls }),
    ]
}

/// The largest generated plan (5 hosts, 2 roles, 2 old containers, retries) writes
/// about 130 records; crash points reach past its end.
fn crash() -> impl Strategy<Value = CrashPoint> {
    prop_oneof![
        (1u64..160).prop_map(CrashPoint::AfterAppend),
        (1u64..160).prop_map(CrashPoint::BeforeAppend),
        (1u64..120).prop_map(CrashPoint::DuringEffect),
    ]
}

/// An app image: the port it listens on and the health path it answers. Releases may
/// change both, with deploy.yml changed to match.
fn app() -> impl Strategy<Value = AppShape> {
    (
        proptest::sample::select(vec![3000u16, 3001]),
        proptest::sample::select(vec!["/up", "/health"]),
    )
        .prop_map(|(port, path)| AppShape {
            port,
            health_path: path.to_string(),
        })
}

/// What changes between releases and between processes: the images, deploy.yml after
/// a crash, how many old containers a target has, what the operator does after a crash,
/// a second deployer with its own journal, a host down through the recovery.
#[allow(clippy::type_complexity)]
fn world_setup(
    hosts: usize,
) -> impl Strategy<
    Value = (
        AppShape,
        AppShape,
        usize,
        Option<AppShape>,
        AfterCrash,
        bool,
        Option<String>,
    ),
> {
    (
        app(),
        app(),
        1usize..=2,
        proptest::option::weighted(0.2, app()),
        prop_oneof![
            6 => Just(AfterCrash::Resume),
            2 => Just(AfterCrash::Abort),
            1 => Just(AfterCrash::Abandon),
        ],
        proptest::bool::weighted(0.2),
        proptest::option::weighted(0.15, (1..=hosts).prop_map(|i| format!("host{i}"))),
    )
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (1usize..=5)
        .prop_flat_map(|hosts| {
            let role_sets = proptest::sample::select(vec![
                vec![("web", RoleKind::Web)],
                vec![("jobs", RoleKind::Job)],
                vec![("web", RoleKind::Web), ("jobs", RoleKind::Job)],
            ]);
            (
                Just(hosts),
                any::<u64>(),
                role_sets,
                proptest::collection::vec(1u32..(1 << hosts), 2),
                proptest::collection::vec(proptest::bool::weighted(0.3), hosts),
                proptest::collection::vec(fault(hosts), 0..4),
                proptest::collection::vec(crash(), 0..4),
                prop_oneof![Just(FailurePolicy::Halt), Just(FailurePolicy::Rollback)],
                1u32..=3,
                world_setup(hosts),
            )
        })
        .prop_map(
            |(
                hosts,
                seed,
                roles,
                masks,
                first_deploy,
                faults,
                crashes,
                on_failure,
                batch_size,
                setup,
            )| {
                let (
                    old_app,
                    new_app,
                    old_per_target,
                    config_after_crash,
                    after_crash,
                    second_deployer,
                    down_in_recovery,
                ) = setup;
                // A job's first deploy has no step after await-healthy that could notice
                // its container dying then: nothing could, so it is not a case.
                let faults: Vec<Fault> = faults
                    .into_iter()
                    .filter(|f| {
                        !matches!(f, Fault::Dies { host, role, after: StepName::AwaitHealthy }
                        if role == "jobs" && first_deploy[host[4..].parse::<usize>().unwrap() - 1])
                    })
                    .collect();
                let roles = roles
                    .iter()
                    .zip(masks)
                    .map(|((name, kind), mask)| RoleSetup {
                        name: name.to_string(),
                        kind: *kind,
                        hosts: (0..hosts).filter(|h| mask & (1 << h) != 0).collect(),
                    })
                    .collect();
                Scenario {
                    seed,
                    service: "app".into(),
                    hosts: (1..=hosts).map(|i| format!("host{i}")).collect(),
                    first_deploy,
                    roles,
                    faults,
                    crashes,
                    on_failure,
                    batch_size,
                    retry: RetryPolicy {
                        max_attempts: 3,
                        backoff_base_ms: 200,
                        backoff_max_ms: 2_000,
                    },
                    timeouts: Timeouts {
                        boot_ms: 4_000,
                        drain_ms: 3_000,
                        stop_ms: 2_000,
                        op_ms: 2_000,
                    },
                    settle: true,
                    old_app,
                    new_app,
                    old_per_target,
                    old_labelled: true,
                    config_after_crash,
                    after_crash,
                    second_deployer,
                    down_in_recovery,
                    abort_when_halted: seed % 4 == 0,
                    cleanup: None,
                    maintenance: None,
                    journal_lost_at_crash: false,
                }
            },
        )
}

fn check(scenario: &Scenario) -> Result<(), TestCaseError> {
    let dir = ScratchDir::new("prop");
    let outcome = sim::run(scenario, dir.path());
    prop_assert!(outcome.errors.is_empty(), "errors: {:?}", outcome.errors);
    prop_assert!(
        outcome.violations.is_empty(),
        "violations: {:?}",
        outcome.violations
    );
    // Determinism of replay: the journal folds to exactly the live state.
    prop_assert_eq!(&outcome.folded, &outcome.live);
    // Liveness once faults stop: the settled deployment is final — unless deploy.yml
    // was edited after a crash into settings the new image does not serve, when
    // halting (the old version serving) is the right end.
    let phase = outcome.phase();
    let wrong_config = scenario
        .config_after_crash
        .as_ref()
        .is_some_and(|c| *c != scenario.new_app);
    prop_assert!(
        matches!(phase, Phase::Completed | Phase::RolledBack | Phase::Aborted)
            || (wrong_config && phase == Phase::Halted)
            || (scenario.after_crash == AfterCrash::Abandon && phase == Phase::Abandoned),
        "ended {:?}",
        phase
    );
    if phase == Phase::Abandoned {
        return Ok(());
    }
    // What was deployed is on record, even when the first run died before writing it:
    // the run that resumed records it first.
    prop_assert!(
        outcome.folded.provenance.is_some(),
        "no provenance in a deployment that ended {:?}",
        phase
    );
    for t in &outcome.targets {
        match t.status {
            TargetStatus::Completed => prop_assert_eq!(t.version.as_str(), sim::NEW_VERSION),
            _ => prop_assert!(
                t.version == sim::OLD_VERSION || t.version == "none",
                "{t:?}"
            ),
        }
        if phase == Phase::Completed {
            prop_assert_eq!(t.status, TargetStatus::Completed);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1000), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_interrupted_deploy_is_safe_and_converges(scenario in scenario()) {
        check(&scenario)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(600), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    /// Issue 13 §1: every crash also loses the deployer's state dir (a CI runner that
    /// died), and the next process knows only what the hosts' copies of the journal hold.
    /// Because a record reaches the hosts an effect changes before the effect runs, that
    /// is always enough: the same safety, determinism and liveness as with the journal
    /// kept. (The second deployer here is one of before the journal lived on the hosts:
    /// refused by any mark.)
    #[test]
    fn every_crash_recovered_from_the_hosts_journal_alone_is_safe_and_converges(
        scenario in scenario().prop_filter("a crash to lose the journal at", |s| !s.crashes.is_empty())
    ) {
        let mut scenario = scenario;
        scenario.journal_lost_at_crash = true;
        // An abandon records its reason in the journal the operator holds: nothing to
        // rebuild it from is the point of this property, not of abandon's.
        if scenario.after_crash == AfterCrash::Abandon {
            scenario.after_crash = AfterCrash::Resume;
        }
        check(&scenario)?;
    }
}

/// `odysseus cleanup` of one host of a serving fleet, with faults and crashes at any
/// moment: the same steps code as real cleanups, under the simulated world's rules.
fn cleanup_scenario() -> impl Strategy<Value = Scenario> {
    (1usize..=3)
        .prop_flat_map(|hosts| {
            let role_sets = proptest::sample::select(vec![
                vec![("web", RoleKind::Web)],
                vec![("jobs", RoleKind::Job)],
                vec![("web", RoleKind::Web), ("jobs", RoleKind::Job)],
            ]);
            (
                Just(hosts),
                any::<u64>(),
                role_sets,
                1..=hosts,
                1usize..=2,
                proptest::collection::vec(fault(hosts), 0..4),
                proptest::collection::vec(crash(), 0..4),
            )
        })
        .prop_map(
            |(hosts, seed, roles, cleaned, old_per_target, faults, crashes)| {
                let roles: Vec<(&str, RoleKind)> = roles;
                let mut s = Scenario::simple(seed, hosts, &roles);
                s.faults = faults
                    .into_iter()
                    .filter(|f| !matches!(f, Fault::NeverHealthy { .. } | Fault::Dies { .. }))
                    .collect();
                s.crashes = crashes;
                s.old_per_target = old_per_target;
                s.settle = true;
                s.retry = RetryPolicy {
                    max_attempts: 3,
                    backoff_base_ms: 200,
                    backoff_max_ms: 2_000,
                };
                s.timeouts = Timeouts {
                    boot_ms: 4_000,
                    drain_ms: 3_000,
                    stop_ms: 2_000,
                    op_ms: 2_000,
                };
                s.cleanup = Some(format!("host{cleaned}"));
                s
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    /// Safety (nothing stopped while routed or before its drain, nothing removed while
    /// running, the route removed only when empty, no other host touched), determinism
    /// (the journal folds to the live state) and liveness (once faults stop, the resumed
    /// cleanup completes and the host holds nothing of the service).
    #[test]
    fn every_interrupted_cleanup_is_safe_and_converges(scenario in cleanup_scenario()) {
        let dir = ScratchDir::new("cleanup");
        let outcome = sim::run(&scenario, dir.path());
        prop_assert!(outcome.errors.is_empty(), "errors: {:?}", outcome.errors);
        prop_assert!(outcome.violations.is_empty(), "violations: {:?}", outcome.violations);
        prop_assert_eq!(&outcome.folded, &outcome.live);
        prop_assert_eq!(outcome.phase(), Phase::Completed);
        let started = outcome.folded.started().expect("a cleanup started");
        prop_assert_eq!(started.plan.purpose, odysseus_engine::machine::Purpose::Cleanup);
        prop_assert!(outcome.folded.provenance.is_none(), "a cleanup records no provenance");
    }
}

/// `odysseus app maintenance` or `app live` on a serving fleet, with faults and crashes at
/// any moment: the same step code (`enter-maintenance`, `leave-maintenance`) as on real
/// hosts, under the simulated world's rules.
fn maintenance_scenario() -> impl Strategy<Value = Scenario> {
    (1usize..=3)
        .prop_flat_map(|hosts| {
            let role_sets = proptest::sample::select(vec![
                vec![("web", RoleKind::Web)],
                vec![("web", RoleKind::Web), ("jobs", RoleKind::Job)],
            ]);
            (
                Just(hosts),
                any::<u64>(),
                role_sets,
                any::<bool>(),
                proptest::collection::vec(fault(hosts), 0..4),
                proptest::collection::vec(crash(), 0..4),
            )
        })
        .prop_map(|(hosts, seed, roles, on, faults, crashes)| {
            let roles: Vec<(&str, RoleKind)> = roles;
            let mut s = Scenario::simple(seed, hosts, &roles);
            s.faults = faults
                .into_iter()
                .filter(|f| !matches!(f, Fault::NeverHealthy { .. } | Fault::Dies { .. }))
                .collect();
            s.crashes = crashes;
            s.settle = true;
            s.retry = RetryPolicy {
                max_attempts: 3,
                backoff_base_ms: 200,
                backoff_max_ms: 2_000,
            };
            s.maintenance = Some(on);
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(200), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    /// Safety (no container or upstream touched), determinism (the journal folds to the
    /// live state) and liveness (once faults stop, the resumed run completes and every
    /// routed host answers as asked: the recorded page, or its containers).
    #[test]
    fn every_interrupted_maintenance_toggle_converges(scenario in maintenance_scenario()) {
        let dir = ScratchDir::new("maintenance");
        let outcome = sim::run(&scenario, dir.path());
        prop_assert!(outcome.errors.is_empty(), "errors: {:?}", outcome.errors);
        prop_assert!(outcome.violations.is_empty(), "violations: {:?}", outcome.violations);
        prop_assert_eq!(&outcome.folded, &outcome.live);
        prop_assert_eq!(outcome.phase(), Phase::Completed);
        let started = outcome.folded.started().expect("maintenance started");
        let wanted = if scenario.maintenance == Some(true) {
            odysseus_engine::machine::Purpose::Maintenance
        } else {
            odysseus_engine::machine::Purpose::Live
        };
        prop_assert_eq!(started.plan.purpose, wanted);
        prop_assert_eq!(
            outcome.folded.maintenance_page.is_some(),
            scenario.maintenance == Some(true)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64) / 8 + 8, ..ProptestConfig::default() })]

    /// The same seed and schedule twice give byte-identical journals.
    #[test]
    fn the_same_seed_gives_byte_identical_logs(scenario in scenario()) {
        let a = ScratchDir::new("det-a");
        let b = ScratchDir::new("det-b");
        let first = sim::run(&scenario, a.path());
        let second = sim::run(&scenario, b.path());
        prop_assert!(!first.records.is_empty());
        prop_assert_eq!(first.records, second.records);
    }
}

/// The generator must reach the interesting corners, or the property above proves
/// little: completed, halted-then-resumed, fleet-rolled-back and aborted deployments,
/// crashes before and after appends, lock takeovers and observed in-doubt steps.
#[test]
fn the_generator_reaches_every_kind_of_ending() {
    use odysseus_engine::machine::Fact;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = scenario();
    let (mut completed, mut rolled_back, mut aborted, mut resumed_after_halt) = (0, 0, 0, 0);
    let (mut crashed, mut takeovers, mut observed) = (0, 0, 0);
    let (mut mid_effect, mut died_refused, mut several_old, mut aborted_after_crash) = (0, 0, 0, 0);
    let (mut drifted, mut port_changed, mut path_changed) = (0, 0, 0);
    let (mut abandoned, mut second_refused, mut down_in_recovery) = (0, 0, 0);
    let mut aborted_halted = 0;
    for _ in 0..300 {
        let scenario = strategy.new_tree(&mut runner).unwrap().current();
        let dir = ScratchDir::new("cover");
        let outcome = sim::run(&scenario, dir.path());
        match outcome.phase() {
            Phase::Completed => completed += 1,
            Phase::RolledBack => rolled_back += 1,
            Phase::Aborted => aborted += 1,
            _ => {}
        }
        let facts: Vec<&Fact> = outcome.events.iter().map(|e| &e.fact).collect();
        let halted = facts
            .iter()
            .any(|f| matches!(f, Fact::DeploymentFailed { .. }));
        if halted && facts.iter().any(|f| matches!(f, Fact::Resumed { .. })) {
            resumed_after_halt += 1;
        }
        crashed += usize::from(!outcome.crashes.is_empty());
        takeovers += usize::from(
            facts
                .iter()
                .any(|f| matches!(f, Fact::LockTakenOver { .. })),
        );
        observed += usize::from(facts.iter().any(|f| matches!(f, Fact::StepObserved { .. })));
        mid_effect += usize::from(
            outcome
                .crashes
                .iter()
                .any(|(_, p)| matches!(p, CrashPoint::DuringEffect(_))),
        );
        // A container died after its step and a later step's re-check refused to go on.
        died_refused += usize::from(facts.iter().any(
            |f| matches!(f, Fact::StepFailed { reason, .. } if reason.contains("healthy now: not")),
        ));
        several_old += usize::from(scenario.old_per_target > 1 && !outcome.events.is_empty());
        let resumed = facts.iter().any(|f| matches!(f, Fact::Resumed { .. }));
        aborted_after_crash += usize::from(
            !outcome.crashes.is_empty()
                && facts
                    .iter()
                    .any(|f| matches!(f, Fact::AbortRequested { .. })),
        );
        drifted += usize::from(scenario.config_after_crash.is_some() && resumed);
        abandoned += usize::from(outcome.phase() == Phase::Abandoned);
        aborted_halted += usize::from(
            halted
                && outcome.phase() == Phase::Aborted
                && facts
                    .iter()
                    .any(|f| matches!(f, Fact::AbortRequested { .. })),
        );
        second_refused += usize::from(outcome.second_refused > 0);
        // A recovery ran while a host stayed down: a step failed as unreachable after
        // the deployment was resumed.
        let resumed_at = facts.iter().position(|f| matches!(f, Fact::Resumed { .. }));
        down_in_recovery += usize::from(scenario.down_in_recovery.is_some() && resumed_at.is_some_and(|i| {
            facts[i..].iter().any(|f| matches!(f, Fact::StepFailed { reason, .. } if reason.contains("unreachable")))
        }));
        port_changed += usize::from(
            scenario.old_app.port != scenario.new_app.port && phase_is_completed(&outcome),
        );
        path_changed += usize::from(
            scenario.old_app.health_path != scenario.new_app.health_path
                && phase_is_completed(&outcome),
        );
    }
    let counts = [
        ("completed", completed),
        ("rolled back", rolled_back),
        ("aborted", aborted),
        ("resumed after halt", resumed_after_halt),
        ("crashed", crashed),
        ("takeovers", takeovers),
        ("observed", observed),
        ("crashed in the middle of an effect", mid_effect),
        ("a dead new container refused by a re-check", died_refused),
        ("several old containers", several_old),
        ("aborted after a crash", aborted_after_crash),
        ("deploy.yml changed before a resume", drifted),
        ("completed across an app_port change", port_changed),
        ("completed across a health path change", path_changed),
        ("abandoned", abandoned),
        (
            "a second deployer refused by the hosts' marks",
            second_refused,
        ),
        ("a recovery with a host down", down_in_recovery),
        ("a halted deployment aborted", aborted_halted),
    ];
    eprintln!("coverage {counts:?}");
    assert!(counts.iter().all(|&(_, n)| n >= 3), "{counts:?}");
}

fn phase_is_completed(outcome: &sim::Outcome) -> bool {
    outcome.phase() == Phase::Completed
}
