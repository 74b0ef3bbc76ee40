//! Issue 11, performed as the attacks themselves on real components: each test does what
//! the attacker does and checks that nothing happened.
//!
//! Caddy's admin API: from a container on the `odysseus` network (any app, or anything
//! that compromises one) and from a dependency container, every way to reach it — the
//! Caddy container's name, its address, every port it listens on, any Host header — must
//! fail, and deploys must still work. A Caddy set up by an older odysseus (admin on every
//! interface) is moved onto its loopback by the next deploy, keeping its routes.
//!
//! The lock directory on this machine (`local`), attacked by another user (`nobody`):
//! links planted where odysseus writes, a holder file opened while it was writable, the
//! directory made before root made it. The same attack on a server is in ssh_fleet.rs.

#[path = "support/lock_attack.rs"]
mod lock_attack;
#[path = "support/real.rs"]
mod real;

use std::process::Command;

use real::{assert_exit, docker, require_docker, serial, App};

/// The ports Caddy's container listens on, read from the host side (its network
/// namespace), so the attack tries every one, not just the documented ones.
fn caddy_listening_ports() -> Vec<u16> {
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", "odysseus-caddy"]);
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{}/net/{table}", pid.trim()))
            .unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.get(3) == Some(&"0A") {
                if let Some(port) = cols[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                {
                    if !ports.contains(&port) {
                        ports.push(port);
                    }
                }
            }
        }
    }
    ports.sort();
    ports
}

/// Runs the attack in a shell inside `how` (a `docker run …` or `docker exec …` prefix):
/// every target (name and address, every port, several Host headers), GET /config/.
/// (No `-T`: the test bed's static busybox wget crashes with it.)
/// Returns what came back from each try that answered.
fn attack(how: &[&str], ports: &[u16], canary_host: &str) -> Vec<String> {
    let ip = docker(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"odysseus\").IPAddress}}",
        "odysseus-caddy",
    ]);
    // The canary: the attacker's own app through Caddy, so a test that reaches nothing
    // at all cannot pass as a test that was refused.
    let mut script = format!(
        "echo \"=== canary\"; wget -q -O - --header 'Host: {canary_host}' http://odysseus-caddy:80/ 2>&1; echo;\n"
    );
    for target in ["odysseus-caddy", ip.trim()] {
        for port in ports.iter().chain([2019u16, 2020, 2999].iter()) {
            for host in [
                "127.0.0.1:2019",
                "localhost:2019",
                "[::1]:2019",
                &format!("{}:{port}", ip.trim()),
                "",
            ] {
                let header = if host.is_empty() {
                    String::new()
                } else {
                    format!("--header 'Host: {host}'")
                };
                script.push_str(&format!(
                    "echo \"=== {target}:{port} {host}\"; wget -q -O - {header} http://{target}:{port}/config/ 2>&1; echo;\n"
                ));
            }
        }
    }
    let out = Command::new(how[0])
        .args(&how[1..])
        .arg(&script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split("=== ")
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// What Caddy's config looks like: any answer holding it means the attack got in.
fn leaked(answers: &[String]) -> Vec<&String> {
    answers
        .iter()
        .filter(|a| {
            a.contains("odysseus-route-") || a.contains("\"admin\"") || a.contains("\"apps\"")
        })
        .collect()
}

fn attacker_container() -> Vec<&'static str> {
    vec![
        "docker",
        "run",
        "--rm",
        "--network",
        "odysseus",
        "--entrypoint",
        "/bin/sh",
        "odysseus-demo:v1",
        "-c",
    ]
}

