//! A test SMSC: a real SMPP 3.4 peer over TCP, built on the `rusmpp` codec, for the
//! integration tests and for a developer (`voicebot smsc`).
//!
//! It accepts any bind_transceiver, acknowledges every submit_sm with a fresh message
//! id (or rejects it, see [`Fate`]), records what it received (addresses, data_coding, esm_class, the short_message
//! bytes), sends the delivery receipt a moment later when one was asked for, and
//! answers enquire_link. It can be stopped — dropping every link, as a crashed SMSC
//! would — and started again on the same port, keeping its record.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use rusmpp::pdus::{BindTransceiverResp, DeliverSm, SubmitSm, SubmitSmResp};
use rusmpp::tokio_codec::CommandCodec;
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::EsmClass;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

/// One submit_sm as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The binding ESME's system_id.
    pub system_id: String,
    pub from: String,
    pub to: String,
    pub data_coding: u8,
    pub esm_class: u8,
    pub registered_delivery: u8,
    pub short_message: Vec<u8>,
    /// The id this SMSC answered with (empty if it rejected the message).
    pub message_id: String,
}

/// What becomes of messages to a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fate {
    /// Accepted, then receipted DELIVRD.
    #[default]
    Delivered,
    /// Accepted, then receipted UNDELIV.
    Undeliverable,
    /// Refused in the submit_sm_resp with this status.
    Rejected(CommandStatus),
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Submitted>>,
    fates: Mutex<HashMap<String, Fate>>,
    next_id: AtomicU64,
    binds: AtomicU64,
    enquire_links: AtomicU64,
}

pub struct TestSmsc {
    addr: SocketAddr,
    shared: Arc<Shared>,
    receipt_delay: Duration,
    running: Option<(CancellationToken, JoinHandle<()>)>,
}

impl TestSmsc {
    /// Listens on `addr` (port 0 picks one; [`TestSmsc::addr`] tells which).
    pub async fn start(addr: SocketAddr) -> io::Result<TestSmsc> {
        let mut smsc = TestSmsc {
            addr,
            shared: Arc::default(),
            receipt_delay: Duration::from_millis(50),
            running: None,
        };
        smsc.restart().await?;
        Ok(smsc)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every submit_sm received so far, across restarts.
    pub fn received(&self) -> Vec<Submitted> {
        self.shared.received.lock().expect("not poisoned").clone()
    }

    /// Successful binds so far.
    pub fn binds(&self) -> u64 {
        self.shared.binds.load(Ordering::Relaxed)
    }

    /// enquire_link requests answered so far.
    pub fn enquire_links(&self) -> u64 {
        self.shared.enquire_links.load(Ordering::Relaxed)
    }

    /// Decides what happens to messages to `to` (digits, as in destination_addr).
    pub fn set_fate(&self, to: &str, fate: Fate) {
        self.shared
            .fates
            .lock()
            .expect("not poisoned")
            .insert(to.to_string(), fate);
    }

    /// Closes the listener and drops every link without unbinding.
    pub async fn stop(&mut self) {
        if let Some((cancel, task)) = self.running.take() {
            cancel.cancel();
            let _ = task.await;
        }
    }

    /// Listens again on the same address (after [`TestSmsc::stop`]).
    pub async fn restart(&mut self) -> io::Result<()> {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await?;
        self.addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(accept(
            listener,
            self.shared.clone(),
            self.receipt_delay,
            cancel.clone(),
        ));
        self.running = Some((cancel, task));
        Ok(())
    }
}

impl Drop for TestSmsc {
    fn drop(&mut self) {
        if let Some((cancel, _)) = &self.running {
            cancel.cancel();
        }
    }
}

async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    receipt_delay: Duration,
    cancel: CancellationToken,
) {
    // Dropping the set aborts the links: that is what `stop` means.
    let mut links = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    links.spawn(link(stream, shared.clone(), receipt_delay));
                }
                Err(e) => tracing::warn!(error = %e, "test SMSC accept failed"),
            },
            Some(_) = links.join_next(), if !links.is_empty() => {}
        }
    }
}

fn resp(to: &Command, status: CommandStatus, pdu: impl Into<Pdu>) -> Command {
    Command::new(status, to.sequence_number(), pdu)
}

