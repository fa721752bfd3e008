//! Phrasings as a token trie, and how it is fed to a decoder that scores them (see
//! `rescore`). The phrasings share prefixes ("Hvordan …", "Jeg vil gerne …"), so every
//! trie node is decoded once. Where the decoder returns logits for every token it is fed
//! (whisper.cpp built with `scripts/whisper-patch.cmake`), a run of nodes without a
//! branch is one decoder call; otherwise each inner node is a call of its own. Where it
//! also takes a tree (each token attending to its ancestors only), the whole trie is one
//! call, or a few of up to `MAX_TREE_TOKENS`: a lone Danish caller's 409 tokens took
//! 0.50-0.58 s on two threads, where 49 calls of runs took 0.55-0.63 s.

/// A decoder that can be asked for next-token log-probabilities; its cache keeps the
/// positions fed before.
pub trait NextToken {
    type Error;
    /// Feeds `tokens` from position `n_past`; returns, for each token fed, the
    /// log-probabilities of `wanted[i]` coming next (empty where nothing is wanted).
    fn feed(
        &mut self,
        tokens: &[i32],
        n_past: usize,
        wanted: &[Vec<i32>],
    ) -> Result<Vec<Vec<f32>>, Self::Error>;

    /// As `feed`, for tokens that form a tree: token i follows `parents[i]` (an
    /// earlier token of this call), or the `n_past` tokens in the cache when `None`.
    fn feed_tree(
        &mut self,
        tokens: &[i32],
        parents: &[Option<usize>],
        n_past: usize,
        wanted: &[Vec<i32>],
    ) -> Result<Vec<Vec<f32>>, Self::Error>;
}

/// What one decoder call can take (what the whisper.cpp build allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Only the last token's logits come back: a call per token whose next is wanted.
    Token,
    /// Every token's logits come back: a run of tokens without a branch is one call.
    Run,
    /// A tree of tokens, each attending to its ancestors only: a call per
    /// `MAX_TREE_TOKENS` of the trie.
    Tree,
}

/// Tokens of one tree call: within whisper's batch (448) and its self-attention cache
/// (512 cells) beside the prefix and the longest path above them (4 + 64 + 1).
pub const MAX_TREE_TOKENS: usize = 384;

/// Phrasings as token sequences sharing prefixes.
#[derive(Debug, Clone)]
pub struct Trie {
    nodes: Vec<Node>,
    phrases: usize,
    feed: Feed,
}

#[derive(Debug, Default, Clone)]
struct Node {
    token: i32,
    parent: usize,
    children: Vec<usize>,
    /// Phrasings that end at this node.
    ends: Vec<usize>,
}

impl Trie {
    pub fn new(feed: Feed) -> Trie {
        Trie {
            nodes: vec![Node::default()],
            phrases: 0,
            feed,
        }
    }

    fn runs(&self) -> bool {
        self.feed != Feed::Token
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
                        parent: at,
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

    /// Decoder calls `score` needs besides the prefix: one per inner node below the
    /// root, or with runs one per inner node that starts a run (its parent is the root
    /// or branches). A tree takes fewer, but the scoring's budget is counted in these:
    /// the phrasings chosen, and so the answers, do not depend on the build.
    pub fn decodes(&self) -> usize {
        (1..self.nodes.len())
            .filter(|&n| self.inner(n) && (!self.runs() || self.starts_run(n)))
            .count()
    }

    /// Decodes `tokens` would add to the trie.
    pub fn cost_of(&self, tokens: &[i32]) -> usize {
        let mut grown = self.clone();
        grown.insert(tokens);
        grown.decodes() - self.decodes()
    }

    fn inner(&self, n: usize) -> bool {
        !self.nodes[n].children.is_empty()
    }

    fn starts_run(&self, n: usize) -> bool {
        let parent = self.nodes[n].parent;
        parent == 0 || self.nodes[parent].children.len() > 1
    }

    pub fn len(&self) -> usize {
        self.phrases
    }

    /// Tokens the decoder is fed (every inner node below the root; leaves end phrasings).
    pub fn fed(&self) -> usize {
        (1..self.nodes.len()).filter(|&n| self.inner(n)).count()
    }

    /// Every token of every phrasing (with repeats).
    pub fn tokens(&self) -> impl Iterator<Item = i32> + '_ {
        self.nodes[1..].iter().map(|n| n.token)
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
        let mut wanted = vec![Vec::new(); prefix.len()];
        wanted[prefix.len() - 1] = self.child_tokens(0);
        let lps = self
            .feed(decoder, prefix, 0, &wanted)?
            .pop()
            .unwrap_or_default();
        if self.feed == Feed::Tree {
            let sizes = self.inner_sizes();
            self.tree(decoder, &sizes, (0, 0.0, lps), prefix.len(), &mut out)?;
        } else {
            // Depth-first, so the decoder's cache always holds the path to the node.
            self.descend(decoder, 0, 0.0, lps, prefix.len(), &mut out)?;
        }
        Ok(out)
    }

