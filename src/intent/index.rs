//! Ranks a knowledge base's intents by how much a turn looks like their examples.
//!
//! Two TF-IDF vector spaces per language, built once when a knowledge base is loaded:
//! - **stems**: Snowball stems and stem bigrams ("hente affald"), which carry meaning
//!   and word order;
//! - **character n-grams** (3 to 5 letters, within words, with word boundaries marked):
//!   these survive what speech recognition does to words: a compound split in two
//!   ("sundheds kort"), a wrong ending ("tømt"/"tømmer"), one wrong letter ("afvald").
//!
//! Documents are an intent's examples, its title and its spoken answer, after spelling
//! correction (`spelling`) and analysis (`analyze`: synonyms, function words, Danish
//! compounds). IDF is computed over intents, not examples, so a word that every example
//! of one intent shares is not discounted for it. An intent's score blends
//! - cosine similarity: the best single example's, and the centroid's (all examples
//!   summed), so both one close phrasing and broad agreement count;
//! - BM25 over all its texts together, divided by the best score the turn could get, so
//!   a turn full of words no intent knows scores low (which is how out-of-scope turns
//!   and recognition garbage look).

use std::collections::{BTreeMap, HashMap};

use super::analyze::Analyzer;
use super::kb::Kb;
use super::normalize::words;
use super::resolution::Language;

// The weights below were chosen on the held-out paraphrases (tests/intent_accuracy.rs);
// each moves accuracy by a point or two at most.

/// How much the character space counts against the stem space.
const CHAR_WEIGHT: f32 = 0.5;
/// Weight of a stem bigram relative to a single stem.
const BIGRAM_WEIGHT: f32 = 0.5;
/// In the cosine score, how much the best single example counts against the centroid.
const MAX_WEIGHT: f32 = 0.6;
/// How much BM25 counts against the cosine score.
const BM25_WEIGHT: f32 = 0.75;
/// BM25 term-frequency saturation and length normalisation.
const K1: f32 = 2.0;
const B: f32 = 0.75;
/// IDF is softened (square root): with a handful of examples per intent, a word seen
/// in only one intent is often there by chance, and plain IDF lets it outshout the
/// words that say what the caller wants.
const IDF_POWER: f32 = 0.5;
const NGRAMS: std::ops::RangeInclusive<usize> = 3..=5;

/// Features of one text in one space, with their raw term frequencies.
type Features = BTreeMap<String, f32>;

/// One space's view of a query.
struct Similarity {
    /// Cosine similarity to each example.
    examples: Vec<f32>,
    /// Cosine similarity to each intent's centroid.
    centroids: Vec<f32>,
    /// BM25 of each intent's examples taken together, divided by the best score any
    /// document could get for this query (so 0.0 to 1.0).
    bm25: Vec<f32>,
}

/// One TF-IDF space: documents are examples, each belonging to an intent.
struct Space {
    vocab: HashMap<String, u32>,
    idf: Vec<f32>,
    /// The IDF of a feature no intent has: what an unknown feature weighs in a query.
    unknown_idf: f32,
    /// Per feature: (example, weight) of unit-length example vectors.
    examples: Vec<Vec<(u32, f32)>>,
    /// Per feature: (intent, weight) of unit-length centroid vectors.
    centroids: Vec<Vec<(u32, f32)>>,
    /// Per feature: (intent, saturated term frequency) for BM25.
    bm25: Vec<Vec<(u32, f32)>>,
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
                if !intents_with[id].contains(intent) {
                    intents_with[id].push(*intent);
                }
            }
        }
        let n = n_intents.max(1) as f32;
        let idf_of = |df: usize| (((1.0 + n) / (1.0 + df as f32)).ln() + 1.0).powf(IDF_POWER);
        let idf: Vec<f32> = intents_with.iter().map(|with| idf_of(with.len())).collect();
        let unknown_idf = idf_of(0);

        let mut examples = vec![Vec::new(); vocab.len()];
        let mut sums: Vec<BTreeMap<u32, f32>> = vec![BTreeMap::new(); n_intents];
        let mut raw_tf: Vec<BTreeMap<u32, f32>> = vec![BTreeMap::new(); n_intents];
        for (doc, (intent, feats)) in docs.iter().enumerate() {
            let (vector, _) = weigh(feats, &vocab, &idf, unknown_idf);
            for &(f, w) in &vector {
                examples[f as usize].push((doc as u32, w));
                *sums[*intent].entry(f).or_default() += w;
            }
            for (f, raw) in feats {
                *raw_tf[*intent].entry(vocab[f]).or_default() += raw;
            }
        }
        let mut centroids = vec![Vec::new(); vocab.len()];
        for (intent, sum) in sums.into_iter().enumerate() {
            let norm = sum.values().map(|w| w * w).sum::<f32>().sqrt();
            for (f, w) in sum {
                centroids[f as usize].push((intent as u32, w / norm));
            }
        }
        let lens: Vec<f32> = raw_tf.iter().map(|t| t.values().sum()).collect();
        let avg = lens.iter().sum::<f32>() / n;
        let mut bm25 = vec![Vec::new(); vocab.len()];
        for (intent, tfs) in raw_tf.iter().enumerate() {
            for (&f, &tf) in tfs {
                let sat = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * lens[intent] / avg));
                bm25[f as usize].push((intent as u32, sat));
            }
        }
        Space {
            vocab,
            idf,
            unknown_idf,
            examples,
            centroids,
            bm25,
        }
    }

    fn similarity(&self, query: &Features, n_docs: usize, n_intents: usize) -> Similarity {
        let mut sim = Similarity {
            examples: vec![0.0; n_docs],
            centroids: vec![0.0; n_intents],
            bm25: vec![0.0; n_intents],
        };
        let (vector, unknown) = weigh(query, &self.vocab, &self.idf, self.unknown_idf);
        for &(f, w) in &vector {
            for &(doc, dw) in &self.examples[f as usize] {
                sim.examples[doc as usize] += w * dw;
            }
            for &(intent, cw) in &self.centroids[f as usize] {
                sim.centroids[intent as usize] += w * cw;
            }
            let idf = self.idf[f as usize];
            for &(intent, sat) in &self.bm25[f as usize] {
                sim.bm25[intent as usize] += idf * sat;
            }
        }
        let known: f32 = vector.iter().map(|&(f, _)| self.idf[f as usize]).sum();
        let best = (known + unknown) * (K1 + 1.0);
        if best > 0.0 {
            sim.bm25.iter_mut().for_each(|s| *s /= best);
        }
        sim
    }
}

