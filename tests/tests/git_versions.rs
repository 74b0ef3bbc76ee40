//! Versions from git (issue 12 §1), through the binary on the real engine: without
//! `--image`, the version is the first 12 hex digits of the commit deploy.yml's repository
//! is at; the containers carry the full commit; tracked changes refuse the deploy naming
//! the files, untracked files only warn; `--image` always wins; outside a repository the
//! message says to pass `--image`.

#[path = "support/real.rs"]
mod real;

use real::{assert_exit, docker, git, require_docker, serial, stderr, App};

#[test]
fn without_image_the_commit_is_the_version_and_a_dirty_tree_is_refused() {
    let _serial = serial();
    require_docker();
    let app = App::new("gitver", "odysseus-demo", "");
    let dir = app.dir.clone();
    // Outside a repository: say what to do.
    let out = app.deploy(&[]);
    assert_exit(&out, 2, "no version outside git");
    assert!(
        stderr(&out).contains("--image") && stderr(&out).contains("not in a git repository"),
        "{}",
        stderr(&out)
    );

    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "deploy.yml"]);
    git(&dir, &["commit", "-q", "-m", "first"]);
    let commit = git(&dir, &["rev-parse", "HEAD"]);
    let version = &commit[..12];
    let tagged = format!("odysseus-demo:{version}");
    docker(&["tag", "odysseus-demo:v1", &tagged]);
    struct Untag(String);
    impl Drop for Untag {
        fn drop(&mut self) {
            docker(&["rmi", &self.0]);
        }
    }
    let _untag = Untag(tagged);

    std::fs::write(dir.join("notes.txt"), "not committed\n").unwrap();
    let out = app.deploy(&[]);
    assert_exit(&out, 0, "deploy of the commit");
    let err = stderr(&out);
    assert!(
        err.contains("untracked") && err.contains("notes.txt"),
        "{err}"
    );
    let warning = err.lines().find(|l| l.contains("untracked")).unwrap();
    assert!(
        !warning.contains(".odysseus"),
        "odysseus's own state dir is no untracked file: {warning}"
    );
    let running = app.running();
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(running[0].1, version);
    let label = docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"odysseus.git-commit\"}}",
        &running[0].0,
    ]);
    assert_eq!(label.trim(), commit);
    let (status, body) = app.get("/").unwrap();
    assert_eq!((status, body.trim()), (200, "v1"));
    // Now the state dir exists beside deploy.yml, untracked: it is not the app's.
    assert!(dir.join(".odysseus").is_dir());
    let out = app.deploy(&[]);
    assert_exit(&out, 0, "the same commit again");
    let err = stderr(&out);
    let warning = err
        .lines()
        .find(|l| l.contains("untracked"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        warning.contains("notes.txt") && !warning.contains(".odysseus"),
        "{warning}"
    );
    let running = app.running();

    // A tracked file changed: refused, naming it; nothing changes.
    let text = std::fs::read_to_string(app.config()).unwrap();
    std::fs::write(app.config(), format!("{text}# changed\n")).unwrap();
    let out = app.deploy(&[]);
    assert_exit(&out, 2, "dirty tree");
    let err = stderr(&out);
    assert!(
        err.contains("uncommitted changes")
            && err.contains("deploy.yml")
            && err.contains("--image"),
        "{err}"
    );
    assert_eq!(
        app.running(),
        running,
        "the refused deploy changed something"
    );

    // --image always wins.
    let out = app.deploy(&["--image", "v2"]);
    assert_exit(&out, 0, "--image over a dirty tree");
    let (status, body) = app.get("/").unwrap();
    assert_eq!((status, body.trim()), (200, "v2"));
    let now = app.running();
    let label = docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"odysseus.git-commit\"}}",
        &now[0].0,
    ]);
    assert_eq!(
        label.trim(),
        "",
        "a version that is not the commit carries no commit"
    );
}
