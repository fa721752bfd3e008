//! The records thread and the writes waiting for it.
//!
//! Each call view handed over is the whole call as it stands, so a newer view of a
//! call still waiting replaces the older one in its place: what waits is bounded by
//! the calls (live and just ended), not by their turns. A write that fails because the
//! database is away (PostgreSQL restarting, a locked SQLite file) waits and is tried
//! again, so an outage delays records instead of losing them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

use super::{Records, RecordsError};
use crate::ops::live::CallView;

/// Writes that may wait at once. Call views are one per call, so this is reached
/// only by SMS updates piling up behind a long outage; beyond it writes are dropped
/// (logged and counted) rather than growing without end.
const MAX_WAITING: usize = 10_000;
/// Waits between tries while the database is away: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_LAST: Duration = Duration::from_secs(30);

/// What the writer thread is asked to do.
pub enum Write {
    Call(Box<CallView>),
    SmsSent(String),
    Retention {
        now_unix: i64,
        retention_days: u32,
    },
    /// Answered once every write sent before it is done.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Writes in order; `seq` numbers them so a waiting call view can be found again.
#[derive(Default)]
struct Queue {
    items: VecDeque<Write>,
    /// The number of `items[0]`.
    first: u64,
    /// Call key → the number of its view waiting in `items`.
    calls: HashMap<String, u64>,
    /// Every `RecordWriter` is gone: the thread ends once `items` is empty.
    closed: bool,
}

impl Queue {
    /// Queues `write`, or puts a call view in the place of the one waiting. False: full.
    fn push(&mut self, write: Write) -> bool {
        if let Write::Call(view) = &write {
            if let Some(&seq) = self.calls.get(&view.call_id) {
                self.items[(seq - self.first) as usize] = write;
                return true;
            }
        }
        if self.items.len() >= MAX_WAITING {
            return false;
        }
        if let Write::Call(view) = &write {
            let seq = self.first + self.items.len() as u64;
            self.calls.insert(view.call_id.clone(), seq);
        }
        self.items.push_back(write);
        true
    }

    fn pop(&mut self) -> Option<Write> {
        let write = self.items.pop_front()?;
        if let Write::Call(view) = &write {
            self.calls.remove(&view.call_id);
        }
        self.first += 1;
        Some(write)
    }

    /// Puts back a write that failed for now, first in line, unless a newer view of
    /// the same call came meanwhile (that one is written instead).
    fn retry(&mut self, write: Write) {
        if let Write::Call(view) = &write {
            if self.calls.contains_key(&view.call_id) {
                return;
            }
            self.calls.insert(view.call_id.clone(), self.first - 1);
        }
        self.items.push_front(write);
        self.first -= 1;
    }
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    failures: Counter,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Closes the queue when the last `RecordWriter` is dropped.
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_all();
    }
}

/// Sends writes to the records thread; cheap to clone.
#[derive(Clone)]
pub struct RecordWriter(Arc<Handle>);

impl RecordWriter {
    /// Starts the thread that owns the write connection; it ends when every writer
    /// is dropped and what waits is written. Writes that fail for good are logged and
    /// counted in `failures`.
    pub fn spawn(records: Records, failures: Counter) -> RecordWriter {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            failures,
        });
        let thread = shared.clone();
        std::thread::Builder::new()
            .name("call-records".into())
            .spawn(move || run(records, &thread))
            .expect("spawn call-records thread");
        RecordWriter(Arc::new(Handle(shared)))
    }

    pub fn send(&self, write: Write) {
        let shared = &self.0 .0;
        if shared.lock().push(write) {
            shared.ready.notify_one();
        } else {
            shared.failures.inc();
            tracing::error!(
                waiting = MAX_WAITING,
                "call records: too many writes waiting for the database; record lost"
            );
        }
    }

    /// Waits until every write sent so far is done (on disk, or failed for good and
    /// logged); while the database is away, until it is back.
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Write::Flush(tx));
        rx.await.ok();
    }
}

