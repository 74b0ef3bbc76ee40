//! deploy.yml as people write it, through the built binary: a corpus of real-world
//! shapes that must validate, and a corpus of broken files that must each fail with a
//! clear message (file and line where the parser knows it), exit code 2, never a panic.

mod support;

use std::path::PathBuf;
use std::process::Command;

fn odysseus() -> Command {
    let mut cmd = Command::new(support::odysseus_bin());
    // Secrets named by the corpus, as an operator would export them.
    cmd.env("POSTGRES_PASSWORD", "x");
    cmd
}

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_good_config_validates() {
    let files = corpus("good");
    assert!(files.len() >= 5);
    for file in files {
        let out = odysseus()
            .arg("validate")
            .arg("-c")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));
    }
}

#[test]
fn the_full_schema_is_acted_on_whole() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/good/full-schema.yml");
    let out = odysseus()
        .arg("validate")
        .arg("-c")
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("not yet supported"), "{text}");
    assert!(
        text.contains("warning: registry.server is ghcr.io, but image registry.example.com/team/myapp is not on it"),
        "{text}"
    );
    // Acted on now, so no longer listed.
    for key in [
        "builder",
        "retain_versions",
        "secrets_file",
        "registry",
        "dependencies",
    ] {
        assert!(!text.contains(&format!(": {key}\n")), "{key}: {text}");
    }
}

/// (file, what the message must say)
const BAD: &[(&str, &[&str])] = &[
    (
        "duration-unit.yml",
        &[
            "duration-unit.yml:8:21",
            "`2x` is not a duration: the units are s, m and h",
        ],
    ),
    (
        "image-two-tags.yml",
        &[
            "image-two-tags.yml:2: image:",
            "is not an image reference: REPOSITORY[:TAG]",
        ],
    ),
    (
        "typo.yml",
        &["typo.yml:3:", "did you mean `retain_versions`?"],
    ),
    (
        "nested-typo.yml",
        &["nested-typo.yml:7:", "did you mean `drain_timeout`?"],
    ),
    ("wrong-type.yml", &["wrong-type.yml:5:"]),
    ("empty.yml", &["the file is empty"]),
    ("not-a-mapping.yml", &["not-a-mapping.yml:"]),
    ("duplicate-keys.yml", &["duplicate-keys.yml:3:", "service"]),
    ("missing-service.yml", &["service: is required"]),
    (
        "missing-everything.yml",
        &[
            "3 problems",
            "service: is required",
            "image: is required",
            "servers: is required",
        ],
    ),
    ("web-without-app-port.yml", &["proxy.app_port"]),
    (
        "both-accessories-and-dependencies.yml",
        &["`dependencies` and its older name `accessories`"],
    ),
    (
        "dependency-bad-port.yml",
        &["dependency-bad-port.yml:11: dependencies.db.ports: `lots` is not CONTAINER"],
    ),
    (
        "bad-values.yml",
        &[
            "service",
            "on_failure",
            "batch_size",
            "listed twice",
            "options.memory",
            "boot_timeout",
            "must start with /",
            "expect_status",
        ],
    ),
    (
        "hostile-values.yml",
        &[
            "hostile-values.yml:3: service",
            "hostile-values.yml:4: image",
            "retain_versions",
            "`198.51.100.11; reboot` is not a host",
            "`$(touch /tmp/pwned)` is not a host",
            "`-oProxyCommand=sh` is not a host",
            "`host with spaces` is not a host",
            "the port must be 1 to 65535",
            "servers.web.healthcheck.interval",
            "servers.jobs.hosts: needs at least one host",
            "`A=B` is not an environment variable name",
            "PORT is in both `clear` and `secret`",
            "proxy.app_port: must be 1 to 65535",
            "proxy.hosts",
            "proxy.image",
            "proxy.http_port",
            "proxy.healthcheck.path",
            "proxy.healthcheck.interval",
            "`evil;x:1:2`",
        ],
    ),
    ("not-utf8.yml", &["not-utf8.yml:5: not UTF-8"]),
];

#[test]
fn every_broken_config_fails_clearly_with_exit_code_2() {
    let files = corpus("bad");
    assert_eq!(
        files.len(),
        BAD.len(),
        "every file of the bad corpus has its expectations here"
    );
    for (name, expected) in BAD {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("configs/bad")
            .join(name);
        let out = odysseus()
            .arg("validate")
            .arg("-c")
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{name}: {err}"
        );
        for needle in *expected {
            assert!(
                err.contains(needle),
                "{name}: expected `{needle}` in:\n{err}"
            );
        }
    }
}

/// The whole message of every broken file, as the user reads it: a change of wording or
/// a lost line number shows up in review.
#[test]
fn every_validation_error_reads_as_snapshotted() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/bad");
    for file in corpus("bad") {
        let out = odysseus()
            .current_dir(&dir)
            .arg("validate")
            .arg("-c")
            .arg(file.file_name().unwrap())
            .output()
            .unwrap();
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(
            format!("validate_{name}"),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn bad_values_are_all_reported_at_once() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/bad/bad-values.yml");
    let out = odysseus()
        .arg("validate")
        .arg("-c")
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let problems = err
        .lines()
        .filter(|l| l.trim_start().starts_with(file.to_str().unwrap()))
        .count();
    assert!(problems >= 8, "{err}");
}

/// A device or a huge file is refused at once, never read to its end (issue 11 §6).
#[test]
fn a_config_path_that_is_a_device_or_a_directory_is_refused_quickly() {
    for (path, says) in [
        ("/dev/zero", "larger than 1024 KiB"),
        ("/tmp", "is a directory"),
    ] {
        let out = odysseus().args(["validate", "-c", path]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{path}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{path}: {err}");
    }
}

/// A secret this machine has no value for is the environment's, not the file's:
/// `validate` warns naming where it would come from and exits 0; `deploy` refuses it with
/// its line, before anything else.
#[test]
fn a_secret_missing_here_is_a_warning_for_validate_and_an_error_for_deploy() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("configs/lacks-here/secret-missing-from-file.yml");
    let out = odysseus()
        .arg("validate")
        .arg("-c")
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("warning: env.secret: ODY_CORPUS_NOT_THERE has no value on this machine; deploy needs it from the environment or ../secrets/app.env"),
        "{text}"
    );
    assert!(
        !text.contains("ODY_CORPUS_PIN has no value"),
        "the file has it: {text}"
    );
    let out = odysseus()
        .args(["deploy", "--image", "v1", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "secret-missing-from-file.yml:10: env.secret: ODY_CORPUS_NOT_THERE is not set"
        ) && err.contains("or add it to ../secrets/app.env"),
        "{err}"
    );
}
