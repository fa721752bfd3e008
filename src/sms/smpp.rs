//! Sending over SMPP 3.4 to an SMSC, bound as a transceiver so delivery receipts come
//! back on the same link.
//!
//! Built on `rusmppc` (an SMPP 5.0 client) rather than the bare `rusmpp` codec: it
//! speaks 3.4 well enough once its interface-version check is off and the bind says
//! 0x34, and it brings request/response matching, response timeouts and the
//! enquire_link keepalive. What it does not do is reconnect, so [`SmppSender::start`]
//! runs a task that binds, reads events until the link drops, and binds again with
//! backoff; submissions take whatever link is bound at the moment.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use rusmpp::pdus::{BindTransceiver, DeliverSmResp, SubmitSm};
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{
    DataCoding, EsmClass, InterfaceVersion, MessageType, Npi, RegisteredDelivery, Ton,
};
use rusmpp::{CommandId, CommandStatus, Pdu};
use rusmppc::error::Error as SmppError;
use rusmppc::{Client, ConnectionBuilder, Event};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::encoding;
use super::receipt::Receipt;
use super::submit::{Outgoing, SendError, Submit, SubmitOk};
use crate::config::SmppConfig;

/// Longest wait between two bind attempts.
const MAX_RECONNECT: Duration = Duration::from_secs(30);

pub struct SmppSender {
    link: watch::Receiver<Option<Client>>,
    from: Address,
    /// How long a submission waits for a link that is being (re)bound.
    wait_for_link: Duration,
}

impl SmppSender {
    /// Starts the link task (which ends, unbound, when `cancel` fires); receipts for
    /// submitted parts are sent to `receipts`. Fails only on credentials that do not
    /// fit a bind PDU.
    pub fn start(
        config: &SmppConfig,
        from: &str,
        receipts: mpsc::UnboundedSender<Receipt>,
        cancel: CancellationToken,
    ) -> Result<(SmppSender, JoinHandle<()>), String> {
        let bind = BindTransceiver::builder()
            .system_id(field("system_id", &config.system_id)?)
            .password(field("password", &config.password)?)
            .system_type(field("system_type", &config.system_type)?)
            .interface_version(InterfaceVersion::Smpp3_4)
            .addr_ton(Ton::Unknown)
            .addr_npi(Npi::Unknown)
            .address_range(COctetString::empty())
            .build();
        let (tx, link) = watch::channel(None);
        let task = tokio::spawn(keep_bound(config.clone(), bind, tx, receipts, cancel));
        let sender = SmppSender {
            link,
            from: Address::sender(from),
            wait_for_link: Duration::from_millis(config.response_timeout_ms),
        };
        Ok((sender, task))
    }

    async fn bound(&self) -> Option<Client> {
        let mut link = self.link.clone();
        let wait = async move {
            let bound = link
                .wait_for(|c| c.as_ref().is_some_and(Client::is_active))
                .await;
            bound.ok().and_then(|c| c.clone())
        };
        tokio::time::timeout(self.wait_for_link, wait)
            .await
            .ok()
            .flatten()
    }
}

#[async_trait]
impl Submit for SmppSender {
    async fn submit(&self, msg: &Outgoing) -> Result<SubmitOk, SendError> {
        let encoded = encoding::encode(&msg.text, msg.id as u8)
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        let to = COctetString::from_str(msg.to.digits())
            .map_err(|e| SendError::Permanent(format!("destination: {e}")))?;
        let client = self
            .bound()
            .await
            .ok_or_else(|| SendError::Retry("no SMPP link bound".into()))?;
        let own = msg.from.as_deref().map(Address::sender);
        let from = own.as_ref().unwrap_or(&self.from);
        let mut ids = Vec::with_capacity(encoded.parts.len());
        // Parts go one by one; if one fails, the retry sends them all again with the
        // same reference, and the phone joins whichever copies arrive.
        for part in &encoded.parts {
            let short_message = OctetString::from_slice(part)
                .map_err(|e| SendError::Permanent(format!("short_message: {e}")))?;
            let submit = SubmitSm::builder()
                .source_addr_ton(from.ton)
                .source_addr_npi(from.npi)
                .source_addr(from.addr.clone())
                .dest_addr_ton(Ton::International)
                .dest_addr_npi(Npi::Isdn)
                .destination_addr(to.clone())
                .esm_class(EsmClass::from(encoded.esm_class()))
                .registered_delivery(RegisteredDelivery::from(1))
                .data_coding(DataCoding::from(encoded.coding.data_coding()))
                .short_message(short_message)
                .build();
            let resp = client.submit_sm(submit).await.map_err(classify)?;
            ids.push(resp.message_id().to_string());
        }
        Ok(SubmitOk { message_ids: ids })
    }
}

/// Which submit_sm failures are the message's fault, and which the link's or SMSC's.
fn classify(e: SmppError) -> SendError {
    match &e {
        SmppError::UnexpectedResponse { response } => {
            let status = response.status();
            let permanent = matches!(
                status,
                CommandStatus::EsmeRinvmsglen
                    | CommandStatus::EsmeRinvsrcadr
                    | CommandStatus::EsmeRinvdstadr
                    | CommandStatus::EsmeRinvesmclass
                    | CommandStatus::EsmeRinvsrcton
                    | CommandStatus::EsmeRinvsrcnpi
                    | CommandStatus::EsmeRinvdstton
                    | CommandStatus::EsmeRinvdstnpi
                    | CommandStatus::EsmeRinvdcs
                    | CommandStatus::EsmeRprohibited
            );
            let text = format!("SMSC answered {status:?}");
            if permanent {
                SendError::Permanent(text)
            } else {
                SendError::Retry(text)
            }
        }
        _ => SendError::Retry(e.to_string()),
    }
}

