//! Data-driven timelines of the pure machine: given these events, `decide` answers
//! this. Each case folds a short history and snapshots the decision, so a change in
//! behaviour shows up as a readable diff (`cargo insta review`).

use odysseus_engine::machine::{
    decide, Action, Decision, DeploymentStarted, DeploymentState, Event, Fact, FailedOutcome,
    FailureKind, FailurePolicy, Observation, Plan, RetryPolicy, RoleKind, StepName, Target,
    Timeouts,
};
use odysseus_engine::{DeploymentId, Operator, Timestamp};

use StepName::*;

struct Given {
    events: Vec<Event>,
}

fn target(role: &str, host: &str, old: bool) -> Target {
    Target {
        role: role.into(),
        host: host.into(),
        kind: if role == "web" {
            RoleKind::Web
        } else {
            RoleKind::Job
        },
        old_containers: if old {
            vec![format!("app-{role}-v1")]
        } else {
            vec![]
        },
        old_version: old.then(|| "v1".to_string()),
        timeouts: Timeouts {
            boot_ms: 60_000,
            drain_ms: 30_000,
            stop_ms: 10_000,
            op_ms: 30_000,
        },
    }
}

fn given(targets: Vec<Target>, batch_size: u32, on_failure: FailurePolicy) -> Given {
    let started = DeploymentStarted {
        id: DeploymentId {
            millis: 1_767_225_600_000,
            nonce: 0xabcdef01,
        },
        service: "app".into(),
        image: "example/app".into(),
        version: "v2".into(),
        config_digest: "d1g3st".into(),
        plan: Plan {
            purpose: Default::default(),
            targets,
            batch_size,
            on_failure,
            retry: RetryPolicy::default(),
        },
        operator: Operator {
            user: "ops".into(),
            hostname: "laptop".into(),
            pid: 42,
        },
        lock_token: 7,
    };
    let mut g = Given { events: Vec::new() };
    g.push(Fact::DeploymentStarted(Box::new(started)));
    g
}

impl Given {
    fn push(&mut self, fact: Fact) -> &mut Self {
        let at = Timestamp(1_767_225_600_000 + 1000 * self.events.len() as u64);
        self.events.push(Event { at, fact });
        self
    }
    fn ok(&mut self, t: u32, steps: &[StepName]) -> &mut Self {
        for &step in steps {
            let attempt = 1;
            self.push(Fact::StepStarted {
                target: t,
                step,
                attempt,
                key: format!("k:{step}"),
            });
            self.push(Fact::StepSucceeded {
                target: t,
                step,
                attempt,
                observed: Observation::Done,
            });
        }
        self
    }
    fn fail(&mut self, t: u32, step: StepName, attempt: u32, kind: FailureKind) -> &mut Self {
        self.push(Fact::StepStarted {
            target: t,
            step,
            attempt,
            key: format!("k:{step}"),
        });
        self.push(Fact::StepFailed {
            target: t,
            step,
            attempt,
            kind,
            reason: "boom".into(),
        })
    }
}

