//! Issue 13 §1 on the fake servers: the journal lives with the fleet. A deployer killed
//! mid-rollout whose state dir is then deleted (a CI runner that died) is finished from
//! a new state dir, and a third one reads every deployment with every event from the
//! hosts; a host that was cut off during part of a deploy catches up; a copy changed on
//! one host is reported with both versions and nothing is merged.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/real.rs"]
mod real;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fleet::*;
use real::{assert_exit, serial, stderr, MixedLoad};

/// Where a server keeps its copies of the service's journal (its own /var/lib/odysseus).
fn copies_dir(n: usize, service: &str) -> PathBuf {
    PathBuf::from(format!("{BASE}/s{n}/var-lib-odysseus/journal/{service}"))
}

/// Each copy on server `n`: (deployment id, its lines).
fn copies(n: usize, service: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(copies_dir(n, service)) else {
        return out;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".journal") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            out.push((id.to_string(), text.lines().map(String::from).collect()));
        }
    }
    out.sort();
    out
}

fn odysseus(state: &Path, app: &FleetApp, args: &[&str]) -> Command {
    let mut cmd = Command::new(real::odysseus_bin());
    cmd.args(args)
        .arg("-c")
        .arg(app.dir.join("deploy.yml"))
        .arg("--state-dir")
        .arg(state);
    cmd
}

fn run(state: &Path, app: &FleetApp, args: &[&str]) -> Output {
    odysseus(state, app, args).output().unwrap()
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The deployments `history --json` lists from `state`, as (id, status).
fn history(state: &Path, app: &FleetApp) -> Vec<(String, String)> {
    let out = run(state, app, &["history", "--json"]);
    assert_exit(&out, 0, "history");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    rows.iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Deploys from state dir A, SIGKILLs the deployer at instants drawn from the clock,
/// deletes A, and finishes from B with `deploy --resume`, under fresh, keep-alive and
/// long clients on every server; then a third state dir reads every deployment, every
/// event, verified, from the hosts alone.
#[test]
fn a_deployer_killed_mid_rollout_whose_state_dir_is_gone_is_finished_from_another() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("cijournal", "");
    let scratch = app.dir.join("runners");
    std::fs::create_dir_all(&scratch).unwrap();
    let first = scratch.join("first");
    assert_exit(
        &run(&first, &app, &["deploy", "--image", "v1"]),
        0,
        "first deploy",
    );
    std::fs::remove_dir_all(&first).unwrap();

    let loads: Vec<MixedLoad> = HOSTS
        .iter()
        .map(|h| {
            MixedLoad::start(
                &format!("{h}:80"),
                &app.host_header(),
                1,
                Duration::from_secs(600),
            )
        })
        .collect();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut kills = Vec::new();
    let mut resumed = 0;
    let mut version = "v1";
    for round in 0..4u64 {
        version = if version == "v1" { "v2" } else { "v1" };
        let a = scratch.join(format!("a{round}"));
        // Half the rounds from the start (before anything reached the hosts, often),
        // half from the instant the deployment is on record: most of those mid-rollout.
        let delay = Duration::from_millis(200 + splitmix(seed ^ round) % 4_000);
        let mut child = if round % 2 == 0 {
            odysseus(&a, &app, &["deploy", "--image", version])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        } else {
            real::spawn_until(
                odysseus(&a, &app, &["deploy", "--image", version]),
                "Deploying",
            )
            .0
        };
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        kills.push(format!(
            "{delay:?} after {}{}",
            if round % 2 == 0 {
                "the start"
            } else {
                "`Deploying`"
            },
            if finished { " (done)" } else { "" }
        ));
        // The runner is gone, and its state dir with it.
        std::fs::remove_dir_all(&a).unwrap();
        let b = scratch.join(format!("b{round}"));
        let out = run(&b, &app, &["deploy", "--resume"]);
        let said = stderr(&out);
        eprintln!("round {round}, killed after {delay:?}: --resume said:\n{said}");
        if out.status.code() == Some(0) {
            resumed += 1;
        } else {
            // Killed before anything reached the hosts, or after it was all done:
            // nothing to resume, and the hosts say which.
            assert!(
                said.contains("nothing to resume") || said.contains("no unfinished"),
                "round {round} (kill after {delay:?}): {said}"
            );
            // Then deploying the version again from B finishes the job.
            assert_exit(
                &run(&b, &app, &["deploy", "--image", version]),
                0,
                "deploy again",
            );
        }
        assert_eq!(app.versions(), vec![version; 3], "round {round}: {said}");
        // B's journal now holds what A wrote and the hosts kept.
        std::fs::remove_dir_all(&b).unwrap();
    }
    eprintln!("SIGKILL after: {kills:?}; {resumed} resumed from the hosts' journal");
    assert!(resumed >= 1, "no kill landed mid-rollout: {kills:?}");

    // An abort from elsewhere: killed while the second server switches, state dir gone,
    // rolled back from a new one.
    let other = if version == "v1" { "v2" } else { "v1" };
    let a = scratch.join("abort-a");
    let (mut child, _) = real::spawn_until(
        odysseus(&a, &app, &["deploy", "--image", other]),
        &format!("[web@{}] start-new", HOSTS[1]),
    );
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&a).unwrap();
    let out = run(&scratch.join("abort-b"), &app, &["deploy", "--abort"]);
    assert_exit(&out, 0, "--abort from a new state dir");
    assert_eq!(
        app.versions(),
        vec![version; 3],
        "rolled back: {}",
        stderr(&out)
    );
    for (i, load) in loads.into_iter().enumerate() {
        load.finish().assert_clean(
            &format!("s{} across kills at {kills:?} and the abort", i + 1),
            5,
        );
    }

    // A third machine: nothing but deploy.yml and SSH access.
    let c = scratch.join("c");
    let listed = history(&c, &app);
    assert!(listed.len() >= 5, "{listed:?}");
    // Every deployment ended: completed, or the one aborted from elsewhere.
    assert!(
        listed
            .iter()
            .all(|(_, status)| status == "completed" || status == "aborted"),
        "{listed:?}"
    );
    assert_eq!(listed[0].1, "aborted", "{listed:?}");
    let verify = run(&c, &app, &["replay", "--verify"]);
    assert_exit(&verify, 0, "replay --verify from the hosts");
    // Every event of every deployment: what the third state dir shows is what each
    // server holds, record for record.
    let on_s1 = copies(1, &app.service);
    for (id, _) in &listed {
        let out = run(&c, &app, &["replay", id, "--json", "--local"]);
        assert_exit(&out, 0, "replay");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let events = doc["events"].as_array().unwrap().len();
        let (_, lines) = on_s1
            .iter()
            .find(|(c, _)| c == id)
            .expect("s1 holds every deployment");
        assert_eq!(
            events,
            lines.len() - 1,
            "deployment {id}: events shown vs records on s1"
        );
    }
    for n in 2..=3 {
        assert_eq!(
            copies(n, &app.service),
            on_s1,
            "s{n} holds the same journal as s1"
        );
    }
}