    /// Inner nodes in each node's subtree, itself included.
    fn inner_sizes(&self) -> Vec<usize> {
        let mut sizes: Vec<usize> = (0..self.nodes.len())
            .map(|n| usize::from(self.inner(n)))
            .collect();
        // A child comes after its parent in `nodes`.
        for n in (1..self.nodes.len()).rev() {
            sizes[self.nodes[n].parent] += sizes[n];
        }
        sizes
    }

    /// Scores what lies below `node` (whose path the decoder's cache holds, up to
    /// `n_past`; `lps`: its children's log-probabilities, `sum`: its own): its
    /// children's subtrees go into tree calls of up to `MAX_TREE_TOKENS` together; a
    /// bigger one has its top fed alone and is split further down.
    fn tree<D: NextToken>(
        &self,
        decoder: &mut D,
        sizes: &[usize],
        (node, sum, lps): (usize, f32, Vec<f32>),
        n_past: usize,
        out: &mut [f32],
    ) -> Result<(), D::Error> {
        let mut group = Vec::new();
        let mut tokens = 0;
        for (k, &child) in self.nodes[node].children.iter().enumerate() {
            let total = sum + lps[k];
            for &p in &self.nodes[child].ends {
                out[p] = total;
            }
            if sizes[child] > MAX_TREE_TOKENS {
                let mut row = decoder.feed(
                    &[self.nodes[child].token],
                    n_past,
                    &[self.child_tokens(child)],
                )?;
                let lps = row.pop().unwrap_or_default();
                self.tree(decoder, sizes, (child, total, lps), n_past + 1, out)?;
            } else if sizes[child] > 0 {
                if tokens + sizes[child] > MAX_TREE_TOKENS {
                    self.feed_group(decoder, &group, n_past, out)?;
                    (group, tokens) = (Vec::new(), 0);
                }
                group.push((child, total));
                tokens += sizes[child];
            }
        }
        if !group.is_empty() {
            self.feed_group(decoder, &group, n_past, out)?;
        }
        Ok(())
    }

