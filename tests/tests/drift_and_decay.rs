//! The promise across releases that change things, and containers that decay: real
//! Docker, real Caddy, the built binary, under load.
//!
//! - a release that moves the app to another port: the old container is unrouted,
//!   drained on its own port and stopped only then, and an abort returns to it;
//! - a release whose health check path changes: the route's active health check is
//!   brought up to date in the same change that routes the new container;
//! - a new container that dies after it was routed, while the deployer was down: the
//!   resumed deploy never unroutes or stops the old container.

#[path = "support/real.rs"]
mod real;

use std::time::Duration;

use real::{assert_exit, docker, require_docker, serial, stderr, App, Load, HTTP_PORT};

/// deploy.yml for the test bed's "other" app, which listens on $PORT.
fn write_other(app: &App, version_image: &str, port: u16, health_path: &str) {
    let yaml = format!(
        "service: {service}
image: {version_image}
servers:
  web:
    hosts: [local]
    deploy:
      drain_timeout: 10
      boot_timeout: 15
      stop_timeout: 10
env:
  clear:
    PORT: \"{port}\"
proxy:
  app_port: {port}
  hosts: [{host}]
  ssl: false
  image: odysseus-testbed/caddy:2.11.7
  http_port: {HTTP_PORT}
  healthcheck:
    path: {health_path}
    interval: 1
",
        service = app.service,
        host = app.host_header,
    );
    std::fs::write(app.config(), yaml).unwrap();
}

