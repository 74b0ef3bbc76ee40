//! The sled journal at its boundary: appends with expected sequence numbers, the
//! unfinished-deployment pointer, corruption and gaps reported with deployment and
//! sequence, the deploy lock with takeover and fencing, and durability under SIGKILL.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use odysseus_engine::journal::{self, Acquired, Journal, LockRecord};
use odysseus_engine::machine::{
    DeploymentStarted, Event, Fact, FailurePolicy, Plan, RetryPolicy, RoleKind, Target, Timeouts,
};
use odysseus_engine::{DeploymentId, Operator, Timestamp};
use support::ScratchDir;

fn operator(pid: u32) -> Operator {
    Operator {
        user: "ops".into(),
        hostname: "deployer".into(),
        pid,
    }
}

fn started(id: DeploymentId, service: &str) -> Event {
    let plan = Plan {
        targets: vec![Target {
            role: "web".into(),
            host: "local".into(),
            kind: RoleKind::Web,
            old_containers: vec!["app-web-old".into()],
            old_version: Some("v1".into()),
            timeouts: Timeouts::default(),
        }],
        purpose: Default::default(),
        batch_size: 1,
        on_failure: FailurePolicy::Halt,
        retry: RetryPolicy::default(),
    };
    Event {
        at: Timestamp(1_000),
        fact: Fact::DeploymentStarted(Box::new(DeploymentStarted {
            id,
            service: service.into(),
            image: "example/app".into(),
            version: "v2".into(),
            config_digest: "digest".into(),
            plan,
            operator: operator(1),
            lock_token: 1,
        })),
    }
}

fn id(n: u32) -> DeploymentId {
    DeploymentId {
        millis: 1_700_000_000_000 + n as u64,
        nonce: n,
    }
}

fn completed() -> Event {
    Event {
        at: Timestamp(2_000),
        fact: Fact::DeploymentCompleted,
    }
}

