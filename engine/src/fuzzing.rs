//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the corpus replay in
//! `cargo test`. Each takes arbitrary bytes and must never panic.

use crate::ids::{DeploymentId, Operator, Timestamp};
use crate::journal::{decode, encode, read_log};
use crate::machine::{
    decide, DeploymentStarted, DeploymentState, Event, Fact, FailedOutcome, FailureKind,
    FailurePolicy, Observation, Plan, Purpose, RetryPolicy, RoleKind, StepName, Target, Timeouts,
};

/// Decoding arbitrary bytes as a record or a log returns an error or an event; an
/// event that decodes re-encodes to the same bytes.
pub fn decode_record(data: &[u8]) {
    if let Ok(event) = decode(data) {
        assert_eq!(
            encode(&event),
            data,
            "a decoded record re-encodes differently"
        );
    }
    let _ = read_log(data);
}

/// Builds an event sequence from the bytes, folds it and asks `decide` after every
/// accepted event. Every event must survive encode → decode unchanged.
pub fn fold_events(data: &[u8]) {
    let mut input = Bytes(data);
    let mut state = DeploymentState::default();
    let mut at = 0u64;
    while let Some(fact) = next_fact(&mut input) {
        at += u64::from(input.byte());
        let event = Event {
            at: Timestamp(at),
            fact,
        };
        let bytes = encode(&event);
        assert_eq!(
            decode(&bytes).as_ref(),
            Ok(&event),
            "encode → decode changed the event"
        );
        if state.evolve(&event).is_ok() && state.started().is_some() {
            let _ = decide(&state);
        }
    }
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn small(&mut self, n: u8) -> u32 {
        u32::from(self.byte() % n.max(1))
    }
    fn text(&mut self) -> String {
        let len = self.small(6) as usize;
        (0..len)
            .map(|_| char::from(b'a' + self.byte() % 26))
            .collect()
    }
}

fn operator(input: &mut Bytes) -> Operator {
    Operator {
        user: input.text(),
        hostname: input.text(),
        pid: input.small(200),
    }
}

fn step(input: &mut Bytes) -> StepName {
    StepName::ALL[input.small(StepName::ALL.len() as u8) as usize]
}

fn observation(input: &mut Bytes) -> Observation {
    match input.small(4) {
        0 => Observation::Done,
        1 => Observation::Container { id: input.text() },
        2 => Observation::Drained {
            waited_ms: u64::from(input.byte()),
            remaining: input.small(3),
        },
        _ => Observation::Count { n: input.small(5) },
    }
}

/// A hook's name: mostly real ones, sometimes text (which the machine must refuse).
fn hook_name(input: &mut Bytes) -> String {
    use crate::machine::HookName;
    match input.small(8) as usize {
        i if i < HookName::ALL.len() => HookName::ALL[i].as_str().to_string(),
        _ => input.text(),
    }
}

