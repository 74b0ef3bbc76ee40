//! The real executors: a Docker engine (bollard) and the Caddy admin API (reqwest).

mod admin_relay;
pub mod caddy;
pub mod caddy_servers;
pub mod containers;
pub mod dependency;
pub mod engine;
mod executor;
mod host_ops;
pub mod interactive;
pub mod marker;
pub use executor::{local_socket, Access, DockerExecutor, HostHandle};
pub use host_ops::{LABEL_APP_PORT, LABEL_HEALTH_PATH};
pub mod logs;
pub mod maintenance;
mod oneoff;
pub mod probe;
pub mod prune;
mod push;
pub mod release;
mod route;
pub mod slots;
mod status;
pub use push::{PushOutcome, THIS_MACHINE};
pub use status::{ContainerStatus, HostStatus};
pub mod build;
pub mod spec;
mod tar;
