//! Maintenance mode (issue 13 §4) on the real engine and the real Caddy: `odysseus app
//! maintenance` makes Caddy answer the service's requests with 503, a page and
//! `Retry-After` while its containers keep running; `app live` routes to them again.
//! Both take the deploy lock, are journaled, survive a Caddy restart and show in
//! `status`; a deploy in between switches containers underneath the page; another
//! service on the same Caddy is not touched.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/real.rs"]
mod real;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use real::{assert_exit, docker, require_docker, serial, spawn_until, stderr, App, MixedLoad};

fn odysseus(app: &App, args: &[&str]) -> Output {
    Command::new(real::odysseus_bin())
        .args(args)
        .arg("-c")
        .arg(app.config())
        .env_remove("ODYSSEUS_STATE_DIR")
        .output()
        .unwrap()
}

/// One GET through the test Caddy: status, headers (lower-cased names) and body.
fn get_full(app: &App) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", real::HTTP_PORT)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        app.host_header
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}

fn kinds(doc: &serde_json::Value) -> Vec<String> {
    doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn wait_for_caddy(app: &App) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok((status, _)) = app.get("/") {
            if status != 502 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("Caddy did not answer within 30 s of its restart");
}

#[test]
fn maintenance_answers_503_with_the_page_while_the_containers_run_and_live_restores_routing() {
    let _serial = serial();
    require_docker();
    let app = App::new("maint", "odysseus-demo:v1", "");
    let other = App::new("maint-other", "odysseus-demo:v1", "");
    assert_exit(&app.deploy(&[]), 0, "the first deploy");
    assert_exit(&other.deploy(&[]), 0, "the other service's deploy");
    assert_eq!(app.get("/").unwrap().0, 200);

    // Turned on under load: every client gets the app or the page, never an error.
    let load = MixedLoad::start(
        &format!("127.0.0.1:{}", real::HTTP_PORT),
        &app.host_header,
        2,
        Duration::from_secs(120),
    );
    std::thread::sleep(Duration::from_secs(2));
    let changes = real::caddy_config_changes();
    let on = odysseus(
        &app,
        &[
            "app",
            "maintenance",
            "--message",
            "<b>Back</b> at 5 & \"soon\"",
            "--retry-after",
            "120",
        ],
    );
    assert_exit(&on, 0, "app maintenance");
    std::thread::sleep(Duration::from_secs(2));
    let report = load.finish();
    // A file, not a config change: Caddy did not reload, so no keep-alive connection
    // was closed under its clients.
    assert_eq!(
        real::caddy_config_changes(),
        changes,
        "maintenance on reloaded Caddy"
    );
    for (kind, r) in [
        ("fresh", &report.fresh),
        ("keep-alive", &report.keepalive),
        ("long", &report.long),
    ] {
        assert!(
            r.errors.is_empty(),
            "{kind} clients saw errors while maintenance went on: {:?}",
            &r.errors[..r.errors.len().min(5)]
        );
        assert!(
            r.non_2xx.iter().all(|&s| s == 503),
            "{kind} clients saw other statuses than the app's and the page's: {:?}",
            r.non_2xx
        );
    }
    assert!(
        report.fresh.ok > 0 && report.fresh.non_2xx.contains(&503),
        "fresh clients saw the app and then the page: {:?}",
        report.fresh
    );

    let (status, head, body) = get_full(&app);
    assert_eq!(status, 503, "{head}\n{body}");
    assert!(head.contains("retry-after: 120"), "{head}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        body.contains("&lt;b&gt;Back&lt;/b&gt; at 5 &amp; &quot;soon&quot;"),
        "the message, escaped: {body}"
    );
    assert!(!body.contains("<b>"), "{body}");
    // The containers keep running, and the other service on the same Caddy still serves.
    assert_eq!(app.running().len(), 1, "{:?}", app.running());
    assert_eq!(other.get("/").unwrap().0, 200);

    // Journaled: its own kinds, its page, one step per host.
    let doc = app.replay_json();
    let k = kinds(&doc);
    assert_eq!(k[0], "maintenance-started", "{k:?}");
    assert!(k.contains(&"maintenance-page".to_string()), "{k:?}");
    assert!(k.contains(&"deployment-completed".to_string()), "{k:?}");
    let steps: Vec<&serde_json::Value> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "step-started")
        .collect();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0]["step"], "enter-maintenance", "{steps:?}");

    // status says so, in text and in JSON.
    let status_out = odysseus(&app, &["status"]);
    assert_exit(&status_out, 0, "status");
    let text = String::from_utf8_lossy(&status_out.stdout);
    assert!(text.contains("MAINTENANCE"), "{text}");
    let status_json = odysseus(&app, &["status", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&status_json.stdout).unwrap();
    assert_eq!(
        doc["hosts"][0]["maintenance"]["message"],
        "<b>Back</b> at 5 & \"soon\""
    );
    assert_eq!(doc["hosts"][0]["maintenance"]["retry_after_s"], 120);

    // Caddy restarted: it comes back with its saved config, in maintenance.
    docker(&["restart", "odysseus-caddy"]);
    wait_for_caddy(&app);
    assert_eq!(get_full(&app).0, 503, "after Caddy's restart");

    // A deploy in maintenance switches the containers underneath the page.
    app.write_config("odysseus-demo:v2", "");
    assert_exit(&app.deploy(&[]), 0, "a deploy in maintenance");
    assert_eq!(get_full(&app).0, 503, "a deploy keeps the page");
    let running = app.running();
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(running[0].1, "v2", "{running:?}");
    assert_eq!(app.upstreams(), vec![format!("{}:3000", running[0].0)]);

    // Live again: the new version answers, status no longer says maintenance.
    let changes = real::caddy_config_changes();
    assert_exit(&odysseus(&app, &["app", "live"]), 0, "app live");
    assert_eq!(
        real::caddy_config_changes(),
        changes,
        "app live reloaded Caddy"
    );
    let (status, _, body) = get_full(&app);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("v2"), "{body}");
    let text = String::from_utf8_lossy(&odysseus(&app, &["status"]).stdout).into_owned();
    assert!(!text.contains("MAINTENANCE"), "{text}");
    assert_eq!(kinds(&app.replay_json())[0], "live-started");
    // live when already live: done, nothing to change.
    assert_exit(&odysseus(&app, &["app", "live"]), 0, "app live again");
    assert_eq!(get_full(&app).0, 200);

    let history = String::from_utf8_lossy(&odysseus(&app, &["history"]).stdout).into_owned();
    assert!(history.contains("(maintenance)"), "{history}");
    assert!(history.contains("(live)"), "{history}");
    app.remove_containers();
    other.remove_containers();
}

