//! Hooks (issue 13 §3) on the real engine, as Kamal users write them: executables in
//! `.kamal/hooks/` (or `.odysseus/hooks/`) run on the deploying machine at their points of
//! the deployment, with `KAMAL_*` and `ODYSSEUS_*`, and their runs are journal events
//! (never their output). A failing `pre-*` hook stops what it guards before anything
//! changes there; a failing `post-deploy` is reported, not undone; a hook killed with the
//! deployer runs again on resume.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/real.rs"]
mod real;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use real::{assert_exit, assert_no_file_holds, require_docker, serial, stderr, App};

/// Writes an executable hook `name` under `folder` (`.kamal/hooks`, `.odysseus/hooks`)
/// of the app's directory.
fn hook(app: &App, folder: &str, name: &str, body: &str) {
    let dir = app.dir.join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A hook that appends its name and environment to `hooks.log` (relative: it runs in the
/// project's directory), then exits `code`.
fn logging_hook(app: &App, folder: &str, name: &str, code: i32) {
    hook(
        app,
        folder,
        name,
        &format!(
            "echo \"{name} service=$KAMAL_SERVICE version=$KAMAL_VERSION hosts=$KAMAL_HOSTS same=$ODYSSEUS_HOSTS performer=$KAMAL_PERFORMER at=${{KAMAL_RECORDED_AT:+set}} runtime=${{KAMAL_RUNTIME:-none}} command=$KAMAL_COMMAND deployment=${{ODYSSEUS_DEPLOYMENT:+set}}\" >> hooks.log\n\
             echo 'hook output: SECRET-HOOK-OUTPUT-{name}'\n\
             exit {code}"
        ),
    );
}

fn log(app: &App) -> Vec<String> {
    std::fs::read_to_string(app.dir.join("hooks.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits (at most a minute) until a hook has written `marker` to `hooks.log`.
fn wait_for_log(app: &App, marker: &str) {
    let started = std::time::Instant::now();
    while !log(app).contains(&marker.to_string()) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {marker} in {:?}",
            log(app)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn names(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.split(' ').next().unwrap_or_default().to_string())
        .collect()
}

fn kinds(doc: &serde_json::Value) -> Vec<String> {
    doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn kamal_hooks_run_at_their_points_with_kamals_environment_and_are_journaled_without_their_output()
{
    let _serial = serial();
    require_docker();
    let app = App::new("hooked", "odysseus-demo", "");
    for name in [
        "pre-connect",
        "pre-deploy",
        "pre-app-boot",
        "post-app-boot",
        "post-deploy",
    ] {
        logging_hook(&app, ".kamal/hooks", name, 0);
    }
    // Kamal's `init` leaves samples beside them: never run.
    hook(&app, ".kamal/hooks", "pre-deploy.sample", "exit 9");
    let out = app.deploy(&["--image", "v1", "--json"]);
    assert_exit(&out, 0, "a deploy with every hook");
    // Hooks print to stdout; ours stays the JSON document.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{stdout}"
    );
    assert!(stderr(&out).contains("SECRET-HOOK-OUTPUT-pre-deploy"));
    let lines = log(&app);
    assert_eq!(
        names(&lines),
        [
            "pre-connect",
            "pre-deploy",
            "pre-app-boot",
            "post-app-boot",
            "post-deploy"
        ],
        "{lines:#?}"
    );
    for line in &lines {
        assert!(
            line.contains("service=hooked version=v1 hosts=local same=local")
                && line.contains("at=set")
                && line.contains("command=deploy"),
            "{line}"
        );
        assert!(!line.contains("performer= "), "{line}");
    }
    assert!(lines[4].contains("runtime=") && !lines[4].contains("runtime=none"));
    assert!(lines[0].contains("deployment= ") || lines[0].ends_with("deployment="));
    assert!(lines[1].ends_with("deployment=set"), "{}", lines[1]);

    // The journal: which hooks there were, each run and its exit, in order with the steps.
    let doc = app.replay_json();
    let kinds = kinds(&doc);
    let at = |kind: &str, nth: usize| {
        kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| *k == kind)
            .nth(nth)
            .map(|(i, _)| i)
            .unwrap_or_else(|| panic!("no {kind} #{nth} in {kinds:?}"))
    };
    assert_eq!(kinds.iter().filter(|k| *k == "hook-started").count(), 5);
    assert_eq!(kinds.iter().filter(|k| *k == "hook-ended").count(), 5);
    assert!(at("hooks-found", 0) < at("step-started", 0));
    // pre-app-boot (the third run) ended before the first step; post-app-boot after the
    // target completed; post-deploy after the deployment completed.
    assert!(at("hook-ended", 2) < at("step-started", 0), "{kinds:?}");
    assert!(
        at("target-completed", 0) < at("hook-started", 3),
        "{kinds:?}"
    );
    assert!(
        at("deployment-completed", 0) < at("hook-started", 4),
        "{kinds:?}"
    );
    let text = Command::new(real::odysseus_bin())
        .args(["replay", "-c"])
        .arg(app.config())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains("pre-app-boot exited 0"), "{text}");
    // Their output may hold secrets: it is in no file odysseus keeps.
    assert_no_file_holds(&app.dir.join(".odysseus"), "SECRET-HOOK-OUTPUT");
    assert_no_file_holds(
        Path::new("/var/lib/odysseus/journal/hooked"),
        "SECRET-HOOK-OUTPUT",
    );

    // `.odysseus/hooks/` wins over `.kamal/hooks/` for the same hook; --skip-hooks runs none.
    std::fs::remove_file(app.dir.join("hooks.log")).unwrap();
    hook(
        &app,
        ".odysseus/hooks",
        "pre-deploy",
        "echo ours >> hooks.log",
    );
    assert_exit(&app.deploy(&["--image", "v2"]), 0, "v2");
    assert!(log(&app).contains(&"ours".to_string()), "{:?}", log(&app));
    assert!(!names(&log(&app)).contains(&"pre-deploy".to_string()));
    std::fs::remove_file(app.dir.join("hooks.log")).unwrap();
    assert_exit(
        &app.deploy(&["--image", "v1", "--skip-hooks"]),
        0,
        "v1 without hooks",
    );
    assert!(log(&app).is_empty(), "{:?}", log(&app));
    assert!(!kinds_of_latest(&app).contains(&"hooks-found".to_string()));

    // `odysseus rollback` is a deploy the hooks hear as `rollback`.
    let rollback = Command::new(real::odysseus_bin())
        .args(["rollback", "v2", "-c"])
        .arg(app.config())
        .output()
        .unwrap();
    assert_exit(&rollback, 0, "rollback to v2");
    let lines: Vec<String> = log(&app)
        .into_iter()
        .filter(|l| l.contains("command="))
        .collect();
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l.contains("command=rollback")),
        "{lines:#?}"
    );
    app.remove_containers();
}

/// Everything a run printed: the summary goes to stdout, the rest to stderr.
fn said(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(out))
}

