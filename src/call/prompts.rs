//! Everything the bot says that is not a knowledge-base answer, per language. Defaults
//! are built in; `[prompts.da]` / `[prompts.en]` in the config override any of them,
//! as text or as a recording with its text (`greeting = { text = "…", audio = "x.wav" }`).

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Prompts {
    pub greeting: String,
    pub anything_else: String,
    pub what_else: String,
    pub reprompt: String,
    pub offer_person: String,
    pub not_heard: String,
    pub no_match: String,
    /// `{a}` and `{b}` become the two candidate titles.
    pub clarify: String,
    pub filler: String,
    /// `{queue}` becomes the queue's spoken name.
    pub transferring: String,
    /// Out of hours: `{queue}` and `{hours}` (the opening hours read aloud).
    pub closed: String,
    /// A transfer that reached nobody.
    pub no_agents: String,
    /// After an answer that has a page, when the caller can get an SMS.
    pub sms_offer: String,
    /// Said only once the message is safely in the outbox.
    pub sms_queued: String,
    pub sms_failed: String,
    /// After an answer that has a page, when no SMS can be sent.
    pub link_elsewhere: String,
    /// After an answer that has a page, on a web call: the page shows the link.
    pub link_on_screen: String,
    pub technical_problem: String,
    pub farewell: String,
    /// The gateway is stopping and the drain time is over: the call ends now.
    pub shutdown: String,
    /// A likely but unsure match: `{title}` becomes the intent's title.
    pub confirm: String,
    /// Before the keypad menu, after a turn that was not understood.
    pub menu_intro: String,
    /// The keypad menu: `{choices}` becomes the entries, each a `menu_choice`.
    pub menu: String,
    /// One entry's own menu: `{title}` is the entry's, `{choices}` its intents.
    pub submenu: String,
    /// One choice: `{key}` and `{title}`; choices are joined with ", ".
    pub menu_choice: String,
    /// A key that is not one of the menu's choices (the menu is read again after it).
    pub menu_invalid: String,
    /// Said after the greeting in the other language's voice, inviting its speakers to
    /// press 9; empty: not offered (only Danish lines switch to English by key).
    pub offer_english: String,
    /// Said when the caller switched to this language with 9.
    pub switched_welcome: String,
}

impl Prompts {
    pub fn danish() -> Prompts {
        Prompts {
            greeting: "Goddag, du har ringet til Eksempel Kommune. Jeg er en digital assistent. \
                       Du kan altid trykke nul for at tale med en medarbejder. Hvad kan jeg hjælpe med?"
                .into(),
            anything_else: "Er der andet, jeg kan hjælpe med?".into(),
            what_else: "Hvad kan jeg hjælpe med?".into(),
            reprompt: "Er du der stadig? Fortæl mig, hvad du vil vide.".into(),
            offer_person: "Jeg kan stille dig videre til en medarbejder. Sig medarbejder, eller tryk nul.".into(),
            not_heard: "Undskyld, det hørte jeg ikke. Vil du sige det igen?".into(),
            no_match: "Det forstod jeg desværre ikke. Prøv at sige det med andre ord, eller tryk nul for en medarbejder."
                .into(),
            clarify: "Handler det om {a}? Så tryk 1. Eller om {b}? Så tryk 2.".into(),
            filler: "Et øjeblik.".into(),
            transferring: "Jeg stiller dig videre til en medarbejder i {queue}. Et øjeblik.".into(),
            closed: "{queue} har lukket lige nu. Der er åbent {hours}.".into(),
            no_agents: "Der er desværre ingen medarbejder ledig lige nu. Ring venligst igen i vores åbningstid, \
                        eller find svaret på kommunens hjemmeside."
                .into(),
            sms_offer: "Vil du have et link på SMS? Sig ja, eller tryk 1.".into(),
            sms_queued: "Du får en SMS om lidt.".into(),
            sms_failed: "Beklager, jeg kunne ikke sende en SMS lige nu.".into(),
            link_elsewhere: "Du kan læse mere om det på kommunens hjemmeside.".into(),
            link_on_screen: "Linket står her på siden.".into(),
            technical_problem: "Beklager, jeg har tekniske problemer lige nu.".into(),
            farewell: "Tak for opkaldet. Farvel.".into(),
            shutdown: "Beklager, vi må afslutte opkaldet nu på grund af vedligeholdelse. \
                       Ring venligst igen om et par minutter. Farvel."
                .into(),
            confirm: "Vil du vide noget om {title}? Sig ja, eller tryk 1.".into(),
            menu_intro: "Jeg forstod det ikke helt.".into(),
            menu: "Tryk {choices}, eller 0 for en medarbejder. Du kan også sige, hvad det drejer sig om."
                .into(),
            submenu: "Om {title}: Tryk {choices}. Tryk stjerne for at høre valgene igen, eller 0 for en medarbejder."
                .into(),
            menu_choice: "{key} for {title}".into(),
            menu_invalid: "Det valg findes ikke.".into(),
            offer_english: "For English, press 9.".into(),
            switched_welcome: "Hej. Stil dit spørgsmål på dansk, eller tryk 0 for en medarbejder.".into(),
        }
    }