#[test]
fn no_container_on_the_odysseus_network_reaches_caddys_admin_api_and_deploys_still_work() {
    let _serial = serial();
    require_docker();
    let app = App::new(
        "fortress",
        "odysseus-demo",
        "dependencies:
  cache:
    image: odysseus-demo:v1
    hosts: [local]
",
    );
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let _ = docker(&["rm", "-f", "fortress-cache"]);
    let booted = Command::new(real::odysseus_bin())
        .args(["dependency", "boot", "-c"])
        .arg(app.config())
        .output()
        .unwrap();
    assert_exit(&booted, 0, "dependency boot");
    let ports = caddy_listening_ports();
    assert!(ports.contains(&80), "Caddy listens on {ports:?}");
    // From a throwaway container on the network, and from inside the dependency.
    let from_app = attack(&attacker_container(), &ports, &app.host_header);
    let from_dependency = attack(
        &["docker", "exec", "fortress-cache", "/bin/sh", "-c"],
        &ports,
        &app.host_header,
    );
    let _ = docker(&["rm", "-f", "fortress-cache"]);
    for (who, answers) in [
        ("a container on the network", &from_app),
        ("a dependency", &from_dependency),
    ] {
        assert!(
            leaked(answers).is_empty(),
            "{who} read Caddy's config: {:?}",
            leaked(answers)
        );
        // The attacker did reach Caddy (its own app's route answers): the test is not
        // blind.
        assert!(
            answers
                .iter()
                .any(|a| a.starts_with("canary") && a.contains("v1")),
            "{who} never reached Caddy at all: {answers:?}"
        );
    }
    // And nothing changed: deploys still work, traffic flows.
    assert_exit(
        &app.deploy(&["--image", "v2"]),
        0,
        "deploy after the attack",
    );
    let (status, body) = app.get("/").unwrap();
    assert_eq!((status, body.trim()), (200, "v2"));
}