#[test]
fn append_with_a_stale_sequence_number_conflicts_with_expected_and_actual() {
    let dir = ScratchDir::new("conflict");
    let j = Journal::open(dir.path()).unwrap();
    assert_eq!(j.append(id(1), 0, &started(id(1), "app")).unwrap(), 0);
    match j.append(id(1), 0, &completed()) {
        Err(journal::Error::Conflict {
            expected: 0,
            actual: 1,
        }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    match j.append(id(1), 5, &completed()) {
        Err(journal::Error::Conflict {
            expected: 5,
            actual: 1,
        }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The first event of a deployment must be its start.
    assert!(matches!(
        j.append(id(2), 0, &completed()),
        Err(journal::Error::NotAStart)
    ));
}

#[test]
fn a_service_has_one_unfinished_deployment_and_the_index_lists_newest_first() {
    let dir = ScratchDir::new("unfinished");
    let j = Journal::open(dir.path()).unwrap();
    j.append(id(1), 0, &started(id(1), "app")).unwrap();
    assert_eq!(j.unfinished("app").unwrap(), Some(id(1)));
    match j.append(id(2), 0, &started(id(2), "app")) {
        Err(journal::Error::Unfinished {
            service,
            deployment,
        }) => {
            assert_eq!(service, "app");
            assert_eq!(deployment, id(1));
        }
        other => panic!("expected the unfinished deployment to be named, got {other:?}"),
    }
    // Another service is independent.
    j.append(id(3), 0, &started(id(3), "other")).unwrap();
    j.append(id(1), 1, &completed()).unwrap();
    assert_eq!(j.unfinished("app").unwrap(), None);
    j.append(id(2), 0, &started(id(2), "app")).unwrap();
    assert_eq!(j.deployments("app").unwrap(), vec![id(2), id(1)]);
    assert_eq!(j.deployments("other").unwrap(), vec![id(3)]);
    drop(j);
    // Everything survives a reopen.
    let j = Journal::open(dir.path()).unwrap();
    assert_eq!(
        j.load(id(1)).unwrap(),
        vec![started(id(1), "app"), completed()]
    );
    assert_eq!(j.unfinished("app").unwrap(), Some(id(2)));
}

#[test]
fn a_corrupt_record_is_reported_with_its_deployment_and_sequence() {
    let dir = ScratchDir::new("corrupt");
    let j = Journal::open(dir.path()).unwrap();
    j.append(id(1), 0, &started(id(1), "app")).unwrap();
    j.append(id(1), 1, &completed()).unwrap();
    let mut bytes = j.raw_records(id(1)).unwrap()[1].bytes.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    j.overwrite_raw_record(id(1), 1, &bytes).unwrap();
    for result in [j.load(id(1)).map(|_| ()), j.verify(id(1)).map(|_| ())] {
        match result {
            Err(journal::Error::Corrupt {
                deployment,
                seq: 1,
                detail: journal::RecordError::Checksum { .. },
            }) => {
                assert_eq!(deployment, id(1))
            }
            other => panic!("expected corruption at #1, got {other:?}"),
        }
    }
    // A torn (truncated) record is caught too.
    j.overwrite_raw_record(id(1), 1, &bytes[..bytes.len() - 3])
        .unwrap();
    let err = j.load(id(1)).unwrap_err();
    assert!(err.to_string().contains(&format!("{}#1", id(1))), "{err}");
}

#[test]
fn a_missing_record_is_a_gap_not_a_shorter_history() {
    let dir = ScratchDir::new("gap");
    let j = Journal::open(dir.path()).unwrap();
    j.append(id(1), 0, &started(id(1), "app")).unwrap();
    j.append(
        id(1),
        1,
        &Event {
            at: Timestamp(3),
            fact: Fact::AbortRequested { by: operator(2) },
        },
    )
    .unwrap();
    j.append(
        id(1),
        2,
        &Event {
            at: Timestamp(4),
            fact: Fact::DeploymentAborted,
        },
    )
    .unwrap();
    j.remove_raw_record(id(1), 1).unwrap();
    match j.load(id(1)) {
        Err(journal::Error::Gap {
            expected: 1,
            found: 2,
            ..
        }) => {}
        other => panic!("expected a gap, got {other:?}"),
    }
    j.remove_raw_record(id(1), 2).unwrap();
    match j.load(id(1)) {
        Err(journal::Error::HeadMismatch {
            head: 3, found: 1, ..
        }) => {}
        other => panic!("expected a head mismatch, got {other:?}"),
    }
}

#[test]
fn the_lock_names_a_live_holder_is_taken_over_from_a_dead_one_and_fences_the_loser() {
    let dir = ScratchDir::new("lock");
    let j = Journal::open(dir.path()).unwrap();
    let alive_pids = [1u32];
    let alive = |l: &LockRecord| alive_pids.contains(&l.owner.pid);
    let first = j
        .acquire_lock("app", &operator(1), 11, Timestamp(5), None, &alive)
        .unwrap();
    assert!(matches!(first, Acquired::Fresh { .. }));
    j.check_fence("app", first.token()).unwrap();

    // A second operator is refused and told who holds it.
    match j.acquire_lock("app", &operator(2), 22, Timestamp(6), None, &alive) {
        Err(e @ journal::Error::Locked { .. }) => {
            assert!(e.to_string().contains("ops@deployer (pid 1)"), "{e}")
        }
        other => panic!("expected Locked, got {other:?}"),
    }

    // Once pid 1 is gone, pid 2 takes the lock over with a greater token...
    let dead = |_: &LockRecord| false;
    let second = j
        .acquire_lock("app", &operator(2), 22, Timestamp(7), None, &dead)
        .unwrap();
    match &second {
        Acquired::TakenOver { token, previous } => {
            assert!(*token > first.token());
            assert_eq!(previous.owner.pid, 1);
        }
        other => panic!("expected a takeover, got {other:?}"),
    }
    // ...and the old holder can no longer pass the fence.
    assert!(matches!(
        j.check_fence("app", first.token()),
        Err(journal::Error::LockLost { .. })
    ));
    // Releasing with a stale token leaves the new holder alone.
    j.release_lock("app", first.token()).unwrap();
    assert_eq!(j.lock_holder("app").unwrap().unwrap().owner.pid, 2);
    j.release_lock("app", second.token()).unwrap();
    assert_eq!(j.lock_holder("app").unwrap(), None);
    drop(j);
    assert!(Journal::open(dir.path())
        .unwrap()
        .lock_holder("app")
        .unwrap()
        .is_none());
}

#[test]
fn a_journal_held_open_by_another_process_is_reported_busy() {
    let dir = ScratchDir::new("busy");
    let mut child = spawn_child("hold", dir.path());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The test harness prints its own lines first.
    assert!(lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.ends_with("open")));
    let err = Journal::open(dir.path())
        .err()
        .expect("the journal is held by the child");
    assert!(matches!(err, journal::Error::Busy { .. }), "{err}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// sled's own crash test, for our journal: a child process appends as fast as it can and
/// reports every acknowledged append; it is killed with SIGKILL at a random moment.
/// Every acknowledged record must be there after reopening, and the log must verify.
#[test]
fn every_acknowledged_append_survives_sigkill() {
    for round in 0..4u32 {
        let dir = ScratchDir::new("sigkill");
        let mut child = spawn_child("append", dir.path());
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let stop_after = 20 + (round * 37) % 90;
        let mut acked = 0u64;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("acked ") {
                acked = n.parse().unwrap();
                if acked >= stop_after as u64 {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let records = j.verify(id(9)).unwrap();
        assert!(
            records >= acked,
            "round {round}: {acked} acknowledged, {records} on disk"
        );
        let events = j.load(id(9)).unwrap();
        assert_eq!(events.len() as u64, records);
    }
}

fn spawn_child(mode: &str, dir: &std::path::Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_entry_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ODYSSEUS_JOURNAL_CHILD", mode)
        .env("ODYSSEUS_JOURNAL_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Not a test of its own: the body of the child processes above. Without the
/// environment variables it checks that the child modes are refused when misspelled.
#[test]
fn child_process_entry_point() {
    let Ok(mode) = std::env::var("ODYSSEUS_JOURNAL_CHILD") else {
        assert!(std::env::var("ODYSSEUS_JOURNAL_DIR").is_err());
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var("ODYSSEUS_JOURNAL_DIR").unwrap());
    let j = Journal::open(&dir).unwrap();
    match mode.as_str() {
        "hold" => {
            println!("open");
            std::io::Write::flush(&mut std::io::stdout()).unwrap();
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
        "append" => {
            j.append(id(9), 0, &started(id(9), "app")).unwrap();
            println!("acked 1");
            for seq in 1..100_000u64 {
                let fact = Fact::Resumed {
                    by: operator(seq as u32),
                    lock_token: seq,
                };
                j.append(
                    id(9),
                    seq,
                    &Event {
                        at: Timestamp(seq),
                        fact,
                    },
                )
                .unwrap();
                println!("acked {}", seq + 1);
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// `provenance` (kind 18) was appended to the v1 format after the golden logs: it
/// round-trips, and it is accepted in a running deployment without changing its course.
#[test]
fn a_provenance_record_round_trips_and_folds_without_changing_the_deployment() {
    use odysseus_engine::machine::{DeploymentState, HostImage};
    let fact = Fact::Provenance {
        images: vec![
            HostImage {
                host: "web1".into(),
                image_id: Some("sha256:abc".into()),
            },
            HostImage {
                host: "web2".into(),
                image_id: None,
            },
        ],
        secrets: vec!["DATABASE_URL".into()],
        secrets_digest: Some("sha256:0011223344556677".into()),
    };
    let event = Event {
        at: Timestamp(1),
        fact,
    };
    let bytes = journal::encode(&event);
    assert_eq!(bytes[1], 18, "the kind byte of provenance is frozen at 18");
    assert_eq!(journal::decode(&bytes).unwrap(), event);
    let before = DeploymentState::fold(&[started(id(1), "app")]).unwrap();
    let after = DeploymentState::fold(&[started(id(1), "app"), event]).unwrap();
    assert_eq!(after.phase, before.phase);
    assert_eq!(after.targets, before.targets);
    assert_eq!(after.next_seq, before.next_seq + 1);
}

/// The build phase's records keep their kind bytes (22, 23, 24) and round-trip; the
/// machine accepts them only at the head of a deployment, in order.
#[test]
fn build_records_round_trip_with_frozen_kinds_and_fold_in_order() {
    use odysseus_engine::machine::DeploymentState;
    let facts = [
        (
            Fact::BuildStarted {
                commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
                builder: "remote s1".into(),
                platforms: vec!["linux/amd64".into()],
                args: vec!["GREETING".into(), "NPM_TOKEN".into()],
            },
            22u8,
        ),
        (
            Fact::Built {
                image_id: "sha256:feed".into(),
                millis: 1234,
            },
            23,
        ),
        (
            Fact::BuildFailed {
                reason: "Step 3/5 failed".into(),
            },
            24,
        ),
    ];
    let mut events = vec![started(id(1), "app")];
    for (fact, kind) in facts.iter().take(2) {
        let event = Event {
            at: Timestamp(2),
            fact: fact.clone(),
        };
        let bytes = journal::encode(&event);
        assert_eq!(bytes[1], *kind, "{}", fact.kind_name());
        assert_eq!(journal::decode(&bytes).unwrap(), event);
        events.push(event);
    }
    let state = DeploymentState::fold(&events).unwrap();
    assert_eq!(
        state.build.unwrap().image_id.as_deref(),
        Some("sha256:feed")
    );
    let failed = Event {
        at: Timestamp(3),
        fact: facts[2].0.clone(),
    };
    assert_eq!(journal::encode(&failed)[1], 24);
    assert_eq!(journal::decode(&journal::encode(&failed)).unwrap(), failed);
    // A failure after `built` is not a build failure: refused by the machine.
    events.push(failed.clone());
    assert!(DeploymentState::fold(&events).is_err());
    let state = DeploymentState::fold(&[events[0].clone(), events[1].clone(), failed]).unwrap();
    assert!(state.phase.is_final());
}

/// Hook records (issue 13 §3) are appended variants with frozen kinds: they round-trip,
/// their payload bytes are pinned, and the machine folds them in order — a gate that
/// failed ends an untouched deployment, a `hook-failed` without a failed run is refused.
#[test]
fn hook_records_round_trip_with_frozen_kinds_and_fold_in_order() {
    use odysseus_engine::machine::{DeploymentState, HookName, Phase};
    let facts = [
        (
            Fact::HooksFound {
                hooks: vec!["pre-deploy".into(), "pre-app-boot".into()],
            },
            29u8,
        ),
        (
            Fact::HookStarted {
                hook: "pre-deploy".into(),
                hosts: vec!["local".into()],
            },
            30,
        ),
        (
            Fact::HookEnded {
                hook: "pre-deploy".into(),
                exit_code: Some(3),
                reason: String::new(),
                millis: 42,
            },
            31,
        ),
        (
            Fact::HookFailed {
                hook: "pre-deploy".into(),
                reason: "the pre-deploy hook exited 3".into(),
            },
            32,
        ),
    ];
    let mut events = vec![started(id(1), "app")];
    for (fact, kind) in &facts {
        let event = Event {
            at: Timestamp(2),
            fact: fact.clone(),
        };
        let bytes = journal::encode(&event);
        assert_eq!(bytes[1], *kind, "{}", fact.kind_name());
        assert_eq!(journal::decode(&bytes).unwrap(), event);
        events.push(event);
    }
    // The field order of `hook-ended` is part of the format.
    let ended = journal::encode(&events[3]);
    let payload: String = ended.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        payload.contains(HOOK_ENDED_PAYLOAD),
        "hook-ended's bytes changed: {payload}"
    );
    let state = DeploymentState::fold(&events).unwrap();
    assert!(state.has_hook(HookName::PreAppBoot));
    assert_eq!(state.phase, Phase::HookFailed);
    assert!(state.phase.is_final());
    // A `hook-failed` right after a run that passed is refused.
    let mut passed = events[..3].to_vec();
    passed.push(Event {
        at: Timestamp(2),
        fact: Fact::HookEnded {
            hook: "pre-deploy".into(),
            exit_code: Some(0),
            reason: String::new(),
            millis: 1,
        },
    });
    passed.push(events[4].clone());
    assert!(DeploymentState::fold(&passed).is_err());
}

/// `hook-ended { "pre-deploy", Some(3), "", 42 }` as bincode 2 writes it.
const HOOK_ENDED_PAYLOAD: &str = "0a7072652d6465706c6f790106002a";

/// A cleanup's start is `deployment-started`'s record under its own kind (25: v1's plan
/// has no room for a purpose), and its steps are appended variants of the step enum: the
/// bytes decode back to a cleanup, and a deploy's start keeps kind 1.
#[test]
fn cleanup_records_keep_their_purpose_under_a_frozen_kind() {
    use odysseus_engine::machine::{Purpose, StepName};
    let deploy = started(id(7), "app");
    assert_eq!(journal::encode(&deploy)[1], 1);
    let Fact::DeploymentStarted(mut s) = deploy.fact.clone() else {
        unreachable!()
    };
    s.plan.purpose = Purpose::Cleanup;
    s.plan.on_failure = FailurePolicy::Halt;
    let cleanup = Event {
        at: Timestamp(1_000),
        fact: Fact::DeploymentStarted(s),
    };
    let bytes = journal::encode(&cleanup);
    assert_eq!(bytes[1], 25);
    assert_eq!(cleanup.fact.kind_name(), "cleanup-started");
    assert_eq!(journal::decode(&bytes).unwrap(), cleanup);
    for step in [
        StepName::UnrouteOld,
        StepName::RemoveOld,
        StepName::RemoveRoute,
    ] {
        let event = Event {
            at: Timestamp(1_001),
            fact: Fact::StepStarted {
                target: 0,
                step,
                attempt: 1,
                key: format!("app-web-x:{step}"),
            },
        };
        assert_eq!(journal::decode(&journal::encode(&event)).unwrap(), event);
    }
}

/// The release facts keep their kind bytes (26, 27, 28) and decode back unchanged.
#[test]
fn release_records_round_trip_with_frozen_kinds() {
    let facts = [
        (
            Fact::ReleaseStarted {
                host: "198.51.100.11".into(),
                container: "app-release-0123456789".into(),
                command: vec!["bin/rails".into(), "db:migrate".into()],
            },
            26u8,
        ),
        (Fact::Released { millis: 4321 }, 27),
        (
            Fact::ReleaseFailed {
                exit_code: Some(3),
                reason: "exited 3".into(),
            },
            28,
        ),
    ];
    for (fact, kind) in facts {
        let event = Event {
            at: Timestamp(5),
            fact,
        };
        let bytes = journal::encode(&event);
        assert_eq!(bytes[1], kind, "{}", event.fact.kind_name());
        assert_eq!(journal::decode(&bytes).unwrap(), event);
    }
}

/// A state dir whose journal sled cannot read — its files damaged on disk, or `journal`
/// not a directory at all (a file, a device) — gets one plain message naming the path and
/// what to do (exit 1 for damage, 2 for a path that cannot be a journal), no panic and no
/// doubled text. (sled itself rewrites a damaged log when it opens it, even for `history`:
/// that is not ours to prevent here, see the notes.)
#[test]
fn a_damaged_or_impossible_journal_is_named_once_with_what_to_do() {
    let state = ScratchDir::new("damaged");
    let journal_dir = state.path().join("journal");
    {
        let j = Journal::open(&journal_dir).unwrap();
        for n in 1..=40 {
            j.append(id(n), 0, &started(id(n), "legacy")).unwrap();
            j.append(id(n), 1, &completed()).unwrap();
        }
    }
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/good/accessories-era.yml");
    let history = |state: &std::path::Path| {
        Command::new(support::odysseus_bin())
            // This state dir's journal only: the config's hosts are not the test bed's.
            .args(["history", "--local", "-c"])
            .arg(&config)
            .arg("--state-dir")
            .arg(state)
            .output()
            .unwrap()
    };
    // Damage every byte range sled keeps its pages in: the biggest file, in its middle.
    let mut files: Vec<_> = std::fs::read_dir(&journal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort_by_key(|p| std::cmp::Reverse(p.metadata().unwrap().len()));
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 4..len * 3 / 4] {
        *b ^= 0x5a;
    }
    std::fs::write(&files[0], &bytes).unwrap();
    let out = history(state.path());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&journal_dir.display().to_string()) && err.contains("damaged"),
        "{err}"
    );
    assert!(
        err.contains("mv ") && err.contains("odysseus status"),
        "{err}"
    );
    assert!(
        !err.contains("backtrace") && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one message: {err}");

    for (what, make) in [
        (
            "a file",
            Box::new(|p: &std::path::Path| std::fs::write(p, b"not a journal").unwrap())
                as Box<dyn Fn(&std::path::Path)>,
        ),
        (
            "a device",
            Box::new(|p: &std::path::Path| std::os::unix::fs::symlink("/dev/zero", p).unwrap()),
        ),
    ] {
        let other = ScratchDir::new("notadir");
        std::fs::create_dir_all(other.path()).unwrap();
        make(&other.path().join("journal"));
        let out = history(other.path());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains(&format!("is {what}, not a directory")) && err.contains("--state-dir"),
            "{what}: {err}"
        );
        let first = err.lines().next().unwrap_or("");
        assert_eq!(err.matches("os error").count(), 0, "{what}: {err}");
        assert!(first.starts_with("odysseus: "), "{what}: {err}");
    }
}

/// Maintenance mode's records (issue 13 §4) keep their kinds and bytes: `maintenance-
/// started` and `live-started` carry the v1 start (the kind is the purpose),
/// `maintenance-page` the message and `Retry-After`; the step names are the two v1
/// appended. A maintenance deployment folds to its page, and a page in a deploy is refused.
#[test]
fn maintenance_records_round_trip_with_frozen_kinds_and_bytes() {
    use odysseus_engine::machine::{
        DeploymentState, MaintenancePage, Observation, Phase, Purpose, StepName,
    };
    let page = MaintenancePage {
        message: "back".into(),
        retry_after_s: 300,
    };
    for (purpose, kind, name) in [
        (Purpose::Maintenance, 33u8, "maintenance-started"),
        (Purpose::Live, 34, "live-started"),
    ] {
        let mut event = started(id(7), "app");
        if let Fact::DeploymentStarted(s) = &mut event.fact {
            s.plan.purpose = purpose;
        }
        let bytes = journal::encode(&event);
        assert_eq!(bytes[1], kind, "{name}");
        assert_eq!(event.fact.kind_name(), name);
        assert_eq!(journal::decode(&bytes).unwrap(), event);
        let step = if purpose == Purpose::Maintenance {
            StepName::EnterMaintenance
        } else {
            StepName::LeaveMaintenance
        };
        let mut events = vec![event];
        if purpose == Purpose::Maintenance {
            events.push(Event {
                at: Timestamp(2),
                fact: Fact::MaintenancePage(page.clone()),
            });
        }
        for fact in [
            Fact::StepStarted {
                target: 0,
                step,
                attempt: 1,
                key: "k".into(),
            },
            Fact::StepSucceeded {
                target: 0,
                step,
                attempt: 1,
                observed: Observation::Done,
            },
            Fact::TargetCompleted { target: 0 },
            Fact::DeploymentCompleted,
        ] {
            let event = Event {
                at: Timestamp(3),
                fact,
            };
            assert_eq!(journal::decode(&journal::encode(&event)).unwrap(), event);
            events.push(event);
        }
        let state = DeploymentState::fold(&events).unwrap();
        assert_eq!(state.phase, Phase::Completed);
        assert_eq!(
            state.maintenance_page,
            (purpose == Purpose::Maintenance).then(|| page.clone())
        );
    }
    let page_event = Event {
        at: Timestamp(2),
        fact: Fact::MaintenancePage(page),
    };
    let bytes = journal::encode(&page_event);
    assert_eq!(bytes[1], 35);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // "back", then 300 as bincode's varint (0xfb, little-endian u16).
    assert!(
        hex.contains("046261636bfb2c01"),
        "maintenance-page's bytes changed: {hex}"
    );
    // A deploy records no page.
    let refused = DeploymentState::fold(&[started(id(8), "app"), page_event]);
    assert!(refused.is_err(), "{refused:?}");
}