    pub fn english() -> Prompts {
        Prompts {
            greeting: "Hello, you have reached Eksempel Municipality. I am a digital assistant. \
                       You can always press zero to talk to a person. How can I help?"
                .into(),
            anything_else: "Is there anything else I can help with?".into(),
            what_else: "What can I help you with?".into(),
            reprompt: "Are you still there? Tell me what you would like to know.".into(),
            offer_person: "I can put you through to a person. Say person, or press zero.".into(),
            not_heard: "Sorry, I did not catch that. Could you say it again?".into(),
            no_match:
                "Sorry, I did not understand. Please try other words, or press zero for a person."
                    .into(),
            clarify: "Is it about {a}? Then press 1. Or about {b}? Then press 2.".into(),
            filler: "One moment.".into(),
            transferring: "I am putting you through to a person at {queue}. One moment.".into(),
            closed: "{queue} is closed right now. It is open {hours}.".into(),
            no_agents:
                "Sorry, nobody is available right now. Please call again during opening hours, \
                        or find the answer on the municipality's website."
                    .into(),
            sms_offer: "Would you like a link by text message? Say yes, or press 1.".into(),
            sms_queued: "You will get a text message shortly.".into(),
            sms_failed: "Sorry, I could not send a text message right now.".into(),
            link_elsewhere: "You can read more about it on the municipality's website.".into(),
            link_on_screen: "The link is on your screen.".into(),
            technical_problem: "Sorry, I am having technical problems right now.".into(),
            farewell: "Thank you for calling. Goodbye.".into(),
            shutdown: "Sorry, we have to end the call now for maintenance. \
                       Please call again in a few minutes. Goodbye."
                .into(),
            confirm: "Is it about {title}? Say yes, or press 1.".into(),
            menu_intro: "I did not quite understand.".into(),
            menu: "Press {choices}, or 0 for a person. You can also say what it is about."
                .into(),
            submenu: "About {title}: Press {choices}. Press star to hear the choices again, or 0 for a person."
                .into(),
            menu_choice: "{key} for {title}".into(),
            menu_invalid: "That is not one of the choices.".into(),
            offer_english: String::new(),
            switched_welcome: "Hello. Ask me your question in English, or press 0 for a person."
                .into(),
        }
    }

    pub fn clarify_with(&self, a: &str, b: &str) -> String {
        self.clarify.replace("{a}", a).replace("{b}", b)
    }

    pub fn confirm_about(&self, title: &str) -> String {
        self.confirm.replace("{title}", title)
    }

    pub fn transferring_to(&self, queue: &str) -> String {
        self.transferring.replace("{queue}", queue)
    }

    /// Out of hours, then goodbye: one text, so it can be cached per queue.
    pub fn closed_goodbye(&self, queue: &str, hours: &str) -> String {
        let closed = self
            .closed
            .replace("{queue}", queue)
            .replace("{hours}", hours);
        format!("{closed} {}", self.farewell)
    }

    pub fn no_agents_goodbye(&self) -> String {
        format!("{} {}", self.no_agents, self.farewell)
    }

    /// Every fixed text in this language's voice (templates with `{...}` are filled
    /// per call, `offer_english` is said in the other voice), for warming the prompt
    /// cache.
    pub fn all(&self) -> Vec<&str> {
        vec![
            &self.greeting,
            &self.anything_else,
            &self.what_else,
            &self.reprompt,
            &self.offer_person,
            &self.not_heard,
            &self.no_match,
            &self.filler,
            &self.no_agents,
            &self.sms_offer,
            &self.sms_queued,
            &self.sms_failed,
            &self.link_elsewhere,
            &self.link_on_screen,
            &self.technical_problem,
            &self.farewell,
            &self.shutdown,
            &self.menu_intro,
            &self.menu_invalid,
            &self.switched_welcome,
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptSet {
    pub da: Prompts,
    pub en: Prompts,
    /// Prompts a person recorded; their text stays for captions, records and staff.
    pub recordings: Vec<Recording>,
}

/// A recorded fixed prompt: played instead of synthesizing `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// The prompts table it is in ("da", "en").
    pub language: String,
    /// Its key, e.g. "greeting".
    pub prompt: String,
    pub text: String,
    /// A WAV file, any rate and sample format; relative to the working directory.
    pub audio: std::path::PathBuf,
}

impl Recording {
    /// The voice it replaces: `offer_english` is said in the English voice.
    pub fn voice_language(&self) -> &str {
        if self.prompt == "offer_english" {
            "en"
        } else {
            &self.language
        }
    }
}

/// Keys given in the file replace that language's built-in text; the rest stay.
impl<'de> Deserialize<'de> for PromptSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let given = toml::Table::deserialize(d)?;
        let mut recordings = Vec::new();
        let mut merge = |lang: &str, base: Prompts| -> Result<Prompts, D::Error> {
            let mut table = toml::Table::try_from(base).map_err(D::Error::custom)?;
            if let Some(over) = given.get(lang) {
                let over = over
                    .as_table()
                    .ok_or_else(|| D::Error::custom(format!("prompts.{lang} must be a table")))?;
                for (k, v) in over {
                    if !table.contains_key(k) {
                        return Err(D::Error::custom(format!(
                            "unknown prompt prompts.{lang}.{k}"
                        )));
                    }
                    let text = match v.as_table() {
                        Some(r) => {
                            let r = recording(lang, k, r).map_err(D::Error::custom)?;
                            let text = r.text.clone();
                            recordings.push(r);
                            toml::Value::String(text)
                        }
                        None => v.clone(),
                    };
                    table.insert(k.clone(), text);
                }
            }
            Prompts::deserialize(table)
                .map_err(|e| D::Error::custom(format!("prompts.{lang}: {e}")))
        };
        if let Some(other) = given.keys().find(|k| *k != "da" && *k != "en") {
            return Err(D::Error::custom(format!(
                "unknown prompt language prompts.{other} (da and en exist)"
            )));
        }
        let da = merge("da", Prompts::danish())?;
        let en = merge("en", Prompts::english())?;
        Ok(PromptSet { da, en, recordings })
    }
}

