//! Ranks a knowledge base's intents by how much a turn looks like their examples.
//!
//! Two TF-IDF vector spaces per language, built once when a knowledge base is loaded:
//! - **stems**: Snowball stems and stem bigrams ("hente affald"), which carry meaning
//!   and word order;
//! - **character n-grams** (3 to 5 letters, within words, with word boundaries marked):
//!   these survive what speech recognition does to words: a compound split in two
//!   ("sundheds kort"), a wrong ending ("tømt"/"tømmer"), one wrong letter ("afvald").
//!
//! IDF is computed over intents, not examples, so a word that every example of one
//! intent shares is not discounted for it. An intent scores the best cosine similarity
//! of any of its examples (and its title) blended with the similarity to its centroid
//! (all its examples summed), so both one close phrasing and broad agreement count.

use std::collections::HashMap;

use super::analyze::Analyzer;
use super::kb::Kb;
use super::normalize::words;
use super::resolution::Language;

fn p(name: &str, d: f32) -> f32 { std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(d) }
#[allow(non_snake_case)] fn CHAR_WEIGHT() -> f32 { p("CW", 0.5) }
#[allow(non_snake_case)] fn BIGRAM_WEIGHT() -> f32 { p("BW", 0.5) }
#[allow(non_snake_case)] fn MAX_WEIGHT() -> f32 { p("MW", 0.6) }
#[allow(non_snake_case)] fn NGRAMS() -> std::ops::RangeInclusive<usize> { (p("NMIN", 3.0) as usize)..=(p("NMAX", 5.0) as usize) }

/// Features of one text in one space, with their raw term frequencies.
type Features = HashMap<String, f32>;

/// One TF-IDF space: documents are examples, each belonging to an intent.
struct Space {
    vocab: HashMap<String, u32>,
    idf: Vec<f32>,
    /// Per feature: (example, weight) of unit-length example vectors.
    examples: Vec<Vec<(u32, f32)>>,
    /// Per feature: (intent, weight) of unit-length centroid vectors.
    centroids: Vec<Vec<(u32, f32)>>,
    /// Per feature: complement naive Bayes weight per intent.
    cnb: Vec<Vec<(u32, f32)>>,
}

fn tf(raw: f32) -> f32 {
    if raw > 1.0 {
        1.0 + raw.ln()
    } else {
        raw
    }
}

impl Space {
    fn build(docs: &[(usize, Features)], n_intents: usize) -> Space {
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut intents_with: Vec<Vec<usize>> = Vec::new();
        for (intent, feats) in docs {
            for f in feats.keys() {
                let next = vocab.len() as u32;
                let id = *vocab.entry(f.clone()).or_insert(next) as usize;
                if id == intents_with.len() {
                    intents_with.push(Vec::new());
                }
                if intents_with[id].last() != Some(intent) {
                    intents_with[id].push(*intent);
                }
            }
        }
        let n = n_intents.max(1) as f32;
        let idf: Vec<f32> = intents_with
            .iter()
            .map(|with| {
                let mut distinct = with.clone();
                distinct.sort_unstable();
                distinct.dedup();
                ((1.0 + n) / (1.0 + distinct.len() as f32)).ln() + 1.0
            })
            .collect();

        let mut examples = vec![Vec::new(); vocab.len()];
        let mut sums: Vec<HashMap<u32, f32>> = vec![HashMap::new(); n_intents];
        for (doc, (intent, feats)) in docs.iter().enumerate() {
            let vector = weigh(feats, &vocab, &idf);
            for &(f, w) in &vector {
                examples[f as usize].push((doc as u32, w));
                *sums[*intent].entry(f).or_default() += w;
            }
        }
        let mut centroids = vec![Vec::new(); vocab.len()];
        for (intent, sum) in sums.into_iter().enumerate() {
            let norm = sum.values().map(|w| w * w).sum::<f32>().sqrt();
            for (f, w) in sum {
                centroids[f as usize].push((intent as u32, w / norm));
            }
        }
        // BM25 over intent documents (all examples of an intent together).
        let k1 = p("K1", 1.2);
        let b = p("B", 0.75);
        let mut tfs: Vec<HashMap<u32, f32>> = vec![HashMap::new(); n_intents];
        for (intent, feats) in docs {
            for (f, raw) in feats {
                *tfs[*intent].entry(vocab[f]).or_default() += raw;
            }
        }
        let lens: Vec<f32> = tfs.iter().map(|t| t.values().sum()).collect();
        let avg = lens.iter().sum::<f32>() / n_intents.max(1) as f32;
        let mut cnb = vec![Vec::new(); vocab.len()];
        for (c, t) in tfs.iter().enumerate() {
            for (&f, &tf) in t {
                let w = tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * lens[c] / avg));
                cnb[f as usize].push((c as u32, w));
            }
        }
        Space { vocab, idf, examples, centroids, cnb }
    }

    /// Cosine similarity of `query` to every example and every centroid.
    fn similarities(&self, query: &Features, n_docs: usize, n_intents: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut per_doc = vec![0.0; n_docs];
        let mut per_intent = vec![0.0; n_intents];
        let mut cnb = vec![0.0f32; n_intents];
        let mut possible = 0.0f32;
        for (f, w) in weigh(query, &self.vocab, &self.idf) {
            let _ = w;
            let idf = self.idf[f as usize];
            possible += idf * (p("K1", 1.2) + 1.0);
            for &(c, cw) in &self.cnb[f as usize] {
                cnb[c as usize] += idf * cw;
            }
            for &(doc, dw) in &self.examples[f as usize] {
                per_doc[doc as usize] += w * dw;
            }
            for &(intent, cw) in &self.centroids[f as usize] {
                per_intent[intent as usize] += w * cw;
            }
        }
        let z = cnb.iter().map(|x| x / possible.max(1e-9)).collect();
        (per_doc, per_intent, z)
    }
}

