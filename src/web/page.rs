//! The web caller's page, `/call` (Danish, or English with `?lang=en`): one big call
//! button, a level meter, captions, the answer's links, buttons for "yes" (1) and
//! "a person" (0), and hang-up; `?autostart=1` calls at once (kiosks, tests).
//! `/call/embed.js` puts the same page in a frame on the municipality's own site;
//! only `[webrtc] allowed_origins` may frame it.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::WebCalls;

const PAGE: &str = include_str!("call.html");

/// The page's texts: (key, Danish, English).
const TEXTS: &[(&str, &str, &str)] = &[
    ("title", "Ring til kommunen", "Call the municipality"),
    ("call", "Ring op", "Call"),
    ("hangup", "Læg på", "Hang up"),
    ("yes", "Ja (1)", "Yes (1)"),
    ("person", "En medarbejder (0)", "A person (0)"),
    (
        "level",
        "Lydniveau fra din mikrofon",
        "Sound level from your microphone",
    ),
    ("captions", "Samtalen", "The conversation"),
    ("connecting", "Forbinder …", "Connecting …"),
    (
        "connected",
        "Forbundet. Sig hvad du vil spørge om.",
        "Connected. Say what you want to ask.",
    ),
    ("ended", "Samtalen er slut.", "The call has ended."),
    (
        "failed",
        "Forbindelsen mislykkedes. Prøv igen, eller ring på telefon.",
        "The connection failed. Try again, or call by phone.",
    ),
    (
        "busy",
        "Alle linjer er optaget. Prøv igen om lidt.",
        "All lines are busy. Try again shortly.",
    ),
];

#[derive(serde::Deserialize)]
pub(super) struct PageQuery {
    lang: Option<String>,
}

pub(super) async fn call(State(web): State<Arc<WebCalls>>, Query(q): Query<PageQuery>) -> Response {
    let english = q.lang.as_deref() == Some("en");
    let mut html = PAGE
        .replace("{{lang}}", if english { "en" } else { "da" })
        .replace("{{base}}", "");
    for (key, da, en) in TEXTS {
        html = html.replace(&format!("{{{{{key}}}}}"), if english { en } else { da });
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (
                header::CONTENT_SECURITY_POLICY,
                frame_ancestors(&web.config.allowed_origins),
            ),
        ],
        html,
    )
        .into_response()
}

/// Who may show the page in a frame: ourselves and the allowed origins.
fn frame_ancestors(allowed: &[String]) -> String {
    let mut policy = "frame-ancestors 'self'".to_string();
    for origin in allowed {
        policy.push(' ');
        policy.push_str(origin);
    }
    policy
}

/// `<script src="https://gateway/call/embed.js" data-lang="da"></script>` on the
/// municipality's page: a frame with the call page where the script stands.
pub(super) async fn embed() -> impl IntoResponse {
    const SCRIPT: &str = r#"(function () {
  var me = document.currentScript;
  var src = new URL("/call", me.src);
  if (me.dataset.lang) src.searchParams.set("lang", me.dataset.lang);
  var frame = document.createElement("iframe");
  frame.src = src.href;
  frame.allow = "microphone; autoplay";
  frame.title = me.dataset.title || "Ring til kommunen";
  frame.style.cssText = "width:100%;max-width:40rem;height:34rem;border:0";
  me.parentNode.insertBefore(frame, me);
})();
"#;
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_has_a_text_and_only_allowed_origins_may_frame() {
        let mut html = PAGE.replace("{{lang}}", "da").replace("{{base}}", "");
        for (key, da, _) in TEXTS {
            html = html.replace(&format!("{{{{{key}}}}}"), da);
        }
        assert!(!html.contains("{{"), "a placeholder without text");
        assert_eq!(
            frame_ancestors(&["https://www.kommune.dk".into()]),
            "frame-ancestors 'self' https://www.kommune.dk"
        );
    }
}
