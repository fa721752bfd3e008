//! What the SMS says: the knowledge base's `sms_text` for the answer (written to lead
//! into the link), else the answer's title, then the link on its own line so phones
//! make it tappable.

use crate::intent::kb::Kb;
use crate::intent::resolution::{Language, Resolution};

/// `sms_text` wins over `title`; with neither, the link alone.
pub fn compose(link: &str, sms_text: Option<&str>, title: Option<&str>) -> String {
    let lead = sms_text.map(str::trim).filter(|s| !s.is_empty());
    match (lead, title.map(str::trim).filter(|s| !s.is_empty())) {
        (Some(lead), _) => format!("{lead}\n{link}"),
        (None, Some(title)) => format!("{title}:\n{link}"),
        (None, None) => link.to_string(),
    }
}

/// The SMS for a resolved answer, or `None` if it has no link to send. The title comes
/// from the local knowledge base (a remote intent service sends `sms_text` instead).
pub fn for_resolution(res: &Resolution, kb: Option<&Kb>, lang: Language) -> Option<String> {
    let link = res.link_url.as_deref()?;
    let title = kb
        .and_then(|kb| kb.intents.iter().find(|i| i.id == res.intent_id))
        .map(|i| i.title.get(lang));
    Some(compose(link, res.sms_text.as_deref(), title))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::resolution::{Action, Kind};

    fn resolution(link: Option<&str>, sms_text: Option<&str>) -> Resolution {
        Resolution {
            action: Action::Answer,
            intent_id: "affald.toemning".into(),
            kind: Kind::Answer,
            topic: "affald".into(),
            answer_text: "Du kan se ...".into(),
            link_url: link.map(String::from),
            sms_text: sms_text.map(String::from),
            confidence: 0.9,
            candidates: Vec::new(),
            reason: "match".into(),
        }
    }

    #[test]
    fn sms_text_then_title_then_link_alone() {
        let link = "https://kommune.example.org/affald/toemningskalender";
        assert_eq!(
            compose(link, Some("Tømningskalender for din adresse:"), Some("T")),
            format!("Tømningskalender for din adresse:\n{link}")
        );
        assert_eq!(
            compose(link, Some("  "), Some("Tømningskalender")),
            format!("Tømningskalender:\n{link}")
        );
        assert_eq!(compose(link, None, None), link);
    }

    #[test]
    fn resolution_uses_the_knowledge_base_title() {
        let kb = Kb::embedded().unwrap();
        let res = resolution(Some("https://kommune.example.org/x"), None);
        assert_eq!(
            for_resolution(&res, Some(&kb), Language::En).unwrap(),
            "Waste collection calendar:\nhttps://kommune.example.org/x"
        );
        assert_eq!(
            for_resolution(&res, None, Language::Da).unwrap(),
            "https://kommune.example.org/x"
        );
        assert_eq!(
            for_resolution(&resolution(None, Some("x")), Some(&kb), Language::Da),
            None
        );
    }
}
