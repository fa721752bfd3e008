use voicebot_gateway::intent::index::Index;
use voicebot_gateway::intent::kb::Kb;
#[derive(serde::Deserialize)] struct Cases { case: Vec<Case> }
#[derive(serde::Deserialize)] struct Case { text: String, lang: String, intent: String }
#[test]
fn cal() {
    let kb = Kb::embedded().unwrap();
    let index = Index::build(&kb);
    let cases: Cases = toml::from_str(&std::fs::read_to_string("tests/data/paraphrases.toml").unwrap()).unwrap();
    for c in &cases.case {
        let s = index.scores(c.lang.parse().unwrap(), &c.text);
        let mut o: Vec<usize> = (0..s.len()).collect();
        o.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
        println!("CAL {} {} {}", (kb.intents[o[0]].id == c.intent) as u8, s[o[0]], s[o[1]]);
    }
}
