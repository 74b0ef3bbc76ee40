//! Caddy through its admin API: odysseus keeps its own HTTP servers (`odysseus` on :80,
//! `odysseus-tls` on :443 for HTTPS services: see `caddy_servers`) and one route per
//! service, addressed by `@id`, never by array index. Upstream lists are
//! changed by read-modify-write guarded with the ETag Caddy returns (If-Match), so two
//! writers cannot silently undo each other.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use odysseus_engine::runtime::ExecError;
use serde_json::{json, Map, Value};

use super::admin_relay::{self, ADMIN_LISTEN};
use super::engine::{Engine, NewContainer};
use super::spec::{ProxySpec, Resources};

pub const CADDY_CONTAINER: &str = "odysseus-caddy";
pub const SERVER: &str = "odysseus";
/// Caddy rejects admin requests whose Host is not one of its own addresses; tunnelled
/// requests must still say this.
pub const ADMIN_HOST: &str = "127.0.0.1:2019";
const BOOTSTRAP_PATH: &str = "/etc/caddy/odysseus.json";
/// How long Caddy keeps an idle connection to an upstream.
pub const IDLE_UPSTREAM_TIMEOUT: &str = "1s";

pub fn route_id(service: &str) -> String {
    format!("odysseus-route-{service}")
}

pub fn proxy_id(service: &str) -> String {
    format!("odysseus-proxy-{service}")
}

/// The first config a new Caddy runs: the admin API on its container's loopback only
/// (see `admin_relay`) and odysseus's own server. Caddy 2.6 ignores CADDY_ADMIN, so the
/// address must be in the config.
pub fn bootstrap_config() -> Value {
    json!({
        "admin": admin_config(),
        "apps": {"http": {"servers": {SERVER: {"listen": [":80"], "routes": []}}}}
    })
}

fn admin_config() -> Value {
    json!({"listen": ADMIN_LISTEN, "origins": [ADMIN_HOST, "localhost:2019", "[::1]:2019"]})
}

/// The route of one service: host matcher (none = any host), one reverse proxy whose
/// upstreams odysseus edits, Caddy's active health check from `proxy.healthcheck`.
pub fn route_config(service: &str, proxy: &ProxySpec, upstreams: &[String]) -> Value {
    let mut handler = json!({
        "@id": proxy_id(service),
        "handler": "reverse_proxy",
        "upstreams": upstreams.iter().map(|u| json!({"dial": u})).collect::<Vec<_>>(),
        // A dead upstream is retried on another one instead of answering 502 at once.
        "load_balancing": {"try_duration": "5s", "try_interval": "250ms"},
        // Caddy keeps idle connections to upstreams for 2 minutes by default. A switch
        // through slots does not reload Caddy, so nothing else closes the idle ones to a
        // container that no longer gets requests, and the drain (which counts its
        // connections) would wait for them: close them after 1 s.
        "transport": {"protocol": "http", "keep_alive": {"idle_timeout": IDLE_UPSTREAM_TIMEOUT}},
    });
    if let Some(hc) = &proxy.healthcheck {
        let mut active = json!({
            "uri": hc.path,
            "interval": format!("{}s", hc.interval_s.max(1)),
            "timeout": format!("{}s", hc.timeout_s.max(1)),
        });
        if let super::spec::ExpectStatus::Exact(code) = hc.expect {
            active["expect_status"] = json!(code);
        } else if let super::spec::ExpectStatus::Class(class) = hc.expect {
            active["expect_status"] = json!(u16::from(class));
        }
        handler["health_checks"] = json!({"active": active});
    }
    let mut route = json!({"@id": route_id(service), "handle": [handler], "terminal": true});
    if !proxy.hosts.is_empty() {
        route["match"] = json!([{"host": proxy.hosts}]);
    }
    route
}

