//! The closing summary of a deploy: what each target serves now (text or JSON).

use odysseus_engine::machine::{DeploymentState, Phase};

use crate::GlobalArgs;

/// The last line of `deploy --json`: the deployment and what each target serves now.
pub(super) fn print_summary_json(state: &DeploymentState) {
    let Some(started) = state.started() else {
        return;
    };
    let targets: Vec<serde_json::Value> = state
        .targets
        .iter()
        .zip(&started.plan.targets)
        .map(|(t, target)| {
            serde_json::json!({
                "host": target.host,
                "role": target.role,
                "serving": serving_version(started, t, target),
            })
        })
        .collect();
    let summary = serde_json::json!({
        "kind": "summary",
        "deployment": crate::render::deployment_json(state),
        "targets": targets,
        "failure": state.failure,
    });
    let _ = crate::exit::print_stdout(&format!("{summary}\n"));
}

fn serving_version(
    started: &odysseus_engine::machine::DeploymentStarted,
    t: &odysseus_engine::machine::TargetState,
    target: &odysseus_engine::machine::Target,
) -> Option<String> {
    match t.serving() {
        odysseus_engine::machine::Serving::New => Some(started.version.clone()),
        odysseus_engine::machine::Serving::Old => target.old_version.clone(),
        odysseus_engine::machine::Serving::InTransition => None,
    }
}

pub(super) fn print_summary(global: &GlobalArgs, state: &DeploymentState) {
    let Some(started) = state.started() else {
        return;
    };
    let seconds = state.last_at.millis_since(state.started_at) as f64 / 1000.0;
    let mut out = String::new();
    let cleanup = started.plan.purpose == odysseus_engine::machine::Purpose::Cleanup;
    let hosts = started.plan.hosts().join(", ");
    let verdict = match state.phase {
        Phase::Completed if cleanup => format!("Removed {} from {hosts}", started.service),
        Phase::Completed
            if started.plan.purpose == odysseus_engine::machine::Purpose::Maintenance =>
        {
            format!("{} is in maintenance on {hosts}: Caddy answers 503 there; `odysseus app live` ends it", started.service)
        }
        Phase::Completed if started.plan.purpose == odysseus_engine::machine::Purpose::Live => {
            format!("{} is live again on {hosts}", started.service)
        }
        Phase::Halted if !started.plan.purpose.is_undoable() => format!(
            "{} of {hosts} halted: a step failed",
            started.plan.purpose.as_str()
        ),
        Phase::Halted if cleanup => format!("Cleanup of {hosts} halted: a step failed"),
        Phase::Completed => format!("Deployed {}:{}", started.image, started.version),
        Phase::Halted => {
            "Deployment halted: a target failed; finished targets stay on the new version"
                .to_string()
        }
        Phase::RolledBack => "Deployment failed and was rolled back everywhere".to_string(),
        Phase::Aborted => "Deployment aborted: every target is back on the old version".to_string(),
        Phase::RollbackIncomplete => "Deployment failed and a rollback did not finish".to_string(),
        Phase::ReleaseFailed => {
            "The release command failed: nothing was switched on any host".to_string()
        }
        Phase::BuildFailed => {
            "The image could not be built: nothing was changed on any host".to_string()
        }
        Phase::HookFailed => format!(
            "{}: nothing was switched on any host",
            state.failure.as_deref().unwrap_or("a hook failed")
        ),
        other => format!("Deployment is {}", other.as_str()),
    };
    out.push_str(&format!(
        "{verdict} (deployment {}, {seconds:.1}s)\n",
        started.id
    ));
    for (t, target) in state.targets.iter().zip(&started.plan.targets) {
        if !started.plan.purpose.is_undoable() && !cleanup {
            out.push_str(&format!(
                "  {:<20} {:<10} {}\n",
                target.host,
                target.role,
                if t.status == odysseus_engine::machine::TargetStatus::Completed {
                    "done"
                } else {
                    "not done"
                }
            ));
            continue;
        }
        if cleanup {
            let what = if t.status == odysseus_engine::machine::TargetStatus::Completed {
                format!("removed {}", target.old_containers.join(", "))
            } else {
                format!("{} (not done)", t.status.as_str())
            };
            out.push_str(&format!(
                "  {:<20} {:<10} {what}\n",
                target.host, target.role
            ));
            continue;
        }
        let version = match t.serving() {
            odysseus_engine::machine::Serving::New => started.version.clone(),
            odysseus_engine::machine::Serving::Old => target
                .old_version
                .clone()
                .unwrap_or_else(|| "(none)".into()),
            odysseus_engine::machine::Serving::InTransition => "(in transition)".into(),
        };
        out.push_str(&format!(
            "  {:<20} {:<10} {}\n",
            target.host, target.role, version
        ));
    }
    if let Some(reason) = &state.failure {
        out.push_str(&format!("Reason: {reason}\n"));
    }
    out.push_str(&format!(
        "The full record: odysseus replay {} -c {}{}\n",
        started.id,
        global.config.display(),
        global
            .state_dir
            .as_ref()
            .map(|d| format!(" --state-dir {}", d.display()))
            .unwrap_or_default()
    ));
    if state.phase.is_suspended() {
        out.push_str(&super::what_next_for(global, started.plan.purpose));
        out.push('\n');
    }
    let _ = crate::exit::print_stdout(&out);
}
