//! The lifecycle of one run of a deployment command — the same for `odysseus deploy`,
//! `odysseus lock release`, `odysseus simulate` and the property tests:
//!
//! 1. choose what the run does, from the request and the unfinished deployment (a pure
//!    function: [`choose`]);
//! 2. take the journal's lock (a dead holder's lock is taken over, and the takeover is
//!    recorded by the runtime);
//! 3. start, resume, abort, abandon or supersede through the [`Runtime`];
//! 4. record the facts that come from outside the step loop (an interruption, a broken
//!    lock, an abandonment) through `evolve`, like every other fact ([`record_fact`]).

use super::{Clock, Error, EventLog, Executor, Runtime};
use crate::ids::{DeploymentId, Operator, Timestamp};
use crate::journal::{Acquired, Journal, LockRecord};
use crate::machine::{
    DeploymentStarted, DeploymentState, Event, Fact, Phase, Purpose, TargetStatus,
};

/// What the operator asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A plain deploy of `version` (None: neither `--image` nor deploy.yml names one).
    /// `narrowed`: `--hosts`/`--roles` were given. `supersede`: replace a halted
    /// deployment even though some of its hosts serve its new version.
    Deploy {
        version: Option<String>,
        narrowed: bool,
        supersede: bool,
    },
    Resume,
    Abort,
    /// End the unfinished deployment without touching any container.
    Abandon {
        reason: String,
    },
    /// An operation that is not a deploy: take the service off a host (`odysseus
    /// cleanup`), maintenance mode on or off (`odysseus app maintenance|live`).
    Operate,
}

/// What the run does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    Start {
        version: String,
        /// The halted deployment this one replaces.
        supersedes: Option<DeploymentId>,
    },
    Resume {
        id: DeploymentId,
        why: &'static str,
    },
    Abort {
        id: DeploymentId,
    },
    Abandon {
        id: DeploymentId,
        reason: String,
    },
    /// Start the operation asked for (nothing is unfinished).
    StartOperation,
    Refuse(Refusal),
}

/// Why nothing runs; the caller words it and names the next command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing says which version to deploy.
    NoVersion,
    /// `--resume`, `--abort` or `--abandon` with nothing unfinished.
    NothingUnfinished,
    /// `--hosts`/`--roles` while a deployment is unfinished: its plan names its targets.
    Narrowed { id: DeploymentId },
    /// Another image is asked for while a deployment is unfinished and cannot be
    /// superseded (`serving_new`: the hosts that serve its new version).
    Unfinished {
        id: DeploymentId,
        image: String,
        version: String,
        phase: Phase,
        serving_new: Vec<String>,
    },
    /// An operation while a deployment (or another operation) is unfinished: that one
    /// first.
    UnfinishedBeforeOperation { id: DeploymentId, purpose: Purpose },
    /// A deploy while an operation (a cleanup, maintenance on or off) is unfinished: it is
    /// finished (`--resume`) or ended (`--abandon`) first; a plain deploy never carries it
    /// on implicitly.
    OperationUnfinished { id: DeploymentId, purpose: Purpose },
    /// `--abort` of an operation that is never undone (see `Purpose::is_undoable`).
    OperationNotUndone { id: DeploymentId, purpose: Purpose },
}

