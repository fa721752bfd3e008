use super::*;

fn params(remote: SocketAddr, law: Law) -> MediaParams {
    MediaParams {
        law,
        payload_type: law.payload_type(),
        dtmf_payload_type: Some(101),
        remote,
        ptime_ms: 20,
        jitter_ms: 20,
        timeout: Duration::from_secs(60),
        sending: true,
        srtp: None,
        echo_gate: false,
        echo_cancel: false,
    }
}

/// Audio sent by one session arrives at the other intact, up to G.711's quantisation.
#[tokio::test]
async fn audio_crosses_rtp_intact() {
    for law in [Law::Alaw, Law::Ulaw] {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let cancel = CancellationToken::new();
        let counters = Arc::new(RtpCounters::default());
        let (tx, mut tx_events) =
            start(a, params(ba, law), counters.clone(), cancel.clone()).unwrap();
        let (_rx, mut rx_events) =
            start(b, params(aa, law), counters.clone(), cancel.clone()).unwrap();
        // Low, mid and high voice-band tones, loud enough to use every G.711 segment.
        let sent: Vec<i16> = (0..8000)
            .map(|i| {
                let t = i as f32 / 8000.0;
                let tau = std::f32::consts::TAU;
                (9000.0 * (tau * 180.0 * t).sin()
                    + 7000.0 * (tau * 1230.0 * t).sin()
                    + 5000.0 * (tau * 2710.0 * t).sin()) as i16
            })
            .collect();
        tx.play(sent.clone());
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            tokio::select! {
                Some(MediaEvent::Audio(pcm)) = rx_events.recv() => got.extend(pcm),
                Some(_) = tx_events.recv() => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        cancel.cancel();
        // Find the sent signal in what arrived (leading silence is the jitter delay).
        let start = got
            .iter()
            .position(|s| s.abs() > 100)
            .expect("audio arrived");
        let start = start.saturating_sub(8);
        let best = (start..start + 16)
            .map(|off| {
                let err: f64 = sent
                    .iter()
                    .zip(&got[off..])
                    .map(|(s, g)| (*s as f64 - *g as f64).powi(2))
                    .sum();
                (err, off)
            })
            .min_by(|x, y| x.0.total_cmp(&y.0))
            .unwrap();
        let signal: f64 = sent.iter().map(|s| (*s as f64).powi(2)).sum();
        let snr_db = 10.0 * (signal / best.0.max(1.0)).log10();
        assert!(snr_db > 30.0, "{law:?}: SNR {snr_db:.1} dB");
        assert!(got.len() - best.1 >= sent.len(), "{law:?}: audio missing");
    }
}

/// Marks report when their audio reaches the wire, in order, and a stop drops them.
#[tokio::test]
async fn marked_audio_reports_its_first_packet() {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let cancel = CancellationToken::new();
    let counters = Arc::new(RtpCounters::default());
    let far = b.local_addr().unwrap();
    let (tx, mut events) = start(a, params(far, Law::Alaw), counters, cancel.clone()).unwrap();
    tx.play(vec![1000; 100]);
    tx.play_marked(vec![1000; 400], Some(7));
    tx.play_marked(vec![1000; 160], Some(8));
    let mut seen = Vec::new();
    let started = Instant::now();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
        let done = ev == MediaEvent::PlaybackDone;
        seen.push((ev, started.elapsed()));
        if done {
            break;
        }
    }
    let kinds: Vec<_> = seen.iter().map(|(e, _)| e.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            MediaEvent::PlaybackStarted(7),
            MediaEvent::PlaybackStarted(8),
            MediaEvent::PlaybackDone
        ]
    );
    // 7 starts in the first packet; 8 after 500 samples, in the fourth (60 ms later).
    let gap = seen[1].1 - seen[0].1;
    assert!(gap >= Duration::from_millis(40), "{gap:?}");

    tx.play_marked(vec![1000; 800], Some(9));
    tx.play_marked(vec![1000; 800], Some(10));
    tokio::time::sleep(Duration::from_millis(30)).await;
    tx.stop_playback();
    let mut after = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), events.recv()).await {
        after.push(ev);
    }
    cancel.cancel();
    assert_eq!(after, vec![MediaEvent::PlaybackStarted(9)]);
}
