//! The real executors: a Docker engine (bollard) and the Caddy admin API (reqwest).

pub mod caddy;
pub mod engine;
mod executor;
pub use executor::{local_socket, Access, DockerExecutor, HostHandle};
pub mod probe;
mod oneoff;
mod push;
mod status;
pub use status::{ContainerStatus, HostStatus};
pub use push::PushOutcome;
pub mod spec;
mod tar;