#[test]
fn a_caddy_whose_admin_api_an_older_odysseus_left_on_every_interface_is_closed_by_the_next_deploy()
{
    let _serial = serial();
    require_docker();
    let app = App::new("oldadmin", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    // What odysseus before 2026-12 set: the admin API on all of Caddy's interfaces.
    let (status, _) = real::caddy_admin(
        "POST",
        "/config/admin",
        r#"{"listen":"0.0.0.0:2019","origins":["127.0.0.1:2019","localhost:2019","[::1]:2019"]}"#,
    )
    .unwrap();
    assert_eq!(status, 200);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let ports = caddy_listening_ports();
    let before = attack(&attacker_container(), &ports, &app.host_header);
    assert!(
        !leaked(&before).is_empty(),
        "the attack must work against the old layout, or this test proves nothing: {before:?}"
    );
    assert_exit(
        &app.deploy(&["--image", "v2"]),
        0,
        "deploy by this odysseus",
    );
    let after = attack(
        &attacker_container(),
        &caddy_listening_ports(),
        &app.host_header,
    );
    assert!(
        leaked(&after).is_empty(),
        "still open: {:?}",
        leaked(&after)
    );
    // The routes survived the move, and the admin API answers odysseus.
    let (status, body) = app.get("/").unwrap();
    assert_eq!((status, body.trim()), (200, "v2"));
    let running = app.running();
    assert_eq!(app.upstreams(), vec![format!("{}:3000", running[0].0)]);
}

/// Issue 11 §5: an app that prints its secret and dies. Its last lines go into the failure
/// reason (journal, output, replay) with the value replaced by the secret's name; `-vv`
/// shows no secret value either; the state dir is private.
#[test]
fn a_secret_the_app_prints_stays_out_of_the_journal_the_output_and_verbose_logs() {
    let _serial = serial();
    require_docker();
    const SECRET: &str = "s3cr3t-leaky-value-42";
    let app = App::new("leaky", "odysseus-demo", "");
    let yaml = |cmd: &str| {
        format!(
            "service: leaky
image: odysseus-demo
servers:
  web:
    hosts: [local]
    cmd: {cmd}
    deploy:
      boot_timeout: 5
      drain_timeout: 5
      stop_timeout: 5
env:
  secret: [LEAKY_TOKEN]
proxy:
  app_port: 3000
  hosts: [leaky.test]
  ssl: false
  image: {}
  http_port: {}
  healthcheck:
    path: /health
    interval: 1
",
            real::CADDY_IMAGE,
            real::HTTP_PORT
        )
    };
    let run = |args: &[&str]| {
        app.deploy_cmd(args)
            .env("LEAKY_TOKEN", SECRET)
            .output()
            .unwrap()
    };
    // A healthy v1 first, its deploy at -vv (every request odysseus makes, env included).
    std::fs::write(app.config(), yaml("[\"/bin/serve\"]")).unwrap();
    let verbose = run(&["--image", "v1", "-vv"]);
    assert_exit(&verbose, 0, "deploy v1 at -vv");
    let all = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    assert!(all(&verbose).len() > 1000, "-vv said almost nothing");
    assert!(
        !all(&verbose).contains(SECRET),
        "-vv output holds the secret"
    );
    // The container really has it (the test is not blind).
    let running = app.running();
    let env = docker(&["inspect", "-f", "{{json .Config.Env}}", &running[0].0]);
    assert!(env.contains(SECRET));
    // v2 prints the secret and dies before it is healthy.
    std::fs::write(
        app.config(),
        yaml("[\"/bin/sh\", \"-c\", \"echo token=$LEAKY_TOKEN; echo \\\"oops $LEAKY_TOKEN\\\" >&2; exit 3\"]"),
    )
    .unwrap();
    let failed = run(&["--image", "v2"]);
    assert_exit(&failed, 1, "deploy of an app that dies printing its secret");
    let said = all(&failed);
    assert!(
        !said.contains(SECRET),
        "the output holds the secret: {said}"
    );
    assert!(
        said.contains("token=[secret LEAKY_TOKEN]"),
        "the last lines are not in the report: {said}"
    );
    for args in [
        vec!["replay", "-c"],
        vec!["replay", "--json", "-c"],
        vec!["history", "-c"],
    ] {
        let out = Command::new(real::odysseus_bin())
            .args(&args)
            .arg(app.config())
            .output()
            .unwrap();
        assert!(!all(&out).contains(SECRET), "{args:?} shows the secret");
    }
    let state = app.dir.join(".odysseus");
    real::assert_no_file_holds(&state, SECRET);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the state dir is {mode:o}");
}

/// As `nobody` on this machine: links planted in the lock directory an earlier odysseus
/// left open point the holder file at a root-only file and the lock and pid files at files
/// that do not exist yet. The next root deploy closes the directory, removes what was
/// planted, deploys, and writes nothing through the links; afterwards `nobody` can neither
/// look in, take the lock, read or forge the holder, nor plant anything. A directory
/// `nobody` made before any odysseus ran is refused with the command that fixes it, and
/// nothing changes.
#[test]
fn another_user_of_this_machine_can_neither_redirect_nor_hold_nor_forge_the_deploy_lock() {
    let _serial = serial();
    require_docker();
    let m = lock_attack::Machine::local();
    let app = App::new("lockatk", "odysseus-demo", "");
    let planted = lock_attack::plant_in_open_dir(&m, &app.service);
    // A read-only look (`status`) says what is wrong and moves nothing.
    let status = std::process::Command::new(real::odysseus_bin())
        .args(["status", "-c"])
        .arg(app.config())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        shown.contains("open to other users") && shown.contains("the next deploy moves it aside"),
        "{shown}{}",
        real::stderr(&status)
    );
    lock_attack::assert_still_planted(&m, &planted);
    // While the deploy holds the lock, the holder line (user, pid, state dir) is on no
    // command line another user can read.
    lock_attack::deploy_with_holder_hidden(&m, app.deploy_cmd(&["--image", "v1"]), "start-new ok");
    lock_attack::assert_nothing_happened(&m, &planted);
    lock_attack::assert_fresh_directory(&m, &planted);
    lock_attack::assert_closed_to_others(&m, &app.service);

    let planted = lock_attack::squat(&m, &app.service);
    let out = app.deploy(&["--image", "v2"]);
    let err = real::stderr(&out);
    assert!(
        !out.status.success(),
        "a deploy used a directory nobody made: {err}"
    );
    assert!(
        err.contains("belongs to uid 65534") && err.contains("rm -r /run/lock/odysseus"),
        "{err}"
    );
    lock_attack::assert_nothing_happened(&m, &planted);
    let (status, body) = app.get("/").unwrap();
    assert_eq!(
        (status, body.trim()),
        (200, "v1"),
        "the refused deploy changed something"
    );

    lock_attack::clear(&m);
    assert_exit(
        &app.deploy(&["--image", "v2"]),
        0,
        "deploy once the directory is gone",
    );
    lock_attack::assert_closed_to_others(&m, &app.service);
}
