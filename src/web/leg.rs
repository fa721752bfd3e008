//! A web caller's line: one WebRTC peer connection from the municipality's page.
//! Audio is Opus at 48 kHz (PCMU if the browser offers nothing better), carried to
//! and from the call as the same 8 kHz media every line gives the conversation; a
//! data channel carries captions and links to the page and the page's buttons (keys)
//! and hang-up back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::time::{interval, Instant, MissedTickBehavior};
use tokio_util::sync::{CancellationToken, DropGuard};
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_PCMU};
use webrtc::data_channel::RTCDataChannel;
use webrtc::media::Sample;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_remote::TrackRemote;

use super::codec::{Codec, Decoder, Encoder};
use super::keys::{self, FromPage};
use crate::call::line::{Line, Shown, Signal};
use crate::media::{self, Command, MediaEvent, MediaHandle, Outgoing};
use crate::sip::uas::CallSlot;
use crate::transfer::bridge::CallerSignals;
use rsipstack::dialog::dialog::DialogStateReceiver;
use rsipstack::dialog::invite_dialog::InviteDialog;

/// How long a web caller has to connect (ICE, DTLS) after the answer went out.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

pub struct WebLine {
    pc: Arc<RTCPeerConnection>,
    codec: Codec,
    gone: mpsc::UnboundedReceiver<String>,
    screen: mpsc::UnboundedSender<Shown>,
    /// Holds the call's place under `max_calls` until the line is dropped.
    _slot: CallSlot,
    _media: DropGuard,
}

/// A peer connection negotiated: the answer for the page, and the call to run once
/// the page connects.
pub struct Negotiated {
    pub answer: String,
    pub pending: Pending,
}

pub struct Pending {
    pc: Arc<RTCPeerConnection>,
    codec: Codec,
    track: Arc<TrackLocalStaticSample>,
    events_tx: mpsc::UnboundedSender<MediaEvent>,
    events: mpsc::UnboundedReceiver<MediaEvent>,
    gone_tx: mpsc::UnboundedSender<String>,
    gone: mpsc::UnboundedReceiver<String>,
    connected: watch::Receiver<bool>,
    channel: watch::Receiver<Option<Arc<RTCDataChannel>>>,
    /// When the page's audio last arrived.
    heard: Arc<Mutex<Instant>>,
    slot: CallSlot,
}

/// The codec we answer with: Opus when the page offers it, else PCMU.
pub fn choose_codec(offer: &str) -> Option<Codec> {
    let lower = offer.to_ascii_lowercase();
    if lower.contains(" opus/48000") {
        Some(Codec::Opus)
    } else if lower.contains(" pcmu/8000") {
        Some(Codec::Pcmu)
    } else {
        None
    }
}

