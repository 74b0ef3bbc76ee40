//! The simulated world and executor, with fault injection and crash points.
//!
//! Architecture invariant: the simulator implements the same `Executor` contract as the
//! real executors (idempotent `execute`, `observe` from the world); it is for property
//! tests and `odysseus simulate`, never a stand-in for a real-component test.

mod crash;
mod executor;
mod faults;
mod rng;
mod scenario;
mod world;

pub use crash::{CrashPoint, CrashSchedule, CrashingLog};
pub use executor::{SimClock, SimExecutor, SIM_EPOCH_MS};
pub use faults::{Fault, FaultPlan, Injected};
pub use rng::Rng;
pub use scenario::{run, Outcome, RoleSetup, Scenario, TargetReport, NEW_VERSION, OLD_VERSION};
pub use world::{Container, ContainerState, Host, World};
