//! `odysseus deploy` against the real Docker engine and a real Caddy (no mocks): zero
//! failed requests across many deploys, measured draining, failed health checks, SIGKILL
//! at many instants followed by --resume, --abort, and Caddy restarts.

#[path = "support/real.rs"]
mod real;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use real::{assert_exit, docker, require_docker, serial, stderr, App, Load};

/// Exactly one running container, of `version`, routed alone; no other container left.
fn assert_converged(app: &App, version: &str) {
    let running = app.running();
    assert_eq!(running.len(), 1, "running containers: {running:?}");
    assert_eq!(running[0].1, version, "running: {running:?}");
    assert_eq!(
        app.upstreams(),
        vec![format!("{}:3000", running[0].0)],
        "Caddy upstreams"
    );
    let (status, body) = app.get("/").unwrap();
    assert_eq!((status, body.trim()), (200, version));
}

#[test]
fn ten_deploys_under_load_fail_no_request() {
    let _serial = serial();
    require_docker();
    let app = App::new("zd", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let load = Load::start(&app.host_header, 4, 20_000, Duration::from_secs(120));
    for i in 0..10 {
        let version = if i % 2 == 0 { "v2" } else { "v1" };
        assert_exit(
            &app.deploy(&["--image", version]),
            0,
            &format!("deploy #{i} of {version}"),
        );
        assert_converged(&app, version);
    }
    let report = load.finish();
    assert_eq!(
        report.failures(),
        0,
        "non-2xx {:?}, errors {:?}",
        report.non_2xx,
        &report.errors[..report.errors.len().min(5)]
    );
    assert!(report.ok > 100, "only {} requests got through", report.ok);
    assert!(
        report.saw("v1") && report.saw("v2"),
        "versions seen: {:?}",
        report.versions
    );
}

#[test]
fn a_slow_request_in_flight_when_the_old_upstream_goes_completes() {
    let _serial = serial();
    require_docker();
    let app = App::new("drain", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let host = app.host_header.clone();
    let slow = std::thread::spawn(move || {
        real::http_get_raw(
            &format!("127.0.0.1:{}", real::HTTP_PORT),
            "/cgi-bin/slow?s=3",
            &host,
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 0, "deploy during a slow request");
    let (status, body) = slow
        .join()
        .unwrap()
        .expect("the slow request got an answer");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("v1"),
        "the slow request was served by v1: {body}"
    );
    // The drain waited for it, rather than stopping the old container at once.
    assert!(stderr(&out).contains("drain-old ok"), "{}", stderr(&out));
    assert_converged(&app, "v2");
}

#[test]
fn a_container_that_never_becomes_healthy_leaves_the_old_one_serving() {
    let _serial = serial();
    require_docker();
    let app = App::new("badhealth", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let load = Load::start(&app.host_header, 2, 5_000, Duration::from_secs(60));
    // The bad image starts and never answers: boot_timeout 15 s, then rollback.
    app.write_config("odysseus-bad", "");
    let out = app.deploy(&["--image", "latest"]);
    assert_exit(&out, 1, "deploying the bad image");
    assert!(
        stderr(&out).contains("did not become healthy"),
        "{}",
        stderr(&out)
    );
    let report = load.finish();
    assert_eq!(
        report.failures(),
        0,
        "non-2xx {:?}, errors {:?}",
        report.non_2xx,
        report.errors
    );
    assert_converged(&app, "v1");
    assert!(!app.all_containers().iter().any(|c| docker(&[
        "inspect",
        "-f",
        "{{.Config.Image}}",
        c
    ])
    .contains("bad")));
}

/// Kills `odysseus deploy` with SIGKILL after `after_lines` progress lines (plus a
/// delay), then runs `--resume` (or `--abort`) and returns its output.
fn kill_then(
    app: &App,
    version: &str,
    after_lines: usize,
    delay_ms: u64,
    then: &str,
) -> std::process::Output {
    let mut child = app
        .deploy_cmd(&["--image", version])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Line 1 is the "Deploying …" banner; each later line is a step outcome.
    for _ in 0..after_lines {
        if lines.next().is_none() {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(delay_ms));
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    drop(lines);
    app.deploy(&[then])
}

#[test]
fn sigkill_at_many_instants_then_resume_converges_with_no_failed_request() {
    let _serial = serial();
    require_docker();
    let app = App::new("crash", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let load = Load::start(&app.host_header, 3, 50_000, Duration::from_secs(300));
    let mut version = "v1";
    // (progress lines before the kill, extra delay): spread over every step.
    let instants = [
        (0, 0),
        (1, 0),
        (1, 150),
        (2, 0),
        (2, 5),
        (3, 0),
        (4, 0),
        (5, 0),
        (6, 0),
        (7, 0),
        (8, 0),
        (1, 300),
    ];
    for (i, (after, delay)) in instants.into_iter().enumerate() {
        version = if version == "v1" { "v2" } else { "v1" };
        let out = kill_then(&app, version, after, delay, "--resume");
        let code = out.status.code();
        // Killed before the start was journaled: nothing to resume, so deploy again.
        if code == Some(2) && stderr(&out).contains("no unfinished deployment") {
            let running = app.running();
            if running.len() == 1 && running[0].1 == version {
                continue;
            }
            assert_exit(
                &app.deploy(&["--image", version]),
                0,
                &format!("kill #{i}: redeploy"),
            );
        } else {
            assert_exit(
                &out,
                0,
                &format!("kill #{i} after {after} lines + {delay} ms, then --resume"),
            );
        }
        assert_converged(&app, version);
        // No orphans: besides the running one, only stopped old versions remain.
        for name in app.all_containers() {
            let state = docker(&["inspect", "-f", "{{.State.Running}}", &name]);
            assert!(
                state.trim() == "false" || app.running().iter().any(|(n, _)| *n == name),
                "orphan {name}"
            );
        }
    }
    let report = load.finish();
    assert_eq!(
        report.failures(),
        0,
        "non-2xx {:?}, errors {:?}",
        report.non_2xx,
        &report.errors[..report.errors.len().min(5)]
    );
}

#[test]
fn abort_after_the_new_upstream_was_added_returns_exactly_to_v1() {
    let _serial = serial();
    require_docker();
    let app = App::new("abort", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let load = Load::start(&app.host_header, 2, 10_000, Duration::from_secs(60));
    let (mut child, lines) =
        real::spawn_until(app.deploy_cmd(&["--image", "v2"]), "add-upstream ok");
    drop(lines);
    let _ = child.kill();
    let _ = child.wait();
    let out = app.deploy(&["--abort"]);
    assert_exit(&out, 0, "--abort");
    assert!(stderr(&out).contains("rolled back"), "{}", stderr(&out));
    let report = load.finish();
    assert_eq!(
        report.failures(),
        0,
        "non-2xx {:?}, errors {:?}",
        report.non_2xx,
        report.errors
    );
    assert_converged(&app, "v1");
    assert!(!app.all_containers().iter().any(|c| docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"odysseus.version\"}}",
        c
    ])
    .trim()
        == "v2"));
}

#[test]
fn caddy_restarted_between_deploys_keeps_its_routes() {
    let _serial = serial();
    require_docker();
    let app = App::new("restart", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    docker(&["restart", "odysseus-caddy"]);
    let mut answered = None;
    for _ in 0..50 {
        if let Ok(r) = app.get("/") {
            answered = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        answered.map(|(s, b)| (s, b.trim().to_string())),
        Some((200, "v1".to_string()))
    );
    assert_exit(
        &app.deploy(&["--image", "v2"]),
        0,
        "deploy after the restart",
    );
    assert_converged(&app, "v2");
}

#[test]
fn a_plain_deploy_of_another_image_is_refused_while_one_is_unfinished() {
    let _serial = serial();
    require_docker();
    let app = App::new("refuse", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let out = kill_then(&app, "v2", 3, 0, "--image=v3");
    assert_exit(&out, 3, "deploying v3 over an unfinished v2");
    let err = stderr(&out);
    assert!(
        err.contains("unfinished") && err.contains("--resume") && err.contains("--abort"),
        "{err}"
    );
    // A narrowed run cannot continue a plan that names its own targets.
    let out = app.deploy(&["--image", "v2", "--hosts", "local"]);
    assert_exit(&out, 3, "--hosts over an unfinished deployment");
    assert!(
        stderr(&out).contains("--hosts and --roles apply to new deployments only")
            && stderr(&out).contains("--resume"),
        "{}",
        stderr(&out)
    );
    // The same image resumes and says so.
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 0, "plain deploy of the same image");
    assert!(stderr(&out).contains("resuming"), "{}", stderr(&out));
    assert_converged(&app, "v2");
}

#[test]
fn env_secrets_volumes_limits_and_labels_reach_the_engine_and_secrets_stay_out_of_the_journal() {
    let _serial = serial();
    require_docker();
    let extra = "env:
  clear:
    MODE: demo
    PORT: 3000
  secret: [ODYSSEUS_IT_SECRET, ODYSSEUS_IT_FILE_SECRET]
secrets_file: app.secrets
";
    let app = App::new("settings", "odysseus-demo", extra);
    // One secret from the environment, one from the secrets file beside deploy.yml.
    let file_secret = "f1le-s3cret-that-must-not-leak-either";
    std::fs::write(
        app.dir.join("app.secrets"),
        format!("ODYSSEUS_IT_FILE_SECRET={file_secret}\n"),
    )
    .unwrap();
    // Named volumes and limits go on the role.
    let config = std::fs::read_to_string(app.config()).unwrap().replace(
        "    deploy:\n",
        "    volumes: [\"data:/data\"]\n    options: { memory: 64m, cpus: 0.5 }\n    deploy:\n",
    );
    std::fs::write(app.config(), config).unwrap();
    let secret = "s3cr3t-value-that-must-not-leak";
    let out = app
        .deploy_cmd(&["--image", "v1"])
        .env("ODYSSEUS_IT_SECRET", secret)
        .output()
        .unwrap();
    assert_exit(&out, 0, "deploy with settings");
    let name = &app.running()[0].0;
    let env = docker(&["inspect", "-f", "{{json .Config.Env}}", name]);
    assert!(
        env.contains("\"MODE=demo\"") && env.contains("\"PORT=3000\""),
        "{env}"
    );
    assert!(
        env.contains(&format!("ODYSSEUS_IT_SECRET={secret}")),
        "the secret reaches the container through the API"
    );
    assert!(
        env.contains(&format!("ODYSSEUS_IT_FILE_SECRET={file_secret}")),
        "the secret from secrets_file reaches the container"
    );
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}",
            name
        ])
        .trim(),
        "67108864 500000000 unless-stopped"
    );
    assert!(
        docker(&["inspect", "-f", "{{json .Mounts}}", name]).contains("\"Name\":\"settings-data\"")
    );
    let labels = docker(&["inspect", "-f", "{{json .Config.Labels}}", name]);
    for key in [
        "odysseus.service",
        "odysseus.role",
        "odysseus.version",
        "odysseus.deployment",
        "odysseus.deployed_at",
    ] {
        assert!(labels.contains(key), "{key} missing from {labels}");
    }
    // Nothing in the state dir (the journal) holds the secret's value.
    for s in [secret, file_secret] {
        real::assert_no_file_holds(&app.dir.join(".odysseus"), s);
    }
    // What the journal keeps instead: the names, a digest of the values, the image id.
    let doc = app.replay_json();
    let provenance = &doc["events"][1];
    assert_eq!(provenance["kind"], "provenance", "{doc}");
    let detail = provenance["detail"].as_str().unwrap();
    let image_id = docker(&["image", "inspect", "-f", "{{.Id}}", "odysseus-demo:v1"]);
    assert!(
        detail.contains(&format!("local has {}", image_id.trim()))
            && detail.contains(
                "secrets ODYSSEUS_IT_SECRET, ODYSSEUS_IT_FILE_SECRET (values hmac-sha256:"
            ),
        "{detail}"
    );
    assert!(!detail.contains(secret) && !detail.contains(file_secret));
    docker(&["volume", "rm", "-f", "settings-data"]);
}

#[test]
fn a_role_health_command_becomes_the_docker_health_check_and_gates_traffic() {
    let _serial = serial();
    require_docker();
    let app = App::new("dockerhealth", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let with_check = |cmd: &str| {
        app.write_config("odysseus-demo", "");
        let config = std::fs::read_to_string(app.config()).unwrap().replace(
            "    deploy:\n",
            &format!("    healthcheck:\n      cmd: \"{cmd}\"\n      interval: 1\n      timeout: 1\n      retries: 1\n    deploy:\n"),
        );
        std::fs::write(app.config(), config).unwrap();
    };
    with_check("exit 1");
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 1, "a health command that always fails");
    assert_converged(&app, "v1");
    with_check("wget -q -O /dev/null http://127.0.0.1:3000/health");
    assert_exit(
        &app.deploy(&["--image", "v2"]),
        0,
        "a health command that passes",
    );
    let name = &app.running()[0].0;
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Health.Status}}", name]).trim(),
        "healthy"
    );
    assert_converged(&app, "v2");
}

