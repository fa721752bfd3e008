//! Each tenant's own running pieces, built from its `[[tenants]]` entry over the shared
//! settings: its knowledge base (merged, watched, with its own matcher), prompts, menu,
//! queues and SMS sender. An error here stops the start and names the tenant.

use std::sync::Arc;

use anyhow::Context;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::call::menu::Menu;
use crate::call::prompts::PromptSet;
use crate::config::{Config, TransferConfig};
use crate::intent::client::{self, IntentResolver};
use crate::intent::kb::Kb;
use crate::intent::reload::{self, SharedMatcher};
use crate::tenant::kb::KbSources;
use crate::tenant::TenantConfig;
use crate::transfer::route::Router;

pub struct TenantParts {
    pub name: String,
    /// Its lines' language (before `[stt] languages`).
    pub language: String,
    pub prompts: PromptSet,
    /// As loaded at start (what the prompt cache is warmed with).
    pub kb: Kb,
    pub menu: Arc<Menu>,
    pub intents: Arc<dyn IntentResolver>,
    /// Its knowledge base's matcher, kept current by a watcher on its files.
    pub matcher: SharedMatcher,
    pub transfer: TransferConfig,
    pub router: Router,
    pub sms_from: Option<String>,
}

/// Builds `tenant`'s pieces; `remote` is the shared remote intent service, if any
/// (then it decides the answers, told the tenant in each request).
pub fn build(
    config: &Config,
    tenant: &TenantConfig,
    remote: Option<Arc<dyn IntentResolver>>,
    cancel: CancellationToken,
) -> anyhow::Result<TenantParts> {
    let name = &tenant.name;
    let language = tenant.language(&config.stt.language).to_string();
    let prompts = PromptSet::deserialize(tenant.prompts(&config.prompts, &config.stt.language))
        .map_err(|e| anyhow::anyhow!("tenant \"{name}\": [prompts]: {e}"))?;
    let sources = KbSources {
        tenant: name.clone(),
        base: config.intent.kb.clone(),
        own: tenant.kb.clone(),
    };
    let load: reload::Loader = {
        let sources = sources.clone();
        Arc::new(move || sources.load().map_err(|e| e.to_string()))
    };
    let (intents, matcher) =
        client::over_files(sources.files(), load, remote, cancel).map_err(anyhow::Error::msg)?;
    let kb = reload::current(&matcher).kb().clone();
    let menu = Arc::new(Menu::from_kb(&kb));
    let transfer = tenant.transfer(&config.transfer);
    let router =
        Router::from_config(&transfer).with_context(|| format!("tenant \"{name}\": its queues"))?;
    if let Some(from) = &tenant.sms_from {
        crate::sms::check_from(from).with_context(|| format!("tenant \"{name}\": sms_from"))?;
    }
    tracing::info!(tenant = %name, %language, intents = kb.intents.len(),
        queues = router.queues().len(), "tenant ready");
    Ok(TenantParts {
        name: name.clone(),
        language,
        prompts,
        kb,
        menu,
        intents,
        matcher,
        transfer,
        router,
        sms_from: tenant.sms_from.clone(),
    })
}
