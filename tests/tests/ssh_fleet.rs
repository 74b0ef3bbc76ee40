//! Multi-host deploys over SSH on the test bed's fake servers (own sshd, own dockerd,
//! own Caddy each): rolling under load, strict host keys, a host killed mid-deploy, and
//! fleet rollback. The servers are reached only at 198.51.100.0/24, the test LAN.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/lock_attack.rs"]
mod lock_attack;
#[path = "support/real.rs"]
mod real;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fleet::*;
use real::{assert_exit, git, serial, stderr, Load};

#[test]
fn a_three_host_rolling_deploy_under_load_fails_no_request() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("roll", "");
    assert_exit(
        &app.deploy(&["--image", "v1"]),
        0,
        "first deploy on 3 hosts",
    );
    assert_eq!(app.versions(), vec!["v1"; 3]);
    let loads = app.load();
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 0, "rolling deploy of v2");
    assert_no_failures(loads, "rolling deploy");
    assert_eq!(app.versions(), vec!["v2"; 3]);
    // One host at a time: each host is done before the next one starts.
    let err = stderr(&out);
    for pair in HOSTS.windows(2) {
        let done = err.find(&format!("[web@{}] done", pair[0])).unwrap();
        let next = err.find(&format!("[web@{}] start-new", pair[1])).unwrap();
        assert!(done < next, "{err}");
    }
    for n in 1..=3 {
        assert_eq!(app.running_versions(n), vec!["v2"], "server s{n}");
    }
}

#[test]
fn unknown_and_changed_host_keys_are_refused_before_any_side_effect() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("hostkeys", "");
    let empty = app.dir.join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    app.write(&empty.to_string_lossy(), "");
    let out = app.deploy(&["--image", "v1"]);
    assert_exit(&out, 3, "unknown host key");
    let err = stderr(&out);
    assert!(
        err.contains("unknown") && err.contains("SHA256:") && err.contains("empty_known_hosts"),
        "{err}"
    );
    assert!(err.contains("Nothing was changed"), "{err}");

    // s2's key recorded under s1's address: a changed key.
    let real_hosts = std::fs::read_to_string(format!("{BASE}/known_hosts")).unwrap();
    let s2_key = real_hosts
        .lines()
        .find(|l| l.starts_with("198.51.100.12 "))
        .unwrap()
        .split_once(' ')
        .unwrap()
        .1
        .to_string();
    let wrong = app.dir.join("wrong_known_hosts");
    std::fs::write(&wrong, format!("198.51.100.11 {s2_key}\n")).unwrap();
    app.write(&wrong.to_string_lossy(), "");
    let out = app.deploy(&["--image", "v1"]);
    assert_exit(&out, 3, "changed host key");
    assert!(stderr(&out).contains("CHANGED"), "{}", stderr(&out));
    for n in 1..=3 {
        assert!(
            app.running_versions(n).is_empty(),
            "s{n} got a container despite the refusal"
        );
    }
}

#[test]
fn a_host_killed_mid_deploy_stops_the_rollout_and_resume_converges_after_it_returns() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("powercut", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let mut child = app
        .cmd(&["--image", "v2"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("[web@198.51.100.12] start-new ok") {
            servers(&["kill", "s2"]);
            break;
        }
    }
    let loads: Vec<Load> = [HOSTS[0], HOSTS[2]]
        .iter()
        .map(|h| {
            Load::start_at(
                &format!("{h}:80"),
                &app.host_header(),
                2,
                10_000,
                Duration::from_secs(120),
            )
        })
        .collect();
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "the deploy fails when a host dies: {seen:#?}"
    );
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(
        stdout.contains("198.51.100.12") && stdout.contains("--resume"),
        "{stdout}"
    );
    // Host 3 was never touched; host 1 finished before host 2 started.
    let versions = app.versions();
    assert_eq!(
        (versions[0].as_str(), versions[2].as_str()),
        ("v2", "v1"),
        "{versions:?}"
    );

    servers(&["start", "s2"]);
    let out = app.deploy(&["--resume"]);
    assert_exit(&out, 0, "--resume after the host came back");
    assert_no_failures(
        loads,
        "hosts 1 and 3 while host 2 was down and during the resume",
    );
    assert_eq!(app.versions(), vec!["v2"; 3]);
    for n in 1..=3 {
        assert_eq!(app.running_versions(n), vec!["v2"], "server s{n}");
    }
}

#[test]
fn on_failure_rollback_with_a_bad_image_on_host_2_returns_every_host_to_v1() {
    let _serial = serial();
    fleet_up();
    // v9 is a good image on hosts 1 and 3 and the never-healthy one on host 2.
    for n in 1..=3 {
        let source = if n == 2 {
            "odysseus-bad:latest"
        } else {
            "odysseus-demo:v2"
        };
        server_docker(n, &["tag", source, "odysseus-demo:v9"]);
    }
    let app = FleetApp::new("fleetback", "on_failure: rollback\n");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let loads = app.load();
    let out = app.deploy(&["--image", "v9"]);
    assert_exit(&out, 1, "a deploy whose host 2 never becomes healthy");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rolled back everywhere"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_no_failures(loads, "fleet rollback");
    assert_eq!(app.versions(), vec!["v1"; 3]);
    for n in 1..=3 {
        assert_eq!(app.running_versions(n), vec!["v1"], "server s{n}");
        server_docker(n, &["rmi", "odysseus-demo:v9"]);
    }
}