/// `{ text = "…", audio = "….wav" }`; only whole texts (no `{…}` filled per call).
fn recording(lang: &str, key: &str, t: &toml::Table) -> Result<Recording, String> {
    let name = format!("prompts.{lang}.{key}");
    let field = |f: &str| {
        t.get(f)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("{name}: a recording needs text and audio (strings)"))
    };
    if let Some(other) = t.keys().find(|k| *k != "text" && *k != "audio") {
        return Err(format!(
            "{name}: unknown key {other} (text and audio exist)"
        ));
    }
    let text = field("text")?;
    if text.contains('{') {
        return Err(format!(
            "{name}: a text filled in per call ({{…}}) cannot be recorded"
        ));
    }
    Ok(Recording {
        language: lang.into(),
        prompt: key.into(),
        text,
        audio: field("audio")?.into(),
    })
}

impl Default for PromptSet {
    fn default() -> Self {
        PromptSet {
            da: Prompts::danish(),
            en: Prompts::english(),
            recordings: Vec::new(),
        }
    }
}

impl PromptSet {
    pub fn for_language(&self, language: &str) -> &Prompts {
        if language == "en" {
            &self.en
        } else {
            &self.da
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        prompts: PromptSet,
    }

    #[test]
    fn a_partial_override_keeps_the_other_texts_of_its_language() {
        let f: File = toml::from_str("[prompts.en]\nfarewell = \"Bye now.\"\n").unwrap();
        assert_eq!(f.prompts.en.farewell, "Bye now.");
        assert_eq!(f.prompts.en.filler, Prompts::english().filler);
        assert_eq!(f.prompts.da, Prompts::danish());
    }

    #[test]
    fn the_confirm_and_menu_prompts_can_be_overridden_too() {
        let f: File = toml::from_str(
            "[prompts.da]\nconfirm = \"Handler det om {title}?\"\nmenu_choice = \"tast {key} for {title}\"\n",
        )
        .unwrap();
        assert_eq!(
            f.prompts.da.confirm_about("affald"),
            "Handler det om affald?"
        );
        assert_eq!(f.prompts.da.menu_choice, "tast {key} for {title}");
        assert_eq!(f.prompts.en, Prompts::english());
        // Only Danish lines offer English, in English.
        assert_eq!(f.prompts.da.offer_english, "For English, press 9.");
        assert!(Prompts::english().offer_english.is_empty());
    }

    #[test]
    fn a_recorded_prompt_keeps_its_text() {
        let f: File = toml::from_str(
            "[prompts.da]\ngreeting = { text = \"Goddag.\", audio = \"prompts/da/greeting.wav\" }\n",
        )
        .unwrap();
        assert_eq!(f.prompts.da.greeting, "Goddag.");
        assert_eq!(
            f.prompts.recordings,
            [Recording {
                language: "da".into(),
                prompt: "greeting".into(),
                text: "Goddag.".into(),
                audio: "prompts/da/greeting.wav".into(),
            }]
        );
        for bad in [
            "greeting = { audio = \"g.wav\" }",
            "greeting = { text = \"x\", audio = \"g.wav\", volume = 2 }",
            "confirm = { text = \"Om {title}?\", audio = \"c.wav\" }",
        ] {
            let e = toml::from_str::<File>(&format!("[prompts.da]\n{bad}\n"))
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"))
                .to_string();
            assert!(e.contains("prompts.da."), "{e}");
        }
    }

    #[test]
    fn unknown_prompt_keys_are_named() {
        let e = toml::from_str::<File>("[prompts.da]\nfarvel = \"x\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("prompts.da.farvel"), "{e}");
        let e = toml::from_str::<File>("[prompts.sv]\nfarewell = \"x\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("prompts.sv"), "{e}");
    }
}