/// Answers the page's offer on a new peer connection (all candidates gathered, so
/// one HTTP exchange is all the signalling).
pub async fn negotiate(
    api: &webrtc::api::API,
    config: webrtc::peer_connection::configuration::RTCConfiguration,
    offer: String,
    codec: Codec,
    slot: CallSlot,
) -> anyhow::Result<Negotiated> {
    let pc = Arc::new(api.new_peer_connection(config).await?);
    let capability = match codec {
        Codec::Opus => RTCRtpCodecCapability {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            ..Default::default()
        },
        Codec::Pcmu => RTCRtpCodecCapability {
            mime_type: MIME_TYPE_PCMU.to_owned(),
            clock_rate: 8_000,
            channels: 1,
            ..Default::default()
        },
    };
    let track = Arc::new(TrackLocalStaticSample::new(
        capability,
        "voicebot".into(),
        "voicebot".into(),
    ));
    let sender = pc
        .add_track(track.clone() as Arc<dyn TrackLocal + Send + Sync>)
        .await?;
    // RTCP must be read for the interceptors (NACK, reports) to work.
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        while sender.read(&mut buf).await.is_ok() {}
    });

    let (events_tx, events) = mpsc::unbounded_channel();
    let (gone_tx, gone) = mpsc::unbounded_channel();
    let (connected_tx, connected) = watch::channel(false);
    let (channel_tx, channel) = watch::channel(None);

    let on_state = gone_tx.clone();
    pc.on_peer_connection_state_change(Box::new(move |state| {
        match state {
            RTCPeerConnectionState::Connected => {
                connected_tx.send(true).ok();
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                on_state.send(format!("web connection {state}")).ok();
            }
            _ => {}
        }
        Box::pin(async {})
    }));
    let heard = Arc::new(Mutex::new(Instant::now()));
    let (audio, last) = (events_tx.clone(), heard.clone());
    pc.on_track(Box::new(move |track, _, _| {
        tokio::spawn(hear(track, audio.clone(), last.clone()));
        Box::pin(async {})
    }));
    let (keys_to, page_gone) = (events_tx.clone(), gone_tx.clone());
    pc.on_data_channel(Box::new(move |dc: Arc<RTCDataChannel>| {
        let (keys_to, page_gone) = (keys_to.clone(), page_gone.clone());
        dc.on_message(Box::new(move |msg| {
            match keys::parse(&msg.data) {
                Ok(FromPage::Key(digit)) => {
                    keys_to.send(MediaEvent::Dtmf(digit)).ok();
                }
                Ok(FromPage::HangUp) => {
                    page_gone.send("the caller hung up".into()).ok();
                }
                Err(e) => tracing::info!(error = %e, "web page message ignored"),
            }
            Box::pin(async {})
        }));
        let (opened, channel_tx) = (dc.clone(), channel_tx.clone());
        dc.on_open(Box::new(move || {
            channel_tx.send(Some(opened)).ok();
            Box::pin(async {})
        }));
        Box::pin(async {})
    }));

    pc.set_remote_description(RTCSessionDescription::offer(offer)?)
        .await?;
    let answer = pc.create_answer(None).await?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(answer).await?;
    // Host candidates come at once; a STUN or TURN server that does not answer must
    // not hold the page's request for ever.
    tokio::time::timeout(Duration::from_secs(3), gathered.recv())
        .await
        .ok();
    let answer = pc
        .local_description()
        .await
        .ok_or_else(|| anyhow::anyhow!("no local description"))?
        .sdp;
    Ok(Negotiated {
        answer,
        pending: Pending {
            pc,
            codec,
            track,
            events_tx,
            events,
            gone_tx,
            gone,
            connected,
            channel,
            heard,
            slot,
        },
    })
}

/// A web call connected and ready for the conversation.
pub struct Connected {
    pub codec: Codec,
    pub line: WebLine,
    pub media: MediaHandle,
    pub events: mpsc::UnboundedReceiver<MediaEvent>,
}

impl Pending {
    /// Waits for the page to connect, then starts the call's media; None (the peer
    /// connection closed) when it does not connect in time.
    pub async fn connect(mut self, media_timeout: Duration) -> Option<Connected> {
        let up = matches!(
            tokio::time::timeout(CONNECT_TIMEOUT, self.connected.wait_for(|c| *c)).await,
            Ok(Ok(_))
        );
        if !up {
            tracing::info!("web caller never connected");
            self.pc.close().await.ok();
            return None;
        }
        let cancel = CancellationToken::new();
        let local = "0.0.0.0:0".parse().expect("literal address");
        let (media, ends) = media::handle(local, self.events_tx.clone());
        tokio::spawn(speak(
            self.track,
            self.codec,
            ends.commands,
            ends.outgoing,
            cancel.clone(),
        ));
        *self.heard.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        tokio::spawn(watch_silence(
            self.heard,
            self.events_tx.clone(),
            media_timeout,
            cancel.clone(),
        ));
        let (screen, shown) = mpsc::unbounded_channel();
        tokio::spawn(show(self.channel, shown, cancel.clone()));
        drop(self.gone_tx);
        Some(Connected {
            codec: self.codec,
            line: WebLine {
                pc: self.pc,
                codec: self.codec,
                gone: self.gone,
                screen,
                _slot: self.slot,
                _media: cancel.drop_guard(),
            },
            media,
            events: self.events,
        })
    }
}

