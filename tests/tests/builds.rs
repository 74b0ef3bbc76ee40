//! Building the image (issue 12 §2), through the binary on the real engine: a repository
//! with a Dockerfile deploys with no flag at all (the commit is the version, the image is
//! built first), `.dockerignore` is honoured, secret build args never reach the output or
//! the journal, a failing Dockerfile ends the deployment with nothing changed and the
//! failing step named, and a deploy killed after its build is resumed without building
//! again.

#[path = "support/real.rs"]
mod real;

use std::path::Path;
use std::process::Command;

use real::{
    assert_exit, assert_no_file_holds, docker, git, require_docker, serial, spawn_until, stderr,
    App,
};

const TOKEN: &str = "s3cr3t-build-token-4711";

/// The app's Dockerfile: the demo image with this repository's site on top, a build arg
/// and a secret one (printed by the build, so its output must be filtered).
fn write_app(dir: &Path, page: &str, extra_run: &str) {
    std::fs::create_dir_all(dir.join("site/private")).unwrap();
    std::fs::write(dir.join("site/index.html"), format!("{page}\n")).unwrap();
    std::fs::write(dir.join("site/health"), "ok\n").unwrap();
    std::fs::write(dir.join("site/private/key"), "never in the image\n").unwrap();
    std::fs::write(
        dir.join(".dockerignore"),
        "# not for the image\nsite/private\n.odysseus\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM odysseus-demo:v1\n\
             ARG GREETING=hello\n\
             ARG BUILD_TOKEN\n\
             COPY site/ /www/\n\
             RUN echo \"$GREETING\" > /www/greeting && echo \"the token is $BUILD_TOKEN\"\n\
             {extra_run}\n"
        ),
    )
    .unwrap();
}

