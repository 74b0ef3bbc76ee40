//! The async runtime: folds the log, asks the machine what to do, writes the intent,
//! has an executor perform it, writes the outcome, and repeats.

mod clock;
mod driver;
mod executor;
mod planning;
mod session;

pub use clock::{Clock, SystemClock};
pub use driver::{EventLog, Runtime};
pub use executor::{ExecError, Executor, HookRunner, Survey};
pub use planning::{
    foreign_containers, plan_cleanup, plan_deployment, plan_maintenance, TargetSpec,
};
pub use session::{choose, hosts_serving_new, record_fact, Choice, Refusal, Request, Session};

use crate::{journal, machine};

/// Who must react: `Journal` the operator (disk, corruption, lost lock); `Machine` us
/// (the log and the code disagree); `Interrupted` the user, who resumes or aborts;
/// `Survey` the operator (a host did not answer before anything started).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Journal(#[from] journal::Error),
    #[error(transparent)]
    Machine(#[from] machine::Error),
    #[error("interrupted: {0}")]
    Interrupted(String),
    #[error("could not survey {role}@{host}: {error}")]
    Survey {
        role: String,
        host: String,
        error: ExecError,
    },
    #[error("deployment {0} cannot be resumed: it is {1}")]
    NotResumable(crate::DeploymentId, &'static str),
    /// What runs before the first step (a build's delivery) could not finish; the
    /// deployment stays resumable.
    #[error("{0}")]
    Preparing(String),
}
