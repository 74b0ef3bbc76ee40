//! Local ends of SSH tunnels: bollard talks to a local unix socket in a private
//! directory, each connection becomes an SSH channel to the remote socket; probes open
//! direct-tcpip channels themselves. No local TCP port is ever listened on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use odysseus_engine::runtime::ExecError;
use russh::client::Msg;
use russh::ChannelStream;

use super::connection::Connection;
use super::session::Session;

const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a direct-tcpip channel from the host to `host:port` (as seen from the server).
pub async fn open_tcp(
    session: &Session,
    host: &str,
    port: u16,
) -> Result<ChannelStream<Msg>, ExecError> {
    let channel = tokio::time::timeout(
        OPEN_TIMEOUT,
        session.channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0),
    )
    .await
    .map_err(|_| ExecError::OutcomeUnknown(format!("tunnel to {host}:{port}: no answer")))?
    .map_err(|e| ExecError::Retryable(format!("tunnel to {host}:{port}: {e}")))?;
    Ok(channel.into_stream())
}

/// A directory for the local ends of one host's tunnels that no other user can enter or
/// replace: created fresh (mkdir fails on any existing path, so a directory or link
/// another user planted is never used) with a random name, mode 0700, under
/// `$XDG_RUNTIME_DIR` when it is set, else the temp dir (sticky: no one else can rename
/// it away).
pub fn private_dir() -> Result<PathBuf, ExecError> {
    use std::io::Read;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    for _ in 0..10 {
        let mut random = [0u8; 12];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut random))
            .map_err(|e| ExecError::Permanent(format!("reading /dev/urandom: {e}")))?;
        let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dir = base.join(format!("odysseus-{name}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                let meta = std::fs::symlink_metadata(&dir)
                    .map_err(|e| ExecError::Permanent(format!("{}: {e}", dir.display())))?;
                if !meta.is_dir() || meta.permissions().mode() & 0o077 != 0 {
                    return Err(ExecError::Permanent(format!(
                        "{} is not a private directory after creating it",
                        dir.display()
                    )));
                }
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(ExecError::Permanent(format!(
                    "creating a private directory in {}: {e}",
                    base.display()
                )))
            }
        }
    }
    Err(ExecError::Permanent(format!(
        "no fresh private directory could be created in {}",
        base.display()
    )))
}

/// A local unix socket in `dir` (from `private_dir`) forwarding to `remote_path` on the
/// host.
pub async fn forward_unix(
    conn: Arc<Connection>,
    dir: &Path,
    remote_path: &str,
) -> Result<PathBuf, ExecError> {
    let local = dir.join("docker.sock");
    let _ = std::fs::remove_file(&local);
    let listener = tokio::net::UnixListener::bind(&local)
        .map_err(|e| ExecError::Permanent(format!("{}: {e}", local.display())))?;
    let remote = remote_path.to_string();
    tokio::spawn(async move {
        while let Ok((mut local_conn, _)) = listener.accept().await {
            let conn = conn.clone();
            let remote = remote.clone();
            tokio::spawn(async move {
                let Ok(session) = conn.session().await else {
                    return;
                };
                let opened = tokio::time::timeout(
                    OPEN_TIMEOUT,
                    session.channel_open_direct_streamlocal(remote),
                )
                .await;
                if let Ok(Ok(channel)) = opened {
                    let mut stream = channel.into_stream();
                    let _ = tokio::io::copy_bidirectional(&mut local_conn, &mut stream).await;
                }
            });
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn each_tunnel_directory_is_fresh_private_and_unguessable() {
        let a = super::private_dir().unwrap();
        let b = super::private_dir().unwrap();
        assert_ne!(a, b);
        for dir in [&a, &b] {
            let meta = std::fs::symlink_metadata(dir).unwrap();
            assert!(meta.is_dir());
            assert_eq!(meta.permissions().mode() & 0o777, 0o700);
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(name.len(), "odysseus-".len() + 24, "{name}");
        }
        std::fs::remove_dir(&a).unwrap();
        std::fs::remove_dir(&b).unwrap();
    }
}
