//! `odysseus app exec|shell|console`: a one-off container of the image a role serves on a
//! host (a migration, a shell, the framework's console), with the role's env, volumes and
//! network, over the same connection deploys use. Removed afterwards.
//!
//! `odysseus app maintenance|live`: maintenance mode, run as a deployment of its own (see
//! `Purpose::Maintenance`).

use clap::{Args, Subcommand};

use odysseus_engine::machine::MaintenancePage;

use crate::config;
use crate::exit::{Exit, UsageError};
use crate::GlobalArgs;

#[derive(Args, Debug)]
pub struct AppArgs {
    #[command(subcommand)]
    command: AppCommand,
}

const ONEOFF_HELP: &str = "\
The container is made from the image the role serves on that host now, with the role's
env (secrets included, passed through the API), volumes and the `odysseus` network, and
is removed afterwards (also after Ctrl-C). At a terminal an interactive command gets a
PTY; piped input is passed through. odysseus exits with the command's exit code (130
after Ctrl-C without a terminal; 2 bad usage or config; 3 the host could not be reached).";

const MAINTENANCE_HELP: &str = "\
On every host of a web role, Caddy answers the service's requests with 503, the page
(your message, HTML-escaped) and `Retry-After`; the containers keep running, their
health checks go on, and deploys go on switching them underneath: the page stays until
`odysseus app live`. Caddy saves it with its config, so a restarted Caddy still answers
503. It is a deployment like any other: under the deploy lock, journaled (here and on
the hosts), shown by `status`, `history` and `replay`; an interrupted one is finished
with `odysseus deploy --resume` (or ended with --abandon).

Exit codes: 0 done; 1 a host failed (the run halted: --resume); 2 bad usage or config;
3 blocked or interrupted (the message names the next command).";

#[derive(Subcommand, Debug)]
enum AppCommand {
    /// Put the service in maintenance: Caddy answers 503 with a page on its web hosts,
    /// the containers keep running.
    #[command(after_help = MAINTENANCE_HELP)]
    Maintenance {
        /// The message on the page (plain text).
        #[arg(long)]
        message: Option<String>,
        /// The `Retry-After` header clients get, in seconds.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        retry_after: u32,
    },
    /// Take the service out of maintenance: Caddy sends its requests to the containers
    /// again.
    #[command(after_help = MAINTENANCE_HELP)]
    Live,
    /// Run a command once on HOST and return its exit code.
    #[command(after_help = ONEOFF_HELP)]
    Exec {
        /// A host of the config (`local`, `name` or `name:port`).
        host: String,
        /// The command, run by /bin/sh -c.
        #[arg(long)]
        command: String,
        /// The role whose image and env to use.
        #[arg(long, default_value = "web")]
        role: String,
        /// Pass this terminal's input to the command (a PTY when at a terminal).
        #[arg(short = 'i', long)]
        interactive: bool,
    },
    /// An interactive shell in a one-off container on HOST.
    #[command(after_help = ONEOFF_HELP)]
    Shell {
        /// A host of the config (`local`, `name` or `name:port`).
        host: String,
        /// The role whose image and env to use.
        #[arg(long, default_value = "web")]
        role: String,
        /// The shell to start.
        #[arg(long, default_value = "/bin/sh")]
        shell: String,
    },
    /// The app's console (deploy.yml's `console`, e.g. `bin/rails console`) in a one-off
    /// container on HOST.
    #[command(after_help = ONEOFF_HELP)]
    Console {
        /// A host of the config (`local`, `name` or `name:port`).
        host: String,
        /// The role whose image and env to use.
        #[arg(long, default_value = "web")]
        role: String,
        /// The console command, instead of deploy.yml's `console` (run by /bin/sh -c).
        #[arg(long)]
        command: Option<String>,
    },
}

pub fn run(global: &GlobalArgs, args: AppArgs) -> anyhow::Result<Exit> {
    if matches!(
        args.command,
        AppCommand::Maintenance { .. } | AppCommand::Live
    ) {
        let config = config::load(&global.config, &|name| std::env::var(name).ok())
            .map_err(|e| UsageError(e.to_string()))?;
        if !config
            .roles
            .iter()
            .any(|r| r.kind == odysseus_engine::machine::RoleKind::Web)
        {
            return Err(UsageError(format!(
                "{} has no web role in {}: nothing of it is routed by Caddy, so there is no page to put up",
                config.service,
                global.config.display()
            ))
            .into());
        }
    }
    let config = config::load(&global.config, &|name| std::env::var(name).ok())
        .map_err(|e| UsageError(e.to_string()))?;
    let (host, role, argv, stdin) = match args.command {
        AppCommand::Exec {
            host,
            command,
            role,
            interactive,
        } => (host, role, sh_c(command), interactive),
        AppCommand::Shell { host, role, shell } => (host, role, vec![shell], true),
        AppCommand::Maintenance {
            message,
            retry_after,
        } => {
            let page = MaintenancePage {
                message: message.unwrap_or_else(|| MaintenancePage::DEFAULT_MESSAGE.to_string()),
                retry_after_s: retry_after,
            };
            return super::deploy::run(
                global,
                super::deploy::DeployArgs::for_maintenance(Some(page)),
            );
        }
        AppCommand::Live => {
            return super::deploy::run(global, super::deploy::DeployArgs::for_maintenance(None))
        }
        AppCommand::Console {
            host,
            role,
            command,
        } => {
            let Some(command) = command.or_else(|| config.console.clone()) else {
                return Err(UsageError(format!(
                    "{} has no `console:` (the command `app console` runs, e.g. `console: bin/rails console`); add it or pass --command",
                    global.config.display()
                ))
                .into());
            };
            (host, role, sh_c(command), true)
        }
    };
    if !config.hosts().contains(&host) {
        return Err(UsageError(format!(
            "{host} is not a host of {} (hosts: {})",
            global.config.display(),
            config.hosts().join(", ")
        ))
        .into());
    }
    if !config
        .roles
        .iter()
        .any(|r| r.name == role && r.hosts.contains(&host))
    {
        return Err(UsageError(format!("role {role} does not run on {host}")).into());
    }
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let executor = match super::connect(&config, std::slice::from_ref(&host)).await {
            Ok(e) => e,
            Err(exit) => return Ok(exit),
        };
        match executor.run_oneoff(&host, &role, argv, stdin).await {
            Ok(code) => Ok(Exit::Code(code.clamp(0, 255) as u8)),
            Err(e) => {
                eprintln!("odysseus: {e}");
                Ok(Exit::Blocked)
            }
        }
    })
}

fn sh_c(command: String) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), command]
}
