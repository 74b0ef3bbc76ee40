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
use odysseus_executors::sim::{self, CrashPoint, Fault, RoleSetup, Scenario};
use proptest::prelude::*;
use support::{cases, ScratchDir};

fn step() -> impl Strategy<Value = StepName> {
    proptest::sample::select(StepName::ALL.to_vec())
}

fn fault(hosts: usize) -> impl Strategy<Value = Fault> {
    let host = (1..=hosts).prop_map(|i| format!("host{i}"));
    prop_oneof![
        4 => (host.clone(), step(), 1u32..5, proptest::bool::weighted(0.25))
            .prop_map(|(host, step, times, permanent)| Fault::Fail { host, step, times, permanent }),
        2 => (host.clone(), step(), 1u32..3).prop_map(|(host, step, times)| Fault::Hang { host, step, times }),
        2 => (host.clone(), step(), 1u32..3).prop_map(|(host, step, times)| Fault::LoseReply { host, step, times }),
        1 => host.clone().prop_map(|host| Fault::NeverHealthy { host }),
        2 => (host, 1u32..25, 1u32..8).prop_map(|(host, from_call, calls)| Fault::HostDown { host, from_call, calls }),
    ]
}

fn crash() -> impl Strategy<Value = CrashPoint> {
    prop_oneof![
        (1u64..80).prop_map(CrashPoint::AfterAppend),
        (1u64..80).prop_map(CrashPoint::BeforeAppend),
    ]
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
            )
        })
        .prop_map(
            |(hosts, seed, roles, masks, first_deploy, faults, crashes, on_failure, batch_size)| {
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
    // Liveness once faults stop: the settled deployment is final.
    let phase = outcome.phase();
    prop_assert!(
        matches!(phase, Phase::Completed | Phase::RolledBack | Phase::Aborted),
        "ended {:?}",
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
    }
    let counts = [
        completed,
        rolled_back,
        aborted,
        resumed_after_halt,
        crashed,
        takeovers,
        observed,
    ];
    eprintln!("coverage {counts:?}");
    assert!(counts.iter().all(|&n| n >= 3), "completed, rolled back, aborted, resumed after halt, crashed, takeovers, observed: {counts:?}");
}
