//! Why a run does nothing, worded for the person who asked, with what to run instead.

use odysseus_engine::machine::{Phase, Purpose};
use odysseus_engine::runtime::Refusal;

use super::{next_command, what_next};
use crate::config::Config;
use crate::exit::{Exit, UsageError};
use crate::GlobalArgs;

/// Says why nothing runs, and what to run instead.
pub(super) fn refuse(
    global: &GlobalArgs,
    config: &Config,
    wanted: Option<String>,
    refusal: Refusal,
) -> anyhow::Result<Exit> {
    match refusal {
        Refusal::NoVersion => Err(UsageError(crate::version::none_message(&global.config)).into()),
        Refusal::NothingUnfinished => Err(UsageError(format!(
            "service {} has no unfinished deployment to resume, abort or abandon",
            config.service
        ))
        .into()),
        Refusal::Narrowed { id } => {
            // Its plan names its own targets; a narrowed run cannot continue it.
            eprintln!(
                "odysseus: deployment {id} is unfinished; --hosts and --roles apply to new deployments only.\n{}",
                what_next(global)
            );
            Ok(Exit::Blocked)
        }
        Refusal::Unfinished {
            id,
            image,
            version,
            phase,
            serving_new,
        } => {
            let mut why = format!(
                "odysseus: deployment {id} of {image}:{version} is unfinished ({}); refusing to start {}:{}.\n",
                phase.as_str(),
                config.image,
                wanted.unwrap_or_default()
            );
            if phase == Phase::Halted {
                why.push_str(&format!(
                    "It is halted and {} serve(s) its new version: --supersede replaces it anyway, leaving them to the new deployment.\n",
                    serving_new.join(", ")
                ));
            }
            why.push_str(&what_next(global));
            why.push_str(&format!(
                "\nTo end it without touching any container: {}",
                next_command(global, "--abandon REASON")
            ));
            eprintln!("{why}");
            Ok(Exit::Blocked)
        }
        Refusal::UnfinishedBeforeOperation { id, purpose } => {
            eprintln!(
                "odysseus: {} {id} of {} is unfinished: finish or end it first.\n{}{}",
                if purpose.is_undoable() {
                    "deployment"
                } else {
                    purpose.as_str()
                },
                config.service,
                super::what_next_for(global, purpose),
                if purpose.is_undoable() {
                    format!(
                        "\nTo end it without touching any container: {}",
                        next_command(global, "--abandon REASON")
                    )
                } else {
                    String::new()
                }
            );
            Ok(Exit::Blocked)
        }
        Refusal::OperationUnfinished { id, purpose } => {
            eprintln!(
                "odysseus: the {} {id} of {} is unfinished; a deploy does not carry it on.\nTo finish it: {}\nTo end it where it stands: {}",
                purpose.as_str(),
                config.service,
                next_command(global, "--resume"),
                next_command(global, "--abandon REASON")
            );
            Ok(Exit::Blocked)
        }
        Refusal::OperationNotUndone { id, purpose } => {
            let why = match purpose {
                Purpose::Cleanup => "what it removed cannot be brought back, so it is not rolled back",
                _ => "it is not rolled back (maintenance and live are each other's undo: once this one is finished or ended, run `odysseus app live` or `odysseus app maintenance`)",
            };
            eprintln!(
                "odysseus: {id} is a {}: {why}.\nTo finish it: {}\nTo end it where it stands: {}{}",
                purpose.as_str(),
                next_command(global, "--resume"),
                next_command(global, "--abandon REASON"),
                if purpose == Purpose::Cleanup {
                    " (then deploy to put the service back)"
                } else {
                    ""
                }
            );
            Ok(Exit::Blocked)
        }
    }
}