async fn link(stream: TcpStream, shared: Arc<Shared>, receipt_delay: Duration) {
    let mut framed = Framed::new(stream, CommandCodec::new());
    // Receipts are sent from timers; they come back here to share the socket.
    let (receipts_tx, mut receipts) = mpsc::unbounded_channel::<Command>();
    let sequence = Arc::new(AtomicU32::new(1));
    let mut system_id: Option<String> = None;
    loop {
        let cmd = tokio::select! {
            Some(out) = receipts.recv() => {
                if framed.send(out).await.is_err() {
                    return;
                }
                continue;
            }
            next = framed.next() => match next {
                Some(Ok(cmd)) => cmd,
                _ => return,
            },
        };
        // Body-less PDUs (enquire_link, unbind) decode without a `Pdu`: go by the id.
        let reply = match (cmd.id(), cmd.pdu()) {
            (_, Some(Pdu::BindTransceiver(b))) => {
                system_id = Some(b.system_id.to_string());
                shared.binds.fetch_add(1, Ordering::Relaxed);
                let id = COctetString::from_str("TestSmsc").expect("valid system id");
                Some(resp(
                    &cmd,
                    CommandStatus::EsmeRok,
                    BindTransceiverResp::builder().system_id(id).build(),
                ))
            }
            (_, Some(Pdu::SubmitSm(s))) => match &system_id {
                None => Some(resp(&cmd, CommandStatus::EsmeRinvbndsts, Pdu::GenericNack)),
                Some(esme) => {
                    let to = s.destination_addr.to_string();
                    let fate = shared.fates.lock().expect("not poisoned").get(&to).copied();
                    let fate = fate.unwrap_or_default();
                    let (status, message_id) = match fate {
                        Fate::Rejected(status) => (status, String::new()),
                        _ => {
                            let n = shared.next_id.fetch_add(1, Ordering::Relaxed) + 1;
                            (CommandStatus::EsmeRok, format!("{n:08x}"))
                        }
                    };
                    let received = record(esme, s, &message_id);
                    tracing::info!(
                        %message_id,
                        ?status,
                        data_coding = received.data_coding,
                        esm_class = received.esm_class,
                        bytes = received.short_message.len(),
                        "test SMSC: submit_sm"
                    );
                    if status == CommandStatus::EsmeRok && received.registered_delivery & 0x03 != 0
                    {
                        let receipt = receipt(&received, fate, &sequence);
                        let tx = receipts_tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(receipt_delay).await;
                            let _ = tx.send(receipt);
                        });
                    }
                    shared.received.lock().expect("not poisoned").push(received);
                    let id = COctetString::from_str(&message_id).expect("hex id");
                    Some(resp(&cmd, status, SubmitSmResp::new(id, Vec::new())))
                }
            },
            (CommandId::EnquireLink, _) => {
                shared.enquire_links.fetch_add(1, Ordering::Relaxed);
                Some(resp(&cmd, CommandStatus::EsmeRok, Pdu::EnquireLinkResp))
            }
            (CommandId::Unbind, _) => {
                let _ = framed
                    .send(resp(&cmd, CommandStatus::EsmeRok, Pdu::UnbindResp))
                    .await;
                return;
            }
            (CommandId::DeliverSmResp | CommandId::GenericNack, _) => None,
            _ => Some(resp(&cmd, CommandStatus::EsmeRinvcmdid, Pdu::GenericNack)),
        };
        if let Some(reply) = reply {
            if framed.send(reply).await.is_err() {
                return;
            }
        }
    }
}

fn record(system_id: &str, s: &SubmitSm, message_id: &str) -> Submitted {
    Submitted {
        system_id: system_id.to_string(),
        from: s.source_addr.to_string(),
        to: s.destination_addr.to_string(),
        data_coding: s.data_coding.into(),
        esm_class: s.esm_class.into(),
        registered_delivery: s.registered_delivery.into(),
        short_message: s.short_message().to_vec(),
        message_id: message_id.to_string(),
    }
}

/// A deliver_sm carrying the SMPP 3.4 appendix B receipt text.
fn receipt(s: &Submitted, fate: Fate, sequence: &AtomicU32) -> Command {
    let date = yymmddhhmm(SystemTime::now());
    let (dlvrd, stat, err) = if fate == Fate::Undeliverable {
        ("000", "UNDELIV", "001")
    } else {
        ("001", "DELIVRD", "000")
    };
    let text = format!(
        "id:{} sub:001 dlvrd:{dlvrd} submit date:{date} done date:{date} stat:{stat} err:{err} text:",
        s.message_id
    );
    let addr = |a: &str| COctetString::from_str(a).unwrap_or_else(|_| COctetString::empty());
    let deliver = DeliverSm::builder()
        .source_addr(addr(&s.to))
        .destination_addr(addr(&s.from))
        .esm_class(EsmClass::from(0x04))
        .short_message(OctetString::from_vec(text.into_bytes()).expect("receipt fits"))
        .build();
    Command::new(
        CommandStatus::EsmeRok,
        sequence.fetch_add(1, Ordering::Relaxed),
        deliver,
    )
}

/// UTC `YYMMDDhhmm`, as receipts date things.
fn yymmddhhmm(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{:02}{month:02}{day:02}{:02}{:02}",
        year % 100,
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_360_260); // 2026-11-22 15:11 UTC
        assert_eq!(yymmddhhmm(t), "2611221511");
        assert_eq!(
            yymmddhhmm(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "0002290000"
        );
    }
}