/// Unit-length TF-IDF vector of the features known to the space; unknown features are
/// ignored, as they cannot tell intents apart.
fn weigh(feats: &Features, vocab: &HashMap<String, u32>, idf: &[f32]) -> Vec<(u32, f32)> {
    let mut v: Vec<(u32, f32)> = feats
        .iter()
        .filter_map(|(f, &raw)| vocab.get(f).map(|&id| (id, tf(raw) * idf[id as usize])))
        .collect();
    let norm = v.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|(_, w)| *w /= norm);
    }
    v
}

struct LangIndex {
    analyzer: Analyzer,
    stems: Space,
    chars: Space,
    /// The intent each example belongs to.
    owner: Vec<usize>,
    lr: Vec<f32>,
    lr_bias: Vec<f32>,
}

fn concat(stem: Vec<(u32, f32)>, chars: Vec<(u32, f32)>, offset: u32) -> Vec<(u32, f32)> {
    let cw = CHAR_WEIGHT();
    stem.into_iter().map(|(f, w)| (f, w * (1.0 - cw))).chain(chars.into_iter().map(|(f, w)| (f + offset, w * cw))).collect()
}

fn train(xs: &[Vec<(u32, f32)>], ys: &[usize], n_feat: usize, n_class: usize) -> (Vec<f32>, Vec<f32>) {
    let epochs = p("EPOCHS", 30.0) as usize;
    let rate = p("RATE", 1.0);
    let l2 = p("L2", 1e-4);
    let mut w = vec![0.0f32; n_feat * n_class];
    let mut bias = vec![0.0f32; n_class];
    let mut order: Vec<usize> = (0..xs.len()).collect();
    let mut seed: u64 = 42;
    let mut logits = vec![0.0f32; n_class];
    for epoch in 0..epochs {
        for i in (1..order.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let eta = rate / (1.0 + epoch as f32 * 0.1);
        for &d in &order {
            logits.copy_from_slice(&bias);
            for &(f, x) in &xs[d] {
                let row = &w[f as usize * n_class..(f as usize + 1) * n_class];
                for c in 0..n_class { logits[c] += x * row[c]; }
            }
            let m = logits.iter().cloned().fold(f32::MIN, f32::max);
            let mut z = 0.0;
            for l in logits.iter_mut() { *l = (*l - m).exp(); z += *l; }
            for l in logits.iter_mut() { *l /= z; }
            logits[ys[d]] -= 1.0;
            for &(f, x) in &xs[d] {
                let row = &mut w[f as usize * n_class..(f as usize + 1) * n_class];
                for c in 0..n_class { row[c] -= eta * (logits[c] * x + l2 * row[c]); }
            }
            for c in 0..n_class { bias[c] -= eta * logits[c]; }
        }
    }
    (w, bias)
}

/// The ranking index of one knowledge base. Pure: built from the data, queried without
/// IO.
pub struct Index {
    da: LangIndex,
    en: LangIndex,
    n_intents: usize,
}

impl Index {
    pub fn build(kb: &Kb) -> Index {
        let lang_index = |lang: Language| {
            let texts = kb.intents.iter().flat_map(|i| {
                std::iter::once(i.title.get(lang)).chain(i.examples(lang).iter().map(String::as_str))
            });
            let analyzer = Analyzer::new(lang, texts);
            let mut stem_docs = Vec::new();
            let mut char_docs = Vec::new();
            let mut owner = Vec::new();
            for (i, intent) in kb.intents.iter().enumerate() {
                let texts = std::iter::once(intent.title.get(lang)).chain(intent.examples(lang).iter().map(String::as_str));
                for text in texts {
                    let (stems, chars) = features(&analyzer, text);
                    stem_docs.push((i, stems));
                    char_docs.push((i, chars));
                    owner.push(i);
                }
            }
            let stems = Space::build(&stem_docs, kb.intents.len());
            let chars = Space::build(&char_docs, kb.intents.len());
            let offset = stems.vocab.len() as u32;
            let xs: Vec<Vec<(u32, f32)>> = stem_docs.iter().zip(&char_docs).map(|((_, a), (_, b))| concat(weigh(a, &stems.vocab, &stems.idf), weigh(b, &chars.vocab, &chars.idf), offset)).collect();
            let n_feat = offset as usize + chars.vocab.len();
            let (lr, lr_bias) = if p("LW", 0.0) > 0.0 { train(&xs, &owner, n_feat, kb.intents.len()) } else { (Vec::new(), Vec::new()) };
            LangIndex { analyzer, stems, chars, owner, lr, lr_bias }
        };
        let da = lang_index(Language::Da);
        let en = lang_index(Language::En);
        Index { da, en, n_intents: kb.intents.len() }
    }

    /// Every intent's similarity to `text` (0.0 to 1.0), indexed like `kb.intents`.
    pub fn scores(&self, lang: Language, text: &str) -> Vec<f32> {
        let index = match lang {
            Language::Da => &self.da,
            Language::En => &self.en,
        };
        let (stems, chars) = features(&index.analyzer, text);
        let n_docs = index.owner.len();
        let (stem_docs, stem_centroids, stem_z) = index.stems.similarities(&stems, n_docs, self.n_intents);
        let (char_docs, char_centroids, char_z) = index.chars.similarities(&chars, n_docs, self.n_intents);

        let nc = self.n_intents;
        let mut prob = vec![0.0f32; nc];
        if !index.lr.is_empty() {
            let x = concat(weigh(&stems, &index.stems.vocab, &index.stems.idf), weigh(&chars, &index.chars.vocab, &index.chars.idf), index.stems.vocab.len() as u32);
            prob.copy_from_slice(&index.lr_bias);
            for (f, v) in x { for c in 0..nc { prob[c] += v * index.lr[f as usize * nc + c]; } }
            let m = prob.iter().cloned().fold(f32::MIN, f32::max);
            let mut z = 0.0;
            for l in prob.iter_mut() { *l = (*l - m).exp(); z += *l; }
            for l in prob.iter_mut() { *l /= z; }
        }
        let mut best = vec![0.0f32; self.n_intents];
        for (doc, &intent) in index.owner.iter().enumerate() {
            let s = CHAR_WEIGHT() * char_docs[doc] + (1.0 - CHAR_WEIGHT()) * stem_docs[doc];
            best[intent] = best[intent].max(s);
        }
        (0..self.n_intents)
            .map(|i| {
                let centroid = CHAR_WEIGHT() * char_centroids[i] + (1.0 - CHAR_WEIGHT()) * stem_centroids[i];
                let z = CHAR_WEIGHT() * char_z[i] + (1.0 - CHAR_WEIGHT()) * stem_z[i];
                (MAX_WEIGHT() * best[i] + (1.0 - MAX_WEIGHT()) * centroid) + p("ZW", 0.0) * z + p("LW", 0.0) * prob[i]
            })
            .collect()
    }
}

/// Stem and character n-gram features of one text.
fn features(analyzer: &Analyzer, text: &str) -> (Features, Features) {
    let words = words(text);
    let stems = analyzer.terms(&words);
    let mut stem_feats = Features::new();
    for s in &stems {
        *stem_feats.entry(s.clone()).or_default() += 1.0;
    }
    for pair in stems.windows(2) {
        *stem_feats.entry(format!("{} {}", pair[0], pair[1])).or_default() += BIGRAM_WEIGHT();
    }
    let mut char_feats = Features::new();
    for w in &words {
        let marked: Vec<char> = format!("_{w}_").chars().collect();
        for n in NGRAMS() {
            for gram in marked.windows(n) {
                *char_feats.entry(gram.iter().collect()).or_default() += 1.0;
            }
        }
    }
    (stem_feats, char_feats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::kb::Kb;

    fn rank(index: &Index, kb: &Kb, lang: Language, text: &str) -> String {
        let scores = index.scores(lang, text);
        let best = (0..scores.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
        kb.intents[best].id.clone()
    }

    #[test]
    fn examples_rank_their_own_intent_first() {
        let kb = Kb::embedded().unwrap();
        let index = Index::build(&kb);
        for intent in kb.intents.iter().take(10) {
            for lang in Language::ALL {
                let text = &intent.examples(lang)[0];
                assert_eq!(rank(&index, &kb, lang, text), intent.id, "{text}");
            }
        }
    }

    #[test]
    fn asr_spellings_and_split_compounds_still_match() {
        let kb = Kb::embedded().unwrap();
        let index = Index::build(&kb);
        assert_eq!(rank(&index, &kb, Language::Da, "hvornaar bliver mit skrald hentet"), "affald.toemning");
        assert_eq!(rank(&index, &kb, Language::Da, "jeg har mistet mit sundheds kort"), "sundhedskort.mistet");
    }
}
