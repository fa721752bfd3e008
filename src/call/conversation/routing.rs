//! Putting the caller through: the conversation asks the driver to route (by topic and
//! opening hours), then says where the caller goes, or when the queue is open, or that
//! nobody can take the call, and ends its part.

use super::*;

impl Conversation {
    pub(super) fn transfer_now(&mut self, reason: TransferReason) -> Vec<Action> {
        self.transfer_saying(reason, None)
    }

    pub(super) fn transfer_saying(
        &mut self,
        reason: TransferReason,
        lead: Option<String>,
    ) -> Vec<Action> {
        if matches!(
            self.state,
            State::Transferring | State::NotAnswered | State::Routing { .. }
        ) {
            return Vec::new();
        }
        if let State::Speaking {
            then: After::Transfer(_),
            ..
        } = self.state
        {
            return Vec::new(); // already on the way
        }
        let request = TransferRequest {
            topic: self.last_topic.clone(),
            intent_id: self.last_intent.clone(),
            reason,
            queue: None,
        };
        self.state = State::Routing {
            request: request.clone(),
            lead,
        };
        vec![Action::StopPlayback, Action::Route(request)]
    }

    pub(super) fn on_routed(&mut self, route: Route) -> Vec<Action> {
        let State::Routing { request, lead } = &self.state else {
            return Vec::new();
        };
        let (mut request, lead) = (request.clone(), lead.clone());
        let with_lead = |text: String| match &lead {
            Some(lead) => format!("{lead} {text}"),
            None => text,
        };
        match route {
            Route::Open { queue, spoken } => {
                request.queue = Some(queue);
                let text = with_lead(self.p().transferring_to(&spoken));
                self.say(&text, false, After::Transfer(request))
            }
            Route::Closed { spoken, hours } => {
                self.outcome = Some(Outcome::OutOfHours);
                let text = with_lead(self.p().closed_goodbye(&spoken, &hours));
                self.say(&text, false, After::Hangup)
            }
            Route::NoQueue => {
                self.outcome = Some(Outcome::Error);
                let text = with_lead(self.p().no_agents_goodbye());
                self.say(&text, false, After::Hangup)
            }
        }
    }
}