fn commit(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

fn deploy(app: &App) -> std::process::Output {
    app.deploy_cmd(&[])
        .env("BUILD_TOKEN", TOKEN)
        .output()
        .unwrap()
}

fn kinds(app: &App) -> Vec<String> {
    app.replay_json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_repository_deploys_with_no_flag_and_a_failing_dockerfile_changes_nothing() {
    let _serial = serial();
    require_docker();
    let image = format!("odysseus-built-{}", std::process::id());
    let app = App::new(
        "built",
        &image,
        "builder:\n  build_args:\n    GREETING: bonjour\n  secrets: [BUILD_TOKEN]\n",
    );
    let dir = app.dir.clone();
    git(&dir, &["init", "-q"]);
    write_app(&dir, "first", "");
    let first = commit(&dir, "first");

    // The dry run says the build comes first, and builds nothing.
    let dry = app
        .deploy_cmd(&["--dry-run"])
        .env("BUILD_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_exit(&dry, 0, "dry run");
    let said = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        said.contains(&format!(
            "first builds {image}:{} on this machine",
            &first[..12]
        )),
        "{said}"
    );
    assert!(
        said.contains("build args BUILD_TOKEN, GREETING") && !said.contains(TOKEN),
        "{said}"
    );

    let out = deploy(&app);
    assert_exit(&out, 0, "build and deploy with no flag");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("Building {image}:{}", &first[..12])),
        "{err}"
    );
    assert!(
        !err.contains(TOKEN),
        "a secret build arg reached the output:\n{err}"
    );
    assert!(
        err.contains("the token is"),
        "the build's output is shown:\n{err}"
    );
    assert_eq!(app.get("/").unwrap(), (200, "first\n".into()));
    assert_eq!(app.get("/greeting").unwrap(), (200, "bonjour\n".into()));
    assert_eq!(
        app.get("/private/key").unwrap().0,
        404,
        ".dockerignore is honoured"
    );
    let label = docker(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"odysseus.git-commit\"}}",
        &format!("{image}:{}", &first[..12]),
    ]);
    assert_eq!(label.trim(), first);
    let k = kinds(&app);
    assert_eq!(
        &k[..4],
        ["deployment-started", "build-started", "built", "provenance"],
        "{k:?}"
    );
    let doc = app.replay_json();
    let build = doc["events"][1]["detail"].as_str().unwrap().to_string();
    assert!(
        build.contains(&first) && build.contains("GREETING") && build.contains("BUILD_TOKEN"),
        "{build}"
    );
    assert_no_file_holds(&dir.join(".odysseus"), TOKEN);

    // A Dockerfile that fails: the deployment ends, the step and its last lines are
    // named, and the first version goes on serving alone.
    let serving = app.running();
    // It prints the secret as it fails: the reason (shown, and journaled) must hide it.
    write_app(
        &dir,
        "second",
        "RUN echo \"about to fail with $BUILD_TOKEN\" && exit 7",
    );
    let second = commit(&dir, "second");
    let out = deploy(&app);
    assert_exit(&out, 1, "a failing build");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        text.contains("could not be built: nothing was changed"),
        "{text}"
    );
    assert!(
        text.contains("Step 6/") && text.contains("exit 7"),
        "the failing step: {text}"
    );
    assert!(text.contains("about to fail"), "its last lines: {text}");
    assert!(!text.contains(TOKEN), "{text}");
    assert_eq!(app.running(), serving);
    assert_eq!(app.get("/").unwrap(), (200, "first\n".into()));
    let k = kinds(&app);
    assert_eq!(
        k,
        ["deployment-started", "build-started", "build-failed"],
        "{k:?}"
    );
    let status = Command::new(real::odysseus_bin())
        .args(["status", "--json", "-c"])
        .arg(app.config())
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains(&second[..12]),
        "a failed build leaves nothing unfinished: {}",
        String::from_utf8_lossy(&status.stdout)
    );

    // Fixed in the next commit: that deploy goes through (nothing to resume or abort).
    write_app(&dir, "third", "");
    let third = commit(&dir, "third");
    let out = deploy(&app);
    assert_exit(&out, 0, "the fixed commit");
    assert_eq!(app.get("/").unwrap(), (200, "third\n".into()));

    // Killed right after its build is journaled: the resume delivers and deploys that
    // image, and never builds again.
    write_app(&dir, "fourth", "");
    let fourth = commit(&dir, "fourth");
    let mut cmd = app.deploy_cmd(&[]);
    cmd.env("BUILD_TOKEN", TOKEN);
    let (mut child, _rest) = spawn_until(cmd, "Built ");
    child.kill().unwrap();
    child.wait().unwrap();
    let out = app
        .deploy_cmd(&["--resume"])
        .env("BUILD_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_exit(&out, 0, "resume after the build");
    assert!(
        !stderr(&out).contains("Building"),
        "built again:\n{}",
        stderr(&out)
    );
    assert_eq!(app.get("/").unwrap(), (200, "fourth\n".into()));
    let k = kinds(&app);
    assert_eq!(
        k.iter().filter(|k| *k == "build-started").count(),
        1,
        "{k:?}"
    );
    assert_eq!(k.iter().filter(|k| *k == "built").count(), 1, "{k:?}");
    let (_, version) = app.running().pop().unwrap();
    assert_eq!(version, fourth[..12]);
    let _ = third;

    // `--image` deploys a tag as it is: no build, so the build's secrets are not needed.
    let out = app.deploy_cmd(&["--image", &first[..12]]).output().unwrap();
    assert_exit(&out, 0, "an explicit tag");
    assert!(!stderr(&out).contains("Building"), "{}", stderr(&out));
    // A build without them is refused before anything starts, naming the key.
    let out = app.deploy_cmd(&["--build"]).output().unwrap();
    assert_exit(&out, 2, "a build lacking its secret");
    assert!(
        stderr(&out).contains("builder.secrets: BUILD_TOKEN is not set"),
        "{}",
        stderr(&out)
    );
    assert_no_file_holds(&dir.join(".odysseus"), TOKEN);

    for tag in [&first, &second, &third, &fourth] {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &format!("{image}:{}", &tag[..12])])
            .output();
    }
}

