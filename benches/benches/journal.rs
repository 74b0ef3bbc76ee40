//! Journal and machine costs:
//! - `append_flush`: one event appended and flushed to disk (the write-ahead cost every
//!   step pays twice), beside `raw_write_fsync`, a plain write + fsync of a record of the
//!   same size in the same directory: the physical limit of this disk.
//! - `fold_100k`: folding a 100 000-event log (what `replay` and a resume do).
//! - `decode_100k`: decoding 100 000 records (the journal's read path without sled).
//! - `decide`: one decision on a mid-deployment state of a 50-host fleet.
//! - `host_copy_append`: the same record appended to a host's copy of the journal through
//!   the deploy lock's shell loop on this machine (`sh`, `flock`, `stat`, `sync`): what
//!   each host pays per batch of steps, beside `append_flush`. Needs root (the lock
//!   lives in /run/lock/odysseus, the copy in /var/lib/odysseus).
//!
//! The journal directory is on the real disk (target/bench-journal), never tmpfs.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use odysseus_engine::journal::{decode, encode, Journal};
use odysseus_engine::machine::{
    decide, DeploymentStarted, DeploymentState, Event, Fact, FailurePolicy, Observation, Plan,
    RetryPolicy, RoleKind, StepName, Target, Timeouts,
};
use odysseus_engine::{DeploymentId, Operator, Timestamp};

fn bench_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/bench-journal")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn started(id: DeploymentId, hosts: usize) -> Event {
    let targets = (0..hosts)
        .map(|h| Target {
            role: "web".into(),
            host: format!("app{h}.example.com"),
            kind: RoleKind::Web,
            old_containers: vec!["app-web-0123456789".into()],
            old_version: Some("v1".into()),
            timeouts: Timeouts::default(),
        })
        .collect();
    Event {
        at: Timestamp(1),
        fact: Fact::DeploymentStarted(Box::new(DeploymentStarted {
            id,
            service: "app".into(),
            image: "registry.example.com/team/app".into(),
            version: "v2".into(),
            config_digest: "sha256:0123456789abcdef".into(),
            plan: Plan {
                targets,
                purpose: Default::default(),
                batch_size: 1,
                on_failure: FailurePolicy::Halt,
                retry: RetryPolicy::default(),
            },
            operator: Operator {
                user: "ops".into(),
                hostname: "laptop".into(),
                pid: 1,
            },
            lock_token: 1,
        })),
    }
}

/// A typical step event: what every step appends before it runs.
fn step_started(seq: u64) -> Event {
    Event {
        at: Timestamp(seq),
        fact: Fact::StepStarted {
            target: 0,
            step: StepName::DrainOld,
            attempt: 1,
            key: "app-web-0123456789:drain-old".into(),
        },
    }
}

/// A valid log of `n` events: many hosts, each running the seven web steps.
fn long_log(n: usize) -> Vec<Event> {
    let hosts = n / 16 + 1;
    let id = DeploymentId {
        millis: 1,
        nonce: 1,
    };
    let mut events = vec![started(id, hosts)];
    let steps = [
        StepName::StartNew,
        StepName::AwaitHealthy,
        StepName::AddUpstream,
        StepName::RemoveOldUpstream,
        StepName::DrainOld,
        StepName::StopOld,
        StepName::CleanStaleUpstreams,
    ];
    'outer: for t in 0..hosts as u32 {
        for step in steps {
            for fact in [
                Fact::StepStarted {
                    target: t,
                    step,
                    attempt: 1,
                    key: format!("k{t}:{step}"),
                },
                Fact::StepSucceeded {
                    target: t,
                    step,
                    attempt: 1,
                    observed: Observation::Done,
                },
            ] {
                if events.len() == n {
                    break 'outer;
                }
                events.push(Event {
                    at: Timestamp(events.len() as u64),
                    fact,
                });
            }
        }
        if events.len() < n {
            events.push(Event {
                at: Timestamp(events.len() as u64),
                fact: Fact::TargetCompleted { target: t },
            });
        }
    }
    events
}

