//! Maintenance mode in Caddy: the service's route answers 503 (`Retry-After`, a page) in
//! front of its reverse proxy. The proxy stays as it is (its upstreams, its health
//! checks), so deploys go on switching containers underneath, and `app live` only takes
//! the page away.
//!
//! With a Caddy that reads file placeholders (2.8 and later, as upstream slots need) the
//! route always carries a *switch*: a subroute that answers with the page while the page's
//! file exists in Caddy's config volume. Turning maintenance on or off writes or removes
//! that file: no config change, so no reload, and no keep-alive connection is closed.
//! An older Caddy gets the page as a handler added to and removed from the route: each
//! toggle is a reload. Either way it outlives a Caddy restart (files and config are on
//! its `/config` volume; Caddy runs with `--resume`).

use odysseus_engine::machine::MaintenancePage;
use odysseus_engine::runtime::ExecError;
use serde_json::{json, Value};

use super::caddy::{route_id, CaddyAdmin, CADDY_CONTAINER};
use super::engine::Engine;

/// Where the pages live in the Caddy container (its config volume).
pub const PAGE_DIR: &str = "/config/odysseus/maintenance";

pub fn page_dir(service: &str) -> String {
    format!("{PAGE_DIR}/{service}")
}

fn page_file(service: &str) -> String {
    format!("{}/page.html", page_dir(service))
}

fn retry_file(service: &str) -> String {
    format!("{}/retry-after", page_dir(service))
}

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

/// The switch a route carries in front of its proxy on a Caddy that reads files: the
/// page, read from its file at every request, while that file exists.
pub fn switch(service: &str) -> Value {
    json!({
        "@id": maintenance_id(service),
        "handler": "subroute",
        "routes": [{
            "match": [{"file": {"root": "/", "try_files": [page_file(service)]}}],
            "handle": [{
                "handler": "static_response",
                "status_code": 503,
                "headers": {
                    "Retry-After": [format!("{{file.{}}}", retry_file(service))],
                    "Content-Type": ["text/html; charset=utf-8"],
                    "Cache-Control": ["no-store"],
                },
                "body": format!("{{file.{}}}", page_file(service)),
            }],
        }],
    })
}

fn is_switch(handler: &Value) -> bool {
    is_maintenance(handler) && handler["handler"] == "subroute"
}

/// `route` with the switch in front of its proxy (where it has no maintenance handler yet):
/// a route written on a Caddy that reads files can be put in maintenance without a reload.
pub fn with_switch(service: &str, route: &mut Value) {
    if let Some(handle) = route["handle"].as_array_mut() {
        if !handle.iter().any(is_maintenance) {
            handle.insert(0, switch(service));
        }
    }
}

fn html(page: &MaintenancePage) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Down for maintenance</title></head>\n<body><h1>Down for maintenance</h1>\n{MESSAGE_START}{}{MESSAGE_END}\n</body></html>\n",
        escape(&page.message)
    )
}

/// The page a route's own handler answers with (a Caddy without file placeholders), if
/// it is in maintenance that way.
pub fn page_of(route: &Value) -> Option<MaintenancePage> {
    let handler = route["handle"]
        .as_array()?
        .iter()
        .find(|h| is_maintenance(h) && !is_switch(h))?;
    parse(
        handler["body"].as_str()?,
        handler["headers"]["Retry-After"][0].as_str().unwrap_or("0"),
    )
}

fn parse(body: &str, retry_after: &str) -> Option<MaintenancePage> {
    let start = body.find(MESSAGE_START)? + MESSAGE_START.len();
    let end = start + body[start..].find(MESSAGE_END)?;
    Some(MaintenancePage {
        message: unescape(&body[start..end]),
        retry_after_s: retry_after.trim().parse().unwrap_or(0),
    })
}

