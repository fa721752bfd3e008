//! Weighing the recognizer's acoustic hints (knowledge-base phrasings scored on the
//! caller's audio) against the text match of the free transcript.
//!
//! Measured on the telephone fixtures (`voicebot bench understand`, tune set): the
//! free transcript of Danish is so often garbled that the text match alone answered a
//! wrong intent for about one question in six. When the audio's best candidate is the
//! text's best, clearly ahead of the next candidate, the answer was almost always
//! right; when they disagree, either may be right. So: agreement answers, disagreement
//! asks back naming both. A transcript whisper itself is sure of (all the English
//! ones, almost no Danish one) is left to the text match, which is right for those.
//! So is a fairly sure transcript whose text match is clear: on the English fixtures
//! with line noise the audio's disagreement there turned right answers into questions
//! (15 of 17 cases; tune set 73% → 76% right, wrong answers unchanged), and no Danish
//! transcript is that sure.

use super::kb::Kb;
use super::resolution::{Hint, Kind, Request};

/// Lead of the audio's best candidate over its runner-up (score units, see `rescore`)
/// for agreement to count.
pub const AGREE_MARGIN: f32 = 1.0;
/// A transcript whisper is this sure of (mean token probability) is matched as text
/// alone: the English fixtures' were all above it, the Danish ones' mostly far below.
pub const SURE_TRANSCRIPT: f32 = 0.8;
/// A transcript at least this sure, whose text match is at least `CLEAR_TEXT`
/// confident, is not overruled by the audio (the audio may still agree). `CLEAR_TEXT`
/// lets through the same texts as 0.7 did under the first confidence calibration
/// (`matcher::calibrate`): the recalibration changes what is answered, not which
/// turns the audio may overrule.
pub const FAIR_TRANSCRIPT: f32 = 0.7;
pub const CLEAR_TEXT: f32 = 0.55;

/// What the audio says about the text's best intent.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// No hints to weigh (the recognizer scored nothing, or none are in our KB).
    Nothing,
    /// The audio clearly agrees with the text.
    Agrees,
    /// Ask back about these intents (by index), the audio's choice first.
    Doubt(Vec<usize>),
}

/// Whether the audio may overrule a transcript whisper is `asr` sure of, whose text
/// match is `text_confidence` sure (the recognizer scores no phrasings when not).
pub fn may_overrule(asr: f32, text_confidence: f32) -> bool {
    asr < SURE_TRANSCRIPT && (asr < FAIR_TRANSCRIPT || text_confidence < CLEAR_TEXT)
}

/// `best`: the text match's best intent, `text_confidence` its calibrated confidence.
pub fn weigh(kb: &Kb, req: &Request, best: usize, text_confidence: f32) -> Heard {
    if !may_overrule(req.asr_confidence.unwrap_or(0.0), text_confidence) {
        return Heard::Nothing;
    }
    let known: Vec<(usize, f32)> = req
        .hints
        .iter()
        .filter_map(|h: &Hint| Some((kb.position(&h.intent_id)?, h.score)))
        .collect();
    let Some(&(heard, top)) = known.first() else {
        return Heard::Nothing;
    };
    let margin = known.get(1).map_or(f32::INFINITY, |&(_, s)| top - s);
    if heard == best && margin >= AGREE_MARGIN {
        return Heard::Agrees;
    }
    let askable = |i: &usize| matches!(kb.intents[*i].kind, Kind::Answer | Kind::Person);
    let mut ids: Vec<usize> = [heard, best].into_iter().filter(askable).collect();
    ids.dedup();
    Heard::Doubt(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(hints: &[(&str, f32)], asr: f32) -> Request {
        let mut r = Request::new("x", super::super::resolution::Language::Da);
        r.asr_confidence = Some(asr);
        r.hints = hints
            .iter()
            .map(|&(id, score)| Hint {
                intent_id: id.into(),
                score,
            })
            .collect();
        r
    }

    #[test]
    fn agreement_with_a_clear_lead_answers_and_disagreement_asks_about_both() {
        let kb = Kb::embedded().unwrap();
        let pas = kb.position("pas_koerekort.nyt_pas").unwrap();
        let affald = kb.position("affald.toemning").unwrap();
        let clear = req(
            &[("pas_koerekort.nyt_pas", 3.0), ("affald.toemning", 1.0)],
            0.5,
        );
        assert_eq!(weigh(&kb, &clear, pas, 0.9), Heard::Agrees);
        let close = req(
            &[("pas_koerekort.nyt_pas", 3.0), ("affald.toemning", 2.5)],
            0.5,
        );
        assert_eq!(weigh(&kb, &close, pas, 0.9), Heard::Doubt(vec![pas]));
        assert_eq!(
            weigh(&kb, &clear, affald, 0.9),
            Heard::Doubt(vec![pas, affald])
        );
        // whisper sure of its words: the text match decides alone.
        let sure = req(
            &[("pas_koerekort.nyt_pas", 3.0), ("affald.toemning", 1.0)],
            0.85,
        );
        assert_eq!(weigh(&kb, &sure, affald, 0.3), Heard::Nothing);
        // Fairly sure of its words and the text clear: the audio cannot overrule it;
        // a text match that is not clear is still weighed against the audio.
        let fair = req(
            &[("pas_koerekort.nyt_pas", 3.0), ("affald.toemning", 1.0)],
            0.75,
        );
        assert_eq!(weigh(&kb, &fair, affald, 0.8), Heard::Nothing);
        assert_eq!(
            weigh(&kb, &fair, affald, 0.45),
            Heard::Doubt(vec![pas, affald])
        );
        assert_eq!(weigh(&kb, &fair, pas, 0.8), Heard::Nothing);
        // Hints naming nothing we know are no hints.
        assert_eq!(
            weigh(&kb, &req(&[("other.kb", 9.0)], 0.5), pas, 0.9),
            Heard::Nothing
        );
        // Yes and no are never offered as a question.
        let heard_yes = req(&[("system.yes", 3.0), ("affald.toemning", 0.0)], 0.5);
        assert_eq!(
            weigh(&kb, &heard_yes, affald, 0.9),
            Heard::Doubt(vec![affald])
        );
    }
}