#[test]
fn maintenance_takes_the_lock_refuses_a_service_never_deployed_and_resumes_after_a_kill() {
    let _serial = serial();
    require_docker();
    let app = App::new("maint-lock", "odysseus-demo:v1", "");

    // Never deployed: no route to put in maintenance, refused before anything starts.
    let refused = odysseus(&app, &["app", "maintenance"]);
    assert_exit(&refused, 3, "maintenance before any deploy");
    assert!(
        stderr(&refused).contains("Deploy it there first"),
        "{}",
        stderr(&refused)
    );
    assert!(stderr(&refused).contains("Nothing was changed"));

    assert_exit(&app.deploy(&[]), 0, "the first deploy");

    // A deploy is under way (its drain kept busy by a slow request): maintenance from
    // another state dir (another operator, a CI runner) learns of it from the hosts and is
    // refused with nothing changed; from the same state dir, the journal is in use.
    app.write_config("odysseus-demo:v2", "");
    let slow = real::slow_request(
        format!("127.0.0.1:{}", real::HTTP_PORT),
        app.host_header.clone(),
        6,
    );
    let (mut deploying, _lines) = spawn_until(app.deploy_cmd(&[]), "remove-old-upstream");
    let other_dir = app.dir.join("other-operator");
    let elsewhere = odysseus(
        &app,
        &[
            "app",
            "maintenance",
            "--state-dir",
            other_dir.to_str().unwrap(),
        ],
    );
    let here = odysseus(&app, &["app", "maintenance"]);
    let status = deploying.wait().unwrap();
    let _ = slow.join();
    assert!(status.success(), "the deploy under way");
    assert_exit(
        &elsewhere,
        3,
        "maintenance from elsewhere while a deploy runs",
    );
    assert!(
        stderr(&elsewhere).contains("is unfinished: finish or end it first"),
        "{}",
        stderr(&elsewhere)
    );
    assert_exit(
        &here,
        2,
        "maintenance from the same state dir while a deploy runs",
    );
    assert!(stderr(&here).contains("in use"), "{}", stderr(&here));
    assert_eq!(get_full(&app).0, 200, "the refused runs changed nothing");

    // Killed at once: either nothing was on record yet (nothing changed, nothing to
    // resume) or its deployment was, and a resume ends in maintenance with the page that
    // run recorded (a resume is given no page: it writes the one in the journal).
    let mut cmd = Command::new(real::odysseus_bin());
    cmd.args(["app", "maintenance", "--message", "killed run's page"])
        .arg("-c")
        .arg(app.config())
        .env_remove("ODYSSEUS_STATE_DIR");
    let (mut child, _lines) = spawn_until(cmd, "Putting");
    child.kill().unwrap();
    child.wait().unwrap();
    let resumed = app.deploy(&["--resume"]);
    let said = stderr(&resumed);
    let doc = app.replay_json();
    let recorded = kinds(&doc)[0] == "maintenance-started";
    if recorded {
        assert!(
            resumed.status.code() == Some(0) || said.contains("nothing to resume"),
            "resume: {said}"
        );
        let (status, _, body) = get_full(&app);
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("killed run&#39;s page"), "{body}");
        assert_eq!(app.replay_json()["deployment"]["status"], "completed");
    } else {
        assert_eq!(get_full(&app).0, 200, "nothing was on record: {said}");
    }

    assert_exit(&odysseus(&app, &["app", "live"]), 0, "app live");
    assert_eq!(get_full(&app).0, 200);
    app.remove_containers();
}

