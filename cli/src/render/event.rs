//! One event, as a line of text or a JSON object.

use odysseus_engine::machine::{DeploymentStarted, Event, Fact, FailureKind, Observation};
use serde_json::{json, Value};

/// The (role, host) a target index names in the plan.
fn target_of(started: Option<&DeploymentStarted>, target: u32) -> (Option<String>, Option<String>) {
    match started.and_then(|s| s.plan.targets.get(target as usize)) {
        Some(t) => (Some(t.role.clone()), Some(t.host.clone())),
        None => (None, None),
    }
}

fn observation(o: &Observation) -> String {
    match o {
        Observation::Done => "done".to_string(),
        Observation::Container { id } => format!("container {id}"),
        Observation::Drained {
            waited_ms,
            remaining: 0,
        } => format!("drained in {waited_ms} ms"),
        Observation::Drained {
            waited_ms,
            remaining,
        } => {
            format!("drain timeout after {waited_ms} ms, {remaining} connection(s) left")
        }
        Observation::Count { n } => format!("{n} affected"),
    }
}

fn failure_kind(k: FailureKind) -> &'static str {
    match k {
        FailureKind::Retryable => "retryable",
        FailureKind::Permanent => "permanent",
        FailureKind::OutcomeUnknown => "outcome-unknown",
    }
}

/// The outcome word and a human detail for a fact.
fn outcome_and_detail(fact: &Fact) -> (Option<&'static str>, String) {
    match fact {
        Fact::DeploymentStarted(s)
            if s.plan.purpose == odysseus_engine::machine::Purpose::Cleanup =>
        {
            (
                None,
                format!(
                    "{} off {} by {} ({} target(s))",
                    s.service,
                    s.plan.hosts().join(", "),
                    s.operator,
                    s.plan.targets.len()
                ),
            )
        }
        Fact::DeploymentStarted(s) if !s.plan.purpose.is_undoable() => (
            None,
            format!(
                "{} {} on {} by {}",
                s.service,
                s.plan.purpose.as_str(),
                s.plan.hosts().join(", "),
                s.operator
            ),
        ),
        Fact::DeploymentStarted(s) => (
            None,
            format!(
                "{}:{} by {} ({} target(s), batch {}, on_failure {})",
                s.image,
                s.version,
                s.operator,
                s.plan.targets.len(),
                s.plan.batch_size,
                s.plan.on_failure.as_str()
            ),
        ),
        Fact::StepStarted { key, .. } => (Some("started"), format!("key {key}")),
        Fact::StepSucceeded { observed, .. } => (Some("succeeded"), observation(observed)),
        Fact::StepFailed { kind, reason, .. } => {
            (Some("failed"), format!("{}: {reason}", failure_kind(*kind)))
        }
        Fact::StepObserved { done: Some(o), .. } => (Some("observed-done"), observation(o)),
        Fact::StepObserved { done: None, .. } => {
            (Some("observed-not-done"), "will run again".to_string())
        }
        Fact::TargetCompleted { .. } => (Some("completed"), String::new()),
        Fact::TargetRollbackStarted { reason, .. } => (Some("rolling-back"), reason.clone()),
        Fact::TargetRolledBack { .. } => (Some("rolled-back"), String::new()),
        Fact::TargetRollbackFailed { reason, .. } => (Some("rollback-failed"), reason.clone()),
        Fact::DeploymentCompleted => (Some("completed"), String::new()),
        Fact::DeploymentFailed { outcome, reason } => {
            (Some("failed"), format!("{}: {reason}", outcome.as_str()))
        }
        Fact::AbortRequested { by } => (None, format!("by {by}")),
        Fact::DeploymentAborted => (Some("aborted"), String::new()),
        Fact::Resumed { by, lock_token } => (None, format!("by {by}, lock token {lock_token}")),
        Fact::LockReleased { by, from } => (
            None,
            match from {
                Some(from) => format!("deploy lock of {from} broken by {by}"),
                None => format!("deploy lock broken by {by}"),
            },
        ),
        Fact::Interrupted { by, signal } => {
            (None, format!("{signal} received by {by}; the run stopped"))
        }
        Fact::LockTakenOver {
            from,
            by,
            lock_token,
        } => (
            None,
            format!("from {from} (process gone) by {by}, lock token {lock_token}"),
        ),
        Fact::Abandoned { by, reason } => (
            Some("abandoned"),
            format!("by {by}: {reason}; its containers were left as they are"),
        ),
        Fact::Superseded { by, deployment } => (
            Some("superseded"),
            format!("by deployment {deployment}, started by {by}"),
        ),
        Fact::Supersedes { deployment } => {
            (None, format!("replaces halted deployment {deployment}"))
        }
        Fact::Provenance {
            images,
            secrets,
            secrets_digest,
        } => {
            let images: Vec<String> = images
                .iter()
                .map(|i| match &i.image_id {
                    Some(id) => format!("{} has {id}", i.host),
                    None => format!("{} lacked it", i.host),
                })
                .collect();
            let secrets = match (secrets.is_empty(), secrets_digest) {
                (true, _) => "no secrets".to_string(),
                (false, Some(d)) => format!("secrets {} (values {d})", secrets.join(", ")),
                (false, None) => format!("secrets {}", secrets.join(", ")),
            };
            (None, format!("image: {}; {secrets}", images.join(", ")))
        }
        Fact::BuildStarted {
            commit,
            builder,
            platforms,
            args,
        } => {
            let mut detail = format!("on {builder}");
            if let Some(c) = commit {
                detail.push_str(&format!(" from commit {c}"));
            }
            if !platforms.is_empty() {
                detail.push_str(&format!(", for {}", platforms.join(", ")));
            }
            if !args.is_empty() {
                detail.push_str(&format!(", build args {}", args.join(", ")));
            }
            (Some("started"), detail)
        }
        Fact::Built { image_id, millis } => (
            Some("succeeded"),
            format!("image {image_id} in {:.1}s", *millis as f64 / 1000.0),
        ),
        Fact::BuildFailed { reason } => (Some("failed"), reason.clone()),
        Fact::ReleaseStarted {
            host,
            container,
            command,
        } => (
            Some("started"),
            format!("{} on {host} in {container}", command.join(" ")),
        ),
        Fact::Released { millis } => (
            Some("succeeded"),
            format!("exit 0 in {:.1}s", *millis as f64 / 1000.0),
        ),
        Fact::ReleaseFailed { reason, .. } => (Some("failed"), reason.clone()),
        Fact::HooksFound { hooks } => (None, hooks.join(", ")),
        Fact::MaintenancePage(page) => (
            None,
            // Debug-quoted: a message's newlines and escape codes stay on one line, inert.
            format!(
                "503 {:?}, Retry-After {}s",
                page.message, page.retry_after_s
            ),
        ),
        Fact::HookFailed { reason, .. } => (None, reason.clone()),
        Fact::HookStarted { hook, hosts } => {
            (Some("started"), format!("{hook} for {}", hosts.join(", ")))
        }
        Fact::HookEnded { hook, .. } => {
            let exit = fact.hook_exit().unwrap_or_default();
            (
                Some(if exit.ok() { "succeeded" } else { "failed" }),
                format!(
                    "{hook} {} in {:.1}s",
                    exit.describe(),
                    exit.millis as f64 / 1000.0
                ),
            )
        }
    }
}

