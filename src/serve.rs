//! `voicebot serve`: wires the SIP stack, the call layer and the HTTP side together.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::audio::{resample, wav};
use crate::call::driver::{self, CallContext};
use crate::config::Config;
use crate::rtp::session::RtpCounters;
use crate::sip::{stack, uas};

/// The greeting used when `[call] greeting` is not set.
const EMBEDDED_GREETING: &[u8] = include_bytes!("../audio-fixtures/greeting-da.wav");

pub struct Running {
    pub active_calls: Arc<AtomicUsize>,
    pub sip: std::net::SocketAddr,
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
    let started = stack::start(config.sip.listen, true, cancel.clone()).await?;
    let sip = started.stack.local;
    let active_calls = Arc::new(AtomicUsize::new(0));
    let admission = uas::Admission {
        active: active_calls.clone(),
        max_calls: config.sip.max_calls,
        retry_after_secs: config.sip.retry_after_secs,
        codecs: config.sip.codecs.clone(),
    };
    let (calls_tx, calls_rx) = mpsc::channel(64);
    tokio::spawn(uas::serve(Arc::new(started.stack), started.incoming, admission, calls_tx));
    let ctx = Arc::new(CallContext { config: config.clone(), rtp: Arc::new(RtpCounters::default()), greeting: Arc::new(greeting) });
    tokio::spawn(driver::accept_calls(calls_rx, ctx));
    tracing::info!(%sip, "voicebot listening (SIP UDP+TCP)");
    Ok(Running { active_calls, sip })
}
