//! Looking at a container from the executor's side: is it healthy, and how many
//! connections does it still serve?

use std::time::Duration;

use odysseus_engine::runtime::ExecError;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::spec::ExpectStatus;

/// One HTTP/1.1 GET of `path` over an open stream (a local TCP connection or an SSH
/// channel opened on the server's side); the status code, if one came within 2 s.
pub async fn http_status<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    path: &str,
) -> Option<u16> {
    let exchange = async {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: odysseus\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = Vec::new();
        let mut buf = [0u8; 256];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        line.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

pub fn accepts(status: Option<u16>, expect: &ExpectStatus) -> bool {
    status.is_some_and(|s| expect.accepts(s))
}

/// Established TCP connections on `port` inside the network namespace of process
/// `pid`, from /proc/PID/net/tcp and tcp6. Caddy's own upstream list forgets a removed
/// upstream at once, so only the container's kernel can tell when draining is done.
pub fn established_connections(pid: i64, port: u16) -> Result<u32, ExecError> {
    let mut count = 0;
    let mut read_any = false;
    for table in ["tcp", "tcp6"] {
        let path = format!("/proc/{pid}/net/{table}");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        read_any = true;
        count += count_established(&text, port);
    }
    if read_any {
        Ok(count)
    } else {
        Err(ExecError::Retryable(format!(
            "cannot read /proc/{pid}/net/tcp"
        )))
    }
}

/// Counts rows whose local port is `port` and state is 01 (ESTABLISHED).
pub fn count_established(table: &str, port: u16) -> u32 {
    let wanted = format!("{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1).unwrap_or("");
            let state = fields.nth(1).unwrap_or("");
            local.rsplit(':').next() == Some(wanted.as_str()) && state == "01"
        })
        .count() as u32
}

/// (local address, local port, state) of every row of /proc/net/tcp{,6} text.
fn rows(table: &str) -> impl Iterator<Item = (&str, u16, &str)> {
    table.lines().filter_map(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1)?;
        let state = fields.nth(1)?;
        let (addr, port) = local.rsplit_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        Some((addr, port, state))
    })
}

/// 127.0.0.0/8 (stored little-endian: its last byte is 7F) or ::1.
fn loopback(addr: &str) -> bool {
    (addr.len() == 8 && addr.ends_with("7F")) || addr == "00000000000000000000000001000000"
}

/// The ports the namespace serves on: listening sockets (state 0A) not bound to
/// loopback only (Docker's embedded DNS listens on 127.0.0.11, say).
pub fn listening_ports(table: &str) -> Vec<u16> {
    let mut ports: Vec<u16> = rows(table)
        .filter(|(addr, _, state)| *state == "0A" && !loopback(addr))
        .map(|(_, port, _)| port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Established connections whose local port is one the namespace listens on: the
/// requests a container serves, whatever port it was deployed with (its own outgoing
/// connections, to a database say, do not count).
pub fn count_inbound(table: &str) -> u32 {
    let listening = listening_ports(table);
    rows(table)
        .filter(|(_, port, state)| *state == "01" && listening.contains(port))
        .count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_established_connections_on_the_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 020012C6:0BB8 030012C6:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 020012C6:0BB8 030012C6:9C42 06 00000000:00000000 00:00000000 00000000     0        0 0 3 0 0 0 0 0 0
   3: 020012C6:9C44 030012C6:0BB8 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1";
        assert_eq!(count_established(table, 3000), 1);
        assert_eq!(count_established(table, 80), 0);
        assert_eq!(listening_ports(table), vec![3000]);
        // Docker's embedded DNS on 127.0.0.11 is not a port the app serves on.
        let dns = format!("{table}\n   4: 0B00007F:9A0B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0 100 0 0 10 0");
        assert_eq!(listening_ports(&dns), vec![3000]);
        // Row 3 is an outgoing connection from an ephemeral port: not served.
        assert_eq!(count_inbound(table), 1);
    }
}
