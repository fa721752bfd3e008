//! The real base model on the telephone fixtures, with the gateway's own settings.

use voicebot_gateway::bench::fixtures::{self, word_error_rate};
use voicebot_gateway::config::SttConfig;
use voicebot_gateway::stt::recognizer::{Recognizer, SttOptions};

#[tokio::test(flavor = "multi_thread")]
async fn english_telephone_fixtures_contain_their_key_words_and_danish_is_measured() {
    let model = voicebot_gateway::stt::model_path("base");
    let stt = Recognizer::load(&model, SttOptions::default()).expect("models/fetch.sh base");
    let cfg = SttConfig::default();
    let mut missing = Vec::new();
    let mut wer = std::collections::BTreeMap::<String, Vec<f32>>::new();
    for f in fixtures::load().unwrap() {
        let pcm = voicebot_gateway::audio::wav::read_at(&f.telephone_wav(), 8000).unwrap();
        let t = stt
            .transcribe_8k(&pcm, &f.lang, cfg.prompt_for(&f.lang))
            .await
            .unwrap();
        let text = t.text.to_lowercase();
        let w = word_error_rate(&f.text, &text);
        wer.entry(f.lang.clone()).or_default().push(w);
        println!(
            "{:<28} wer {:>4.0}%  {:.2}s  {}",
            f.id,
            w * 100.0,
            t.decode_secs,
            t.text
        );
        if f.lang == "en" {
            for k in &f.keywords {
                if !text.contains(k.as_str()) {
                    missing.push(format!("{}: {k:?} not in {text:?}", f.id));
                }
            }
        }
    }
    for (lang, ws) in &wer {
        println!(
            "{lang}: mean word error rate {:.1}% over {} fixtures",
            100.0 * ws.iter().sum::<f32>() / ws.len() as f32,
            ws.len()
        );
    }
    assert!(
        missing.is_empty(),
        "English key words missed:\n{}",
        missing.join("\n")
    );
}

/// A decode abandoned (the caller went on speaking) says so, and leaves the worker
/// able to decode the next utterance.
#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_decode_leaves_the_worker_usable() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use voicebot_gateway::intent::candidates::PhraseSet;
    use voicebot_gateway::stt::engine::{Abandon, Decode, SpeechToText, SttError, Turn};
    use voicebot_gateway::stt::forced::CandidateSource;

    let stt = one_worker();
    let f = fixtures::load()
        .unwrap()
        .into_iter()
        .find(|f| f.lang == "en" && !f.keywords.is_empty())
        .unwrap();
    let audio_16k = telephone_16k(&f);
    let turn = Turn {
        language: "en".into(),
        ..Turn::default()
    };
    let decode = |abandon| Decode {
        audio_16k: audio_16k.clone(),
        turn: turn.clone(),
        abandon,
    };
    let abandoned = stt
        .submit(decode(Some(Arc::new(AtomicBool::new(true)))))
        .unwrap()
        .await;
    assert!(
        matches!(abandoned, Err(SttError::Abandoned)),
        "{abandoned:?}"
    );
    // Then decodes that may be abandoned but are not, and one that may not be: each
    // is heard whole (a callback reading the wrong memory once aborted them at random).
    for flag in [
        Some(Arc::new(AtomicBool::new(false))),
        Some(Arc::default()),
        None,
    ] {
        let next = stt.submit(decode(flag)).unwrap().await.unwrap();
        let text = next.text.to_lowercase();
        assert!(
            f.keywords.iter().any(|k| text.contains(k.as_str())),
            "{text:?} has none of {:?}",
            f.keywords
        );
    }

    // The caller goes on speaking once the free transcript is made (the candidates
    // are asked for then): the knowledge-base scoring, which whisper's abort callback
    // does not reach, stops too. Without the flag the same scoring gives hints.
    let scored = |flag: Option<Abandon>| {
        let set_now = flag.clone();
        let candidates: CandidateSource = Arc::new(move |_: &str, _: &str, _: f32| {
            if let Some(f) = &set_now {
                f.store(true, Ordering::Relaxed);
            }
            vec![PhraseSet {
                intent_id: "any".into(),
                phrasings: vec!["when is the town hall open".into()],
                text_rank: Some(0),
            }]
        });
        Decode {
            audio_16k: audio_16k.clone(),
            turn: Turn {
                candidates: Some(candidates),
                rescore_below: 2.0,
                ..turn.clone()
            },
            abandon: flag,
        }
    };
    let heard = stt.submit(scored(None)).unwrap().await.unwrap();
    assert!(!heard.hints.is_empty(), "{heard:?}");
    let stopped = stt.submit(scored(Some(Arc::default()))).unwrap().await;
    assert!(matches!(stopped, Err(SttError::Abandoned)), "{stopped:?}");
}