/// The service's route as Caddy holds it.
fn route(app: &App) -> serde_json::Value {
    let (_, body) = real::caddy_admin("GET", &format!("/id/odysseus-route-{}", app.service), "")
        .unwrap_or_else(|e| panic!("route: {e}"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("route JSON: {e}: {body}"))
}

fn assert_no_failures(report: &real::LoadReport, what: &str) {
    assert_eq!(
        report.failures(),
        0,
        "{what}: non-2xx {:?}, errors {:?}",
        report.non_2xx,
        &report.errors[..report.errors.len().min(5)]
    );
    assert!(
        report.ok > 20,
        "{what}: only {} requests got through",
        report.ok
    );
}

/// Across a deploy that changes the route's settings (one Caddy reload): no request
/// fails but the few fresh connections Caddy's outgoing config accepted in its last
/// instant, closed without an answer (measured about one per reload, README), and never
/// more than `max`.
fn assert_only_reload_losses(report: &real::LoadReport, max: usize, what: &str) {
    let closed = report
        .errors
        .iter()
        .filter(|e| e.contains("no status line in \"\""))
        .count();
    assert!(
        report.non_2xx.is_empty() && closed == report.errors.len() && closed <= max,
        "{what}: non-2xx {:?}, errors {:?}",
        report.non_2xx,
        &report.errors[..report.errors.len().min(5)]
    );
    assert!(
        report.ok > 20,
        "{what}: only {} requests got through",
        report.ok
    );
}

fn slow(app: &App, secs: u32) -> std::thread::JoinHandle<Result<(u16, String), String>> {
    real::slow_request(
        format!("127.0.0.1:{HTTP_PORT}"),
        app.host_header.clone(),
        secs,
    )
}

#[test]
fn a_release_on_another_app_port_drains_the_old_container_on_its_own_port() {
    let _serial = serial();
    require_docker();
    let app = App::new("portmove", "odysseus-other", "");
    write_other(&app, "odysseus-other", 3000, "/cgi-bin/healthz");
    assert_exit(&app.deploy(&["--image", "1"]), 0, "v1 on port 3000");

    let load = Load::start(&app.host_header, 3, 20_000, Duration::from_secs(90));
    let in_flight = slow(&app, 3);
    write_other(&app, "odysseus-other", 3001, "/cgi-bin/healthz");
    let out = app.deploy(&["--image", "2"]);
    assert_exit(&out, 0, "v2 on port 3001");
    let (status, body) = in_flight
        .join()
        .unwrap()
        .expect("the slow request got an answer");
    assert_eq!(status, 200, "the request in flight on v1: {body}");
    assert!(body.contains("other-1"), "served by v1: {body}");
    assert_no_failures(&load.finish(), "deploy across a port change");

    // The old container was unrouted (matched by name, whatever the port), drained on
    // its own port (the slow request held it), and only then stopped.
    let err = stderr(&out);
    assert!(err.contains("remove-old-upstream ok"), "{err}");
    let running = app.running();
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(app.upstreams(), vec![format!("{}:3001", running[0].0)]);
    let (status, body) = app.get("/").unwrap();
    assert_eq!((status, body.trim()), (200, "other-2"));
}

#[test]
fn an_abort_across_a_port_change_returns_to_the_old_container_on_its_old_port() {
    let _serial = serial();
    require_docker();
    let app = App::new("portabort", "odysseus-other", "");
    write_other(&app, "odysseus-other", 3000, "/cgi-bin/healthz");
    assert_exit(&app.deploy(&["--image", "1"]), 0, "v1 on port 3000");
    let load = Load::start(&app.host_header, 3, 30_000, Duration::from_secs(150));
    // Kill the deployer after each of these steps, then abort: the undo must restart,
    // health-check and route the old container by what it was deployed with.
    for marker in ["add-upstream ok", "remove-old-upstream ok", "stop-old ok"] {
        write_other(&app, "odysseus-other", 3001, "/cgi-bin/healthz");
        let (mut child, lines) = real::spawn_until(app.deploy_cmd(&["--image", "2"]), marker);
        drop(lines);
        let _ = child.kill();
        let _ = child.wait();
        let out = app.deploy(&["--abort"]);
        assert_exit(&out, 0, &format!("--abort after {marker}"));
        let running = app.running();
        assert_eq!(running.len(), 1, "after {marker}: {running:?}");
        assert_eq!(running[0].1, "1", "after {marker}: {running:?}");
        assert_eq!(
            app.upstreams(),
            vec![format!("{}:3000", running[0].0)],
            "after {marker}"
        );
        let (status, body) = app.get("/").unwrap();
        assert_eq!((status, body.trim()), (200, "other-1"), "after {marker}");
    }
    assert_no_failures(&load.finish(), "kills and aborts across a port change");
}

/// The route's reverse proxy (after the maintenance switch a route on Caddy 2.8+ carries).
fn proxy_of(route: &serde_json::Value) -> &serde_json::Value {
    route["handle"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["handler"] == "reverse_proxy"))
        .unwrap_or(&serde_json::Value::Null)
}

#[test]
fn a_release_with_another_health_path_updates_the_route_before_traffic_moves() {
    let _serial = serial();
    require_docker();
    // v1 is the demo app: it answers /health, not /cgi-bin/healthz.
    let app = App::new("pathmove", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "v1 with /health");
    let before = route(&app);
    assert_eq!(
        proxy_of(&before)["health_checks"]["active"]["uri"],
        "/health",
        "{before}"
    );

    // v2 is the other app on the same port: it answers /cgi-bin/healthz, not /health.
    let load = Load::start(&app.host_header, 3, 20_000, Duration::from_secs(90));
    write_other(&app, "odysseus-other", 3000, "/cgi-bin/healthz");
    let out = app.deploy(&["--image", "2"]);
    assert_exit(&out, 0, "v2 with /cgi-bin/healthz");
    std::thread::sleep(Duration::from_secs(3)); // several of Caddy's health checks
    for i in 0..20 {
        let (status, body) = app.get("/").unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!((status, body.trim()), (200, "other-2"), "request {i}");
    }
    assert_only_reload_losses(&load.finish(), 3, "deploy across a health path change");
    let after = route(&app);
    assert_eq!(
        proxy_of(&after)["health_checks"]["active"]["uri"],
        "/cgi-bin/healthz",
        "{after}"
    );
    // `status` shows the route as odysseus wrote it.
    let status = std::process::Command::new(real::odysseus_bin())
        .args(["status", "-c"])
        .arg(app.config())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains(&app.running()[0].0), "{text}");
    assert!(
        text.contains("caddy health check: GET /cgi-bin/healthz"),
        "{text}"
    );
}

