//! `neutrino agent status`: what the running agent manages, read from its
//! `/status` and printed for a person.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::config::AgentConfig;

pub async fn fetch(cfg: &AgentConfig) -> anyhow::Result<String> {
    if cfg.agent.metrics_listen.is_empty() {
        bail!("agent.metrics_listen is empty: the agent serves no status");
    }
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri = format!("http://{}/status", cfg.agent.metrics_listen);
    let resp = client
        .get(uri.parse()?)
        .await
        .with_context(|| format!("no agent answers at {uri}"))?;
    let body = resp.into_body().collect().await?.to_bytes();
    let v: Value = serde_json::from_slice(&body)?;
    Ok(render(&v))
}

pub fn render(v: &Value) -> String {
    if v.is_null() {
        return "the agent has not completed a pass yet\n".into();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "host {}  revision {}  last pass {} ms",
        v["host"].as_str().unwrap_or("?"),
        v["revision"],
        v["last_pass_ms"]
    );
    let _ = writeln!(out, "networks:");
    for n in v["networks"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {}  {:<12} {:<6} seg {:<8} mtu {}  bridge {}{}",
            n["id"].as_str().unwrap_or(""),
            n["name"].as_str().unwrap_or(""),
            n["type"].as_str().unwrap_or(""),
            n["segmentation_id"]
                .as_u64()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            n["mtu"],
            n["bridge"].as_str().unwrap_or(""),
            n["problem"]
                .as_str()
                .map(|p| format!("  PROBLEM: {p}"))
                .unwrap_or_default(),
        );
    }
    let _ = writeln!(out, "ports on this host:");
    for (id, p) in v["ports"].as_object().into_iter().flatten() {
        let state = if p["active"] == true {
            "ACTIVE"
        } else {
            "DOWN"
        };
        let _ = writeln!(
            out,
            "  {id}  {:<15} on {:<15} {state}",
            p["device"].as_str().unwrap_or(""),
            p["bridge"].as_str().unwrap_or("")
        );
    }
    let _ = writeln!(
        out,
        "dhcp: mode {} driver {}",
        v["dhcp"]["mode"].as_str().unwrap_or("?"),
        v["dhcp"]["driver"].as_str().unwrap_or("?")
    );
    for (id, d) in v["dhcp"]["networks"].as_object().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {id}  namespace {}  {} reservations",
            d["namespace"].as_str().unwrap_or(""),
            d["reservations"]
        );
    }
    if let Some(problems) = v["problems"].as_array().filter(|p| !p.is_empty()) {
        let _ = writeln!(out, "not converged:");
        for p in problems {
            let _ = writeln!(
                out,
                "  {} {}  for {}s: {}",
                p["kind"].as_str().unwrap_or(""),
                p["id"].as_str().unwrap_or(""),
                p["age_secs"],
                p["message"].as_str().unwrap_or("")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn problems_are_listed_with_kind_id_age_and_message() {
        let v = serde_json::json!({
            "host": "h1", "revision": 3, "last_pass_ms": 1.5,
            "problems": [{"kind": "network", "id": "n1", "age_secs": 12,
                          "message": "link vxlan-7: File exists"}],
        });
        let out = super::render(&v);
        assert!(
            out.contains("not converged:\n  network n1  for 12s: link vxlan-7: File exists\n"),
            "{out}"
        );
    }
}