/// A server cut off while the deploy rolls over the first one: the records it missed are
/// sent before its own steps run, so at the end every server holds the same journal.
/// Then one server's copy is changed (a record replaced by another valid one): a new
/// state dir's `history` shows both versions and exits 1, `deploy` refuses with nothing
/// changed; once the changed copy is removed, the next deploy brings it back.
#[test]
fn a_host_cut_off_during_a_deploy_catches_up_and_a_changed_copy_is_refused() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("hostcopies", "");
    let state = app.dir.join("state");
    assert_exit(&run(&state, &app, &["deploy", "--image", "v1"]), 0, "v1");
    let child = odysseus(&state, &app, &["deploy", "--image", "v2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // s3 is last in the rollout: cut it while s1 switches, back before its turn.
    std::thread::sleep(Duration::from_millis(300));
    servers(&["cut", "s3"]);
    std::thread::sleep(Duration::from_secs(4));
    let partial = copies(3, &app.service);
    servers(&["uncut", "s3"]);
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0, "v2 with s3 cut off for a while");
    assert_eq!(app.versions(), vec!["v2"; 3]);
    let s1 = copies(1, &app.service);
    let s3 = copies(3, &app.service);
    assert_eq!(s3, s1, "s3 caught up");
    let latest = &s1.last().unwrap().1;
    let before = partial.iter().find(|(id, _)| *id == s1.last().unwrap().0);
    assert!(
        before.is_none_or(|(_, l)| l.len() < latest.len()),
        "s3 missed records while cut off (else the cut proved nothing)"
    );

    // Change record 3 of the latest deployment on s2 into record 3 of the first one:
    // a valid record (its CRC is right), just not this deployment's.
    let (first_id, first_lines) = &s1[0];
    let (last_id, _) = s1.last().unwrap();
    let file = copies_dir(2, &app.service).join(format!("{last_id}.journal"));
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[4] = first_lines[4].clone();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    assert_ne!(first_id, last_id);

    let fresh = app.dir.join("fresh");
    let out = run(&fresh, &app, &["history"]);
    assert_exit(&out, 1, "history with a changed copy");
    let said = stderr(&out);
    assert!(
        said.contains(&format!(
            "deployment {last_id}'s journal differ at record 3"
        )) && said.contains("198.51.100.12")
            && said.contains("Nothing was merged"),
        "{said}"
    );
    let out = run(&fresh, &app, &["deploy", "--image", "v1"]);
    assert_exit(&out, 3, "deploy with a changed copy");
    assert!(
        stderr(&out).contains("Nothing was changed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.versions(), vec!["v2"; 3], "nothing moved");

    // The fix the report names: remove the copy you do not trust.
    std::fs::remove_file(&file).unwrap();
    // A copy that is not a file cannot be read: never skipped in silence.
    std::fs::create_dir(&file).unwrap();
    let out = run(&app.dir.join("fresh2"), &app, &["history"]);
    assert_exit(&out, 1, "history with a copy that is a directory");
    assert!(
        stderr(&out).contains("is not a regular file"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir(&file).unwrap();
    assert_exit(
        &run(&fresh, &app, &["deploy", "--image", "v1"]),
        0,
        "deploy after the fix",
    );
    assert_eq!(
        copies(2, &app.service),
        copies(1, &app.service),
        "s2's copy is back"
    );
    assert_exit(&run(&fresh, &app, &["replay", "--verify"]), 0, "verify");
}

/// `--abandon` from another state dir is a record like any other: under the deploy lock
/// (refused while another runner deploys), and into the hosts' copies, so a third state
/// dir sees the deployment abandoned and a later deploy does not carry it on.
#[test]
fn an_abandon_from_another_state_dir_waits_for_the_lock_and_reaches_the_hosts() {
    let _serial = serial();
    fleet_up();
    let app = FleetApp::new("abandonci", "");
    let runners = app.dir.join("runners");
    assert_exit(
        &run(&runners.join("a"), &app, &["deploy", "--image", "v1"]),
        0,
        "v1",
    );

    // Another runner abandons while a deploy is running: refused, nothing forked.
    let (mut live, rest) = real::spawn_until(
        odysseus(&runners.join("b"), &app, &["deploy", "--image", "v2"]),
        &format!("[web@{}] add-upstream", HOSTS[0]),
    );
    let out = run(
        &runners.join("c"),
        &app,
        &["deploy", "--abandon", "while it runs"],
    );
    assert_exit(&out, 3, "--abandon while another runner deploys");
    assert!(
        stderr(&out).contains("is being deployed on"),
        "{}",
        stderr(&out)
    );
    drop(rest);
    assert!(live.wait().unwrap().success());
    assert_eq!(app.versions(), vec!["v2"; 3]);

    // A runner dies mid-rollout; another abandons from an empty state dir.
    let d = runners.join("d");
    let (mut child, _) = real::spawn_until(
        odysseus(&d, &app, &["deploy", "--image", "v1"]),
        &format!("[web@{}] start-new", HOSTS[1]),
    );
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&d).unwrap();
    let out = run(
        &runners.join("e"),
        &app,
        &["deploy", "--abandon", "the runner died"],
    );
    assert_exit(&out, 0, "--abandon from an empty state dir");
    let f = runners.join("f");
    let listed = history(&f, &app);
    assert_eq!(listed[0].1, "abandoned", "{listed:?}");
    assert_exit(&run(&f, &app, &["replay", "--verify"]), 0, "verify");
    // The next deploy of the same version starts a new deployment, not the abandoned one.
    let out = run(&runners.join("g"), &app, &["deploy", "--image", "v1"]);
    assert_exit(&out, 0, "deploy after the abandon");
    assert!(!stderr(&out).contains("resuming"), "{}", stderr(&out));
    assert_eq!(app.versions(), vec!["v1"; 3]);
}