    /// One tree call: the inner nodes of the subtrees topped by `group` (each with its
    /// log-probability so far), parents first; leaves need no row of their own.
    fn feed_group<D: NextToken>(
        &self,
        decoder: &mut D,
        group: &[(usize, f32)],
        n_past: usize,
        out: &mut [f32],
    ) -> Result<(), D::Error> {
        let mut order: Vec<(usize, Option<usize>, f32)> = Vec::new(); // node, parent, total
        let mut stack: Vec<(usize, Option<usize>, f32)> = group
            .iter()
            .rev()
            .map(|&(n, total)| (n, None, total))
            .collect();
        while let Some((n, parent, total)) = stack.pop() {
            let at = order.len();
            order.push((n, parent, total));
            let children = self.nodes[n].children.iter().rev();
            stack.extend(
                children
                    .filter(|&&c| self.inner(c))
                    .map(|&c| (c, Some(at), f32::NAN)),
            );
        }
        let tokens: Vec<i32> = order.iter().map(|&(n, _, _)| self.nodes[n].token).collect();
        let parents: Vec<Option<usize>> = order.iter().map(|&(_, p, _)| p).collect();
        let wanted: Vec<Vec<i32>> = order
            .iter()
            .map(|&(n, _, _)| self.child_tokens(n))
            .collect();
        let rows = decoder.feed_tree(&tokens, &parents, n_past, &wanted)?;
        // Parents come first, so each node's total is known when its row is read.
        let mut totals: Vec<f32> = order.iter().map(|&(_, _, t)| t).collect();
        let mut at_of = std::collections::HashMap::new();
        for (i, &(n, _, _)) in order.iter().enumerate() {
            at_of.insert(n, i);
        }
        for (i, &(n, _, _)) in order.iter().enumerate() {
            for (k, &child) in self.nodes[n].children.iter().enumerate() {
                let total = totals[i] + rows[i][k];
                for &p in &self.nodes[child].ends {
                    out[p] = total;
                }
                if let Some(&c) = at_of.get(&child) {
                    totals[c] = total;
                }
            }
        }
        Ok(())
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
            let mut total = sum + lps[k];
            for &p in &self.nodes[child].ends {
                out[p] = total;
            }
            if !self.inner(child) {
                continue;
            }
            // The run: `child`, then while the run's end has one child that is inner.
            let mut run = vec![child];
            while let [only] = self.nodes[*run.last().expect("not empty")].children[..] {
                if !self.runs() || !self.inner(only) {
                    break;
                }
                run.push(only);
            }
            let tokens: Vec<i32> = run.iter().map(|&n| self.nodes[n].token).collect();
            let wanted: Vec<Vec<i32>> = run.iter().map(|&n| self.child_tokens(n)).collect();
            let mut rows = self.feed(decoder, &tokens, n_past, &wanted)?;
            let last_lps = rows.pop().unwrap_or_default();
            for (row, &next) in rows.iter().zip(&run[1..]) {
                total += row[0];
                for &p in &self.nodes[next].ends {
                    out[p] = total;
                }
            }
            let end = *run.last().expect("not empty");
            self.descend(decoder, end, total, last_lps, n_past + run.len(), out)?;
        }
        Ok(())
    }

    /// Feeds `tokens` in one call with runs; else in calls that each end at a token
    /// whose next log-probabilities are wanted (the only row such a decoder returns).
    fn feed<D: NextToken>(
        &self,
        decoder: &mut D,
        tokens: &[i32],
        n_past: usize,
        wanted: &[Vec<i32>],
    ) -> Result<Vec<Vec<f32>>, D::Error> {
        if self.runs() {
            return decoder.feed(tokens, n_past, wanted);
        }
        let mut rows = Vec::with_capacity(tokens.len());
        let mut from = 0;
        for to in 0..tokens.len() {
            if !wanted[to].is_empty() || to + 1 == tokens.len() {
                let mut only_last = vec![Vec::new(); to - from];
                only_last.push(wanted[to].clone());
                let mut chunk = decoder.feed(&tokens[from..=to], n_past + from, &only_last)?;
                rows.append(&mut chunk);
                from = to + 1;
            }
        }
        Ok(rows)
    }

    fn child_tokens(&self, node: usize) -> Vec<i32> {
        self.nodes[node]
            .children
            .iter()
            .map(|&c| self.nodes[c].token)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trigram "decoder": log P(next | the two tokens before it), with a cache of
    /// the tokens by position (as whisper's) and a call counter. Without `rows` it
    /// answers for the last token of a call only, as stock whisper.cpp does.
    struct Trigram {
        rows: bool,
        calls: usize,
        cache: Vec<i32>,
    }

    fn trigram_lp(before: i32, prev: i32, next: i32) -> f32 {
        -(((before * 5 + prev * 7 + next * 3) % 11) as f32) / 4.0 - 0.1
    }

    impl Trigram {
        fn new(rows: bool) -> Trigram {
            Trigram {
                rows,
                calls: 0,
                cache: vec![],
            }
        }
    }

    impl NextToken for Trigram {
        type Error = ();
        fn feed(
            &mut self,
            tokens: &[i32],
            n_past: usize,
            wanted: &[Vec<i32>],
        ) -> Result<Vec<Vec<f32>>, ()> {
            let parents: Vec<Option<usize>> = (0..tokens.len()).map(|i| i.checked_sub(1)).collect();
            let rows = self.feed_tree(tokens, &parents, n_past, wanted)?;
            let last = tokens.len() - 1;
            assert!(
                self.rows || wanted.iter().take(last).all(Vec::is_empty),
                "rows of {tokens:?}"
            );
            // A path's tokens stay in the cache, as whisper's KV cache keeps them.
            self.cache.extend(tokens);
            Ok(rows)
        }

        fn feed_tree(
            &mut self,
            tokens: &[i32],
            parents: &[Option<usize>],
            n_past: usize,
            wanted: &[Vec<i32>],
        ) -> Result<Vec<Vec<f32>>, ()> {
            self.calls += 1;
            assert_eq!(tokens.len(), wanted.len());
            assert!(n_past <= self.cache.len(), "the path is in the cache");
            self.cache.truncate(n_past);
            let mut rows = Vec::new();
            for (i, (&t, w)) in tokens.iter().zip(wanted).enumerate() {
                let prev = match parents[i] {
                    Some(p) => {
                        assert!(p < i, "parents come first");
                        tokens[p]
                    }
                    None => n_past.checked_sub(1).map_or(0, |last| self.cache[last]),
                };
                rows.push(w.iter().map(|&w| trigram_lp(prev, t, w)).collect());
            }
            Ok(rows)
        }
    }

    fn brute(prefix: &[i32], tokens: &[i32]) -> f32 {
        let mut all = prefix.to_vec();
        all.extend(tokens);
        (prefix.len()..all.len())
            .map(|i| trigram_lp(all[i - 2], all[i - 1], all[i]))
            .sum()
    }

    const PREFIX: [i32; 3] = [1, 2, 3];

    /// Scores the phrasings fed as `feed` allows: the same scores as brute force.
    fn scored_as(feed: Feed, phrases: &[Vec<i32>]) -> (Trie, Trigram) {
        let mut trie = Trie::new(feed);
        let mut cost = 0;
        for p in phrases {
            cost += trie.cost_of(p);
            trie.insert(p);
        }
        assert_eq!(trie.decodes(), cost, "cost_of predicts the decodes");
        let mut d = Trigram::new(feed != Feed::Token);
        let scores = trie.score(&mut d, &PREFIX).unwrap();
        for (p, s) in phrases.iter().zip(&scores) {
            assert!((brute(&PREFIX, p) - s).abs() < 1e-4, "{p:?}: {s}");
        }
        (trie, d)
    }

    fn scored(feed: Feed) -> (Trie, Trigram) {
        let phrases: Vec<Vec<i32>> = vec![
            vec![5, 6, 7, 99],
            vec![5, 6, 8, 99],
            vec![5, 9, 99],
            vec![4, 99],
            vec![5, 6, 7, 10, 99],
            vec![5, 6, 7, 99], // a duplicate phrasing scores the same
            vec![3, 4, 5, 6, 99],
        ];
        scored_as(feed, &phrases)
    }

    #[test]
    fn shared_prefixes_are_decoded_once_and_scores_match_brute_force() {
        let (trie, d) = scored(Feed::Token);
        // Inner nodes: 5, 5-6, 5-6-7, 5-6-7-10, 5-6-8, 5-9, 4, 3, 3-4, 3-4-5, 3-4-5-6.
        assert_eq!(trie.decodes(), 11);
        assert_eq!(d.calls, 11 + 1, "and the prefix");
    }

    #[test]
    fn a_run_without_branches_is_one_call_when_every_row_comes_back() {
        let (trie, d) = scored(Feed::Run);
        // 3-4-5-6 is one run; every other inner node has a branching parent.
        assert_eq!(trie.decodes(), 8);
        assert_eq!(d.calls, 8 + 1);
    }

    #[test]
    fn a_tree_is_one_call_and_scores_as_the_runs_do() {
        let (trie, d) = scored(Feed::Tree);
        assert_eq!(trie.decodes(), 8, "the budget counts as runs would");
        assert_eq!(d.calls, 1 + 1, "the prefix, then the whole trie");
    }

    #[test]
    fn a_trie_bigger_than_one_call_is_split_and_scores_the_same() {
        // 600 phrasings under one first token (its subtree too big for one call),
        // branching at the second token, and a few beside it.
        let mut phrases: Vec<Vec<i32>> = (0..600)
            .map(|i| vec![7, 100 + i % 40, 200 + i, 300 + i % 3, 99])
            .collect();
        phrases.push(vec![8, 99]);
        phrases.push(vec![9, 10, 99]);
        let (trie, d) = scored_as(Feed::Tree, &phrases);
        // Under 7: 40 subtrees of 31 inner nodes (a second token, 15 third and 15
        // fourth), 12 to a call; 8 and 9-10 go in one more.
        assert_eq!(
            trie.inner_sizes()[0],
            1 + 1 + 40 * 31 + 1 + 2,
            "root, 7, …, 8, 9-10"
        );
        assert_eq!(
            d.calls,
            1 + 1 + 40_usize.div_ceil(12) + 1,
            "prefix, 7, its groups, 8 and 9"
        );
    }
}
