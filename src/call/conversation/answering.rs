//! Answers: the answer itself, then its page offered by SMS (or pointed to) and
//! "anything else?"; a yes to the SMS offer sends it.

use super::*;

impl Conversation {
    /// Speaks an answer, then offers its page by SMS (or points to it) and asks if
    /// there is anything else.
    pub(super) fn answer(&mut self, r: Resolution) -> Vec<Action> {
        self.no_match = 0;
        self.answered_any = true;
        self.last_intent = Some(r.intent_id.clone());
        self.last_topic = Some(r.topic.clone());
        self.last_answer = Some(r.answer_text.clone());
        self.state = State::Speaking {
            then: After::Listen,
            interruptible: true,
        };
        let mut show = None;
        let follow_up = match r.link_url.clone() {
            Some(url) if self.links_on_screen => {
                self.asked = Asked::AnythingElse;
                let title = r
                    .candidates
                    .iter()
                    .find(|c| c.intent_id == r.intent_id)
                    .map(|c| c.title.clone())
                    .unwrap_or_default();
                show = Some(Action::ShowLink { url, title });
                format!("{} {}", self.p().link_on_screen, self.p().anything_else)
            }
            Some(link) if self.sms_possible && !self.sms_sent.contains(&r.intent_id) => {
                self.asked = Asked::OfferedSms(SmsOffer {
                    intent_id: r.intent_id.clone(),
                    link,
                    sms_text: r.sms_text.clone(),
                });
                self.p().sms_offer.clone()
            }
            Some(_) => {
                self.asked = Asked::AnythingElse;
                format!("{} {}", self.p().link_elsewhere, self.p().anything_else)
            }
            None => {
                self.asked = Asked::AnythingElse;
                self.p().anything_else.clone()
            }
        };
        let mut actions = vec![
            Action::Play {
                text: r.answer_text,
                barge_in: true,
            },
            Action::Play {
                text: follow_up,
                barge_in: true,
            },
        ];
        actions.extend(show);
        actions
    }

    /// Yes (or 1) to the SMS offer: only while that offer is the open question.
    pub(super) fn accept_sms(&mut self) -> Vec<Action> {
        let Asked::OfferedSms(offer) = &self.asked else {
            return Vec::new();
        };
        let waiting = matches!(
            self.state,
            State::Listening { .. }
                | State::Thinking { .. }
                | State::Speaking {
                    then: After::Listen,
                    ..
                }
        );
        if !waiting {
            return Vec::new();
        }
        let offer = offer.clone();
        self.sms_sent.push(offer.intent_id.clone());
        self.asked = Asked::Nothing;
        self.state = State::Sending;
        vec![Action::StopPlayback, Action::SendSms(offer)]
    }
}
