//! Release commands (issue 13 §2) on the real engine: `release_command` runs once per
//! deployment, in a one-off container of the new image with the role's env and volumes,
//! before any host switches. The deployer SIGKILLed at instants across the release (before
//! it starts, while it runs, after it exits) and resumed: exactly one run per deployment,
//! and no failed request meanwhile. A failing release switches nothing and says why.

#[path = "support/real.rs"]
mod real;

use std::process::{Command, Stdio};
use std::time::Duration;

use real::{assert_exit, require_docker, serial, stderr, App, MixedLoad, HTTP_PORT};

/// The app's config with a host directory on /data (where the release writes) and
/// `release_command`.
fn with_release(app: &App, data: &std::path::Path, command: &str) {
    let yaml = std::fs::read_to_string(app.config()).unwrap();
    let yaml = match yaml.find("release_command:") {
        Some(at) => yaml[..at].to_string(),
        None => yaml.replacen(
            "    hosts: [local]\n",
            &format!(
                "    hosts: [local]\n    volumes: [\"{}:/data\"]\n",
                data.display()
            ),
            1,
        ),
    };
    std::fs::write(app.config(), format!("{yaml}release_command: {command}\n")).unwrap();
}

/// The release containers of a service that exist now (running or not).
fn release_containers(service: &str) -> Vec<String> {
    real::docker(&[
        "ps",
        "-a",
        "--filter",
        "label=odysseus.release",
        "--format",
        "{{.Names}}",
    ])
    .lines()
    .filter(|n| n.starts_with(&format!("{service}-release-")))
    .map(str::to_string)
    .collect()
}

fn runs(data: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(data.join("releases.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_release_command_runs_exactly_once_per_deployment_whenever_the_deployer_dies() {
    let _serial = serial();
    require_docker();
    let app = App::new(
        "release",
        "odysseus-demo",
        "env:\n  clear:\n    STAGE: production\n",
    );
    let data = app.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Takes a moment, so a kill can land while it runs; says which deployment's image ran
    // it (the page it serves) and with which env.
    with_release(
        &app,
        &data,
        "\"sleep 1; echo $(cat /www/index.html)-$STAGE >> /data/releases.log\"",
    );
    let dry = app.deploy(&["--image", "v1", "--dry-run"]);
    assert_exit(&dry, 0, "dry run");
    assert!(
        String::from_utf8_lossy(&dry.stdout)
            .contains("then runs the release command `/bin/sh -c sleep 1;"),
        "{}",
        String::from_utf8_lossy(&dry.stdout)
    );
    assert!(runs(&data).is_empty(), "a dry run runs nothing");
    let out = app.deploy(&["--image", "v1"]);
    assert_exit(&out, 0, "first deploy with a release");
    assert_eq!(runs(&data), ["v1-production"]);
    assert!(
        stderr(&out).contains("Release command on local"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        release_containers("release"),
        Vec::<String>::new(),
        "the release container is removed"
    );

    let load = MixedLoad::start(
        &format!("127.0.0.1:{HTTP_PORT}"),
        &app.host_header,
        1,
        Duration::from_secs(180),
    );
    let mut deployed = 1;
    for (round, kill_after_ms) in [150u64, 600, 1_100, 1_600, 2_400, 3_500]
        .into_iter()
        .enumerate()
    {
        let version = if round % 2 == 0 { "v2" } else { "v1" };
        let mut child = app
            .deploy_cmd(&["--image", version])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        let _ = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let _ = child.wait();
        // What the operator runs next: the resume (or, when nothing was journaled yet,
        // the deploy again, which resumes a started one too).
        let next = app.deploy(&["--image", version]);
        assert_exit(
            &next,
            0,
            &format!("round {round}: deploy {version} after a kill at {kill_after_ms} ms"),
        );
        deployed += 1;
        let lines = runs(&data);
        assert_eq!(
            lines.len(),
            deployed,
            "round {round} (kill at {kill_after_ms} ms): one run per deployment: {lines:?}"
        );
        assert_eq!(
            lines.last().unwrap(),
            &format!("{version}-production"),
            "{lines:?}"
        );
        assert_eq!(app.get("/").unwrap().1.trim(), version);
    }
    load.finish()
        .assert_clean("deploys with a release, killed and resumed", 1);
    assert_eq!(
        release_containers("release"),
        Vec::<String>::new(),
        "none left behind"
    );
    // The journal says it once per deployment, before any step.
    let events: Vec<String> = app.replay_json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        events.iter().filter(|k| *k == "release-started").count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|k| *k == "released").count(),
        1,
        "{events:?}"
    );
    let first_step = events.iter().position(|k| k == "step-started").unwrap();
    let released = events.iter().position(|k| k == "released").unwrap();
    assert!(released < first_step, "{events:?}");
}

#[test]
fn a_failing_release_switches_nothing_and_reports_its_exit_code_and_last_lines() {
    let _serial = serial();
    require_docker();
    let app = App::new("relfail", "odysseus-demo", "");
    let data = app.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "v1 without a release");
    let before = app.running();
    with_release(
        &app,
        &data,
        "\"echo migrating; echo 'relation users exists' >&2; exit 3\"",
    );
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 1, "a failing release");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(said.contains("the release command exited 3"), "{said}");
    assert!(said.contains("relation users exists"), "{said}");
    assert!(said.contains("nothing was switched"), "{said}");
    assert_eq!(app.running(), before, "v1 still serves, nothing new runs");
    assert_eq!(app.get("/").unwrap().1.trim(), "v1");
    let doc = app.replay_json();
    assert_eq!(doc["deployment"]["status"], "release-failed");
    assert_eq!(release_containers("relfail"), Vec::<String>::new());
    // Nothing is left unfinished: the next deploy, fixed, goes through.
    with_release(&app, &data, "\"echo fixed >> /data/releases.log\"");
    assert_exit(&app.deploy(&["--image", "v2"]), 0, "the fixed release");
    assert_eq!(runs(&data), ["fixed"]);
    assert_eq!(app.get("/").unwrap().1.trim(), "v2");
}
