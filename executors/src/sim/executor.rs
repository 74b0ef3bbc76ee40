//! The simulated executor: the real steps (`crate::steps`) over the simulated world's
//! host operations, with the fault plan wrapped around each effect.

use std::cell::RefCell;
use std::rc::Rc;

use odysseus_engine::machine::{Effect, Observation, RoleKind};
use odysseus_engine::runtime::{ExecError, Executor, Survey};

use super::clock::SimClock;
use super::crash::CrashSchedule;
use super::faults::Injected;
use super::host_ops::SimHost;
use super::world::World;
use crate::steps::Steps;

pub struct SimExecutor {
    pub world: Rc<RefCell<World>>,
    clock: SimClock,
    steps: Steps<SimHost>,
}

impl SimExecutor {
    pub fn new(
        world: Rc<RefCell<World>>,
        clock: SimClock,
        crashes: Option<Rc<CrashSchedule>>,
    ) -> Self {
        let host = SimHost::new(world.clone(), clock.clone(), crashes);
        SimExecutor {
            world,
            clock,
            steps: Steps::new(host),
        }
    }

    /// The world's host operations, for what runs outside the steps (the hosts' marks).
    pub fn host_ops(&self) -> &SimHost {
        &self.steps.ops
    }

    fn gate(&self, host: &str, step: Option<odysseus_engine::machine::StepName>) -> Injected {
        let mut w = self.world.borrow_mut();
        w.now_ms = self.clock.elapsed_ms();
        w.faults.next_call(host, step)
    }

    /// A container that dies on its own once its step is done (a `Dies` fault).
    fn after_step(&self, e: &Effect) {
        let mut w = self.world.borrow_mut();
        w.now_ms = self.clock.elapsed_ms();
        if w.faults.dies_after(&e.host, &e.role, e.step) {
            w.kill(&e.host, &e.new_container);
        }
    }
}

impl Executor for SimExecutor {
    async fn execute(&self, e: &Effect) -> Result<Observation, ExecError> {
        if e.purpose == odysseus_engine::machine::Purpose::Cleanup {
            // The host is being emptied on purpose: serving nothing is the goal.
            self.world
                .borrow_mut()
                .decommissioning
                .insert(e.host.clone());
        }
        match self.gate(&e.host, Some(e.step)) {
            Injected::None => {
                let result = self.steps.execute(e).await;
                if result.is_ok() {
                    self.after_step(e);
                }
                result
            }
            Injected::Fail { permanent: true } => Err(ExecError::Permanent(format!(
                "injected permanent failure of {}",
                e.step
            ))),
            Injected::Fail { permanent: false } => Err(ExecError::Retryable(format!(
                "injected failure of {}",
                e.step
            ))),
            Injected::Hang => std::future::pending().await,
            Injected::LoseReply => {
                self.steps.execute(e).await?;
                self.after_step(e);
                Err(ExecError::OutcomeUnknown(format!(
                    "reply of {} lost",
                    e.step
                )))
            }
            Injected::Unreachable => Err(ExecError::OutcomeUnknown(format!(
                "{} is unreachable",
                e.host
            ))),
        }
    }

    async fn observe(&self, e: &Effect) -> Result<Option<Observation>, ExecError> {
        match self.gate(&e.host, None) {
            Injected::Unreachable => Err(ExecError::OutcomeUnknown(format!(
                "{} is unreachable",
                e.host
            ))),
            _ => self.steps.observe(e).await,
        }
    }

    async fn survey(
        &self,
        service: &str,
        role: &str,
        kind: RoleKind,
        host: &str,
    ) -> Result<Survey, ExecError> {
        self.steps.survey(service, role, kind, host).await
    }

    async fn survey_all(&self, service: &str, role: &str, host: &str) -> Result<Survey, ExecError> {
        self.steps.survey_all(service, role, host).await
    }

    async fn replicate(
        &self,
        service: &str,
        deployment: odysseus_engine::DeploymentId,
        records: &[Vec<u8>],
        hosts: &[String],
        changing: &[String],
    ) -> Vec<(String, ExecError)> {
        self.steps
            .replicate(service, deployment, records, hosts, changing)
            .await
    }
}