#[test]
fn the_lock_lives_on_the_servers_so_a_second_operator_is_refused_until_the_holder_dies() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("sshlock", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let slow = real::slow_request("198.51.100.11:80".into(), app.host_header(), 4);
    let (mut first, lines) = real::spawn_until(
        app.cmd(&["--image", "v2"]),
        "[web@198.51.100.11] remove-old-upstream ok",
    );
    let other = app.dir.join("other-operator");
    let second = app
        .cmd(&["--image", "v2", "--state-dir"])
        .arg(&other)
        .output()
        .unwrap();
    assert_exit(&second, 3, "a second operator");
    let err = stderr(&second);
    assert!(
        err.contains("is being deployed on 198.51.100.1")
            && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    // SIGKILL the holder: its SSH connection drops and sshd ends the lock with it.
    let _ = first.kill();
    let _ = first.wait();
    drop(lines);
    let _ = slow.join();
    let mut taken = None;
    for _ in 0..20 {
        let out = app.cmd(&["--resume"]).output().unwrap();
        if out.status.code() != Some(3) {
            taken = Some(out);
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = taken.expect("the lock was still held 10 s after its holder died");
    assert_exit(&out, 0, "resume after the holder was killed");
    assert_eq!(app.versions(), vec!["v2"; 3]);
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// The host-level fence. A deployer's connections to hosts 2 and 3 drop (their locks go
/// with them) while it is paused; a second operator deploys host 3 in the gap. Resumed,
/// the first deployer takes host 2's lock again (nobody had it) and goes on, but refuses
/// to touch host 3, whose lock someone else held meanwhile: it halts and says why.
#[test]
fn a_deployer_whose_connection_dropped_retakes_its_lock_and_never_acts_where_another_locked_meanwhile(
) {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("sshfence", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let (mut first, lines) = real::spawn_until(
        app.cmd(&["--image", "v2"]),
        "[web@198.51.100.11] add-upstream ok",
    );
    signal(first.id(), "-STOP");
    servers(&["drop-ssh", "s2"]);
    servers(&["drop-ssh", "s3"]);
    // Host 3's copies of the journal are gone (a replaced disk, an operator's cleanup):
    // the second operator cannot learn the first's deployment there, so it locks host 3.
    std::fs::remove_dir_all(format!("{BASE}/s3/var-lib-odysseus/journal/sshfence")).unwrap();
    // The second operator: its own state dir, only host 3.
    let other = app.dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let yaml = std::fs::read_to_string(app.dir.join("deploy.yml"))
        .unwrap()
        .replace(&HOSTS.join(", "), HOSTS[2]);
    std::fs::write(other.join("deploy.yml"), yaml).unwrap();
    let second = Command::new(real::odysseus_bin())
        .args(["deploy", "--image", "v2", "-c"])
        .arg(other.join("deploy.yml"))
        .output()
        .unwrap();
    // It takes host 3's lock (the first's connection there is gone), then finds host 3
    // marked by the first's unfinished deployment: refused, nothing changed.
    assert_exit(&second, 3, "the second operator, on host 3 only");
    assert!(
        stderr(&second).contains("in the middle of deployment"),
        "{}",
        stderr(&second)
    );
    signal(first.id(), "-CONT");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = first.wait().unwrap();
    let all = rest.join("\n");
    assert_eq!(status.code(), Some(1), "{all}");
    assert!(
        all.contains("lost the deploy lock of sshfence on 198.51.100.13")
            && all.contains("took it while this deploy's connection was down"),
        "{all}"
    );
    assert!(
        all.contains("[web@198.51.100.12] stop-old ok"),
        "host 2's lock was taken again and its deploy finished: {all}"
    );
    assert!(
        !all.contains("[web@198.51.100.13] start-new ok"),
        "the first deployer acted on host 3: {all}"
    );
    // Host 3 was touched by neither: the first lost its lock there, the second was
    // refused by the mark.
    let versions = app.versions();
    assert_eq!(
        (
            versions[0].as_str(),
            versions[1].as_str(),
            versions[2].as_str()
        ),
        ("v2", "v2", "v1"),
        "{versions:?}"
    );
    assert_eq!(app.running_versions(3), vec!["v1"]);
}

/// `odysseus lock release` breaks a live holder's lock: the holder sees it before its
/// next side effect and stops acting, instead of deploying beside whoever locks next.
#[test]
fn a_deployer_whose_lock_was_released_stops_before_its_next_side_effect() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("sshbroken", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    // Long enough that the drain is still waiting for it when the release lands (the
    // release connects to three servers first).
    let slow = real::slow_request("198.51.100.11:80".into(), app.host_header(), 10);
    let (mut first, lines) = real::spawn_until(
        app.cmd(&["--image", "v2"]),
        "[web@198.51.100.11] remove-old-upstream ok",
    );
    let released = Command::new(real::odysseus_bin())
        .args(["lock", "release", "--state-dir"])
        .arg(app.dir.join("elsewhere"))
        .arg("-c")
        .arg(app.dir.join("deploy.yml"))
        .output()
        .unwrap();
    assert_exit(&released, 0, "lock release from another state dir");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = first.wait().unwrap();
    let _ = slow.join();
    let all = rest.join("\n");
    assert_eq!(status.code(), Some(1), "{all}");
    assert!(
        all.contains("lost the deploy lock of sshbroken on 198.51.100.11: it was released"),
        "{all}"
    );
    assert!(
        !all.contains("[web@198.51.100.11] stop-old ok") && !all.contains("[web@198.51.100.12]"),
        "the deployer went on after its lock was released: {all}"
    );
    // Whatever was half done, host 1 still answers.
    assert!(
        ["v1", "v2"].contains(&app.versions()[0].as_str()),
        "{:?}",
        app.versions()
    );
}

/// `--hosts` and `--roles` narrow a deploy: only the named host moves, and a name the
/// config does not have is a usage error that lists the ones it has.
#[test]
fn deploy_hosts_moves_only_the_named_host() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("sshsubset", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let out = app.deploy(&["--image", "v2", "--hosts", "198.51.100.12"]);
    assert_exit(&out, 0, "deploy --hosts 198.51.100.12");
    assert_eq!(app.versions(), ["v1", "v2", "v1"]);
    let wrong = app.deploy(&["--image", "v2", "--hosts", "198.51.100.99"]);
    assert_exit(&wrong, 2, "an unknown host");
    assert!(
        stderr(&wrong).contains("198.51.100.99 is not a host of the config (hosts: 198.51.100.11, 198.51.100.12, 198.51.100.13)"),
        "{}",
        stderr(&wrong)
    );
    let out = app.deploy(&["--image", "v2", "--roles", "web"]);
    assert_exit(&out, 0, "the rest, by role");
    assert_eq!(app.versions(), ["v2"; 3]);
}

/// The journal is the truth of an unfinished deployment: after deploy.yml drops a host,
/// `--resume` still finishes the plan it recorded, on every host it names.
#[test]
fn resume_follows_the_recorded_plan_even_when_deploy_yml_changed() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("sshplan", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let (mut child, lines) = real::spawn_until(
        app.cmd(&["--image", "v2"]),
        "[web@198.51.100.11] add-upstream ok",
    );
    let _ = child.kill();
    let _ = child.wait();
    drop(lines);
    let yaml = std::fs::read_to_string(app.dir.join("deploy.yml"))
        .unwrap()
        .replace(&HOSTS.join(", "), &HOSTS[..2].join(", "));
    std::fs::write(app.dir.join("deploy.yml"), yaml).unwrap();
    let out = app.deploy(&["--resume"]);
    assert_exit(&out, 0, "--resume with a host dropped from deploy.yml");
    assert_eq!(app.versions(), vec!["v2"; 3]);
}

/// The pull path, with the test bed's registry on the LAN: servers that lack the image
/// pull it before anything changes; a tag the registry does not have stops the deploy
/// up front, and the old version keeps serving.
#[test]
fn an_image_missing_on_the_servers_is_pulled_from_the_registry() {
    let _serial = serial();
    fleet_up();
    let registry = "198.51.100.1:5000";
    let repo = format!("{registry}/odysseus-demo");
    for v in ["v1", "v3"] {
        let tagged = format!("{repo}:{v}");
        real::docker(&["tag", &format!("odysseus-demo:{v}"), &tagged]);
        let push = Command::new("docker")
            .args(["push", "-q", &tagged])
            .output()
            .unwrap();
        assert!(
            push.status.success(),
            "docker push {tagged}: {}",
            String::from_utf8_lossy(&push.stderr)
        );
        for n in 1..=3 {
            server_docker(n, &["rmi", "-f", &tagged]);
        }
    }
    let app = FleetApp::new("sshpull", "");
    let yaml = std::fs::read_to_string(app.dir.join("deploy.yml"))
        .unwrap()
        .replace("image: odysseus-demo\n", &format!("image: {repo}\n"));
    std::fs::write(app.dir.join("deploy.yml"), yaml).unwrap();
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy, pulled");
    assert_eq!(app.versions(), vec!["v1"; 3]);
    let out = app.deploy(&["--image", "v3"]);
    assert_exit(&out, 0, "deploy v3, pulled");
    assert_eq!(app.versions(), vec!["v3"; 3]);
    for n in 1..=3 {
        assert!(
            !server_docker(n, &["images", "-q", &format!("{repo}:v3")])
                .trim()
                .is_empty(),
            "s{n} pulled {repo}:v3"
        );
    }
    // A tag the registry lacks: every host is asked for it before anything changes.
    let missing = app.deploy(&["--image", "v404"]);
    assert_exit(&missing, 3, "a tag the registry does not have");
    assert!(
        stderr(&missing).contains("could not be pulled")
            && stderr(&missing).contains("Nothing was changed"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(app.versions(), vec!["v3"; 3]);
    for v in ["v1", "v3"] {
        real::docker(&["rmi", &format!("{repo}:{v}")]);
    }
}

/// `registry.username/password` (the password named as a secret, Kamal's form): the
/// servers pull from the test bed's password-protected registry; without the login the
/// pull is refused and the old version keeps serving.
#[test]
fn a_private_registry_is_pulled_from_with_the_configured_login() {
    let _serial = serial();
    fleet_up();
    let registry = "198.51.100.1:5001";
    let password = std::fs::read_to_string(format!("{BASE}/registry-password"))
        .expect("the test bed writes the registry's password")
        .trim()
        .to_string();
    // Put the images there, logged in on this machine's engine just for the push.
    let login = Command::new("docker")
        .args(["login", "-u", "odysseus", "--password-stdin", registry])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(password.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let repo = format!("{registry}/odysseus-demo");
    for v in ["v1", "v2"] {
        let tagged = format!("{repo}:{v}");
        real::docker(&["tag", &format!("odysseus-demo:{v}"), &tagged]);
        let push = Command::new("docker")
            .args(["push", "-q", &tagged])
            .output()
            .unwrap();
        assert!(
            push.status.success(),
            "{}",
            String::from_utf8_lossy(&push.stderr)
        );
        real::docker(&["rmi", &tagged]);
        for n in 1..=3 {
            server_docker(n, &["rmi", "-f", &tagged]);
        }
    }
    real::docker(&["logout", registry]);
    let app = FleetApp::new("sshprivate", "");
    let base = std::fs::read_to_string(app.dir.join("deploy.yml"))
        .unwrap()
        .replace("image: odysseus-demo\n", &format!("image: {repo}\n"));
    let with_login = format!(
        "{base}registry:\n  server: {registry}\n  username: odysseus\n  password: [ODY_TEST_REGISTRY_PASSWORD]\n"
    );
    std::fs::write(app.dir.join("deploy.yml"), &with_login).unwrap();
    let deploy = |tag: &str| {
        app.cmd(&["--image", tag])
            .env("ODY_TEST_REGISTRY_PASSWORD", &password)
            .output()
            .unwrap()
    };
    let out = deploy("v1");
    assert_exit(&out, 0, "first deploy, pulled with the login");
    assert_eq!(app.versions(), vec!["v1"; 3]);
    assert!(
        !stderr(&out).contains(&password),
        "the password is never printed"
    );
    // Without the login the registry refuses the pull: nothing moves.
    std::fs::write(app.dir.join("deploy.yml"), &base).unwrap();
    let refused = deploy("v2");
    assert_exit(&refused, 3, "a pull without the login");
    assert!(
        stderr(&refused).contains("could not be pulled")
            && stderr(&refused).contains("Nothing was changed"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(app.versions(), vec!["v1"; 3]);
    // With it again, v2 goes through.
    std::fs::write(app.dir.join("deploy.yml"), &with_login).unwrap();
    let out = deploy("v2");
    assert_exit(&out, 0, "v2 with the login");
    assert_eq!(app.versions(), vec!["v2"; 3]);
    // The journal holds no trace of the password.
    real::assert_no_file_holds(&app.dir.join(".odysseus"), &password);
}

/// A real sshd may keep a dead client's session — and our fence loop with the lock — for
/// hours. Renewing then finds the lock held under our own name: that holder is ours, so it
/// is stopped and the lock taken again, instead of the host being given up as "held by"
/// ourselves. (The stale loop is stood in for by a process that holds the lock with our
/// holder line, started on the server over plain ssh.)
#[test]
fn a_renewal_stops_our_own_stale_lock_holder_instead_of_giving_up() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("sshstale", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let (mut first, lines) = real::spawn_until(
        app.cmd(&["--image", "v2"]),
        "[web@198.51.100.11] add-upstream ok",
    );
    signal(first.id(), "-STOP");
    servers(&["drop-ssh", "s3"]);
    // Our holder line is still in the holder file on s3; hold the lock under it.
    // Like the fence loop, the stand-in carries the holder line in its environment (the
    // renewal checks that before it signals anything). /tmp is shared with the servers.
    let holder = std::fs::read_to_string(format!("{BASE}/s3/run/lock/odysseus/sshstale.holder"))
        .unwrap()
        .trim()
        .to_string();
    let script = app.dir.join("stale.sh");
    std::fs::write(
        &script,
        "#!/bin/bash\necho $$ > /run/lock/odysseus/sshstale.pid\nexec env ODYSSEUS_HOLDER=\"$1\" sleep 300\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let stale = format!(
        "flock /run/lock/odysseus/sshstale.lock {} '{holder}'",
        script.display()
    );
    let started = Command::new("ssh")
        .args([
            "-i",
            &format!("{BASE}/id_ed25519"),
            "-o",
            &format!("UserKnownHostsFile={BASE}/known_hosts"),
            "-o",
            "BatchMode=yes",
            &format!("root@{}", HOSTS[2]),
            &format!("nohup {stale} >/dev/null 2>&1 &"),
        ])
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    signal(first.id(), "-CONT");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", rest.join("\n"));
    assert_eq!(app.versions(), vec!["v2"; 3]);
}

/// `ssh.user` other than root, as many teams run it: a user in the docker group, after
/// root deployed the same service, and root after it; then, on servers where nobody ever
/// locked, the deploy user first (making the lock directory) and root after. The deploy
/// (Docker socket, Caddy, probes, drain counts, the lock files another made) works without
/// root on the servers, and the lock directory stays the docker group's.
#[test]
fn a_non_root_deploy_user_in_the_docker_group_deploys_the_fleet() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("sshuser", "");
    let root_yaml = std::fs::read_to_string(app.dir.join("deploy.yml")).unwrap();
    let user_yaml = root_yaml.replace("ssh:\n", "ssh:\n  user: odydeploy\n");
    let as_user = |user: bool| {
        std::fs::write(
            app.dir.join("deploy.yml"),
            if user { &user_yaml } else { &root_yaml },
        )
        .unwrap();
    };
    let machines: Vec<lock_attack::Machine> = (1..=3)
        .map(|n| lock_attack::Machine::server(&servers_sh(), &format!("s{n}")))
        .collect();
    // Root deploys first, so the lock files on the servers are root's; then the deploy
    // user must still be able to lock, write the holder, and deploy.
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy as root");
    as_user(true);
    let slow = real::slow_request("198.51.100.12:80".into(), app.host_header(), 2);
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 0, "second deploy as odydeploy, after root");
    assert_eq!(
        slow.join().unwrap().unwrap().0,
        200,
        "the drain waited for the request"
    );
    assert_eq!(app.versions(), vec!["v2"; 3]);
    assert_exit(
        &app.deploy(&["--image", "v1"]),
        0,
        "third deploy as odydeploy",
    );
    assert_eq!(app.versions(), vec!["v1"; 3]);
    as_user(false);
    assert_exit(&app.deploy(&["--image", "v2"]), 0, "root after odydeploy");
    // Nobody ever locked on these servers: the deploy user makes the directory.
    for m in &machines {
        lock_attack::clear(m);
    }
    as_user(true);
    assert_exit(
        &app.deploy(&["--image", "v1"]),
        0,
        "odydeploy first on clean servers",
    );
    as_user(false);
    assert_exit(
        &app.deploy(&["--image", "v2"]),
        0,
        "root after odydeploy made the directory",
    );
    assert_eq!(app.versions(), vec!["v2"; 3]);
    for m in &machines {
        lock_attack::assert_closed_to_others(m, &app.service);
    }
}

/// Issue 11 §1 on a server, as `nobody` there: links planted in the lock directory an
/// earlier odysseus left open (holder → a root-only file; lock and pid → files that do not
/// exist yet) write nothing through them; the deploy closes the directory and `nobody` can
/// then neither look in, hold the lock, nor read or forge the holder. A directory `nobody`
/// made first is refused on that server before any host changes.
#[test]
fn another_user_of_a_server_can_neither_redirect_nor_hold_nor_forge_its_deploy_lock() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("sshlockatk", "");
    let s2 = lock_attack::Machine::server(&servers_sh(), "s2");
    let planted = lock_attack::plant_in_open_dir(&s2, &app.service);
    lock_attack::deploy_with_holder_hidden(
        &s2,
        app.cmd(&["--image", "v1"]),
        "[web@198.51.100.12] start-new",
    );
    lock_attack::assert_nothing_happened(&s2, &planted);
    lock_attack::assert_fresh_directory(&s2, &planted);
    lock_attack::assert_closed_to_others(&s2, &app.service);

    let planted = lock_attack::squat(&s2, &app.service);
    let out = app.deploy(&["--image", "v2"]);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "a deploy used a directory nobody made: {err}"
    );
    assert!(
        err.contains("198.51.100.12")
            && err.contains("belongs to uid 65534")
            && err.contains("rm -r /run/lock/odysseus"),
        "{err}"
    );
    lock_attack::assert_nothing_happened(&s2, &planted);
    assert_eq!(
        app.versions(),
        vec!["v1"; 3],
        "the refused deploy changed a host"
    );
    // `status` still shows the host (it answers), with why its lock is not looked at.
    let status = Command::new(real::odysseus_bin())
        .arg("status")
        .arg("-c")
        .arg(app.dir.join("deploy.yml"))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        !shown.contains("UNREACHABLE")
            && shown.contains("deploy lock: ")
            && shown.contains("belongs to uid 65534"),
        "{shown}{}",
        stderr(&status)
    );
    lock_attack::clear(&s2);
    assert_exit(
        &app.deploy(&["--image", "v2"]),
        0,
        "deploy once the directory is gone",
    );
    assert_eq!(app.versions(), vec!["v2"; 3]);
}

/// `dependencies` (a cache here, the "other" image): `dependency boot` creates it on its
/// host with its ports, env and secret, waits for its health check; booting again keeps
/// it; the app reaches it by name on the `odysseus` network; `logs`, `exec`, `shell` reach
/// the running container; `restart` keeps the container, `upgrade` replaces it with
/// deploy.yml's image only when confirmed, keeping its named volume; `remove` takes it away.
#[test]
fn a_dependency_is_booted_reached_by_the_app_and_removed() {
    let _serial = serial();
    fleet_up();
    let load = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker save odysseus-other:1 odysseus-other:2 | docker -H unix://{BASE}/s2/run/docker.sock load -q"
        ))
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let app = FleetApp::new(
        "sshdeps",
        "dependencies:
  cache:
    image: odysseus-other:1
    hosts: [198.51.100.12]
    ports: [\"9090:8080\"]
    volumes: [\"sshdeps-data:/data\"]
    env:
      clear: { PORT: 8080 }
      secret: [GREETING]
    healthcheck:
      cmd: wget -q -O /dev/null http://127.0.0.1:8080/
      interval: 1
",
    );
    let run = |args: &[&str]| {
        Command::new(real::odysseus_bin())
            .args(args)
            .arg("-c")
            .arg(app.dir.join("deploy.yml"))
            .env("GREETING", "hello from a dependency")
            .output()
            .unwrap()
    };
    let _ = server_docker(2, &["rm", "-f", "sshdeps-cache"]);
    let _ = server_docker(2, &["volume", "rm", "-f", "sshdeps-data"]);
    let booted = run(&["dependency", "boot"]);
    assert_exit(&booted, 0, "dependency boot");
    assert!(
        stderr(&booted).contains("[198.51.100.12] cache: created, healthy"),
        "{}",
        stderr(&booted)
    );
    let (status, body) = real::http_get_raw("198.51.100.12:9090", "/cgi-bin/greet", "any").unwrap();
    assert!(
        status == 200 && body.contains("hello from a dependency"),
        "{status} {body}"
    );
    let again = run(&["dependency", "boot", "cache"]);
    assert_exit(&again, 0, "dependency boot again");
    assert!(
        stderr(&again).contains("cache: already running"),
        "{}",
        stderr(&again)
    );
    let shown = run(&["dependency", "status"]);
    assert_exit(&shown, 0, "dependency status");
    let text = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(
        text.contains("cache") && text.contains("running") && text.contains("healthy"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["dependency", "status", "--json"]).stdout).unwrap();
    assert_eq!(json[0]["state"], "running");
    assert_eq!(json[0]["health"], "healthy");
    assert_eq!(json[0]["image"], "odysseus-other:1");
    // The app reaches it by its name on the odysseus network. (The whole config needs
    // its secrets, the dependency's too.)
    let deploy = |tag: &str| {
        app.cmd(&["--image", tag])
            .env("GREETING", "hello from a dependency")
            .output()
            .unwrap()
    };
    assert_exit(&deploy("v1"), 0, "deploy the app");
    let reached = run(&[
        "app",
        "exec",
        "198.51.100.12",
        "--command",
        "wget -q -O- http://sshdeps-cache:8080/",
    ]);
    assert_exit(&reached, 0, "the app reaches the dependency by name");
    assert!(String::from_utf8_lossy(&reached.stdout).contains("other-1"));
    // Deploys never touch it.
    assert_exit(&deploy("v2"), 0, "deploy v2");
    assert!(String::from_utf8_lossy(&run(&["dependency", "status"]).stdout).contains("running"));

    // Into the running container: exec (its exit code), logs, a shell fed by a pipe.
    let exec = run(&[
        "dependency",
        "exec",
        "cache",
        "--command",
        "echo log-marker > /proc/1/fd/1; echo kept > /data/file; exit 6",
    ]);
    assert_eq!(exec.status.code(), Some(6), "{}", stderr(&exec));
    let logs = run(&["dependency", "logs", "cache", "-n", "5"]);
    assert_exit(&logs, 0, "dependency logs");
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("log-marker"),
        "{}",
        stderr(&logs)
    );
    let mut shell = Command::new(real::odysseus_bin())
        .args(["dependency", "shell", "cache", "-c"])
        .arg(app.dir.join("deploy.yml"))
        .env("GREETING", "hello from a dependency")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    shell
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo port-$PORT\n")
        .unwrap();
    let shell = shell.wait_with_output().unwrap();
    assert_exit(&shell, 0, "dependency shell");
    assert_eq!(String::from_utf8_lossy(&shell.stdout).trim(), "port-8080");
    let wrong_host = run(&["dependency", "logs", "cache", "--host", "198.51.100.11"]);
    assert_exit(&wrong_host, 2, "a host the dependency does not run on");

    // Restart: the same container, started again.
    let identity = || {
        server_docker(
            2,
            &[
                "inspect",
                "-f",
                "{{.Id}} {{.State.StartedAt}} {{.Config.Image}}",
                "sshdeps-cache",
            ],
        )
    };
    let before = identity();
    let restarted = run(&["dependency", "restart", "cache"]);
    assert_exit(&restarted, 0, "dependency restart");
    assert!(
        stderr(&restarted).contains("cache: restarted, healthy"),
        "{}",
        stderr(&restarted)
    );
    let after = identity();
    assert_eq!(
        before.split(' ').next(),
        after.split(' ').next(),
        "the same container"
    );
    assert_ne!(before, after, "started again");

    // Upgrade to deploy.yml's new image: refused without a terminal unless --yes.
    let yaml = std::fs::read_to_string(app.dir.join("deploy.yml")).unwrap();
    std::fs::write(
        app.dir.join("deploy.yml"),
        yaml.replace("odysseus-other:1", "odysseus-other:2"),
    )
    .unwrap();
    let unconfirmed = run(&["dependency", "upgrade", "cache"]);
    assert_exit(
        &unconfirmed,
        2,
        "upgrade without --yes and without a terminal",
    );
    assert!(
        stderr(&unconfirmed).contains("--yes"),
        "{}",
        stderr(&unconfirmed)
    );
    assert_eq!(identity(), after, "nothing changed");
    let upgraded = run(&["dependency", "upgrade", "cache", "--yes"]);
    assert_exit(&upgraded, 0, "dependency upgrade");
    assert!(
        stderr(&upgraded)
            .contains("odysseus-other:1 → odysseus-other:2, healthy; out of service for"),
        "{}",
        stderr(&upgraded)
    );
    assert!(
        identity().trim().ends_with("odysseus-other:2"),
        "{}",
        identity()
    );
    let kept = run(&["dependency", "exec", "cache", "--command", "cat /data/file"]);
    assert_eq!(
        String::from_utf8_lossy(&kept.stdout).trim(),
        "kept",
        "the named volume stays"
    );

    let unknown = run(&["dependency", "boot", "db"]);
    assert_exit(&unknown, 2, "an unknown dependency");
    assert!(stderr(&unknown).contains("no dependency named db (dependencies: cache)"));
    let removed = run(&["dependency", "remove", "cache"]);
    assert_exit(&removed, 0, "dependency remove");
    assert!(String::from_utf8_lossy(&run(&["dependency", "status"]).stdout).contains("absent"));
    let _ = server_docker(2, &["volume", "rm", "-f", "sshdeps-data"]);
}

/// Freezes (SIGSTOP) or cuts (link down) host 2 while its deploy runs: the deploy must
/// end on its own within its timeouts, hosts 1 and 3 keep serving, and once the host is
/// back `--resume` converges to all-new.
fn fault_mid_step_then_recover(fault: &str, recover: &str) {
    fleet_up();
    let app = FleetApp::new(&format!("{fault}mid"), "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let started = std::time::Instant::now();
    let (mut child, lines) = real::spawn_until(
        app.cmd(&["--image", "v2"]),
        "[web@198.51.100.12] start-new ok",
    );
    servers(&[fault, "s2"]);
    let loads: Vec<Load> = [HOSTS[0], HOSTS[2]]
        .iter()
        .map(|h| {
            Load::start_at(
                &format!("{h}:80"),
                &app.host_header(),
                2,
                20_000,
                Duration::from_secs(400),
            )
        })
        .collect();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let took = started.elapsed();
    assert_ne!(status.code(), Some(0), "{rest:#?}");
    assert!(
        took < Duration::from_secs(300),
        "the deploy took {took:?} to give up: {rest:#?}"
    );
    servers(&[recover, "s2"]);
    let mut resumed = None;
    for _ in 0..10 {
        let out = app.deploy(&["--resume"]);
        if out.status.code() == Some(0) {
            resumed = Some(out);
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(
        resumed.is_some(),
        "--resume never converged after {recover}"
    );
    assert_no_failures(loads, &format!("hosts 1 and 3 during the {fault}"));
    assert_eq!(app.versions(), vec!["v2"; 3]);
    eprintln!(
        "{fault}: the deploy gave up after {took:?}:\n{}",
        rest.join("\n")
    );
}

#[test]
fn a_host_frozen_mid_step_fails_the_step_instead_of_hanging_and_resume_converges_after_thaw() {
    let _serial = serial();
    fault_mid_step_then_recover("freeze", "thaw");
}

#[test]
fn a_host_cut_off_mid_step_fails_the_step_instead_of_hanging_and_resume_converges_after_uncut() {
    let _serial = serial();
    fault_mid_step_then_recover("cut", "uncut");
}

#[test]
fn push_sends_an_image_to_every_host_once_and_deploy_push_image_uses_it() {
    let _serial = serial();
    fleet_up();
    for n in 1..=3 {
        server_docker(n, &["rmi", "-f", "odysseus-demo:v3"]);
    }
    let app = FleetApp::new("push", "");
    let push = |args: &[&str]| {
        Command::new(real::odysseus_bin())
            .arg("push")
            .arg("-c")
            .arg(app.dir.join("deploy.yml"))
            .args(args)
            .output()
            .unwrap()
    };
    let first = push(&["--image", "v3"]);
    assert_exit(&first, 0, "first push");
    let err = stderr(&first);
    assert_eq!(err.matches("sent odysseus-demo:v3").count(), 3, "{err}");
    let second = push(&["--image", "v3"]);
    assert_exit(&second, 0, "second push");
    assert_eq!(
        stderr(&second)
            .matches("already has odysseus-demo:v3")
            .count(),
        3,
        "{}",
        stderr(&second)
    );
    let local_id = real::docker(&["image", "inspect", "-f", "{{.Id}}", "odysseus-demo:v3"]);
    for n in 1..=3 {
        assert_eq!(
            server_docker(
                n,
                &["image", "inspect", "-f", "{{.Id}}", "odysseus-demo:v3"]
            ),
            local_id,
            "s{n}"
        );
    }
    // A deploy that pushes first: v3 is removed from host 2 again.
    server_docker(2, &["rmi", "-f", "odysseus-demo:v3"]);
    let out = app.deploy(&["--image", "v3", "--push-image"]);
    assert_exit(&out, 0, "deploy --push-image");
    assert!(
        stderr(&out).contains("[198.51.100.12] sent odysseus-demo:v3"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.versions(), vec!["v3"; 3]);
    // A tag this machine does not have is refused before anything changes.
    let missing = push(&["--image", "v404"]);
    assert_exit(&missing, 3, "pushing an image this machine lacks");
    assert!(
        stderr(&missing).contains("not on this machine"),
        "{}",
        stderr(&missing)
    );
}

/// `app exec|shell|console` over SSH: a one-off container of the served image with the
/// role's env; piped input reaches it and its end ends the command (through the tunnel);
/// at a terminal it gets a PTY of the terminal's size; Ctrl-C removes it; the engine never
/// restarts it; `containers` lists it while it runs.
#[test]
fn one_off_commands_exec_shell_and_console_run_in_the_served_image_and_return_its_exit_code() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new(
        "oneoff",
        "env:\n  clear:\n    GREETING: hello-from-env\nconsole: echo console-of-$GREETING; cat\n",
    );
    assert_exit(&app.deploy(&["--image", "v2"]), 0, "deploy");
    let odysseus = |args: &[&str]| {
        let mut cmd = Command::new(real::odysseus_bin());
        cmd.args(args).arg("-c").arg(app.dir.join("deploy.yml"));
        cmd
    };
    let exec = |host: &str, command: &str| {
        odysseus(&["app", "exec", host, "--command", command])
            .output()
            .unwrap()
    };
    // Under timeout(1): a command that never sees the end of its input must fail the
    // test, not hang it.
    let piped = |args: &[&str], input: &str| {
        let mut child = Command::new("timeout")
            .arg("60")
            .arg(real::odysseus_bin())
            .args(args)
            .arg("-c")
            .arg(app.dir.join("deploy.yml"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let lines = |out: &Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    // The served image (its /www/index.html says v2), the role's env, the output streamed.
    let out = exec(HOSTS[1], "cat /www/index.html; echo $GREETING; exit 7");
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(lines(&out), vec!["v2", "hello-from-env"]);
    let ok = exec(HOSTS[0], "true");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    // A shell reading piped input: no `exit`, so only the end of the input (carried
    // through the SSH tunnel as EOF) ends it.
    let shell = piped(
        &["app", "shell", HOSTS[1]],
        "cat /www/index.html\necho $GREETING\n",
    );
    assert_eq!(shell.status.code(), Some(0), "{}", stderr(&shell));
    assert_eq!(lines(&shell), vec!["v2", "hello-from-env"]);
    let shell = piped(&["app", "shell", HOSTS[1]], "exit 9\n");
    assert_eq!(shell.status.code(), Some(9), "{}", stderr(&shell));
    // The console is deploy.yml's `console`, and reads its input.
    let console = piped(&["app", "console", HOSTS[2]], "typed-in\n");
    assert_eq!(console.status.code(), Some(0), "{}", stderr(&console));
    assert_eq!(
        lines(&console),
        vec!["console-of-hello-from-env", "typed-in"]
    );
    let console = piped(&["app", "console", HOSTS[2], "--command", "exit 4"], "");
    assert_eq!(console.status.code(), Some(4), "{}", stderr(&console));
    // At a terminal (script(1) gives one): a PTY in the container, of the terminal's size.
    let pty = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(sleep 2; printf 'tty; stty size; exit 3\\r'; sleep 5) | script -qec \"stty rows 41 cols 97; {} app shell {} -c {}\" /dev/null",
            real::odysseus_bin().display(),
            HOSTS[1],
            app.dir.join("deploy.yml").display()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&pty.stdout).into_owned();
    assert_eq!(pty.status.code(), Some(3), "{said}");
    assert!(
        said.contains("/dev/pts/") && said.contains("41 97"),
        "{said}"
    );
    // While one runs: listed by `containers`, never restarted by the engine; Ctrl-C ends
    // it with 130 and removes it.
    let mut long = odysseus(&["app", "exec", HOSTS[1], "--command", "sleep 60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let oneoffs = || {
        server_docker(
            2,
            &["ps", "-aq", "--filter", "label=odysseus.oneoff=oneoff"],
        )
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while oneoffs().trim().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the one-off never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let id = oneoffs().trim().to_string();
    assert_eq!(
        server_docker(
            2,
            &["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", &id]
        )
        .trim(),
        "no"
    );
    let listed = odysseus(&["containers", HOSTS[1], "--json"])
        .output()
        .unwrap();
    assert_exit(&listed, 0, "containers");
    let doc: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let kinds: Vec<(String, String)> = doc["hosts"][0]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("one-off".into(), "v2".into())),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("role".into(), "v2".into())), "{kinds:?}");
    assert!(kinds.contains(&("proxy".into(), "".into())), "{kinds:?}");
    signal(long.id(), "-INT");
    let status = long.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        oneoffs().trim().is_empty(),
        "the interrupted one-off is gone"
    );
    let unknown = exec("not-in-the-config.invalid", "true");
    assert_eq!(
        unknown.status.code(),
        Some(2),
        "a host that is not in the config is refused without connecting"
    );
    // No console in deploy.yml and none given: the key is named.
    let bare = FleetApp::new("oneoffbare", "");
    let out = Command::new(real::odysseus_bin())
        .args(["app", "console", HOSTS[0], "-c"])
        .arg(bare.dir.join("deploy.yml"))
        .output()
        .unwrap();
    assert_exit(&out, 2, "console without a console");
    assert!(
        stderr(&out).contains("has no `console:`"),
        "{}",
        stderr(&out)
    );
}

/// `doctor` on the fleet: every check passes on healthy servers (JSON, exit 0); a deploy
/// user outside the docker group, an unknown host key, a Caddy made for other ports, and
/// a port another program holds before Caddy exists each fail their own check, with the
/// checks that need them skipped, exit 1 — and nothing on the hosts changes.
#[test]
fn doctor_checks_each_host_read_only_and_names_what_to_fix() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("doctorapp", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "deploy");
    let yaml = std::fs::read_to_string(app.dir.join("deploy.yml")).unwrap();
    let doctor = |yaml: &str, args: &[&str]| {
        std::fs::write(app.dir.join("deploy.yml"), yaml).unwrap();
        Command::new(real::odysseus_bin())
            .arg("doctor")
            .args(args)
            .arg("-c")
            .arg(app.dir.join("deploy.yml"))
            .output()
            .unwrap()
    };
    let verdicts = |out: &Output| -> Vec<Vec<(String, String)>> {
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        doc["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                h["checks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| {
                        (
                            c["check"].as_str().unwrap().to_string(),
                            c["verdict"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            })
            .collect()
    };
    let names = [
        "ssh",
        "docker access",
        "docker engine",
        "disk",
        "lock",
        "caddy",
        "clock",
    ];
    // This service's containers and Caddy, by id and state (other users' containers come
    // and go meanwhile).
    let fleet_state = || {
        (1..=3)
            .map(|n| {
                server_docker(
                    n,
                    &["ps", "-a", "--format", "{{.ID}} {{.Names}} {{.State}}"],
                )
                .lines()
                .filter(|l| l.contains(" doctorapp-") || l.contains(" odysseus-caddy "))
                .map(str::to_string)
                .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let before = fleet_state();

    let healthy = doctor(&yaml, &["--json"]);
    assert_exit(&healthy, 0, "doctor on healthy servers");
    for host in verdicts(&healthy) {
        let checks: Vec<&str> = host.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(checks, names);
        // Disk may only warn (a small test disk); nothing fails.
        assert!(
            host.iter()
                .all(|(c, v)| v == "ok" || (c == "disk" && v == "warn")),
            "{host:?}"
        );
    }
    let text = String::from_utf8_lossy(&doctor(&yaml, &[HOSTS[0]]).stdout).into_owned();
    assert!(
        text.contains("logged in as root@198.51.100.11:22"),
        "{text}"
    );
    assert!(
        text.contains("Docker 20.10") && text.contains("(API 1.41)"),
        "{text}"
    );
    assert!(
        text.contains("its admin API answers") && text.contains("±"),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no colour when not at a terminal: {text}"
    );

    // A deploy user who may not use the Docker socket.
    let _ = Command::new("useradd")
        .args(["-m", "-s", "/bin/sh", "-p", "*", "odyoutsider"])
        .status();
    let outsider = doctor(
        &yaml.replace("ssh:\n", "ssh:\n  user: odyoutsider\n"),
        &[HOSTS[1]],
    );
    assert_exit(&outsider, 1, "a user outside the docker group");
    let said = String::from_utf8_lossy(&outsider.stdout).into_owned();
    assert!(said.contains("ok    ssh") && said.contains("FAIL  docker access  odyoutsider may not use /var/run/docker.sock: add odyoutsider to the socket's group"), "{said}");
    assert!(said.contains("skip  docker engine"), "{said}");

    // An unknown host key: refused, everything after it skipped.
    let empty = app.dir.join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let unknown = doctor(
        &yaml.replace(&format!("{BASE}/known_hosts"), &empty.to_string_lossy()),
        &["--json", HOSTS[2]],
    );
    assert_exit(&unknown, 1, "an unknown host key");
    let v = verdicts(&unknown);
    assert_eq!(v[0][0], ("ssh".to_string(), "fail".to_string()));
    assert!(v[0][1..].iter().all(|(_, v)| v == "skipped"), "{v:?}");

    // Caddy made for port 80, deploy.yml now asking for 8081.
    let moved = doctor(
        &yaml.replace("http_port: 80\n", "http_port: 8081\n"),
        &[HOSTS[0]],
    );
    assert_exit(&moved, 1, "Caddy publishes other ports");
    let said = String::from_utf8_lossy(&moved.stdout).into_owned();
    assert!(said.contains("does not publish 8081→80"), "{said}");

    // No Caddy yet on s3: its ports free is fine; a port held by another program (sshd's
    // 22 here) is named.
    server_docker(3, &["rm", "-f", "odysseus-caddy"]);
    let free = doctor(&yaml, &[HOSTS[2]]);
    assert_exit(&free, 0, "no Caddy yet, ports free");
    assert!(String::from_utf8_lossy(&free.stdout)
        .contains("not there yet: the first deploy starts it on ports 80 and 443, which are free"));
    let taken = doctor(
        &yaml.replace("http_port: 80\n", "http_port: 22\n"),
        &[HOSTS[2]],
    );
    assert_exit(&taken, 1, "a port taken by another program");
    assert!(
        String::from_utf8_lossy(&taken.stdout).contains("port 22 is taken by another program"),
        "{}",
        String::from_utf8_lossy(&taken.stdout)
    );

    // Read-only: only the Caddy this test removed is missing.
    let after = fleet_state();
    assert_eq!(before[..2], after[..2]);
    std::fs::write(app.dir.join("deploy.yml"), &yaml).unwrap();
    assert_exit(
        &app.deploy(&["--image", "v2"]),
        0,
        "the next deploy makes Caddy again",
    );
}

/// `cleanup HOST` takes one service off one server as a deployment of its own: it asks
/// (refused without a terminal unless --yes), drains a request in flight, survives a
/// SIGKILL mid-drain (a plain deploy and --abort are refused, `--resume` finishes it),
/// leaves the other service on that server and the service on the other servers alone,
/// is in `replay`; the Caddy goes only with the last route in it.
#[test]
fn cleanup_takes_a_service_off_one_server_as_a_journaled_resumable_deployment() {
    let _serial = serial();
    fleet_up();
    let a = FleetApp::new("cleana", "");
    let b = FleetApp::new("cleanb", "");
    assert_exit(&a.deploy(&["--image", "v1"]), 0, "deploy a");
    assert_exit(&b.deploy(&["--image", "v1"]), 0, "deploy b");
    let host = HOSTS[1];
    let run = |app: &FleetApp, args: &[&str]| {
        Command::new(real::odysseus_bin())
            .args(args)
            .arg("-c")
            .arg(app.dir.join("deploy.yml"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let ours = |n: usize, service: &str| {
        server_docker(
            n,
            &[
                "ps",
                "-aq",
                "--filter",
                &format!("label=odysseus.service={service}"),
            ],
        )
    };

    let unconfirmed = run(&a, &["cleanup", host]);
    assert_exit(
        &unconfirmed,
        2,
        "cleanup without --yes and without a terminal",
    );
    assert!(!ours(2, "cleana").trim().is_empty(), "nothing changed");

    // A request in flight on a's container; killed while it drains.
    let slow = real::slow_request(format!("{host}:80"), a.host_header(), 6);
    let mut cleanup = Command::new(real::odysseus_bin())
        .args(["cleanup", host, "--yes", "-c"])
        .arg(a.dir.join("deploy.yml"))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = Vec::new();
    for line in BufReader::new(cleanup.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let unrouted = line.contains("unroute-old ok");
        said.push(line);
        if unrouted {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    signal(cleanup.id(), "-KILL");
    let _ = cleanup.wait();
    assert!(
        said.iter().any(|l| l.contains("Removing cleana from")),
        "{said:?}"
    );
    // `status` words the unfinished cleanup and the commands that end it.
    let status = run(&a, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        text.contains("unfinished cleanup ")
            && text.contains("to finish it: odysseus deploy -c")
            && text.contains("--abandon REASON")
            && !text.contains("--abort")
            && !text.contains("{\""),
        "{text}"
    );

    let deploy = run(&a, &["deploy", "--image", "v2"]);
    assert_exit(&deploy, 3, "a deploy while the cleanup is unfinished");
    assert!(
        stderr(&deploy).contains("the cleanup") && stderr(&deploy).contains("--resume"),
        "{}",
        stderr(&deploy)
    );
    let abort = run(&a, &["deploy", "--abort"]);
    assert_exit(&abort, 3, "--abort of a cleanup");
    assert!(
        stderr(&abort).contains("is a cleanup: what it removed cannot be brought back"),
        "{}",
        stderr(&abort)
    );
    let resumed = run(&a, &["deploy", "--resume"]);
    assert_exit(&resumed, 0, "resume the cleanup");
    assert!(
        String::from_utf8_lossy(&resumed.stdout).contains(&format!("Removed cleana from {host}")),
        "{}",
        String::from_utf8_lossy(&resumed.stdout)
    );
    let (status, _) = slow.join().unwrap().unwrap();
    assert_eq!(status, 200, "the request in flight was drained, not cut");

    // a is gone from that server only; b there is untouched.
    assert!(ours(2, "cleana").trim().is_empty(), "{}", ours(2, "cleana"));
    assert!(!ours(1, "cleana").trim().is_empty() && !ours(3, "cleana").trim().is_empty());
    let answers =
        |app: &FleetApp| real::http_get_raw(&format!("{host}:80"), "/", &app.host_header());
    // No container of a answers there: Caddy has no route for its host (and answers a
    // request no route matches with an empty 200, as documented: caddy#4026).
    assert!(
        !matches!(answers(&a), Ok((200, ref body)) if !body.trim().is_empty()),
        "a still answers on {host}: {:?}",
        answers(&a)
    );
    assert!(
        matches!(answers(&b), Ok((200, ref body)) if body.trim() == "v1"),
        "{:?}",
        answers(&b)
    );
    let shown = run(&a, &["replay"]);
    let text = String::from_utf8_lossy(&shown.stdout).into_owned();
    for word in [
        "cleanup-started",
        "unroute-old",
        "drain-old",
        "stop-old",
        "remove-old",
        "remove-route",
        "resumed",
        "deployment-completed",
    ] {
        assert!(text.contains(word), "{word} missing from replay:\n{text}");
    }
    let again = run(&a, &["cleanup", host, "--yes"]);
    assert_exit(&again, 0, "a second cleanup");
    assert!(
        stderr(&again).contains("nothing to clean up"),
        "{}",
        stderr(&again)
    );
    // The service deploys there again afterwards.
    assert_exit(&a.deploy(&["--image", "v2"]), 0, "deploy after the cleanup");
    // Dropped from deploy.yml, a server keeps serving the old version: the next deploy
    // says so and names the cleanup, until that cleanup is done.
    a.write_for(&[HOSTS[0], HOSTS[2]], &format!("{BASE}/known_hosts"), "");
    let dropped = a.deploy(&["--image", "v1"]);
    assert_exit(&dropped, 0, "deploy without the second server");
    assert!(
        stderr(&dropped).contains(&format!(
            "warning: {host} ran cleana in its last deployment but is not in"
        )) && stderr(&dropped).contains(&format!("odysseus cleanup {host}")),
        "{}",
        stderr(&dropped)
    );
    assert_exit(
        &run(&a, &["cleanup", host, "--yes"]),
        0,
        "cleanup of the dropped server",
    );
    let after = a.deploy(&["--image", "v2"]);
    assert_exit(&after, 0, "deploy after the dropped server's cleanup");
    assert!(!stderr(&after).contains("warning:"), "{}", stderr(&after));

    // The last route in a Caddy takes the Caddy with it (its volumes stay). A fresh
    // Caddy: the saved config would bring back the routes earlier tests left.
    server_docker(3, &["rm", "-f", "odysseus-caddy"]);
    server_docker(3, &["volume", "rm", "-f", "odysseus-caddy-config"]);
    let c = FleetApp::new("cleanc", "");
    c.write_for(&[HOSTS[2]], &format!("{BASE}/known_hosts"), "");
    assert_exit(
        &c.deploy(&["--image", "v1"]),
        0,
        "deploy c alone on a fresh Caddy",
    );
    assert_exit(
        &run(&c, &["cleanup", HOSTS[2], "--yes"]),
        0,
        "cleanup of the last service",
    );
    assert!(
        server_docker(3, &["ps", "-aq", "--filter", "name=^odysseus-caddy$"])
            .trim()
            .is_empty(),
        "Caddy stays with no route"
    );
    assert!(server_docker(3, &["volume", "ls", "-q"]).contains("odysseus-caddy-data"));
}

#[test]
fn a_batch_of_three_deploys_the_hosts_together_without_a_failed_request() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("batch", "batch_size: 3\n");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let loads = app.load();
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 0, "batch deploy");
    assert_no_failures(loads, "batch of 3");
    let err = stderr(&out);
    // All three hosts start before the first one is done.
    let first_done = err.find("] done").unwrap();
    for h in HOSTS {
        assert!(
            err.find(&format!("[web@{h}] start-new")).unwrap() < first_done,
            "{err}"
        );
    }
    assert_eq!(app.versions(), vec!["v2"; 3]);
}

#[test]
fn status_shows_every_host_from_the_hosts_themselves_and_names_an_unreachable_one() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("status", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    assert_exit(&app.deploy(&["--image", "v2"]), 0, "second deploy");
    let status = |args: &[&str]| {
        Command::new(real::odysseus_bin())
            .arg("status")
            .arg("-c")
            .arg(app.dir.join("deploy.yml"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = status(&["--json"]);
    assert_exit(&out, 0, "status --json");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts = doc["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3);
    for h in hosts {
        let running: Vec<&serde_json::Value> = h["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["running"] == true)
            .collect();
        assert_eq!(running.len(), 1, "{h}");
        assert_eq!(running[0]["version"], "v2");
        assert_eq!(running[0]["routed"], true);
        let dial = format!("{}:3000", running[0]["name"].as_str().unwrap());
        assert_eq!(h["upstreams"], serde_json::json!([dial]));
        assert!(h["lock_holder"].is_null());
    }
    assert!(doc["unfinished_deployment"].is_null());
    servers(&["cut", "s3"]);
    let out = status(&[]);
    servers(&["uncut", "s3"]);
    assert_exit(&out, 3, "status with host 3 cut off");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("198.51.100.13: UNREACHABLE") && text.contains("198.51.100.11\n"),
        "{text}"
    );
}

/// A server on a non-default port (`host:port`): its key is checked against the
/// `[host]:port` entry OpenSSH writes, `trust` records that form, and the server's Docker
/// socket can live somewhere else (`ssh.docker_socket`).
#[test]
fn a_host_port_uses_bracketed_known_hosts_entries_and_the_docker_socket_path_is_configurable() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("sshport", "");
    let key = std::fs::read_to_string(format!("{BASE}/s1/ssh_host_ed25519_key.pub")).unwrap();
    let key: Vec<&str> = key.split_whitespace().take(2).collect();
    let key = key.join(" ");
    // The server's engine, reached through a socket path of our choosing on the server.
    std::fs::create_dir_all(format!("{BASE}/s1/run/odysseus-alt")).unwrap();
    let _ = std::fs::remove_file(format!("{BASE}/s1/run/odysseus-alt/docker.sock"));
    std::os::unix::fs::symlink(
        "/run/docker.sock",
        format!("{BASE}/s1/run/odysseus-alt/docker.sock"),
    )
    .unwrap();
    let config = |known: &str, socket: &str| {
        app.write(known, "");
        let yaml = std::fs::read_to_string(app.dir.join("deploy.yml"))
            .unwrap()
            .replace(&HOSTS.join(", "), "198.51.100.11:2222")
            .replace(
                &format!("  known_hosts: {known}\n"),
                &format!("  known_hosts: {known}\n  docker_socket: {socket}\n"),
            );
        std::fs::write(app.dir.join("deploy.yml"), yaml).unwrap();
    };
    let known = app.dir.join("known_hosts_port");
    let known_s = known.to_string_lossy().into_owned();
    let alt = "/run/odysseus-alt/docker.sock";

    // Only the port-22 form: the server on 2222 is unknown, as it is to OpenSSH.
    std::fs::write(&known, format!("198.51.100.11 {key}\n")).unwrap();
    config(&known_s, alt);
    let refused = app.deploy(&["--image", "v1"]);
    assert_exit(&refused, 3, "a plain entry for a host on port 2222");
    assert!(
        stderr(&refused).contains("[198.51.100.11]:2222 is unknown"),
        "{}",
        stderr(&refused)
    );

    // `trust` records the bracketed form; then the deploy goes through the other socket.
    let trusted = Command::new(real::odysseus_bin())
        .args(["trust", "198.51.100.11:2222", "--yes", "-c"])
        .arg(app.dir.join("deploy.yml"))
        .output()
        .unwrap();
    assert_exit(&trusted, 0, "trust 198.51.100.11:2222");
    assert!(
        std::fs::read_to_string(&known)
            .unwrap()
            .lines()
            .any(|l| l.starts_with("[198.51.100.11]:2222 ")),
        "{}",
        std::fs::read_to_string(&known).unwrap()
    );
    std::fs::write(&known, format!("[198.51.100.11]:2222 {key}\n")).unwrap();
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "deploy over port 2222");
    assert_eq!(app.versions()[0], "v1");

    // A socket path with no engine behind it: refused before anything changes, naming it.
    config(&known_s, "/run/odysseus-nothing.sock");
    let wrong = app.deploy(&["--image", "v2"]);
    assert_exit(&wrong, 3, "a docker_socket with no engine");
    assert!(
        stderr(&wrong).contains("no Docker engine answers at /run/odysseus-nothing.sock"),
        "{}",
        stderr(&wrong)
    );
    assert_eq!(app.versions()[0], "v1");
}

#[test]
fn trust_records_new_host_keys_once_and_never_replaces_a_changed_one() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("trust", "");
    let known = app.dir.join("fresh_known_hosts");
    std::fs::write(&known, "").unwrap();
    app.write(&known.to_string_lossy(), "");
    let trust = || {
        Command::new(real::odysseus_bin())
            .arg("trust")
            .args(HOSTS)
            .arg("--yes")
            .arg("-c")
            .arg(app.dir.join("deploy.yml"))
            .output()
            .unwrap()
    };
    // Off a terminal, nothing is recorded without --yes.
    let unconfirmed = Command::new(real::odysseus_bin())
        .args(["trust", HOSTS[0], "-c"])
        .arg(app.dir.join("deploy.yml"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_exit(&unconfirmed, 2, "trust off a terminal without --yes");
    assert!(
        stderr(&unconfirmed).contains("--yes"),
        "{}",
        stderr(&unconfirmed)
    );
    assert_eq!(std::fs::read_to_string(&known).unwrap(), "");
    // Only the config's hosts: a typo never records some other machine's key.
    let stranger = Command::new(real::odysseus_bin())
        .args(["trust", "198.51.100.99", "--yes", "-c"])
        .arg(app.dir.join("deploy.yml"))
        .output()
        .unwrap();
    assert_exit(&stranger, 2, "trust of a host deploy.yml does not name");
    assert!(
        stderr(&stranger).contains("is not an SSH host"),
        "{}",
        stderr(&stranger)
    );
    // Only named hosts: `trust` alone is a usage error.
    let unnamed = Command::new(real::odysseus_bin())
        .args(["trust", "--yes", "-c"])
        .arg(app.dir.join("deploy.yml"))
        .output()
        .unwrap();
    assert_exit(&unnamed, 2, "trust with no host named");
    let first = trust();
    assert_exit(&first, 0, "trust");
    let text = String::from_utf8_lossy(&first.stdout);
    assert_eq!(
        text.matches(": recorded ssh-ed25519 SHA256:").count(),
        3,
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(&known)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count(),
        3
    );
    let second = trust();
    assert_exit(&second, 0, "trust again");
    assert_eq!(
        String::from_utf8_lossy(&second.stdout)
            .matches("already known")
            .count(),
        3
    );
    assert_exit(
        &app.deploy(&["--image", "v1"]),
        0,
        "deploy with the recorded keys",
    );
    // A changed key is refused, and the file keeps the old line.
    let real_hosts = std::fs::read_to_string(format!("{BASE}/known_hosts")).unwrap();
    let s2_key = real_hosts
        .lines()
        .find(|l| l.starts_with("198.51.100.12 "))
        .unwrap()
        .split_once(' ')
        .unwrap()
        .1
        .to_string();
    std::fs::write(&known, format!("198.51.100.11 {s2_key}\n")).unwrap();
    let changed = trust();
    assert_exit(&changed, 3, "trust with a changed key");
    assert!(String::from_utf8_lossy(&changed.stdout).contains("CHANGED"));
    assert!(std::fs::read_to_string(&known)
        .unwrap()
        .starts_with(&format!("198.51.100.11 {s2_key}")));
}

#[test]
fn keys_from_an_ssh_agent_are_used_when_no_key_file_is_given() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("agent", "");
    // The same config with no key files: only the agent can authenticate.
    let config = std::fs::read_to_string(app.dir.join("deploy.yml"))
        .unwrap()
        .replace(&format!("  keys: [{BASE}/id_ed25519]\n"), "  keys: []\n");
    std::fs::write(app.dir.join("deploy.yml"), config).unwrap();
    let without = app
        .cmd(&["--image", "v1"])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert_exit(&without, 3, "no key and no agent");
    assert!(
        stderr(&without).contains("no key was accepted"),
        "{}",
        stderr(&without)
    );

    let socket = app.dir.join("agent.sock");
    let agent = Command::new("ssh-agent")
        .arg("-a")
        .arg(&socket)
        .output()
        .unwrap();
    assert!(
        agent.status.success(),
        "{}",
        String::from_utf8_lossy(&agent.stderr)
    );
    let pid: String = String::from_utf8_lossy(&agent.stdout)
        .split("SSH_AGENT_PID=")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let add = Command::new("ssh-add")
        .arg(format!("{BASE}/id_ed25519"))
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    let with_agent = app
        .cmd(&["--image", "v1"])
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    let _ = Command::new("kill").arg(&pid).status();
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    assert_exit(&with_agent, 0, "deploy with the agent's key");
    assert_eq!(app.versions(), vec!["v1"; 3]);
}

#[test]
fn hashed_known_hosts_entries_and_an_rsa_key_work() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("rsahashed", "");
    // known_hosts hashed the way `ssh-keygen -H` does it.
    let hashed = app.dir.join("hashed_known_hosts");
    std::fs::copy(format!("{BASE}/known_hosts"), &hashed).unwrap();
    let hash = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&hashed)
        .output()
        .unwrap();
    assert!(
        hash.status.success(),
        "{}",
        String::from_utf8_lossy(&hash.stderr)
    );
    assert!(std::fs::read_to_string(&hashed)
        .unwrap()
        .lines()
        .all(|l| l.is_empty() || l.starts_with("|1|")));
    // An RSA key, accepted by every server.
    let rsa = app.dir.join("id_rsa");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "3072", "-N", "", "-f"])
        .arg(&rsa)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let public = std::fs::read_to_string(app.dir.join("id_rsa.pub")).unwrap();
    for n in 1..=3 {
        let path = format!("{BASE}/s{n}/authorized_keys");
        let mut keys = std::fs::read_to_string(&path).unwrap();
        if !keys.contains(public.trim()) {
            keys.push_str(&public);
            std::fs::write(&path, keys).unwrap();
        }
    }
    app.write(&hashed.to_string_lossy(), "");
    let config = std::fs::read_to_string(app.dir.join("deploy.yml"))
        .unwrap()
        .replace(
            &format!("[{BASE}/id_ed25519]"),
            &format!("[{}]", rsa.display()),
        );
    std::fs::write(app.dir.join("deploy.yml"), config).unwrap();
    let out = app
        .cmd(&["--image", "v1"])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert_exit(&out, 0, "deploy with an RSA key and hashed known_hosts");
    assert_eq!(app.versions(), vec!["v1"; 3]);
}

#[test]
fn logs_shows_what_the_serving_container_printed() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("logs", "");
    // A role whose command prints a marker, then keeps running.
    let config = std::fs::read_to_string(app.dir.join("deploy.yml")).unwrap().replace(
        "proxy:\n",
        "  worker:\n    hosts: [198.51.100.12]\n    cmd: \"echo worker-started-$MARKER; while true; do sleep 1; done\"\nproxy:\n",
    ) + "env:\n  clear:\n    MARKER: m42\n";
    std::fs::write(app.dir.join("deploy.yml"), config).unwrap();
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "deploy with a worker");
    let logs = |args: &[&str]| {
        Command::new(real::odysseus_bin())
            .arg("logs")
            .args(args)
            .arg("-c")
            .arg(app.dir.join("deploy.yml"))
            .output()
            .unwrap()
    };
    let out = logs(&["198.51.100.12", "--role", "worker", "-n", "10"]);
    assert_exit(&out, 0, "logs");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("worker-started-m42"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let nothing = logs(&["198.51.100.11", "--role", "worker"]);
    assert_eq!(nothing.status.code(), Some(3), "{}", stderr(&nothing));
    assert!(stderr(&nothing).contains("runs nothing"));
}

/// A well-mixed 64-bit hash (SplitMix64), for kill instants spread over the range.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Not our demo: another app with its own port (from the environment), a 204 health
/// check on its own path, no EXPOSE or HEALTHCHECK, a worker role on other hosts, a secret
/// from a secrets file, batch 50%, rollback policy, one retained version, images pushed by
/// the deploy itself — and the deployer SIGKILLed at random instants (printed, so a
/// failure can be replayed) until a plain re-run finishes. No request fails on the way.
#[test]
fn another_app_survives_random_kills_of_its_deployer_and_converges() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("otherapp", "");
    let yaml = format!(
        "# written as a user would, for an app that is not the demo
service: otherapp
image: odysseus-other
retain_versions: 1
batch_size: 50%
on_failure: rollback
secrets_file: secrets.yml
servers:
  web:
    hosts: [{h1}, {h2}]
    deploy:
      boot_timeout: 20
      drain_timeout: 10
  worker:
    hosts: [{h2}, {h3}]
    cmd: [/bin/worker]
proxy:
  app_port: 8080
  hosts: [otherapp.test]
  ssl: false
  http_port: 80
  image: odysseus-testbed/caddy:2.11.7
  healthcheck:
    path: /cgi-bin/healthz
    expect_status: 204
env:
  clear:
    PORT: 8080
  secret: [GREETING]
ssh:
  keys: [{BASE}/id_ed25519]
  known_hosts: {BASE}/known_hosts
",
        h1 = HOSTS[0],
        h2 = HOSTS[1],
        h3 = HOSTS[2]
    );
    std::fs::write(app.dir.join("deploy.yml"), yaml).unwrap();
    std::fs::write(app.dir.join("secrets.yml"), "GREETING: hello from a file\n").unwrap();
    let get = |host: &str, path: &str| {
        real::http_get_raw(&format!("{host}:80"), path, "otherapp.test")
            .map(|(s, b)| (s, b.trim().to_string()))
    };
    assert_exit(
        &app.deploy(&["--image", "1", "--push-image"]),
        0,
        "first deploy of the other app",
    );
    assert_eq!(get(HOSTS[0], "/").unwrap(), (200, "other-1".to_string()));
    let loads: Vec<Load> = HOSTS[..2]
        .iter()
        .map(|h| {
            Load::start_at(
                &format!("{h}:80"),
                "otherapp.test",
                2,
                50_000,
                Duration::from_secs(300),
            )
        })
        .collect();
    // Kill instants we did not pick: drawn from the clock, printed for a replay.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut kills = Vec::new();
    for round in 0..3u64 {
        let delay = Duration::from_millis(150 + splitmix(seed ^ round) % 2_500);
        let mut child = app
            .cmd(&["--image", "2", "--push-image"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        kills.push(format!(
            "{delay:?}{}",
            if finished { " (already done)" } else { "" }
        ));
    }
    eprintln!("SIGKILL after: {kills:?}");
    // A plain re-run of the same command resumes whatever is unfinished.
    let mut done = None;
    for _ in 0..5 {
        let out = app.deploy(&["--image", "2", "--push-image"]);
        if out.status.code() == Some(0) {
            done = Some(out);
            break;
        }
        eprintln!("re-run: {}", stderr(&out));
        std::thread::sleep(Duration::from_secs(1));
    }
    let out = done.unwrap_or_else(|| panic!("never converged after kills at {kills:?}"));
    assert_no_failures(loads, &format!("the other app, kills at {kills:?}"));
    for h in &HOSTS[..2] {
        assert_eq!(get(h, "/").unwrap(), (200, "other-2".to_string()), "{h}");
        // (The CGI answer comes chunked; the helper does not decode chunks.)
        let (status, body) = get(h, "/cgi-bin/greet").unwrap();
        assert!(
            status == 200 && body.contains("hello from a file"),
            "the secret from secrets.yml reaches the app on {h}: {status} {body:?}"
        );
    }
    for n in 2..=3 {
        let workers = server_docker(
            n,
            &[
                "ps",
                "--filter",
                "label=odysseus.service=otherapp",
                "--filter",
                "label=odysseus.role=worker",
                "--format",
                "{{.Label \"odysseus.version\"}}",
            ],
        );
        assert_eq!(workers.trim(), "2", "the worker on s{n}");
    }
    // retain_versions: 1 — once complete, nothing stopped is left behind.
    for n in 1..=3 {
        let all = server_docker(
            n,
            &["ps", "-aq", "--filter", "label=odysseus.service=otherapp"],
        );
        let running = server_docker(
            n,
            &["ps", "-q", "--filter", "label=odysseus.service=otherapp"],
        );
        assert_eq!(
            all.lines().count(),
            running.lines().count(),
            "s{n}: {}",
            stderr(&out)
        );
    }
}

/// Recovery without every host: host 2 dies half-switched; `--abort` rolls back the
/// hosts it can reach (under load, no failed request there) and stays resumable for
/// host 2; `--abandon` ends the deployment without touching anything; once host 2 is
/// back (still marked by the abandoned deployment) a new deployment converges.
#[test]
fn an_abort_with_a_host_powered_off_rolls_back_the_others_and_abandon_ends_it() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("hostdown", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let (mut child, lines) = real::spawn_until(
        app.cmd(&["--image", "v2"]),
        "[web@198.51.100.12] add-upstream ok",
    );
    drop(lines);
    let _ = child.kill();
    let _ = child.wait();
    servers(&["kill", "s2"]);
    let loads: Vec<Load> = [HOSTS[0], HOSTS[2]]
        .iter()
        .map(|h| {
            Load::start_at(
                &format!("{h}:80"),
                &app.host_header(),
                2,
                10_000,
                Duration::from_secs(150),
            )
        })
        .collect();

    let out = app.deploy(&["--abort"]);
    let err = stderr(&out);
    assert_exit(&out, 1, "--abort with host 2 down");
    assert!(
        err.contains("going on without 198.51.100.12"),
        "the run says it goes on without host 2: {err}"
    );
    let versions = app.versions();
    assert_eq!(
        (versions[0].as_str(), versions[2].as_str()),
        ("v1", "v1"),
        "hosts 1 and 3 are back on v1: {versions:?}"
    );
    assert_eq!(app.running_versions(1), vec!["v1"]);

    // It can never finish while host 2 is gone: abandon it, with a reason.
    let out = app.deploy(&["--abandon", "s2 lost its power supply"]);
    let err = stderr(&out);
    assert_exit(&out, 0, "--abandon");
    assert!(
        err.contains("198.51.100.11: hostdown-web-") && err.contains("(v1)"),
        "{err}"
    );
    assert!(err.contains("198.51.100.12: UNREACHABLE"), "{err}");
    let replay = Command::new(real::odysseus_bin())
        .args(["replay", "-c"])
        .arg(app.dir.join("deploy.yml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(
        text.contains("abandoned") && text.contains("s2 lost its power supply"),
        "{text}"
    );
    assert_no_failures(loads, "hosts 1 and 3 during the abort");

    // Host 2 comes back still marked by the abandoned deployment. The mark is this
    // journal's own and its deployment is over: a new deployment replaces it, and
    // replaces both containers host 2 runs (v1 and the abandoned v2).
    servers(&["start", "s2"]);
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 0, "a new deployment after the abandoned one");
    assert!(
        stderr(&out).contains("[web@198.51.100.12] stop-old ok")
            && stderr(&out).contains("2 affected"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.versions(), vec!["v2"; 3]);
    for n in 1..=3 {
        assert_eq!(app.running_versions(n), vec!["v2"], "server s{n}");
    }
}

/// Issue 10 over SSH: fifty deploys to a server under fresh, keep-alive and long clients
/// at once, every kind counted: no request fails, and the server's Caddy is never asked
/// for a config change (each one would be a reload that closes idle connections).
#[test]
fn fifty_deploys_over_ssh_fail_no_request_of_any_kind_and_never_reload_caddy() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("everyssh", "");
    app.write_for(&HOSTS[..1], &format!("{BASE}/known_hosts"), "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let changes = |n: usize| {
        let out = Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{BASE}/s{n}/run/docker.sock"))
            .args(["logs", "odysseus-caddy"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| {
                l.contains("\"msg\":\"received request\"") && !l.contains("\"method\":\"GET\"")
            })
            .count()
    };
    let before = changes(1);
    let load = real::MixedLoad::start(
        &format!("{}:80", HOSTS[0]),
        &app.host_header(),
        2,
        Duration::from_secs(900),
    );
    std::thread::sleep(Duration::from_millis(500));
    for round in 0..50 {
        let version = if round % 2 == 0 { "v2" } else { "v1" };
        let out = app.deploy(&["--image", version]);
        assert_exit(&out, 0, &format!("deploy {} of 50 ({version})", round + 1));
    }
    std::thread::sleep(Duration::from_millis(500));
    let report = load.finish();
    eprintln!(
        "50 deploys over SSH: fresh {} ok, keep-alive {} ok, long {} ok",
        report.fresh.ok, report.keepalive.ok, report.long.ok
    );
    report.assert_clean("50 deploys over SSH", 100);
    assert!(
        report.versions.len() >= 2,
        "the load saw {:?}",
        report.versions
    );
    assert_eq!(
        changes(1),
        before,
        "Caddy's config changed during the deploys"
    );
    assert_eq!(app.versions()[0], "v1");
}

/// Issue 11: a man in the middle offering a key of another algorithm than the recorded one
/// is CHANGED (refused, never trustable), not "unknown"; a revoked key and a host meant to
/// present certificates are refused too, and nothing is deployed.
#[test]
fn a_host_key_of_another_type_a_revoked_key_and_a_cert_authority_are_refused() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("keytypes", "");
    // An ECDSA key recorded for s1, which offers its ED25519 key.
    let other = app.dir.join("other_key");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-C", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(made.success());
    let ecdsa = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let real_hosts = std::fs::read_to_string(format!("{BASE}/known_hosts")).unwrap();
    let line_of = |ip: &str| {
        real_hosts
            .lines()
            .find(|l| l.starts_with(&format!("{ip} ")))
            .unwrap()
            .to_string()
    };
    let known = app.dir.join("known_hosts");
    let others = format!("{}\n{}\n", line_of(HOSTS[1]), line_of(HOSTS[2]));
    std::fs::write(&known, format!("{} {}\n{others}", HOSTS[0], ecdsa.trim())).unwrap();
    app.write(&known.to_string_lossy(), "");
    let out = app.deploy(&["--image", "v1"]);
    assert_exit(&out, 3, "a key of another type");
    let err = stderr(&out);
    assert!(
        err.contains("CHANGED") && err.contains("ssh-ed25519"),
        "{err}"
    );
    assert!(
        !err.contains("record it") && !err.contains("with `odysseus trust"),
        "a changed key must not be offered to trust: {err}"
    );
    let before = std::fs::read_to_string(&known).unwrap();
    let trusted = Command::new(real::odysseus_bin())
        .args(["trust", HOSTS[0], "--yes", "-c"])
        .arg(app.dir.join("deploy.yml"))
        .output()
        .unwrap();
    assert_exit(&trusted, 3, "trust of a changed key");
    assert!(String::from_utf8_lossy(&trusted.stdout).contains("CHANGED"));
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        before,
        "trust wrote the attacker's key"
    );

    // The right key, but revoked.
    let s1 = line_of(HOSTS[0]);
    let s1_key = s1.split_once(' ').unwrap().1;
    std::fs::write(&known, format!("{s1}\n@revoked * {s1_key}\n{others}")).unwrap();
    let out = app.deploy(&["--image", "v1"]);
    assert_exit(&out, 3, "a revoked key");
    assert!(stderr(&out).contains("REVOKED"), "{}", stderr(&out));

    // A certificate authority for the host: odysseus checks no certificates, so it says so.
    std::fs::write(
        &known,
        format!(
            "@cert-authority 198.51.100.* {}\n{s1}\n{others}",
            ecdsa.trim()
        ),
    )
    .unwrap();
    let out = app.deploy(&["--image", "v1"]);
    assert_exit(&out, 3, "a cert-authority line for the host");
    assert!(stderr(&out).contains("@cert-authority"), "{}", stderr(&out));
    for n in 1..=3 {
        assert!(app.running_versions(n).is_empty(), "s{n} got a container");
    }
}

/// `builder.strategy: remote` (issue 12 §2): the image is built by s1's engine from this
/// machine's repository (the context goes over SSH), then sent from s1 to s2 and s3; this
/// machine's engine never has it. A deploy killed once its build is journaled is resumed
/// without building again, under load, with no failed request.
#[test]
fn a_remote_builder_builds_on_a_server_and_the_others_receive_the_image() {
    let _serial = serial();
    fleet_up();
    let image = format!("odysseus-sshbuild-{}", std::process::id());
    let app = FleetApp::new(
        "sshbuild",
        &format!("builder:\n  strategy: remote\n  host: {}\n", HOSTS[0]),
    );
    let yaml = std::fs::read_to_string(app.dir.join("deploy.yml"))
        .unwrap()
        .replace("image: odysseus-demo\n", &format!("image: {image}\n"));
    std::fs::write(app.dir.join("deploy.yml"), yaml).unwrap();
    let page = |text: &str| {
        std::fs::create_dir_all(app.dir.join("site")).unwrap();
        std::fs::write(app.dir.join("site/index.html"), format!("{text}\n")).unwrap();
        std::fs::write(app.dir.join("site/health"), "ok\n").unwrap();
        std::fs::write(
            app.dir.join("Dockerfile"),
            "FROM odysseus-demo:v1\nCOPY site/ /www/\n",
        )
        .unwrap();
        std::fs::write(app.dir.join(".gitignore"), ".odysseus/\n").unwrap();
        git(&app.dir, &["add", "-A"]);
        git(&app.dir, &["commit", "-q", "-m", text]);
    };
    git(&app.dir, &["init", "-q"]);
    page("built-one");
    let out = app.deploy(&[]);
    assert_exit(&out, 0, "remote build and first deploy");
    assert!(
        stderr(&out).contains(&format!("on {}", HOSTS[0])),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.versions(), vec!["built-one"; 3]);

    page("built-two");
    let loads = app.load();
    let (mut child, _rest) = real::spawn_until(app.cmd(&[]), "Built ");
    child.kill().unwrap();
    child.wait().unwrap();
    let out = app.deploy(&["--resume"]);
    assert_exit(&out, 0, "resume after the remote build");
    assert!(
        !stderr(&out).contains("Building"),
        "built again:\n{}",
        stderr(&out)
    );
    assert_no_failures(loads, "killed after its remote build, resumed");
    assert_eq!(app.versions(), vec!["built-two"; 3]);

    let ids: Vec<String> = (1..=3)
        .map(|n| {
            server_docker(
                n,
                &[
                    "ps",
                    "--filter",
                    "label=odysseus.service=sshbuild",
                    "--format",
                    "{{.Image}}",
                ],
            )
            .trim()
            .to_string()
        })
        .collect();
    let tag = &ids[0];
    assert!(tag.starts_with(&image), "{ids:?}");
    let built: Vec<String> = (1..=3)
        .map(|n| {
            server_docker(n, &["image", "inspect", "-f", "{{.Id}}", tag])
                .trim()
                .to_string()
        })
        .collect();
    assert!(
        !built[0].is_empty() && built.iter().all(|b| *b == built[0]),
        "{built:?}"
    );
    let local = Command::new("docker")
        .args(["image", "inspect", tag])
        .output()
        .unwrap();
    assert!(
        !local.status.success(),
        "this machine's engine never builds nor holds {tag}"
    );
    let replay = Command::new(real::odysseus_bin())
        .args(["replay", "--json", "-c"])
        .arg(app.dir.join("deploy.yml"))
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&replay.stdout).unwrap();
    let kinds: Vec<&str> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "built").count(),
        1,
        "{kinds:?}"
    );
    assert!(
        doc.to_string().contains(&format!("remote {}", HOSTS[0])),
        "{doc}"
    );
    for n in 1..=3 {
        server_docker(n, &["rmi", "-f", tag]);
    }
}

const PEBBLE_DIR: &str = "/var/lib/odysseus-testbed/pebble";

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// pebble's log lines of issued certificates (each new order that succeeded).
fn pebble_issued() -> usize {
    std::fs::read_to_string("/run/odysseus-testbed/pebble.log")
        .unwrap_or_default()
        .matches("Issued certificate")
        .count()
}

/// GETs over HTTPS through `addr` for `host` until `stop` exists: fresh connections and
/// keep-alive ones back to back, counted per kind (python3's ssl, verifying with `root`).
fn https_load(addr: &str, host: &str, root: &Path, stop: &Path) -> std::process::Child {
    let script = r#"
import http.client, ssl, sys, threading, os, json
addr, host, root, stop = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ip, port = addr.split(':')
ctx = ssl.create_default_context(cafile=root)
counts = {'fresh_ok': 0, 'fresh_fail': 0, 'keepalive_ok': 0, 'keepalive_fail': 0, 'errors': []}
lock = threading.Lock()
class Conn(http.client.HTTPSConnection):
    def connect(self):
        import socket
        sock = socket.create_connection((ip, int(port)), timeout=10)
        self.sock = ctx.wrap_socket(sock, server_hostname=host)
def one(conn):
    conn.request('GET', '/', headers={'Host': host})
    r = conn.getresponse(); r.read()
    return r.status
def fresh():
    while not os.path.exists(stop):
        c = Conn(host, timeout=10)
        try:
            ok = one(c) == 200
            err = None if ok else 'status'
        except Exception as e:
            ok, err = False, repr(e)
        finally:
            c.close()
        with lock:
            counts['fresh_ok' if ok else 'fresh_fail'] += 1
            if err: counts['errors'].append(err)
def keepalive():
    c = Conn(host, timeout=10)
    while not os.path.exists(stop):
        try:
            ok = one(c) == 200
            err = None if ok else 'status'
        except Exception as e:
            ok, err = False, repr(e)
            c.close(); c = Conn(host, timeout=10)
        with lock:
            counts['keepalive_ok' if ok else 'keepalive_fail'] += 1
            if err: counts['errors'].append(err)
ts = [threading.Thread(target=f) for f in (fresh, fresh, keepalive, keepalive)]
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps(counts))
"#;
    Command::new("python3")
        .args(["-c", script, addr, host])
        .arg(root)
        .arg(stop)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Automatic HTTPS against a real ACME CA (issue 12 §4): Debian's pebble issues the
/// certificates Caddy asks for (HTTP-01 / TLS-ALPN-01 answered by the fake server's
/// Caddy on :80/:443); the chain verifies with pebble's root; plain HTTP redirects to
/// HTTPS; v1 → v2 under HTTPS load (fresh and keep-alive) fails no request; a second
/// service with other hosts and another email gets its own certificate under its own
/// ACME account; a recreated Caddy serves from its volume without a new order.
#[test]
fn https_certificates_come_from_a_real_acme_ca_and_survive_a_recreated_caddy() {
    let _serial = serial();
    fleet_up();
    let host = HOSTS[2];
    // A fresh Caddy data volume: an account of an earlier pebble start would not exist.
    server_docker(3, &["rm", "-f", "odysseus-caddy"]);
    server_docker(
        3,
        &[
            "volume",
            "rm",
            "-f",
            "odysseus-caddy-config",
            "odysseus-caddy-data",
        ],
    );
    let dir = std::env::temp_dir().join(format!("odysseus-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.join("pebble-root.pem");
    let listener_ca = format!("{PEBBLE_DIR}/listener-ca.pem");
    let (ok, pem) = curl(&[
        "--cacert",
        &listener_ca,
        "https://198.51.100.1:15000/roots/0",
    ]);
    assert!(
        ok && pem.contains("BEGIN CERTIFICATE"),
        "pebble's root: {pem}"
    );
    std::fs::write(&root, pem).unwrap();

    let https = |service: &str, email: &str| -> FleetApp {
        let app = FleetApp::new(service, "");
        app.write_for(&[host], &format!("{BASE}/known_hosts"), "");
        let yaml = std::fs::read_to_string(app.dir.join("deploy.yml")).unwrap().replace(
            "  ssl: false\n",
            &format!(
                "  ssl: true\n  ssl_email: {email}\n  https_port: 443\n  acme_ca: https://198.51.100.1:14000/dir\n  acme_ca_root: {listener_ca}\n"
            ),
        );
        std::fs::write(app.dir.join("deploy.yml"), yaml).unwrap();
        let (ok, said) = curl(&[
            "-d",
            &format!(
                r#"{{"host":"{}","addresses":["{host}"]}}"#,
                app.host_header()
            ),
            "http://127.0.0.1:8055/add-a",
        ]);
        assert!(ok, "challtestsrv add-a: {said}");
        app
    };
    let get = |name: &str| {
        curl(&[
            "--resolve",
            &format!("{name}:443:{host}"),
            "--cacert",
            root.to_str().unwrap(),
            &format!("https://{name}/"),
        ])
    };
    let wait_https = |name: &str, want: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (ok, body) = get(name);
            if ok && body.trim() == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} never served {want} over verified HTTPS: {body}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    };

    let app = https("sshtls", "ops-a@example.org");
    let name = app.host_header();
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first HTTPS deploy");
    wait_https(&name, "v1");
    let (_, chain) = {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo | openssl s_client -connect {host}:443 -servername {name} -CAfile {} -verify_return_error 2>&1",
                root.display()
            ))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert!(
        chain.contains("Verify return code: 0 (ok)") && chain.contains("Pebble Intermediate"),
        "{chain}"
    );
    let (_, redirect) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "--resolve",
        &format!("{name}:80:{host}"),
        &format!("http://{name}/p?q=1"),
    ]);
    assert_eq!(redirect.trim(), format!("308 https://{name}/p?q=1"));

    // v1 → v2 under HTTPS load.
    let stop = dir.join("stop");
    let load = https_load(&format!("{host}:443"), &name, &root, &stop);
    std::thread::sleep(Duration::from_secs(2));
    let out = app.deploy(&["--image", "v2"]);
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(&stop, "").unwrap();
    let counts: serde_json::Value =
        serde_json::from_slice(&load.wait_with_output().unwrap().stdout).unwrap();
    assert_exit(&out, 0, "v2 under HTTPS load");
    assert_eq!(counts["fresh_fail"], 0, "{counts}");
    assert_eq!(counts["keepalive_fail"], 0, "{counts}");
    assert!(
        counts["fresh_ok"].as_u64().unwrap() > 20 && counts["keepalive_ok"].as_u64().unwrap() > 20,
        "{counts}"
    );
    wait_https(&name, "v2");

    // Another service on the same Caddy, its own hosts and email.
    let other = https("sshtlsb", "ops-b@example.org");
    assert_exit(&other.deploy(&["--image", "v1"]), 0, "second HTTPS service");
    wait_https(&other.host_header(), "v1");
    wait_https(&name, "v2");
    let users = server_docker(
        3,
        &[
            "exec",
            "odysseus-caddy",
            "ls",
            "/data/caddy/acme/198.51.100.1-14000-dir/users",
        ],
    );
    assert!(
        users.contains("ops-a@example.org") && users.contains("ops-b@example.org"),
        "{users}"
    );
    for (svc, email) in [
        (&name, "ops-a@example.org"),
        (&other.host_header(), "ops-b@example.org"),
    ] {
        let meta = server_docker(
            3,
            &[
                "exec",
                "odysseus-caddy",
                "cat",
                &format!("/data/caddy/certificates/198.51.100.1-14000-dir/{svc}/{svc}.json"),
            ],
        );
        let account = server_docker(
            3,
            &[
                "exec",
                "odysseus-caddy",
                "sh",
                "-c",
                &format!("cat /data/caddy/acme/198.51.100.1-14000-dir/users/{email}/*.json"),
            ],
        );
        let account: serde_json::Value = serde_json::from_str(&account).unwrap_or_default();
        let meta: serde_json::Value = serde_json::from_str(&meta).unwrap_or_default();
        assert!(
            account["location"].is_string(),
            "{email}'s account: {account}"
        );
        assert_eq!(
            meta["issuer_data"]["account"], account["location"],
            "{svc}'s certificate was issued to {email}'s own account"
        );
    }

    // Caddy recreated: its volume holds the certificates, so no new order.
    let issued = pebble_issued();
    server_docker(3, &["rm", "-f", "odysseus-caddy"]);
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "deploy with Caddy gone");
    wait_https(&name, "v1");
    wait_https(&other.host_header(), "v1");
    assert_eq!(pebble_issued(), issued, "a recreated Caddy ordered again");

    // A plain-HTTP service on the same Caddy: it answers on :80 while the HTTPS hosts
    // keep redirecting there and serving on :443 (one server on both ports made the
    // HTTPS route answer plain HTTP; one on :443 alone redirected the plain service).
    let plain = FleetApp::new("sshplain", "");
    plain.write_for(&[host], &format!("{BASE}/known_hosts"), "");
    assert_exit(
        &plain.deploy(&["--image", "v2"]),
        0,
        "a plain service beside the HTTPS ones",
    );
    let (status, body) =
        real::http_get_raw(&format!("{host}:80"), "/", &plain.host_header()).unwrap();
    assert_eq!(
        (status, body.trim()),
        (200, "v2"),
        "the plain service over HTTP"
    );
    let (_, redirect) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("Host: {name}"),
        &format!("http://{host}/"),
    ]);
    assert_eq!(redirect.trim(), "308", "the HTTPS host still redirects");
    wait_https(&name, "v1");
    // And the HTTPS service turning ssl off moves to plain HTTP.
    let yaml = std::fs::read_to_string(other.dir.join("deploy.yml")).unwrap();
    let off = yaml.replace("  ssl: true\n", "  ssl: false\n");
    assert_ne!(yaml, off);
    std::fs::write(other.dir.join("deploy.yml"), off).unwrap();
    assert_exit(&other.deploy(&["--image", "v2"]), 0, "ssl turned off");
    let (status, body) =
        real::http_get_raw(&format!("{host}:80"), "/", &other.host_header()).unwrap();
    assert_eq!(
        (status, body.trim()),
        (200, "v2"),
        "served over plain HTTP once ssl is off"
    );
    wait_https(&name, "v1");

    drop(plain);
    drop(other);
    drop(app);
    server_docker(3, &["rm", "-f", "odysseus-caddy"]);
    server_docker(
        3,
        &[
            "volume",
            "rm",
            "-f",
            "odysseus-caddy-config",
            "odysseus-caddy-data",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
