//! A caller's media, whatever the line: what the call hears from the caller
//! (`MediaEvent`), the handle it talks through (`MediaHandle`), and the ordered queue
//! of what the caller is to hear (`Outgoing`). The RTP session (phone calls) and the
//! WebRTC leg (web calls) each run a media task on these, so the conversation's
//! driver, the bridge and the playback queue do not know which line a caller is on.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

/// What the media task tells the call.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// Decoded audio from the caller, in playout order, at the line's rate (8 kHz on
    /// the phone and on an agent's leg; 16 kHz from a web page speaking Opus).
    Audio(Vec<i16>),
    Dtmf(char),
    /// Everything queued with `play` has gone out on the wire.
    PlaybackDone,
    /// The first packet of audio queued with `play_marked(.., mark)` went out.
    PlaybackStarted(u64),
    /// No media from the caller for the configured timeout.
    Timeout,
    /// RTP only: what the line's echo gate knows of the bot's voice coming back
    /// (`audio::echo`).
    Echo(LineEcho),
}

/// What the echo gate knows of a line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LineEcho {
    /// It is listening for the bot's voice coming back: speech heard while the bot
    /// talks may be its echo.
    Judging,
    /// It has just learnt the bot's voice coming back: what was heard before, while
    /// the bot talked, may have been it.
    Learnt,
    /// The bot talked long enough for its echo to be learnt, and none was.
    None,
}

/// What the call asks of its media task.
pub enum Command {
    Play(Vec<i16>, Option<u64>),
    StopPlayback,
    Dtmf(char),
    /// RTP only: a re-INVITE moved the far end or put the call on hold.
    Update {
        remote: SocketAddr,
        sending: bool,
    },
    /// RTP only: the far end confirmed the call.
    Confirm,
    /// RTP only: mute the bot's own voice coming back from the line (see
    /// `audio::echo`); off while the caller talks to a person.
    EchoGate(bool),
}

/// The call's handle on its media task. Dropping it (or cancelling) ends the task.
#[derive(Clone)]
pub struct MediaHandle {
    commands: mpsc::UnboundedSender<Command>,
    local: SocketAddr,
    playing: Arc<Mutex<bool>>,
    held: Held,
}

/// A media task's side of a handle: the commands, and the queue of what to play.
pub struct MediaTaskEnds {
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub outgoing: Outgoing,
    pub held: Held,
}

/// How long the caller's latest audio waited in the line's jitter buffer before the
/// call got it (part of every turn's end; a web leg's stays zero).
#[derive(Clone, Default)]
pub struct Held(Arc<AtomicU64>);

impl Held {
    pub fn set(&self, held: Duration) {
        let micros = u64::try_from(held.as_micros()).unwrap_or(u64::MAX);
        self.0.store(micros, Ordering::Relaxed);
    }

    pub fn get(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::Relaxed))
    }
}

/// A handle for a media task about to start at `local`, with the task's ends.
pub fn handle(
    local: SocketAddr,
    events: mpsc::UnboundedSender<MediaEvent>,
) -> (MediaHandle, MediaTaskEnds) {
    let (commands, rx) = mpsc::unbounded_channel();
    let playing = Arc::new(Mutex::new(false));
    let held = Held::default();
    let handle = MediaHandle {
        commands,
        local,
        playing: playing.clone(),
        held: held.clone(),
    };
    let outgoing = Outgoing {
        queue: VecDeque::new(),
        marks: VecDeque::new(),
        playing,
        events,
    };
    (
        handle,
        MediaTaskEnds {
            commands: rx,
            outgoing,
            held,
        },
    )
}

