//! Zero failed requests for every kind of client (issue 10): fresh connections,
//! keep-alive connections sending back to back, and long requests, counted per kind,
//! over many consecutive deploys through a real Caddy. A switch rewrites an upstream slot
//! and never reloads Caddy (a reload closes idle keep-alive connections); the tests check
//! that too, by counting the config changes Caddy was asked for.

#[path = "support/real.rs"]
mod real;

use std::time::Duration;

use real::{
    assert_exit, caddy_config_changes, require_docker, serial, stderr, App, MixedLoad,
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
    let (status, _) =
        real::caddy_admin("PATCH", &upstreams, &format!("[{{\"dial\":\"{serving}:3000\"}}]")).unwrap();
    assert_eq!(status, 200);
    assert_eq!(app.upstreams(), vec![format!("{serving}:3000")]);
    let load = MixedLoad::start(&addr(), &app.host_header, 2, Duration::from_secs(300));
    std::thread::sleep(Duration::from_millis(300));
    assert_exit(&app.deploy(&["--image", "v2"]), 0, "deploy over the old route");
    // The route now names slots; the next deploys change no config at all.
    let (_, listed) = real::caddy_admin("GET", &upstreams, "").unwrap();
    assert!(listed.contains("{file./config/odysseus/upstreams/upgraded/0}"), "{listed}");
    let changes = caddy_config_changes();
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "second deploy");
    assert_exit(&app.deploy(&["--image", "v2"]), 0, "third deploy");
    assert_eq!(caddy_config_changes(), changes);
    let report = load.finish();
    // The move to slots is one config change: fresh and long clients never notice it;
    // a keep-alive client may (that one reload closes idle connections).
    assert_eq!(report.fresh.failures(), 0, "{:?}", report.fresh);
    assert_eq!(report.long.failures(), 0, "{:?}", report.long);
    assert!(report.keepalive.failures() <= 2, "{:?}", report.keepalive);
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
    std::fs::write(app.config(), old.replace(real::CADDY_IMAGE, "odysseus-testbed/caddy:2.6")).unwrap();
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            real::ensure_local_caddy_is(real::CADDY_IMAGE);
        }
    }
    let _restore = Restore;
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy on Caddy 2.6");
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
}