fn step_and_attempt(fact: &Fact) -> (Option<&'static str>, Option<u32>) {
    match fact {
        Fact::StepStarted { step, attempt, .. }
        | Fact::StepSucceeded { step, attempt, .. }
        | Fact::StepFailed { step, attempt, .. }
        | Fact::StepObserved { step, attempt, .. } => (Some(step.as_str()), Some(*attempt)),
        _ => (None, None),
    }
}

/// `#12  +3.250s  web@host2  drain-old  #1  succeeded  drained in 750 ms`
pub fn text_line(seq: u64, event: &Event, started: Option<&DeploymentStarted>, t0: u64) -> String {
    let elapsed = event.at.0.saturating_sub(t0);
    let (role, host) = event
        .fact
        .target()
        .map_or((None, None), |t| target_of(started, t));
    let place = match (role, host) {
        (Some(r), Some(h)) => format!("{r}@{h}"),
        _ => "-".to_string(),
    };
    let (step, attempt) = step_and_attempt(&event.fact);
    let what = match (step, attempt) {
        (Some(s), Some(a)) => format!("{s} #{a}"),
        _ => event.fact.kind_name().to_string(),
    };
    let (outcome, detail) = outcome_and_detail(&event.fact);
    let mut line = format!(
        "#{seq:<4} +{:>4}.{:03}s  {place:<16} {what:<26}",
        elapsed / 1000,
        elapsed % 1000
    );
    if let Some(o) = outcome.filter(|_| step.is_some()) {
        line.push_str(&format!(" {o:<18}"));
    }
    if !detail.is_empty() {
        line.push(' ');
        line.push_str(&detail);
    }
    line.trim_end().to_string()
}

/// The stable JSON shape of one event.
pub fn json(seq: u64, event: &Event, started: Option<&DeploymentStarted>) -> Value {
    let (role, host) = event
        .fact
        .target()
        .map_or((None, None), |t| target_of(started, t));
    let (step, attempt) = step_and_attempt(&event.fact);
    let (outcome, detail) = outcome_and_detail(&event.fact);
    let mut v = json!({
        "seq": seq,
        "time": event.at.to_string(),
        "kind": event.fact.kind_name(),
    });
    let obj = v.as_object_mut().expect("an object");
    if let Some(t) = event.fact.target() {
        obj.insert("target".into(), json!(t));
    }
    if let Some(h) = host {
        obj.insert("host".into(), json!(h));
    }
    if let Some(r) = role {
        obj.insert("role".into(), json!(r));
    }
    if let Some(s) = step {
        obj.insert("step".into(), json!(s));
    }
    if let Some(a) = attempt {
        obj.insert("attempt".into(), json!(a));
    }
    if let Some(o) = outcome {
        obj.insert("outcome".into(), json!(o));
    }
    if !detail.is_empty() {
        obj.insert("detail".into(), json!(detail));
    }
    v
}

/// How long each step attempt took, from its `step-started` to its outcome.
#[derive(Default)]
pub struct StepTimer {
    started: std::collections::HashMap<
        (u32, odysseus_engine::machine::StepName, u32),
        odysseus_engine::Timestamp,
    >,
}

impl StepTimer {
    /// The duration an outcome event closes, in milliseconds.
    pub fn duration(&mut self, e: &Event) -> Option<u64> {
        match &e.fact {
            Fact::StepStarted {
                target,
                step,
                attempt,
                ..
            } => {
                self.started.insert((*target, *step, *attempt), e.at);
                None
            }
            Fact::StepSucceeded {
                target,
                step,
                attempt,
                ..
            }
            | Fact::StepFailed {
                target,
                step,
                attempt,
                ..
            }
            | Fact::StepObserved {
                target,
                step,
                attempt,
                ..
            } => self
                .started
                .get(&(*target, *step, *attempt))
                .map(|t0| e.at.millis_since(*t0)),
            _ => None,
        }
    }
}
