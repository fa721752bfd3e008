//! `voicebot serve`: wires the SIP stack, the call layer and the HTTP side together.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::call::conversation::Settings;
use crate::call::driver::{self, CallContext};
use crate::call::prompts::PromptSet;
use crate::call::turn_metrics::TurnMetrics;
use crate::call::understanding::Understanding;
use crate::config::Config;
use crate::intent::kb::Kb;
use crate::intent::matcher::Matcher;
use crate::intent::reload;
use crate::intent::resolution::Language;
use crate::ops::http::{self, OpsState, Readiness};
use crate::ops::live::LiveCalls;
use crate::ops::metrics::Metrics;
use crate::ops::prompts::PromptSource;
use crate::ops::records::{self, RecordWriter, Records};
use crate::ops::teach::Teacher;
use crate::rtp::counters::RtpCounters;
use crate::sip::access::{Access, AccessSettings};
use crate::sip::dialogs::SipStats;
use crate::sip::digest::Authenticator;
use crate::sip::stack::{self, Stack, TlsListen};
use crate::sip::tls;
use crate::sip::transport::TcpLimits;
use crate::sip::uas;
use crate::sms::Sms;
use crate::stt::engine::SttError;
use crate::stt::recognizer::{Recognizer, SttOptions};
use crate::stt::silero::SileroModel;
use crate::tenant::Tenants;
use crate::transfer::bridge::DialSettings;
use crate::transfer::route::Router;
use crate::transfer::{Method, Transferer};
use crate::tts::cache::PromptCache;
use crate::tts::engines::Engines;
use crate::web::WebCalls;

mod drain;
mod tenants;
mod warm;
pub use drain::Drain;
use warm::{warm_prompts, Warm};

pub struct Running {
    pub active_calls: Gauge,
    /// Answered turns, for benchmarks.
    pub turns: TurnMetrics,
    pub sip: std::net::SocketAddr,
    pub http: std::net::SocketAddr,
    /// Stops the gateway without dropping a caller.
    pub drain: Drain,
    /// True once the prompt cache has warmed (benchmarks measure the steady state).
    pub prompts_warm: tokio::sync::watch::Receiver<bool>,
}

