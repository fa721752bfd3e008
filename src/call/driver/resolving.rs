//! The intent of the caller's turn, asked of the intent service, and asked ahead.
//!
//! A decode at a pause that the caller stays silent after is the turn's transcript
//! (`Decodes`). Its intent is asked for as soon as that transcript is ready, while the
//! trailing silence has still to end the turn, so that when it ends the answer is
//! known (a lone caller's turn waited ~50 ms for the intent service after its end).
//! Asking has no side effects, so a guess that later speech or a key makes stale is
//! simply not used: only a request equal to the turn's own takes the answer ahead, and
//! only a successful one (a failure is asked again, as the turn's own). A stale question
//! is let finish, not aborted: it may be the intent service's circuit breaker's probe,
//! whose outcome, dropped, would keep the breaker open a further cooldown.

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{understanding, CallLoop, Done};
use crate::intent::resolution::{Language, Request, Resolution};
use crate::stt::engine::Transcript;

type Asked = JoinHandle<Result<Resolution, String>>;

/// An intent asked for before its turn ended, and the request it answers.
#[derive(Default)]
pub(super) struct Ahead(Option<(Request, Asked)>);

impl Ahead {
    /// Asks for `request` with `ask` unless it is asked already (a stale question, for
    /// another request, is forgotten).
    fn ask(&mut self, request: Request, ask: impl FnOnce(Request) -> Asked) {
        if self.0.as_ref().is_some_and(|(r, _)| *r == request) {
            return;
        }
        let asked = ask(request.clone());
        self.0 = Some((request, asked));
    }

    /// The answer asked ahead for exactly `request`; one asked for another is dropped.
    fn take(&mut self, request: &Request) -> Option<Asked> {
        self.0
            .take()
            .and_then(|(r, asked)| (r == *request).then_some(asked))
    }
}

impl CallLoop {
    /// The conversation asked for the intent of a turn (`Action::Resolve`).
    pub(super) fn resolve(
        &mut self,
        text: String,
        turn: u32,
        previous_intent: Option<String>,
        chosen_intent_id: Option<String>,
    ) {
        // A keypad choice carries no audio.
        let heard = self.heard.take().filter(|_| chosen_intent_id.is_none());
        let request = self.request(
            text,
            turn,
            previous_intent,
            chosen_intent_id,
            heard.as_ref(),
        );
        let ahead = self.ahead.take(&request);
        if ahead.is_some() {
            tracing::debug!(turn, "intent asked ahead");
        }
        let intents = self.ctx.intents.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let ask = async move { intents.resolve(request).await.map_err(|e| e.to_string()) };
            let r = answer(ahead, ask).await;
            done.send(Done::Resolved(r, started.elapsed())).ok();
        });
    }

    /// A partial's transcript may be ready: ask for its intent now, as the request
    /// its turn would make (the next turn, no key pressed, this call's language).
    pub(super) fn resolve_ahead(&mut self) {
        let Some(Ok(t)) = self.decodes.ready() else {
            return;
        };
        let request = self.request(
            t.text.trim().to_string(),
            self.conversation.turn() + 1,
            self.conversation.last_intent(),
            None,
            Some(t),
        );
        let intents = self.ctx.intents.clone();
        self.ahead.ask(request, |request| {
            tokio::spawn(async move { intents.resolve(request).await.map_err(|e| e.to_string()) })
        });
    }

    /// The request `voicebot understand` makes for a turn, plus the call's own facts.
    fn request(
        &self,
        text: String,
        turn: u32,
        previous_intent_id: Option<String>,
        chosen_intent_id: Option<String>,
        heard: Option<&Transcript>,
    ) -> Request {
        Request {
            call_id: self.call_id.clone(),
            turn,
            text,
            language: self.language.parse().unwrap_or(Language::Da),
            previous_intent_id,
            chosen_intent_id,
            called_number: self.called.clone(),
            tenant: self.ctx.tenant.clone(),
            caller_number_known: self.caller_user.is_some(),
            minute_of_day: minute_of_day(),
            ..heard.map_or_else(Request::default, |t| understanding::request(t, turn))
        }
    }
}

/// The answer asked ahead, if it came back as one; else what `ask` gets.
async fn answer(
    ahead: Option<Asked>,
    ask: impl std::future::Future<Output = Result<Resolution, String>>,
) -> Result<Resolution, String> {
    let answered = match ahead {
        Some(asked) => asked.await.ok().and_then(Result::ok),
        None => None,
    };
    match answered {
        Some(r) => Ok(r),
        None => ask.await,
    }
}

/// Minutes since local midnight (UTC here; opening hours use the configured zone).
fn minute_of_day() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    ((secs % 86_400) / 60) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(intent_id: &str) -> Asked {
        tokio::spawn(std::future::ready(Ok(resolution(intent_id))))
    }

    fn resolution(intent_id: &str) -> Resolution {
        Resolution {
            action: crate::intent::resolution::Action::Answer,
            intent_id: intent_id.into(),
            kind: crate::intent::resolution::Kind::Answer,
            topic: String::new(),
            answer_text: String::new(),
            link_url: None,
            sms_text: None,
            confidence: 0.9,
            candidates: Vec::new(),
            reason: String::new(),
        }
    }

    fn turn(turn: u32, text: &str) -> Request {
        Request {
            turn,
            text: text.into(),
            ..Request::default()
        }
    }

    #[tokio::test]
    async fn only_the_turns_own_request_takes_the_answer_asked_ahead() {
        let mut ahead = Ahead::default();
        let mut asked = 0;
        for _ in 0..2 {
            ahead.ask(turn(2, "my bins"), |_| {
                asked += 1;
                answered("affald.toemning")
            });
        }
        assert_eq!(asked, 1, "the same request is asked once");
        let got = ahead.take(&turn(2, "my bins")).expect("asked ahead");
        assert_eq!(got.await.unwrap().unwrap().intent_id, "affald.toemning");
        assert!(ahead.take(&turn(2, "my bins")).is_none(), "taken once");

        // The caller went on ("... and my passport"), or the turn is another: asked anew.
        ahead.ask(turn(2, "my bins"), |_| answered("affald.toemning"));
        assert!(ahead.take(&turn(2, "my bins and my passport")).is_none());
        assert!(
            ahead.take(&turn(2, "my bins")).is_none(),
            "a stale one is dropped"
        );
        ahead.ask(turn(2, "my bins"), |_| answered("affald.toemning"));
        ahead.ask(turn(3, "my bins"), |_| answered("pas.nyt"));
        let got = ahead.take(&turn(3, "my bins")).expect("the later one");
        assert_eq!(got.await.unwrap().unwrap().intent_id, "pas.nyt");
    }

    #[tokio::test]
    async fn a_question_asked_ahead_that_failed_is_asked_again() {
        let failed: Asked = tokio::spawn(std::future::ready(Err("unavailable".to_string())));
        let again = async { Ok(resolution("pas.nyt")) };
        assert_eq!(
            answer(Some(failed), again).await.unwrap().intent_id,
            "pas.nyt"
        );
        let never = async { panic!("asked again though answered ahead") };
        let got = answer(Some(answered("affald.toemning")), never).await;
        assert_eq!(got.unwrap().intent_id, "affald.toemning");
    }
}