#[test]
fn an_existing_caddy_with_other_ports_is_refused_before_anything_changes() {
    let _serial = serial();
    require_docker();
    let app = App::new("ports", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let config = std::fs::read_to_string(app.config()).unwrap().replace(
        &format!("http_port: {}", real::HTTP_PORT),
        "http_port: 18081",
    );
    std::fs::write(app.config(), config).unwrap();
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(
        &out,
        3,
        "a config whose http_port differs from the running Caddy",
    );
    assert!(
        stderr(&out).contains("Nothing was changed") && stderr(&out).contains("18080"),
        "{}",
        stderr(&out)
    );
    assert_converged(&app, "v1");
}

#[test]
fn replay_after_an_interrupted_and_resumed_deploy_shows_both_sides() {
    let _serial = serial();
    require_docker();
    let app = App::new("replay", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    assert_exit(
        &kill_then(&app, "v2", 3, 0, "--resume"),
        0,
        "kill, then --resume",
    );
    let replay = |args: &[&str]| {
        std::process::Command::new(real::odysseus_bin())
            .arg("replay")
            .arg("-c")
            .arg(app.config())
            .args(args)
            .output()
            .unwrap()
    };
    let out = replay(&["latest", "--json", "--verify"]);
    assert_exit(&out, 0, "replay --json --verify");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["deployment"]["version"], "v2");
    assert_eq!(doc["deployment"]["status"], "completed");
    let events = doc["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    // The interruption shows as the dead process's lock taken over, then the resume.
    let takeover = kinds
        .iter()
        .position(|k| *k == "lock-taken-over")
        .expect("a lock takeover");
    let resumed = kinds
        .iter()
        .position(|k| *k == "resumed")
        .expect("a resume");
    assert!(takeover < resumed);
    // Every step of the web sequence succeeded (or was found done), some before the kill.
    for step in [
        "start-new",
        "await-healthy",
        "add-upstream",
        "remove-old-upstream",
        "drain-old",
        "stop-old",
        "clean-stale-upstreams",
    ] {
        let done = events.iter().any(|e| {
            e["step"] == step
                && (e["kind"] == "step-succeeded"
                    || (e["kind"] == "step-observed" && e["outcome"] == "observed-done"))
        });
        assert!(done, "{step} never finished in {kinds:?}");
    }
    assert!(
        events
            .iter()
            .take(resumed)
            .any(|e| e["kind"] == "step-succeeded"),
        "steps before the interruption"
    );
    for (seq, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], seq as u64);
        assert!(e["time"].as_str().unwrap().ends_with('Z'));
    }
    let text = replay(&[]);
    assert_exit(&text, 0, "replay");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("resumed") && text.contains("lock-taken-over") && text.contains("completed"),
        "{text}"
    );
    let history = std::process::Command::new(real::odysseus_bin())
        .arg("history")
        .arg("-c")
        .arg(app.config())
        .output()
        .unwrap();
    assert_exit(&history, 0, "history");
    assert_eq!(String::from_utf8_lossy(&history.stdout).lines().count(), 2);
}

