//! Knowledge-base-aware recognition: how well does each phrasing a caller could use
//! fit this audio, according to whisper's own decoder (forced decoding)?
//!
//! Callers ask about a known set of things, so instead of trusting whisper's free
//! transcript alone (which for Danish telephone audio is often garbled), we ask the
//! decoder for the log-probability of each candidate phrasing given the audio already
//! encoded for the free transcript. The phrasings share prefixes ("Hvordan …",
//! "Jeg vil gerne …"), so they go into a token trie and every trie node is decoded
//! once: whisper.cpp returns logits for one position per decode call, so the cost is
//! one decode per inner node, not per token of every phrasing.
//!
//! Raw log-probabilities favour short, frequent phrasings for any audio. What ranks the
//! right one first is the phrasing's log-probability on this audio minus its
//! log-probability on silence (a prior computed once per phrasing), divided by the
//! square root of its token count.

/// A decoder that can be asked for next-token log-probabilities, feeding one token at
/// a time at a given position (whisper's KV cache keeps the positions before it).
pub trait NextToken {
    type Error;
    /// Feeds `prefix` from position 0; returns log-probabilities of `wanted` next.
    fn start(&mut self, prefix: &[i32], wanted: &[i32]) -> Result<Vec<f32>, Self::Error>;
    /// Feeds `token` at position `n_past`; returns log-probabilities of `wanted` next.
    fn next(&mut self, token: i32, n_past: usize, wanted: &[i32]) -> Result<Vec<f32>, Self::Error>;
}

/// Phrasings as token sequences sharing prefixes.
#[derive(Debug, Default)]
pub struct Trie {
    nodes: Vec<Node>,
    phrases: usize,
}

#[derive(Debug, Default)]
struct Node {
    token: i32,
    children: Vec<usize>,
    /// Phrasings that end at this node.
    ends: Vec<usize>,
}

impl Trie {
    pub fn new() -> Trie {
        Trie {
            nodes: vec![Node::default()],
            phrases: 0,
        }
    }

    /// Adds a phrasing; returns its index (the position in `score`'s result).
    pub fn insert(&mut self, tokens: &[i32]) -> usize {
        let mut at = 0;
        for &t in tokens {
            at = match self.nodes[at]
                .children
                .iter()
                .copied()
                .find(|&c| self.nodes[c].token == t)
            {
                Some(c) => c,
                None => {
                    self.nodes.push(Node {
                        token: t,
                        ..Node::default()
                    });
                    let c = self.nodes.len() - 1;
                    self.nodes[at].children.push(c);
                    c
                }
            };
        }
        let index = self.phrases;
        self.nodes[at].ends.push(index);
        self.phrases += 1;
        index
    }

    /// Decoder calls `score` needs besides the prefix: one per inner node below the root.
    pub fn decodes(&self) -> usize {
        self.nodes[1..]
            .iter()
            .filter(|n| !n.children.is_empty())
            .count()
    }

    /// Decodes `tokens` would add to the trie.
    pub fn cost_of(&self, tokens: &[i32]) -> usize {
        let mut at = 0;
        for (i, &t) in tokens.iter().enumerate() {
            let next = self.nodes[at]
                .children
                .iter()
                .copied()
                .find(|&c| self.nodes[c].token == t);
            match next {
                Some(c) => at = c,
                // Each new token but the last becomes an inner node; so does an existing
                // leaf we extend.
                None => {
                    let extends_leaf = at != 0 && self.nodes[at].children.is_empty();
                    return tokens.len() - i - 1 + usize::from(extends_leaf);
                }
            }
        }
        0
    }

    pub fn len(&self) -> usize {
        self.phrases
    }

    pub fn is_empty(&self) -> bool {
        self.phrases == 0
    }

    /// The total log-probability of every phrasing after `prefix`, by phrasing index.
    pub fn score<D: NextToken>(
        &self,
        decoder: &mut D,
        prefix: &[i32],
    ) -> Result<Vec<f32>, D::Error> {
        let mut out = vec![0.0f32; self.phrases];
        if self.phrases == 0 {
            return Ok(out);
        }
        let wanted = self.child_tokens(0);
        let lps = decoder.start(prefix, &wanted)?;
        // Depth-first, so the decoder's cache always holds the path to the node.
        self.descend(decoder, 0, 0.0, lps, prefix.len(), &mut out)?;
        Ok(out)
    }