/// The caller's audio: decoded, at 8 kHz, into the call's media events.
async fn hear(
    track: Arc<TrackRemote>,
    events: mpsc::UnboundedSender<MediaEvent>,
    heard: Arc<Mutex<Instant>>,
) {
    let codec = if track
        .codec()
        .capability
        .mime_type
        .eq_ignore_ascii_case(MIME_TYPE_OPUS)
    {
        Codec::Opus
    } else {
        Codec::Pcmu
    };
    let mut decoder = match Decoder::new(codec) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "no decoder for the web caller's audio");
            return;
        }
    };
    while let Ok((packet, _)) = track.read_rtp().await {
        *heard.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        let pcm = decoder.decode(&packet.payload);
        if !pcm.is_empty() && events.send(MediaEvent::Audio(pcm)).is_err() {
            return;
        }
    }
}

/// Paces what the call plays into the page's track, 20 ms at a time.
async fn speak(
    track: Arc<TrackLocalStaticSample>,
    codec: Codec,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut outgoing: Outgoing,
    cancel: CancellationToken,
) {
    let mut encoder = match Encoder::new(codec) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "no encoder for the web caller");
            return;
        }
    };
    let period = Duration::from_millis(20);
    let mut clock = interval(period);
    clock.set_missed_tick_behavior(MissedTickBehavior::Burst);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            cmd = commands.recv() => match cmd {
                Some(Command::Play(pcm, mark)) => outgoing.push(pcm, mark),
                Some(Command::StopPlayback) => outgoing.clear(),
                // Keys go to a person on a bridge; the page has no use for them.
                // The browser cancels its own echo.
                Some(
                    Command::Dtmf(_)
                    | Command::Update { .. }
                    | Command::Confirm
                    | Command::EchoGate(_),
                ) => {}
                None => return,
            },
            _ = clock.tick() => {
                let (frame, _) = outgoing.next_frame(160);
                let data = encoder.encode(&frame);
                let sample = Sample { data: Bytes::from(data), duration: period, ..Default::default() };
                if let Err(e) = track.write_sample(&sample).await {
                    tracing::debug!(error = %e, "web audio not sent");
                }
            }
        }
    }
}

/// Tells the call when the page's audio stops for the media timeout (the page
/// vanished without closing: a laptop lid, a lost network).
async fn watch_silence(
    heard: Arc<Mutex<Instant>>,
    events: mpsc::UnboundedSender<MediaEvent>,
    timeout: Duration,
    cancel: CancellationToken,
) {
    let mut check = interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = check.tick() => {
                let last = *heard.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= timeout {
                    events.send(MediaEvent::Timeout).ok();
                    return;
                }
            }
        }
    }
}

/// Sends captions and links to the page once its data channel is open, in order.
async fn show(
    mut channel: watch::Receiver<Option<Arc<RTCDataChannel>>>,
    mut shown: mpsc::UnboundedReceiver<Shown>,
    cancel: CancellationToken,
) {
    let dc = tokio::select! {
        _ = cancel.cancelled() => return,
        r = channel.wait_for(|c| c.is_some()) => match r {
            Ok(c) => c.clone().expect("waited for Some"),
            Err(_) => return,
        },
    };
    loop {
        let item = tokio::select! {
            _ = cancel.cancelled() => return,
            item = shown.recv() => item,
        };
        let Some(item) = item else { return };
        let json = serde_json::to_string(&item).unwrap_or_default();
        if dc.send_text(json).await.is_err() {
            return;
        }
    }
}

#[async_trait]
impl Line for WebLine {
    fn channel(&self) -> &'static str {
        "webrtc"
    }

    fn audio_rate(&self) -> u32 {
        self.codec.rate()
    }

    async fn signal(&mut self, _media: &MediaHandle) -> Signal {
        match self.gone.recv().await {
            Some(reason) => Signal::Gone(reason),
            None => std::future::pending().await,
        }
    }

    fn screen(&self) -> Option<mpsc::UnboundedSender<Shown>> {
        Some(self.screen.clone())
    }
}

/// A web caller is put through by a bridge: we call the queue and carry the audio.
#[async_trait]
impl CallerSignals for WebLine {
    async fn gone(&mut self) -> bool {
        self.gone.recv().await;
        true
    }

    async fn hang_up(&mut self) {
        self.screen.send(Shown::HungUp).ok();
        // Let the page see it before the connection goes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.pc.close().await.ok();
    }

    fn dialog(&mut self) -> Option<(&InviteDialog, &mut DialogStateReceiver)> {
        None
    }
}
