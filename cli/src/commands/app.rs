//! `odysseus app exec`: a one-off command in a fresh container of the image a role
//! serves on a host (a migration, a console task), with the role's env and network.

use clap::{Args, Subcommand};

use crate::config;
use crate::exit::{Exit, UsageError};
use crate::GlobalArgs;

#[derive(Args, Debug)]
pub struct AppArgs {
    #[command(subcommand)]
    command: AppCommand,
}

#[derive(Subcommand, Debug)]
enum AppCommand {
    /// Run a command once on HOST and return its exit code.
    #[command(after_help = "\
The container is made from the image the role serves on that host now, with the role's
env (secrets included, passed through the API), volumes and the `odysseus` network, and
is removed afterwards. Its output is streamed; odysseus exits with the command's exit
code (2 bad usage or config, 3 the host could not be reached).")]
    Exec {
        /// A host of the config (`local`, `name` or `name:port`).
        host: String,
        /// The command, run by /bin/sh -c.
        #[arg(long)]
        command: String,
        /// The role whose image and env to use.
        #[arg(long, default_value = "web")]
        role: String,
    },
}

pub fn run(global: &GlobalArgs, args: AppArgs) -> anyhow::Result<Exit> {
    let AppCommand::Exec {
        host,
        command,
        role,
    } = args.command;
    let config = config::load(&global.config, &|name| std::env::var(name).ok())
        .map_err(|e| UsageError(e.to_string()))?;
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
        match executor.run_oneoff(&host, &role, &command).await {
            Ok(code) => Ok(Exit::Code(code.clamp(0, 255) as u8)),
            Err(e) => {
                eprintln!("odysseus: {e}");
                Ok(Exit::Blocked)
            }
        }
    })
}
