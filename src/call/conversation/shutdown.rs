//! The gateway stopping: what a call in progress hears once the drain time is over.

use super::{Action, Outcome};
use super::{After, Conversation, State};

impl Conversation {
    /// The drain time is over: a call on its way to a person or already saying
    /// goodbye goes on; any other stops what it says, hears why, and is hung up.
    pub(super) fn on_shutdown(&mut self) -> Vec<Action> {
        match &self.state {
            State::Transferring
            | State::NotAnswered
            | State::Routing { .. }
            | State::Speaking {
                then: After::Transfer(_) | After::Hangup,
                ..
            } => Vec::new(),
            _ => {
                self.outcome = Some(Outcome::Shutdown);
                let text = self.p().shutdown.clone();
                let mut actions = vec![Action::StopPlayback];
                actions.extend(self.say(&text, false, After::Hangup));
                actions
            }
        }
    }
}
