//! The multi-server test bed itself (testbed/servers.sh): three fake servers, each with
//! its own sshd and dockerd, and every fault verb producing the failure it promises.
//! Later tests (SSH, multi-host rolling deploys) stand on these facts.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BASE: &str = "/var/lib/odysseus-testbed";

fn servers(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testbed/servers.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "servers.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn addr(n: u8) -> SocketAddr {
    format!("198.51.100.{}:22", 10 + n).parse().unwrap()
}

/// Reads the SSH banner: proves sshd on the server answers.
fn ssh_banner(n: u8, timeout: Duration) -> Result<String, String> {
    let mut s =
        TcpStream::connect_timeout(&addr(n), timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).map_err(|e| format!("read: {e}"))?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn server_docker(n: u8, args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{BASE}/s{n}/run/docker.sock"))
        .args(args)
        .output()
        .unwrap()
}

fn ssh(n: u8, command: &str) -> std::process::Output {
    Command::new("ssh")
        .args([
            "-i",
            &format!("{BASE}/id_ed25519"),
            "-o",
            &format!("UserKnownHostsFile={BASE}/known_hosts"),
        ])
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
        ])
        .arg(format!("root@198.51.100.{}", 10 + n))
        .arg(command)
        .output()
        .unwrap()
}

#[test]
fn three_servers_answer_ssh_and_docker_and_every_fault_verb_does_what_it_says() {
    servers(&["up", "3"]);
    for n in 1..=3 {
        assert!(
            ssh_banner(n, Duration::from_secs(3))
                .unwrap()
                .starts_with("SSH-2.0"),
            "s{n} sshd"
        );
        let out = ssh(n, "hostname && docker info --format '{{.Name}}'");
        assert!(
            out.status.success(),
            "ssh s{n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .collect::<Vec<_>>(),
            vec![format!("s{n}"); 2]
        );
    }
    // Servers reach each other over the test LAN.
    let out = ssh(1, "exec 3<>/dev/tcp/198.51.100.13/22 && head -c 7 <&3");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "SSH-2.0");

    // freeze: TCP still connects (the kernel answers) but the banner never comes.
    servers(&["freeze", "s2"]);
    assert!(
        ssh_banner(2, Duration::from_secs(2)).is_err(),
        "a frozen server must not answer"
    );
    servers(&["thaw", "s2"]);
    assert!(
        ssh_banner(2, Duration::from_secs(5)).is_ok(),
        "thawed s2 answers again"
    );

    // cut: nothing gets through at all.
    servers(&["cut", "s3"]);
    assert!(
        ssh_banner(3, Duration::from_secs(2)).is_err(),
        "a cut server must not answer"
    );
    servers(&["uncut", "s3"]);
    let mut back = false;
    for _ in 0..20 {
        if ssh_banner(3, Duration::from_secs(2)).is_ok() {
            back = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(back, "s3 answers again after uncut");

    // kill: a power cut. Restarting brings back containers with a restart policy.
    let load = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker save odysseus-demo:v1 | docker -H unix://{BASE}/s1/run/docker.sock load -q"
        ))
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let _ = server_docker(1, &["rm", "-f", "survivor"]);
    let run = server_docker(
        1,
        &[
            "run",
            "-d",
            "--name",
            "survivor",
            "--restart",
            "unless-stopped",
            "odysseus-demo:v1",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    servers(&["kill", "s1"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        ssh_banner(1, Duration::from_secs(2)).is_err(),
        "a killed server is gone"
    );
    servers(&["start", "s1"]);
    let mut survived = false;
    for _ in 0..50 {
        let out = server_docker(
            1,
            &["ps", "--filter", "name=survivor", "--format", "{{.Status}}"],
        );
        if String::from_utf8_lossy(&out.stdout).starts_with("Up") {
            survived = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        survived,
        "the container with a restart policy came back after the power cut"
    );
    let _ = server_docker(1, &["rm", "-f", "survivor"]);

    // stop: a clean shutdown, then the same server starts again.
    servers(&["stop", "s2"]);
    assert!(servers(&["status"]).contains("s2 198.51.100.12 down"));
    servers(&["start", "s2"]);
    assert!(servers(&["status"]).contains("s2 198.51.100.12 up"));
    servers(&["down"]);
    assert!(!servers(&["status"]).contains(" up "));
}
