//! Two municipalities on one gateway: a call to each one's number is greeted by that
//! municipality, gets its answer to the same question, and is put through to its own
//! queue (a sipp queue each); the call records and metrics carry the tenant.

mod common;

use std::time::Duration;

use common::*;

/// A tenant's answer to "how do I get a new passport" (the shared base has another).
fn passport_answer(town: &str) -> String {
    format!("In {town}, passports are made on Mondays only. Book a time at the town hall.")
}

/// Each tenant's greeting, different enough in sound to tell apart on the line.
fn greeting(town: &str) -> &'static str {
    if town == "nordby" {
        "Hello, this is Nordby. How can I help?"
    } else {
        "Good afternoon, you called the southern town. What do you need?"
    }
}

/// The tenant's knowledge base: only the passport answer differs from the base.
fn tenant_kb(dir: &std::path::Path, town: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{town}.toml"));
    std::fs::write(
        &path,
        format!(
            "[[intent]]\nid = \"pas_koerekort.nyt_pas\"\n\
             answer = {{ da = \"I {town} laver vi pas om mandagen.\", en = \"{}\" }}\n",
            passport_answer(town)
        ),
    )
    .unwrap();
    path
}

/// A `[[tenants]]` entry with its own greeting, knowledge base and queue (open around
/// the clock).
fn tenant(dir: &std::path::Path, town: &str, numbers: &str, queue_uri: &str) -> String {
    let queue = always_open_queue(queue_uri)
        .replace("[[transfer.queues]]", "[[tenants.queues]]")
        .replace("\"borgerservice\"", &format!("\"{town}-queue\""));
    format!(
        "[[tenants]]\nname = \"{town}\"\nnumbers = [{numbers}]\nlanguage = \"en\"\n\
         greeting = \"{}\"\nkb = {:?}\n{queue}",
        greeting(town),
        tenant_kb(dir, town),
    )
}

struct Recorded {
    call_id: String,
    tenant: String,
    queue: Option<String>,
    outcome: String,
    answer: Option<String>,
}

