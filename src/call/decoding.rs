//! One call's speech decodes, scheduled so recognition starts before the turn is known
//! to be over, and so one caller never holds more than one recognizer worker.
//!
//! At a short pause the audio so far is decoded as a *partial* (only when a worker is
//! idle: under load partials are skipped first). If the caller then stays silent until
//! the utterance ends, that partial is the turn's transcript: it is used at once when
//! ready, or adopted while still decoding. If they spoke again, the partial is stale and
//! the whole utterance is decoded once the call's decode in flight is over. If they go
//! on after the utterance ended, before its transcript came (a long pause mid-question,
//! on a busy recognizer), the turn is all they said: its decode in flight is of no use
//! and its result is dropped. Sans-IO:
//! the driver submits the decodes this asks for and reports their results.

/// Audio the endpointer handed on, and where its speech ended (audio time).
#[derive(Debug, Clone, PartialEq)]
pub struct Speech {
    pub audio: Vec<i16>,
    pub end_ms: u64,
}

#[derive(Debug, PartialEq)]
pub enum Do<T> {
    /// Submit this decode; its result comes back through `decoded(id, ..)`.
    Decode {
        id: u64,
        audio: Vec<i16>,
        partial: bool,
    },
    /// The transcript of the utterance that ended; `early` when its decode started at
    /// a pause, before the end.
    Heard(T, bool),
}

struct InFlight {
    id: u64,
    end_ms: u64,
    /// Still a guess: no utterance has ended on it yet.
    partial: bool,
    /// Started at a pause (and perhaps adopted since).
    early: bool,
    /// The caller went on: the turn is decoded again, whole, and this result dropped.
    superseded: bool,
}

pub struct Decodes<T> {
    next_id: u64,
    in_flight: Option<InFlight>,
    /// A finished partial and where its speech ended.
    ready: Option<(u64, T)>,
    /// An utterance waiting for the call's decode in flight to finish.
    waiting: Option<Speech>,
}

impl<T> Default for Decodes<T> {
    fn default() -> Self {
        Decodes {
            next_id: 0,
            in_flight: None,
            ready: None,
            waiting: None,
        }
    }
}

impl<T> Decodes<T> {
    /// The caller paused; `worker_idle` says whether the recognizer has a free worker.
    pub fn pause(&mut self, speech: Speech, worker_idle: bool) -> Option<Do<T>> {
        if self.in_flight.is_some() || self.waiting.is_some() || !worker_idle {
            return None;
        }
        self.ready = None;
        Some(self.start(speech, true))
    }

    /// The utterance ended: its transcript now, later, or after a decode.
    pub fn utterance(&mut self, speech: Speech) -> Option<Do<T>> {
        match self.ready.take() {
            Some((end_ms, t)) if end_ms >= speech.end_ms => return Some(Do::Heard(t, true)),
            _ => {}
        }
        match &mut self.in_flight {
            Some(f) if f.partial && f.end_ms >= speech.end_ms => {
                // Adopted: its result is this utterance's.
                f.partial = false;
                None
            }
            Some(_) => {
                // Keep only the latest: an earlier one waiting was superseded.
                self.waiting = Some(speech);
                None
            }
            None => Some(self.start(speech, false)),
        }
    }

    /// The caller went on after the utterance ended and before its transcript came:
    /// the turn is now `speech`, all they said. Returns the decode in flight that is
    /// of no use now (to abandon), and the decode to start when none is in flight
    /// (else it waits for that one to stop).
    pub fn continued(&mut self, speech: Speech) -> (Option<u64>, Option<Do<T>>) {
        self.ready = None;
        match &mut self.in_flight {
            Some(f) => {
                f.superseded = true;
                self.waiting = Some(speech);
                (Some(f.id), None)
            }
            None => (None, Some(self.start(speech, false))),
        }
    }

    /// A decode this asked for is over.
    pub fn decoded(&mut self, id: u64, result: T) -> Vec<Do<T>> {
        let mut out = Vec::new();
        match self.in_flight.take() {
            Some(f) if f.id == id => {
                if f.superseded {
                    // Of speech the caller went on with: a decode of it all waits.
                } else if f.partial {
                    self.ready = Some((f.end_ms, result));
                } else {
                    out.push(Do::Heard(result, f.early));
                }
            }
            other => {
                // Not ours (cannot happen while the driver reports every id once).
                self.in_flight = other;
                return out;
            }
        }
        if let Some(speech) = self.waiting.take() {
            out.push(self.start(speech, false));
        }
        out
    }

