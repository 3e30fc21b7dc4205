//! Lock-free packet counters, rendered as Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::codec::MessageType;
use crate::server::{DropReason, MALFORMED_LABELS, Outcome, ReplyKind};

/// Outcome labels; the index is the counter column.
const OUTCOMES: [&str; 18] = [
    "offer",
    "ack",
    "nak",
    "release",
    "decline",
    "handled",
    MALFORMED_LABELS[0],
    MALFORMED_LABELS[1],
    MALFORMED_LABELS[2],
    MALFORMED_LABELS[3],
    MALFORMED_LABELS[4],
    MALFORMED_LABELS[5],
    "not_request",
    "not_ethernet",
    "unknown_mac",
    "wrong_server",
    "unexpected_type",
    "no_address",
];

/// Row 0 is for packets whose type could not be decoded.
const TYPES: usize = 9;

fn type_label(row: usize) -> &'static str {
    match row {
        0 => "unknown",
        r => MessageType::ALL[r - 1].as_str(),
    }
}

fn type_row(t: Option<MessageType>) -> usize {
    t.map_or(0, |t| t as usize)
}

fn outcome_col(o: &Outcome) -> usize {
    match o {
        Outcome::Reply { kind, .. } => match kind {
            ReplyKind::Offer => 0,
            ReplyKind::Ack => 1,
            ReplyKind::Nak => 2,
        },
        Outcome::Handled(MessageType::Release) => 3,
        Outcome::Handled(MessageType::Decline) => 4,
        Outcome::Handled(_) => 5,
        Outcome::Drop { reason, .. } => match reason {
            DropReason::Malformed(e) => 6 + e.index(),
            DropReason::NotRequest => 12,
            DropReason::NotEthernet => 13,
            DropReason::UnknownMac => 14,
            DropReason::WrongServer => 15,
            DropReason::UnexpectedType => 16,
            DropReason::NoAddress => 17,
        },
    }
}

fn outcome_type(o: &Outcome) -> Option<MessageType> {
    match o {
        Outcome::Reply { request, .. } => Some(*request),
        Outcome::Handled(t) => Some(*t),
        Outcome::Drop { request, .. } => *request,
    }
}

/// Counters shared by the serve loop (writer) and the metrics endpoint.
#[derive(Debug)]
pub struct Stats {
    packets: [[AtomicU64; OUTCOMES.len()]; TYPES],
    send_errors: AtomicU64,
    recv_errors: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            packets: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            send_errors: AtomicU64::new(0),
            recv_errors: AtomicU64::new(0),
        }
    }
}

