//! The loop that drives one deployment: fold → decide → write intent (flushed) →
//! execute → write outcome → repeat.

use std::time::Duration;

use futures_util::future::join_all;

use super::{Clock, Error, ExecError, Executor, HookRunner};
use crate::ids::{DeploymentId, Operator};
use crate::journal::{Acquired, Journal};
use crate::machine::{
    decide, Action, Decision, DeploymentStarted, DeploymentState, Event, Fact, FailureKind,
    HookCall, HookExit,
};

/// Where the runtime writes events. The sled `Journal` is the real one; tests wrap it to
/// crash at chosen appends.
pub trait EventLog {
    /// Appends and flushes before returning.
    fn append(
        &self,
        deployment: DeploymentId,
        expected_seq: u64,
        event: &Event,
    ) -> Result<u64, Error>;
    fn load(&self, deployment: DeploymentId) -> Result<Vec<Event>, Error>;
    /// The stored bytes of records `from..`: what the hosts' copies receive.
    fn raw_from(&self, deployment: DeploymentId, from: u64) -> Result<Vec<Vec<u8>>, Error>;
    /// Fails when the deploy lock is no longer held with `token`.
    fn check_fence(&self, service: &str, token: u64) -> Result<(), Error>;
    /// Fails when this process is gone (the simulator's crashes): asked after work that
    /// appends nothing, such as bringing the hosts' copies up to date.
    fn alive(&self) -> Result<(), Error> {
        Ok(())
    }
}

impl EventLog for Journal {
    fn append(
        &self,
        deployment: DeploymentId,
        expected_seq: u64,
        event: &Event,
    ) -> Result<u64, Error> {
        Ok(Journal::append(self, deployment, expected_seq, event)?)
    }
    fn load(&self, deployment: DeploymentId) -> Result<Vec<Event>, Error> {
        Ok(Journal::load(self, deployment)?)
    }
    fn raw_from(&self, deployment: DeploymentId, from: u64) -> Result<Vec<Vec<u8>>, Error> {
        Ok(Journal::raw_from(self, deployment, from)?)
    }
    fn check_fence(&self, service: &str, token: u64) -> Result<(), Error> {
        Ok(Journal::check_fence(self, service, token)?)
    }
}

type EventSink<'a> = Box<dyn FnMut(u64, &Event, &DeploymentState) + 'a>;

pub struct Runtime<'a, L, E, C> {
    log: &'a L,
    executor: &'a E,
    clock: &'a C,
    on_event: EventSink<'a>,
    preamble: Vec<Fact>,
    /// The records of the deployment being driven, as stored: what its hosts' copies are
    /// brought up to before each side effect.
    copied: Option<(DeploymentId, Vec<Vec<u8>>)>,
    /// Hosts whose copy could not be brought up to date the last time it was tried.
    behind: std::collections::BTreeMap<String, String>,
    hooks: Option<&'a dyn HookRunner>,
}

impl<'a, L: EventLog, E: Executor, C: Clock> Runtime<'a, L, E, C> {
    pub fn new(log: &'a L, executor: &'a E, clock: &'a C) -> Self {
        Runtime {
            log,
            executor,
            clock,
            on_event: Box::new(|_, _, _| {}),
            preamble: Vec::new(),
            copied: None,
            behind: Default::default(),
            hooks: None,
        }
    }

    /// Who runs the project's hooks (without one, a hook the deployment found is
    /// recorded as not run, and a gate fails).
    pub fn hooks(mut self, runner: &'a dyn HookRunner) -> Self {
        self.hooks = Some(runner);
        self
    }

    /// Runs one hook, write-ahead: `hook-started` is on record before it runs and
    /// `hook-ended` after. What its exit means is the machine's (see `HookName::is_gate`).
    pub async fn run_hook(
        &mut self,
        id: DeploymentId,
        state: &mut DeploymentState,
        call: HookCall,
    ) -> Result<HookExit, Error> {
        self.record(
            id,
            state,
            Fact::HookStarted {
                hook: call.hook.as_str().to_string(),
                hosts: call.hosts.clone(),
            },
        )?;
        let exit = match self.hooks {
            Some(runner) => runner.run(&call).await,
            None => HookExit {
                exit_code: None,
                reason: "could not run: this process has no hook runner".into(),
                millis: 0,
            },
        };
        self.record(
            id,
            state,
            Fact::HookEnded {
                hook: call.hook.as_str().to_string(),
                exit_code: exit.exit_code,
                reason: exit.reason.clone(),
                millis: exit.millis,
            },
        )?;
        Ok(exit)
    }