/// As the Ruby tool and Kamal run `docker run IMAGE <cmd>`: a role's `cmd` string reaches
/// the image's ENTRYPOINT as its arguments (an entrypoint that dispatches on `$1` is a
/// common pattern), and `builder.dockerfile` is found in `builder.context` (a decoy
/// Dockerfile beside deploy.yml that fails to build is never used).
#[test]
fn an_entrypoint_gets_the_role_cmd_as_arguments_and_the_dockerfile_is_read_in_its_context() {
    let _serial = serial();
    require_docker();
    let image = format!("odysseus-entry-{}", std::process::id());
    let app = App::new("entry", &image, "");
    let dir = app.dir.clone();
    git(&dir, &["init", "-q"]);
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM odysseus-demo:v1\nRUN exit 1\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("app/Dockerfile"),
        "FROM odysseus-demo:v1\nCOPY entry.sh /entry.sh\nENTRYPOINT [\"/bin/sh\", \"/entry.sh\"]\nCMD [\"web\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("app/entry.sh"),
        "case \"$1\" in\n  web) exec /bin/serve ;;\n  worker) echo \"worker-mode $2 [$3]\"; trap 'exit 0' TERM; while true; do sleep 1; done ;;\n  *) echo \"unknown: $*\"; exit 3 ;;\nesac\n",
    )
    .unwrap();
    let yaml = std::fs::read_to_string(app.config()).unwrap().replace(
        "servers:\n  web:\n    hosts: [local]\n",
        "servers:\n  worker:\n    hosts: [local]\n    cmd: \"worker extra-arg 'two words'\"\n    deploy:\n      stop_timeout: 2\n  web:\n    hosts: [local]\n",
    ) + "builder:\n  context: app\n  dockerfile: Dockerfile\n";
    std::fs::write(app.config(), yaml).unwrap();
    let commit_id = commit(&dir, "entry");
    let out = app.deploy(&[]);
    assert_exit(&out, 0, "build from app/ and deploy");
    assert!(stderr(&out).contains("app/Dockerfile"), "{}", stderr(&out));
    assert_eq!(
        app.get("/").unwrap(),
        (200, "v1\n".into()),
        "the web role runs the default CMD"
    );
    let logs = Command::new(real::odysseus_bin())
        .args(["logs", "local", "--role", "worker", "-c"])
        .arg(app.config())
        .output()
        .unwrap();
    assert_exit(&logs, 0, "worker logs");
    assert_eq!(
        String::from_utf8_lossy(&logs.stdout).trim(),
        "worker-mode extra-arg [two words]",
        "the entrypoint got the role's cmd as its arguments"
    );
    drop(app);
    let _ = Command::new("docker")
        .args(["rmi", "-f", &format!("{image}:{}", &commit_id[..12])])
        .output();
}

#[test]
fn several_platforms_are_refused_naming_buildx_and_a_missing_dockerfile_is_named() {
    let _serial = serial();
    require_docker();
    let app = App::new(
        "multiarch",
        "odysseus-multiarch",
        "builder:\n  arch: [amd64, arm64]\n",
    );
    git(&app.dir, &["init", "-q"]);
    write_app(&app.dir, "x", "");
    commit(&app.dir, "x");
    let out = deploy(&app);
    assert_exit(&out, 2, "several platforms");
    assert!(
        stderr(&out).contains("buildx") && stderr(&out).contains("linux/amd64, linux/arm64"),
        "{}",
        stderr(&out)
    );
    assert!(!app.dir.join(".odysseus").exists() || kinds_or_none(&app).is_empty());

    app.write_config(
        "odysseus-multiarch",
        "builder:\n  dockerfile: docker/Dockerfile.prod\n",
    );
    commit(&app.dir, "y");
    let out = app.deploy_cmd(&["--build"]).output().unwrap();
    assert_exit(&out, 1, "no Dockerfile there");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        text.contains("no Dockerfile at") && text.contains("docker/Dockerfile.prod"),
        "{text}"
    );
    assert!(app.running().is_empty());
}