/// Every finished call with its first turn's answer, waiting up to 20 s for `n`.
fn recorded(gw: &Gateway, n: usize) -> Vec<Recorded> {
    let start = std::time::Instant::now();
    loop {
        let calls: Vec<Recorded> = rusqlite::Connection::open(gw.records())
            .and_then(|db| {
                let mut q = db.prepare(
                    "SELECT c.call_id, c.tenant, c.queue, c.outcome, \
                     (SELECT answer FROM turns t WHERE t.call_id = c.call_id ORDER BY seq LIMIT 1) \
                     FROM calls c WHERE c.outcome != 'in_progress' ORDER BY c.tenant",
                )?;
                let rows = q.query_map([], |r| {
                    Ok(Recorded {
                        call_id: r.get(0)?,
                        tenant: r.get(1)?,
                        queue: r.get(2)?,
                        outcome: r.get(3)?,
                        answer: r.get(4)?,
                    })
                })?;
                rows.collect()
            })
            .unwrap_or_default();
        if calls.len() >= n || start.elapsed() > Duration::from_secs(20) {
            return calls;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_tenants_each_greet_answer_and_transfer_their_own_callers() {
    let dir = tempfile::tempdir().unwrap();
    let mut nordby_queue = Queue::start("queue_answer.xml", 1, &[], 90);
    let mut sydby_queue = Queue::start("queue_answer.xml", 1, &[], 90);
    let config = format!(
        "[transfer]\nnotify_timeout_secs = 10\nring_timeout_secs = 6\n{}{}",
        tenant(
            dir.path(),
            "nordby",
            "\"+45 70 00 00 01\"",
            &nordby_queue.uri()
        ),
        tenant(
            dir.path(),
            "sydby",
            "\"70000002\", \"70000003\"",
            &sydby_queue.uri()
        ),
    );
    let gw = Gateway::start(&config);
    // Both tenants' lines are called at once: the question after the greeting, then 0
    // for a person once the answer has been given; our caller declines the REFER, so the
    // gateway bridges the call to the tenant's queue.
    let question = padded_fixture(gw.dir.path(), "en-passport", 6.0, 30.0);
    let calls: Vec<_> = [("nordby", "004570000001"), ("sydby", "70000002")]
        .into_iter()
        .map(|(town, number)| {
            let target = format!("sip:{number}@{}", gw.sip);
            let rec = gw.dir.path().join(format!("{town}.wav"));
            let play = question.clone();
            let handle = std::thread::spawn(move || {
                let args = [
                    target.as_str(),
                    "--play",
                    play.to_str().unwrap(),
                    "--record",
                    rec.to_str().unwrap(),
                    "--dtmf",
                    "0@22",
                    "--hangup-after",
                    "36",
                ];
                voicebot_call(&args);
                read_wav_8k(&rec)
            });
            (town, handle)
        })
        .collect();
    let heard: Vec<(&str, Vec<i16>)> = calls
        .into_iter()
        .map(|(town, h)| (town, h.join().expect("call")))
        .collect();

    for (queue, town) in [(&mut nordby_queue, "nordby"), (&mut sydby_queue, "sydby")] {
        let (code, messages) = queue.finish();
        assert_eq!(code, Some(0), "{town}'s queue got no call:\n{messages}");
    }
    let calls = recorded(&gw, 2);
    let log = gw.log();
    assert_eq!(calls.len(), 2, "{log}");
    for (c, town) in calls.iter().zip(["nordby", "sydby"]) {
        assert_eq!(c.tenant, town, "{log}");
        assert_eq!(c.queue.as_deref(), Some(format!("{town}-queue").as_str()));
        assert_eq!(c.outcome, "transferred", "{town}: {log}");
        let answer = c.answer.as_deref().unwrap_or_default();
        assert!(
            answer.contains(&passport_answer(town)),
            "{town} answered {answer:?}"
        );
        // The first thing the bot said is the tenant's greeting.
        let (status, json) = gw.http_get(&format!(
            "/switchboard/calls/{}?format=json",
            c.call_id.replace('@', "%40")
        ));
        assert_eq!(status, 200, "{json}");
        let view: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(view["tenant"], town);
        assert_eq!(view["lines"][0]["text"], greeting(town), "{view}");
        gw.wait_metric(
            &format!("voicebot_calls_total{{outcome=\"transferred\",tenant=\"{town}\"}}"),
            1.0,
            Duration::from_secs(5),
        );
    }
    // And each caller heard it: their own greeting, not the other's.
    for (town, pcm) in &heard {
        let other = if *town == "nordby" { "sydby" } else { "nordby" };
        let start = slice(pcm, 0.0, 6.0);
        let own = envelope_match(start, &reference_speech(greeting(town), "en"));
        let theirs = envelope_match(start, &reference_speech(greeting(other), "en"));
        // A short greeting matches less closely than the long default one does (0.9).
        assert!(
            own > 0.75 && own - theirs > 0.3,
            "{town}: own {own}, other's {theirs}"
        );
    }
}

/// The intent service shared by gateways over gRPC (`voicebot intents serve --config`)
/// answers each request from its tenant's knowledge base, a request naming no tenant
/// from the shared base, and refuses a tenant it does not serve.
#[tokio::test]
async fn the_shared_intent_service_answers_each_tenant_from_its_own_knowledge_base() {
    use voicebot_gateway::intent::breaker::BreakerConfig;
    use voicebot_gateway::intent::client::{Grpc, GrpcConfig, IntentResolver};
    use voicebot_gateway::intent::resolution::{Language, Request};

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("voicebot.toml");
    let entry = |town: &str, number: &str| {
        format!(
            "[[tenants]]\nname = \"{town}\"\nnumbers = [\"{number}\"]\nkb = {:?}\n",
            tenant_kb(dir.path(), town)
        )
    };
    let text = format!(
        "{}{}",
        entry("nordby", "70000001"),
        entry("sydby", "70000002")
    );
    std::fs::write(&config, text).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let _service = Peer::start(
        &[
            "intents",
            "serve",
            "--listen",
            &listen,
            "--config",
            config.to_str().unwrap(),
        ],
        dir.path().join("intents.log"),
        "intent service listening",
    );
    let client = Grpc::new(GrpcConfig {
        endpoint: format!("http://{listen}"),
        deadline: Duration::from_secs(5),
        breaker: BreakerConfig::default(),
    })
    .unwrap();
    let ask = |tenant: &str| {
        let mut request = Request::new("How do I get a new passport?", Language::En);
        request.tenant = tenant.into();
        client.resolve(request)
    };
    for town in ["nordby", "sydby"] {
        let r = ask(town).await.unwrap();
        assert_eq!(r.intent_id, "pas_koerekort.nyt_pas");
        assert_eq!(r.answer_text, passport_answer(town));
    }
    let base = ask("").await.unwrap();
    assert_eq!(base.intent_id, "pas_koerekort.nyt_pas");
    let base_answer = base.answer_text;
    assert!(
        !base_answer.is_empty() && !base_answer.contains("Mondays only"),
        "the shared base's answer: {base_answer}"
    );
    let refused = ask("vestby").await.unwrap_err().to_string();
    assert!(refused.contains("vestby"), "{refused}");
}
