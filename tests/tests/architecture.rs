//! Architecture invariants that the compiler cannot check, checked on the sources.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The state machine is pure: no async runtime, no storage, no clock, no IO, no logging.
#[test]
fn the_state_machine_does_no_io() {
    let machine = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/src/machine");
    let mut files = Vec::new();
    rust_files(&machine, &mut files);
    assert!(
        files.len() >= 5,
        "machine sources not found in {}",
        machine.display()
    );
    let forbidden = [
        "tokio",
        "sled",
        "std::fs",
        "std::net",
        "std::io",
        "std::time",
        "SystemTime",
        "Instant",
        "tracing",
        "std::thread",
        "std::process",
        "println!",
        "eprintln!",
        "async ",
    ];
    for file in files {
        // Comments may name what is absent; code may not use it.
        let text: String = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for word in forbidden {
            assert!(
                !text.contains(word),
                "{} mentions `{word}`: the machine must stay pure",
                file.display()
            );
        }
    }
}

/// Step logic is written once, in `executors/src/steps`: the Docker hosts and the
/// simulated world only provide host operations, so neither may decide per step.
#[test]
fn steps_are_written_once() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../executors/src");
    for dir in ["docker", "sim"] {
        let mut files = Vec::new();
        rust_files(&root.join(dir), &mut files);
        assert!(files.len() >= 5, "{dir} sources not found");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(
                !text.contains("StepName::"),
                "{} matches on steps: step logic belongs in executors/src/steps",
                file.display()
            );
        }
    }
    let steps = std::fs::read_to_string(root.join("steps/mod.rs")).unwrap();
    assert!(
        steps.contains("StepName::StopOld")
            && steps.contains("impl<H: HostOps> Executor for Steps<H>")
    );
}

/// odysseus never listens on a TCP port (issue 11): a local port is open to every user
/// of the machine. Tunnels are unix sockets in a private directory; Caddy's admin API is
/// reached through the Docker engine.
#[test]
fn nothing_listens_on_a_tcp_port() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["engine/src", "executors/src", "cli/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 30, "sources not found");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for listener in ["TcpListener", "UdpSocket"] {
            assert!(
                !text.contains(listener),
                "{} uses {listener}: odysseus must not listen on a network port",
                file.display()
            );
        }
    }
}