impl MediaHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Queues 8 kHz audio to be sent after whatever is already queued.
    pub fn play(&self, pcm: Vec<i16>) {
        self.play_marked(pcm, None);
    }

    /// Like `play`; with a mark, `PlaybackStarted(mark)` tells when its first packet
    /// is on the wire.
    pub fn play_marked(&self, pcm: Vec<i16>, mark: Option<u64>) {
        set(&self.playing, true);
        self.commands.send(Command::Play(pcm, mark)).ok();
    }

    /// Drops queued audio at once (barge-in, hangup).
    pub fn stop_playback(&self) {
        self.commands.send(Command::StopPlayback).ok();
    }

    pub fn send_dtmf(&self, digit: char) {
        self.commands.send(Command::Dtmf(digit)).ok();
    }

    /// A re-INVITE moved the far end (media latches afresh) or put the call on hold.
    pub fn update(&self, remote: SocketAddr, sending: bool) {
        self.commands.send(Command::Update { remote, sending }).ok();
    }

    /// The far end confirmed the call (its ACK, or its answer to our INVITE): audio
    /// may go to its SDP address beyond the first second even before its RTP arrives.
    pub fn confirm(&self) {
        self.commands.send(Command::Confirm).ok();
    }

    /// Turns the line's echo gate on or off (a leg started without one stays without).
    pub fn echo_gate(&self, on: bool) {
        self.commands.send(Command::EchoGate(on)).ok();
    }

    /// How long the caller's latest audio waited in the jitter buffer.
    pub fn held(&self) -> Duration {
        self.held.get()
    }

    pub fn is_playing(&self) -> bool {
        *self.playing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn set(flag: &Mutex<bool>, v: bool) {
    *flag.lock().unwrap_or_else(|e| e.into_inner()) = v;
}

/// What the caller is to hear, in order, with the marks whose start the call awaits.
pub struct Outgoing {
    queue: VecDeque<i16>,
    /// Marks in `queue`: how many samples precede each, counted from the front.
    marks: VecDeque<(usize, u64)>,
    playing: Arc<Mutex<bool>>,
    events: mpsc::UnboundedSender<MediaEvent>,
}

impl Outgoing {
    pub fn push(&mut self, pcm: Vec<i16>, mark: Option<u64>) {
        if let Some(mark) = mark {
            self.marks.push_back((self.queue.len(), mark));
        }
        self.queue.extend(pcm);
    }

    pub fn clear(&mut self) {
        self.queue.clear();
        self.marks.clear();
        set(&self.playing, false);
    }

    /// The next `samples` to send (silence-padded) and whether any was queued audio;
    /// tells the call when marks start and when the queue runs dry.
    pub fn next_frame(&mut self, samples: usize) -> (Vec<i16>, bool) {
        let had_audio = !self.queue.is_empty();
        let n = samples.min(self.queue.len());
        let mut frame: Vec<i16> = self.queue.drain(..n).collect();
        frame.resize(samples, 0);
        self.pass_marks(n);
        if had_audio && self.queue.is_empty() {
            set(&self.playing, false);
            self.events.send(MediaEvent::PlaybackDone).ok();
        }
        (frame, had_audio)
    }

    /// `sent` samples left the queue: marks among them have started playing.
    fn pass_marks(&mut self, sent: usize) {
        while let Some((ahead, mark)) = self.marks.front().copied() {
            if ahead >= sent {
                break;
            }
            self.marks.pop_front();
            self.events.send(MediaEvent::PlaybackStarted(mark)).ok();
        }
        for (ahead, _) in self.marks.iter_mut() {
            *ahead -= sent;
        }
    }

    /// Tells the call something its media heard.
    pub fn event(&self, ev: MediaEvent) {
        self.events.send(ev).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_start_in_order_and_the_end_of_the_queue_is_told_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (h, mut ends) = handle("127.0.0.1:1".parse().unwrap(), tx);
        h.play_marked(vec![1; 300], Some(7));
        h.play_marked(vec![2; 100], Some(8));
        while let Ok(Command::Play(pcm, mark)) = ends.commands.try_recv() {
            ends.outgoing.push(pcm, mark);
        }
        assert!(h.is_playing());
        let (f, audio) = ends.outgoing.next_frame(160);
        assert!(audio && f.iter().all(|&s| s == 1));
        assert_eq!(rx.try_recv(), Ok(MediaEvent::PlaybackStarted(7)));
        assert!(rx.try_recv().is_err());
        let (f, _) = ends.outgoing.next_frame(160);
        assert_eq!((f[139], f[140]), (1, 2));
        assert_eq!(rx.try_recv(), Ok(MediaEvent::PlaybackStarted(8)));
        let (f, audio) = ends.outgoing.next_frame(160);
        assert!(audio && f[79] == 2 && f[80] == 0);
        assert_eq!(rx.try_recv(), Ok(MediaEvent::PlaybackDone));
        assert!(!h.is_playing());
        let (_, audio) = ends.outgoing.next_frame(160);
        assert!(!audio);
        assert!(rx.try_recv().is_err());
    }
}
