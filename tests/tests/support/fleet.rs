//! The test bed's fake servers for the fleet tests: bringing them up with the images the
//! tests deploy, their Docker engines, and an app deployed to all three (`FleetApp`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::real::{self, require_docker, Load};

pub const BASE: &str = "/var/lib/odysseus-testbed";
pub const HOSTS: [&str; 3] = ["198.51.100.11", "198.51.100.12", "198.51.100.13"];

pub fn servers_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testbed/servers.sh")
}

pub fn servers(args: &[&str]) {
    let script = servers_sh();
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
}

pub fn server_docker(n: usize, args: &[&str]) -> String {
    let out = Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{BASE}/s{n}/run/docker.sock"))
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Three servers up, with the images the tests deploy (there is no registry).
pub fn fleet_up() {
    require_docker();
    servers(&["up", "3"]);
    let local_id = |image: &str| {
        String::from_utf8_lossy(
            &Command::new("docker")
                .args(["image", "inspect", "-f", "{{.Id}}", image])
                .output()
                .unwrap()
                .stdout,
        )
        .trim()
        .to_string()
    };
    let images = [
        "odysseus-demo:v1",
        "odysseus-demo:v2",
        "odysseus-bad:latest",
        real::CADDY_IMAGE,
    ];
    for n in 1..=3 {
        // The server gets the test bed's images when it lacks them or has older builds.
        let stale: Vec<&str> = images
            .iter()
            .copied()
            .filter(|i| {
                server_docker(n, &["image", "inspect", "-f", "{{.Id}}", i]).trim() != local_id(i)
            })
            .collect();
        if !stale.is_empty() {
            let load = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "docker save {} | docker -H unix://{BASE}/s{n}/run/docker.sock load -q",
                    stale.join(" ")
                ))
                .output()
                .unwrap();
            assert!(
                load.status.success(),
                "{}",
                String::from_utf8_lossy(&load.stderr)
            );
        }
        // odysseus keeps an existing Caddy as it is: one of an older build of the image
        // would make these tests test that one.
        let caddy = server_docker(n, &["inspect", "-f", "{{.Image}}", "odysseus-caddy"]);
        if !caddy.trim().is_empty() && caddy.trim() != local_id(real::CADDY_IMAGE) {
            server_docker(n, &["rm", "-f", "odysseus-caddy"]);
            server_docker(
                n,
                &[
                    "volume",
                    "rm",
                    "-f",
                    "odysseus-caddy-config",
                    "odysseus-caddy-data",
                ],
            );
        }
    }
}

pub struct FleetApp {
    pub service: String,
    pub dir: PathBuf,
}

impl FleetApp {
    pub fn new(service: &str, extra: &str) -> FleetApp {
        let dir =
            std::env::temp_dir().join(format!("odysseus-fleet-{service}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let app = FleetApp {
            service: service.into(),
            dir,
        };
        app.remove_containers();
        app.write(&format!("{BASE}/known_hosts"), extra);
        app
    }

    pub fn write(&self, known_hosts: &str, extra: &str) {
        self.write_for(&HOSTS, known_hosts, extra)
    }

    pub fn write_for(&self, hosts: &[&str], known_hosts: &str, extra: &str) {
        let yaml = format!(
            "service: {s}
image: odysseus-demo
servers:
  web:
    hosts: [{hosts}]
    deploy:
      boot_timeout: 10
      drain_timeout: 5
      stop_timeout: 5
proxy:
  app_port: 3000
  hosts: [{s}.test]
  ssl: false
  http_port: 80
  image: odysseus-testbed/caddy:2.11.7
  healthcheck:
    path: /health
    interval: 1
ssh:
  keys: [{BASE}/id_ed25519]
  known_hosts: {known_hosts}
{extra}",
            s = self.service,
            hosts = hosts.join(", ")
        );
        std::fs::write(self.dir.join("deploy.yml"), yaml).unwrap();
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(real::odysseus_bin());
        cmd.arg("deploy")
            .arg("-c")
            .arg(self.dir.join("deploy.yml"))
            .args(args);
        cmd
    }

    pub fn deploy(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn host_header(&self) -> String {
        format!("{}.test", self.service)
    }

    /// What each server answers for the service.
    pub fn versions(&self) -> Vec<String> {
        HOSTS
            .iter()
            .map(|h| {
                real::http_get_raw(&format!("{h}:80"), "/", &self.host_header())
                    .map(|(_, b)| b.trim().to_string())
                    .unwrap_or_else(|e| e)
            })
            .collect()
    }

    pub fn running_versions(&self, n: usize) -> Vec<String> {
        let out = server_docker(
            n,
            &[
                "ps",
                "--filter",
                &format!("label=odysseus.service={}", self.service),
                "--format",
                "{{.Label \"odysseus.version\"}}",
            ],
        );
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    }

    pub fn load(&self) -> Vec<Load> {
        HOSTS
            .iter()
            .map(|h| {
                Load::start_at(
                    &format!("{h}:80"),
                    &self.host_header(),
                    2,
                    20_000,
                    Duration::from_secs(120),
                )
            })
            .collect()
    }

    pub fn remove_containers(&self) {
        for n in 1..=3 {
            // The service's copies of the journal on the server, from earlier runs.
            let _ = std::fs::remove_dir_all(format!(
                "{BASE}/s{n}/var-lib-odysseus/journal/{}",
                self.service
            ));
            server_docker(
                n,
                &[
                    "volume",
                    "rm",
                    "-f",
                    &format!("odysseus-deployment-{}", self.service),
                ],
            );
            // The service's containers and its one-offs (one left by a failed run would
            // confuse the next).
            let mut ids = String::new();
            for label in ["odysseus.service", "odysseus.oneoff"] {
                ids.push_str(&server_docker(
                    n,
                    &[
                        "ps",
                        "-aq",
                        "--filter",
                        &format!("label={label}={}", self.service),
                    ],
                ));
            }
            let ids: Vec<&str> = ids.lines().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                server_docker(n, &args);
            }
            // Its maintenance page, left on the server's Caddy by a run that stopped
            // half-way (the next run would find the service in maintenance).
            server_docker(
                n,
                &[
                    "exec",
                    "odysseus-caddy",
                    "rm",
                    "-rf",
                    &format!("/config/odysseus/maintenance/{}", self.service),
                ],
            );
        }
    }
}

impl Drop for FleetApp {
    fn drop(&mut self) {
        self.remove_containers();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn assert_no_failures(loads: Vec<Load>, what: &str) {
    for (i, load) in loads.into_iter().enumerate() {
        let r = load.finish();
        assert_eq!(
            r.failures(),
            0,
            "{what}: host {} non-2xx {:?} errors {:?}",
            i + 1,
            r.non_2xx,
            &r.errors[..r.errors.len().min(3)]
        );
        assert!(
            r.ok > 10,
            "{what}: host {} served only {} requests",
            i + 1,
            r.ok
        );
    }
}
