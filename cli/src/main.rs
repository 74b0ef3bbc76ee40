//! The `odysseus` binary: argument parsing, dispatch, and turning every outcome into a
//! message and a documented exit code.

/// Everything odysseus prints on stderr leaves through these: each secret value of the
/// config is replaced by its name, whatever the message carries (an engine's or a
/// registry's error, a container's output). Declared before the modules, so they shadow
/// the standard macros in every one of them.
// A closed stderr (`odysseus deploy 2>&1 | head -1`) is no reason to panic mid-deploy:
// what cannot be written is dropped.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(
            ::std::io::stderr(),
            "{}",
            odysseus_executors::redact::hide_known(&format!($($arg)*))
        );
    }};
}
macro_rules! eprint {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::write!(
            ::std::io::stderr(),
            "{}",
            odysseus_executors::redact::hide_known(&format!($($arg)*))
        );
    }};
}

mod ask;
mod commands;
// The parser lives in the library half of this crate, so the fuzz target can reach it.
use odysseus::config;
mod exit;
mod hooks;
mod journal_sync;
mod progress;
mod render;
mod secrets_digest;
mod state;
mod version;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use exit::{Exit, UsageError};

/// Options every command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct GlobalArgs {
    /// The deploy.yml to use.
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        default_value = "deploy.yml",
        value_name = "FILE"
    )]
    pub config: std::path::PathBuf,
    /// Where the journal lives (default: `.odysseus/` beside deploy.yml).
    #[arg(long, global = true, env = "ODYSSEUS_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<std::path::PathBuf>,
    /// More detail on stderr: -v for what odysseus does (SSH, locks, steps), -vv for
    /// everything. RUST_LOG, when set, decides instead.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Parser, Debug)]
#[command(
    name = "odysseus",
    version,
    about = "Zero-downtime deploys of Docker containers behind Caddy, with a write-ahead event log",
    long_about = "odysseus moves a service to a new image on every server, one host (or batch) at a time: \
start the new container beside the old, wait until it is healthy, route it through Caddy, \
take the old one out, drain its connections, stop it. Every step is written to an event \
journal before it runs, so an interrupted deploy resumes or rolls back exactly.",
    after_help = "Exit codes: 0 done; 1 deployment failed or rolled back; 2 bad usage or config; \
3 blocked or interrupted (the message names the next command); 70 internal error."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Deploy a new image tag to every host of the config, with zero downtime.
    Deploy(commands::deploy::DeployArgs),
    /// Build `<image>:<version>` from deploy.yml's `builder` (and push it with --push).
    Build(commands::build::BuildArgs),
    /// The services the app needs beside it (deploy.yml's `dependencies`): boot, status,
    /// remove.
    #[command(alias = "accessory")]
    Dependency(commands::dependency::DependencyArgs),
    /// One-off commands in the service's image (e.g. `app exec HOST --command "rails db:migrate"`).
    App(commands::app::AppArgs),
    /// Take the service off a host: its containers and its route, journaled like a deploy.
    Cleanup(commands::cleanup::CleanupArgs),
    /// Every container the service has on each host: roles of every version, one-offs,
    /// dependencies, Caddy.
    Containers(commands::containers::ContainersArgs),
    /// Read-only checks of every host: SSH, Docker and access to it, disk, the lock, Caddy
    /// and its ports, the clock. One line per check.
    Doctor(commands::doctor::DoctorArgs),
    /// Who holds the deploy lock (`lock status`), or break it (`lock release`).
    Lock(commands::lock::LockArgs),
    /// What the container a role serves on a host printed (`-f` to follow).
    Logs(commands::logs::LogsArgs),
    /// Send an image from this machine to every host that lacks it (no registry).
    Push(commands::push::PushArgs),
    /// Show the audit trail of a deployment, from the journal.
    Replay(commands::replay::ReplayArgs),
    /// List the deployments of the service, newest first.
    History(commands::replay::HistoryArgs),
    /// Deploy an earlier version again (the previous one by default); `--list` shows them.
    Rollback(commands::rollback::RollbackArgs),
    /// What serves the service on each host now, Caddy's upstreams, locks, unfinished work.
    Status(commands::status::StatusArgs),
    /// Record the host key of new servers in known_hosts (an explicit opt-in).
    Trust(commands::trust::TrustArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Exit codes: 0 printed; 2 unknown shell.")]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Check deploy.yml and report every problem at once, touching nothing.
    Validate(commands::validate::ValidateArgs),
    /// The encrypted secrets file: generate-key, encrypt, decrypt (names only), edit.
    Secrets(commands::secrets::SecretsArgs),
    /// Run a deployment against a simulated fleet, with injected failures and crashes,
    /// and check every safety invariant.
    Simulate(commands::simulate::SimulateArgs),
}

