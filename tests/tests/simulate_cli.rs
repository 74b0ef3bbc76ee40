//! `odysseus simulate` through the built binary: the same seed and arguments print the
//! same bytes, the JSON summary has its documented fields, bad usage exits 2.

mod support;

use std::process::Command;

fn odysseus() -> Command {
    let mut cmd = Command::new(support::odysseus_bin());
    // Help texts show the variable's value: keep them independent of the environment.
    cmd.env_remove("ODYSSEUS_STATE_DIR");
    cmd
}

#[test]
fn the_same_seed_prints_the_same_output_and_the_summary_is_complete() {
    let args = [
        "simulate",
        "--hosts",
        "3",
        "--roles",
        "web,jobs",
        "--fail",
        "host2:drain-old:1",
        "--crash-after",
        "7",
        "--crash-after",
        "20",
        "--seed",
        "42",
        "--json",
    ];
    let first = odysseus().args(args).output().unwrap();
    let second = odysseus().args(args).output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(first.stdout, second.stdout, "same seed, same bytes");
    let text = String::from_utf8(first.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["terminal_state"], "completed");
    assert_eq!(summary["invariants_held"], true);
    assert_eq!(summary["crashes"].as_array().unwrap().len(), 2);
    let targets = summary["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 6);
    assert!(targets
        .iter()
        .all(|t| t["version"] == "v2" && t["host"].as_str().unwrap().starts_with("host")));
    let events = &lines[..lines.len() - 1];
    assert!(events.iter().any(|e| e["kind"] == "resumed"));
    assert!(events
        .iter()
        .all(|e| e["seq"].is_u64() && e["time"].is_string() && e["kind"].is_string()));
}

#[test]
fn a_failing_host_under_rollback_policy_ends_all_on_v1_and_bad_usage_exits_2() {
    let out = odysseus()
        .args([
            "simulate",
            "--hosts",
            "3",
            "--fail",
            "host2:await-healthy",
            "--on-failure",
            "rollback",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let summary: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(summary["terminal_state"], "rolled-back");
    assert!(summary["targets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["version"] == "v1"));
    for bad in [
        vec!["--hosts", "0"],
        vec!["--fail", "host9:start-new"],
        vec!["--fail", "host1:reboot"],
        vec!["--on-failure", "panic"],
    ] {
        let out = odysseus().arg("simulate").args(&bad).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

#[test]
fn help_texts_and_completions_are_stable() {
    for args in [
        vec!["--help"],
        vec!["deploy", "--help"],
        vec!["replay", "--help"],
        vec!["status", "--help"],
    ] {
        let out = odysseus().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let name = args
            .iter()
            .map(|a| a.trim_start_matches('-'))
            .collect::<Vec<_>>()
            .join("_");
        insta::assert_snapshot!(
            format!("help_{name}"),
            String::from_utf8(out.stdout).unwrap()
        );
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = odysseus().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains("deploy") && script.contains("replay") && script.contains("resume"),
            "{shell}"
        );
    }
    assert_eq!(
        odysseus()
            .args(["completions", "cmd.exe"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

/// A fleet rollback blames the target whose own step gave up, not one rolled back with
/// a retry of its own still pending.
#[test]
fn the_failure_names_the_target_whose_own_step_gave_up() {
    let out = odysseus()
        .args([
            "simulate",
            "--hosts",
            "2",
            "--batch",
            "2",
            "--on-failure",
            "rollback",
            "--fail",
            "host2:await-healthy",
            "--fail",
            "host1:add-upstream:5",
            "--json",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let failed: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "deployment-failed")
        .collect();
    assert_eq!(failed.len(), 1, "{text}");
    let reason = failed[0].to_string();
    assert!(
        reason.contains("web@host2") && !reason.contains("web@host1"),
        "{reason}"
    );
}
