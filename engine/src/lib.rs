//! odysseus's engine: the pure deployment state machine (`machine`), the sled event
//! journal it is recorded in (`journal`), and the async runtime that drives executors
//! (`runtime`).

#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod journal;
pub mod machine;
pub mod runtime;

pub use ids::{DeploymentId, Operator, Timestamp};
