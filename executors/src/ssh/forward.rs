//! Local ends of SSH tunnels: bollard and reqwest talk to a local socket, each connection
//! becomes an SSH channel to the remote socket or port.

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

/// A local unix socket (in `dir`, created 0700) forwarding to `remote_path` on the host.
pub async fn forward_unix(
    conn: Arc<Connection>,
    dir: &Path,
    remote_path: &str,
) -> Result<PathBuf, ExecError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ExecError::Permanent(format!("{}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
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

/// A local TCP port on 127.0.0.1 forwarding to `host:port` as seen from the server.
pub async fn forward_tcp(conn: Arc<Connection>, host: &str, port: u16) -> Result<u16, ExecError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| ExecError::Permanent(format!("local listener: {e}")))?;
    let local_port = listener
        .local_addr()
        .map_err(|e| ExecError::Permanent(e.to_string()))?
        .port();
    let host = host.to_string();
    tokio::spawn(async move {
        while let Ok((mut local_conn, _)) = listener.accept().await {
            let conn = conn.clone();
            let host = host.clone();
            tokio::spawn(async move {
                let Ok(session) = conn.session().await else {
                    return;
                };
                if let Ok(mut stream) = open_tcp(&session, &host, port).await {
                    let _ = tokio::io::copy_bidirectional(&mut local_conn, &mut stream).await;
                }
            });
        }
    });
    Ok(local_port)
}
