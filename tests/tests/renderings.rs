//! What `replay` and `history` print, text and JSON, through the built binary, for
//! journals the simulator writes deterministically (fixed seed, simulated clock): a change
//! of wording, order or a JSON field name shows up in review as a snapshot diff.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use odysseus_engine::machine::{FailurePolicy, RoleKind, StepName};
use odysseus_executors::sim::{self, CrashPoint, Fault, Scenario};
use support::ScratchDir;

fn odysseus() -> Command {
    Command::new(support::odysseus_bin())
}

/// A state dir holding the journal of `scenario`, and a deploy.yml naming its service.
fn state_dir_of(scenario: &Scenario, scratch: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(scratch).unwrap();
    let state = scratch.join("state");
    let outcome = sim::run(scenario, &state.join("journal"));
    assert!(
        outcome.invariants_held(),
        "{:?} {:?}",
        outcome.violations,
        outcome.errors
    );
    let config = scratch.join("deploy.yml");
    std::fs::write(
        &config,
        "service: app\nimage: app\nservers:\n  web:\n    hosts: [local]\nproxy:\n  app_port: 3000\n",
    )
    .unwrap();
    (config, state)
}

fn run(config: &Path, state: &Path, args: &[&str]) -> String {
    let out = odysseus()
        .args(args)
        .arg("-c")
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn scenarios() -> Vec<(&'static str, Scenario)> {
    let web_jobs = [("web", RoleKind::Web), ("jobs", RoleKind::Job)];
    let web = [("web", RoleKind::Web)];

    let completed = Scenario::simple(21, 2, &web_jobs);

    let mut crashed = Scenario::simple(22, 1, &web);
    crashed.faults = vec![Fault::LoseReply {
        host: "host1".into(),
        step: StepName::AddUpstream,
        times: 1,
    }];
    crashed.crashes = vec![CrashPoint::AfterAppend(5)];

    let mut rolled_back = Scenario::simple(23, 2, &web);
    rolled_back.on_failure = FailurePolicy::Rollback;
    rolled_back.faults = vec![Fault::Fail {
        host: "host2".into(),
        step: StepName::AwaitHealthy,
        times: 5,
        permanent: false,
    }];

    vec![
        ("completed", completed),
        ("crashed-then-resumed", crashed),
        ("rolled-back", rolled_back),
    ]
}

#[test]
fn replay_and_history_render_as_snapshotted() {
    for (name, scenario) in scenarios() {
        let scratch = ScratchDir::new(&format!("render-{name}"));
        let (config, state) = state_dir_of(&scenario, scratch.path());
        insta::assert_snapshot!(
            format!("replay_{name}"),
            run(&config, &state, &["replay", "latest", "--local"])
        );
        insta::assert_snapshot!(
            format!("replay_json_{name}"),
            run(&config, &state, &["replay", "latest", "--json", "--local"])
        );
        insta::assert_snapshot!(
            format!("history_{name}"),
            run(&config, &state, &["history", "--local"])
        );
        insta::assert_snapshot!(
            format!("history_json_{name}"),
            run(&config, &state, &["history", "--json", "--local"])
        );
    }
}