#[test]
fn a_new_container_that_dies_while_the_deployer_is_down_never_costs_the_old_one_its_traffic() {
    let _serial = serial();
    require_docker();
    let app = App::new("decay", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "v1");
    let old = app.running()[0].0.clone();
    let load = Load::start(&app.host_header, 3, 20_000, Duration::from_secs(120));
    let (mut child, lines) =
        real::spawn_until(app.deploy_cmd(&["--image", "v2"]), "add-upstream ok");
    drop(lines);
    let _ = child.kill(); // SIGKILL: the journal says add-upstream succeeded
    let _ = child.wait();
    assert_no_failures(&load.finish(), "until the deployer was killed");
    let new = app
        .running()
        .into_iter()
        .find(|(_, v)| v == "v2")
        .expect("the new container runs")
        .0;
    // It dies; nobody tells Caddy. (Requests it was serving at that instant fail with
    // it: that is the crash, not the deploy, so the load counts from just after.)
    docker(&["rm", "-f", &new]);
    let load = Load::start(&app.host_header, 3, 20_000, Duration::from_secs(120));
    let out = app.deploy(&["--resume"]);
    let err = stderr(&out);
    assert_exit(&out, 1, "--resume with the new container gone");
    assert!(
        err.contains("is not routed and healthy now: not unrouting the old containers"),
        "{err}"
    );
    // The old container never stopped serving, and serves alone.
    let running = app.running();
    assert_eq!(running, vec![(old.clone(), "v1".to_string())]);
    assert_eq!(app.upstreams(), vec![format!("{old}:3000")]);
    assert_no_failures(&load.finish(), "resume after the new container died");
}

/// `odysseus deploy` with a state dir of its own: another machine's journal.
fn deploy_from(app: &App, state_dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(real::odysseus_bin());
    cmd.arg("--state-dir")
        .arg(state_dir)
        .arg("deploy")
        .arg("-c")
        .arg(app.config())
        .args(args);
    cmd.env_remove("ODYSSEUS_STATE_DIR");
    cmd
}

