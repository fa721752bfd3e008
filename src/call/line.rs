//! The caller's line: a phone call (a SIP dialog with RTP) or a web page (WebRTC).
//! The conversation's driver knows a caller only through this seam and the line's
//! media (`crate::media`): it hears audio and keys, plays audio, shows text where the
//! line has a screen, hangs up, and puts the caller through to a person.

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::media::MediaHandle;
use crate::transfer::bridge::CallerSignals;

/// What the line's signalling says, as far as the call is concerned.
pub enum Signal {
    /// The caller is gone (hung up, closed the page, lost the connection).
    Gone(String),
    /// The caller confirmed the call (SIP: the ACK): media may go to its address.
    Confirmed,
    /// Handled on the line (SIP: a re-INVITE, OPTIONS); nothing for the call.
    Handled,
}

/// Text for a caller who can see it (the web page): captions and links.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Shown {
    /// A line of the conversation as it happens: "bot" or "caller".
    Caption { who: &'static str, text: String },
    /// The answer's page, instead of an SMS offer.
    Link { url: String, title: String },
    /// The bot ended the call.
    HungUp,
}

/// A line is also the caller's side of a transfer (`CallerSignals`): how the caller
/// is watched and hung up on while a person is rung, and whether a REFER can reach it.
#[async_trait]
pub trait Line: CallerSignals {
    /// The call record's `channel`: "sip" or "webrtc".
    fn channel(&self) -> &'static str;

    /// The rate of the caller's audio in the line's media events: 8 kHz on the phone,
    /// 16 kHz from a web page speaking Opus (wideband reaches the recognizer as is).
    fn audio_rate(&self) -> u32 {
        8_000
    }

    /// Waits for the line's next signal (cancel-safe: used in the call's `select!`).
    async fn signal(&mut self, media: &MediaHandle) -> Signal;

    /// Where text for the caller goes, on lines with a screen; phones have none.
    fn screen(&self) -> Option<mpsc::UnboundedSender<Shown>> {
        None
    }
}
