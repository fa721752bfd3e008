//! `voicebot bench web`: the same English questions asked by a phone caller (SIP,
//! A-law) and by a web caller (WebRTC, Opus at 48 kHz), one call at a time, taking
//! turns, on an in-process gateway. Per kind of caller: what the caller measures (its
//! last speech sent → the first reply audio it receives) and what the gateway measures
//! (the last speech frame it heard → the first packet of the answer itself).
//!
//! The web caller is a WebRTC peer of our own (the `webrtc` crate) doing what the
//! page does on a LAN (no STUN or TURN): `POST /webrtc/offer`, Opus out, audio back; a
//! browser adds its own jitter buffer and playout on top, which no bench here can see.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MediaEngine, MIME_TYPE_OPUS};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::APIBuilder;
use webrtc::interceptor::registry::Registry;
use webrtc::media::Sample;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use webrtc::track::track_local::TrackLocal;

use super::turn::{percentile, questions, start_gateway};
use crate::audio::resample::{f32_to_i16, i16_to_f32, resample};
use crate::audio::wav;
use crate::call::turn_metrics::TurnTiming;
use crate::caller::{self, speech_end, CallOptions, SPEECH_LEVEL};
use crate::config::Config;

/// Seconds before the question: the greeting (about 9.5 s in English) is over.
const LEAD_SECS: f64 = 11.0;
/// Seconds the call goes on after the question: the answer has begun by then.
const LISTEN_SECS: f64 = 6.0;
const OPUS_HZ: u32 = 48_000;
/// 20 ms at 48 kHz: the frame the page's Opus sends.
const OPUS_FRAME: usize = 960;

#[derive(Default)]
struct Rows {
    caller: Vec<f64>,
    gateway: Vec<f64>,
    missing: usize,
}

