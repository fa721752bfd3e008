//! The prompt cache, warmed at start with everything each tenant can say that is
//! known before a call: fixed prompts, knowledge-base answers, menus, transfer texts,
//! and the questions that name an intent. Texts joined from these per call ("{link
//! elsewhere} {anything else}") are pieced together from them (`PromptCache::speak`).

use std::sync::Arc;

use crate::call::menu::Menu;
use crate::call::prompts::PromptSet;
use crate::config::{Config, TransferConfig};
use crate::intent::kb::Kb;
use crate::intent::resolution::Language;
use crate::transfer::route::Router;
use crate::tts::cache::PromptCache;

/// What one tenant says: its prompts, answers, menu and queues.
pub(super) struct Warm {
    pub prompts: PromptSet,
    pub kb: Kb,
    pub menu: Arc<Menu>,
    pub transfer: TransferConfig,
}

/// Synthesizes every fixed prompt and knowledge-base answer of every tenant before the
/// first call, so no answer waits for synthesis. `done` turns true when it is over,
/// warmed or not.
pub(super) async fn warm_prompts(
    tts: PromptCache,
    config: Arc<Config>,
    tenants: Vec<Warm>,
    done: tokio::sync::watch::Sender<bool>,
) {
    warm_all(tts, config, tenants).await;
    done.send_replace(true);
}

async fn warm_all(tts: PromptCache, config: Arc<Config>, tenants: Vec<Warm>) {
    let started = std::time::Instant::now();
    // What every Danish call says first, for every tenant, before the rest: calls taken
    // while the cache warms must not each synthesize the offer of English in the
    // neural voice (its one thread fell behind and its queue grew with every call).
    // English goes after Danish, so the neural voice is free for the first calls.
    for t in &tenants {
        if let Err(e) = warm_first_words(&tts, &config, &t.prompts).await {
            tracing::error!(error = %e, "prompt cache not warmed");
            return;
        }
    }
    for t in &tenants {
        if let Err(e) = warm(&tts, &config, t).await {
            tracing::error!(error = %e, "prompt cache not warmed");
            return;
        }
    }
    let (entries, bytes) = tts.size();
    tracing::info!(
        entries,
        mib = bytes as f64 / 1048576.0,
        secs = started.elapsed().as_secs_f32(),
        "prompt cache warmed"
    );
}

/// The Danish fixed prompts, and the offer of English said after the Danish greeting
/// in the English voice.
async fn warm_first_words(
    tts: &PromptCache,
    config: &Config,
    prompts: &PromptSet,
) -> anyhow::Result<()> {
    let voice = config.tts.voice("da");
    for text in prompts.da.all() {
        tts.warm(text, voice).await?;
    }
    let offer = &prompts.da.offer_english;
    if !offer.is_empty() {
        tts.warm(offer, config.tts.voice("en")).await?;
    }
    Ok(())
}

/// Everything else, a language at a time: fixed prompts (a cache hit for those warmed
/// first), transfer texts, knowledge-base answers and menus.
async fn warm(tts: &PromptCache, config: &Config, tenant: &Warm) -> anyhow::Result<()> {
    let Warm {
        prompts,
        kb,
        menu,
        transfer,
    } = tenant;
    for lang in ["da", "en"] {
        let voice = config.tts.voice(lang);
        for text in prompts.for_language(lang).all() {
            tts.warm(text, voice).await?;
        }
        let prompts = prompts.for_language(lang);
        tts.warm(&prompts.no_agents_goodbye(), voice).await?;
        // What a transfer says per queue is known from config: cache it too.
        for queue in Router::from_config(transfer)?.queues() {
            let spoken = queue.spoken(lang);
            tts.warm(&prompts.transferring_to(spoken), voice).await?;
            let hours = queue.hours.describe(lang);
            tts.warm(&prompts.closed_goodbye(spoken, &hours), voice)
                .await?;
        }
        let language: Language = lang.parse().map_err(anyhow::Error::msg)?;
        for answer in kb.intents.iter().filter_map(|i| i.answer.as_ref()) {
            tts.warm(answer.get(language), voice).await?;
        }
        // Questions that name intents by title, by their sentences per title: any
        // pair of a clarifying question is pieced together from the cache, and the
        // confirming question shares its sentences with it where the wording does
        // (English: "Is it about {title}?").
        for intent in &kb.intents {
            let title = intent.title.get(language);
            tts.warm_sentences(&prompts.confirm_about(title), voice)
                .await?;
            tts.warm_sentences(&prompts.clarify_with(title, title), voice)
                .await?;
        }
        for text in menu.all_spoken(prompts, language) {
            tts.warm(&text, voice).await?;
        }
    }
    Ok(())
}
