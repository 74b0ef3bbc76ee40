//! `proxy:` — how Caddy reaches the web role.

use odysseus_executors::docker::spec::{ExpectStatus, HttpCheck, ProxySpec};

use super::super::problems::Problems;
use super::super::raw::{RawProxy, Scalar};
use super::super::values::{check_http_path, check_image, parse_expect};

pub(super) fn proxy(
    raw: Option<&RawProxy>,
    resolve: &super::Resolver,
    problems: &mut Problems,
) -> Option<ProxySpec> {
    let p = raw?;
    if let Some(url) = &p.acme_ca {
        if !url.starts_with("https://")
            || url.len() <= "https://".len()
            || url.contains(char::is_whitespace)
        {
            problems.push(
                "proxy.acme_ca",
                format!("`{url}` must be an ACME directory URL (https://…/directory)"),
            );
        }
    }
    let acme_ca_root = p.acme_ca_root.as_ref().and_then(|file| {
        let path = resolve.path(file);
        match std::fs::read_to_string(&path) {
            Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => Some(pem),
            Ok(_) => {
                problems.push(
                    "proxy.acme_ca_root",
                    format!(
                        "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                        path.display()
                    ),
                );
                None
            }
            Err(e) => {
                problems.push(
                    "proxy.acme_ca_root",
                    format!("cannot read {}: {e}", path.display()),
                );
                None
            }
        }
    });
    if p.acme_ca_root.is_some() && p.acme_ca.is_none() {
        problems.push(
            "proxy.acme_ca_root",
            "is the root of proxy.acme_ca's certificates: name that CA too",
        );
    }
    if p.app_port.is_none() {
        problems.push("proxy.app_port", "is required when `proxy` is present");
    }
    if let Some(Scalar(s)) = p
        .healthcheck
        .as_ref()
        .and_then(|h| h.expect_status.as_ref())
    {
        if parse_expect(s).is_none() {
            problems.push(
                "proxy.healthcheck.expect_status",
                format!("`{s}` is neither a status code nor 2xx/3xx"),
            );
        }
    }
    if let Some(path) = p.healthcheck.as_ref().and_then(|h| h.path.as_ref()) {
        if let Err(why) = check_http_path(path) {
            problems.push("proxy.healthcheck.path", why);
        }
    }
    if let Some(h) = &p.healthcheck {
        for (field, value) in [
            ("interval", h.interval.map(|s| s.0)),
            ("timeout", h.timeout.map(|s| s.0)),
        ] {
            if value.is_some_and(|v| v == 0 || v > 86_400) {
                problems.push(
                    format!("proxy.healthcheck.{field}"),
                    "must be 1 to 86400 seconds",
                );
            }
        }
    }
    if let Some(image) = &p.image {
        if let Err(why) = check_image(image) {
            problems.push("proxy.image", why);
        }
    }
    if p.app_port == Some(0) {
        problems.push("proxy.app_port", "must be 1 to 65535");
    }
    for (field, value) in [("http_port", p.http_port), ("https_port", p.https_port)] {
        if value == Some(0) {
            problems.push(format!("proxy.{field}"), "must be 1 to 65535");
        }
    }
    for host in p.hosts.iter().flatten() {
        let ok = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.*_".contains(c));
        if !ok {
            problems.push(
                "proxy.hosts",
                format!(
                    "`{}` is not a host name Caddy can match",
                    host.escape_debug()
                ),
            );
        }
    }
    let healthcheck = p.healthcheck.as_ref().map(|h| HttpCheck {
        path: h.path.clone().unwrap_or_else(|| "/".into()),
        interval_s: h.interval.map(|s| s.0).unwrap_or(10),
        timeout_s: h.timeout.map(|s| s.0).unwrap_or(5),
        expect: match &h.expect_status {
            None => ExpectStatus::Any2xx,
            Some(Scalar(s)) => parse_expect(s).unwrap_or(ExpectStatus::Any2xx),
        },
    });
    Some(ProxySpec {
        hosts: p.hosts.clone().unwrap_or_default(),
        app_port: p.app_port.unwrap_or(0),
        ssl: p.ssl.unwrap_or(true),
        ssl_email: p.ssl_email.clone(),
        healthcheck,
        image: p.image.clone().unwrap_or_else(|| "caddy:2-alpine".into()),
        http_port: p.http_port.unwrap_or(80),
        https_port: p.https_port.unwrap_or(443),
        acme_ca: p.acme_ca.clone(),
        acme_ca_root,
    })
}