fn kinds_of_latest(app: &App) -> Vec<String> {
    kinds(&app.replay_json())
}

#[test]
fn a_failing_gate_changes_nothing_it_guards_and_a_failing_post_deploy_is_only_reported() {
    let _serial = serial();
    require_docker();
    let app = App::new("hookgate", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "v1 without hooks");
    let before = app.running();

    // pre-connect: before any connection; no deployment is made.
    logging_hook(&app, ".kamal/hooks", "pre-connect", 5);
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 3, "a failing pre-connect");
    assert!(
        said(&out).contains("the pre-connect hook exited 5")
            && said(&out).contains("Nothing was changed"),
        "{}",
        said(&out)
    );
    assert_eq!(app.running(), before);
    // The escape hatches do not run it: a broken hook never blocks ending a deployment.
    let out = app.deploy(&["--abandon", "stuck"]);
    assert_exit(
        &out,
        2,
        "--abandon with nothing unfinished, past a failing pre-connect",
    );
    assert!(
        !said(&out).contains("pre-connect"),
        "pre-connect ran for --abandon: {}",
        said(&out)
    );
    std::fs::remove_file(app.dir.join(".kamal/hooks/pre-connect")).unwrap();

    // pre-deploy: the deployment ends, nothing switched.
    logging_hook(&app, ".kamal/hooks", "pre-deploy", 3);
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 1, "a failing pre-deploy");
    assert!(
        said(&out).contains("the pre-deploy hook exited 3: nothing was switched on any host"),
        "{}",
        said(&out)
    );
    assert_eq!(app.running(), before, "v1 still serves, nothing new runs");
    assert_eq!(app.get("/").unwrap().1.trim(), "v1");
    assert_eq!(app.replay_json()["deployment"]["status"], "hook-failed");

    // A hook that is not executable is a failure that says so.
    let path = app.dir.join(".kamal/hooks/pre-deploy");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 1, "a pre-deploy that is not executable");
    assert!(
        said(&out).contains("not executable (chmod +x it)"),
        "{}",
        said(&out)
    );
    assert_eq!(app.running(), before);

    // --skip-hooks goes past it.
    assert_exit(
        &app.deploy(&["--image", "v2", "--skip-hooks"]),
        0,
        "skipping hooks",
    );
    assert_eq!(app.get("/").unwrap().1.trim(), "v2");
    std::fs::remove_file(&path).unwrap();

    // pre-app-boot: its batch fails untouched; fixed, --resume runs it again and goes on.
    let _ = std::fs::remove_file(app.dir.join("hooks.log"));
    logging_hook(&app, ".kamal/hooks", "pre-app-boot", 4);
    let before = app.running();
    let out = app.deploy(&["--image", "v1"]);
    assert_exit(&out, 1, "a failing pre-app-boot");
    assert!(
        said(&out).contains("the pre-app-boot hook exited 4"),
        "{}",
        said(&out)
    );
    assert_eq!(app.running(), before);
    assert_eq!(app.replay_json()["deployment"]["status"], "halted");
    logging_hook(&app, ".kamal/hooks", "pre-app-boot", 0);
    // The resume follows the journal's hooks, whatever the tree holds by then.
    logging_hook(&app, ".kamal/hooks", "post-app-boot", 0);
    let out = app.deploy(&["--resume"]);
    assert_exit(&out, 0, "resumed after fixing the hook");
    assert_eq!(app.get("/").unwrap().1.trim(), "v1");
    assert_eq!(
        names(&log(&app)),
        ["pre-app-boot", "pre-app-boot"],
        "run again on resume; post-app-boot was not there when the deployment started"
    );
    std::fs::remove_file(app.dir.join(".kamal/hooks/pre-app-boot")).unwrap();
    std::fs::remove_file(app.dir.join(".kamal/hooks/post-app-boot")).unwrap();

    // post-deploy: reported, the deployment stays completed.
    logging_hook(&app, ".kamal/hooks", "post-deploy", 6);
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 0, "a failing post-deploy");
    assert!(
        said(&out)
            .contains("the post-deploy hook exited 6; the deployment is complete and stays so"),
        "{}",
        said(&out)
    );
    assert_eq!(app.get("/").unwrap().1.trim(), "v2");
    assert_eq!(app.replay_json()["deployment"]["status"], "completed");
    app.remove_containers();
}