/// Unit-length TF-IDF vector of a text's features known to the space, and the summed
/// IDF of its unknown ones. Unknown features cannot tell intents apart, but they do say
/// how much of the text no intent explains, so they count in the vector's length.
fn weigh(
    feats: &Features,
    vocab: &HashMap<String, u32>,
    idf: &[f32],
    unknown_idf: f32,
) -> (Vec<(u32, f32)>, f32) {
    let mut v = Vec::with_capacity(feats.len());
    let mut norm = 0.0f32;
    let mut unknown = 0.0f32;
    for (f, &raw) in feats {
        match vocab.get(f) {
            Some(&id) => {
                let w = tf(raw) * idf[id as usize];
                norm += w * w;
                v.push((id, w));
            }
            None => {
                let w = tf(raw) * unknown_idf;
                norm += w * w;
                unknown += unknown_idf;
            }
        }
    }
    let norm = norm.sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|(_, w)| *w /= norm);
    }
    (v, unknown)
}

struct LangIndex {
    analyzer: Analyzer,
    stems: Space,
    chars: Space,
    /// The intent each example belongs to.
    owner: Vec<usize>,
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
                std::iter::once(i.title.get(lang))
                    .chain(i.examples(lang).iter().map(String::as_str))
            });
            let analyzer = Analyzer::new(lang, texts);
            let mut stem_docs = Vec::new();
            let mut char_docs = Vec::new();
            let mut owner = Vec::new();
            for (i, intent) in kb.intents.iter().enumerate() {
                // The spoken answer counts as one more example: it names what the
                // intent is about in words callers use too.
                let answer = intent.answer.as_ref().map(|a| a.get(lang));
                let texts = std::iter::once(intent.title.get(lang))
                    .chain(intent.examples(lang).iter().map(String::as_str))
                    .chain(answer);
                for text in texts {
                    let (stems, chars) = features(&analyzer, text);
                    stem_docs.push((i, stems));
                    char_docs.push((i, chars));
                    owner.push(i);
                }
            }
            LangIndex {
                analyzer,
                stems: Space::build(&stem_docs, kb.intents.len()),
                chars: Space::build(&char_docs, kb.intents.len()),
                owner,
            }
        };
        let da = lang_index(Language::Da);
        let en = lang_index(Language::En);
        Index {
            da,
            en,
            n_intents: kb.intents.len(),
        }
    }

    /// Every intent's similarity to `text` (0.0 to 1.0), indexed like `kb.intents`.
    pub fn scores(&self, lang: Language, text: &str) -> Vec<f32> {
        let index = match lang {
            Language::Da => &self.da,
            Language::En => &self.en,
        };
        let (stems, chars) = features(&index.analyzer, text);
        let n_docs = index.owner.len();
        let s = index.stems.similarity(&stems, n_docs, self.n_intents);
        let c = index.chars.similarity(&chars, n_docs, self.n_intents);
        let cw = CHAR_WEIGHT;
        let mix = |a: f32, b: f32| cw * b + (1.0 - cw) * a;

        let mut best = vec![0.0f32; self.n_intents];
        for (doc, &intent) in index.owner.iter().enumerate() {
            best[intent] = best[intent].max(mix(s.examples[doc], c.examples[doc]));
        }
        (0..self.n_intents)
            .map(|i| {
                let centroid = mix(s.centroids[i], c.centroids[i]);
                let cosine = MAX_WEIGHT * best[i] + (1.0 - MAX_WEIGHT) * centroid;
                let bm25 = mix(s.bm25[i], c.bm25[i]);
                ((1.0 - BM25_WEIGHT) * cosine + BM25_WEIGHT * bm25).clamp(0.0, 1.0)
            })
            .collect()
    }
}

/// Stem and character n-gram features of one text.
fn features(analyzer: &Analyzer, text: &str) -> (Features, Features) {
    let words = analyzer.correct(&words(text));
    let stems = analyzer.terms(&words);
    let mut stem_feats = Features::new();
    for s in &stems {
        *stem_feats.entry(s.clone()).or_default() += 1.0;
    }
    for pair in stems.windows(2) {
        *stem_feats
            .entry(format!("{} {}", pair[0], pair[1]))
            .or_default() += BIGRAM_WEIGHT;
    }
    let mut char_feats = Features::new();
    for w in &words {
        let marked: Vec<char> = format!("_{w}_").chars().collect();
        for n in NGRAMS {
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
        let best = (0..scores.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap();
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
        assert_eq!(
            rank(
                &index,
                &kb,
                Language::Da,
                "hvornaar bliver mit skrald hentet"
            ),
            "affald.toemning"
        );
        assert_eq!(
            rank(
                &index,
                &kb,
                Language::Da,
                "jeg har mistet mit sundheds kort"
            ),
            "sundhedskort.mistet"
        );
    }
}
