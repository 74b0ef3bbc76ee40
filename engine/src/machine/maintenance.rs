//! Maintenance mode: what the service's routes answer while it is on (`odysseus app
//! maintenance`), recorded in the deployment that turns it on so that a resume writes
//! exactly the page that was asked for.

use serde::{Deserialize, Serialize};

/// The 503 a route in maintenance answers with.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MaintenancePage {
    /// Shown on the page (plain text; escaped when the page is made).
    pub message: String,
    /// The `Retry-After` header, in seconds.
    pub retry_after_s: u32,
}

impl MaintenancePage {
    /// The page when none is asked for.
    pub const DEFAULT_MESSAGE: &'static str =
        "This service is down for maintenance. Please try again shortly.";
}