/// Chooses what a run does. Pure: the same inputs always give the same choice.
pub fn choose(unfinished: Option<(DeploymentId, &DeploymentState)>, request: &Request) -> Choice {
    let Some((id, state)) = unfinished else {
        return match request {
            Request::Deploy {
                version: Some(v), ..
            } => Choice::Start {
                version: v.clone(),
                supersedes: None,
            },
            Request::Deploy { version: None, .. } => Choice::Refuse(Refusal::NoVersion),
            Request::Operate => Choice::StartOperation,
            _ => Choice::Refuse(Refusal::NothingUnfinished),
        };
    };
    let purpose = state.started().map(|s| s.plan.purpose).unwrap_or_default();
    let cleanup = !purpose.is_undoable();
    match request {
        Request::Operate => Choice::Refuse(Refusal::UnfinishedBeforeOperation { id, purpose }),
        Request::Abort if cleanup => Choice::Refuse(Refusal::OperationNotUndone { id, purpose }),
        Request::Deploy { .. } if cleanup => {
            Choice::Refuse(Refusal::OperationUnfinished { id, purpose })
        }
        Request::Resume => Choice::Resume {
            id,
            why: "resuming",
        },
        Request::Abort => Choice::Abort { id },
        Request::Abandon { reason } => Choice::Abandon {
            id,
            reason: reason.clone(),
        },
        Request::Deploy { narrowed: true, .. } => Choice::Refuse(Refusal::Narrowed { id }),
        Request::Deploy {
            version, supersede, ..
        } => {
            let (image, started_version) = state
                .started()
                .map(|s| (s.image.clone(), s.version.clone()))
                .unwrap_or_default();
            match version {
                None => Choice::Resume {
                    id,
                    why: "an unfinished deployment exists: resuming it",
                },
                Some(v) if *v == started_version => Choice::Resume {
                    id,
                    why: "an unfinished deployment of the same image exists: resuming it",
                },
                Some(v) => {
                    let serving_new = hosts_serving_new(state);
                    // Only a halted deployment is at rest: nothing in flight, nothing in
                    // doubt. With no host on its new version, nothing is lost by
                    // replacing it; otherwise only when asked.
                    if state.phase == Phase::Halted && (serving_new.is_empty() || *supersede) {
                        Choice::Start {
                            version: v.clone(),
                            supersedes: Some(id),
                        }
                    } else {
                        Choice::Refuse(Refusal::Unfinished {
                            id,
                            image,
                            version: started_version,
                            phase: state.phase,
                            serving_new,
                        })
                    }
                }
            }
        }
    }
}

/// The hosts where a target of the deployment serves its new version.
pub fn hosts_serving_new(state: &DeploymentState) -> Vec<String> {
    let Some(started) = state.started() else {
        return Vec::new();
    };
    let mut hosts: Vec<String> = Vec::new();
    for (t, target) in state.targets.iter().zip(&started.plan.targets) {
        if t.status == TargetStatus::Completed && !hosts.contains(&target.host) {
            hosts.push(target.host.clone());
        }
    }
    hosts
}

/// Records a fact that comes from outside the step loop into deployment `id`: the log is
/// folded, the fact validated by `evolve`, then appended. Returns the new state.
pub fn record_fact<L: EventLog, C: Clock>(
    log: &L,
    clock: &C,
    id: DeploymentId,
    fact: Fact,
) -> Result<DeploymentState, Error> {
    let mut state = DeploymentState::fold(&log.load(id)?)?;
    let event = Event {
        at: clock.now(),
        fact,
    };
    let seq = state.next_seq;
    state.evolve(&event)?;
    log.append(id, seq, &event)?;
    Ok(state)
}

/// One run holding the journal's lock of a service.
pub struct Session<'j> {
    journal: &'j Journal,
    service: String,
    operator: Operator,
    lock: Acquired,
}

impl<'j> Session<'j> {
    /// Takes the journal's lock of `service`. A holder for whom `alive` says false is
    /// taken over (the runtime records it in the deployment it drives).
    pub fn open(
        journal: &'j Journal,
        service: &str,
        operator: Operator,
        process_start: u64,
        now: Timestamp,
        alive: &dyn Fn(&LockRecord) -> bool,
    ) -> Result<Self, Error> {
        let lock = journal.acquire_lock(service, &operator, process_start, now, None, alive)?;
        Ok(Session {
            journal,
            service: service.to_string(),
            operator,
            lock,
        })
    }

    pub fn lock(&self) -> &Acquired {
        &self.lock
    }

    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    /// The service's unfinished deployment, folded.
    pub fn unfinished(&self) -> Result<Option<(DeploymentId, DeploymentState)>, Error> {
        match self.journal.unfinished(&self.service)? {
            Some(id) => Ok(Some((id, DeploymentState::fold(&self.journal.load(id)?)?))),
            None => Ok(None),
        }
    }

    /// What this run does with `request`.
    pub fn choose(&self, request: &Request) -> Result<Choice, Error> {
        let unfinished = self.unfinished()?;
        Ok(choose(unfinished.as_ref().map(|(id, s)| (*id, s)), request))
    }