fn next_fact(input: &mut Bytes) -> Option<Fact> {
    if input.0.is_empty() {
        return None;
    }
    let target = input.small(4);
    let attempt = input.small(5);
    Some(match input.small(32) {
        0 => {
            let targets = (0..input.small(4))
                .map(|_| Target {
                    role: if input.small(2) == 0 {
                        "web".into()
                    } else {
                        "jobs".into()
                    },
                    host: format!("h{}", input.small(3)),
                    kind: if input.small(2) == 0 {
                        RoleKind::Web
                    } else {
                        RoleKind::Job
                    },
                    old_containers: (0..input.small(3)).map(|_| input.text()).collect(),
                    old_version: None,
                    timeouts: Timeouts::default(),
                })
                .collect();
            Fact::DeploymentStarted(Box::new(DeploymentStarted {
                id: DeploymentId {
                    millis: u64::from(input.byte()),
                    nonce: input.small(255),
                },
                service: input.text(),
                image: input.text(),
                version: input.text(),
                config_digest: input.text(),
                plan: Plan {
                    targets,
                    purpose: match input.small(8) {
                        0 => Purpose::Cleanup,
                        1 => Purpose::Maintenance,
                        2 => Purpose::Live,
                        _ => Purpose::Deploy,
                    },
                    batch_size: input.small(3),
                    on_failure: if input.small(2) == 0 {
                        FailurePolicy::Halt
                    } else {
                        FailurePolicy::Rollback
                    },
                    retry: RetryPolicy {
                        max_attempts: input.small(4),
                        ..RetryPolicy::default()
                    },
                },
                operator: operator(input),
                lock_token: u64::from(input.byte()),
            }))
        }
        1 => Fact::StepStarted {
            target,
            step: step(input),
            attempt,
            key: input.text(),
        },
        2 => Fact::StepSucceeded {
            target,
            step: step(input),
            attempt,
            observed: observation(input),
        },
        3 => {
            let kind = [
                FailureKind::Retryable,
                FailureKind::Permanent,
                FailureKind::OutcomeUnknown,
            ][input.small(3) as usize];
            Fact::StepFailed {
                target,
                step: step(input),
                attempt,
                kind,
                reason: input.text(),
            }
        }
        4 => {
            let done = if input.small(2) == 0 {
                None
            } else {
                Some(observation(input))
            };
            Fact::StepObserved {
                target,
                step: step(input),
                attempt,
                done,
            }
        }
        5 => Fact::TargetCompleted { target },
        6 => Fact::TargetRollbackStarted {
            target,
            reason: input.text(),
        },
        7 => Fact::TargetRolledBack { target },
        8 => Fact::TargetRollbackFailed {
            target,
            reason: input.text(),
        },
        9 => Fact::DeploymentCompleted,
        10 => {
            let outcome = [
                FailedOutcome::Halted,
                FailedOutcome::RolledBack,
                FailedOutcome::RollbackIncomplete,
            ][input.small(3) as usize];
            Fact::DeploymentFailed {
                outcome,
                reason: input.text(),
            }
        }
        11 => Fact::AbortRequested {
            by: operator(input),
        },
        12 => Fact::DeploymentAborted,
        13 => Fact::Resumed {
            by: operator(input),
            lock_token: u64::from(input.byte()),
        },
        14 => Fact::Interrupted {
            by: operator(input),
            signal: input.text(),
        },
        15 => Fact::LockReleased {
            by: operator(input),
            from: (input.small(2) == 0).then(|| operator(input)),
        },
        16 => Fact::Provenance {
            images: (0..input.small(3))
                .map(|_| crate::machine::HostImage {
                    host: input.text(),
                    image_id: (input.small(2) == 0).then(|| input.text()),
                })
                .collect(),
            secrets: (0..input.small(3)).map(|_| input.text()).collect(),
            secrets_digest: (input.small(2) == 0).then(|| input.text()),
        },
        17 => Fact::Abandoned {
            by: operator(input),
            reason: input.text(),
        },
        18 => Fact::Superseded {
            by: operator(input),
            deployment: DeploymentId {
                millis: u64::from(input.byte()),
                nonce: u32::from(input.byte()),
            },
        },
        19 => Fact::Supersedes {
            deployment: DeploymentId {
                millis: u64::from(input.byte()),
                nonce: u32::from(input.byte()),
            },
        },
        20 => Fact::BuildStarted {
            commit: (input.small(2) == 0).then(|| input.text()),
            builder: input.text(),
            platforms: (0..input.small(3)).map(|_| input.text()).collect(),
            args: (0..input.small(3)).map(|_| input.text()).collect(),
        },
        21 => Fact::Built {
            image_id: input.text(),
            millis: u64::from(input.byte()),
        },
        22 => Fact::BuildFailed {
            reason: input.text(),
        },
        23 => Fact::ReleaseStarted {
            host: input.text(),
            container: input.text(),
            command: (0..input.small(3)).map(|_| input.text()).collect(),
        },
        24 => Fact::Released {
            millis: u64::from(input.byte()),
        },
        25 => Fact::ReleaseFailed {
            exit_code: (input.small(2) == 0).then(|| i64::from(input.byte())),
            reason: input.text(),
        },
        26 => Fact::HooksFound {
            hooks: (0..input.small(3)).map(|_| hook_name(input)).collect(),
        },
        27 => Fact::HookStarted {
            hook: hook_name(input),
            hosts: vec![input.text()],
        },
        28 => Fact::HookEnded {
            hook: hook_name(input),
            exit_code: (input.small(2) == 0).then(|| i32::from(input.byte())),
            reason: input.text(),
            millis: u64::from(input.byte()),
        },
        29 => Fact::HookFailed {
            hook: hook_name(input),
            reason: input.text(),
        },
        30 => Fact::MaintenancePage(crate::machine::MaintenancePage {
            message: input.text(),
            retry_after_s: u32::from(input.byte()),
        }),
        _ => Fact::LockTakenOver {
            from: operator(input),
            by: operator(input),
            lock_token: u64::from(input.byte()),
        },
    })
}
