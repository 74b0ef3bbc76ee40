//! The simulated world and executor, with fault injection and crash points.
//!
//! Architecture invariant: the simulator runs the same step code as real deploys
//! (`crate::steps` over `SimHost`, the world's `HostOps`); only the host operations
//! differ. It is for property tests and `odysseus simulate`, never a stand-in for a
//! real-component test.

mod clock;
mod crash;
mod executor;
mod faults;
mod host_ops;
mod rng;
mod scenario;
mod world;

pub use clock::{SimClock, SIM_EPOCH_MS};
pub use crash::{CrashPoint, CrashSchedule, CrashingLog};
pub use executor::SimExecutor;
pub use faults::{Fault, FaultPlan, Injected};
pub use host_ops::SimHost;
pub use rng::Rng;
pub use scenario::{
    run, AfterCrash, Outcome, RoleSetup, Scenario, TargetReport, NEW_VERSION, OLD_VERSION,
};
pub use world::{AppShape, Container, ContainerState, Host, World};
