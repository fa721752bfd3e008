//! One TOML file configures the gateway. Every field has a default that works on a
//! laptop, so `voicebot serve` with no file runs; an unknown or mistyped key is an
//! error that names it rather than something silently ignored.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

pub use crate::tts::settings::TtsConfig;

mod http;
mod sip;
mod sms;
mod storage;
pub use http::HttpConfig;
pub use sip::*;
pub use sms::*;
mod webrtc;
pub use storage::StorageConfig;
pub use webrtc::*;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub http: HttpConfig,
    pub call: CallConfig,
    pub stt: SttConfig,
    pub intent: IntentConfig,
    pub tts: TtsConfig,
    pub conversation: ConversationConfig,
    pub transfer: TransferConfig,
    pub sms: SmsConfig,
    pub webrtc: WebrtcConfig,
    pub privacy: PrivacyConfig,
    pub storage: StorageConfig,
    pub log: LogConfig,
    /// Overrides of the bot's fixed texts, `[prompts.da]` / `[prompts.en]` (checked by
    /// the call layer, which owns the texts).
    pub prompts: toml::Table,
    /// `[[tenants]]`: the municipalities this gateway answers for; none: one implicit
    /// tenant with the settings above (see `tenant`).
    pub tenants: Vec<crate::tenant::TenantConfig>,
}

/// `[privacy]`: call records (redacted transcripts) and how long they are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Call records (SQLite); default: `$XDG_DATA_HOME/voicebot/records.sqlite`.
    pub record_path: Option<PathBuf>,
    /// Transcripts older than this many days are blanked (the call's facts stay).
    pub retention_days: u32,
    /// Audio recording is not implemented: no audio is ever stored, and `true` is
    /// refused rather than silently ignored.
    #[serde(deserialize_with = "no_audio")]
    pub record_audio: bool,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            record_path: None,
            retention_days: 30,
            record_audio: false,
        }
    }
}

impl PrivacyConfig {
    /// `record_path`, or the platform's data directory.
    pub fn record_path(&self) -> PathBuf {
        self.record_path
            .clone()
            .unwrap_or_else(|| data_dir().join("voicebot/records.sqlite"))
    }
}

fn no_audio<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    if bool::deserialize(d)? {
        return Err(serde::de::Error::custom(
            "audio recording is not implemented; record_audio must be false",
        ));
    }
    Ok(false)
}