fn kinds_or_none(app: &App) -> Vec<String> {
    let out = Command::new(real::odysseus_bin())
        .args(["history", "-c"])
        .arg(app.config())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// What a helper found attacking the builds, each turned into a check: a resume after a
/// build interrupted mid-way refuses a dirty tree (the image must be the commit); a
/// multi-line secret and a secret split across the engine's output chunks stay hidden; the
/// state dir (with its HMAC key) never goes into an image; a Dockerfile the engine cannot
/// parse is a build failure, not an interruption; a sparse file does not break the
/// context; a Dockerfile that is a link is refused.
#[test]
fn builds_resist_dirty_resumes_split_secrets_and_hostile_contexts() {
    let _serial = serial();
    require_docker();
    let image = format!("odysseus-hostile-{}", std::process::id());
    let pem = "-----BEGIN KEY-----\nLINEONEOFTHEKEYxyz\nLINETWOOFTHEKEYabc\n-----END KEY-----";
    let app = App::new(
        "hostile",
        &image,
        "builder:\n  secrets: [PEM_KEY, SPLIT_TOKEN]\n",
    );
    let dir = app.dir.clone();
    let run = |args: &[&str]| {
        app.deploy_cmd(args)
            .env("PEM_KEY", pem)
            .env("SPLIT_TOKEN", "SplitSecretValue2026")
            .output()
            .unwrap()
    };
    git(&dir, &["init", "-q"]);
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(dir.join("site/health"), "ok\n").unwrap();
    std::fs::write(dir.join("site/index.html"), "committed\n").unwrap();
    std::fs::File::create(dir.join("sparse.bin"))
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    std::fs::write(dir.join(".gitignore"), "sparse.bin\n").unwrap();
    // Prints the multi-line secret, then the other one in pieces across output chunks,
    // then sleeps: the moment to interrupt.
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM odysseus-demo:v1\nARG PEM_KEY\nARG SPLIT_TOKEN\nCOPY . /ctx/\nCOPY site/ /www/\n\
         RUN echo \"$PEM_KEY\" && for i in 0 4 8 12 16; do printf %s \"$(echo \"$SPLIT_TOKEN\" | cut -c$((i+1))-$((i+4)))\"; sleep 0.3; done; echo\n\
         RUN sleep 3\n",
    )
    .unwrap();
    commit(&dir, "one");
    let mut cmd = app.deploy_cmd(&[]);
    cmd.env("PEM_KEY", pem)
        .env("SPLIT_TOKEN", "SplitSecretValue2026");
    let (mut child, _rest) = spawn_until(cmd, "RUN sleep 3");
    child.kill().unwrap();
    child.wait().unwrap();
    // Interrupted while building; the tree changes without a commit: no resume builds it.
    std::fs::write(dir.join("site/index.html"), "NOT COMMITTED\n").unwrap();
    let out = run(&["--resume"]);
    assert_exit(&out, 3, "a resume over a dirty tree");
    assert!(
        stderr(&out).contains("uncommitted changes"),
        "{}",
        stderr(&out)
    );
    git(&dir, &["checkout", "--", "site/index.html"]);
    let out = run(&["--resume"]);
    assert_exit(&out, 0, "the resume at the clean commit");
    assert_eq!(app.get("/").unwrap(), (200, "committed\n".into()));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    for secret in [
        "LINEONEOFTHEKEYxyz",
        "LINETWOOFTHEKEYabc",
        "SplitSecretValue2026",
    ] {
        assert!(!all.contains(secret), "{secret} in the output:\n{all}");
        assert_no_file_holds(&dir.join(".odysseus"), secret);
    }
    // The pieces were joined into their line before filtering, not shown one by one.
    assert!(
        all.contains("[secret SPLIT_TOKEN]") && !all.contains("Spli"),
        "{all}"
    );
    // The image holds the context, but never the state dir.
    let (name, _) = app.running().pop().unwrap();
    let listing = docker(&["exec", &name, "busybox", "ls", "-a", "/ctx"]);
    assert!(
        listing.contains("Dockerfile") && !listing.contains(".odysseus"),
        "{listing}"
    );

    // A Dockerfile the engine cannot parse: build-failed, exit 1, nothing unfinished.
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM odysseus-demo:v1\nBOGUS instruction\n",
    )
    .unwrap();
    commit(&dir, "two");
    let out = run(&[]);
    assert_exit(&out, 1, "an unparsable Dockerfile");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("could not be built"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A link as the Dockerfile is never followed.
    std::fs::remove_file(dir.join("Dockerfile")).unwrap();
    std::fs::write(dir.join("elsewhere"), "FROM odysseus-demo:v1\n").unwrap();
    std::os::unix::fs::symlink(dir.join("elsewhere"), dir.join("Dockerfile")).unwrap();
    commit(&dir, "three");
    let out = run(&[]);
    assert_exit(&out, 1, "a linked Dockerfile");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("is a symbolic link"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(app.get("/").unwrap(), (200, "committed\n".into()));
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker images -q {image} | sort -u | xargs -r docker rmi -f"
        ))
        .output();
}

