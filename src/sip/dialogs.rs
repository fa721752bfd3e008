//! Keeping rsipstack's dialog layer clean. The layer holds every dialog (with its
//! INVITE) until it is removed by hand; one left behind per call grew the gateway
//! by ~28 KB a call. A [`Registration`] removes its dialog when dropped, so a call's
//! dialog goes on every path its owner ends by (BYE either way, CANCEL, failure,
//! timeout, a panic). [`SipStats`] shows the layer's size in `/metrics`.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;

/// A dialog's place in the dialog layer, given up on drop.
pub struct Registration {
    layer: Arc<DialogLayer>,
    dialog: InviteDialog,
}

impl Registration {
    pub fn new(layer: Arc<DialogLayer>, dialog: InviteDialog) -> Registration {
        Registration { layer, dialog }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // The id is read now: a UAC dialog's id gains the remote tag when answered.
        self.layer.remove_dialog(&self.dialog.id());
    }
}

/// Dialogs and transactions the SIP stack holds, read at scrape time.
pub struct SipStats(pub Arc<DialogLayer>);

impl std::fmt::Debug for SipStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SipStats")
    }
}

impl Collector for SipStats {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.endpoint.get_stats();
        let gauges = [
            (
                "voicebot_sip_dialogs",
                "SIP dialogs held by the stack (calls and agent legs)",
                self.0.len(),
            ),
            (
                "voicebot_sip_transactions",
                "SIP transactions running",
                stats.running_transactions,
            ),
            (
                "voicebot_sip_transactions_finished",
                "Finished SIP transactions kept for retransmissions",
                stats.finished_transactions,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value as i64);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}