    /// Starts `started` (superseding `supersedes` first, recorded in both).
    pub async fn start<L: EventLog, E: Executor, C: Clock>(
        &self,
        runtime: &mut Runtime<'_, L, E, C>,
        started: DeploymentStarted,
        supersedes: Option<DeploymentId>,
    ) -> Result<DeploymentState, Error> {
        let id = started.id;
        let mut state = self.begin(runtime, started, supersedes)?;
        runtime.drive_on(id, &mut state).await?;
        Ok(state)
    }

    /// Records `started` (and what it supersedes) without driving it.
    pub fn begin<L: EventLog, E: Executor, C: Clock>(
        &self,
        runtime: &mut Runtime<'_, L, E, C>,
        started: DeploymentStarted,
        supersedes: Option<DeploymentId>,
    ) -> Result<DeploymentState, Error> {
        let id = started.id;
        if let Some(old) = supersedes {
            runtime.record_into(
                old,
                Fact::Superseded {
                    by: self.operator.clone(),
                    deployment: id,
                },
            )?;
            runtime.preamble_first(Fact::Supersedes { deployment: old });
        }
        self.journal
            .set_lock_deployment(&self.service, self.lock.token(), id)?;
        runtime.begin(started, &self.lock)
    }

    /// Reopens `id` to resume it, without driving it.
    pub fn reopen_to_resume<L: EventLog, E: Executor, C: Clock>(
        &self,
        runtime: &mut Runtime<'_, L, E, C>,
        id: DeploymentId,
    ) -> Result<DeploymentState, Error> {
        self.journal
            .set_lock_deployment(&self.service, self.lock.token(), id)?;
        runtime.reopen_to_resume(id, self.operator.clone(), &self.lock)
    }

    pub async fn resume<L: EventLog, E: Executor, C: Clock>(
        &self,
        runtime: &mut Runtime<'_, L, E, C>,
        id: DeploymentId,
    ) -> Result<DeploymentState, Error> {
        self.journal
            .set_lock_deployment(&self.service, self.lock.token(), id)?;
        runtime.resume(id, self.operator.clone(), &self.lock).await
    }

    pub async fn abort<L: EventLog, E: Executor, C: Clock>(
        &self,
        runtime: &mut Runtime<'_, L, E, C>,
        id: DeploymentId,
    ) -> Result<DeploymentState, Error> {
        self.journal
            .set_lock_deployment(&self.service, self.lock.token(), id)?;
        runtime.abort(id, self.operator.clone(), &self.lock).await
    }

    /// Ends deployment `id` without touching anything: recorded with who and why.
    pub fn abandon<L: EventLog, C: Clock>(
        &self,
        log: &L,
        clock: &C,
        id: DeploymentId,
        reason: String,
    ) -> Result<DeploymentState, Error> {
        record_fact(
            log,
            clock,
            id,
            Fact::Abandoned {
                by: self.operator.clone(),
                reason,
            },
        )
    }