/// A deploy killed inside its `pre-build` hook has recorded no build yet: the resume
/// builds (it does not deploy an image that was never made), and only from the commit
/// the version names — a repository moved on since is refused, then built once it is back.
#[test]
fn a_deploy_killed_inside_pre_build_is_resumed_by_building_its_own_commit() {
    use std::os::unix::fs::PermissionsExt;
    let _serial = serial();
    require_docker();
    let image = format!("odysseus-prebuild-{}", std::process::id());
    let app = App::new("prebuild", &image, "");
    let dir = app.dir.clone();
    git(&dir, &["init", "-q"]);
    write_app(&dir, "first commit", "");
    let hooks = dir.join(".kamal/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(
        hooks.join("pre-build"),
        "#!/bin/sh\necho pre-build-start >> pre-build.log\nsleep 30.131\n",
    )
    .unwrap();
    std::fs::set_permissions(
        hooks.join("pre-build"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    // The hooks are the runner's, not the commit's: editing them leaves the tree clean.
    std::fs::write(dir.join(".gitignore"), "pre-build.log\n.odysseus\n.kamal\n").unwrap();
    let first = commit(&dir, "one");
    let (mut child, _rest) = spawn_until(app.deploy_cmd(&[]), "[pre-build] running");
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!kinds(&app).contains(&"build-started".to_string()));
    // The repository moves on: the resume refuses to build another commit under the
    // interrupted deployment's version.
    write_app(&dir, "second commit", "");
    commit(&dir, "two");
    std::fs::write(hooks.join("pre-build"), "#!/bin/sh\nexit 0\n").unwrap();
    let out = deploy_resume(&app);
    assert_exit(&out, 3, "a resume at another commit");
    assert!(
        stderr(&out).contains(&format!("builds commit {first}")),
        "{}",
        stderr(&out)
    );
    git(&dir, &["checkout", "-q", &first]);
    std::fs::write(hooks.join("pre-build"), "#!/bin/sh\nexit 0\n").unwrap();
    let out = deploy_resume(&app);
    assert_exit(&out, 0, "the resume at its own commit");
    assert_eq!(app.get("/").unwrap(), (200, "first commit\n".into()));
    let k = kinds(&app);
    assert_eq!(
        k.iter().filter(|k| *k == "build-started").count(),
        1,
        "{k:?}"
    );
    assert!(k.contains(&"built".to_string()), "{k:?}");
    app.remove_containers();
    docker(&["image", "rm", "-f", &format!("{image}:{}", &first[..12])]);
}

fn deploy_resume(app: &App) -> std::process::Output {
    app.deploy_cmd(&["--resume"])
        .env("BUILD_TOKEN", TOKEN)
        .output()
        .unwrap()
}
