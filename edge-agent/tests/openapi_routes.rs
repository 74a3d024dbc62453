//! Keeps `openapi.yaml` honest: every route registered in `src/rest.rs` (path and
//! method) is documented there, every documented path is a real route, and every
//! HTTP status the handlers produce appears among the documented responses. Plain text
//! checks, no YAML parser (the file is validated with `openapi-spec-validator`).

use std::collections::BTreeSet;

fn read(rel: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `.route("/path", get(handler))` (possibly `get(a).post(b)`) → (path, method).
fn code_routes(src: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for chunk in src.split(".route(\"").skip(1) {
        let (path, rest) = chunk.split_once('"').expect("route path");
        let call = rest.split_once(")\n").map_or(rest, |(c, _)| c);
        for m in ["get", "post", "put", "patch", "delete", "head", "options"] {
            if call.contains(&format!(" {m}(")) || call.contains(&format!(".{m}(")) || call.starts_with(&format!(", {m}(")) {
                out.insert((path.to_string(), m.to_string()));
            }
        }
    }
    out
}

/// Operations under `paths:`: two-space-indented `/path:` keys, four-space method keys.
fn spec_routes(yaml: &str) -> BTreeSet<(String, String)> {
    let section = yaml.split_once("\npaths:\n").expect("paths section").1;
    let section = section.split_once("\ncomponents:\n").map_or(section, |(p, _)| p);
    let mut out = BTreeSet::new();
    let mut path: Option<String> = None;
    for line in section.lines() {
        if let Some(p) = line.strip_prefix("  /").and_then(|l| l.strip_suffix(':')) {
            path = Some(format!("/{p}"));
        } else if let (Some(p), Some(m)) = (&path, line.strip_prefix("    ").and_then(|l| l.strip_suffix(':'))) {
            if !m.starts_with(' ') && ["get", "post", "put", "patch", "delete", "head", "options"].contains(&m) {
                out.insert((p.clone(), m.to_string()));
            }
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let code = code_routes(&read("src/rest.rs"));
    let spec = spec_routes(&read("openapi.yaml"));
    assert!(code.len() >= 11, "route extraction broke: {code:?}");
    let undocumented: Vec<_> = code.difference(&spec).collect();
    assert!(undocumented.is_empty(), "routes in src/rest.rs missing from openapi.yaml: {undocumented:?}");
    let stale: Vec<_> = spec.difference(&code).collect();
    assert!(stale.is_empty(), "operations in openapi.yaml that src/rest.rs does not serve: {stale:?}");
}

#[test]
fn every_status_the_handlers_produce_is_documented() {
    let src = read("src/rest.rs");
    let yaml = read("openapi.yaml");
    let src = src.split_once("#[cfg(test)]").map_or(src.as_str(), |(s, _)| s);
    let codes = [
        ("BAD_REQUEST", 400),
        ("UNAUTHORIZED", 401),
        ("NOT_FOUND", 404),
        ("CONFLICT", 409),
        ("INTERNAL_SERVER_ERROR", 500),
        ("BAD_GATEWAY", 502),
        ("SERVICE_UNAVAILABLE", 503),
    ];
    for chunk in src.split("StatusCode::").skip(1) {
        let name: String = chunk.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
        let code = codes.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("StatusCode::{name} is not in this test's table"));
        assert!(yaml.contains(&format!("'{}':", code.1)), "HTTP {} (StatusCode::{name}) is not a documented response", code.1);
    }
}

#[test]
fn extraction_sees_methods() {
    let r = code_routes(".route(\"/a\", get(x))\n.route(\"/b/{id}\", post(y))\n.route(\"/c\", get(a).post(b))\n");
    let want: BTreeSet<_> = [("/a", "get"), ("/b/{id}", "post"), ("/c", "get"), ("/c", "post")]
        .iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    assert_eq!(r, want);
}