#[test]
fn a_deploy_from_another_journal_is_refused_while_one_is_unfinished_on_the_host() {
    let _serial = serial();
    require_docker();
    let app = App::new("twojournals", "odysseus-demo", "");
    let other = app.dir.join("other-state");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "v1 from journal A");
    let load = Load::start(&app.host_header, 3, 20_000, Duration::from_secs(120));

    // A is killed half-way: v1 and v2 both routed.
    let (mut child, lines) =
        real::spawn_until(app.deploy_cmd(&["--image", "v2"]), "add-upstream ok");
    drop(lines);
    let _ = child.kill();
    let _ = child.wait();

    // B, with a state dir of its own, must not take v2 for an old container to stop:
    // it reads A's unfinished deployment from the host's journal and refuses.
    let out = deploy_from(&app, &other, &["--image", "v3"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_exit(&out, 3, "deploy from journal B");
    assert!(
        err.contains("is unfinished") && err.contains("--resume") && err.contains("--abandon"),
        "{err}"
    );
    let mut versions: Vec<String> = app.running().into_iter().map(|(_, v)| v).collect();
    versions.sort();
    assert_eq!(versions, vec!["v1", "v2"], "B changed nothing");

    // A CI runner's fresh checkout: the same machine and path, the state dir wiped: the
    // host's journal says the same.
    let state = app.dir.join(".odysseus");
    let saved = app.dir.join("odysseus-saved");
    std::fs::rename(&state, &saved).unwrap();
    let out = app.deploy(&["--image", "v3"]);
    assert_exit(&out, 3, "deploy from a wiped journal at the same path");
    assert!(stderr(&out).contains("is unfinished"), "{}", stderr(&out));
    // And with the host's copies gone too (an older odysseus, a wiped /var/lib): the
    // mark on the host still refuses.
    let copies = std::path::PathBuf::from(format!(
        "{}/journal/{}",
        odysseus_executors::host_lock::JOURNAL_ROOT,
        app.service
    ));
    let copies_saved = app.dir.join("copies-saved");
    let _ = std::fs::remove_dir_all(app.dir.join(".odysseus"));
    std::process::Command::new("cp")
        .arg("-a")
        .arg(&copies)
        .arg(&copies_saved)
        .status()
        .unwrap();
    std::fs::remove_dir_all(&copies).unwrap();
    let out = app.deploy(&["--image", "v3"]);
    assert_exit(&out, 3, "deploy with no journal anywhere but the mark");
    assert!(
        stderr(&out).contains("in the middle of deployment")
            && stderr(&out).contains("lock release"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&copies);
    std::process::Command::new("cp")
        .arg("-a")
        .arg(&copies_saved)
        .arg(&copies)
        .status()
        .unwrap();
    let _ = std::fs::remove_dir_all(&state);
    std::fs::rename(&saved, &state).unwrap();

    // A finishes; then B may deploy.
    assert_exit(&app.deploy(&["--resume"]), 0, "A resumes");
    assert_exit(
        &deploy_from(&app, &other, &["--image", "v3"])
            .output()
            .unwrap(),
        0,
        "B deploys once A is done",
    );
    let running = app.running();
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(running[0].1, "v3");
    assert_no_failures(&load.finish(), "two journals");
}

#[test]
fn a_resume_after_another_deployment_changed_the_host_stops_with_a_report() {
    let _serial = serial();
    require_docker();
    let app = App::new("foreign", "odysseus-demo", "");
    let other = app.dir.join("other-state");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "v1 from journal A");
    let (mut child, lines) =
        real::spawn_until(app.deploy_cmd(&["--image", "v2"]), "await-healthy ok");
    drop(lines);
    let _ = child.kill();
    let _ = child.wait();
    // Someone decides A's journal is lost — the host's copies removed too, as an older
    // odysseus or a wiped /var/lib would leave it: `lock release` clears the mark, B
    // deploys v3 and stops what it finds (v1 and A's v2) as old containers.
    let _ = std::fs::remove_dir_all(format!(
        "{}/journal/{}",
        odysseus_executors::host_lock::JOURNAL_ROOT,
        app.service
    ));
    let release = std::process::Command::new(real::odysseus_bin())
        .arg("--state-dir")
        .arg(&other)
        .args(["lock", "release", "-c"])
        .arg(app.config())
        .output()
        .unwrap();
    assert_exit(&release, 0, "lock release from B");
    assert!(
        String::from_utf8_lossy(&release.stdout).contains("cleared"),
        "{}",
        String::from_utf8_lossy(&release.stdout)
    );
    assert_exit(
        &deploy_from(&app, &other, &["--image", "v3"])
            .output()
            .unwrap(),
        0,
        "B deploys v3",
    );
    // A comes back: resuming would route v2 beside v3. It stops instead, changing nothing.
    let out = app.deploy(&["--resume"]);
    let err = stderr(&out);
    assert_exit(&out, 3, "A resumes over B's deployment");
    // (It learns from the host's journal that B's deployment ran since, and that no host
    // holds its own any more.)
    assert!(
        (err.contains("the hosts changed since deployment") || err.contains("ran since"))
            && err.contains("--abandon"),
        "{err}"
    );
    let running = app.running();
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(running[0].1, "v3");
    // A ends its deployment without touching anything.
    let out = app.deploy(&["--abandon", "B deployed v3 meanwhile"]);
    assert_exit(&out, 0, "--abandon");
    assert!(stderr(&out).contains("(v3)"), "{}", stderr(&out));
    let history = std::process::Command::new(real::odysseus_bin())
        .args(["history", "--json", "-c"])
        .arg(app.config())
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&history.stdout).unwrap();
    let statuses: Vec<&str> = rows.iter().filter_map(|r| r["status"].as_str()).collect();
    assert!(
        statuses.contains(&"abandoned") && statuses.contains(&"completed"),
        "{statuses:?}"
    );
    assert_eq!(app.running().len(), 1);
}

