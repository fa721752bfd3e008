//! A caller who goes on with their turn after it seemed over: while it is being
//! recognised (no filler over their words), or over the first moment of our reply to
//! it ("My father is eighty-two." … "Does he need a medical to keep driving?"). Said
//! before they could have heard the reply, the rest is not an answer to it: the turn
//! they were on is taken back (what its reply changed is undone) and becomes all they
//! said, which the call decodes again.

use super::*;

/// What a turn's reply may change, as it was when the turn began.
#[derive(Debug, Clone)]
pub(super) struct BeforeTurn {
    turn: u32,
    asked: Asked,
    no_match: u32,
    wrong_keys: u32,
    answered_any: bool,
    last_answer: Option<String>,
    last_intent: Option<String>,
    last_topic: Option<String>,
}

impl Conversation {
    /// A turn begins: what its reply may change is kept, for taking it back.
    pub(super) fn remember_before_turn(&mut self) {
        self.before_turn = Some(BeforeTurn {
            turn: self.turn,
            asked: self.asked.clone(),
            no_match: self.no_match,
            wrong_keys: self.wrong_keys,
            answered_any: self.answered_any,
            last_answer: self.last_answer.clone(),
            last_intent: self.last_intent.clone(),
            last_topic: self.last_topic.clone(),
        });
    }

    /// The caller spoke again while their turn is recognised (the call decodes all
    /// they said): the wait for it starts again.
    pub(super) fn went_on(&mut self, now: Instant) {
        if let State::Thinking { filler_played, .. } = self.state {
            self.state = State::Thinking {
                since: now,
                filler_played,
            };
        }
    }

    /// The caller talked over our reply's first moment, before they could have heard
    /// it, and has the floor now: their last turn is taken back, so the utterance that
    /// ends next is that turn again, with all they said. Nothing to take back (a turn
    /// taken back already, or none yet): a turn of its own.
    pub(super) fn went_on_over_reply(&mut self) -> Vec<Action> {
        if !matches!(self.state, State::Listening { .. }) {
            return Vec::new();
        }
        if let Some(b) = self.before_turn.take() {
            self.turn = b.turn;
            self.asked = b.asked;
            self.no_match = b.no_match;
            self.wrong_keys = b.wrong_keys;
            self.answered_any = b.answered_any;
            self.last_answer = b.last_answer;
            self.last_intent = b.last_intent;
            self.last_topic = b.last_topic;
        }
        Vec::new()
    }
}
