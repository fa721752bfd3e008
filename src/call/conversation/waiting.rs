//! Waiting: silence after a prompt (a reprompt, then the offer of a person, then a
//! transfer), and "one moment" while a turn is being recognised and understood.

use super::*;

impl Conversation {
    pub(super) fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            // Silence in the keypad menu, after a miss: the second failure.
            State::Listening {
                since,
                talking: false,
            } if now >= since + self.settings.no_input && matches!(self.asked, Asked::Menu(_)) => {
                self.transfer_now(TransferReason::NoMatch)
            }
            State::Listening {
                since,
                talking: false,
            } if now >= since + self.settings.no_input => {
                self.silences += 1;
                match self.silences {
                    1 => {
                        self.asked = Asked::Nothing;
                        self.say(&self.p().reprompt.clone(), true, After::Listen)
                    }
                    2 => {
                        self.asked = Asked::OfferedPerson;
                        self.say(&self.p().offer_person.clone(), true, After::Listen)
                    }
                    _ => self.transfer_now(TransferReason::NoInput),
                }
            }
            State::Thinking {
                since,
                filler_played: false,
            } if now >= since + self.settings.filler_after => self.filler(since),
            _ => Vec::new(),
        }
    }

    /// The recognizer expects the turn's transcript `wait` from now. When that is past
    /// the filler's time, the filler plays now, while the caller waits anyway: played
    /// at its time it would hold back an answer that comes while it plays (a burst of
    /// callers: answers waited up to a filler's length behind it).
    pub(super) fn on_expected(&mut self, now: Instant, wait: Duration) -> Vec<Action> {
        match self.state {
            State::Thinking {
                since,
                filler_played: false,
            } if now + wait >= since + self.settings.filler_after => self.filler(since),
            _ => Vec::new(),
        }
    }

    fn filler(&mut self, since: Instant) -> Vec<Action> {
        self.state = State::Thinking {
            since,
            filler_played: true,
        };
        vec![Action::Play {
            text: self.p().filler.clone(),
            barge_in: false,
        }]
    }
}