/// A phrasing too long to score (a knowledge base's or a taught example of many
/// words) is left out of the scoring; the others are scored. whisper-rs once turned
/// "too many tokens" into a length and read past its buffer: the gateway crashed.
#[tokio::test(flavor = "multi_thread")]
async fn a_phrasing_too_long_to_score_is_left_out_not_crashed_on() {
    use std::sync::Arc;
    use voicebot_gateway::intent::candidates::PhraseSet;
    use voicebot_gateway::stt::engine::{Decode, SpeechToText, Turn};
    use voicebot_gateway::stt::forced::CandidateSource;

    let stt = one_worker();
    let f = fixtures::load()
        .unwrap()
        .into_iter()
        .find(|f| f.lang == "da")
        .unwrap();
    // 200 characters, as much as the teach page takes for an example: ~70 tokens.
    let long = "Jeg ringer fordi min mor på enoghalvfems har fået et brev om ejendomsskat \
                og ejendomsvurdering og genoptræning og hjemmehjælp og hun forstår ikke \
                hvad kommunen vil have hende til at gøre nu";
    assert!(long.chars().count() <= 200);
    let candidates: CandidateSource = Arc::new(move |_: &str, _: &str, _: f32| {
        vec![
            PhraseSet {
                intent_id: "long".into(),
                phrasings: vec![long.into()],
                text_rank: Some(0),
            },
            PhraseSet {
                intent_id: "short".into(),
                phrasings: vec!["hvornår har rådhuset åbent".into()],
                text_rank: Some(1),
            },
        ]
    });
    let heard = stt
        .submit(Decode {
            audio_16k: telephone_16k(&f),
            turn: Turn {
                language: "da".into(),
                candidates: Some(candidates),
                rescore_below: 2.0,
                ..Turn::default()
            },
            abandon: None,
        })
        .unwrap()
        .await
        .unwrap();
    let ids: Vec<&str> = heard.hints.iter().map(|h| h.intent_id.as_str()).collect();
    assert_eq!(ids, ["short"], "{heard:?}");
}

/// The build patches its copy of whisper.cpp (`scripts/whisper-patch.cmake`) so that one
/// decoder call returns the logits of every token fed, and takes a tree of tokens; without
/// it the knowledge-base scoring falls back to a run of tokens per branch, or a token per
/// call (about three times slower). An upgrade that stops the patch from applying must
/// fail here, not slow calls down unnoticed.
#[test]
fn one_decoder_call_takes_a_tree_of_tokens_and_returns_every_row() {
    use voicebot_gateway::stt::trie::Feed;
    let (ctx, mut state) = base_model_on(&[0.0f32; 16_000]);
    let feed = voicebot_gateway::stt::forced::feeding(&ctx, &mut state).unwrap();
    assert_eq!(feed, Feed::Tree);
}

/// Phrasings sharing prefixes, scored on a Danish question as a tree per call and as a
/// run per branch: the same candidates in the same order, with the same scores.
#[test]
fn phrasings_scored_as_a_tree_score_as_runs_do() {
    use voicebot_gateway::stt::forced::{self, Budget, PhraseSet, Priors};
    use voicebot_gateway::stt::trie::Feed;
    let f = fixtures::load()
        .unwrap()
        .into_iter()
        .find(|f| f.id == "da-pas")
        .unwrap();
    let (ctx, mut state) = base_model_on(&telephone_16k(&f));
    let mut silence = ctx.create_state().unwrap();
    silence.pcm_to_mel(&[0.0f32; 48_000], 1).unwrap();
    silence.encode(0, 1).unwrap();
    let set = |id: &str, rank: usize, phrasings: &[&str]| PhraseSet {
        intent_id: id.into(),
        phrasings: phrasings.iter().map(|p| p.to_string()).collect(),
        text_rank: Some(rank),
    };
    let sets = [
        set(
            "pas",
            0,
            &[
                "Jeg skal have fornyet mit pas",
                "Hvordan fornyer jeg mit pas?",
                "Mit pas er udløbet",
            ],
        ),
        set(
            "koerekort",
            1,
            &[
                "Hvordan fornyer jeg mit kørekort?",
                "Mit kørekort er udløbet",
            ],
        ),
        set(
            "affald",
            2,
            &[
                "Hvornår bliver mit affald hentet?",
                "Hvordan bestiller jeg storskrald?",
            ],
        ),
        set(
            "mitid",
            3,
            &[
                "Jeg har glemt min adgangskode til MitID",
                "Jeg skal have et nyt MitID",
            ],
        ),
    ];
    let mut scored = |feed: Feed| {
        let budget = Budget {
            calls: 1000,
            feed,
            threads: 1,
            stop: None,
            vocab: voicebot_gateway::stt::recognizer::DEFAULT_RESCORE_VOCAB,
        };
        forced::score(
            &ctx,
            &mut state,
            &mut silence,
            &Priors::default(),
            "da",
            &sets,
            budget,
        )
        .unwrap()
    };
    let (runs, tree) = (scored(Feed::Run), scored(Feed::Tree));
    assert_eq!(runs.len(), sets.len());
    assert_eq!(runs.len(), tree.len());
    for (r, t) in runs.iter().zip(&tree) {
        assert_eq!(r.intent_id, t.intent_id, "{runs:?} / {tree:?}");
        // Batched matrix products sum in another order: ~1e-3 apart, where candidates
        // are tenths apart.
        assert!((r.score - t.score).abs() < 1e-2, "{runs:?} / {tree:?}");
    }
    assert_eq!(runs[0].intent_id, "pas", "{runs:?}");
}

