//! `voicebot call`: our own test caller, a SIP UAC with real RTP.
//!
//! It plays a WAV in real time as the caller's voice, records what it hears, presses
//! DTMF keys at given offsets, and reports one JSON line: whether and how fast the
//! call was answered, and how long after the end of the caller's speech the first
//! reply audio arrived, measured on the wire, which is the latency a caller feels.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::invitation::InviteOption;
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::audio::g711::Law;
use crate::audio::wav;
use crate::media::MediaEvent;
use crate::rtp::counters::RtpCounters;
use crate::rtp::session::{self, MediaParams};
use crate::sip::{sdp, stack};

#[derive(Debug, Clone)]
pub struct CallOptions {
    pub target: String,
    pub play: PathBuf,
    pub record: Option<PathBuf>,
    /// (digit, seconds after answer)
    pub dtmf: Vec<(char, f64)>,
    pub hangup_after: Option<f64>,
    pub codecs: Vec<Law>,
    /// The user part of our From URI: what the caller's side claims to be.
    pub from: String,
    /// A P-Asserted-Identity to send (what a carrier asserts about its caller).
    pub pai: Option<String>,
    /// Our address (signalling and media); default: the target's if it is loopback.
    pub local_ip: Option<std::net::IpAddr>,
    /// Send back what we hear, this late and this much quieter, mixed with our own
    /// audio: a line with echo (a hybrid, a speakerphone).
    pub echo: Option<Echo>,
}

#[derive(Debug, Clone, Copy)]
pub struct Echo {
    pub delay_ms: u32,
    pub gain_db: f32,
}

/// Our side of the line with echo: what we say, mixed with what we heard a moment ago.
/// It is fed a frame for each frame heard, so both clocks stay in step.
pub(crate) struct EchoingMic {
    speech: std::collections::VecDeque<i16>,
    delay: std::collections::VecDeque<i16>,
    gain: f32,
}

impl EchoingMic {
    pub(crate) fn new(speech: Vec<i16>, echo: Echo) -> EchoingMic {
        EchoingMic {
            speech: speech.into(),
            delay: std::iter::repeat_n(0, echo.delay_ms as usize * 8).collect(),
            gain: 10f32.powf(echo.gain_db / 20.0),
        }
    }

