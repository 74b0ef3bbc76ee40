//! Maintenance mode in Caddy: the service's route gets a `static_response` handler (503,
//! `Retry-After`, a page) in front of its reverse proxy. The proxy stays as it is (its
//! upstreams, its health checks), so deploys go on switching containers underneath and
//! `app live` only takes the handler away. Caddy saves the change with its config (it
//! runs with `--resume`), so a restarted Caddy still answers 503.

use odysseus_engine::machine::MaintenancePage;
use odysseus_engine::runtime::ExecError;
use serde_json::{json, Value};

use super::caddy::{route_id, CaddyAdmin};

pub fn maintenance_id(service: &str) -> String {
    format!("odysseus-maintenance-{service}")
}

/// Where the message sits in the page: read back to tell which page a route answers.
const MESSAGE_START: &str = "<p id=\"odysseus-message\">";
const MESSAGE_END: &str = "</p>";

/// The handler a route in maintenance answers with.
pub fn handler(service: &str, page: &MaintenancePage) -> Value {
    json!({
        "@id": maintenance_id(service),
        "handler": "static_response",
        "status_code": 503,
        "headers": {
            "Retry-After": [page.retry_after_s.to_string()],
            "Content-Type": ["text/html; charset=utf-8"],
            "Cache-Control": ["no-store"],
        },
        "body": html(page),
    })
}

fn html(page: &MaintenancePage) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Down for maintenance</title></head>\n<body><h1>Down for maintenance</h1>\n{MESSAGE_START}{}{MESSAGE_END}\n</body></html>\n",
        escape(&page.message)
    )
}

/// The page a route answers with instead of its proxy, if it is in maintenance.
pub fn page_of(route: &Value) -> Option<MaintenancePage> {
    let handler = route["handle"]
        .as_array()?
        .iter()
        .find(|h| is_maintenance(h))?;
    let body = handler["body"].as_str()?;
    let start = body.find(MESSAGE_START)? + MESSAGE_START.len();
    let end = start + body[start..].find(MESSAGE_END)?;
    Some(MaintenancePage {
        message: unescape(&body[start..end]),
        retry_after_s: handler["headers"]["Retry-After"][0]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    })
}

fn is_maintenance(handler: &Value) -> bool {
    handler["@id"]
        .as_str()
        .is_some_and(|id| id.starts_with("odysseus-maintenance-"))
}

/// `route` with the maintenance handler `from` has (if any) in front: a rewrite of the
/// route (new settings, new upstreams) keeps the service in maintenance.
pub fn carry_over(from: &Value, route: &mut Value) {
    let Some(kept) = from["handle"]
        .as_array()
        .and_then(|h| h.iter().find(|h| is_maintenance(h)))
        .cloned()
    else {
        return;
    };
    if let Some(handle) = route["handle"].as_array_mut() {
        handle.retain(|h| !is_maintenance(h));
        handle.insert(0, kept);
    }
}

/// Puts the service's route in maintenance with `page`, or out of it (`None`). Writes
/// nothing when it already is so.
pub async fn set(
    admin: &CaddyAdmin,
    service: &str,
    page: Option<&MaintenancePage>,
) -> Result<(), ExecError> {
    for _ in 0..10 {
        let Some((current, etag)) = admin.route(service).await? else {
            return match page {
                // Out of maintenance is what a host without the route is.
                None => Ok(()),
                Some(_) => Err(ExecError::Permanent(format!(
                    "{service} has no route in this host's Caddy ({}): there is nothing to put in maintenance (deploy it here first)",
                    route_id(service)
                ))),
            };
        };
        let mut wanted = current.clone();
        if let Some(handle) = wanted["handle"].as_array_mut() {
            handle.retain(|h| !is_maintenance(h));
            if let Some(page) = page {
                handle.insert(0, handler(service, page));
            }
        }
        if wanted == current {
            return Ok(());
        }
        if admin
            .replace_route(service, &wanted, etag.as_deref())
            .await?
        {
            return Ok(());
        }
    }
    Err(ExecError::Retryable(
        "the Caddy route kept changing under us (412 ten times)".into(),
    ))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The inverse of `escape` (only what `escape` writes).
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(message: &str) -> MaintenancePage {
        MaintenancePage {
            message: message.into(),
            retry_after_s: 120,
        }
    }

    #[test]
    fn a_message_cannot_inject_markup_and_reads_back_as_written() {
        for message in [
            "<script>alert('x')</script> & more",
            "&amp; stays &amp;",
            "</p><p id=\"odysseus-message\">",
            "plain",
            "",
        ] {
            let route =
                json!({"handle": [handler("app", &page(message)), {"handler": "reverse_proxy"}]});
            let body = route["handle"][0]["body"].as_str().unwrap().to_string();
            assert!(!body.contains("<script>"), "{body}");
            assert_eq!(page_of(&route), Some(page(message)), "{body}");
        }
    }

    #[test]
    fn a_rewritten_route_stays_in_maintenance_and_the_proxy_is_untouched() {
        let old = json!({"handle": [handler("app", &page("back soon")), {"handler": "reverse_proxy", "upstreams": [{"dial": "a:1"}]}]});
        let mut new =
            json!({"handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": "b:1"}]}]});
        carry_over(&old, &mut new);
        assert_eq!(page_of(&new), Some(page("back soon")));
        assert_eq!(new["handle"][1]["upstreams"][0]["dial"], "b:1");
        // Without maintenance, a rewrite adds none.
        let mut plain = json!({"handle": [{"handler": "reverse_proxy"}]});
        carry_over(&new["handle"][1].clone(), &mut plain);
        assert_eq!(page_of(&plain), None);
        assert_eq!(plain["handle"].as_array().unwrap().len(), 1);
    }
}
