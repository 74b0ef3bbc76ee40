//! A journal wrapper that makes the simulated process die at chosen appends, the way
//! kill -9 would: either just before a record reaches the disk or just after.

use std::cell::{Cell, RefCell};

use odysseus_engine::journal::Journal;
use odysseus_engine::machine::Event;
use odysseus_engine::runtime::{Error, EventLog};
use odysseus_engine::DeploymentId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// Die right after the n-th append (1-based, counted over the whole run) is durable.
    AfterAppend(u64),
    /// Die right before the n-th append is written: if it reports an effect's outcome,
    /// the effect happened and the log does not know.
    BeforeAppend(u64),
    /// Die in the middle of an effect, just before the n-th host operation that changes
    /// the world (1-based, over the whole run): a container created and not started, a
    /// route written and a container not yet stopped, one of several old containers
    /// stopped.
    DuringEffect(u64),
}

/// Shared across the simulated process's incarnations: the append counter and the
/// crash points not yet reached.
#[derive(Default)]
pub struct CrashSchedule {
    pub appends: Cell<u64>,
    pub pending: RefCell<Vec<CrashPoint>>,
    /// Sequence numbers (per deployment) after which a crash happened, for the timeline.
    pub crashed_after_seq: RefCell<Vec<(u64, CrashPoint)>>,
    /// Mutating host operations so far, and the last sequence number appended.
    pub host_ops: Cell<u64>,
    last_seq: Cell<Option<u64>>,
    /// The process died in the middle of an effect: nothing it does reaches the world or
    /// the journal until the next incarnation.
    dead: Cell<bool>,
}

impl CrashSchedule {
    pub fn new(points: Vec<CrashPoint>) -> Self {
        CrashSchedule {
            pending: RefCell::new(points),
            ..Default::default()
        }
    }

    pub fn is_dead(&self) -> bool {
        self.dead.get()
    }

    /// A new process starts.
    pub fn revive(&self) {
        self.dead.set(false);
    }

    /// Counts one mutating host operation; true when the process dies before it.
    pub fn host_op(&self) -> bool {
        let n = self.host_ops.get() + 1;
        self.host_ops.set(n);
        if self.take(CrashPoint::DuringEffect(n)) {
            self.dead.set(true);
            if let Some(seq) = self.last_seq.get() {
                self.crashed_after_seq
                    .borrow_mut()
                    .push((seq, CrashPoint::DuringEffect(n)));
            }
            return true;
        }
        false
    }

    fn take(&self, point: CrashPoint) -> bool {
        let mut pending = self.pending.borrow_mut();
        match pending.iter().position(|p| *p == point) {
            Some(i) => {
                pending.remove(i);
                true
            }
            None => false,
        }
    }
}

pub struct CrashingLog<'a> {
    pub journal: &'a Journal,
    pub schedule: &'a CrashSchedule,
}

impl EventLog for CrashingLog<'_> {
    fn append(
        &self,
        deployment: DeploymentId,
        expected_seq: u64,
        event: &Event,
    ) -> Result<u64, Error> {
        if self.schedule.is_dead() {
            return Err(Error::Interrupted(
                "simulated crash during an effect".to_string(),
            ));
        }
        let n = self.schedule.appends.get() + 1;
        if self.schedule.take(CrashPoint::BeforeAppend(n)) {
            let seq = expected_seq.checked_sub(1);
            if let Some(seq) = seq {
                self.schedule
                    .crashed_after_seq
                    .borrow_mut()
                    .push((seq, CrashPoint::BeforeAppend(n)));
            }
            return Err(Error::Interrupted(format!(
                "simulated crash before append {n}"
            )));
        }
        let seq = self.journal.append(deployment, expected_seq, event)?;
        self.schedule.appends.set(n);
        self.schedule.last_seq.set(Some(seq));
        if self.schedule.take(CrashPoint::AfterAppend(n)) {
            self.schedule
                .crashed_after_seq
                .borrow_mut()
                .push((seq, CrashPoint::AfterAppend(n)));
            return Err(Error::Interrupted(format!(
                "simulated crash after append {n}"
            )));
        }
        Ok(seq)
    }

    fn load(&self, deployment: DeploymentId) -> Result<Vec<Event>, Error> {
        Ok(self.journal.load(deployment)?)
    }

    fn raw_from(&self, deployment: DeploymentId, from: u64) -> Result<Vec<Vec<u8>>, Error> {
        Ok(self.journal.raw_from(deployment, from)?)
    }

    fn check_fence(&self, service: &str, token: u64) -> Result<(), Error> {
        Ok(self.journal.check_fence(service, token)?)
    }

    fn alive(&self) -> Result<(), Error> {
        if self.schedule.is_dead() {
            return Err(Error::Interrupted(
                "simulated crash while the hosts' copies were written".to_string(),
            ));
        }
        Ok(())
    }
}