/// The knowledge-base scoring narrows the decoder to part of the vocabulary
/// (`stt::vocab`, `scripts/whisper-patch.cmake`): its rows must hold exactly the full
/// rows' logits of those tokens, in `Vocab::column` order, and the decoder must give
/// whole rows again once the narrowing is dropped.
#[test]
fn a_narrowed_decoder_gives_the_same_logits_for_its_tokens() {
    use voicebot_gateway::stt::vocab::Vocab;
    let tone: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.07).sin() * 0.2).collect();
    let (ctx, mut state) = base_model_on(&tone);
    let sot = [ctx.token_sot()];
    let n_vocab = state.n_vocab() as usize;

    state.decode(&sot, 0, 1).unwrap();
    let full = state.get_logits().unwrap().to_vec();
    assert_eq!(full.len(), n_vocab);

    let vocab = Vocab::new(1000, [ctx.token_eot(), 20_000, 42]);
    let narrowed = {
        let _narrowed = vocab.narrow_decoder();
        state.decode(&sot, 0, 1).unwrap();
        state.get_logits().unwrap()[..vocab.width()].to_vec()
    };
    assert_eq!(vocab.width(), 1002);
    for token in [0, 42, 999, 20_000, ctx.token_eot()] {
        let (a, b) = (narrowed[vocab.column(token).unwrap()], full[token as usize]);
        assert!(
            (a - b).abs() <= 1e-3 * (1.0 + b.abs()),
            "token {token}: {a} vs {b}"
        );
    }

    state.decode(&sot, 0, 1).unwrap();
    let again = state.get_logits().unwrap();
    let last = n_vocab - 1;
    assert!((again[last] - full[last]).abs() <= 1e-3 * (1.0 + full[last].abs()));
    assert!((again[1001] - full[1001]).abs() <= 1e-3 * (1.0 + full[1001].abs()));
}

/// The gateway's recognizer on whisper base, with one worker.
fn one_worker() -> Recognizer {
    let model = voicebot_gateway::stt::model_path("base");
    let opts = SttOptions {
        workers: 1,
        ..Default::default()
    };
    Recognizer::load(&model, opts).expect("models/fetch.sh base")
}

/// A fixture's telephone audio at the recognizer's 16 kHz.
fn telephone_16k(f: &fixtures::Fixture) -> Vec<f32> {
    use voicebot_gateway::audio::resample::{i16_to_f32, resample};
    let pcm = voicebot_gateway::audio::wav::read_at(&f.telephone_wav(), 8000).unwrap();
    resample(&i16_to_f32(&pcm), 8_000, 16_000)
}

/// whisper base, and a state that has encoded `audio` (16 kHz).
fn base_model_on(audio: &[f32]) -> (whisper_rs::WhisperContext, whisper_rs::WhisperState) {
    use whisper_rs::{WhisperContext, WhisperContextParameters};
    let model = voicebot_gateway::stt::model_path("base");
    let ctx = WhisperContext::new_with_params(
        model.to_str().unwrap(),
        WhisperContextParameters::default(),
    )
    .expect("models/fetch.sh base");
    let mut state = ctx.create_state().unwrap();
    state.pcm_to_mel(audio, 1).unwrap();
    state.encode(0, 1).unwrap();
    (ctx, state)
}
