//! Which of Caddy's servers holds each service's route. Plain-HTTP services and HTTPS
//! services share one Caddy, so they cannot share one server: a server on `:80` alone
//! serves the plain ones (and receives, from Caddy's automatic HTTPS, the redirects of
//! the HTTPS hosts and the ACME HTTP challenges); a server on `:443` alone serves the
//! HTTPS ones. With both ports in one server an HTTPS service would answer plain HTTP;
//! with `:443` alone, every plain service on that Caddy would be redirected away.
//!
//! Pure: given Caddy's servers and the services that have a TLS policy, the layout they
//! should have. Odysseus's routes are told apart by their `@id`; anyone else's routes
//! stay where they are.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::caddy::SERVER;

/// The server of HTTPS services' routes.
pub const TLS_SERVER: &str = "odysseus-tls";

const ROUTE_PREFIX: &str = "odysseus-route-";

fn plain_server() -> Value {
    json!({"listen": [":80"], "routes": []})
}

fn tls_server() -> Value {
    json!({"listen": [":443"], "routes": []})
}

/// The servers as they should be: each odysseus route in the server its service's TLS
/// policy (or its absence) says, `extra` added where it belongs if its `@id` is nowhere
/// yet, routes with a host matcher before routes for any host (order otherwise kept),
/// each server on its one port. `None` when that is how they are.
pub fn arrange(
    servers: &Map<String, Value>,
    tls_services: &BTreeSet<String>,
    extra: Option<&Value>,
) -> Option<Map<String, Value>> {
    let wants_tls = |route: &Value| {
        route["@id"]
            .as_str()
            .and_then(|id| id.strip_prefix(ROUTE_PREFIX))
            .is_some_and(|service| tls_services.contains(service))
    };
    let ours = |route: &Value| {
        route["@id"]
            .as_str()
            .is_some_and(|id| id.starts_with(ROUTE_PREFIX))
    };
    let mut out = servers.clone();
    let mut moving: Vec<Value> = Vec::new();
    // Take odysseus's routes out of the server they do not belong in.
    for (name, server) in out.iter_mut() {
        let Some(routes) = server.get_mut("routes").and_then(Value::as_array_mut) else {
            continue;
        };
        let belongs_here = |r: &Value| match name.as_str() {
            SERVER => !wants_tls(r),
            TLS_SERVER => wants_tls(r),
            // Someone else's server: odysseus's routes never live there.
            _ => false,
        };
        let (stay, go): (Vec<Value>, Vec<Value>) =
            routes.drain(..).partition(|r| !ours(r) || belongs_here(r));
        *routes = stay;
        moving.extend(go);
    }
    if let Some(route) = extra {
        let present = servers.values().any(|s| {
            s["routes"]
                .as_array()
                .is_some_and(|rs| rs.iter().any(|r| r["@id"] == route["@id"]))
        });
        if !present {
            moving.push(route.clone());
        }
    }
    for route in moving {
        let (name, fresh) = if wants_tls(&route) {
            (TLS_SERVER, tls_server())
        } else {
            (SERVER, plain_server())
        };
        let server = out.entry(name.to_string()).or_insert(fresh);
        if !server["routes"].is_array() {
            server["routes"] = json!([]);
        }
        server["routes"]
            .as_array_mut()
            .expect("set above")
            .push(route);
    }
    // Each of odysseus's servers on its one port.
    for (name, port) in [(SERVER, ":80"), (TLS_SERVER, ":443")] {
        if let Some(server) = out.get_mut(name) {
            server["listen"] = json!([port]);
            if let Some(routes) = server["routes"].as_array_mut() {
                let (hosts, any): (Vec<Value>, Vec<Value>) =
                    routes.drain(..).partition(|r| r.get("match").is_some());
                routes.extend(hosts);
                routes.extend(any);
            }
        }
    }
    // A TLS server with nothing to serve is not kept (nor made).
    if out
        .get(TLS_SERVER)
        .is_some_and(|s| s["routes"].as_array().is_none_or(Vec::is_empty))
    {
        out.remove(TLS_SERVER);
    }
    (out != *servers).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(service: &str, host: Option<&str>) -> Value {
        let mut r = json!({"@id": format!("odysseus-route-{service}"), "handle": []});
        if let Some(h) = host {
            r["match"] = json!([{"host": [h]}]);
        }
        r
    }

    fn servers(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn ids(servers: &Map<String, Value>, name: &str) -> Vec<String> {
        servers[name]["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["@id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn https_and_plain_services_each_get_their_own_server() {
        let tls: BTreeSet<String> = ["shop".to_string()].into();
        let start = servers(
            json!({"odysseus": {"listen": [":80"], "routes": [route("blog", Some("blog.test"))]}}),
        );
        let out = arrange(&start, &tls, Some(&route("shop", Some("shop.test")))).unwrap();
        assert_eq!(ids(&out, SERVER), ["odysseus-route-blog"]);
        assert_eq!(ids(&out, TLS_SERVER), ["odysseus-route-shop"]);
        assert_eq!(out[TLS_SERVER]["listen"], json!([":443"]));
        assert_eq!(out[SERVER]["listen"], json!([":80"]));
        // Settled: nothing more to change.
        assert_eq!(
            arrange(&out, &tls, Some(&route("shop", Some("shop.test")))),
            None
        );
    }

    #[test]
    fn a_server_made_for_https_alone_by_an_older_odysseus_is_split() {
        // Session-6 layout: one server on :443 holding everything.
        let tls: BTreeSet<String> = ["shop".to_string()].into();
        let start = servers(json!({"odysseus": {"listen": [":443"], "routes": [
            route("shop", Some("shop.test")), route("blog", Some("blog.test"))]}}));
        let out = arrange(&start, &tls, None).unwrap();
        assert_eq!(out[SERVER]["listen"], json!([":80"]));
        assert_eq!(ids(&out, SERVER), ["odysseus-route-blog"]);
        assert_eq!(ids(&out, TLS_SERVER), ["odysseus-route-shop"]);
    }

    #[test]
    fn a_service_that_turns_ssl_off_moves_back_and_the_empty_tls_server_goes() {
        let start = servers(json!({
            "odysseus": {"listen": [":80"], "routes": []},
            "odysseus-tls": {"listen": [":443"], "routes": [route("shop", Some("shop.test"))]}}));
        let out = arrange(&start, &BTreeSet::new(), None).unwrap();
        assert_eq!(ids(&out, SERVER), ["odysseus-route-shop"]);
        assert!(!out.contains_key(TLS_SERVER));
    }

    #[test]
    fn host_routes_come_before_a_catch_all_and_foreign_routes_stay() {
        let start = servers(json!({
            "odysseus": {"listen": [":80"], "routes": [route("any", None)]},
            "srv0": {"listen": [":8080"], "routes": [{"handle": []}]}}));
        let out = arrange(
            &start,
            &BTreeSet::new(),
            Some(&route("blog", Some("blog.test"))),
        )
        .unwrap();
        assert_eq!(
            ids(&out, SERVER),
            ["odysseus-route-blog", "odysseus-route-any"]
        );
        assert_eq!(out["srv0"], start["srv0"]);
    }
}
