//! How events and states are shown to people (text) and to machines (JSON). Field
//! names in JSON are stable: they are documented in README.md.

pub mod event;
pub mod json_lines;

use odysseus_engine::machine::DeploymentState;
use serde_json::{json, Value};

/// The stable JSON shape of a deployment (replay's `deployment`, history's rows, the
/// summary of `deploy --json`).
pub fn deployment_json(state: &DeploymentState) -> Value {
    match state.started() {
        Some(s) => json!({
            "id": s.id.to_string(),
            "service": s.service,
            "image": s.image,
            "version": s.version,
            "purpose": s.plan.purpose.as_str(),
            "status": state.phase.as_str(),
            "config_digest": s.config_digest,
            "operator": s.operator.to_string(),
            "started_at": state.started_at.to_string(),
            "duration_ms": state.last_at.millis_since(state.started_at),
            // From the `provenance` event: null in logs written before it existed.
            "image_ids": state.provenance.as_ref().map(|p| {
                p.images
                    .iter()
                    .map(|i| (i.host.clone(), json!(i.image_id)))
                    .collect::<serde_json::Map<String, Value>>()
            }),
            "secrets": state.provenance.as_ref().map(|p| json!(p.secrets)),
            "secrets_digest": state.provenance.as_ref().and_then(|p| p.secrets_digest.clone()),
        }),
        None => Value::Null,
    }
}
