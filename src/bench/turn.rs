//! `voicebot bench turn`: real calls from our caller to an in-process gateway, each
//! asking a fixture question after the greeting (English line by default; `--lang da`
//! asks the Danish ones on a Danish line, where the knowledge-base scoring runs); the caller measures, on the
//! wire, the time from the end of its speech to the first reply audio (a filler, if
//! the answer is late). Then the same with several callers at once. The gateway
//! measures each turn to the first packet of the answer itself and where it went.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::fixtures;
use crate::call::turn_metrics::TurnTiming;
use crate::caller::{self, CallOptions};
use crate::config::Config;

pub(super) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Mean of a histogram from its `_sum` and `_count` lines.
fn mean(metrics: &str, name: &str) -> f64 {
    let value = |suffix: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{suffix} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    value("_sum") / value("_count")
}

const WARM_UP_LIMIT: Duration = Duration::from_secs(300);

/// An in-process gateway on free loopback ports with a `lang` line, measured once
/// its start-up work is over, as it would be long before the first real call: the
/// prompt cache warms for about a minute here (the neural English voice), on the cores
/// the calls' recognition needs.
pub(super) async fn start_gateway(
    mut config: Config,
    lang: &str,
) -> anyhow::Result<(crate::serve::Running, CancellationToken)> {
    config.sip.listen = format!("127.0.0.1:{}", free_port()?).parse()?;
    config.http.listen = format!("127.0.0.1:{}", free_port()?).parse()?;
    config.stt.language = lang.into();
    let cancel = CancellationToken::new();
    let running = crate::serve::start(config, cancel.clone()).await?;
    let mut warm = running.prompts_warm.clone();
    let started = std::time::Instant::now();
    tokio::time::timeout(WARM_UP_LIMIT, warm.wait_for(|w| *w))
        .await
        .map_err(|_| anyhow::anyhow!("the prompt cache did not warm in {WARM_UP_LIMIT:?}"))??;
    eprintln!(
        "gateway warm after {:.0} s",
        started.elapsed().as_secs_f32()
    );
    Ok((running, cancel))
}

/// A caller on a plain A-law line who says `pcm` (written to `wav`) and hangs up
/// `linger_secs` after its end.
pub(super) fn caller_playing(
    gateway: std::net::SocketAddr,
    wav: &std::path::Path,
    pcm: &[i16],
    linger_secs: f64,
    from: &str,
) -> anyhow::Result<CallOptions> {
    crate::audio::wav::write_i16(wav, pcm, 8000)?;
    Ok(CallOptions {
        target: format!("sip:bot@{gateway}"),
        play: wav.to_path_buf(),
        record: None,
        dtmf: vec![],
        hangup_after: Some(pcm.len() as f64 / 8000.0 + linger_secs),
        codecs: vec![crate::audio::g711::Law::Alaw],
        from: from.into(),
        pai: None,
        local_ip: None,
        echo: None,
    })
}

/// The questions in `lang` a turn bench asks (no CPR numbers, no small talk).
pub(super) fn questions(lang: &str) -> anyhow::Result<Vec<fixtures::Fixture>> {
    let questions: Vec<_> = fixtures::load()
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .filter(|f| {
            f.lang == lang
                && f.source == "espeak-ng"
                && !f.id.contains("cpr")
                && f.topic != "general"
        })
        .collect();
    if questions.is_empty() {
        anyhow::bail!("no {lang:?} questions among the fixtures (da | en)");
    }
    Ok(questions)
}

pub async fn run(
    config: Config,
    lang: &str,
    levels: &[usize],
    out: &mut String,
) -> anyhow::Result<()> {
    use std::fmt::Write;
    let questions = questions(lang)?;
    let (running, cancel) = start_gateway(config, lang).await?;
    let dir = std::env::temp_dir().join(format!("voicebot-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    writeln!(
        out,
        "| callers | turns | first audio p50 s | p95 s | answer p50 s | p95 s | max s | endpointing s | recognition wait s | intent s | answer to wire s | early decodes | no reply |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )?;
    for &n in levels {
        let before = running.turns.recent().len();
        let mut jobs = Vec::new();
        for i in 0..n {
            let f = &questions[i % questions.len()];
            // Ask after the greeting (about 9.5 s) so the turn is a plain one.
            let speech = crate::audio::wav::read_at(&f.telephone_wav(), 8000)?;
            let mut pcm = vec![0i16; 8000 * 11];
            pcm.extend(speech);
            let wav = dir.join(format!("{}-{n}-{i}.wav", f.id));
            let opts = caller_playing(running.sip, &wav, &pcm, 6.0, "caller")?;
            jobs.push(tokio::spawn(caller::place(opts)));
        }
        let mut latencies = Vec::new();
        let mut missing = 0;
        for j in jobs {
            match j.await? {
                Ok(r) => match r.reply_latency_secs {
                    Some(l) => latencies.push(l),
                    None => missing += 1,
                },
                Err(_) => missing += 1,
            }
        }
        latencies.sort_by(|a, b| a.total_cmp(b));
        let turns: Vec<TurnTiming> = running.turns.recent().split_off(before);
        let mut answers: Vec<f64> = turns.iter().map(|t| t.answer).collect();
        answers.sort_by(|a, b| a.total_cmp(b));
        let avg = |f: fn(&TurnTiming) -> f64| turns.iter().map(f).sum::<f64>() / turns.len() as f64;
        writeln!(
            out,
            "| {n} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.4} | {:.3} | {} | {missing} |",
            latencies.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.95),
            percentile(&answers, 0.5),
            percentile(&answers, 0.95),
            answers.last().copied().unwrap_or(f64::NAN),
            avg(|t| t.endpointing),
            avg(|t| t.recognition_wait),
            avg(|t| t.intent),
            avg(|t| t.first_packet),
            turns.iter().filter(|t| t.partial).count(),
        )?;
    }
    let metrics = metrics(running.http).await?;
    writeln!(
        out,
        "\nrecognizer, means over the transcripts used: queue {:.3} s, decoding {:.3} s",
        mean(&metrics, "voicebot_turn_recognizer_queue_seconds"),
        mean(&metrics, "voicebot_turn_recognition_seconds")
    )?;
    cancel.cancel();
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// The gateway's `/metrics` page (with its HTTP head).
pub(super) async fn metrics(addr: std::net::SocketAddr) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).await?;
    Ok(resp)
}