    /// The caller spoke again after the pause: a partial still decoding is of no use.
    /// Returns its id, so the driver can abandon it.
    pub fn resumed(&mut self) -> Option<u64> {
        self.ready = None;
        self.in_flight.as_ref().filter(|f| f.partial).map(|f| f.id)
    }

    /// The recognizer refused the decode `id` at once (no idle worker after all).
    pub fn refused(&mut self, id: u64) {
        if self.in_flight.as_ref().is_some_and(|f| f.id == id) {
            self.in_flight = None;
        }
    }

    /// A finished partial that is the turn's transcript if the caller stays silent.
    pub fn ready(&self) -> Option<&T> {
        self.ready.as_ref().map(|(_, t)| t)
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The caller hung up: their last words are still wanted, for the record. A
    /// finished partial is heard now; a partial still decoding, with no utterance
    /// waiting behind it, will be heard when done (it is the speech they stopped
    /// after); an utterance's decode goes on as before.
    pub fn hung_up(&mut self) -> Option<Do<T>> {
        if let Some(f) = self.in_flight.as_mut().filter(|_| self.waiting.is_none()) {
            f.partial = false;
        }
        self.ready.take().map(|(_, t)| Do::Heard(t, true))
    }

    /// A transcript is still to come from a decode in flight or waiting.
    pub fn hearing_more(&self) -> bool {
        self.in_flight.is_some() || self.waiting.is_some()
    }

    fn start(&mut self, speech: Speech, partial: bool) -> Do<T> {
        self.next_id += 1;
        self.in_flight = Some(InFlight {
            id: self.next_id,
            end_ms: speech.end_ms,
            partial,
            early: partial,
            superseded: false,
        });
        Do::Decode {
            id: self.next_id,
            audio: speech.audio,
            partial,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speech(end_ms: u64) -> Speech {
        Speech {
            audio: vec![0; end_ms as usize],
            end_ms,
        }
    }

    fn decode_id(d: Option<Do<&'static str>>) -> (u64, bool) {
        match d {
            Some(Do::Decode { id, partial, .. }) => (id, partial),
            other => panic!("expected a decode, got {other:?}"),
        }
    }

    #[test]
    fn a_finished_partial_answers_at_once_when_no_speech_followed() {
        let mut d = Decodes::default();
        let (id, partial) = decode_id(d.pause(speech(1200), true));
        assert!(partial);
        assert!(d.decoded(id, "hello").is_empty());
        assert_eq!(d.utterance(speech(1200)), Some(Do::Heard("hello", true)));
        assert!(!d.in_flight());
    }

    #[test]
    fn a_partial_still_decoding_is_adopted_not_decoded_again() {
        let mut d = Decodes::default();
        let (id, _) = decode_id(d.pause(speech(1200), true));
        assert_eq!(d.utterance(speech(1200)), None);
        assert_eq!(d.decoded(id, "hello"), vec![Do::Heard("hello", true)]);
    }

    #[test]
    fn speech_after_the_partial_makes_it_stale() {
        let mut d = Decodes::default();
        let (first, _) = decode_id(d.pause(speech(1200), true));
        // The caller went on talking; the utterance ends later, while the partial runs.
        assert_eq!(d.utterance(speech(2500)), None);
        let after = d.decoded(first, "hel");
        let [Do::Decode {
            id,
            partial: false,
            audio,
        }] = after.as_slice()
        else {
            panic!("{after:?}")
        };
        assert_eq!(audio.len(), 2500);
        assert_eq!(
            d.decoded(*id, "hello there"),
            vec![Do::Heard("hello there", false)]
        );

        // A finished partial that speech followed is dropped, and the whole decoded.
        let (p, _) = decode_id(d.pause(speech(900), true));
        d.decoded(p, "stale");
        let (_, partial) = decode_id(d.utterance(speech(1900)));
        assert!(!partial);
    }

    #[test]
    fn speech_after_the_pause_abandons_the_partial() {
        let mut d = Decodes::default();
        let (id, _) = decode_id(d.pause(speech(1200), true));
        assert_eq!(d.resumed(), Some(id));
        assert_eq!(d.utterance(speech(2500)), None);
        // The abandoned decode comes back (as an error, say); the whole is decoded next.
        let after = d.decoded(id, "abandoned");
        assert!(
            matches!(after.as_slice(), [Do::Decode { partial: false, .. }]),
            "{after:?}"
        );
        // A final is never abandoned.
        assert_eq!(d.resumed(), None);
    }

    #[test]
    fn no_partial_without_an_idle_worker_or_while_the_call_decodes() {
        let mut d: Decodes<&str> = Decodes::default();
        assert_eq!(d.pause(speech(800), false), None);
        let (id, partial) = decode_id(d.utterance(speech(800)));
        assert!(!partial);
        // The next utterance's pause comes while this call's final is decoding.
        assert_eq!(d.pause(speech(500), true), None);
        assert_eq!(d.decoded(id, "one"), vec![Do::Heard("one", false)]);
    }

    #[test]
    fn one_decode_in_flight_per_call_and_only_the_latest_waits() {
        let mut d = Decodes::default();
        let (first, _) = decode_id(d.utterance(speech(700)));
        assert_eq!(d.utterance(speech(800)), None);
        assert_eq!(d.utterance(speech(900)), None);
        let out = d.decoded(first, "first");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], Do::Heard("first", false));
        let Do::Decode { id, audio, .. } = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(audio.len(), 900);
        assert_eq!(d.decoded(*id, "third"), vec![Do::Heard("third", false)]);
    }

    #[test]
    fn a_caller_who_hangs_up_is_still_heard_for_the_record() {
        // A partial finished, and the caller hung up in the silence after it.
        let mut d = Decodes::default();
        let (id, _) = decode_id(d.pause(speech(1200), true));
        d.decoded(id, "hello");
        assert_eq!(d.hung_up(), Some(Do::Heard("hello", true)));
        assert!(!d.hearing_more());

        // An utterance's decode in flight: heard when done.
        let mut d = Decodes::default();
        let (id, _) = decode_id(d.utterance(speech(900)));
        assert_eq!(d.hung_up(), None);
        assert!(d.hearing_more());
        assert_eq!(d.decoded(id, "one"), vec![Do::Heard("one", false)]);
        assert!(!d.hearing_more());

        // A partial still decoding, nothing after it: it is their last words.
        let mut d = Decodes::default();
        let (id, _) = decode_id(d.pause(speech(1200), true));
        assert_eq!(d.hung_up(), None);
        assert_eq!(d.decoded(id, "hel"), vec![Do::Heard("hel", true)]);

        // A stale partial with an utterance waiting: only the whole is heard.
        let mut d = Decodes::default();
        let (id, _) = decode_id(d.pause(speech(1200), true));
        assert_eq!(d.utterance(speech(2500)), None);
        assert_eq!(d.hung_up(), None);
        let after = d.decoded(id, "hel");
        let [Do::Decode { id, .. }] = after.as_slice() else {
            panic!("{after:?}")
        };
        assert_eq!(
            d.decoded(*id, "hello there"),
            vec![Do::Heard("hello there", false)]
        );
        assert!(!d.hearing_more());
    }

    #[test]
    fn a_caller_who_goes_on_before_the_transcript_is_heard_whole_and_once() {
        // The turn's decode is in flight when they go on: it is abandoned, its result
        // dropped, and all they said is decoded once it stops.
        let mut d = Decodes::default();
        let (first, _) = decode_id(d.utterance(speech(900)));
        let (abandon, start) = d.continued(speech(2600));
        assert_eq!((abandon, start), (Some(first), None));
        let out = d.decoded(first, "I would like");
        let [Do::Decode { id, audio, partial }] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!((audio.len(), *partial), (2600, false));
        assert_eq!(
            d.decoded(*id, "I would like to book a passport"),
            vec![Do::Heard("I would like to book a passport", false)]
        );
        assert!(!d.hearing_more());

        // An adopted partial is the turn's decode like any other.
        let mut d = Decodes::default();
        let (partial, _) = decode_id(d.pause(speech(900), true));
        assert_eq!(d.utterance(speech(900)), None, "adopted");
        let (abandon, _) = d.continued(speech(2600));
        assert_eq!(abandon, Some(partial));
        let out = d.decoded(partial, "I would");
        assert!(matches!(out.as_slice(), [Do::Decode { .. }]), "{out:?}");

        // Nothing in flight: decoded now.
        let mut d: Decodes<&str> = Decodes::default();
        let (abandon, start) = d.continued(speech(2600));
        assert_eq!(abandon, None);
        let (_, partial) = decode_id(start);
        assert!(!partial);
    }

    #[test]
    fn a_refused_partial_leaves_the_utterance_to_a_decode_of_its_own() {
        let mut d: Decodes<&str> = Decodes::default();
        let (id, _) = decode_id(d.pause(speech(1000), true));
        d.refused(id);
        assert!(!d.in_flight());
        let (_, partial) = decode_id(d.utterance(speech(1000)));
        assert!(!partial);
    }
}