/// A Caddy that reads no file placeholders (Debian's 2.6) gets the page as a handler of
/// the route: each toggle is a reload, and it works the same for the user.
#[test]
fn an_older_caddy_is_put_in_maintenance_by_a_route_change() {
    let _serial = serial();
    require_docker();
    let app = App::new("maint-old", "odysseus-demo:v1", "");
    real::ensure_local_caddy_is("odysseus-testbed/caddy:2.6");
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            real::ensure_local_caddy_is(real::CADDY_IMAGE);
        }
    }
    let _restore = Restore;
    let yaml = std::fs::read_to_string(app.config()).unwrap();
    std::fs::write(
        app.config(),
        yaml.replace(real::CADDY_IMAGE, "odysseus-testbed/caddy:2.6"),
    )
    .unwrap();
    assert_exit(&app.deploy(&[]), 0, "deploy on Caddy 2.6");
    assert_exit(
        &odysseus(&app, &["app", "maintenance", "--message", "old {caddy}"]),
        0,
        "maintenance on Caddy 2.6",
    );
    let (status, head, body) = get_full(&app);
    assert_eq!(status, 503, "{body}");
    assert!(head.contains("retry-after: 60"), "{head}");
    assert!(body.contains("old &#123;caddy&#125;"), "{body}");
    let doc: serde_json::Value =
        serde_json::from_slice(&odysseus(&app, &["status", "--json"]).stdout).unwrap();
    assert_eq!(doc["hosts"][0]["maintenance"]["message"], "old {caddy}");
    assert_exit(&odysseus(&app, &["app", "live"]), 0, "live on Caddy 2.6");
    assert_eq!(get_full(&app).0, 200);
    app.remove_containers();
}