pub async fn start(config: Config, cancel: CancellationToken) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    crate::intent::meaning::install(config.intent.second_opinion);
    let stt = load_recognizer(&config)?;
    let vad = load_vad(&config)?;
    let tcp = TcpLimits {
        max_connections: config.sip.tcp_max_connections,
        idle: Duration::from_secs(config.sip.tcp_idle_secs),
    };
    let tls = match (
        &config.sip.tls_listen,
        &config.sip.tls_cert,
        &config.sip.tls_key,
    ) {
        (Some(listen), Some(cert), Some(key)) => Some(TlsListen {
            listen: *listen,
            tls: tls::load(cert, key)?,
            limits: tcp,
        }),
        _ => None,
    };
    let started = stack::start(config.sip.listen, Some(tcp), tls, cancel.clone()).await?;
    let sip = started.stack.local;
    let guard = started.stack.guard.clone();
    let sip_stack = Arc::new(started.stack);
    let active_calls = Gauge::default();
    let rtp = Arc::new(RtpCounters::default());
    let mut metrics = Metrics::default();
    metrics.gauge("voicebot_calls_active", "Calls in progress", &active_calls);
    metrics.collector(Box::new(SipStats(sip_stack.dialogs.clone())));
    metrics.counter(
        "voicebot_sip_rejected",
        "Malformed SIP requests answered with an error",
        &guard.rejected,
    );
    metrics.counter(
        "voicebot_sip_dropped",
        "Malformed SIP messages dropped unanswered",
        &guard.dropped,
    );
    rtp.register(&mut metrics);
    metrics.gauge(
        "voicebot_stt_queue_depth",
        "Utterances waiting for a recognizer worker",
        &stt.metrics.queue_depth,
    );
    metrics.counter(
        "voicebot_stt_overloads",
        "Utterances refused because the recognizer queue was full",
        &stt.metrics.overloads,
    );
    metrics.counter(
        "voicebot_stt_utterances",
        "Utterances sent to the recognizer",
        &stt.metrics.utterances,
    );
    let admission = uas::Admission {
        active: active_calls.clone(),
        max_calls: config.sip.max_calls,
        retry_after_secs: config.sip.retry_after_secs,
        codecs: config.sip.codecs.clone(),
        srtp: config.sip.srtp,
        media_ip: config.sip.listen.ip(),
        access: Arc::new(Mutex::new(Access::new(access_settings(&config.sip)))),
        rate_limited: Counter::default(),
        authenticator: Arc::new(Authenticator::new(rand::random())),
        draining: CancellationToken::new(),
    };
    metrics.counter(
        "voicebot_sip_rate_limited",
        "INVITEs from untrusted sources refused by [sip.rate_limit] or reserved_for_trusted",
        &admission.rate_limited,
    );
    let draining = admission.draining.clone();
    let web = config
        .webrtc
        .enabled
        .then(|| WebCalls::new(&config.webrtc, admission.clone()))
        .transpose()?;
    let (calls_tx, calls_rx) = mpsc::channel(64);
    tokio::spawn(uas::serve(
        sip_stack.clone(),
        started.incoming,
        admission,
        calls_tx,
    ));
    let remote = crate::intent::client::remote(&config.intent)?;
    let tenants = config
        .tenants()
        .iter()
        .map(|t| tenants::build(&config, t, remote.clone(), cancel.clone()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let first = &tenants[0];
    if config.stt.rescore && config.stt.rescore_budget > 0 {
        // A turn's budget covers about two phrasings of each candidate: those first.
        for t in &tenants {
            let matcher = reload::current(&t.matcher);
            for lang in Language::ALL {
                stt.warm_priors(lang.as_str(), matcher.phrasings_by_round(lang, 2));
            }
        }
    }
    let (tts, prompt_sources) = voices(&config, &first.prompts)?;
    for t in &tenants[1..] {
        record_prompts(&tts, &config, &t.prompts)?;
    }
    // Warm in the background: calls are answered at once, and a prompt not yet cached
    // is synthesized on the spot (espeak is fast; the cache takes it off the hot path).
    let (warm_done, prompts_warm) = tokio::sync::watch::channel(false);
    tokio::spawn(warm_prompts(
        tts.clone(),
        config.clone(),
        tenants
            .iter()
            .map(|t| Warm {
                prompts: t.prompts.clone(),
                kb: t.kb.clone(),
                menu: t.menu.clone(),
                transfer: t.transfer.clone(),
            })
            .collect(),
        warm_done,
    ));
    // Readiness asks the first tenant's resolver: they share a remote service, if any,
    // and an in-process one is always ready.
    let intents = first.intents.clone();
    let c = &config.conversation;
    let settings = Settings {
        no_input: Duration::from_secs_f32(c.no_input_secs),
        filler_after: Duration::from_millis(c.filler_ms),
        max_no_match: c.max_no_match,
        max_turns: c.max_turns,
        barge_in_greeting: c.barge_in_greeting,
    };
    let turn_metrics = TurnMetrics::default();
    turn_metrics.register(&mut metrics);
    let transfer = transferer(&config, sip_stack, rtp.clone(), first.router.clone());
    metrics.register(
        "voicebot_transfers",
        "Transfer attempts by method (refer, bridge) and result",
        transfer.counters.clone(),
    );
    let sms_store = config.storage.store(config.sms.outbox_path());
    let sms = Sms::start(&config.sms, sms_store.clone(), cancel.clone()).await?;
    match &sms {
        Some(sms) => sms.metrics().register(&mut metrics),
        None => tracing::info!("no SMS sender configured: links are not offered by SMS"),
    }
    let record_store = config.storage.store(config.privacy.record_path());
    let record_failures = Counter::default();
    metrics.counter(
        "voicebot_call_record_failures",
        "Call record writes (SQLite or PostgreSQL) that failed",
        &record_failures,
    );
    tracing::info!(records = %record_store.backend, node = %record_store.node, "call records");
    let store = record_store.clone();
    // Blocking (and for PostgreSQL driven through this runtime): off the async threads.
    let stored = tokio::task::spawn_blocking(move || {
        let mut stored = Records::open(&store)?;
        let interrupted = stored.mark_interrupted()?;
        if interrupted > 0 {
            tracing::warn!(
                calls = interrupted,
                "calls cut off by the last stop: recorded as interrupted"
            );
        }
        Ok::<_, records::RecordsError>(stored)
    })
    .await??;
    let records = RecordWriter::spawn(stored, record_failures);
    tokio::spawn(records::retention_task(
        records.clone(),
        config.privacy.retention_days,
        cancel.clone(),
    ));
    let live = LiveCalls::with_records(500, records);
    let teach = match &config.intent.kb {
        None => None,
        Some(kb) => {
            // What staff teach goes into the shared base's overlay. With one tenant its
            // matcher is the base's; with several, teaching previews and publishes on a
            // base-only matcher, and every tenant's watcher merges the new overlay.
            let matcher = if config.tenants.is_empty() {
                first.matcher.clone()
            } else {
                reload::shared(Matcher::new(Kb::load(kb)?))
            };
            Some(Arc::new(Teacher::new(
                kb.clone(),
                matcher,
                record_store.clone(),
            )))
        }
    };
    let http = http::serve(
        &config.http,
        Arc::new(OpsState {
            metrics,
            live: live.clone(),
            records: record_store,
            prompts: prompt_sources,
            teach,
            sms_outbox: sms.as_ref().map(|_| sms_store.clone()),
            // `transferer` above has refused a zone that is not an IANA name.
            timezone: config
                .transfer
                .timezone
                .parse()
                .unwrap_or(chrono_tz::Europe::Copenhagen),
            readiness: Readiness {
                // Both are done above, or `start` has returned an error.
                speech_model_loaded: true,
                sip_listener: Some(sip),
                intents: intents.clone(),
                draining: draining.clone(),
            },
        }),
        web.clone().map(WebCalls::routes),
        cancel.clone(),
    )
    .await?;
    let switchboard_url = config
        .transfer
        .switchboard_url
        .clone()
        .unwrap_or_else(|| format!("http://{http}"));
    let turns = turn_metrics.clone();
    let end_calls = CancellationToken::new();
    let drain = Drain {
        active_calls: active_calls.clone(),
        draining,
        end_calls: end_calls.clone(),
        live: live.clone(),
        sms: sms.clone(),
        cancel: cancel.clone(),
    };
    let configs = config.tenants();
    let contexts = configs
        .iter()
        .zip(tenants)
        .map(|(c, t)| {
            let ctx = Arc::new(CallContext {
                tenant: t.name,
                language: t.language,
                metrics: turn_metrics.clone(),
                config: config.clone(),
                rtp: rtp.clone(),
                stt: Arc::new(stt.clone()),
                vad: vad.clone(),
                understanding: Understanding {
                    config: config.stt.clone(),
                    matcher: t.matcher,
                },
                tts: tts.clone(),
                intents: t.intents,
                prompts: t.prompts,
                menu: t.menu,
                settings: settings.clone(),
                transfer: Transferer {
                    router: t.router,
                    ..transfer.clone()
                },
                sms: sms.clone(),
                sms_from: t.sms_from,
                live: live.clone(),
                switchboard_url: switchboard_url.clone(),
                end_calls: end_calls.clone(),
            });
            (c, ctx)
        })
        .collect();
    let tenants = Arc::new(Tenants::new(contexts));
    if let Some(web) = &web {
        // A web call dials no number: it is the first tenant's.
        web.open(tenants.first().1.clone());
    }
    tokio::spawn(driver::accept_calls(calls_rx, tenants));
    match config.sip.tls_listen {
        Some(tls) => {
            tracing::info!(%sip, %tls, %http, "voicebot listening (SIP UDP+TCP, TLS, HTTP)")
        }
        None => tracing::info!(%sip, %http, "voicebot listening (SIP UDP+TCP, HTTP)"),
    }
    Ok(Running {
        active_calls,
        turns,
        sip,
        http,
        drain,
        prompts_warm,
    })
}

/// The engines from `[tts]`, the recorded prompts in the cache (a file that cannot be
/// read stops the start, naming it), and what speaks each prompt, for the dashboard.
fn voices(
    config: &Config,
    prompts: &PromptSet,
) -> anyhow::Result<(PromptCache, Vec<PromptSource>)> {
    let engines = Arc::new(Engines::from_config(&config.tts)?);
    let tts = PromptCache::new(engines.clone());
    record_prompts(&tts, config, prompts)?;
    let mut sources = Vec::new();
    for language in ["da", "en"] {
        let table = toml::Table::try_from(prompts.for_language(language))?;
        for (prompt, text) in table {
            let text = text.as_str().unwrap_or_default().to_string();
            let recording = prompts
                .recordings
                .iter()
                .find(|r| r.language == language && r.prompt == prompt)
                .map(|r| r.audio.display().to_string());
            let voice = match &recording {
                Some(_) => "recording".into(),
                None => {
                    let lang = if prompt == "offer_english" {
                        "en"
                    } else {
                        language
                    };
                    engines.describe(config.tts.voice(lang))
                }
            };
            sources.push(PromptSource {
                language: language.into(),
                prompt,
                text,
                recording,
                voice,
            });
        }
    }
    Ok((tts, sources))
}

/// Puts the recorded prompts in the cache, so they are played instead of synthesized.
fn record_prompts(tts: &PromptCache, config: &Config, prompts: &PromptSet) -> anyhow::Result<()> {
    for r in &prompts.recordings {
        tts.record(&r.text, config.tts.voice(r.voice_language()), &r.audio)?;
        tracing::info!(prompt = %format!("{}.{}", r.language, r.prompt),
            file = %r.audio.display(), "recorded prompt");
    }
    Ok(())
}

fn access_settings(sip: &crate::config::SipConfig) -> AccessSettings {
    AccessSettings {
        trusted: sip.trusted.clone(),
        trunks: sip.trunks.clone(),
        open: sip.open,
        per_source_per_sec: sip.rate_limit.per_source_per_sec,
        burst: sip.rate_limit.burst,
        max_calls_per_source: sip.rate_limit.max_calls_per_source,
        untrusted_lines: sip.untrusted_lines(),
        retry_after: Duration::from_secs(sip.retry_after_secs.into()),
    }
}

/// The transfer side with `router` (the first tenant's queues; each tenant's context
/// swaps in its own).
fn transferer(
    config: &Config,
    stack: Arc<Stack>,
    rtp: Arc<RtpCounters>,
    router: Router,
) -> Transferer {
    let t = &config.transfer;
    Transferer {
        stack,
        router,
        method: if t.method == "bridge" {
            Method::Bridge
        } else {
            Method::Refer
        },
        notify_timeout: Duration::from_secs(t.notify_timeout_secs),
        refer_to_max: t.refer_to_max_bytes,
        dial: DialSettings {
            codecs: config.sip.codecs.clone(),
            rtp_ip: config.sip.listen.ip(),
            public_ip: config.public_ip(),
            rtp_ports: config.rtp.ports,
            jitter_ms: config.rtp.jitter_ms,
            media_timeout: Duration::from_secs(config.rtp.timeout_secs),
            ring_timeout: Duration::from_secs(t.ring_timeout_secs),
            outbound_proxy: t.outbound_proxy.clone(),
        },
        counters: Default::default(),
        rtp,
    }
}

/// Silero VAD for the calls' pauses, unless `[stt] vad_pause_ms = 0`.
fn load_vad(config: &Config) -> anyhow::Result<Option<SileroModel>> {
    if config.stt.vad_pause_ms == 0 {
        return Ok(None);
    }
    let path = config.stt.vad_model_path();
    let model = SileroModel::load(&config.stt.onnxruntime_path(), &path).map_err(|e| {
        anyhow::anyhow!("{e} (models/fetch.sh vad onnxruntime, or [stt] vad_pause_ms = 0)")
    })?;
    tracing::info!(model = %path.display(), "voice activity model loaded");
    Ok(Some(model))
}

pub fn load_recognizer(config: &Config) -> Result<Recognizer, SttError> {
    let defaults = SttOptions::default();
    let opts = SttOptions {
        workers: config.stt.workers.unwrap_or(defaults.workers),
        // Each call has at most one decode in flight, so a queue as long as the lines
        // are many is bounded and never refuses a caller's turn.
        queue: config.stt.queue.unwrap_or(config.sip.max_calls),
        rescore_budget: config.stt.rescore_budget,
        rescore_vocab: config.stt.rescore_vocab,
        beam_size: config.stt.beam_size,
        idle_threads: config.stt.idle_threads,
        ..defaults
    };
    let path = crate::stt::model_path(&config.stt.model);
    let recognizer = Recognizer::load(&path, opts)?;
    tracing::info!(model = %path.display(), "speech model loaded");
    Ok(recognizer)
}