    /// Releases the journal's lock.
    pub fn close(self) -> Result<(), Error> {
        Ok(self
            .journal
            .release_lock(&self.service, self.lock.token())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{
        DeploymentStarted, FailedOutcome, FailurePolicy, Plan, RetryPolicy, RoleKind, Target,
        Timeouts,
    };

    fn id(n: u32) -> DeploymentId {
        DeploymentId {
            millis: 1,
            nonce: n,
        }
    }

    fn operator() -> Operator {
        Operator {
            user: "u".into(),
            hostname: "h".into(),
            pid: 1,
        }
    }

    /// A two-host deployment of v2, driven until `host1` is `first` and the deployment
    /// halted (or left running when `halt` is false).
    fn state(first_completed: bool, halt: bool) -> DeploymentState {
        let target = |host: &str| Target {
            role: "web".into(),
            host: host.into(),
            kind: RoleKind::Job,
            old_containers: vec![],
            old_version: None,
            timeouts: Timeouts::default(),
        };
        let started = DeploymentStarted {
            id: id(1),
            service: "app".into(),
            image: "app".into(),
            version: "v2".into(),
            config_digest: String::new(),
            plan: Plan {
                targets: vec![target("host1"), target("host2")],
                purpose: Default::default(),
                batch_size: 1,
                on_failure: FailurePolicy::Halt,
                retry: RetryPolicy::default(),
            },
            operator: operator(),
            lock_token: 1,
        };
        let mut s = DeploymentState::default();
        let mut apply = |fact: Fact| {
            s.evolve(&Event {
                at: Timestamp(0),
                fact,
            })
            .unwrap()
        };
        apply(Fact::DeploymentStarted(Box::new(started)));
        if first_completed {
            for step in [
                crate::machine::StepName::StartNew,
                crate::machine::StepName::AwaitHealthy,
            ] {
                apply(Fact::StepStarted {
                    target: 0,
                    step,
                    attempt: 1,
                    key: String::new(),
                });
                apply(Fact::StepSucceeded {
                    target: 0,
                    step,
                    attempt: 1,
                    observed: crate::machine::Observation::Done,
                });
            }
            apply(Fact::TargetCompleted { target: 0 });
        }
        if halt {
            apply(Fact::DeploymentFailed {
                outcome: FailedOutcome::Halted,
                reason: "x".into(),
            });
        }
        s
    }

    fn deploy(version: &str, supersede: bool) -> Request {
        Request::Deploy {
            version: Some(version.into()),
            narrowed: false,
            supersede,
        }
    }

    #[test]
    fn an_unfinished_operation_is_finished_or_ended_never_rolled_back_or_deployed_over() {
        for purpose in [Purpose::Cleanup, Purpose::Maintenance, Purpose::Live] {
            let halted = state(false, true);
            let mut started = halted.started().unwrap().clone();
            started.plan.purpose = purpose;
            let mut s = DeploymentState::default();
            for fact in [
                Fact::DeploymentStarted(Box::new(started)),
                Fact::DeploymentFailed {
                    outcome: FailedOutcome::Halted,
                    reason: "x".into(),
                },
            ] {
                s.evolve(&Event {
                    at: Timestamp(0),
                    fact,
                })
                .unwrap();
            }
            let unfinished = Some((id(1), &s));
            assert_eq!(
                choose(unfinished, &Request::Abort),
                Choice::Refuse(Refusal::OperationNotUndone { id: id(1), purpose })
            );
            assert_eq!(
                choose(unfinished, &deploy("v3", true)),
                Choice::Refuse(Refusal::OperationUnfinished { id: id(1), purpose })
            );
            assert_eq!(
                choose(unfinished, &Request::Operate),
                Choice::Refuse(Refusal::UnfinishedBeforeOperation { id: id(1), purpose })
            );
            assert!(matches!(
                choose(unfinished, &Request::Resume),
                Choice::Resume { .. }
            ));
        }
        assert_eq!(choose(None, &Request::Operate), Choice::StartOperation);
    }

    #[test]
    fn nothing_unfinished_starts_or_refuses() {
        assert_eq!(
            choose(None, &deploy("v2", false)),
            Choice::Start {
                version: "v2".into(),
                supersedes: None
            }
        );
        assert_eq!(
            choose(
                None,
                &Request::Deploy {
                    version: None,
                    narrowed: false,
                    supersede: false
                }
            ),
            Choice::Refuse(Refusal::NoVersion)
        );
        for r in [
            Request::Resume,
            Request::Abort,
            Request::Abandon { reason: "r".into() },
        ] {
            assert_eq!(choose(None, &r), Choice::Refuse(Refusal::NothingUnfinished));
        }
    }

    #[test]
    fn the_same_image_resumes_and_narrowing_is_refused() {
        let s = state(false, false);
        assert!(matches!(
            choose(Some((id(1), &s)), &deploy("v2", false)),
            Choice::Resume { .. }
        ));
        assert_eq!(
            choose(
                Some((id(1), &s)),
                &Request::Deploy {
                    version: Some("v2".into()),
                    narrowed: true,
                    supersede: false
                }
            ),
            Choice::Refuse(Refusal::Narrowed { id: id(1) })
        );
    }

    #[test]
    fn a_halted_deployment_no_host_serves_is_superseded_and_one_some_serve_only_when_asked() {
        let nobody = state(false, true);
        assert_eq!(
            choose(Some((id(1), &nobody)), &deploy("v3", false)),
            Choice::Start {
                version: "v3".into(),
                supersedes: Some(id(1))
            }
        );
        let host1 = state(true, true);
        match choose(Some((id(1), &host1)), &deploy("v3", false)) {
            Choice::Refuse(Refusal::Unfinished { serving_new, .. }) => {
                assert_eq!(serving_new, vec!["host1".to_string()])
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            choose(Some((id(1), &host1)), &deploy("v3", true)),
            Choice::Start {
                version: "v3".into(),
                supersedes: Some(id(1))
            }
        );
        // A deployment in motion (not halted) is never superseded, even when asked.
        let running = state(true, false);
        assert!(matches!(
            choose(Some((id(1), &running)), &deploy("v3", true)),
            Choice::Refuse(Refusal::Unfinished { .. })
        ));
    }

    #[test]
    fn a_build_comes_before_every_step_and_a_failed_one_ends_the_deployment() {
        let at = |fact: Fact| Event {
            at: Timestamp(0),
            fact,
        };
        let step = Fact::StepStarted {
            target: 0,
            step: crate::machine::StepName::StartNew,
            attempt: 1,
            key: String::new(),
        };
        let provenance = Fact::Provenance {
            images: vec![],
            secrets: vec![],
            secrets_digest: None,
        };
        let mut s = state(false, false);
        s.evolve(&at(Fact::BuildStarted {
            commit: Some("abc".into()),
            builder: "local".into(),
            platforms: vec![],
            args: vec![],
        }))
        .unwrap();
        assert!(
            s.clone().evolve(&at(step.clone())).is_err(),
            "no step while building"
        );
        assert!(
            s.clone().evolve(&at(provenance.clone())).is_err(),
            "nothing delivered yet"
        );
        let mut failed = s.clone();
        failed
            .evolve(&at(Fact::BuildFailed { reason: "x".into() }))
            .unwrap();
        assert!(failed.phase.is_final());
        assert!(Fact::BuildFailed { reason: "x".into() }.closes_deployment());
        // A crash while building: the resume builds again, which is a new start.
        s.evolve(&at(Fact::BuildStarted {
            commit: Some("abc".into()),
            builder: "local".into(),
            platforms: vec![],
            args: vec![],
        }))
        .unwrap();
        let built = Fact::Built {
            image_id: "sha256:1".into(),
            millis: 5,
        };
        s.evolve(&at(built.clone())).unwrap();
        assert!(s.clone().evolve(&at(built)).is_err(), "built once");
        let again = Fact::BuildStarted {
            commit: None,
            builder: "local".into(),
            platforms: vec![],
            args: vec![],
        };
        assert!(s.clone().evolve(&at(again)).is_err(), "never built twice");
        s.evolve(&at(provenance)).unwrap();
        s.evolve(&at(step)).unwrap();
        assert_eq!(s.build.unwrap().image_id.as_deref(), Some("sha256:1"));
    }

    /// The release runs once, after the image is on the hosts and before any step; no
    /// step while it has no outcome; a failed one ends the deployment.
    #[test]
    fn a_release_runs_once_between_provenance_and_the_first_step() {
        let at = |fact: Fact| Event {
            at: Timestamp(0),
            fact,
        };
        let step = Fact::StepStarted {
            target: 0,
            step: crate::machine::StepName::StartNew,
            attempt: 1,
            key: String::new(),
        };
        let release = Fact::ReleaseStarted {
            host: "host1".into(),
            container: "app-release-1".into(),
            command: vec!["migrate".into()],
        };
        let mut s = state(false, false);
        assert!(
            s.clone().evolve(&at(release.clone())).is_err(),
            "not before provenance"
        );
        s.evolve(&at(Fact::Provenance {
            images: vec![],
            secrets: vec![],
            secrets_digest: None,
        }))
        .unwrap();
        assert!(
            s.clone().evolve(&at(Fact::Released { millis: 1 })).is_err(),
            "not started"
        );
        s.evolve(&at(release.clone())).unwrap();
        assert!(
            s.clone().evolve(&at(step.clone())).is_err(),
            "no step while it runs"
        );
        assert!(
            s.clone().evolve(&at(release.clone())).is_err(),
            "never a second run"
        );
        let mut failed = s.clone();
        let failure = Fact::ReleaseFailed {
            exit_code: Some(3),
            reason: "exited 3".into(),
        };
        failed.evolve(&at(failure.clone())).unwrap();
        assert!(failed.phase.is_final() && failure.closes_deployment());
        assert!(failed.clone().evolve(&at(step.clone())).is_err());
        s.evolve(&at(Fact::Released { millis: 5 })).unwrap();
        assert!(s.clone().evolve(&at(release)).is_err(), "ran once");
        s.evolve(&at(step)).unwrap();
    }
}