#[test]
fn a_job_role_is_replaced_only_after_its_new_worker_runs() {
    let _serial = serial();
    require_docker();
    let jobs = "
";
    let app = App::new("jobs", "odysseus-demo", jobs);
    let config = std::fs::read_to_string(app.config()).unwrap().replace(
        "proxy:\n",
        "  jobs:\n    hosts: [local]\n    cmd: \"while true; do sleep 1; done\"\n    deploy:\n      stop_timeout: 2\nproxy:\n",
    );
    std::fs::write(app.config(), config).unwrap();
    assert_exit(
        &app.deploy(&["--image", "v1"]),
        0,
        "first deploy of web and jobs",
    );
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 0, "second deploy");
    let err = stderr(&out);
    // Config order: web first, then jobs; the old worker stops after the new one is healthy.
    let web_done = err.find("[web@local] done").expect("web finished");
    let job_healthy = err
        .find("[jobs@local] await-healthy ok")
        .expect("the new worker became healthy");
    let job_stop = err
        .find("[jobs@local] stop-old ok")
        .expect("the old worker stopped");
    assert!(web_done < job_healthy && job_healthy < job_stop, "{err}");
    let running = app.running();
    assert_eq!(running.len(), 2, "{running:?}");
    assert!(running.iter().all(|(_, v)| v == "v2"), "{running:?}");
    let worker = running
        .iter()
        .find(|(n, _)| n.starts_with("jobs-jobs-"))
        .expect("a jobs container");
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"odysseus.role\"}}",
            &worker.0
        ])
        .trim(),
        "jobs"
    );
}

