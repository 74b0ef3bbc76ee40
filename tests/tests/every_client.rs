//! Zero failed requests for every kind of client (issue 10): fresh connections,
//! keep-alive connections sending back to back, and long requests, counted per kind,
//! over many consecutive deploys through a real Caddy. A switch rewrites an upstream slot
//! and never reloads Caddy (a reload closes idle keep-alive connections); the tests check
//! that too, by counting the config changes Caddy was asked for.

#[path = "support/real.rs"]
mod real;

use std::time::Duration;

use real::{
    assert_exit, caddy_config_changes, require_docker, serial, stderr, App, MixedLoad, SpawnOutput,
    HTTP_PORT,
};

fn addr() -> String {
    format!("127.0.0.1:{HTTP_PORT}")
}

#[test]
fn fifty_deploys_under_fresh_keepalive_and_long_clients_fail_no_request_and_never_reload_caddy() {
    let _serial = serial();
    require_docker();
    let app = App::new("everyclient", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let changes_before = caddy_config_changes();
    let load = MixedLoad::start(&addr(), &app.host_header, 2, Duration::from_secs(900));
    std::thread::sleep(Duration::from_millis(500));
    for round in 0..50 {
        let version = if round % 2 == 0 { "v2" } else { "v1" };
        let out = app.deploy(&["--image", version]);
        assert_exit(&out, 0, &format!("deploy {} of 50 ({version})", round + 1));
    }
    std::thread::sleep(Duration::from_millis(500));
    let report = load.finish();
    eprintln!(
        "50 deploys: fresh {} ok, keep-alive {} ok ({} closes announced), long {} ok; failures {}/{}/{}",
        report.fresh.ok,
        report.keepalive.ok,
        report.keepalive.announced_closes,
        report.long.ok,
        report.fresh.failures(),
        report.keepalive.failures(),
        report.long.failures()
    );
    report.assert_clean("50 deploys", 100);
    assert!(
        report.versions.contains(&"v1".to_string()) && report.versions.contains(&"v2".to_string()),
        "the load saw {:?}",
        report.versions
    );
    assert_eq!(
        caddy_config_changes(),
        changes_before,
        "a deploy that changes only containers must not change Caddy's config"
    );
    let (status, body) = app.get("/").unwrap();
    assert_eq!((status, body.trim()), (200, "v1"));
}

#[test]
fn a_route_written_by_an_earlier_odysseus_moves_to_slots_and_keeps_serving() {
    let _serial = serial();
    require_docker();
    let app = App::new("upgraded", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    // What the odysseus before slots wrote: the route lists the container itself.
    let serving = app.running()[0].0.clone();
    let upstreams = format!("/id/odysseus-proxy-{}/upstreams", app.service);
    let (status, _) = real::caddy_admin(
        "PATCH",
        &upstreams,
        &format!("[{{\"dial\":\"{serving}:3000\"}}]"),
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(app.upstreams(), vec![format!("{serving}:3000")]);
    let load = MixedLoad::start(&addr(), &app.host_header, 2, Duration::from_secs(300));
    std::thread::sleep(Duration::from_millis(300));
    assert_exit(
        &app.deploy(&["--image", "v2"]),
        0,
        "deploy over the old route",
    );
    // The route now names slots; the next deploys change no config at all.
    let (_, listed) = real::caddy_admin("GET", &upstreams, "").unwrap();
    assert!(
        listed.contains("{file./config/odysseus/upstreams/upgraded/0}"),
        "{listed}"
    );
    let changes = caddy_config_changes();
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "second deploy");
    assert_exit(&app.deploy(&["--image", "v2"]), 0, "third deploy");
    assert_eq!(caddy_config_changes(), changes);
    let report = load.finish();
    // The move to slots is one config change, a Caddy reload: long requests run through
    // it; a reload may close about one fresh connection without an answer (measured: 36
    // in 40 reloads, README) and the idle keep-alive ones. Only that one reload, never
    // the deploys after it: those changed no config (checked above).
    assert_eq!(report.long.failures(), 0, "{:?}", report.long);
    assert!(report.fresh.failures() <= 3, "{:?}", report.fresh);
    assert!(report.keepalive.failures() <= 3, "{:?}", report.keepalive);
    let running = app.running();
    assert_eq!(app.upstreams(), vec![format!("{}:3000", running[0].0)]);
}

#[test]
fn an_older_caddy_still_deploys_by_reloading_and_says_what_keep_alive_clients_may_see() {
    let _serial = serial();
    require_docker();
    let app = App::new("oldcaddy", "odysseus-demo", "");
    // The Debian Caddy 2.6 image reads no file placeholders.
    real::ensure_local_caddy_is("odysseus-testbed/caddy:2.6");
    let old = std::fs::read_to_string(app.config()).unwrap();
    std::fs::write(
        app.config(),
        old.replace(real::CADDY_IMAGE, "odysseus-testbed/caddy:2.6"),
    )
    .unwrap();
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            real::ensure_local_caddy_is(real::CADDY_IMAGE);
        }
    }
    let _restore = Restore;
    assert_exit(
        &app.deploy(&["--image", "v1"]),
        0,
        "first deploy on Caddy 2.6",
    );
    let load = MixedLoad::start(&addr(), &app.host_header, 1, Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(300));
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 0, "deploy on Caddy 2.6");
    let report = load.finish();
    assert!(
        stderr(&out).contains("reloads Caddy") && stderr(&out).contains("2.8 or later"),
        "{}",
        stderr(&out)
    );
    assert_eq!(report.fresh.failures(), 0, "{:?}", report.fresh);
    assert_eq!(report.long.failures(), 0, "{:?}", report.long);
    // The route lists the container itself.
    let running = app.running();
    assert_eq!(app.upstreams(), vec![format!("{}:3000", running[0].0)]);
    let (status, body) = app.get("/").unwrap();
    assert_eq!((status, body.trim()), (200, "v2"));
    // deploy.yml now names a current Caddy: the running one is kept, and odysseus says
    // how to switch.
    let text = std::fs::read_to_string(app.config()).unwrap();
    std::fs::write(
        app.config(),
        text.replace("odysseus-testbed/caddy:2.6", real::CADDY_IMAGE),
    )
    .unwrap();
    let out = app.deploy(&["--image", "v1"]);
    assert_exit(&out, 0, "deploy with another proxy.image");
    assert!(
        stderr(&out).contains("odysseus keeps the running Caddy")
            && stderr(&out).contains("docker rm -f odysseus-caddy"),
        "{}",
        stderr(&out)
    );
}