#[test]
fn a_hook_killed_with_the_deployer_runs_again_on_resume_and_one_that_passed_does_not() {
    let _serial = serial();
    require_docker();
    let app = App::new("hookkill", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "v1");
    logging_hook(&app, ".kamal/hooks", "pre-deploy", 0);
    // Slow: the deployer is killed while it runs.
    hook(
        &app,
        ".kamal/hooks",
        "pre-app-boot",
        "echo pre-app-boot-start >> hooks.log; sleep 30.129 & sleep 3; echo pre-app-boot-end >> hooks.log",
    );
    let mut child = app
        .deploy_cmd(&["--image", "v2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_log(&app, "pre-app-boot-start");
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
    // The hook dies with the deployer (PR_SET_PDEATHSIG), even by SIGKILL: it never
    // finishes alone, while a resume runs it again.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !log(&app).contains(&"pre-app-boot-end".to_string()),
        "the killed deployer's hook ran on: {:?}",
        log(&app)
    );
    assert!(
        !runs("sleep 30.129"),
        "what the killed deployer's hook started runs on"
    );
    assert_eq!(app.get("/").unwrap().1.trim(), "v1");
    let out = app.deploy(&["--resume"]);
    assert_exit(&out, 0, "resume after a kill inside pre-app-boot");
    assert_eq!(app.get("/").unwrap().1.trim(), "v2");
    let lines = log(&app);
    assert_eq!(
        names(&lines)
            .iter()
            .filter(|n| n.starts_with("pre-deploy"))
            .count(),
        1,
        "pre-deploy passed before the kill: never again: {lines:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| *l == "pre-app-boot-start").count(),
        2,
        "the interrupted pre-app-boot ran again: {lines:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| *l == "pre-app-boot-end").count(),
        1,
        "only the resumed run finished: {lines:?}"
    );
    let kinds = kinds_of_latest(&app);
    assert_eq!(
        kinds.iter().filter(|k| *k == "hook-started").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "hook-ended").count(),
        2,
        "{kinds:?}"
    );
    app.remove_containers();
}

