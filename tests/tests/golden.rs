//! Golden logs: journals of format version 1, committed once and replayed forever.
//!
//! Each file under `tests/golden/v1/` must still decode, fold to the state recorded in
//! its `.expected` file, and re-encode to exactly the same bytes. If a change to the
//! wire types breaks this, the change is wrong: add a new format version instead.
//! To create a missing golden log (never to rewrite one): ODYSSEUS_BLESS_GOLDEN=1.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use odysseus_engine::journal::{encode, read_log, write_log};
use odysseus_engine::machine::{DeploymentState, FailurePolicy, RoleKind, StepName};
use odysseus_executors::sim::{self, CrashPoint, Fault, Scenario};
use support::ScratchDir;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/v1")
}

/// The scenarios the golden logs were made from (kept so a missing one can be made).
fn scenarios() -> Vec<(&'static str, Scenario)> {
    let web_jobs = [("web", RoleKind::Web), ("jobs", RoleKind::Job)];
    let web = [("web", RoleKind::Web)];

    let mut crash = Scenario::simple(11, 2, &web_jobs);
    crash.faults = vec![Fault::LoseReply {
        host: "host1".into(),
        step: StepName::AddUpstream,
        times: 1,
    }];
    crash.crashes = vec![CrashPoint::AfterAppend(9), CrashPoint::BeforeAppend(20)];

    let mut fleet = Scenario::simple(12, 3, &web);
    fleet.on_failure = FailurePolicy::Rollback;
    fleet.faults = vec![Fault::Fail {
        host: "host2".into(),
        step: StepName::AwaitHealthy,
        times: 5,
        permanent: false,
    }];

    let mut abort = Scenario::simple(13, 1, &web);
    abort.settle = true;
    abort.faults = vec![
        Fault::Fail {
            host: "host1".into(),
            step: StepName::DrainOld,
            times: 1,
            permanent: true,
        },
        Fault::Fail {
            host: "host1".into(),
            step: StepName::RemoveNew,
            times: 5,
            permanent: false,
        },
    ];

    let mut halted = Scenario::simple(14, 2, &web);
    halted.settle = true;
    halted.first_deploy = vec![false, true];
    halted.faults = vec![Fault::NeverHealthy {
        host: "host2".into(),
    }];

    vec![
        ("completed-after-crashes", crash),
        ("fleet-rollback", fleet),
        ("rollback-incomplete-then-abort", abort),
        ("halted-then-resumed", halted),
    ]
}

fn summary(state: &DeploymentState, events: usize) -> String {
    let mut out = format!("events: {events}\nphase: {}\n", state.phase.as_str());
    let started = state
        .started()
        .expect("a golden log starts with deployment-started");
    for (t, target) in state.targets.iter().zip(&started.plan.targets) {
        out.push_str(&format!("{}: {}\n", target.label(), t.status.as_str()));
    }
    out
}

#[test]
fn golden_logs_decode_fold_and_re_encode_byte_for_byte() {
    let bless = std::env::var("ODYSSEUS_BLESS_GOLDEN").is_ok_and(|v| v == "1");
    for (name, scenario) in scenarios() {
        let log_path = golden_dir().join(format!("{name}.log"));
        let expected_path = golden_dir().join(format!("{name}.expected"));
        if !log_path.exists() {
            assert!(
                bless,
                "golden log {} is missing (ODYSSEUS_BLESS_GOLDEN=1 creates it once)",
                log_path.display()
            );
            let dir = ScratchDir::new("golden");
            let outcome = sim::run(&scenario, dir.path());
            assert!(
                outcome.invariants_held(),
                "{:?} {:?}",
                outcome.violations,
                outcome.errors
            );
            std::fs::write(
                &log_path,
                write_log(outcome.records.iter().map(Vec::as_slice)),
            )
            .unwrap();
            std::fs::write(
                &expected_path,
                summary(&outcome.folded, outcome.events.len()),
            )
            .unwrap();
        }
        let bytes = std::fs::read(&log_path).unwrap();
        let events = read_log(&bytes).unwrap_or_else(|(i, e)| panic!("{name}: record {i}: {e}"));
        let state = DeploymentState::fold(&events).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            summary(&state, events.len()),
            std::fs::read_to_string(&expected_path).unwrap(),
            "{name}"
        );
        let reencoded = write_log(
            events
                .iter()
                .map(encode)
                .collect::<Vec<_>>()
                .iter()
                .map(Vec::as_slice),
        );
        assert!(
            reencoded == bytes,
            "{name}: re-encoding changed the bytes: the v1 wire format moved"
        );
    }
}

#[test]
fn golden_logs_hold_every_kind_of_event() {
    let mut kinds = BTreeSet::new();
    for (name, _) in scenarios() {
        let bytes = std::fs::read(golden_dir().join(format!("{name}.log"))).unwrap();
        for event in read_log(&bytes).unwrap() {
            kinds.insert(event.fact.kind_name());
        }
    }
    let all = [
        "deployment-started",
        "step-started",
        "step-succeeded",
        "step-failed",
        "step-observed",
        "target-completed",
        "target-rollback-started",
        "target-rolled-back",
        "target-rollback-failed",
        "deployment-completed",
        "deployment-failed",
        "abort-requested",
        "deployment-aborted",
        "resumed",
        "lock-taken-over",
    ];
    let missing: Vec<_> = all.iter().filter(|k| !kinds.contains(*k)).collect();
    assert!(missing.is_empty(), "no golden log holds {missing:?}");
}

/// The hosts' copies of the journal (`journal::copy`, format 1) are frozen too: each
/// golden log, written as a host's copy, must give exactly the committed file, and the
/// committed file must read back to exactly the log's records.
#[test]
fn golden_host_copies_are_written_and_read_byte_for_byte() {
    use odysseus_engine::journal::copy;
    let bless = std::env::var("ODYSSEUS_BLESS_GOLDEN").is_ok_and(|v| v == "1");
    let copies = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/copy-v1");
    for (name, _) in scenarios() {
        let bytes = std::fs::read(golden_dir().join(format!("{name}.log"))).unwrap();
        // The log's framing: a u32 length, then the record.
        let mut records = Vec::new();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            records.push(rest[4..4 + len].to_vec());
            rest = &rest[4 + len..];
        }
        let events = read_log(&bytes).unwrap();
        let started = DeploymentState::fold(&events).unwrap();
        let started = started.started().unwrap();
        let mut text = String::new();
        for line in copy::lines(&started.service, started.id, 0, &records) {
            text.push_str(&line);
            text.push('\n');
        }
        let path = copies.join(format!("{name}.journal"));
        if !path.exists() {
            assert!(
                bless,
                "golden copy {} is missing (ODYSSEUS_BLESS_GOLDEN=1 creates it once)",
                path.display()
            );
            std::fs::create_dir_all(&copies).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read(&path).unwrap();
        assert!(
            committed == text.as_bytes(),
            "{name}: writing a copy changed its bytes: the copy format moved"
        );
        let read = copy::parse(&started.service, started.id, &committed).unwrap();
        assert_eq!(read.records, records, "{name}");
        assert!(!read.torn_tail);
        assert_eq!(read.valid_bytes as usize, committed.len());
    }
}
