//! What the caller hears, in the order the conversation said it: one queue per call.
//!
//! An item's audio is either ready (a cached prompt) or still being synthesized, in
//! chunks. Items are released to the media in order: a later item waits until every
//! chunk of the one before has been released, so a cached "anything else?" never
//! overtakes the answer it follows. A barge-in cancels everything not yet released as
//! one, including chunks still to come. Sans-IO: the driver hands released audio to
//! the media, marked with its item's id so the media can tell when it starts playing.

use std::collections::VecDeque;

struct Item {
    id: u64,
    chunks: VecDeque<Vec<i16>>,
    /// No more chunks will come.
    complete: bool,
    /// Some of its audio went to the media already.
    started: bool,
}

/// Audio the media may play now; `mark` is the item's id on its first chunk.
#[derive(Debug, PartialEq)]
pub struct Release {
    pub pcm: Vec<i16>,
    pub mark: Option<u64>,
}

#[derive(Default)]
pub struct Playback {
    items: VecDeque<Item>,
    next_id: u64,
}

impl Playback {
    /// Queues audio that is ready; returns its item id.
    pub fn ready(&mut self, pcm: Vec<i16>) -> u64 {
        let id = self.streaming();
        self.chunk(id, pcm);
        self.finished(id);
        id
    }

    /// Queues an item whose audio will come in chunks (`chunk`, then `finished`).
    pub fn streaming(&mut self) -> u64 {
        self.next_id += 1;
        self.items.push_back(Item {
            id: self.next_id,
            chunks: VecDeque::new(),
            complete: false,
            started: false,
        });
        self.next_id
    }

    /// More audio of item `id`; dropped if the item was cancelled.
    pub fn chunk(&mut self, id: u64, pcm: Vec<i16>) {
        if let Some(item) = self.items.iter_mut().find(|i| i.id == id) {
            if !pcm.is_empty() {
                item.chunks.push_back(pcm);
            }
        }
    }

    /// Item `id` has all its audio.
    pub fn finished(&mut self, id: u64) {
        if let Some(item) = self.items.iter_mut().find(|i| i.id == id) {
            item.complete = true;
        }
    }

    /// Everything that may go to the media now, in order.
    pub fn release(&mut self) -> Vec<Release> {
        let mut out = Vec::new();
        while let Some(front) = self.items.front_mut() {
            while let Some(pcm) = front.chunks.pop_front() {
                let mark = (!front.started).then_some(front.id);
                front.started = true;
                out.push(Release { pcm, mark });
            }
            if !front.complete {
                break;
            }
            self.items.pop_front();
        }
        out
    }

    /// Drops all audio not yet released, and chunks still to come.
    pub fn cancel(&mut self) {
        self.items.clear();
    }

    /// Some audio is still to be released (an item is being synthesized or waits).
    pub fn pending(&self) -> bool {
        !self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(r: &[Release]) -> Vec<(usize, Option<u64>)> {
        r.iter().map(|r| (r.pcm.len(), r.mark)).collect()
    }

    #[test]
    fn a_cached_follow_up_waits_for_the_answer_being_synthesized() {
        let mut p = Playback::default();
        let answer = p.streaming();
        let follow_up = p.ready(vec![0; 50]);
        assert!(p.release().is_empty(), "nothing of the answer yet");
        p.chunk(answer, vec![0; 10]);
        assert_eq!(marks(&p.release()), vec![(10, Some(answer))]);
        p.chunk(answer, vec![0; 20]);
        assert_eq!(marks(&p.release()), vec![(20, None)]);
        assert!(p.pending());
        p.finished(answer);
        assert_eq!(marks(&p.release()), vec![(50, Some(follow_up))]);
        assert!(!p.pending());
    }

    #[test]
    fn ready_items_go_out_in_order_at_once() {
        let mut p = Playback::default();
        let a = p.ready(vec![0; 1]);
        let b = p.ready(vec![0; 2]);
        assert_eq!(marks(&p.release()), vec![(1, Some(a)), (2, Some(b))]);
        assert!(p.release().is_empty());
    }

    #[test]
    fn a_barge_in_cancels_queued_audio_and_chunks_still_to_come() {
        let mut p = Playback::default();
        let answer = p.streaming();
        p.ready(vec![0; 50]);
        p.chunk(answer, vec![0; 10]);
        p.release();
        p.cancel();
        assert!(!p.pending());
        p.chunk(answer, vec![0; 10]);
        p.finished(answer);
        assert!(p.release().is_empty());
        let next = p.ready(vec![0; 5]);
        assert_eq!(marks(&p.release()), vec![(5, Some(next))]);
    }

    #[test]
    fn an_item_that_synthesized_nothing_does_not_block_the_queue() {
        let mut p = Playback::default();
        let empty = p.streaming();
        let after = p.ready(vec![0; 3]);
        p.finished(empty);
        assert_eq!(marks(&p.release()), vec![(3, Some(after))]);
    }
}
