//! Delivery receipts: what the SMSC reports, after accepting a part, about whether it
//! reached the phone.
//!
//! SMPP 3.4 carries them as a `deliver_sm` with esm_class "MC delivery receipt" and a
//! text of the (informal but universal) form of its appendix B:
//! `id:IIII sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DELIVRD
//! err:000 text:...`. Only `id` and `stat` matter here.

/// The final (or not yet final) state of one submitted part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptState {
    Delivered,
    /// Expired, deleted, undeliverable, rejected or unknown: it will not arrive.
    Failed,
    /// Accepted or en route: an intermediate notification, nothing to record.
    Pending,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The id the SMSC gave the part in its `submit_sm_resp`.
    pub message_id: String,
    pub state: ReceiptState,
    /// The `stat` word as sent, for the outbox's last error.
    pub stat: String,
}

impl Receipt {
    /// Parses a receipt text; `None` if it has no `id:` or no `stat:`.
    pub fn parse(text: &str) -> Option<Receipt> {
        let field = |name: &str| {
            let lower = text.to_ascii_lowercase();
            let at = lower
                .match_indices(name)
                .find(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b' ')?
                .0;
            text[at + name.len()..].split_whitespace().next()
        };
        let message_id = field("id:")?.to_string();
        let stat = field("stat:")?.to_ascii_uppercase();
        let state = match stat.as_str() {
            "DELIVRD" => ReceiptState::Delivered,
            "ACCEPTD" | "ENROUTE" => ReceiptState::Pending,
            _ => ReceiptState::Failed,
        };
        Some(Receipt {
            message_id,
            state,
            stat,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_appendix_b_format() {
        let r = Receipt::parse(
            "id:0123456789 sub:001 dlvrd:001 submit date:2611221510 done date:2611221511 stat:DELIVRD err:000 text:Tømningskalender",
        )
        .unwrap();
        assert_eq!(r.message_id, "0123456789");
        assert_eq!(r.state, ReceiptState::Delivered);
        let r = Receipt::parse("id:ab-7 sub:001 dlvrd:000 stat:UNDELIV err:001").unwrap();
        assert_eq!(
            (r.message_id.as_str(), r.state),
            ("ab-7", ReceiptState::Failed)
        );
        assert_eq!(r.stat, "UNDELIV");
        let r = Receipt::parse("ID:x STAT:enroute").unwrap();
        assert_eq!(r.state, ReceiptState::Pending);
        // "text:" may contain anything, including a fake "id:" after the real one.
        let r = Receipt::parse("id:real stat:EXPIRED text:id:fake").unwrap();
        assert_eq!(
            (r.message_id.as_str(), r.state),
            ("real", ReceiptState::Failed)
        );
        assert_eq!(Receipt::parse("hello"), None);
        assert_eq!(Receipt::parse("id:1 sub:001"), None);
    }
}