    /// Facts recorded right after `DeploymentStarted` by [`Runtime::start`], before any
    /// step (what exactly is deployed: `Fact::Provenance`).
    pub fn preamble(mut self, facts: Vec<Fact>) -> Self {
        self.preamble = facts;
        self
    }

    /// Called after every appended event, with its sequence number and the new state.
    pub fn on_event(mut self, sink: impl FnMut(u64, &Event, &DeploymentState) + 'a) -> Self {
        self.on_event = Box::new(sink);
        self
    }

    /// Puts `fact` before the rest of the preamble.
    pub fn preamble_first(&mut self, fact: Fact) {
        self.preamble.insert(0, fact);
    }

    /// Records a fact into another deployment than the one being driven (validated
    /// against its folded log like every other fact).
    pub fn record_into(&mut self, id: DeploymentId, fact: Fact) -> Result<u64, Error> {
        let events = self.log.load(id)?;
        let mut state = DeploymentState::fold(&events)?;
        self.record(id, &mut state, fact)
    }

    /// Starts a new deployment and drives it until it finishes or stops short.
    pub async fn start(
        &mut self,
        started: DeploymentStarted,
        lock: &Acquired,
    ) -> Result<DeploymentState, Error> {
        let id = started.id;
        let mut state = self.begin(started, lock)?;
        self.drive(id, &mut state).await?;
        Ok(state)
    }

    /// Records a new deployment's start and preamble without driving it: what runs
    /// before the first step (a build, the image's delivery) is recorded with
    /// [`Runtime::record_now`], then [`Runtime::drive_on`] takes over.
    pub fn begin(
        &mut self,
        started: DeploymentStarted,
        lock: &Acquired,
    ) -> Result<DeploymentState, Error> {
        let id = started.id;
        let mut state = DeploymentState::default();
        let by = started.operator.clone();
        self.record(id, &mut state, Fact::DeploymentStarted(Box::new(started)))?;
        for fact in std::mem::take(&mut self.preamble) {
            self.record(id, &mut state, fact)?;
        }
        if let Acquired::TakenOver { previous, token } = lock {
            let fact = Fact::LockTakenOver {
                from: previous.owner.clone(),
                by,
                lock_token: *token,
            };
            self.record(id, &mut state, fact)?;
        }
        Ok(state)
    }

    /// Records `fact` into the deployment being driven (validated by the machine first).
    pub fn record_now(
        &mut self,
        id: DeploymentId,
        state: &mut DeploymentState,
        fact: Fact,
    ) -> Result<u64, Error> {
        self.record(id, state, fact)
    }

    /// Drives a deployment begun with [`Runtime::begin`] or reopened with
    /// [`Runtime::reopen_to_resume`] until it finishes or stops short.
    pub async fn drive_on(
        &mut self,
        id: DeploymentId,
        state: &mut DeploymentState,
    ) -> Result<(), Error> {
        self.drive(id, state).await
    }

    /// Folds the log of `id` and continues it: after a crash, a halt or a failed
    /// rollback. Steps whose outcome is in doubt are observed before anything is redone.
    pub async fn resume(
        &mut self,
        id: DeploymentId,
        by: Operator,
        lock: &Acquired,
    ) -> Result<DeploymentState, Error> {
        let mut state = self.reopen_to_resume(id, by, lock)?;
        self.record_missing_provenance(id, &mut state)?;
        self.drive(id, &mut state).await?;
        Ok(state)
    }

    /// Folds the log of `id` and records that this run resumes it, without driving.
    pub fn reopen_to_resume(
        &mut self,
        id: DeploymentId,
        by: Operator,
        lock: &Acquired,
    ) -> Result<DeploymentState, Error> {
        let mut state = self.reopen(id, &by, lock)?;
        self.record(
            id,
            &mut state,
            Fact::Resumed {
                by,
                lock_token: lock.token(),
            },
        )?;
        self.record_missing_provenance(id, &mut state)?;
        Ok(state)
    }