impl Stats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one received packet by its message type and outcome.
    pub fn record(&self, outcome: &Outcome) {
        self.packets[type_row(outcome_type(outcome))][outcome_col(outcome)]
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_send_error(&self) {
        self.send_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_recv_error(&self) {
        self.recv_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The counter for a (type, outcome) label pair; 0 for unknown labels.
    pub fn get(&self, msg_type: &str, outcome: &str) -> u64 {
        let row = (0..TYPES).find(|r| type_label(*r) == msg_type);
        let col = OUTCOMES.iter().position(|o| *o == outcome);
        match (row, col) {
            (Some(r), Some(c)) => self.packets[r][c].load(Ordering::Relaxed),
            _ => 0,
        }
    }

    /// Sum over all types and outcomes.
    pub fn total(&self) -> u64 {
        self.packets
            .iter()
            .flatten()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub fn send_errors(&self) -> u64 {
        self.send_errors.load(Ordering::Relaxed)
    }

    pub fn recv_errors(&self) -> u64 {
        self.recv_errors.load(Ordering::Relaxed)
    }

    /// Appends Prometheus text exposition: `{prefix}_packets_total{type,
    /// outcome, labels...}` (non-zero series only, to keep the page small),
    /// `{prefix}_send_errors_total` and `{prefix}_recv_errors_total`.
    /// `labels` are extra constant labels such as the network id.
    pub fn render_prometheus(&self, prefix: &str, labels: &[(&str, &str)], out: &mut String) {
        let mut extra = String::new();
        for (k, v) in labels {
            let _ = write!(extra, ",{k}=\"");
            escape_label(v, &mut extra);
            extra.push('"');
        }
        let _ = writeln!(
            out,
            "# HELP {prefix}_packets_total DHCP packets received, by message type and outcome."
        );
        let _ = writeln!(out, "# TYPE {prefix}_packets_total counter");
        for (row, counters) in self.packets.iter().enumerate() {
            for (col, c) in counters.iter().enumerate() {
                let v = c.load(Ordering::Relaxed);
                if v != 0 {
                    let _ = writeln!(
                        out,
                        "{prefix}_packets_total{{type=\"{}\",outcome=\"{}\"{extra}}} {v}",
                        type_label(row),
                        OUTCOMES[col]
                    );
                }
            }
        }
        let braces = if extra.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", &extra[1..])
        };
        for (name, help, v) in [
            (
                "send_errors_total",
                "Replies that failed to send.",
                self.send_errors(),
            ),
            (
                "recv_errors_total",
                "Socket receive errors.",
                self.recv_errors(),
            ),
        ] {
            let _ = writeln!(out, "# HELP {prefix}_{name} {help}");
            let _ = writeln!(out, "# TYPE {prefix}_{name} counter");
            let _ = writeln!(out, "{prefix}_{name}{braces} {v}");
        }
    }
}

fn escape_label(v: &str, out: &mut String) {
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::DecodeError;
    use std::net::{Ipv4Addr, SocketAddrV4};

    #[test]
    fn counts_and_renders() {
        let s = Stats::new();
        let offer = Outcome::Reply {
            dest: SocketAddrV4::new(Ipv4Addr::BROADCAST, 68),
            kind: ReplyKind::Offer,
            request: MessageType::Discover,
        };
        for _ in 0..3 {
            s.record(&offer);
        }
        s.record(&Outcome::Drop {
            request: None,
            reason: DropReason::Malformed(DecodeError::BadCookie),
        });
        s.record(&Outcome::Drop {
            request: Some(MessageType::Request),
            reason: DropReason::UnknownMac,
        });
        s.record(&Outcome::Handled(MessageType::Decline));
        s.record_send_error();
        assert_eq!(s.get("discover", "offer"), 3);
        assert_eq!(s.get("unknown", "malformed_bad_cookie"), 1);
        assert_eq!(s.get("request", "unknown_mac"), 1);
        assert_eq!(s.get("decline", "decline"), 1);
        assert_eq!(s.get("nope", "offer"), 0);
        assert_eq!(s.total(), 6);

        let mut out = String::new();
        s.render_prometheus("neutrino_dhcp", &[], &mut out);
        assert!(
            out.contains("neutrino_dhcp_packets_total{type=\"discover\",outcome=\"offer\"} 3\n"),
            "{out}"
        );
        assert!(out.contains(
            "neutrino_dhcp_packets_total{type=\"unknown\",outcome=\"malformed_bad_cookie\"} 1\n"
        ));
        assert!(out.contains("# TYPE neutrino_dhcp_packets_total counter\n"));
        assert!(out.contains("neutrino_dhcp_send_errors_total 1\n"));
        assert!(!out.contains("outcome=\"nak\""));

        let mut out = String::new();
        s.render_prometheus("x", &[("network", "n\"1"), ("if", "tap0")], &mut out);
        assert!(out.contains("x_packets_total{type=\"discover\",outcome=\"offer\",network=\"n\\\"1\",if=\"tap0\"} 3\n"), "{out}");
        assert!(out.contains("x_recv_errors_total{network=\"n\\\"1\",if=\"tap0\"} 0\n"));
    }

    #[test]
    fn every_drop_reason_has_its_column() {
        for (i, label) in OUTCOMES.iter().enumerate().skip(6) {
            let reason = [
                DropReason::Malformed(DecodeError::TooShort(0)),
                DropReason::Malformed(DecodeError::BadCookie),
                DropReason::Malformed(DecodeError::BadHlen(0)),
                DropReason::Malformed(DecodeError::TruncatedOption(0)),
                DropReason::Malformed(DecodeError::MissingMessageType),
                DropReason::Malformed(DecodeError::BadMessageType(0)),
                DropReason::NotRequest,
                DropReason::NotEthernet,
                DropReason::UnknownMac,
                DropReason::WrongServer,
                DropReason::UnexpectedType,
                DropReason::NoAddress,
            ][i - 6];
            assert_eq!(reason.label(), *label);
            assert_eq!(
                outcome_col(&Outcome::Drop {
                    request: None,
                    reason
                }),
                i
            );
        }
    }
}