    /// The next audio to send, as long as `heard`.
    pub(crate) fn next(&mut self, heard: &[i16]) -> Vec<i16> {
        self.delay.extend(heard);
        let n = heard.len().min(self.delay.len());
        self.delay
            .drain(..n)
            .map(|e| {
                let own = self.speech.pop_front().map_or(0.0, f32::from);
                (own + f32::from(e) * self.gain).clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CallReport {
    pub answered: bool,
    pub sip_status: u16,
    pub answer_secs: f64,
    /// From the end of the played file's speech to the first non-silent audio heard.
    pub reply_latency_secs: Option<f64>,
    pub received_audio_secs: f64,
    /// Seconds after answer at which the far end hung up, if it did.
    pub remote_hangup_secs: Option<f64>,
}

/// RMS level separating speech from line silence (about −40 dBFS).
pub const SPEECH_LEVEL: f32 = 0.01;
const FRAME: usize = 160;

/// Parses `--dtmf "0@4.5,#@9"`.
pub fn parse_dtmf(spec: &str) -> anyhow::Result<Vec<(char, f64)>> {
    spec.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|item| {
            let (d, at) = item
                .trim()
                .split_once('@')
                .ok_or_else(|| anyhow!("DTMF item {item:?} is not DIGIT@SECONDS"))?;
            let digit = d
                .chars()
                .next()
                .filter(|c| crate::rtp::dtmf::digit_to_event(*c).is_some() && d.len() == 1);
            let digit = digit.ok_or_else(|| anyhow!("{d:?} is not a DTMF digit"))?;
            let at: f64 = at
                .parse()
                .with_context(|| format!("{at:?} is not a number of seconds"))?;
            Ok((digit, at))
        })
        .collect()
}

/// The end of the last 20 ms frame louder than `SPEECH_LEVEL`, in seconds.
pub fn speech_end(pcm: &[i16], rate: u32) -> Option<f64> {
    let frame = (rate as usize / 50).max(1);
    pcm.chunks(frame)
        .enumerate()
        .rfind(|(_, c)| wav::level(c) > SPEECH_LEVEL)
        .map(|(i, c)| (i * frame + c.len()) as f64 / rate as f64)
}

fn target_uri(target: &str) -> anyhow::Result<(rsipstack::sip::Uri, SocketAddr)> {
    let text = if target.starts_with("sip:") {
        target.to_string()
    } else {
        format!("sip:{target}")
    };
    let uri = rsipstack::sip::Uri::try_from(text.as_str())
        .map_err(|e| anyhow!("bad SIP URI {target:?}: {e}"))?;
    let host = uri.host_with_port.to_string();
    let addr: SocketAddr = if host.contains(':') {
        host.parse()
    } else {
        format!("{host}:5060").parse()
    }
    .with_context(|| format!("the test caller needs an IP address in {target:?}"))?;
    Ok((uri, addr))
}

pub async fn place(opts: CallOptions) -> anyhow::Result<CallReport> {
    let (callee, server) = target_uri(&opts.target)?;
    let speech = wav::read_at(&opts.play, 8000)?;
    let speech_end_secs = speech_end(&speech, 8000);
    let local_ip = match opts.local_ip {
        Some(ip) => ip,
        None if server.ip().is_loopback() => server.ip(),
        None => "0.0.0.0".parse()?,
    };

    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    let started = stack::start(SocketAddr::new(local_ip, 0), None, None, cancel.clone()).await?;
    let stack = Arc::new(started.stack);
    tokio::spawn(crate::sip::uas::serve_in_dialog(
        stack.clone(),
        started.incoming,
    ));

    let rtp_socket = tokio::net::UdpSocket::bind(SocketAddr::new(local_ip, 0)).await?;
    let rtp_local = rtp_socket.local_addr()?;
    let offer = sdp::offer(rtp_local, rand::random::<u32>() as u64, &opts.codecs, None);
    let caller =
        rsipstack::sip::Uri::try_from(format!("sip:{}@{}", opts.from, stack.local).as_str())
            .with_context(|| format!("--from {:?} is not a SIP user part", opts.from))?;
    let invite = InviteOption {
        callee,
        caller: caller.clone(),
        contact: caller,
        content_type: Some("application/sdp".into()),
        offer: Some(offer.into_bytes()),
        headers: opts.pai.as_ref().map(|pai| {
            vec![rsipstack::sip::Header::Other(
                "P-Asserted-Identity".into(),
                format!("<sip:{pai}@{}>", stack.local.ip()),
            )]
        }),
        ..Default::default()
    };
    let (state_tx, mut states) = stack.dialogs.new_dialog_state_channel();
    let t0 = Instant::now();
    let (dialog, response) = stack.dialogs.do_invite(invite, state_tx).await?;
    let answer_secs = t0.elapsed().as_secs_f64();
    let status = response
        .as_ref()
        .map(|r| u16::from(r.status_code.clone()))
        .unwrap_or(0);
    let mut report = CallReport {
        answered: (200..300).contains(&status),
        sip_status: status,
        answer_secs,
        reply_latency_secs: None,
        received_audio_secs: 0.0,
        remote_hangup_secs: None,
    };
    let Some(resp) = response.filter(|_| report.answered) else {
        return Ok(report);
    };
    let negotiated = sdp::parse(&resp.body)
        .and_then(|r| sdp::negotiate(&r, &opts.codecs))
        .context("the answer's SDP is unusable")?;

    let counters = Arc::new(RtpCounters::default());
    let params = MediaParams {
        law: negotiated.law,
        payload_type: negotiated.payload_type,
        dtmf_payload_type: negotiated.dtmf_payload_type.or(Some(sdp::DTMF_PT)),
        remote: negotiated.remote,
        ptime_ms: 20,
        // Shallow buffer: the caller measures latency and should add little of its own.
        jitter_ms: 20,
        timeout: Duration::from_secs(3600),
        sending: true,
        srtp: None,
        echo_gate: false,
        echo_cancel: false,
    };
    let (media, mut events) = session::start(rtp_socket, params, counters, cancel.child_token())?;
    media.confirm();
    let media_start = Instant::now();
    let mut mic = match opts.echo {
        Some(echo) => {
            // Two frames ahead, so a late frame heard does not leave a gap on the wire.
            media.play(vec![0; 2 * FRAME]);
            Some(EchoingMic::new(speech, echo))
        }
        None => {
            media.play(speech);
            None
        }
    };
    let speech_end_at = speech_end_secs.map(|s| media_start + Duration::from_secs_f64(s + 0.02));

    let hangup_after = opts
        .hangup_after
        .unwrap_or(speech_end_secs.unwrap_or(0.0) + 5.0);
    let hangup_at = media_start + Duration::from_secs_f64(hangup_after);
    let mut dtmf = opts.dtmf.clone();
    dtmf.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut dtmf = dtmf.into_iter().peekable();
    let mut heard: Vec<i16> = Vec::new();
    let mut remote_bye = false;
    loop {
        let next_dtmf = dtmf
            .peek()
            .map(|(_, at)| media_start + Duration::from_secs_f64(*at));
        let wake = next_dtmf.map_or(hangup_at, |d| d.min(hangup_at));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {
                if next_dtmf.is_some_and(|d| d <= Instant::now()) {
                    if let Some((digit, _)) = dtmf.next() {
                        media.send_dtmf(digit);
                    }
                } else {
                    break;
                }
            }
            ev = events.recv() => match ev {
                Some(MediaEvent::Audio(pcm)) => {
                    if let Some(mic) = mic.as_mut() {
                        media.play(mic.next(&pcm));
                    }
                    let now = Instant::now();
                    if report.reply_latency_secs.is_none() {
                        if let Some(end) = speech_end_at.filter(|e| now > *e) {
                            if pcm.chunks(FRAME).any(|f| wav::level(f) > SPEECH_LEVEL) {
                                report.reply_latency_secs = Some((now - end).as_secs_f64());
                            }
                        }
                    }
                    heard.extend(pcm);
                }
                Some(_) => {}
                None => break,
            },
            st = next_terminal(&mut states) => {
                if st {
                    remote_bye = true;
                    report.remote_hangup_secs = Some(media_start.elapsed().as_secs_f64());
                    break;
                }
            }
        }
    }
    if !remote_bye {
        dialog.bye().await.ok();
    }
    report.received_audio_secs = heard.len() as f64 / 8000.0;
    if let Some(path) = &opts.record {
        wav::write_i16(path, &heard, 8000)?;
    }
    Ok(report)
}

/// Waits for the dialog to end; answers in-dialog requests meanwhile. A REFER is
/// declined: this caller does not place transfer calls (so the far end must bridge).
async fn next_terminal(states: &mut DialogStateReceiver) -> bool {
    loop {
        match states.recv().await {
            None => return true,
            Some(DialogState::Terminated(..)) => return true,
            Some(DialogState::Refer(_, _, h)) => {
                h.reply(rsipstack::sip::StatusCode::Decline).await.ok();
            }
            Some(DialogState::Options(_, _, h))
            | Some(DialogState::Info(_, _, h))
            | Some(DialogState::Updated(_, _, h)) => {
                h.reply(rsipstack::sip::StatusCode::OK).await.ok();
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_spec_parses() {
        assert_eq!(
            parse_dtmf("0@4.5, #@9").unwrap(),
            vec![('0', 4.5), ('#', 9.0)]
        );
        assert!(parse_dtmf("x@1").is_err());
        assert!(parse_dtmf("1").is_err());
        assert!(parse_dtmf("1@soon").is_err());
    }

    #[test]
    fn speech_end_finds_the_last_loud_frame() {
        let mut pcm = vec![0i16; 8000];
        pcm.extend((0..4000).map(|i| if i % 2 == 0 { 3000 } else { -3000 }));
        pcm.extend(vec![0i16; 8000]);
        assert_eq!(speech_end(&pcm, 8000), Some(1.5));
        assert_eq!(speech_end(&[0; 1600], 8000), None);
    }
}