/// `[log]`: how log lines are written to stderr.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CallConfig {
    /// Ring this long before answering (a PBX may want to see ringing; 0 answers at once).
    pub answer_delay_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SttConfig {
    /// `base`, `tiny.en`, or a path to any ggml whisper model (e.g. a stronger one).
    pub model: String,
    /// Language for calls to numbers not listed in `languages`.
    pub language: String,
    /// Called number (user part of the To URI) → language, e.g. an English line.
    pub languages: std::collections::BTreeMap<String, String>,
    /// Decoding workers (one thread each); default: the number of cores.
    pub workers: Option<usize>,
    /// Utterances that may wait for a worker before new ones are refused.
    pub queue: Option<usize>,
    /// A pause this long inside speech starts recognition of the audio so far (when a
    /// worker is idle); 0: recognise only when the utterance has ended. 100 ms answered
    /// a lone caller 0.1 s sooner than 200 (`bench turn`: English 0.68 → 0.58 s, Danish
    /// 1.16-1.24 → 1.06-1.22 s) and five at once no later; a pause that speech follows
    /// abandons its decode. 60 ms more often has the transcript, and so the intent
    /// (asked ahead), ready when the 400 ms of silence end the turn: `bench turn
    /// --talking 4,8` answer p50 0.52 → 0.48 s (35 of 48 turns' intents asked ahead,
    /// not 18), five at once 0.76-0.96 → 0.62 s, 16-32 talking callers no later.
    pub pause_ms: u32,
    /// Speech this long over the bot's audio interrupts it; a shorter "mm", "ja" or
    /// cough (a backchannel) does not.
    pub barge_in_ms: u32,
    pub trailing_silence_ms: u32,
    pub max_utterance_ms: u32,
    /// From this long into a pause, Silero's VAD may hear voice too, where WebRTC's
    /// hears none (words lost in line noise; `stt::listener::PauseRule`); 0: WebRTC's
    /// VAD alone.
    pub vad_pause_ms: u32,
    /// Silero VAD (ONNX); default: the one `models/fetch.sh vad` puts in the model cache.
    pub vad_model: Option<std::path::PathBuf>,
    /// Domain words that steer recognition, per language.
    pub prompt_da: String,
    pub prompt_en: String,
    /// Score the knowledge base's phrasings on each utterance's audio (knowledge-base-
    /// aware recognition); false: the free transcript alone.
    pub rescore: bool,
    /// Answer intents (best text matches of the free transcript) whose phrasings are
    /// scored, besides the conversational replies.
    pub rescore_candidates: usize,
    /// Decoder calls the scoring of one utterance may take, counted as runs of tokens
    /// would take them (~15 ms each; fed as a tree they are one or two calls, see
    /// `stt::recognizer::DEFAULT_RESCORE_BUDGET`).
    pub rescore_budget: usize,
    /// The knowledge-base scoring normalises each token over the vocabulary's first
    /// this-many tokens and itself, and computes only the logits it needs; 0: the whole
    /// vocabulary (see `stt::vocab`).
    pub rescore_vocab: usize,
    /// Hypotheses whisper keeps while transcribing (beam search); 1: greedy.
    pub beam_size: u32,
    /// Threads a decode may use when no other decode is running or waiting (a lone
    /// caller's turn); a busy pool keeps one thread per decode. 2 took a lone caller's
    /// answer from 1.19 s to 0.89 s (median of 8, `voicebot bench turn`). It was 1
    /// while the echo gate learnt a line's echo too late under load (the greeting's
    /// echo barged in); the gate now learns it on 8 frames of the bot talking.
    pub idle_threads: i32,
    /// The end-of-turn model (Smart Turn v3.2, ONNX); default: the one
    /// `models/fetch.sh turn` puts in the model cache.
    pub turn_model: Option<std::path::PathBuf>,
    /// ONNX Runtime for it; default: the one in the model cache (as for `[tts]`).
    pub onnxruntime: Option<std::path::PathBuf>,
    /// On the caller's first turn, check whether they speak the line's other language
    /// (da ↔ en) and switch the call to it.
    pub detect_language: bool,
}

impl Default for SttConfig {
    fn default() -> Self {
        SttConfig {
            model: "base".into(),
            language: "da".into(),
            languages: Default::default(),
            workers: None,
            queue: None,
            pause_ms: 60,
            barge_in_ms: 600,
            trailing_silence_ms: 400,
            max_utterance_ms: 15_000,
            vad_pause_ms: 200,
            vad_model: None,
            prompt_da: "Borgerservice, affald, storskrald, genbrugsplads, pas, kørekort, MitID, sundhedskort, \
                        flytning, boligstøtte, folkepension, vuggestue, børnehave, skole, parkering, \
                        byggetilladelse, ejendomsskat, medarbejder."
                .into(),
            prompt_en: "Citizen service, waste collection, bulky waste, recycling centre, passport, driving licence, \
                        MitID, health card, moving, housing benefit, pension, nursery, school, parking, \
                        building permit, property tax."
                .into(),
            rescore: true,
            rescore_candidates: 16,
            rescore_budget: crate::stt::recognizer::DEFAULT_RESCORE_BUDGET,
            rescore_vocab: crate::stt::recognizer::DEFAULT_RESCORE_VOCAB,
            beam_size: 1,
            idle_threads: 2,
            turn_model: None,
            onnxruntime: None,
            detect_language: true,
        }
    }
}

impl SttConfig {
    /// The language of a call to `called` on a line whose own language is `line`
    /// (its tenant's): a number listed in `languages` keeps the one given there.
    pub fn language_for<'a>(&'a self, called: &str, line: &'a str) -> &'a str {
        self.languages.get(called).map_or(line, String::as_str)
    }