fn main() -> ExitCode {
    // A panic is a bug: say so in one line, without a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "odysseus: internal error{location}: {}",
            panic_message(info)
        );
        eprintln!("odysseus: this is a bug; the journal is intact. Please report it.");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage.code()
            } else {
                Exit::Ok.code()
            });
        }
    };
    let global = cli.global;
    init_tracing(global.verbose);
    let result = std::panic::catch_unwind(|| match cli.command {
        Command::Deploy(args) => commands::deploy::run(&global, args),
        Command::Build(args) => commands::build::run(&global, args),
        Command::App(args) => commands::app::run(&global, args),
        Command::Dependency(args) => commands::dependency::run(&global, args),
        Command::Cleanup(args) => commands::cleanup::run(&global, args),
        Command::Containers(args) => commands::containers::run(&global, args),
        Command::Doctor(args) => commands::doctor::run(&global, args),
        Command::Lock(args) => commands::lock::run(&global, args),
        Command::Logs(args) => commands::logs::run(&global, args),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "odysseus",
                &mut out,
            );
            exit::print_stdout(&String::from_utf8_lossy(&out))
                .map(|_| Exit::Ok)
                .map_err(Into::into)
        }
        Command::Push(args) => commands::push::run(&global, args),
        Command::Replay(args) => commands::replay::replay(&global, args),
        Command::History(args) => commands::replay::history(&global, args),
        Command::Simulate(args) => commands::simulate::run(args),
        Command::Rollback(args) => commands::rollback::run(&global, args),
        Command::Status(args) => commands::status::run(&global, args),
        Command::Trust(args) => commands::trust::run(&global, args),
        Command::Validate(args) => commands::validate::run(&global, args),
        Command::Secrets(args) => commands::secrets::run(&global, args),
    });
    let code = match result {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            eprintln!("odysseus: {error:#}");
            let damaged = error
                .chain()
                .filter_map(|e| e.downcast_ref::<odysseus_engine::journal::Error>())
                .any(|e| e.is_damage());
            if damaged {
                eprintln!("odysseus: {}", state::damaged_journal_advice(&global));
            }
            if error.downcast_ref::<UsageError>().is_some() {
                Exit::Usage
            } else {
                Exit::Failed
            }
        }
        Err(_) => Exit::Internal,
    };
    ExitCode::from(code.code())
}

/// Diagnostics (tracing) on stderr: warnings only unless -v/-vv or RUST_LOG ask for more.
fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(match verbose {
            0 => "warn",
            1 => "warn,odysseus=debug,odysseus_engine=debug,odysseus_executors=debug",
            _ => "trace",
        })
    });
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| HiddenSecrets(std::io::stderr()))
        .with_ansi(colour)
        .with_target(false)
        .try_init();
}

fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    if let Some(s) = info.payload().downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = info.payload().downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// stderr for tracing, with the config's secret values hidden (see `eprintln!` above).
struct HiddenSecrets(std::io::Stderr);

impl std::io::Write for HiddenSecrets {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // tracing writes each event whole: hiding within one write sees every value.
        let text = odysseus_executors::redact::hide_known(&String::from_utf8_lossy(buf));
        self.0.write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