    /// A run that died between `deployment-started` and its provenance left the log
    /// without it: the resuming run records what it finds instead — only while no step
    /// has run (later, today's image ids would not be what the containers were made of).
    fn record_missing_provenance(
        &mut self,
        id: DeploymentId,
        state: &mut DeploymentState,
    ) -> Result<(), Error> {
        let untouched = state
            .targets
            .iter()
            .all(|t| t.status == crate::machine::TargetStatus::Pending);
        if !untouched {
            return Ok(());
        }
        for fact in std::mem::take(&mut self.preamble) {
            // Likewise a maintenance deployment's page: a run that died before it was on
            // record changed nothing, and the resuming run's page goes up instead.
            let missing = match &fact {
                Fact::Provenance { .. } => state.provenance.is_none(),
                Fact::MaintenancePage(_) => state.maintenance_page.is_none(),
                _ => false,
            };
            if missing {
                self.record(id, state, fact)?;
            }
        }
        Ok(())
    }

    /// Rolls back every target the deployment touched.
    pub async fn abort(
        &mut self,
        id: DeploymentId,
        by: Operator,
        lock: &Acquired,
    ) -> Result<DeploymentState, Error> {
        let mut state = self.reopen(id, &by, lock)?;
        self.record(
            id,
            &mut state,
            Fact::Resumed {
                by: by.clone(),
                lock_token: lock.token(),
            },
        )?;
        self.record(id, &mut state, Fact::AbortRequested { by })?;
        self.record_missing_provenance(id, &mut state)?;
        self.drive(id, &mut state).await?;
        Ok(state)
    }

    fn reopen(
        &mut self,
        id: DeploymentId,
        by: &Operator,
        lock: &Acquired,
    ) -> Result<DeploymentState, Error> {
        let events = self.log.load(id)?;
        let mut state = DeploymentState::fold(&events)?;
        if state.phase.is_final() {
            return Err(Error::NotResumable(id, state.phase.as_str()));
        }
        if let Acquired::TakenOver { previous, token } = lock {
            let fact = Fact::LockTakenOver {
                from: previous.owner.clone(),
                by: by.clone(),
                lock_token: *token,
            };
            self.record(id, &mut state, fact)?;
        }
        Ok(state)
    }

    /// Validates a fact against the machine, appends it, then applies it.
    fn record(
        &mut self,
        id: DeploymentId,
        state: &mut DeploymentState,
        fact: Fact,
    ) -> Result<u64, Error> {
        let event = Event {
            at: self.clock.now(),
            fact,
        };
        let mut next = state.clone();
        next.evolve(&event)?;
        let seq = self.log.append(id, state.next_seq, &event)?;
        *state = next;
        (self.on_event)(seq, &event, state);
        Ok(seq)
    }

    /// Brings the hosts' copies of the deployment's journal up to every record appended so
    /// far: each host in `changing` must have them before this returns them as fine (the
    /// hosts an effect is about to change); the deployment's other hosts get them where
    /// they can. Returns the hosts of `changing` that could not be brought up to date.
    pub async fn replicate(
        &mut self,
        id: DeploymentId,
        state: &DeploymentState,
        changing: &[String],
    ) -> Result<Vec<(String, ExecError)>, Error> {
        let Some(started) = state.started() else {
            return Ok(Vec::new());
        };
        let service = started.service.clone();
        let hosts: Vec<String> = started.plan.hosts().into_iter().map(String::from).collect();
        if !matches!(&self.copied, Some((c, _)) if *c == id) {
            self.copied = Some((id, Vec::new()));
        }
        let copied = &mut self.copied.as_mut().expect("set above").1;
        let more = self.log.raw_from(id, copied.len() as u64)?;
        copied.extend(more);
        let failed = self
            .executor
            .replicate(&service, id, copied, &hosts, changing)
            .await;
        self.log.alive()?;
        self.behind.retain(|h, _| !hosts.contains(h));
        for (host, e) in &failed {
            self.behind.insert(host.clone(), e.to_string());
        }
        Ok(failed
            .into_iter()
            .filter(|(h, _)| changing.contains(h))
            .collect())
    }

    /// Hosts whose copy of the journal is behind this machine's after the last try, and
    /// why: the next run that takes the lock brings them up to date.
    pub fn hosts_behind(&self) -> &std::collections::BTreeMap<String, String> {
        &self.behind
    }

    async fn drive(&mut self, id: DeploymentId, state: &mut DeploymentState) -> Result<(), Error> {
        loop {
            match decide(state)? {
                Decision::Finished(_) => {
                    // The last records announce no effect: the hosts get them where they
                    // can, and a host that cannot is brought up to date by the next run.
                    self.replicate(id, state, &[]).await?;
                    return Ok(());
                }
                Decision::Record(facts) => {
                    for fact in facts {
                        self.record(id, state, fact)?;
                    }
                }
                Decision::Run(actions) => self.run(id, state, actions).await?,
                Decision::RunHook(call) => {
                    self.run_hook(id, state, call).await?;
                }
            }
        }
    }