    pub fn turn_model_path(&self) -> std::path::PathBuf {
        self.turn_model
            .clone()
            .unwrap_or_else(|| crate::stt::model_dir().join("smart-turn-v3.2-cpu.onnx"))
    }

    pub fn vad_model_path(&self) -> std::path::PathBuf {
        self.vad_model
            .clone()
            .unwrap_or_else(|| crate::stt::model_dir().join("silero_vad.onnx"))
    }

    pub fn onnxruntime_path(&self) -> std::path::PathBuf {
        self.onnxruntime
            .clone()
            .unwrap_or_else(|| crate::stt::model_dir().join("libonnxruntime.so"))
    }

    pub fn prompt_for(&self, language: &str) -> &str {
        if language == "en" {
            &self.prompt_en
        } else {
            &self.prompt_da
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConversationConfig {
    /// Silence after a prompt before the caller is reprompted.
    pub no_input_secs: f32,
    /// "One moment" if the answer is not ready this long after the caller stopped.
    pub filler_ms: u64,
    pub max_no_match: u32,
    pub max_turns: u32,
    pub barge_in_greeting: bool,
}

impl Default for ConversationConfig {
    fn default() -> Self {
        ConversationConfig {
            no_input_secs: 7.0,
            filler_ms: 1500,
            max_no_match: 2,
            max_turns: 20,
            barge_in_greeting: true,
        }
    }
}

/// `[intent]`: where answers come from (see `intent::client::from_config`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntentConfig {
    /// A remote intent service, e.g. "http://127.0.0.1:50051"; none runs ours in-process.
    pub endpoint: Option<String>,
    /// Per turn, retry included; past it the caller is apologised to and transferred.
    pub deadline_ms: u64,
    /// Knowledge base file for the in-process service, reloaded when it changes; none
    /// uses the embedded one.
    pub kb: Option<PathBuf>,
    /// Consecutive failures after which the remote service is not called for a while.
    pub breaker_failures: u32,
    pub breaker_cooldown_ms: u64,
    /// Answers checked against a sentence-embedding model's reading of the turn
    /// (`intent::meaning`); a disagreement is asked back about instead of answered.
    pub second_opinion: bool,
}

impl Default for IntentConfig {
    fn default() -> Self {
        IntentConfig {
            endpoint: None,
            deadline_ms: 800,
            kb: None,
            breaker_failures: 5,
            breaker_cooldown_ms: 10_000,
            second_opinion: true,
        }
    }
}

/// `[transfer]`: the switchboard queues a call can be put through to (checked and
/// turned into a router by `transfer::route`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransferConfig {
    /// Opening hours are in this zone (an IANA name).
    pub timezone: String,
    pub queues: Vec<QueueConfig>,
    /// Topics no queue lists go here; the first queue if unset.
    pub default_queue: Option<String>,
    /// Closed days besides the Danish public holidays, "YYYY-MM-DD".
    pub closed_dates: Vec<String>,
    /// "refer" (RFC 3515, bridged if that fails) or "bridge" (always stay in the call).
    pub method: String,
    /// How long a REFER may take to report the queue's answer (final NOTIFY).
    pub notify_timeout_secs: u64,
    /// Longest Refer-To sent; context headers that do not fit are left out of it
    /// (phones have fixed buffers: baresip 1.0 fails above about 256 bytes).
    pub refer_to_max_bytes: usize,
    /// How long a bridged INVITE to a queue may ring.
    pub ring_timeout_secs: u64,
    /// Where a bridged INVITE to a `tel:` queue is sent, e.g. "sip:pbx.example.org:5060".
    pub outbound_proxy: Option<String>,
    /// Base of the switchboard screen-pop links sent with a transfer,
    /// e.g. "http://voicebot.example.org:8080"; default: the HTTP listen address.
    pub switchboard_url: Option<String>,
}

impl Default for TransferConfig {
    fn default() -> Self {
        let hours = toml::from_str(
            "mon = \"10:00-15:00\"\ntue = \"10:00-15:00\"\nwed = \"10:00-15:00\"\n\
             thu = \"10:00-17:30\"\nfri = \"10:00-13:00\"\n",
        )
        .expect("valid default hours");
        TransferConfig {
            timezone: "Europe/Copenhagen".into(),
            queues: vec![QueueConfig {
                name: "borgerservice".into(),
                uri: "sip:borgerservice@127.0.0.1:5080".into(),
                refer_uri: None,
                topics: Vec::new(),
                hours,
                open_on_holidays: false,
                spoken_da: Some("Borgerservice".into()),
                spoken_en: Some("Citizen Service".into()),
            }],
            default_queue: None,
            closed_dates: Vec::new(),
            method: "refer".into(),
            notify_timeout_secs: 20,
            refer_to_max_bytes: 250,
            ring_timeout_secs: 30,
            outbound_proxy: None,
            switchboard_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub name: String,
    /// `sip:` or `tel:` URI, used exactly as written.
    pub uri: String,
    /// A public alias of the queue for REFER (the caller's phone is told to call it, and
    /// the carrier or PBX routes it to `uri`), so the internal URI and the switchboard's
    /// address never reach the caller; bridged calls still use `uri`.
    #[serde(default)]
    pub refer_uri: Option<String>,
    /// Knowledge-base topics routed here (e.g. "affald", "pas_koerekort").
    #[serde(default)]
    pub topics: Vec<String>,
    /// `{ mon = "08:00-15:00", thu = ["08:00-12:00", "13:00-17:30"] }`; days not
    /// listed are closed.
    pub hours: toml::Table,
    /// A 24/7 line (e.g. social emergencies) stays open on public holidays.
    #[serde(default)]
    pub open_on_holidays: bool,
    /// The queue's name as the bot says it ("Jeg stiller dig videre til ...").
    #[serde(default)]
    pub spoken_da: Option<String>,
    #[serde(default)]
    pub spoken_en: Option<String>,
}

/// `$XDG_DATA_HOME`, i.e. `~/.local/share`.
fn data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
}

impl Config {
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.into(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.check()?;
        Ok(config)
    }

