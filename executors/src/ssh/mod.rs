//! Remote hosts over SSH (russh, never a shelled-out `ssh`): one connection per host for
//! the whole deploy, host keys checked strictly against known_hosts, and the same Docker
//! and Caddy code as `local` through forwarded sockets.

mod connection;
mod forward;
pub mod known_hosts;
mod session;

pub use connection::Connection;
pub use forward::{forward_unix, open_tcp, private_dir};
pub use session::{
    connect, connect_reporting, exec, scan_host_key, HostKeyScan, Session, SshSettings, SshTarget,
};