    fn descend<D: NextToken>(
        &self,
        decoder: &mut D,
        node: usize,
        sum: f32,
        lps: Vec<f32>,
        n_past: usize,
        out: &mut [f32],
    ) -> Result<(), D::Error> {
        for (k, &child) in self.nodes[node].children.iter().enumerate() {
            let total = sum + lps[k];
            for &p in &self.nodes[child].ends {
                out[p] = total;
            }
            if !self.nodes[child].children.is_empty() {
                let wanted = self.child_tokens(child);
                let next = decoder.next(self.nodes[child].token, n_past, &wanted)?;
                self.descend(decoder, child, total, next, n_past + 1, out)?;
            }
        }
        Ok(())
    }

    fn child_tokens(&self, node: usize) -> Vec<i32> {
        self.nodes[node]
            .children
            .iter()
            .map(|&c| self.nodes[c].token)
            .collect()
    }
}

/// How well a phrasing fits the audio beyond what the decoder expects anyway: its
/// log-probability on the audio minus that on silence, per √token.
pub fn normalized(logprob: f32, prior: f32, tokens: usize) -> f32 {
    (logprob - prior) / (tokens.max(1) as f32).sqrt()
}

/// log-softmax of `logits` at `wanted`.
pub fn log_probs(logits: &[f32], wanted: &[i32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
    let lse = max + sum.ln();
    wanted
        .iter()
        .map(|&t| {
            logits
                .get(t as usize)
                .map_or(f32::NEG_INFINITY, |&l| l - lse)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bigram "decoder": log P(next | last token fed), with a call counter.
    struct Bigram {
        last: i32,
        calls: usize,
        positions: Vec<usize>,
    }

    fn bigram_lp(prev: i32, next: i32) -> f32 {
        -(((prev * 7 + next * 3) % 11) as f32) / 4.0 - 0.1
    }

    impl NextToken for Bigram {
        type Error = ();
        fn start(&mut self, prefix: &[i32], wanted: &[i32]) -> Result<Vec<f32>, ()> {
            self.calls += 1;
            self.last = *prefix.last().unwrap();
            Ok(wanted.iter().map(|&w| bigram_lp(self.last, w)).collect())
        }
        fn next(&mut self, token: i32, n_past: usize, wanted: &[i32]) -> Result<Vec<f32>, ()> {
            self.calls += 1;
            self.positions.push(n_past);
            self.last = token;
            Ok(wanted.iter().map(|&w| bigram_lp(token, w)).collect())
        }
    }

    fn brute(prefix_last: i32, tokens: &[i32]) -> f32 {
        let mut prev = prefix_last;
        let mut sum = 0.0;
        for &t in tokens {
            sum += bigram_lp(prev, t);
            prev = t;
        }
        sum
    }

    #[test]
    fn shared_prefixes_are_decoded_once_and_scores_match_brute_force() {
        let phrases: Vec<Vec<i32>> = vec![
            vec![5, 6, 7, 99],
            vec![5, 6, 8, 99],
            vec![5, 9, 99],
            vec![4, 99],
            vec![5, 6, 7, 10, 99],
            vec![5, 6, 7, 99], // a duplicate phrasing scores the same
        ];
        let mut trie = Trie::new();
        let mut cost = 0;
        for p in &phrases {
            cost += trie.cost_of(p);
            trie.insert(p);
        }
        assert_eq!(trie.decodes(), cost, "cost_of predicts the decodes");
        let mut d = Bigram {
            last: 0,
            calls: 0,
            positions: vec![],
        };
        let scores = trie.score(&mut d, &[1, 2, 3]).unwrap();
        for (p, s) in phrases.iter().zip(&scores) {
            assert!((brute(3, p) - s).abs() < 1e-5, "{p:?}: {s}");
        }
        // Inner nodes: 5, 5-6, 5-6-7, 5-6-7-10, 5-6-8, 5-9, 4 = 7, plus the prefix.
        assert_eq!(trie.decodes(), 7);
        assert_eq!(d.calls, 8);
        assert!(d.positions.iter().all(|&p| (3..=6).contains(&p)));
    }

    #[test]
    fn prior_and_length_normalise() {
        // The same lift over the prior counts less per token for a longer phrasing.
        assert!(normalized(-10.0, -20.0, 4) > normalized(-30.0, -40.0, 16));
        assert!(normalized(-5.0, -4.0, 1) < 0.0);
    }

    #[test]
    fn log_probs_sum_to_one() {
        let logits = [1.0, 2.0, 3.0];
        let lp = log_probs(&logits, &[0, 1, 2]);
        let total: f32 = lp.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-5);
        assert_eq!(log_probs(&logits, &[7]), vec![f32::NEG_INFINITY]);
    }
}