/// Two services on one Caddy deployed at the same time (their locks are per service):
/// neither gives up slots because of the other, no request of either fails, and Caddy's
/// config never changes. (Found by an attack: a probe file name shared between deployers
/// made one of them fall back to reloading Caddy, failing requests of both.)
#[test]
fn two_services_deployed_at_once_on_one_caddy_fail_no_request_and_never_reload_it() {
    let _serial = serial();
    require_docker();
    let a = App::new("twina", "odysseus-demo", "");
    let b = App::new("twinb", "odysseus-demo", "");
    assert_exit(&a.deploy(&["--image", "v1"]), 0, "first deploy of a");
    assert_exit(&b.deploy(&["--image", "v1"]), 0, "first deploy of b");
    let changes = caddy_config_changes();
    let load_a = MixedLoad::start(&addr(), &a.host_header, 1, Duration::from_secs(300));
    let load_b = MixedLoad::start(&addr(), &b.host_header, 1, Duration::from_secs(300));
    std::thread::sleep(Duration::from_millis(300));
    for round in 0..6 {
        let version = if round % 2 == 0 { "v2" } else { "v1" };
        let ca = a.deploy_cmd(&["--image", version]).spawn_output();
        let cb = b.deploy_cmd(&["--image", version]).spawn_output();
        for (who, out) in [("a", ca.join().unwrap()), ("b", cb.join().unwrap())] {
            assert_exit(&out, 0, &format!("round {round}: deploy of {who}"));
            assert!(
                !stderr(&out).contains("reloads Caddy"),
                "round {round}: {who} gave up slots: {}",
                stderr(&out)
            );
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    load_a.finish().assert_clean("service a", 10);
    load_b.finish().assert_clean("service b", 10);
    assert_eq!(caddy_config_changes(), changes, "Caddy's config changed");
}

/// A Caddy image without `nc` cannot be reached (its admin API is on its own loopback):
/// the deploy says so and what to use, instead of a garbled HTTP error.
#[test]
fn a_caddy_image_without_nc_is_named_as_the_cause() {
    let _serial = serial();
    require_docker();
    let work = std::env::temp_dir().join(format!("odysseus-nonc-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("Dockerfile"),
        format!("FROM {}\nRUN rm /bin/nc\n", real::CADDY_IMAGE),
    )
    .unwrap();
    let built = std::process::Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", "odysseus-test/caddy-without-nc:1"])
        .arg(&work)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let _ = std::fs::remove_dir_all(&work);
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            real::ensure_local_caddy_is(real::CADDY_IMAGE);
        }
    }
    let _restore = Restore;
    real::ensure_local_caddy_is("odysseus-test/caddy-without-nc:1");
    let app = App::new("nonc", "odysseus-demo", "");
    real::ensure_local_caddy_is("odysseus-test/caddy-without-nc:1");
    let text = std::fs::read_to_string(app.config()).unwrap();
    std::fs::write(
        app.config(),
        text.replace(real::CADDY_IMAGE, "odysseus-test/caddy-without-nc:1"),
    )
    .unwrap();
    let out = app.deploy(&["--image", "v1"]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("has no `nc`") && err.contains("caddy:2-alpine"),
        "{err}"
    );
    assert!(!err.contains("invalid HTTP version"), "{err}");
}