/// On the fake servers, hosts rolling two at a time: `pre-app-boot` and `post-app-boot`
/// run once per batch with `KAMAL_HOSTS` naming that batch, before and after it, while
/// traffic keeps flowing; a `pre-app-boot` that fails for the second batch halts the
/// rollout with the first batch on the new version and the second untouched.
#[test]
fn app_boot_hooks_run_per_batch_and_a_failing_one_leaves_its_batch_untouched() {
    let _serial = serial();
    fleet::fleet_up();
    let app = fleet::FleetApp::new("hookbatch", "batch_size: 2\n");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "v1");
    let hooks = app.dir.join(".kamal/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    for (name, body) in [
        (
            "pre-app-boot",
            "echo \"pre $KAMAL_HOSTS\" >> hooks.log\n\
             case \"$KAMAL_HOSTS\" in *.13*) [ -e fail-second ] && exit 7;; esac\nexit 0",
        ),
        ("post-app-boot", "echo \"post $KAMAL_HOSTS\" >> hooks.log"),
    ] {
        let path = hooks.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let log = || {
        std::fs::read_to_string(app.dir.join("hooks.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let load = app.load();
    assert_exit(&app.deploy(&["--image", "v2"]), 0, "v2 in two batches");
    fleet::assert_no_failures(load, "a rollout with app-boot hooks");
    let (first, second) = (
        format!("{},{}", fleet::HOSTS[0], fleet::HOSTS[1]),
        fleet::HOSTS[2].to_string(),
    );
    assert_eq!(
        log(),
        [
            format!("pre {first}"),
            format!("post {first}"),
            format!("pre {second}"),
            format!("post {second}")
        ]
    );
    assert_eq!(app.versions(), ["v2", "v2", "v2"]);

    std::fs::remove_file(app.dir.join("hooks.log")).unwrap();
    std::fs::write(app.dir.join("fail-second"), "").unwrap();
    let out = app.deploy(&["--image", "v1"]);
    assert_exit(&out, 1, "pre-app-boot fails for the second batch");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(said.contains("the pre-app-boot hook exited 7"), "{said}");
    assert!(
        !said.contains(&format!("[web@{}] start-new", fleet::HOSTS[2])),
        "{said}"
    );
    assert_eq!(app.versions(), ["v1", "v1", "v2"]);
    assert_eq!(app.running_versions(3), vec!["v2"], "host 3 untouched");
    std::fs::remove_file(app.dir.join("fail-second")).unwrap();
    assert_exit(&app.deploy(&["--resume"]), 0, "resumed");
    assert_eq!(app.versions(), ["v1", "v1", "v1"]);
    assert_eq!(
        log(),
        [
            format!("pre {first}"),
            format!("post {first}"),
            format!("pre {second}"),
            format!("pre {second}"),
            format!("post {second}")
        ]
    );
}

/// Whether a process whose command line contains `marker` runs.
fn runs(marker: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Ctrl-C at a terminal signals the whole foreground process group. A hook runs in a
/// group of its own: odysseus records the interruption (the hook's run is unfinished, not
/// failed), then ends the hook with everything it started; the resume runs it again. A
/// Ctrl-C once the deployment ended (during `post-deploy`) closes it as ended.
#[test]
fn ctrl_c_during_a_hook_interrupts_the_deploy_and_ends_the_hooks_whole_group() {
    use std::os::unix::process::CommandExt;
    let _serial = serial();
    require_docker();
    let app = App::new("hookint", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "v1");
    hook(
        &app,
        ".kamal/hooks",
        "pre-deploy",
        "echo pre-deploy-start >> hooks.log; sleep 30127 & wait; echo pre-deploy-end >> hooks.log",
    );
    // Found at the start, so the deployment runs it once it completes.
    hook(
        &app,
        ".kamal/hooks",
        "post-deploy",
        "echo post-deploy-start >> hooks.log; sleep 30128 & wait",
    );
    let ctrl_c = |marker: &str, args: &[&str]| {
        let mut cmd = app.deploy_cmd(args);
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let child = cmd.spawn().unwrap();
        wait_for_log(&app, marker);
        std::thread::sleep(Duration::from_millis(300));
        // As a terminal does: the whole foreground group. Through bash's builtin: procps
        // 4.0.2's `kill -INT -PGID` signals every process on the machine (kill(-1)).
        let _ = Command::new("bash")
            .args(["-c", &format!("kill -INT -- -{}", child.id())])
            .status();
        child.wait_with_output().unwrap()
    };
    // Inside pre-connect (before any connection): the hook's group ends, nothing starts.
    hook(
        &app,
        ".kamal/hooks",
        "pre-connect",
        "echo pre-connect-start >> hooks.log; sleep 30.132 & wait",
    );
    let out = ctrl_c("pre-connect-start", &["--image", "v2"]);
    assert_exit(&out, 3, "Ctrl-C inside pre-connect");
    assert!(
        stderr(&out).contains("while the pre-connect hook ran")
            && stderr(&out).contains("Nothing was changed"),
        "{}",
        stderr(&out)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !runs("sleep 30.132"),
        "pre-connect's child outlived the run"
    );
    assert_eq!(app.get("/").unwrap().1.trim(), "v1");
    std::fs::remove_file(app.dir.join(".kamal/hooks/pre-connect")).unwrap();

    let out = ctrl_c("pre-deploy-start", &["--image", "v2"]);
    assert_exit(&out, 3, "Ctrl-C inside pre-deploy");
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !runs("sleep 30127"),
        "the hook's child outlived the interruption"
    );
    assert!(!log(&app).contains(&"pre-deploy-end".to_string()));
    let kinds = kinds_of_latest(&app);
    assert!(!kinds.contains(&"hook-failed".to_string()), "{kinds:?}");
    assert!(!kinds.contains(&"hook-ended".to_string()), "{kinds:?}");
    assert_eq!(app.get("/").unwrap().1.trim(), "v1");

    // The resume runs it again (quickly now), then a slow post-deploy is interrupted:
    // the deployment is complete and is closed as such.
    hook(
        &app,
        ".kamal/hooks",
        "pre-deploy",
        "echo pre-deploy-again >> hooks.log",
    );
    let out = ctrl_c("post-deploy-start", &["--resume"]);
    assert_exit(&out, 0, "Ctrl-C inside post-deploy, after the end");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Deployed odysseus-demo:v2"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(!runs("sleep 30128"), "post-deploy's child outlived the run");
    assert_eq!(app.get("/").unwrap().1.trim(), "v2");
    assert_eq!(app.replay_json()["deployment"]["status"], "completed");
    // Nothing is left to resume.
    let again = app.deploy(&["--resume"]);
    assert_exit(&again, 2, "nothing to resume");
    app.remove_containers();
}

/// A resume from a checkout without the hooks the deployment recorded does not pass its
/// gates silently: the run fails and says why; `--skip-hooks` says to run none.
#[test]
fn a_recorded_hook_missing_from_the_checkout_fails_unless_hooks_are_skipped() {
    let _serial = serial();
    require_docker();
    let app = App::new("hookgone", "odysseus-demo", "");
    assert_exit(&app.deploy(&["--image", "v1"]), 0, "v1");
    hook(
        &app,
        ".kamal/hooks",
        "pre-app-boot",
        "echo pre-app-boot-start >> hooks.log; sleep 30",
    );
    let mut child = app
        .deploy_cmd(&["--image", "v2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_log(&app, "pre-app-boot-start");
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
    std::fs::remove_dir_all(app.dir.join(".kamal")).unwrap();
    let out = app.deploy(&["--resume"]);
    assert_exit(&out, 1, "resume without the recorded hook");
    assert!(
        stderr(&out).contains("none is in .odysseus/hooks or .kamal/hooks here")
            || String::from_utf8_lossy(&out.stdout)
                .contains("none is in .odysseus/hooks or .kamal/hooks here"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.get("/").unwrap().1.trim(), "v1");
    // Whether the failed gate halted the deployment or rolled its untouched batch back,
    // the same image with --skip-hooks goes on (a resume) or starts again.
    let out = app.deploy(&["--image", "v2", "--skip-hooks"]);
    assert_exit(&out, 0, "v2 with --skip-hooks");
    assert_eq!(app.get("/").unwrap().1.trim(), "v2");
    app.remove_containers();
}

/// Kamal's `hooks_path:` names the only folder hooks are looked for in, relative to the
/// project's root (here `config/deploy.yml`'s parent), run from `-c` given relative to a
/// working directory elsewhere.
#[test]
fn hooks_path_names_the_only_folder_hooks_come_from() {
    let _serial = serial();
    require_docker();
    let app = App::new("hookpath", "odysseus-demo", "hooks_path: ci/hooks\n");
    // Kamal's layout: config/deploy.yml in the project.
    let config_dir = app.dir.join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::rename(app.config(), config_dir.join("deploy.yml")).unwrap();
    hook(
        &app,
        "ci/hooks",
        "pre-deploy",
        "echo from-hooks-path >> hooks.log",
    );
    // Not looked at once hooks_path is set.
    hook(
        &app,
        ".kamal/hooks",
        "pre-deploy",
        "echo from-kamal >> hooks.log; exit 1",
    );
    let out = Command::new(real::odysseus_bin())
        .current_dir(app.dir.parent().unwrap())
        .args(["deploy", "--image", "v1", "-c"])
        .arg(format!(
            "{}/config/deploy.yml",
            app.dir.file_name().unwrap().to_string_lossy()
        ))
        .env_remove("ODYSSEUS_STATE_DIR")
        .output()
        .unwrap();
    assert_exit(&out, 0, "a deploy with hooks_path");
    assert_eq!(log(&app), vec!["from-hooks-path".to_string()]);
    app.remove_containers();
}