/// An SMPP address with its type of number.
struct Address {
    addr: COctetString<1, 21>,
    ton: Ton,
    npi: Npi,
}

impl Address {
    /// `+4512345678` is international, `1919` a short code, anything else alphanumeric
    /// (config validation keeps it within 11 GSM characters).
    fn sender(from: &str) -> Address {
        let digits = from.strip_prefix('+').unwrap_or(from);
        let (ton, npi, text) = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            let ton = if from.starts_with('+') {
                Ton::International
            } else {
                Ton::Unknown
            };
            (ton, Npi::Isdn, digits)
        } else {
            (Ton::Alphanumeric, Npi::Unknown, from)
        };
        Address {
            addr: COctetString::from_str(text).unwrap_or_else(|_| COctetString::empty()),
            ton,
            npi,
        }
    }
}

/// A bind field: at most `MAX - 1` characters (the PDU counts the NUL).
fn field<const MAX: usize>(name: &str, value: &str) -> Result<COctetString<1, MAX>, String> {
    COctetString::from_str(value)
        .map_err(|e| format!("smpp.{name}: at most {} characters ({e})", MAX - 1))
}

/// Binds, serves the link until it drops, and binds again, until cancelled.
async fn keep_bound(
    config: SmppConfig,
    bind_pdu: BindTransceiver,
    link: watch::Sender<Option<Client>>,
    receipts: mpsc::UnboundedSender<Receipt>,
    cancel: CancellationToken,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let bound = tokio::select! {
            _ = cancel.cancelled() => break,
            r = bind(&config, bind_pdu.clone()) => r,
        };
        match bound {
            Ok((client, events)) => {
                tracing::info!(host = %config.host, port = config.port, "SMPP link bound");
                backoff = Duration::from_millis(250);
                link.send_replace(Some(client.clone()));
                serve(&client, events, &receipts, &cancel).await;
                link.send_replace(None);
                if cancel.is_cancelled() {
                    // Polite but bounded: the SMSC may be the reason we are stopping.
                    let bye = async {
                        let _ = client.unbind().await;
                        let _ = client.close_and_wait().await;
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(1), bye).await;
                    break;
                }
                tracing::warn!("SMPP link lost; binding again");
            }
            Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "SMPP bind failed"),
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_RECONNECT);
    }
}

async fn bind(
    c: &SmppConfig,
    pdu: BindTransceiver,
) -> Result<(Client, impl futures::Stream<Item = Event> + Unpin), SmppError> {
    let timeout = Duration::from_millis(c.response_timeout_ms);
    let (client, events) = ConnectionBuilder::new()
        .disable_interface_version_check()
        .enquire_link_interval(Duration::from_secs(c.enquire_link_secs.max(1)))
        .enquire_link_response_timeout(timeout)
        .response_timeout(timeout)
        .connect(format!("smpp://{}:{}", c.host, c.port))
        .await?;
    if let Err(e) = client.bind_transceiver(pdu).await {
        let _ = client.close().await;
        return Err(e);
    }
    Ok((client, events))
}

/// Reads the link's events until it closes: answers deliver_sm and passes receipts on.
async fn serve(
    client: &Client,
    mut events: impl futures::Stream<Item = Event> + Unpin,
    receipts: &mpsc::UnboundedSender<Receipt>,
    cancel: &CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            e = events.next() => e,
        };
        match event {
            None => return,
            Some(Event::Error(e)) => tracing::warn!(error = %e, "SMPP link error"),
            // Body-less PDUs (unbind) decode without a `Pdu`: go by the id.
            Some(Event::Incoming(cmd)) => match (cmd.id(), cmd.pdu()) {
                (_, Some(Pdu::DeliverSm(d))) => {
                    if d.esm_class.message_type
                        == MessageType::ShortMessageContainsMCDeliveryReceipt
                    {
                        match std::str::from_utf8(d.short_message())
                            .ok()
                            .and_then(Receipt::parse)
                        {
                            Some(r) => {
                                let _ = receipts.send(r);
                            }
                            None => tracing::warn!("unreadable SMPP delivery receipt"),
                        }
                    }
                    // Acknowledged either way: a mobile-originated SMS is not ours to keep.
                    if let Err(e) = client
                        .deliver_sm_resp(cmd.sequence_number(), DeliverSmResp::default())
                        .await
                    {
                        tracing::warn!(error = %e, "deliver_sm_resp not sent");
                    }
                }
                (CommandId::Unbind, _) => {
                    let _ = client.unbind_resp(cmd.sequence_number()).await;
                    let _ = client.close().await;
                    return;
                }
                _ => tracing::debug!(id = ?cmd.id(), "SMPP command ignored"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_address_types() {
        let a = Address::sender("EksKommune");
        assert_eq!(
            (a.ton, a.npi, a.addr.as_str()),
            (Ton::Alphanumeric, Npi::Unknown, "EksKommune")
        );
        let a = Address::sender("+4570101010");
        assert_eq!(
            (a.ton, a.npi, a.addr.as_str()),
            (Ton::International, Npi::Isdn, "4570101010")
        );
        let a = Address::sender("1919");
        assert_eq!((a.ton, a.addr.as_str()), (Ton::Unknown, "1919"));
    }
}