/// Folds the history and renders what `decide` says next, one line per item.
fn check(g: &Given) -> String {
    let state = match DeploymentState::fold(&g.events) {
        Ok(s) => s,
        Err(e) => return format!("error: {e}"),
    };
    let started = state.started().unwrap();
    let label = |t: u32| started.plan.targets[t as usize].label();
    match decide(&state) {
        Err(e) => format!("error: {e}"),
        Ok(Decision::Finished(phase)) => format!("finished: {}", phase.as_str()),
        Ok(Decision::RunHook(call)) => {
            format!("run hook {} for {}", call.hook, call.hosts.join(","))
        }
        Ok(Decision::Record(facts)) => facts
            .iter()
            .map(|f| match f.target() {
                Some(t) => format!("record {} {}", f.kind_name(), label(t)),
                None => match f {
                    Fact::DeploymentFailed { outcome, reason } => {
                        format!("record deployment-failed {} ({reason})", outcome.as_str())
                    }
                    _ => format!("record {}", f.kind_name()),
                },
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Ok(Decision::Run(actions)) => actions
            .iter()
            .map(|a| {
                let e = a.effect();
                let verb = if matches!(a, Action::Execute(_)) {
                    "execute"
                } else {
                    "observe"
                };
                format!(
                    "{verb} {} {} #{} key={} backoff={}ms deadline={}ms",
                    label(e.target),
                    e.step,
                    e.attempt,
                    e.key,
                    e.backoff_ms,
                    e.deadline_ms
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

const WEB_REDEPLOY: [StepName; 7] = [
    StartNew,
    AwaitHealthy,
    AddUpstream,
    RemoveOldUpstream,
    DrainOld,
    StopOld,
    CleanStaleUpstreams,
];

#[test]
fn a_new_deployment_starts_with_start_new_on_the_first_host() {
    let g = given(
        vec![target("web", "a", true), target("web", "b", true)],
        1,
        FailurePolicy::Halt,
    );
    insta::assert_snapshot!(check(&g));
}

#[test]
fn a_redeploy_of_web_runs_the_seven_steps_in_order_then_completes() {
    let mut g = given(vec![target("web", "a", true)], 1, FailurePolicy::Halt);
    let mut seen = Vec::new();
    for (i, step) in WEB_REDEPLOY.iter().enumerate() {
        seen.push(check(&g));
        g.ok(0, &WEB_REDEPLOY[i..=i]);
        let _ = step;
    }
    seen.push(check(&g));
    g.push(Fact::TargetCompleted { target: 0 });
    seen.push(check(&g));
    g.push(Fact::DeploymentCompleted);
    seen.push(check(&g));
    insta::assert_snapshot!(seen.join("\n"));
}

#[test]
fn a_first_deploy_skips_the_old_container_steps() {
    let mut g = given(
        vec![target("web", "a", false), target("jobs", "a", false)],
        1,
        FailurePolicy::Halt,
    );
    g.ok(0, &[StartNew, AwaitHealthy, AddUpstream]);
    let web_next = check(&g);
    g.ok(0, &[CleanStaleUpstreams])
        .push(Fact::TargetCompleted { target: 0 });
    g.ok(1, &[StartNew, AwaitHealthy]);
    insta::assert_snapshot!(format!("{web_next}\n{}", check(&g)));
}

#[test]
fn a_job_role_stops_its_old_worker_only_after_the_new_one_is_healthy() {
    let mut g = given(vec![target("jobs", "a", true)], 1, FailurePolicy::Halt);
    g.ok(0, &[StartNew, AwaitHealthy]);
    insta::assert_snapshot!(check(&g));
}

#[test]
fn a_retryable_failure_is_retried_with_backoff_then_rolled_back() {
    let mut g = given(vec![target("web", "a", true)], 1, FailurePolicy::Halt);
    g.ok(0, &[StartNew])
        .fail(0, AwaitHealthy, 1, FailureKind::Retryable);
    let second = check(&g);
    g.fail(0, AwaitHealthy, 2, FailureKind::Retryable);
    let third = check(&g);
    g.fail(0, AwaitHealthy, 3, FailureKind::Retryable);
    insta::assert_snapshot!(format!("{second}\n{third}\n{}", check(&g)));
}

#[test]
fn a_failure_before_the_old_upstream_was_touched_only_removes_the_new_container() {
    let mut g = given(vec![target("web", "a", true)], 1, FailurePolicy::Halt);
    g.ok(0, &[StartNew])
        .fail(0, AwaitHealthy, 1, FailureKind::Permanent);
    g.push(Fact::TargetRollbackStarted {
        target: 0,
        reason: "unhealthy".into(),
    });
    insta::assert_snapshot!(check(&g));
}

#[test]
fn a_failure_after_the_old_upstream_was_removed_restores_it_before_removing_the_new() {
    let mut g = given(vec![target("web", "a", true)], 1, FailurePolicy::Halt);
    g.ok(0, &[StartNew, AwaitHealthy, AddUpstream, RemoveOldUpstream])
        .fail(0, DrainOld, 1, FailureKind::Permanent);
    g.push(Fact::TargetRollbackStarted {
        target: 0,
        reason: "drain".into(),
    });
    let first = check(&g);
    g.ok(0, &[RestoreOldUpstream]);
    let second = check(&g);
    g.ok(0, &[RemoveNew]);
    let third = check(&g);
    g.push(Fact::TargetRolledBack { target: 0 });
    insta::assert_snapshot!(format!("{first}\n{second}\n{third}\n{}", check(&g)));
}

#[test]
fn a_step_started_without_an_outcome_is_observed_before_anything_is_redone() {
    let mut g = given(vec![target("web", "a", true)], 1, FailurePolicy::Halt);
    g.ok(0, &[StartNew]).push(Fact::StepStarted {
        target: 0,
        step: AwaitHealthy,
        attempt: 1,
        key: "k".into(),
    });
    let in_doubt = check(&g);
    g.push(Fact::StepObserved {
        target: 0,
        step: AwaitHealthy,
        attempt: 1,
        done: None,
    });
    let not_done = check(&g);
    insta::assert_snapshot!(format!("{in_doubt}\n{not_done}"));
}

#[test]
fn halt_stops_new_work_and_reports_the_mixed_fleet() {
    let mut g = given(
        vec![
            target("web", "a", true),
            target("web", "b", true),
            target("web", "c", true),
        ],
        1,
        FailurePolicy::Halt,
    );
    g.ok(0, &WEB_REDEPLOY)
        .push(Fact::TargetCompleted { target: 0 });
    g.ok(1, &[StartNew])
        .fail(1, AwaitHealthy, 1, FailureKind::Permanent);
    g.push(Fact::TargetRollbackStarted {
        target: 1,
        reason: "never healthy".into(),
    });
    g.ok(1, &[RemoveNew])
        .push(Fact::TargetRolledBack { target: 1 });
    let verdict = check(&g);
    g.push(Fact::DeploymentFailed {
        outcome: FailedOutcome::Halted,
        reason: "web@b: never healthy".into(),
    });
    let after = check(&g);
    g.push(Fact::Resumed {
        by: Operator {
            user: "ops".into(),
            hostname: "laptop".into(),
            pid: 43,
        },
        lock_token: 8,
    });
    insta::assert_snapshot!(format!("{verdict}\n{after}\n{}", check(&g)));
}

#[test]
fn fleet_rollback_returns_finished_targets_to_the_old_version() {
    let mut g = given(
        vec![target("web", "a", true), target("web", "b", true)],
        1,
        FailurePolicy::Rollback,
    );
    g.ok(0, &WEB_REDEPLOY)
        .push(Fact::TargetCompleted { target: 0 });
    g.ok(1, &[StartNew])
        .fail(1, AwaitHealthy, 1, FailureKind::Permanent);
    insta::assert_snapshot!(check(&g));
}

#[test]
fn a_batch_of_two_hosts_moves_together() {
    let g = given(
        vec![
            target("web", "a", true),
            target("web", "b", true),
            target("web", "c", true),
        ],
        2,
        FailurePolicy::Halt,
    );
    insta::assert_snapshot!(check(&g));
}

#[test]
fn an_abort_rolls_back_every_touched_target_and_leaves_untouched_ones() {
    let mut g = given(
        vec![target("web", "a", true), target("web", "b", true)],
        1,
        FailurePolicy::Halt,
    );
    g.ok(0, &WEB_REDEPLOY)
        .push(Fact::TargetCompleted { target: 0 });
    g.push(Fact::AbortRequested {
        by: Operator {
            user: "ops".into(),
            hostname: "laptop".into(),
            pid: 44,
        },
    });
    insta::assert_snapshot!(check(&g));
}

#[test]
fn an_event_that_cannot_happen_is_a_typed_error_not_a_panic() {
    let mut g = given(vec![target("web", "a", true)], 1, FailurePolicy::Halt);
    g.push(Fact::StepSucceeded {
        target: 0,
        step: AwaitHealthy,
        attempt: 1,
        observed: Observation::Done,
    });
    let out_of_order = check(&g);
    let mut g = given(vec![target("web", "a", true)], 1, FailurePolicy::Halt);
    g.push(Fact::StepStarted {
        target: 3,
        step: StartNew,
        attempt: 1,
        key: "k".into(),
    });
    let no_such_target = check(&g);
    let mut g = given(vec![target("web", "a", true)], 1, FailurePolicy::Halt);
    g.push(Fact::StepStarted {
        target: 0,
        step: DrainOld,
        attempt: 1,
        key: "k".into(),
    });
    let skipped_steps = check(&g);
    insta::assert_snapshot!(format!("{out_of_order}\n{no_such_target}\n{skipped_steps}"));
}

impl Given {
    fn hook(&mut self, hook: &str, hosts: &[&str], exit: i32) -> &mut Self {
        self.push(Fact::HookStarted {
            hook: hook.into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        });
        self.push(Fact::HookEnded {
            hook: hook.into(),
            exit_code: Some(exit),
            reason: String::new(),
            millis: 5,
        })
    }
}

/// With app-boot hooks found, each batch is framed by them: `pre-app-boot` before its
/// first step (again after a run that died inside it), `post-app-boot` once it completed
/// and before the next batch's `pre-app-boot`; a failed `pre-app-boot` fails its batch
/// untouched and the fleet policy takes over (here: rollback of the finished batch).
#[test]
fn app_boot_hooks_frame_each_batch_and_a_failed_one_fails_its_batch_untouched() {
    let mut g = given(
        vec![
            target("web", "a", true),
            target("web", "b", true),
            target("web", "c", true),
        ],
        2,
        FailurePolicy::Rollback,
    );
    g.push(Fact::HooksFound {
        hooks: vec!["pre-app-boot".into(), "post-app-boot".into()],
    });
    let mut seen = vec![check(&g)];
    // The run died inside the hook: it is due again.
    g.push(Fact::HookStarted {
        hook: "pre-app-boot".into(),
        hosts: vec!["a".into(), "b".into()],
    });
    seen.push(check(&g));
    g.hook("pre-app-boot", &["a", "b"], 0);
    seen.push(check(&g));
    g.ok(0, &WEB_REDEPLOY)
        .push(Fact::TargetCompleted { target: 0 });
    g.ok(1, &WEB_REDEPLOY)
        .push(Fact::TargetCompleted { target: 1 });
    seen.push(check(&g));
    // post-app-boot reports only: it failed, the next batch is still framed.
    g.hook("post-app-boot", &["a", "b"], 1);
    seen.push(check(&g));
    g.hook("pre-app-boot", &["c"], 4);
    seen.push(check(&g));
    insta::assert_snapshot!(seen.join("\n---\n"));
}