#[test]
fn a_fixed_image_supersedes_a_halted_deployment_that_no_host_serves() {
    let _serial = serial();
    require_docker();
    let app = App::new("supersede", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "v1");
    let load = Load::start(&app.host_header, 2, 10_000, Duration::from_secs(90));
    // v2 of a broken image: halted, nothing switched.
    app.write_config("odysseus-bad", "");
    let out = app.deploy(&["--image", "latest"]);
    assert_exit(&out, 1, "the bad image halts");
    // The fixed image deploys at once, recorded in both deployments.
    app.write_config("odysseus-demo", "");
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 0, "the fixed image");
    assert!(stderr(&out).contains("superseded"), "{}", stderr(&out));
    let running = app.running();
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(running[0].1, "v2");
    let history = std::process::Command::new(real::odysseus_bin())
        .args(["history", "--json", "-c"])
        .arg(app.config())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&history.stdout);
    assert!(text.contains("\"superseded\""), "{text}");
    assert_no_failures(&load.finish(), "halted then superseded");
}

#[test]
fn a_tag_moved_during_the_deployment_is_refused_instead_of_mixing_images() {
    let _serial = serial();
    require_docker();
    let app = App::new("tagmove", "odysseus-demo", "");
    // Two roles, so the second one's container is created after the tag moved.
    let yaml = format!(
        "service: tagmove
image: odysseus-demo
servers:
  web:
    hosts: [local]
  jobs:
    hosts: [local]
    cmd: /bin/serve
proxy:
  app_port: 3000
  hosts: [{host}]
  ssl: false
  image: odysseus-testbed/caddy:2.11.7
  http_port: {HTTP_PORT}
  healthcheck:
    path: /health
    interval: 1
",
        host = app.host_header
    );
    std::fs::write(app.config(), yaml).unwrap();
    docker(&["tag", "odysseus-demo:v1", "odysseus-demo:tagmove-1"]);
    docker(&["tag", "odysseus-demo:v2", "odysseus-demo:tagmove-2"]);
    struct Untag;
    impl Drop for Untag {
        fn drop(&mut self) {
            let _ = std::process::Command::new("docker")
                .args(["rmi", "odysseus-demo:tagmove-1", "odysseus-demo:tagmove-2"])
                .output();
        }
    }
    let _untag = Untag;
    assert_exit(&app.deploy(&["--image", "tagmove-1"]), 0, "first deploy");
    let (mut child, lines) = real::spawn_until(
        app.deploy_cmd(&["--image", "tagmove-2"]),
        "[web@local] clean-stale-upstreams ok",
    );
    drop(lines);
    let _ = child.kill();
    let _ = child.wait();
    // Someone pushes another image under the same tag before the jobs role is created.
    docker(&["tag", "odysseus-demo:v3", "odysseus-demo:tagmove-2"]);
    let out = app.deploy(&["--resume"]);
    let err = stderr(&out);
    assert_exit(&out, 1, "--resume after the tag moved");
    assert!(err.contains("the tag moved during the deployment"), "{err}");
    // No container of the moved tag was created: the jobs role still runs the old one.
    let jobs: Vec<String> = app
        .all_containers()
        .into_iter()
        .filter(|c| c.starts_with("tagmove-jobs"))
        .collect();
    for c in &jobs {
        let image = docker(&["inspect", "-f", "{{.Image}}", c]);
        let v3 = docker(&["image", "inspect", "-f", "{{.Id}}", "odysseus-demo:v3"]);
        assert_ne!(
            image.trim(),
            v3.trim(),
            "{c} was created from the moved tag"
        );
    }
    assert!(
        app.running()
            .iter()
            .any(|(n, v)| n.starts_with("tagmove-jobs") && v == "tagmove-1"),
        "{:?}",
        app.running()
    );
}