/// The TLS automation policy of one service (`proxy.ssl` with hosts): its own hosts, its
/// own `ssl_email` (another service's never applies to them), its CA and that CA's root.
pub fn tls_policy(service: &str, proxy: &ProxySpec) -> Value {
    let mut issuer = json!({"module": "acme"});
    if let Some(email) = &proxy.ssl_email {
        issuer["email"] = json!(email);
    }
    if let Some(ca) = &proxy.acme_ca {
        issuer["ca"] = json!(ca);
    }
    if proxy.acme_ca_root.is_some() {
        issuer["trusted_roots_pem_files"] = json!([ca_root_path(service)]);
    }
    json!({"@id": tls_policy_id(service), "subjects": proxy.hosts, "issuers": [issuer]})
}

pub fn tls_policy_id(service: &str) -> String {
    format!("odysseus-tls-{service}")
}

/// Where a service's `acme_ca_root` lives in the Caddy container: on its data volume, so
/// a recreated Caddy still finds the file its restored config names.
pub fn ca_root_path(service: &str) -> String {
    format!("/data/odysseus/acme-ca-root-{service}.pem")
}

pub struct CaddyAdmin {
    docker: bollard::Docker,
    /// The kept connection to the admin API (see `admin_relay`).
    conn: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
}

struct Reply {
    status: u16,
    body: Vec<u8>,
    etag: Option<String>,
}

const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