fn run(mut records: Records, shared: &Shared) {
    let mut wait = RETRY_FIRST;
    loop {
        let write = {
            let mut queue = shared.lock();
            loop {
                if let Some(w) = queue.pop() {
                    break w;
                }
                if queue.closed {
                    return;
                }
                queue = shared.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
        };
        let write = match write {
            Write::Flush(done) => {
                done.send(()).ok();
                continue;
            }
            other => other,
        };
        match apply(&mut records, &write) {
            Ok(()) => {
                if wait > RETRY_FIRST {
                    tracing::info!("call records: the database is back; writing what waited");
                }
                wait = RETRY_FIRST;
            }
            Err(e) if e.is_transient() => {
                if wait == RETRY_FIRST {
                    tracing::warn!(error = %e, "call records: the database is away; writes wait");
                }
                shared.lock().retry(write);
                std::thread::sleep(wait);
                wait = (wait * 2).min(RETRY_LAST);
            }
            Err(e) => {
                shared.failures.inc();
                tracing::error!(error = %e, "call record not written");
            }
        }
    }
}

fn apply(records: &mut Records, write: &Write) -> Result<(), RecordsError> {
    match write {
        Write::Call(call) => records.save(call),
        Write::SmsSent(id) => records.sms_sent(id),
        Write::Retention {
            now_unix,
            retention_days,
        } => records
            .apply_retention(*now_unix, *retention_days)
            .map(|n| tracing::info!(turns = n, "retention: transcripts blanked")),
        // Answered by the thread as it comes to it.
        Write::Flush(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::live::LiveCalls;

    fn view(id: &str, said: &str) -> Write {
        let live = LiveCalls::new(4);
        live.start(id, 1_000, "70101010", "", "da");
        live.said(id, 1.0, "caller", said);
        Write::Call(Box::new(live.get(id).unwrap()))
    }

    /// (call id, its last line) or the SMS update's call id.
    fn order(queue: &mut Queue) -> Vec<String> {
        std::iter::from_fn(|| queue.pop())
            .map(|w| match w {
                Write::Call(v) => format!("{}:{}", v.call_id, v.lines[0].text),
                Write::SmsSent(id) => format!("sms {id}"),
                _ => "other".into(),
            })
            .collect()
    }

    #[test]
    fn a_newer_view_of_a_waiting_call_takes_the_older_ones_place() {
        let mut q = Queue::default();
        assert!(q.push(view("a", "one")));
        assert!(q.push(Write::SmsSent("a".into())));
        assert!(q.push(view("b", "one")));
        assert!(q.push(view("a", "two")));
        assert_eq!(order(&mut q), ["a:two", "sms a", "b:one"]);
        // Once written, a call's next view queues anew.
        assert!(q.push(view("a", "three")));
        assert_eq!(order(&mut q), ["a:three"]);
    }

    #[test]
    fn a_failed_write_goes_back_first_unless_a_newer_view_came() {
        let mut q = Queue::default();
        q.push(view("a", "one"));
        q.push(view("b", "one"));
        let a = q.pop().unwrap();
        q.retry(a);
        let a = q.pop().unwrap();
        q.push(view("a", "two"));
        q.retry(a); // superseded: dropped
        let b = q.pop().unwrap();
        q.push(view("b", "two"));
        q.retry(b); // superseded too
        assert_eq!(order(&mut q), ["a:two", "b:two"]);
    }

    #[test]
    fn the_queue_is_bounded_but_call_views_replace_in_place() {
        let mut q = Queue::default();
        q.push(view("a", "one"));
        for i in 1..MAX_WAITING {
            assert!(q.push(Write::SmsSent(i.to_string())));
        }
        assert!(!q.push(Write::SmsSent("over".into())));
        assert!(!q.push(view("b", "one")), "a new call waits for room");
        assert!(q.push(view("a", "two")), "a waiting call is updated");
        assert_eq!(q.items.len(), MAX_WAITING);
    }
}
