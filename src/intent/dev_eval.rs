use crate::intent::index::Index;
use crate::intent::kb::Kb;
use crate::intent::resolution::Language;

#[derive(serde::Deserialize)]
struct Cases { case: Vec<Case> }
#[derive(serde::Deserialize)]
struct Case { text: String, lang: String, intent: String }

#[test] #[ignore]
fn dev() {
    let kb = Kb::embedded().unwrap();
    let index = Index::build(&kb);
    let cases: Cases = toml::from_str(&std::fs::read_to_string("tests/data/paraphrases.toml").unwrap()).unwrap();
    let mut right = [0, 0]; let mut total = [0, 0];
    for c in &cases.case {
        let lang: Language = c.lang.parse().unwrap();
        let li = if lang == Language::Da {0} else {1};
        let s = index.scores(lang, &c.text);
        let mut order: Vec<usize> = (0..s.len()).collect();
        order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
        let t: f32 = std::env::var("T").ok().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let top = if s[order[0]] < t { &"system.out_of_scope".to_string() } else { &kb.intents[order[0]].id };
        total[li] += 1;
        let ok = *top == c.intent;
        if ok { right[li] += 1; }
        println!("{} {:.3} {:.3} {} {} | {} -> {}", if ok {"OK "} else {"BAD"}, s[order[0]], s[order[1]], c.lang, c.text, c.intent, top);
    }
    println!("da {}/{} en {}/{}", right[0], total[0], right[1], total[1]);
}

#[test]
#[ignore]
fn probe() {
    let kb = Kb::embedded().unwrap();
    let index = Index::build(&kb);
    for q in std::env::var("Q").unwrap().split('|') {
        let (lang, text) = q.split_once(':').unwrap();
        let lang: Language = lang.parse().unwrap();
        let s = index.scores(lang, text);
        let mut order: Vec<usize> = (0..s.len()).collect();
        order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
        println!("{text}: {}", order.iter().take(4).map(|&i| format!("{} {:.3}", kb.intents[i].id, s[i])).collect::<Vec<_>>().join(", "));
    }
}
