//! The faults a simulated run injects. Each fault is consumed as it fires, and the world
//! keeps them across simulated crashes, as the real world would.

use odysseus_engine::machine::StepName;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The step fails `times` times on `host`, as retryable or permanent errors.
    Fail {
        host: String,
        step: StepName,
        times: u32,
        permanent: bool,
    },
    /// The step never answers `times` times: the runtime's deadline must fire.
    Hang {
        host: String,
        step: StepName,
        times: u32,
    },
    /// The step takes effect but its reply is lost `times` times (outcome unknown).
    LoseReply {
        host: String,
        step: StepName,
        times: u32,
    },
    /// New containers on `host` never become healthy (a bad image).
    NeverHealthy { host: String },
    /// The role's new container on `host` dies on its own right after `after` succeeds
    /// there (a crash or the OOM killer; the proxy is not told).
    Dies {
        host: String,
        role: String,
        after: StepName,
    },
    /// `host` answers nothing for `calls` calls, starting at its `from_call`-th call.
    HostDown {
        host: String,
        from_call: u32,
        calls: u32,
    },
}

impl Fault {
    pub fn host(&self) -> &str {
        match self {
            Fault::Fail { host, .. }
            | Fault::Hang { host, .. }
            | Fault::LoseReply { host, .. }
            | Fault::NeverHealthy { host }
            | Fault::Dies { host, .. }
            | Fault::HostDown { host, .. } => host,
        }
    }
}

/// What a fault does to one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Injected {
    None,
    Fail { permanent: bool },
    Hang,
    LoseReply,
    Unreachable,
}

#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    pub faults: Vec<Fault>,
    calls_per_host: Vec<(String, u32)>,
    /// Hosts down until faults stop, whatever the call.
    down: Vec<String>,
}

impl FaultPlan {
    pub fn new(faults: Vec<Fault>) -> Self {
        FaultPlan {
            faults,
            calls_per_host: Vec::new(),
            down: Vec::new(),
        }
    }

    pub fn never_healthy(&self, host: &str) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(f, Fault::NeverHealthy { host: h } if h == host))
    }

    /// Whether the new container of `role` on `host` dies now that `step` is done there
    /// (consumed: it dies once).
    pub fn dies_after(&mut self, host: &str, role: &str, step: StepName) -> bool {
        let found = self.faults.iter().position(|f| {
            matches!(f, Fault::Dies { host: h, role: r, after } if h == host && r == role && *after == step)
        });
        found.map(|i| self.faults.remove(i)).is_some()
    }

    /// Decides (and consumes) what happens to the next call of `step` on `host`.
    /// Observations pass `None` for the step: only host-wide faults reach them.
    /// `host` answers nothing from now on, until `clear`.
    pub fn set_down(&mut self, host: &str) {
        self.down.push(host.to_string());
    }

    pub fn next_call(&mut self, host: &str, step: Option<StepName>) -> Injected {
        if self.down.iter().any(|h| h == host) {
            return Injected::Unreachable;
        }
        let call = match self.calls_per_host.iter_mut().find(|(h, _)| h == host) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.calls_per_host.push((host.to_string(), 1));
                1
            }
        };
        for fault in &mut self.faults {
            match fault {
                Fault::HostDown {
                    host: h,
                    from_call,
                    calls,
                } if h == host && call >= *from_call && call < from_call.saturating_add(*calls) => {
                    return Injected::Unreachable;
                }
                Fault::Fail {
                    host: h,
                    step: s,
                    times,
                    permanent,
                } if h == host && Some(*s) == step && *times > 0 => {
                    *times -= 1;
                    return Injected::Fail {
                        permanent: *permanent,
                    };
                }
                Fault::Hang {
                    host: h,
                    step: s,
                    times,
                } if h == host && Some(*s) == step && *times > 0 => {
                    *times -= 1;
                    return Injected::Hang;
                }
                Fault::LoseReply {
                    host: h,
                    step: s,
                    times,
                } if h == host && Some(*s) == step && *times > 0 => {
                    *times -= 1;
                    return Injected::LoseReply;
                }
                _ => {}
            }
        }
        Injected::None
    }

    /// Faults stop: the host is back, the image is fixed. Used to check liveness.
    pub fn clear(&mut self) {
        self.faults.clear();
        self.down.clear();
    }
}