fn journal_benches(c: &mut Criterion) {
    let record_len = encode(&step_started(1)).len();

    let mut g = c.benchmark_group("journal");
    g.sample_size(200);
    let dir = bench_dir("append");
    let journal = Journal::open(&dir).unwrap();
    let id = DeploymentId {
        millis: 2,
        nonce: 2,
    };
    journal.append(id, 0, &started(id, 1)).unwrap();
    let mut seq = 1u64;
    g.bench_function("append_flush", |b| {
        b.iter(|| {
            journal.append(id, seq, &step_started(seq)).unwrap();
            seq += 1;
        })
    });

    let raw_path = bench_dir("raw").join("records");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&raw_path)
        .unwrap();
    let record = vec![0xa5u8; record_len];
    g.bench_function("raw_write_fsync", |b| {
        b.iter(|| {
            file.write_all(&record).unwrap();
            file.sync_data().unwrap();
        })
    });

    host_copy_append(&mut g);
    g.finish();

    let events = long_log(100_000);
    let records: Vec<Vec<u8>> = events.iter().map(encode).collect();
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("fold_100k", |b| {
        b.iter(|| DeploymentState::fold(&events).unwrap())
    });
    g.bench_function("decode_100k", |b| {
        b.iter(|| {
            for r in &records {
                std::hint::black_box(decode(r).unwrap());
            }
        })
    });
    let dir = bench_dir("load");
    let journal = Journal::open(&dir).unwrap();
    let id = DeploymentId {
        millis: 1,
        nonce: 1,
    };
    for (seq, event) in events.iter().enumerate() {
        // Bulk load without a flush per record: this measures reading, not writing.
        journal.append(id, seq as u64, event).unwrap();
    }
    g.bench_function("load_and_fold_100k_from_sled", |b| {
        b.iter(|| DeploymentState::fold(&journal.load(id).unwrap()).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("machine");
    let mid = long_log(50 * 15 + 7);
    let state = DeploymentState::fold(&mid).unwrap();
    g.bench_function("decide_50_hosts", |b| b.iter(|| decide(&state).unwrap()));
    g.bench_function("evolve_one_event", |b| {
        let event = &mid[mid.len() - 1];
        let before = DeploymentState::fold(&mid[..mid.len() - 1]).unwrap();
        b.iter_batched(
            || before.clone(),
            |mut s| s.evolve(event).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// One record through the local deploy lock's loop into a host copy, at the offset the
/// writer tracks (as `DockerExecutor::append_copy` does).
fn host_copy_append(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    use odysseus_engine::journal::copy;
    use odysseus_executors::host_lock::{take_local, Claim, LockFiles};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let service = "bench-host-copy";
    let files = LockFiles::of(service);
    let _ = std::fs::remove_dir_all(&files.journal);
    let mut held = rt
        .block_on(take_local(
            "/var/run/docker.sock",
            &Claim::new(service, "the journal benchmark"),
        ))
        .expect("the local deploy lock (run as root)");
    let id = DeploymentId {
        millis: 3,
        nonce: 3,
    };
    let first = copy::lines(service, id, 0, &[encode(&started(id, 1))]);
    rt.block_on(held.append_journal(&id.to_string(), 0, &first))
        .unwrap();
    let mut offset: u64 = first.iter().map(|l| l.len() as u64 + 1).sum();
    let mut seq = 1u64;
    g.bench_function("host_copy_append", |b| {
        b.iter(|| {
            let lines = copy::lines(service, id, seq, &[encode(&step_started(seq))]);
            rt.block_on(held.append_journal(&id.to_string(), offset, &lines))
                .unwrap();
            offset += lines.iter().map(|l| l.len() as u64 + 1).sum::<u64>();
            seq += 1;
        })
    });
    rt.block_on(held.release());
    let _ = std::fs::remove_dir_all(&files.journal);
}

criterion_group!(benches, journal_benches);
criterion_main!(benches);
