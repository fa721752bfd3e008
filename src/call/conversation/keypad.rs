//! What the caller's keys do in the conversation: 0 reaches a person, always; 9 on a
//! Danish call switches to English (except inside an entry's menu, where it is just a
//! digit); 1 says yes to the open question (a link by SMS, "is it about X?") and 2 no
//! to "is it about X?"; 1 and 2 pick A or B of "is it about A or B?"; in the keypad
//! menu a digit picks and * reads the menu again.
//!
//! Keys never loop a caller: a key that is no choice is forgiven once, and the menu
//! itself is only opened by a miss, of which the second goes to a person.

use super::*;
use crate::call::menu::Pick;

impl Conversation {
    pub(super) fn on_key(&mut self, now: Instant, key: char) -> Vec<Action> {
        if key == '0' {
            return self.transfer_now(TransferReason::Dtmf);
        }
        let in_entry = matches!(self.asked, Asked::Menu(Level::Entry(_)));
        if key == '9' && self.language == Language::Da && !in_entry {
            return self.switch_to_english();
        }
        match (&self.asked, key) {
            (Asked::OfferedSms(_), '1') => self.accept_sms(),
            // While a spoken answer is being resolved too: whatever it brings is
            // dropped, since we are no longer thinking when it comes.
            (Asked::Confirming(_), '1' | '2') if self.keys_heard(true) => {
                let actions = if key == '1' {
                    self.confirmed()
                } else {
                    self.miss(false)
                };
                stop_first(actions)
            }
            (Asked::Clarified(choices), '1' | '2') if self.keys_heard(false) => {
                let (intent_id, title) = choices[usize::from(key == '2')].clone();
                self.choose(now, intent_id, title)
            }
            // Not while speech is being resolved: its result could be taken for the
            // answer to the key.
            (Asked::Menu(level), _) if self.keys_heard(false) => {
                let level = *level;
                self.menu_key(now, level, key)
            }
            _ => Vec::new(),
        }
    }

    /// Whether a key may act now: while we speak and will listen, or listen; while a
    /// turn is being resolved only if `thinking_too`.
    fn keys_heard(&self, thinking_too: bool) -> bool {
        match self.state {
            State::Listening { .. }
            | State::Speaking {
                then: After::Listen,
                ..
            } => true,
            State::Thinking { .. } => thinking_too,
            _ => false,
        }
    }

    fn menu_key(&mut self, now: Instant, level: Level, key: char) -> Vec<Action> {
        if key == '*' {
            return stop_first(self.open_menu(level, None));
        }
        if !key.is_ascii_digit() {
            return Vec::new();
        }
        match self.menu.pick(level, key, self.language) {
            Pick::Entry(entry) => {
                self.wrong_keys = 0;
                stop_first(self.open_menu(Level::Entry(entry), None))
            }
            Pick::Intent { intent_id, title } => self.choose(now, intent_id, title),
            Pick::Invalid => {
                self.wrong_keys += 1;
                if self.wrong_keys >= self.settings.max_no_match {
                    return self.transfer_now(TransferReason::NoMatch);
                }
                let lead = self.p().menu_invalid.clone();
                stop_first(self.open_menu(level, Some(lead)))
            }
        }
    }

    /// Reads the menu at `level` (after `lead`, if any) and listens for a key or speech.
    pub(super) fn open_menu(&mut self, level: Level, lead: Option<String>) -> Vec<Action> {
        self.asked = Asked::Menu(level);
        let text = self
            .menu
            .speak_after(lead.as_deref(), level, self.p(), self.language);
        self.say(&text, true, After::Listen)
    }

    /// An answer picked from the menu: resolved by id, as a turn of its own.
    fn choose(&mut self, now: Instant, intent_id: String, title: String) -> Vec<Action> {
        self.turn += 1;
        if self.turn > self.settings.max_turns {
            return self.transfer_now(TransferReason::TooManyTurns);
        }
        self.silences = 0;
        self.asked = Asked::Nothing;
        self.state = State::Thinking {
            since: now,
            filler_played: false,
        };
        vec![
            Action::StopPlayback,
            Action::Resolve {
                text: title,
                turn: self.turn,
                previous_intent: self.last_intent.clone(),
                chosen_intent_id: Some(intent_id),
            },
        ]
    }

    /// 9 on a Danish call: English from now on, with a short welcome. Misses so far
    /// are forgiven, since the language may have been why.
    fn switch_to_english(&mut self) -> Vec<Action> {
        if !self.keys_heard(true) {
            return Vec::new();
        }
        self.language = Language::En;
        self.language_chosen = true;
        self.asked = Asked::Nothing;
        self.no_match = 0;
        self.wrong_keys = 0;
        self.silences = 0;
        let mut actions = vec![
            Action::StopPlayback,
            Action::SwitchLanguage(Language::En.as_str().into()),
        ];
        let welcome = self.p().switched_welcome.clone();
        actions.extend(self.say(&welcome, true, After::Listen));
        actions
    }
}

/// Whatever a key leads to starts by silencing what we were saying.
fn stop_first(mut actions: Vec<Action>) -> Vec<Action> {
    if actions.first() != Some(&Action::StopPlayback) {
        actions.insert(0, Action::StopPlayback);
    }
    actions
}