#[test]
fn sigint_mid_deploy_records_the_interruption_releases_the_lock_and_resume_converges() {
    let _serial = serial();
    require_docker();
    let app = App::new("sigint", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let load = Load::start(&app.host_header, 2, 10_000, Duration::from_secs(60));
    // A slow request keeps the drain busy long enough to interrupt it.
    let slow = real::slow_request(
        format!("127.0.0.1:{}", real::HTTP_PORT),
        app.host_header.clone(),
        4,
    );
    // As Ctrl-C at a terminal does: SIGINT to odysseus's whole process group (its
    // children too, whatever it started).
    let mut cmd = app.deploy_cmd(&["--image", "v2"]);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let (mut child, lines) = real::spawn_until(cmd, "remove-old-upstream ok");
    std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{rest:#?}");
    let text = rest.join("\n");
    assert!(
        text.contains("interrupted by SIGINT")
            && text.contains("--resume")
            && text.contains("--abort"),
        "{text}"
    );
    // The lock was released: the resume takes it fresh, with no takeover.
    let out = app.deploy(&["--resume"]);
    assert_exit(&out, 0, "--resume after SIGINT");
    assert!(!stderr(&out).contains("took over"), "{}", stderr(&out));
    let doc = app.replay_json();
    let kinds: Vec<&str> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    let interrupted = kinds
        .iter()
        .position(|k| *k == "interrupted")
        .expect("the interruption is in the journal");
    assert!(
        kinds[interrupted + 1..].contains(&"resumed") && !kinds.contains(&"lock-taken-over"),
        "{kinds:?}"
    );
    let (status, _) = slow.join().unwrap().unwrap();
    assert_eq!(status, 200);
    let report = load.finish();
    assert_eq!(
        report.failures(),
        0,
        "non-2xx {:?}, errors {:?}",
        report.non_2xx,
        report.errors
    );
    assert_converged(&app, "v2");
}

#[test]
fn a_second_deploy_from_another_state_dir_is_refused_and_a_killed_holder_leaves_no_stale_lock() {
    let _serial = serial();
    require_docker();
    let app = App::new("twoops", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let other_state = app.dir.join("other-operator");
    let slow = real::slow_request(
        format!("127.0.0.1:{}", real::HTTP_PORT),
        app.host_header.clone(),
        4,
    );
    let (mut first, lines) =
        real::spawn_until(app.deploy_cmd(&["--image", "v2"]), "remove-old-upstream ok");
    // The first deploy is draining: a second operator with their own journal is refused.
    let second = app
        .deploy_cmd(&["--image", "v2", "--state-dir"])
        .arg(&other_state)
        .output()
        .unwrap();
    assert_exit(&second, 3, "a concurrent deploy from another state dir");
    let err = stderr(&second);
    assert!(
        err.contains("is being deployed on local by")
            && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    // The holder dies without a word: its lock must not outlive it.
    let _ = first.kill();
    let _ = first.wait();
    drop(lines);
    let _ = slow.join();
    let out = app.deploy(&["--resume"]);
    assert_exit(&out, 0, "the first operator resumes after the kill");
    assert_converged(&app, "v2");
}

#[test]
fn dry_run_prints_the_plan_from_a_look_at_the_host_and_changes_nothing() {
    let _serial = serial();
    require_docker();
    let app = App::new("dryrun", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let before = app.all_containers();
    let out = app.deploy(&["--image", "v2", "--dry-run"]);
    assert_exit(&out, 0, "--dry-run");
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains("dry run: nothing was changed") && plan.contains("replaces dryrun-web-"),
        "{plan}"
    );
    assert!(
        plan.contains("start-new → await-healthy → add-upstream → remove-old-upstream → drain-old → stop-old → clean-stale-upstreams"),
        "{plan}"
    );
    assert!(
        plan.contains("timeouts: boot 15s, drain 10s, stop 10s")
            && plan.contains("on_failure halt"),
        "{plan}"
    );
    assert_eq!(app.all_containers(), before);
    assert_converged(&app, "v1");
    let history = std::process::Command::new(real::odysseus_bin())
        .arg("history")
        .arg("-c")
        .arg(app.config())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&history.stdout).lines().count(),
        1,
        "the dry run wrote no deployment"
    );
}

#[test]
fn lock_status_names_the_holder_and_lock_release_is_recorded_in_the_journal() {
    let _serial = serial();
    require_docker();
    let app = App::new("lockcmd", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let lock = |sub: &str| {
        std::process::Command::new(real::odysseus_bin())
            .args(["lock", sub, "-c"])
            .arg(app.config())
            .output()
            .unwrap()
    };
    let slow = real::slow_request(
        format!("127.0.0.1:{}", real::HTTP_PORT),
        app.host_header.clone(),
        4,
    );
    let (mut holder, lines) =
        real::spawn_until(app.deploy_cmd(&["--image", "v2"]), "remove-old-upstream ok");
    let status = lock("status");
    assert_exit(&status, 0, "lock status while deploying");
    let text = String::from_utf8_lossy(&status.stdout);
    let pid = format!("pid {}", holder.id());
    // The running deploy holds its journal open: status says so and reads the host lock.
    assert!(
        text.contains("in use by a running deploy")
            && text.contains(&"local: held by".to_string())
            && text.contains(&pid),
        "{text}"
    );
    let _ = holder.kill();
    let _ = holder.wait();
    drop(lines);
    let _ = slow.join();
    // The host lock died with its holder; the journal still names it until released.
    let text = String::from_utf8_lossy(&lock("status").stdout).into_owned();
    assert!(
        text.contains("local: free") && text.contains(&pid),
        "{text}"
    );
    let released = lock("release");
    assert_exit(&released, 0, "lock release");
    assert!(String::from_utf8_lossy(&released.stdout).contains("recorded in deployment"));
    let text = String::from_utf8_lossy(&lock("status").stdout).into_owned();
    assert!(
        text.contains("journal") && text.contains(": free\n") && !text.contains(&pid),
        "{text}"
    );
    let doc = app.replay_json();
    assert!(doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "lock-released"));
    assert_exit(&app.deploy(&["--resume"]), 0, "resume after the release");
    assert_converged(&app, "v2");
}

#[test]
fn rollback_returns_to_the_previous_version_and_refuses_a_missing_image() {
    let _serial = serial();
    require_docker();
    let app = App::new("rollback", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "v1");
    assert_exit(&app.deploy(&["--image", "v2"]), 0, "v2");
    let rollback = |args: &[&str]| {
        std::process::Command::new(real::odysseus_bin())
            .arg("rollback")
            .args(args)
            .arg("-c")
            .arg(app.config())
            .output()
            .unwrap()
    };
    let list = rollback(&["--list"]);
    assert_exit(&list, 0, "rollback --list");
    let text = String::from_utf8_lossy(&list.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() == 2
            && lines[0].starts_with("v2")
            && lines[0].ends_with("(current)")
            && lines[1].starts_with("v1"),
        "{text}"
    );
    let missing = rollback(&["v404"]);
    assert_exit(&missing, 3, "rollback to an image no host has");
    assert!(
        stderr(&missing).contains("Nothing was changed")
            && stderr(&missing).contains("odysseus push --image v404")
    );
    assert_converged(&app, "v2");
    let load = Load::start(&app.host_header, 2, 5_000, Duration::from_secs(60));
    let out = rollback(&[]);
    assert_exit(&out, 0, "rollback to the previous version");
    let report = load.finish();
    assert_eq!(
        report.failures(),
        0,
        "non-2xx {:?}, errors {:?}",
        report.non_2xx,
        report.errors
    );
    assert_converged(&app, "v1");
}

/// `deploy --json`: stdout is JSON Lines, one object per event as it is recorded, in
/// replay's shape, then one `summary` object; progress stays on stderr.
#[test]
fn deploy_json_streams_one_object_per_event_then_a_summary() {
    let _serial = serial();
    require_docker();
    let app = App::new("jsonlines", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    let out = app.deploy(&["--image", "v2", "--json"]);
    assert_exit(&out, 0, "deploy --json");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let (summary, events) = lines.split_last().unwrap();
    assert_eq!(summary["kind"], "summary", "{summary}");
    assert_eq!(summary["deployment"]["status"], "completed");
    assert_eq!(summary["deployment"]["version"], "v2");
    assert_eq!(summary["targets"][0]["serving"], "v2");
    assert_eq!(summary["targets"][0]["host"], "local");
    let image_id = docker(&["image", "inspect", "-f", "{{.Id}}", "odysseus-demo:v2"]);
    assert_eq!(summary["deployment"]["image_ids"]["local"], image_id.trim());
    // Every event, in order, with the fields replay --json documents.
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], i as u64, "{e}");
        assert!(e["time"].is_string() && e["kind"].is_string(), "{e}");
    }
    assert_eq!(events[0]["kind"], "deployment-started");
    assert_eq!(events.last().unwrap()["kind"], "deployment-completed");
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "step-succeeded")
        .map(|e| {
            assert!(
                e["duration_ms"].is_u64() && e["host"] == "local" && e["role"] == "web",
                "{e}"
            );
            e["step"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        steps,
        [
            "start-new",
            "await-healthy",
            "add-upstream",
            "remove-old-upstream",
            "drain-old",
            "stop-old",
            "clean-stale-upstreams"
        ]
    );
    // The same events as the journal's own record.
    let doc = app.replay_json();
    assert_eq!(doc["events"].as_array().unwrap().len(), events.len());
    assert!(
        stderr(&out).contains("[web@local] start-new ok"),
        "progress stays on stderr"
    );
}

/// The dry-run plan as the user reads it, for a first deploy (nothing of the service runs
/// yet, so the plan holds no container names that change from run to run).
#[test]
fn the_dry_run_plan_of_a_first_deploy_reads_as_snapshotted() {
    let _serial = serial();
    require_docker();
    let app = App::new(
        "dryplan",
        "odysseus-demo",
        "batch_size: 1\non_failure: rollback\n",
    );
    let out = app.deploy(&["--image", "v1", "--dry-run"]);
    assert_exit(&out, 0, "--dry-run of a first deploy");
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
    assert!(app.all_containers().is_empty(), "a dry run starts nothing");
}

/// Runs `odysseus` with a pseudo-terminal as its stderr (util-linux `script`), as a person
/// at a terminal would; returns everything the terminal received.
fn on_a_terminal(app: &App, args: &str, no_color: bool) -> String {
    let command = format!(
        "{} deploy -c {} {args}",
        real::odysseus_bin().display(),
        app.config().display()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qfec", &command, "/dev/null"]);
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    let out = cmd.output().unwrap();
    assert_exit(&out, 0, &format!("deploy {args} on a terminal"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// On a terminal: the same finished-step lines as in CI, plus a spinner per target in
/// flight (its step and elapsed time); colour unless NO_COLOR is set.
#[test]
fn on_a_terminal_steps_get_spinners_and_no_color_means_no_colour() {
    let _serial = serial();
    require_docker();
    let app = App::new("ttyprogress", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "first deploy");
    // A slow request keeps the drain (and its spinner) on screen for a while.
    let slow = real::slow_request(
        format!("127.0.0.1:{}", real::HTTP_PORT),
        app.host_header.clone(),
        2,
    );
    let colour = on_a_terminal(&app, "--image v2", false);
    let _ = slow.join();
    let spinner_frames = ['⠁', '⠂', '⠄', '⡀', '⢀', '⠠', '⠐', '⠈'];
    assert!(
        colour.contains("[web@local] drain-old") && colour.contains(spinner_frames),
        "no spinner for the drain: {colour:?}"
    );
    assert!(
        colour.contains("[web@local] drain-old ok") && colour.contains("[web@local] done"),
        "{colour:?}"
    );
    assert!(
        colour.contains("\x1b[32m"),
        "finished steps are green: {colour:?}"
    );
    let plain = on_a_terminal(&app, "--image v1", true);
    assert!(plain.contains("[web@local] stop-old ok"), "{plain:?}");
    // No SGR sequence (ESC [ … m) at all: cursor movement stays, colour goes.
    let sgr = plain
        .split('\x1b')
        .skip(1)
        .filter(|s| {
            s.strip_prefix('[').is_some_and(|rest| {
                let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'));
                end.is_some_and(|i| rest[i..].starts_with('m'))
            })
        })
        .count();
    assert_eq!(sgr, 0, "NO_COLOR output has colour codes: {plain:?}");
}

/// `retain_versions: 2`: after each completed deploy the host keeps the containers and
/// images of the two newest versions; older ones go, the serving one never does, and an
/// image no container of the service ever ran is left alone.
#[test]
fn retain_versions_prunes_old_containers_and_images_after_a_completed_deploy() {
    let _serial = serial();
    require_docker();
    // Versions of our own (new tags of the demo images), so pruning them touches nothing
    // another test uses: removing a tag that another name shares only removes the tag.
    let repo = "odysseus-prune";
    for (from, to) in [
        ("v1", "p1"),
        ("v2", "p2"),
        ("v3", "p3"),
        ("v1", "p4"),
        ("v2", "p5"),
    ] {
        docker(&[
            "tag",
            &format!("odysseus-demo:{from}"),
            &format!("{repo}:{to}"),
        ]);
    }
    let app = App::new("prune", repo, "retain_versions: 2\n");
    for v in ["p1", "p2"] {
        let out = app.deploy(&["--image", v]);
        assert_exit(&out, 0, v);
        assert!(
            !stderr(&out).contains("kept the newest"),
            "{}",
            stderr(&out)
        );
    }
    for (v, gone) in [("p3", "p1"), ("p4", "p2")] {
        let out = app.deploy(&["--image", v]);
        assert_exit(&out, 0, v);
        assert!(
            stderr(&out).contains(&format!(
                "[local] kept the newest 2 version(s): removed 1 old container(s) and image(s) {repo}:{gone}"
            )),
            "{}",
            stderr(&out)
        );
    }
    let versions = |all: bool| {
        let mut args = vec![
            "ps",
            "--filter",
            "label=odysseus.service=prune",
            "--format",
            "{{.Label \"odysseus.version\"}}",
        ];
        if all {
            args.insert(1, "-a");
        }
        let mut v: Vec<String> = docker(&args).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(versions(true), ["p3", "p4"]);
    assert_eq!(versions(false), ["p4"]);
    let present = |tag: &str| {
        std::process::Command::new("docker")
            .args(["image", "inspect", &format!("{repo}:{tag}")])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(!present("p1") && !present("p2"), "old images are gone");
    assert!(
        present("p3") && present("p4"),
        "kept versions keep their images"
    );
    assert!(
        present("p5"),
        "a version never deployed here is not touched"
    );
    assert!(
        std::process::Command::new("docker")
            .args(["image", "inspect", "odysseus-demo:v1"])
            .output()
            .unwrap()
            .status
            .success(),
        "a shared image only lost its extra tag"
    );
    // p4 is a new tag of the demo's v1, which answers with its own name.
    assert_eq!(app.get("/").unwrap(), (200, "v1\n".to_string()));
    // Going back to a kept version still works (p3 is the demo's v3).
    assert_exit(&app.deploy(&["--image", "p3"]), 0, "back to p3");
    assert_eq!(app.get("/").unwrap(), (200, "v3\n".to_string()));
    // deploy.yml moves to another repository: the old containers go with their own
    // images, never an image of the new repository that merely shares an old tag.
    let other = "odysseus-prune-b";
    docker(&["tag", "odysseus-demo:v2", &format!("{other}:p9")]);
    docker(&["tag", "odysseus-demo:v1", &format!("{other}:p4")]);
    app.write_config(other, "retain_versions: 1\n");
    assert_exit(
        &app.deploy(&["--image", "p9"]),
        0,
        "p9 from another repository",
    );
    assert!(
        std::process::Command::new("docker")
            .args(["image", "inspect", &format!("{other}:p4")])
            .output()
            .unwrap()
            .status
            .success(),
        "{other}:p4 shares a tag with a pruned version but was never deployed: it stays"
    );
    for tag in ["p3", "p4", "p5"] {
        docker(&["rmi", &format!("{repo}:{tag}")]);
    }
    for tag in ["p4", "p9"] {
        docker(&["rmi", &format!("{other}:{tag}")]);
    }
}

/// A first deploy that fails before anything was routed, on a host with no Caddy at all:
/// its undo must not depend on the Caddy that was never created. It rolls back cleanly
/// and leaves nothing behind.
#[test]
fn a_failed_first_deploy_on_a_host_without_caddy_rolls_back_cleanly() {
    let _serial = serial();
    require_docker();
    // No Caddy on this engine (the next test that needs one creates it again).
    docker(&["rm", "-f", "odysseus-caddy"]);
    let app = App::new("nocaddy", "odysseus-bad", "");
    let out = app.deploy(&["--image", "latest"]);
    assert_exit(
        &out,
        1,
        "a first deploy of an image that never becomes healthy",
    );
    let err = stderr(&out);
    assert!(
        err.contains("[web@local] rolled back: nothing of it is left (it was a first deploy)")
            && !err.contains("ROLLBACK FAILED"),
        "{err}"
    );
    assert!(
        app.all_containers().is_empty(),
        "{:?}",
        app.all_containers()
    );
    // halt (the default policy): resumable, nothing of it serves anywhere.
    assert_eq!(app.replay_json()["deployment"]["status"], "halted");
}