/// The page the service's route answers with now, if it is in maintenance (either way).
pub async fn current(
    engine: &Engine,
    admin: &CaddyAdmin,
    service: &str,
) -> Result<Option<MaintenancePage>, ExecError> {
    let Some((route, _)) = admin.route(service).await? else {
        return Ok(None);
    };
    if !route["handle"]
        .as_array()
        .is_some_and(|h| h.iter().any(is_switch))
    {
        return Ok(page_of(&route));
    }
    let files = engine
        .read_dir_files(CADDY_CONTAINER, &page_dir(service), 16 * 1024 * 1024)
        .await?
        .unwrap_or_default();
    let read = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
    };
    Ok(match read("page.html") {
        Some(body) => parse(&body, &read("retry-after").unwrap_or_default()),
        None => None,
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

/// Puts the service's route in maintenance with `page`, or out of it (`None`). With
/// `files` (a Caddy that reads file placeholders) through the switch: the page's file is
/// written (or removed), and the route changes only if it has no switch yet. Otherwise
/// the route's own handler is added or removed (a reload). Does nothing that is done.
pub async fn set(
    engine: &Engine,
    admin: &CaddyAdmin,
    service: &str,
    page: Option<&MaintenancePage>,
    files: bool,
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
            // The page as the route's own handler: only without files, only while on.
            handle.retain(|h| !is_maintenance(h) || (files && is_switch(h)));
            match (page, files) {
                (Some(page), false) => handle.insert(0, handler(service, page)),
                (Some(_), true) => {
                    if !handle.iter().any(is_switch) {
                        handle.insert(0, switch(service));
                    }
                }
                (None, _) => {}
            }
        }
        if files {
            // The file before the switch that reads it; removed once nothing names it.
            match page {
                Some(page) => {
                    write_file(
                        engine,
                        &retry_file(service),
                        &page.retry_after_s.to_string(),
                    )
                    .await?;
                    write_file(engine, &page_file(service), &html(page)).await?;
                }
                None => {
                    let (code, out) = engine
                        .exec(CADDY_CONTAINER, &["rm", "-f", &page_file(service)])
                        .await?;
                    if code != 0 {
                        return Err(ExecError::Retryable(format!(
                            "removing {service}'s maintenance page in {CADDY_CONTAINER} failed ({code}): {}",
                            out.trim()
                        )));
                    }
                }
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

/// Writes a file Caddy reads at every request so that it never reads it half-written: the
/// new contents go beside it, then a rename (atomic) replaces it.
async fn write_file(engine: &Engine, path: &str, contents: &str) -> Result<(), ExecError> {
    let beside = format!("{path}.new");
    engine
        .upload_file(CADDY_CONTAINER, &beside, contents.as_bytes())
        .await?;
    let (code, output) = engine
        .exec(CADDY_CONTAINER, &["mv", "-f", &beside, path])
        .await?;
    if code != 0 {
        return Err(ExecError::Retryable(format!(
            "moving {path} into place in {CADDY_CONTAINER} failed ({code}): {}",
            output.trim()
        )));
    }
    Ok(())
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
            // Caddy expands `{…}` placeholders in a static response's body at every
            // request: `{http.request.header.X}` would echo a visitor's header unescaped,
            // `{file./data/…}` would publish any file the Caddy container can read.
            '{' => out.push_str("&#123;"),
            '}' => out.push_str("&#125;"),
            _ => out.push(c),
        }
    }
    out
}

/// The inverse of `escape` (only what `escape` writes).
fn unescape(text: &str) -> String {
    text.replace("&#123;", "{")
        .replace("&#125;", "}")
        .replace("&lt;", "<")
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
            "{http.request.header.X-Name} {file./config/caddy/autosave.json} \\{escaped\\}",
            "&#123; stays",
            "plain",
            "",
        ] {
            let route =
                json!({"handle": [handler("app", &page(message)), {"handler": "reverse_proxy"}]});
            let body = route["handle"][0]["body"].as_str().unwrap().to_string();
            assert!(!body.contains("<script>"), "{body}");
            assert!(
                !body.contains('{') && !body.contains('}'),
                "Caddy would expand: {body}"
            );
            assert_eq!(page_of(&route), Some(page(message)), "{body}");
        }
    }

    #[test]
    fn the_switch_reads_the_page_from_files_and_a_route_gets_one_once() {
        let mut route = json!({"handle": [{"handler": "reverse_proxy"}]});
        with_switch("app", &mut route);
        with_switch("app", &mut route);
        let handle = route["handle"].as_array().unwrap();
        assert_eq!(handle.len(), 2);
        assert!(is_switch(&handle[0]));
        let inner = &handle[0]["routes"][0];
        assert_eq!(
            inner["match"][0]["file"]["try_files"][0],
            "/config/odysseus/maintenance/app/page.html"
        );
        assert_eq!(
            inner["handle"][0]["body"],
            "{file./config/odysseus/maintenance/app/page.html}"
        );
        // A switch is not a page: the route's own handler is not found in it.
        assert_eq!(page_of(&route), None);
        // A route in maintenance by its own handler keeps that, and gets no switch.
        let mut legacy =
            json!({"handle": [handler("app", &page("x")), {"handler": "reverse_proxy"}]});
        with_switch("app", &mut legacy);
        assert_eq!(page_of(&legacy), Some(page("x")));
        assert_eq!(legacy["handle"].as_array().unwrap().len(), 2);
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