/// Two services on one Caddy: when one stops naming hosts (deploy.yml changed between
/// releases), its route moves behind the other's instead of swallowing its requests;
/// a second service for every host is refused instead of never being reached.
#[test]
fn a_route_that_stops_naming_hosts_moves_behind_the_others() {
    let _serial = serial();
    require_docker();
    let first = App::new("routeone", "odysseus-demo", "");
    let second = App::new("routetwo", "odysseus-demo", "");
    assert_exit(&first.deploy(&["--image", "v1"]), 0, "first service");
    assert_exit(&second.deploy(&["--image", "v2"]), 0, "second service");
    let any_host = |app: &App| {
        let text = std::fs::read_to_string(app.config()).unwrap();
        let text = text.replace(&format!("  hosts: [{}]\n", app.host_header), "");
        std::fs::write(app.config(), text).unwrap();
    };
    any_host(&first);
    assert_exit(
        &first.deploy(&["--image", "v3"]),
        0,
        "the first for every host",
    );
    let (status, body) = second.get("/").unwrap();
    assert_eq!(
        (status, body.trim()),
        (200, "v2"),
        "the second keeps its requests"
    );
    let (status, body) =
        real::http_get_raw(&format!("127.0.0.1:{HTTP_PORT}"), "/", "elsewhere.test").unwrap();
    assert_eq!(
        (status, body.trim()),
        (200, "v3"),
        "any other host reaches the first"
    );

    let third = App::new("routethree", "odysseus-demo", "");
    any_host(&third);
    let out = third.deploy(&["--image", "v1"]);
    assert_exit(&out, 1, "a second service for every host");
    assert!(
        stderr(&out).contains("routeone already answers every host"),
        "{}",
        stderr(&out)
    );
    let (status, body) = second.get("/").unwrap();
    assert_eq!((status, body.trim()), (200, "v2"));
}

/// The new container dies while the old one drains: the drain gives up at once (it
/// checks the new one between seconds) and the old one is routed again, instead of
/// leaving only a dead upstream for the whole drain.
#[test]
fn a_new_container_dying_during_the_drain_brings_the_old_one_back_at_once() {
    let _serial = serial();
    require_docker();
    let app = App::new("drainwatch", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "v1");
    let old = app.running()[0].0.clone();
    let in_flight = slow(&app, 12);
    let (mut child, lines) =
        real::spawn_until(app.deploy_cmd(&["--image", "v2"]), "remove-old-upstream ok");
    let new = app
        .running()
        .into_iter()
        .find(|(_, v)| v == "v2")
        .expect("the new container runs")
        .0;
    docker(&["stop", "-t", "0", &new]);
    let stopped = std::time::Instant::now();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let all = rest.join("\n");
    assert_eq!(status.code(), Some(1), "{all}");
    assert!(
        all.contains("not waiting for the old containers to drain"),
        "{all}"
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(8),
        "the old container was brought back {:?} after the new one died: {all}",
        stopped.elapsed()
    );
    assert_eq!(app.running(), vec![(old.clone(), "v1".to_string())]);
    assert_eq!(app.upstreams(), vec![format!("{old}:3000")]);
    let (status, body) = in_flight
        .join()
        .unwrap()
        .expect("the slow request got an answer");
    assert_eq!(status, 200, "the request in flight on v1: {body}");
    assert!(body.contains("v1"), "served by v1: {body}");
}