    async fn run(
        &mut self,
        id: DeploymentId,
        state: &mut DeploymentState,
        actions: Vec<Action>,
    ) -> Result<(), Error> {
        let backoff = actions
            .iter()
            .map(|a| a.effect().backoff_ms)
            .max()
            .unwrap_or(0);
        if backoff > 0 {
            tokio::time::sleep(Duration::from_millis(backoff)).await;
        }
        let service = state
            .started()
            .map(|s| s.service.clone())
            .unwrap_or_default();
        // A process that lost its lock must not act: check the fencing token right
        // before the side effects.
        self.log.check_fence(&service, state.lock_token)?;

        for action in &actions {
            if let Action::Execute(e) = action {
                let fact = Fact::StepStarted {
                    target: e.target,
                    step: e.step,
                    attempt: e.attempt,
                    key: e.key.clone(),
                };
                self.record(id, state, fact)?;
                tracing::debug!(deploy.id = %id, host = %e.host, role = %e.role, step = %e.step, attempt = e.attempt, "step started");
            }
        }

        // Write-ahead, fleet-wide: the intent is on the hosts an effect changes before the
        // effect runs, so a run from another machine reads it there.
        let changing: Vec<String> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Execute(e) => Some(e.host.clone()),
                Action::Observe(_) => None,
            })
            .collect();
        let unwritten = if changing.is_empty() {
            Vec::new()
        } else {
            self.replicate(id, state, &changing).await?
        };
        let unwritten = &unwritten;

        let executor = self.executor;
        let outcomes = join_all(actions.iter().map(|action| async move {
            let effect = action.effect();
            let deadline = Duration::from_millis(effect.deadline_ms);
            match action {
                Action::Execute(e) if unwritten.iter().any(|(h, _)| *h == e.host) => {
                    // Not run; its error keeps who must react (a lost lock is permanent).
                    let err = unwritten
                        .iter()
                        .find(|(h, _)| *h == e.host)
                        .map(|(_, w)| w.clone())
                        .unwrap_or_else(|| ExecError::Retryable(String::new()));
                    let host = e.host.clone();
                    failed(
                        e,
                        err.map_message(|m| {
                            format!("not run: this step's record could not be written to the journal's copy on {host}: {m}")
                        }),
                    )
                }
                Action::Execute(e) => {
                    let result = tokio::time::timeout(deadline, executor.execute(e)).await;
                    let result = result.unwrap_or_else(|_| {
                        Err(ExecError::OutcomeUnknown(format!(
                            "no answer within {} ms",
                            effect.deadline_ms
                        )))
                    });
                    match result {
                        Ok(observed) => Fact::StepSucceeded {
                            target: e.target,
                            step: e.step,
                            attempt: e.attempt,
                            observed,
                        },
                        Err(err) => failed(e, err),
                    }
                }
                Action::Observe(e) => {
                    let result = tokio::time::timeout(deadline, executor.observe(e)).await;
                    match result {
                        Ok(Ok(done)) => Fact::StepObserved {
                            target: e.target,
                            step: e.step,
                            attempt: e.attempt,
                            done,
                        },
                        Ok(Err(err)) => Fact::StepFailed {
                            target: e.target,
                            step: e.step,
                            attempt: e.attempt,
                            kind: FailureKind::OutcomeUnknown,
                            reason: format!("could not observe the outcome: {err}"),
                        },
                        Err(_) => Fact::StepFailed {
                            target: e.target,
                            step: e.step,
                            attempt: e.attempt,
                            kind: FailureKind::OutcomeUnknown,
                            reason: format!(
                                "could not observe the outcome within {} ms",
                                effect.deadline_ms
                            ),
                        },
                    }
                }
            }
        }))
        .await;

        for fact in outcomes {
            self.record(id, state, fact)?;
        }
        Ok(())
    }
}

fn failed(e: &crate::machine::Effect, err: ExecError) -> Fact {
    let (kind, reason) = match err {
        ExecError::Retryable(r) => (FailureKind::Retryable, r),
        ExecError::Permanent(r) => (FailureKind::Permanent, r),
        ExecError::OutcomeUnknown(r) => (FailureKind::OutcomeUnknown, r),
    };
    Fact::StepFailed {
        target: e.target,
        step: e.step,
        attempt: e.attempt,
        kind,
        reason,
    }
}
