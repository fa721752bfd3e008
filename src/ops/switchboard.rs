//! The switchboard's screen-pop: `/switchboard` lists recent calls, and
//! `/switchboard/calls/<call-id>` (the link sent with every transfer) shows what the
//! caller asked, what the bot understood and answered, and why it put them through.
//! Plain server-rendered HTML (and `?format=json`), so any browser on the switchboard
//! desk opens it.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Json, Response};
use serde::Deserialize;

use super::http::OpsState;
use super::live::CallView;

#[derive(Deserialize)]
pub struct Format {
    format: Option<String>,
}

pub async fn list(State(state): State<Arc<OpsState>>) -> Html<String> {
    let mut rows = String::new();
    for c in state.live.list() {
        let link = format!("/switchboard/calls/{}", url_escape(&c.call_id));
        let transfer = c
            .transfer
            .as_ref()
            .map_or(String::new(), |t| format!("{} ({})", t.queue, t.reason));
        writeln!(
            rows,
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&link),
            esc(&c.call_id),
            esc(c.topic.as_deref().unwrap_or("")),
            esc(&transfer),
            esc(c.outcome.as_deref().unwrap_or("i gang")),
            c.lines.len()
        )
        .ok();
    }
    Html(page(
        "Omstilling",
        &format!(
            "<table><tr><th>Opkald</th><th>Emne</th><th>Stillet om til</th><th>Status</th><th>Replikker</th></tr>\n{rows}</table>"
        ),
    ))
}

pub async fn call(
    State(state): State<Arc<OpsState>>,
    Path(call_id): Path<String>,
    Query(format): Query<Format>,
) -> Response {
    let Some(c) = state.live.get(&call_id) else {
        return (StatusCode::NOT_FOUND, "no such call (it may be too old)").into_response();
    };
    if format.format.as_deref() == Some("json") {
        return Json(c).into_response();
    }
    Html(page("Opkald", &render_call(&c))).into_response()
}

fn render_call(c: &CallView) -> String {
    let mut body = String::new();
    writeln!(body, "<dl>").ok();
    let facts = [
        ("Opkald", c.call_id.clone()),
        ("Kommune", c.tenant.clone()),
        ("Ringede til", c.called.clone()),
        ("Fra", c.caller.clone()),
        ("Sprog", c.language.clone()),
        ("Emne", c.topic.clone().unwrap_or_default()),
        ("Sidste emne (intent)", c.intent.clone().unwrap_or_default()),
        (
            "Status",
            c.outcome.clone().unwrap_or_else(|| "i gang".into()),
        ),
    ];
    for (k, v) in facts {
        writeln!(
            body,
            "<dt>{}</dt><dd class=\"{}\">{}</dd>",
            esc(k),
            css(k),
            esc(&v)
        )
        .ok();
    }
    if let Some(t) = &c.transfer {
        writeln!(
            body,
            "<dt>Stillet om</dt><dd class=\"transfer\">til {} – årsag: <b class=\"reason\">{}</b> {} {}</dd>",
            esc(&t.queue),
            esc(&t.reason),
            esc(&t.method),
            esc(&t.result)
        )
        .ok();
    }
    writeln!(body, "</dl>\n<h2>Samtalen</h2>\n<table class=\"lines\">").ok();
    for l in &c.lines {
        let who = if l.who == "caller" { "Borger" } else { "Bot" };
        let understood = match (&l.intent, l.confidence) {
            (Some(i), Some(conf)) => format!("{i} ({conf:.2})"),
            (Some(i), None) => i.clone(),
            _ => String::new(),
        };
        writeln!(
            body,
            "<tr class=\"{}\"><td>{:.1} s</td><td>{who}</td><td>{}</td><td>{}</td></tr>",
            l.who,
            l.at_secs,
            esc(&l.text),
            esc(&understood)
        )
        .ok();
    }
    body.push_str("</table>");
    body
}

fn css(label: &str) -> &'static str {
    match label {
        "Emne" => "topic",
        "Sidste emne (intent)" => "intent",
        "Status" => "outcome",
        _ => "fact",
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"da\"><head><meta charset=\"utf-8\"><title>{t} – voicebot</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .6em;text-align:left}}\
         tr.caller{{background:#eef}}dt{{font-weight:bold}}</style></head>\
         <body><h1>{t}</h1>\n{body}\n</body></html>",
        t = esc(title)
    )
}

/// HTML-escapes text that came from a caller (already redacted, never trusted).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-escapes a SIP Call-ID for a URL path segment.
pub fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::live::{LiveCalls, TransferView};

    #[test]
    fn the_call_page_shows_the_redacted_dialogue_and_the_transfer_reason_escaped() {
        let live = LiveCalls::new(4);
        live.start("x@y", 0, "70101010", "+45 20 ** ** 56", "da");
        live.said(
            "x@y",
            4.0,
            "caller",
            "<script>alert(1)</script> mit cpr er 010203-1234",
        );
        live.understood(
            "x@y",
            &crate::ops::live::answer("pas.nyt", "pas_koerekort", 0.71),
        );
        live.transfer(
            "x@y",
            TransferView {
                queue: "borgerservice".into(),
                reason: "dtmf".into(),
                method: "refer".into(),
                result: "success".into(),
            },
        );
        let html = render_call(&live.get("x@y").unwrap());
        assert!(
            html.contains("&lt;script&gt;") && !html.contains("<script>"),
            "{html}"
        );
        assert!(html.contains("[CPR]") && !html.contains("010203"), "{html}");
        assert!(html.contains("pas.nyt (0.71)"), "{html}");
        assert!(html.contains("<b class=\"reason\">dtmf</b>"), "{html}");
        assert_eq!(
            url_escape("a84b@pc33.example.org"),
            "a84b%40pc33.example.org"
        );
    }
}
