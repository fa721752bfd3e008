//! `voicebot serve`: wires the SIP stack, the call layer and the HTTP side together.

use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::audio::{resample, wav};
use crate::call::driver::{self, CallContext};
use crate::config::Config;
use crate::ops::http::{self, OpsState};
use crate::ops::metrics::Metrics;
use crate::rtp::session::RtpCounters;
use crate::sip::{stack, uas};
use crate::stt::recognizer::{Recognizer, SttError, SttOptions};

/// The greeting used when `[call] greeting` is not set.
const EMBEDDED_GREETING: &[u8] = include_bytes!("../audio-fixtures/greeting-da.wav");

pub struct Running {
    pub active_calls: Gauge,
    pub sip: std::net::SocketAddr,
    pub http: std::net::SocketAddr,
}

pub async fn start(config: Config, cancel: CancellationToken) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let greeting = match &config.call.greeting {
        Some(path) => wav::read_at(path, 8000)?,
        None => {
            let (pcm, rate) = wav::read_mono_bytes(EMBEDDED_GREETING)?;
            resample::f32_to_i16(&resample::resample(&pcm, rate, 8000))
        }
    };
    let stt = load_recognizer(&config)?;
    let started = stack::start(config.sip.listen, true, cancel.clone()).await?;
    let sip = started.stack.local;
    let active_calls = Gauge::default();
    let rtp = Arc::new(RtpCounters::default());
    let mut metrics = Metrics::default();
    metrics.gauge("voicebot_calls_active", "Calls in progress", &active_calls);
    metrics.counter("voicebot_sip_rejected", "Malformed SIP requests answered with an error", &started.stack.guard.rejected);
    metrics.counter("voicebot_sip_dropped", "Malformed SIP messages dropped unanswered", &started.stack.guard.dropped);
    metrics.counter("voicebot_rtp_packets_received", "RTP packets received from callers", &rtp.received);
    metrics.counter("voicebot_rtp_packets_sent", "RTP packets sent to callers", &rtp.sent);
    metrics.counter("voicebot_rtp_packets_garbage", "Datagrams on RTP ports that were not our RTP", &rtp.garbage);
    metrics.counter("voicebot_rtp_packets_lost", "RTP packets never received (concealed)", &rtp.lost);
    metrics.gauge("voicebot_stt_queue_depth", "Utterances waiting for a recognizer worker", &stt.metrics.queue_depth);
    metrics.counter("voicebot_stt_overloads", "Utterances refused because the recognizer queue was full", &stt.metrics.overloads);
    metrics.counter("voicebot_stt_utterances", "Utterances sent to the recognizer", &stt.metrics.utterances);
    metrics.counter("voicebot_rtp_packets_late", "RTP packets dropped as late or duplicate", &rtp.late);
    let http = http::serve(config.http.listen, Arc::new(OpsState { metrics }), cancel.clone()).await?;
    let admission = uas::Admission {
        active: active_calls.clone(),
        max_calls: config.sip.max_calls,
        retry_after_secs: config.sip.retry_after_secs,
        codecs: config.sip.codecs.clone(),
    };
    let (calls_tx, calls_rx) = mpsc::channel(64);
    tokio::spawn(uas::serve(Arc::new(started.stack), started.incoming, admission, calls_tx));
    let ctx = Arc::new(CallContext { config: config.clone(), rtp, greeting: Arc::new(greeting), stt });
    tokio::spawn(driver::accept_calls(calls_rx, ctx));
    tracing::info!(%sip, %http, "voicebot listening (SIP UDP+TCP, HTTP)");
    Ok(Running { active_calls, sip, http })
}

pub fn load_recognizer(config: &Config) -> Result<Recognizer, SttError> {
    let defaults = SttOptions::default();
    let opts = SttOptions {
        workers: config.stt.workers.unwrap_or(defaults.workers),
        queue: config.stt.queue.unwrap_or(defaults.queue),
        ..defaults
    };
    let path = crate::stt::model_path(&config.stt.model);
    let recognizer = Recognizer::load(&path, opts)?;
    tracing::info!(model = %path.display(), "speech model loaded");
    Ok(recognizer)
}