fn statuses(app: &fleet::FleetApp) -> Vec<u16> {
    fleet::HOSTS
        .iter()
        .map(|h| {
            real::http_get_raw(&format!("{h}:80"), "/", &app.host_header())
                .map(|(s, _)| s)
                .unwrap_or(0)
        })
        .collect()
}

fn fleet_odysseus(app: &fleet::FleetApp, args: &[&str]) -> Output {
    Command::new(real::odysseus_bin())
        .args(args)
        .arg("-c")
        .arg(app.dir.join("deploy.yml"))
        .output()
        .unwrap()
}

/// On the fake servers over SSH: a host whose Caddy is down halts maintenance there (the
/// others are in it); once Caddy is back, `deploy --resume` finishes it (the service's own
/// containers are not "another deployment's"). A host new to the service, deployed while
/// the others are in maintenance, is named before anything changes; `app maintenance`
/// then puts it in too. `app live` with nothing in maintenance does nothing.
#[test]
fn on_a_fleet_a_halted_maintenance_resumes_and_a_new_host_is_named() {
    let _serial = serial();
    fleet::fleet_up();
    let app = fleet::FleetApp::new("maintfleet", "");
    let key = format!("{}/known_hosts", fleet::BASE);
    app.write_for(&fleet::HOSTS[..2], &key, "");
    real::assert_exit(&app.deploy(&["--image", "v1"]), 0, "v1 on two hosts");
    let idle = fleet_odysseus(&app, &["app", "live"]);
    assert_exit(&idle, 0, "live with nothing in maintenance");
    assert!(stderr(&idle).contains("nothing to do"), "{}", stderr(&idle));

    // Host 2 cannot take the page (a file stands where its directory goes): host 1 goes
    // in, host 2 fails, the run halts.
    let block = "/config/odysseus/maintenance/maintfleet";
    fleet::server_docker(
        2,
        &[
            "exec",
            "odysseus-caddy",
            "sh",
            "-c",
            &format!("rm -rf {block}; mkdir -p /config/odysseus/maintenance; touch {block}"),
        ],
    );
    let halted = fleet_odysseus(&app, &["app", "maintenance", "--message", "fleet page"]);
    let said = stderr(&halted) + &String::from_utf8_lossy(&halted.stdout);
    assert_exit(&halted, 1, "maintenance where one host cannot take it");
    assert!(!said.contains("--abort"), "never rolled back: {said}");
    assert!(said.contains("--resume"), "{said}");
    assert_eq!(statuses(&app)[..2], [503, 200]);
    let status_text =
        String::from_utf8_lossy(&fleet_odysseus(&app, &["status"]).stdout).into_owned();
    assert!(
        status_text.contains("unfinished maintenance"),
        "{status_text}"
    );
    assert!(!status_text.contains("roll back"), "{status_text}");
    fleet::server_docker(2, &["exec", "odysseus-caddy", "rm", "-f", block]);
    let resumed = app.deploy(&["--resume"]);
    assert_exit(&resumed, 0, "resume of the halted maintenance");
    assert_eq!(statuses(&app)[..2], [503, 503]);

    // A third host joins while the two are in maintenance: the deploy names it.
    app.write(&key, "");
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 0, "v2 with a new host");
    assert!(
        stderr(&out).contains("198.51.100.13 will serve maintfleet all the same"),
        "{}",
        stderr(&out)
    );
    assert_eq!(statuses(&app), vec![503, 503, 200]);
    assert_exit(
        &fleet_odysseus(&app, &["app", "maintenance", "--message", "fleet page"]),
        0,
        "maintenance on all three",
    );
    assert_eq!(statuses(&app), vec![503, 503, 503]);
    assert_exit(&fleet_odysseus(&app, &["app", "live"]), 0, "live");
    assert_eq!(statuses(&app), vec![200, 200, 200]);
    assert_eq!(app.versions(), vec!["v2", "v2", "v2"]);
    app.remove_containers();
}