impl CaddyAdmin {
    /// The admin API of the host's `odysseus-caddy`, through that host's Docker engine.
    pub fn new(docker: bollard::Docker) -> Self {
        CaddyAdmin {
            docker,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Reply, ExecError> {
        match self.exchange(method, path, body, if_match).await {
            Err(ExecError::OutcomeUnknown(_))
                if admin_relay::nc_missing(&self.docker, CADDY_CONTAINER).await =>
            {
                Err(admin_relay::nc_missing_error(CADDY_CONTAINER))
            }
            other => other,
        }
    }

    async fn exchange(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Reply, ExecError> {
        let unknown = |e: &dyn std::fmt::Display| {
            ExecError::OutcomeUnknown(format!("Caddy admin API {method} {path}: {e}"))
        };
        let mut request = http::Request::builder()
            .method(method.as_str())
            .uri(path)
            .header("Host", ADMIN_HOST)
            .header("Content-Type", "application/json");
        if let Some(tag) = if_match {
            request = request.header("If-Match", tag);
        }
        let mut request = request
            .body(Full::new(Bytes::from(
                body.map(Value::to_string).unwrap_or_default(),
            )))
            .map_err(|e| unknown(&e))?;
        let mut conn = self.conn.lock().await;
        // A request goes out once: it is sent again on a new connection only when the
        // kept one had closed before it was sent.
        let response = loop {
            let sender = match conn.as_mut() {
                Some(sender) if !sender.is_closed() => sender,
                _ => conn.insert(admin_relay::connect(&self.docker, CADDY_CONTAINER).await?),
            };
            if sender.ready().await.is_err() {
                *conn = None;
                continue;
            }
            match tokio::time::timeout(ADMIN_TIMEOUT, sender.try_send_request(request)).await {
                Err(_) => {
                    *conn = None;
                    return Err(unknown(&"no answer within 10 s"));
                }
                Ok(Ok(response)) => break response,
                Ok(Err(mut failed)) => {
                    *conn = None;
                    match failed.take_message() {
                        Some(unsent) => request = unsent,
                        None => return Err(unknown(failed.error())),
                    }
                }
            }
        };
        let status = response.status().as_u16();
        let header_etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // Caddy 2.6 sends the ETag as a trailer of the chunked body.
        let collected =
            match tokio::time::timeout(ADMIN_TIMEOUT, response.into_body().collect()).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    *conn = None;
                    return Err(unknown(&e));
                }
                Err(_) => {
                    *conn = None;
                    return Err(unknown(&"no answer within 10 s"));
                }
            };
        let trailer_etag = collected
            .trailers()
            .and_then(|t| t.get("etag"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Reply {
            status,
            body: collected.to_bytes().to_vec(),
            etag: header_etag.or(trailer_etag),
        })
    }

    fn failed(what: &str, reply: &Reply) -> ExecError {
        let body = String::from_utf8_lossy(&reply.body);
        let err = format!(
            "Caddy admin API {what}: HTTP {} {}",
            reply.status,
            body.trim()
        );
        if reply.status >= 500 {
            ExecError::Retryable(err)
        } else {
            ExecError::Permanent(err)
        }
    }

    /// Moves an admin API that listens beyond its container's loopback (as odysseus
    /// before 2026-12 set it up: every container on the `odysseus` network could reach
    /// it) onto the loopback. Caddy keeps its routes; the change is saved with its config.
    /// Returns whether it had to move.
    pub async fn keep_admin_on_loopback(&self) -> Result<bool, ExecError> {
        let listen = self
            .get("/config/admin/listen")
            .await?
            .and_then(|(v, _)| v.as_str().map(str::to_string));
        if listen.as_deref() == Some(ADMIN_LISTEN) {
            return Ok(false);
        }
        self.send(
            reqwest::Method::POST,
            "/config/admin",
            &admin_config(),
            None,
        )
        .await?;
        // Caddy answers, then restarts its admin server on the new address: the kept
        // connection ends with the old one.
        *self.conn.lock().await = None;
        for _ in 0..50 {
            if self.ready().await {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ExecError::Retryable(
            "Caddy's admin API did not come back on its loopback within 5 s".into(),
        ))
    }

    /// Whether the admin API answers; an error only when it never can (no `nc`).
    pub async fn check_ready(&self) -> Result<bool, ExecError> {
        match self
            .call(reqwest::Method::GET, "/config/", None, None)
            .await
        {
            Ok(r) => Ok(r.status == 200),
            Err(e @ ExecError::Permanent(_)) => Err(e),
            Err(_) => Ok(false),
        }
    }

    pub async fn ready(&self) -> bool {
        matches!(self.call(reqwest::Method::GET, "/config/", None, None).await, Ok(r) if r.status == 200)
    }

    async fn get(&self, path: &str) -> Result<Option<(Value, Option<String>)>, ExecError> {
        let reply = self.call(reqwest::Method::GET, path, None, None).await?;
        match reply.status {
            200 => {
                let value: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                Ok((!value.is_null()).then_some((value, reply.etag)))
            }
            // An unknown @id is a 404 (2.6 says 500 "unknown object ID" on some paths).
            404 => Ok(None),
            500 if String::from_utf8_lossy(&reply.body).contains("unknown object ID") => Ok(None),
            // A path through a key that does not exist yet (e.g. the TLS app's policies on a
            // Caddy without a TLS app): Caddy answers 400 "invalid traversal path".
            400 if String::from_utf8_lossy(&reply.body).contains("invalid traversal path") => {
                Ok(None)
            }
            _ => Err(Self::failed(&format!("GET {path}"), &reply)),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<u16, ExecError> {
        let reply = self
            .call(method.clone(), path, Some(body), if_match)
            .await?;
        match reply.status {
            200..=299 => Ok(reply.status),
            412 => Ok(412),
            _ => Err(Self::failed(&format!("{method} {path}"), &reply)),
        }
    }

    /// Makes sure the service's route exists in the server its `proxy.ssl` says (see
    /// `caddy_servers`), with its TLS policy written first when `ssl` is on and removed
    /// when it is off. Never assumes a Caddyfile's `srv0`.
    pub async fn ensure_route(&self, service: &str, proxy: &ProxySpec) -> Result<(), ExecError> {
        // The policy before the route: a host routed without its policy makes Caddy start
        // an order at its default CA (with whatever email) at once.
        if proxy.ssl && !proxy.hosts.is_empty() {
            self.ensure_tls_policy(service, proxy).await?;
        } else {
            self.delete_id(&tls_policy_id(service)).await?;
        }
        if proxy.hosts.is_empty() && self.route(service).await?.is_none() {
            self.refuse_second_catch_all(service).await?;
        }
        self.rearrange(Some(&route_config(service, proxy, &[])))
            .await
    }

    /// The services that have an odysseus TLS policy on this Caddy.
    async fn tls_services(&self) -> Result<BTreeSet<String>, ExecError> {
        Ok(
            match self.get("/config/apps/tls/automation/policies").await? {
                Some((Value::Array(policies), _)) => policies
                    .iter()
                    .filter_map(|p| p["@id"].as_str()?.strip_prefix("odysseus-tls-"))
                    .map(str::to_string)
                    .collect(),
                _ => BTreeSet::new(),
            },
        )
    }

    /// Puts Caddy's servers in the layout `caddy_servers::arrange` gives (adding `extra`
    /// if its route is nowhere yet): one change, and none when they are so already.
    async fn rearrange(&self, extra: Option<&Value>) -> Result<(), ExecError> {
        for _ in 0..10 {
            let tls = self.tls_services().await?;
            match self.get("/config/apps/http/servers").await? {
                Some((Value::Object(servers), etag)) => {
                    let Some(wanted) = super::caddy_servers::arrange(&servers, &tls, extra) else {
                        return Ok(());
                    };
                    let status = self
                        .send(
                            reqwest::Method::PATCH,
                            "/config/apps/http/servers",
                            &Value::Object(wanted),
                            etag.as_deref(),
                        )
                        .await?;
                    if status != 412 {
                        return Ok(());
                    }
                }
                _ => {
                    let wanted =
                        super::caddy_servers::arrange(&Map::new(), &tls, extra).unwrap_or_default();
                    if wanted.is_empty() {
                        return Ok(());
                    }
                    if self.get("/config/apps/http").await?.is_none() {
                        let http = json!({"servers": wanted});
                        self.send(reqwest::Method::PUT, "/config/apps/http", &http, None)
                            .await?;
                    } else {
                        self.send(
                            reqwest::Method::PUT,
                            "/config/apps/http/servers",
                            &Value::Object(wanted),
                            None,
                        )
                        .await?;
                    }
                    return Ok(());
                }
            }
        }
        Err(ExecError::Retryable(
            "Caddy's servers kept changing under us (412 ten times)".into(),
        ))
    }

    async fn ensure_tls_policy(&self, service: &str, proxy: &ProxySpec) -> Result<(), ExecError> {
        if let Some(pem) = &proxy.acme_ca_root {
            self.place_ca_root(service, pem).await?;
        }
        let policy = tls_policy(service, proxy);
        let id = format!("/id/{}", tls_policy_id(service));
        if let Some((current, _)) = self.get(&id).await? {
            if current != policy {
                // Its hosts, email or CA changed: this service's policy only.
                self.send(reqwest::Method::PATCH, &id, &policy, None)
                    .await?;
            }
            return Ok(());
        }
        match self.get("/config/apps/tls/automation/policies").await? {
            Some((Value::Array(existing), _)) if existing.contains(&policy) => Ok(()),
            Some(_) => {
                self.send(
                    reqwest::Method::POST,
                    "/config/apps/tls/automation/policies",
                    &policy,
                    None,
                )
                .await?;
                Ok(())
            }
            None => {
                let tls = json!({"automation": {"policies": [policy]}});
                if self.get("/config/apps/tls").await?.is_none() {
                    self.send(reqwest::Method::PUT, "/config/apps/tls", &tls, None)
                        .await?;
                } else {
                    self.send(
                        reqwest::Method::PUT,
                        "/config/apps/tls/automation",
                        &tls["automation"],
                        None,
                    )
                    .await?;
                }
                Ok(())
            }
        }
    }

    /// Writes the root of `proxy.acme_ca` where the policy names it (Caddy reads the file
    /// when the policy is loaded).
    async fn place_ca_root(&self, service: &str, pem: &str) -> Result<(), ExecError> {
        let path = ca_root_path(service);
        let tar = super::tar::single_file(&path, pem.as_bytes(), 0o644)
            .map_err(|e| ExecError::Permanent(format!("archiving {path}: {e}")))?;
        let options = bollard::query_parameters::UploadToContainerOptions {
            path: "/".to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(
                CADDY_CONTAINER,
                Some(options),
                bollard::body_full(tar.into()),
            )
            .await
            .map_err(|e| ExecError::Retryable(format!("placing {path} in {CADDY_CONTAINER}: {e}")))
    }

    /// Another service's route already answers every host on this Caddy: a second one
    /// would never be reached (or would shadow the first), so it is refused.
    pub(crate) async fn refuse_second_catch_all(&self, service: &str) -> Result<(), ExecError> {
        let routes = format!("/config/apps/http/servers/{SERVER}/routes");
        let own = route_id(service);
        if let Some((Value::Array(list), _)) = self.get(&routes).await? {
            for r in &list {
                let id = r["@id"].as_str().unwrap_or_default();
                if id != own && id.starts_with("odysseus-route-") && r.get("match").is_none() {
                    return Err(ExecError::Permanent(format!(
                        "{} already answers every host on this Caddy: give {service} proxy.hosts (or the other service), so each gets its own requests",
                        id.trim_start_matches("odysseus-route-")
                    )));
                }
            }
        }
        Ok(())
    }

    /// Routes with a host matcher first, routes for any host last (order otherwise
    /// kept): a route whose matcher changed may have to move.
    pub(crate) async fn order_routes(&self) -> Result<(), ExecError> {
        self.rearrange(None).await
    }

    /// The path the service's route health-checks its upstreams on (None: no route, or
    /// no active check).
    pub async fn route_health_path(&self, service: &str) -> Result<Option<String>, ExecError> {
        Ok(self
            .get(&format!("/id/{}", route_id(service)))
            .await?
            .and_then(|(route, _)| {
                proxy_handler(&route)["health_checks"]["active"]["uri"]
                    .as_str()
                    .map(str::to_string)
            }))
    }

    /// Takes the service's route and TLS policy out of Caddy; `false` when there was no
    /// route. Idempotent.
    pub async fn remove_route(&self, service: &str) -> Result<bool, ExecError> {
        let had_route = self.delete_id(&route_id(service)).await?;
        self.delete_id(&tls_policy_id(service)).await?;
        Ok(had_route)
    }

    /// Whether any route is left in any of Caddy's servers (another service's, or one a
    /// person added).
    pub async fn any_route(&self) -> Result<bool, ExecError> {
        let Some((Value::Object(servers), _)) = self.get("/config/apps/http/servers").await? else {
            return Ok(false);
        };
        Ok(servers
            .values()
            .any(|s| s["routes"].as_array().is_some_and(|r| !r.is_empty())))
    }

    async fn delete_id(&self, id: &str) -> Result<bool, ExecError> {
        let path = format!("/id/{id}");
        if self.get(&path).await?.is_none() {
            return Ok(false);
        }
        let reply = self
            .call(reqwest::Method::DELETE, &path, None, None)
            .await?;
        match reply.status {
            200..=299 | 404 => Ok(true),
            _ => Err(Self::failed(&format!("DELETE {path}"), &reply)),
        }
    }

    /// The service's route and its ETag; `None` when it has none.
    pub async fn route(&self, service: &str) -> Result<Option<(Value, Option<String>)>, ExecError> {
        self.get(&format!("/id/{}", route_id(service))).await
    }

    /// Replaces the service's route if it is still the one tagged `etag`: `false` when
    /// it changed meanwhile (412), so the caller reads it again. Every write is a reload.
    pub async fn replace_route(
        &self,
        service: &str,
        route: &Value,
        etag: Option<&str>,
    ) -> Result<bool, ExecError> {
        let path = format!("/id/{}", route_id(service));
        Ok(self
            .send(reqwest::Method::PATCH, &path, route, etag)
            .await?
            != 412)
    }
}

/// The dial addresses a route's reverse proxy lists (containers, or slot placeholders).
pub fn listed_dials(route: &Value) -> Vec<String> {
    dials(&proxy_handler(route)["upstreams"])
}

/// The route's reverse proxy: its first handler, or the one after a maintenance page.
fn proxy_handler(route: &Value) -> &Value {
    route["handle"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["handler"] == "reverse_proxy"))
        .unwrap_or(&Value::Null)
}

fn dials(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|u| u.get("dial").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Refuses an existing Caddy whose published ports are not the config's: it would
/// silently serve on other ports than the user asked for.
pub async fn check_existing_caddy(engine: &Engine, proxy: &ProxySpec) -> Result<(), ExecError> {
    let Some(caddy) = engine.inspect(CADDY_CONTAINER).await? else {
        return Ok(());
    };
    if caddy.image != proxy.image {
        tracing::warn!(
            "{}: {CADDY_CONTAINER} runs {}, but proxy.image is {}; odysseus keeps the running Caddy (replacing it drops connections). \
             To switch, remove it at a quiet moment (`docker rm -f {CADDY_CONTAINER}`): the next deploy creates it from proxy.image, with its routes (kept on its volume)",
            engine.host,
            caddy.image,
            proxy.image
        );
    }
    for (container_port, wanted, key) in [
        (80, proxy.http_port, "proxy.http_port"),
        (443, proxy.https_port, "proxy.https_port"),
    ] {
        if let Some((_, actual)) = caddy.published.iter().find(|(p, _)| *p == container_port) {
            if *actual != wanted {
                return Err(ExecError::Permanent(format!(
                    "the {CADDY_CONTAINER} container on {} publishes port {container_port} on {actual}, but {key} is {wanted}; \
                     change {key} to {actual}, or remove that Caddy (`docker rm -f {CADDY_CONTAINER}`) so odysseus recreates it",
                    engine.host
                )));
            }
        }
    }
    Ok(())
}

/// Finds the host's Caddy by name (a second one could bind the same ports silently) and
/// starts one if there is none. Its config survives restarts: `--resume` with /config on
/// a volume.
pub async fn ensure_caddy(
    engine: &Engine,
    admin: &CaddyAdmin,
    proxy: &ProxySpec,
    subnet: Option<&str>,
    auth: Option<&super::spec::RegistryAuth>,
) -> Result<(), ExecError> {
    engine.ensure_network(subnet).await?;
    match engine.inspect(CADDY_CONTAINER).await? {
        Some(c) if c.running => {}
        Some(_) => engine.start(CADDY_CONTAINER).await?,
        None => {
            engine.ensure_image(&proxy.image, auth).await?;
            let labels: std::collections::HashMap<String, String> =
                [("odysseus.proxy".to_string(), "caddy".to_string())]
                    .into_iter()
                    .collect();
            let resources = Resources::default();
            let new_caddy = |sysctls: Vec<(String, String)>| NewContainer {
                name: CADDY_CONTAINER,
                image: &proxy.image,
                cmd: Some(
                    [
                        "/usr/bin/caddy",
                        "run",
                        "--resume",
                        "--config",
                        BOOTSTRAP_PATH,
                    ]
                    .map(str::to_string)
                    .to_vec(),
                ),
                env: vec![
                    "XDG_CONFIG_HOME=/config".into(),
                    "XDG_DATA_HOME=/data".into(),
                ],
                labels: labels.clone(),
                binds: vec![
                    "odysseus-caddy-config:/config".into(),
                    "odysseus-caddy-data:/data".into(),
                ],
                resources: &resources,
                healthcheck: None,
                publish: vec![
                    (80, "0.0.0.0".into(), proxy.http_port),
                    (443, "0.0.0.0".into(), proxy.https_port),
                ],
                aliases: vec![],
                sysctls,
                oneoff: None,
            };
            // Caddy binds its listeners with SO_REUSEPORT and opens new sockets on every
            // config change; connections waiting in the old socket's accept queue are
            // reset when it closes. tcp_migrate_req (Linux 5.14+) moves them to the new
            // socket instead: without it, every upstream change can drop a request.
            let migrate = vec![("net.ipv4.tcp_migrate_req".to_string(), "1".to_string())];
            match engine.create(new_caddy(migrate)).await {
                Ok(_) => {}
                Err(ExecError::Permanent(e))
                    if e.contains("sysctl") || e.contains("tcp_migrate_req") =>
                {
                    tracing::warn!(error = %e, "kernel lacks net.ipv4.tcp_migrate_req; Caddy config changes may reset connections");
                    engine.create(new_caddy(vec![])).await?;
                }
                Err(e) => return Err(e),
            }
            let config = serde_json::to_vec_pretty(&bootstrap_config()).expect("JSON");
            engine
                .upload_file(CADDY_CONTAINER, BOOTSTRAP_PATH, &config)
                .await?;
            engine.start(CADDY_CONTAINER).await?;
        }
    }
    for _ in 0..100 {
        if admin.check_ready().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs = engine.last_logs(CADDY_CONTAINER, 20).await;
    Err(ExecError::Retryable(format!(
        "Caddy's admin API did not answer within 10 s; its last lines:\n{logs}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::spec::{ExpectStatus, HttpCheck};

    fn proxy(ssl: bool, hosts: &[&str]) -> ProxySpec {
        ProxySpec {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            app_port: 3000,
            ssl,
            ssl_email: Some("ops@example.com".into()),
            healthcheck: Some(HttpCheck {
                path: "/up".into(),
                interval_s: 10,
                timeout_s: 5,
                expect: ExpectStatus::Exact(200),
            }),
            image: "caddy:2-alpine".into(),
            http_port: 80,
            https_port: 443,
            acme_ca: None,
            acme_ca_root: None,
        }
    }

    #[test]
    fn the_route_has_ids_a_host_matcher_and_caddys_active_health_check() {
        let route = route_config(
            "app",
            &proxy(false, &["app.example.com"]),
            &["app-web-1:3000".into()],
        );
        assert_eq!(route["@id"], "odysseus-route-app");
        assert_eq!(route["match"][0]["host"][0], "app.example.com");
        let handler = &route["handle"][0];
        assert_eq!(handler["@id"], "odysseus-proxy-app");
        assert_eq!(handler["upstreams"][0]["dial"], "app-web-1:3000");
        assert_eq!(handler["health_checks"]["active"]["uri"], "/up");
        assert_eq!(handler["health_checks"]["active"]["expect_status"], 200);
        // No hosts: the route matches any host.
        assert!(route_config("app", &proxy(false, &[]), &[])
            .get("match")
            .is_none());
    }

    #[test]
    fn ssl_writes_an_acme_policy_for_the_hosts_and_a_new_caddy_starts_on_80() {
        let p = proxy(true, &["app.example.com", "www.example.com"]);
        let policy = tls_policy("app", &p);
        assert_eq!(
            policy["subjects"],
            json!(["app.example.com", "www.example.com"])
        );
        assert_eq!(policy["@id"], "odysseus-tls-app");
        assert_eq!(policy["issuers"][0]["module"], "acme");
        assert_eq!(policy["issuers"][0]["email"], "ops@example.com");
        assert!(
            policy["issuers"][0].get("ca").is_none(),
            "Caddy's default CAs"
        );
        let staged = ProxySpec {
            acme_ca: Some("https://ca.test/dir".into()),
            acme_ca_root: Some("-----BEGIN CERTIFICATE-----".into()),
            ..p.clone()
        };
        let policy = tls_policy("app", &staged);
        assert_eq!(policy["issuers"][0]["ca"], "https://ca.test/dir");
        assert_eq!(
            policy["issuers"][0]["trusted_roots_pem_files"],
            json!(["/data/odysseus/acme-ca-root-app.pem"])
        );
        // A new Caddy starts with the plain server on :80 only (the :443 one comes with
        // the first HTTPS route: caddy_servers).
        let config = bootstrap_config();
        assert_eq!(
            config["apps"]["http"]["servers"][SERVER]["listen"],
            json!([":80"])
        );
        // The admin API is on the container's loopback: no other container reaches it.
        assert_eq!(config["admin"]["listen"], "127.0.0.1:2019");
    }
}