pub async fn run(mut config: Config, turns: usize, out: &mut String) -> anyhow::Result<()> {
    use std::fmt::Write;
    config.webrtc.enabled = true;
    let (running, cancel) = start_gateway(config, "en").await?;
    let dir = std::env::temp_dir().join(format!("voicebot-bench-web-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut questions = questions("en")?;
    questions.truncate(turns);
    let (mut sip, mut web) = (Rows::default(), Rows::default());
    for f in &questions {
        // The same 16 kHz recording for both: the phone line narrows it to 8 kHz.
        let speech = wav::read_at(&f.wav(), 16_000)?;
        let mut pcm = vec![0i16; (16_000.0 * LEAD_SECS) as usize];
        pcm.extend(&speech);

        let before = running.turns.recent().len();
        let narrow = f32_to_i16(&resample(&i16_to_f32(&pcm), 16_000, 8_000));
        let path = dir.join(format!("{}.wav", f.id));
        wav::write_i16(&path, &narrow, 8_000)?;
        let report = caller::place(CallOptions {
            target: format!("sip:bot@{}", running.sip),
            play: path,
            record: None,
            dtmf: vec![],
            hangup_after: Some(narrow.len() as f64 / 8000.0 + LISTEN_SECS),
            codecs: vec![crate::audio::g711::Law::Alaw],
            from: "caller".into(),
            pai: None,
            local_ip: None,
            echo: None,
        })
        .await;
        sip.add(
            report.ok().and_then(|r| r.reply_latency_secs),
            &running.turns.recent()[before..],
        );

        let before = running.turns.recent().len();
        let latency = web_call(running.http, &pcm).await;
        if let Err(e) = &latency {
            tracing::warn!(error = %e, "web call failed");
        }
        web.add(latency.ok().flatten(), &running.turns.recent()[before..]);
    }
    writeln!(
        out,
        "| caller | turns | caller-side first audio p50 s | p95 s | gateway answer p50 s | p95 s | no reply |\n|---|---|---|---|---|---|---|"
    )?;
    for (name, rows) in [
        ("phone (SIP, A-law 8 kHz)", &mut sip),
        ("web (WebRTC, Opus 48 kHz)", &mut web),
    ] {
        rows.caller.sort_by(|a, b| a.total_cmp(b));
        rows.gateway.sort_by(|a, b| a.total_cmp(b));
        writeln!(
            out,
            "| {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
            rows.caller.len(),
            percentile(&rows.caller, 0.5),
            percentile(&rows.caller, 0.95),
            percentile(&rows.gateway, 0.5),
            percentile(&rows.gateway, 0.95),
            rows.missing,
        )?;
    }
    cancel.cancel();
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

impl Rows {
    fn add(&mut self, caller: Option<f64>, turns: &[TurnTiming]) {
        match caller {
            Some(l) => self.caller.push(l),
            None => self.missing += 1,
        }
        self.gateway.extend(turns.iter().map(|t| t.answer));
    }
}

/// One web call: says `speech_16k` (then silence) as Opus, and returns the time from
/// the end of its speech to the first audible packet back.
async fn web_call(http: SocketAddr, speech_16k: &[i16]) -> anyhow::Result<Option<f64>> {
    let mut media = MediaEngine::default();
    media.register_default_codecs()?;
    let registry = register_default_interceptors(Registry::new(), &mut media)?;
    let mut settings = SettingEngine::default();
    settings.set_include_loopback_candidate(true);
    let api = APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build();
    let pc = Arc::new(api.new_peer_connection(RTCConfiguration::default()).await?);
    let track = Arc::new(TrackLocalStaticSample::new(
        RTCRtpCodecCapability {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: OPUS_HZ,
            channels: 2,
            ..Default::default()
        },
        "audio".into(),
        "bench".into(),
    ));
    pc.add_track(track.clone() as Arc<dyn TrackLocal + Send + Sync>)
        .await?;
    pc.create_data_channel("voicebot", None).await?;
    let (audio_tx, mut audio) = mpsc::unbounded_channel::<Vec<u8>>();
    pc.on_track(Box::new(move |remote, _, _| {
        let tx = audio_tx.clone();
        Box::pin(async move {
            while let Ok((packet, _)) = remote.read_rtp().await {
                if tx.send(packet.payload.to_vec()).is_err() {
                    break;
                }
            }
        })
    }));
    let (connected_tx, mut connected) = watch::channel(false);
    pc.on_peer_connection_state_change(Box::new(move |state| {
        if state == RTCPeerConnectionState::Connected {
            connected_tx.send(true).ok();
        }
        Box::pin(async {})
    }));
    let offer = pc.create_offer(None).await?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await?;
    gathered.recv().await;
    let local = pc
        .local_description()
        .await
        .ok_or_else(|| anyhow::anyhow!("no local description"))?;
    let answer = reqwest::Client::new()
        .post(format!("http://{http}/webrtc/offer?lang=en"))
        .header("Content-Type", "application/sdp")
        .body(local.sdp)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    pc.set_remote_description(RTCSessionDescription::answer(answer)?)
        .await?;
    tokio::time::timeout(Duration::from_secs(10), connected.wait_for(|c| *c)).await??;

    let up = f32_to_i16(&resample(&i16_to_f32(speech_16k), 16_000, OPUS_HZ));
    let speech_end = speech_end(speech_16k, 16_000).unwrap_or(0.0);
    let total = speech_16k.len() as f64 / 16_000.0 + LISTEN_SECS;
    let mut encoder = opus::Encoder::new(OPUS_HZ, opus::Channels::Mono, opus::Application::Voip)?;
    let mut decoder = opus::Decoder::new(OPUS_HZ, opus::Channels::Mono)?;
    let mut decoded = vec![0i16; 5_760];
    let mut frames = up.chunks(OPUS_FRAME);
    let silence = vec![0i16; OPUS_FRAME];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let start = Instant::now();
    let end_at = start + Duration::from_secs_f64(speech_end + 0.02);
    let mut latency = None;
    let mut packet = vec![0u8; 1500];
    while start.elapsed().as_secs_f64() < total {
        tokio::select! {
            _ = tick.tick() => {
                let frame = frames.next().filter(|f| f.len() == OPUS_FRAME).unwrap_or(&silence);
                let n = encoder.encode(frame, &mut packet)?;
                track
                    .write_sample(&Sample {
                        data: packet[..n].to_vec().into(),
                        duration: Duration::from_millis(20),
                        ..Default::default()
                    })
                    .await?;
            }
            Some(payload) = audio.recv() => {
                let now = Instant::now();
                let n = decoder.decode(&payload, &mut decoded, false).unwrap_or(0);
                if latency.is_none() && now > end_at && wav::level(&decoded[..n]) > SPEECH_LEVEL {
                    latency = Some((now - end_at).as_secs_f64());
                }
            }
        }
    }
    pc.close().await?;
    Ok(latency)
}