    /// What types alone cannot say.
    fn check(&self) -> Result<(), String> {
        let sip = &self.sip;
        if sip.reserved_for_trusted.is_some_and(|r| r > sip.max_calls) {
            return Err(format!(
                "[sip] reserved_for_trusted ({}) is more than max_calls ({})",
                sip.reserved_for_trusted.unwrap_or(0),
                sip.max_calls
            ));
        }
        let r = &sip.rate_limit;
        if !(r.per_source_per_sec.is_finite() && r.per_source_per_sec > 0.0) {
            return Err("[sip.rate_limit] per_source_per_sec must be a positive number".into());
        }
        if r.burst == 0 {
            return Err("[sip.rate_limit] burst must be at least 1".into());
        }
        let tls_files = (sip.tls_cert.is_some(), sip.tls_key.is_some());
        match (sip.tls_listen.is_some(), tls_files) {
            (true, (true, true)) | (false, (false, false)) => {}
            (true, _) => return Err("[sip] tls_listen needs tls_cert and tls_key".into()),
            (false, _) => return Err("[sip] tls_cert and tls_key need tls_listen".into()),
        }
        let http = &self.http;
        if http.metrics_token_required && http.dashboard_token.as_deref().unwrap_or("").is_empty() {
            return Err("[http] metrics_token_required needs a dashboard_token".into());
        }
        if http.header_timeout_secs == 0 || http.max_connections == 0 {
            return Err("[http] header_timeout_secs and max_connections must be at least 1".into());
        }
        self.webrtc.check()?;
        crate::tenant::config::check(&self.tenants, &self.stt.language)?;
        self.storage.check()
    }

    /// The tenants calls are answered for: those configured, or the one implicit tenant.
    pub fn tenants(&self) -> Vec<crate::tenant::TenantConfig> {
        if self.tenants.is_empty() {
            vec![crate::tenant::TenantConfig::implicit()]
        } else {
            self.tenants.clone()
        }
    }

    pub fn public_ip(&self) -> IpAddr {
        self.rtp.public_ip.unwrap_or(self.sip.listen.ip())
    }
}

#[cfg(test)]
mod tests;
