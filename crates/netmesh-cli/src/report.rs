//! What a run prints: a human summary, or one JSON object (`--json`).

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

/// The result of a `listen`, `send` or `bench` run. The fields up to `rejected` are the
/// ones SESSION.md promises; `extra` holds the endpoint's further counters.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use netmesh_cli::report::Report;
///
/// let mut report = Report { events: 1000, bytes: 64_000, ok: true, ..Report::default() };
/// report.set_span(Duration::from_millis(250));
/// report.extra("retransmits", 0);
/// assert!(report.json().starts_with(r#"{"events":1000,"bytes":64000,"seconds":0.25,"events_per_s":4000.0,"#));
/// ```
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Events delivered intact (receiver) or sent (sender).
    pub events: u64,
    /// Bytes of those events.
    pub bytes: u64,
    /// From the first event to the last.
    pub seconds: f64,
    /// `events / seconds` (0 when `seconds` is 0).
    pub events_per_s: f64,
    /// Megabytes (10^6) of events per second.
    pub mb_per_s: f64,
    /// Events that never arrived (receiver: gaps per peer and what `--expect` misses;
    /// sender: reliable packets its session gave up on, plus replies lost).
    pub lost: u64,
    /// Events that arrived twice.
    pub duplicates: u64,
    /// Events that arrived after a later event of their reliable stream.
    pub out_of_order: u64,
    /// Events whose bytes are wrong.
    pub corrupt: u64,
    /// Datagrams refused for any reason.
    pub rejected: u64,
    /// Whether the run passed its checks (the exit status is 0 exactly when it did).
    pub ok: bool,
    /// Further counters (per kind of refusal, retransmits, socket buffers, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Report {
    /// Sets `seconds` and the rates from a span of time.
    pub fn set_span(&mut self, span: Duration) {
        self.seconds = span.as_secs_f64();
        if self.seconds > 0.0 {
            #[allow(clippy::cast_precision_loss)] // rates, not counts
            {
                self.events_per_s = self.events as f64 / self.seconds;
                self.mb_per_s = self.bytes as f64 / self.seconds / 1e6;
            }
        }
    }

    /// Adds a further counter to the JSON object.
    pub fn extra(&mut self, name: &str, value: impl Into<Value>) {
        self.extra.insert(name.to_owned(), value.into());
    }

    /// The JSON object, on one line.
    #[must_use]
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
    }

    /// A few lines for people: what moved, how fast, what went wrong.
    #[must_use]
    pub fn human(&self, verb: &str) -> String {
        format!(
            "{verb} {} events ({:.1} MB) in {:.3} s: {:.0} events/s, {:.1} MB/s\n\
             lost {}, duplicates {}, out of order {}, corrupt {}, rejected datagrams {}: {}",
            self.events,
            self.bytes as f64 / 1e6,
            self.seconds,
            self.events_per_s,
            self.mb_per_s,
            self.lost,
            self.duplicates,
            self.out_of_order,
            self.corrupt,
            self.rejected,
            if self.ok { "ok" } else { "FAILED" },
        )
    }
}

/// The span from the first event to the last.
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Span {
    /// Notes an event now.
    pub fn mark(&mut self) {
        self.mark_at(Instant::now());
    }

    /// Notes an event at `now`.
    pub fn mark_at(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// Widens this span to cover `other` too.
    pub fn merge(&mut self, other: &Self) {
        if let Some(first) = other.first {
            self.first = Some(self.first.map_or(first, |mine| mine.min(first)));
        }
        if let Some(last) = other.last {
            self.last = Some(self.last.map_or(last, |mine| mine.max(last)));
        }
    }

    /// First to last (zero before two marks).
    #[must_use]
    pub fn duration(&self) -> Duration {
        match (self.first, self.last) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_promised_fields_on_one_line() {
        let mut report = Report {
            events: 1000,
            bytes: 64_000,
            ..Report::default()
        };
        report.set_span(Duration::from_millis(500));
        report.extra("retransmits", 3);
        let line = report.json();
        assert!(!line.contains('\n'));
        let value: Value = serde_json::from_str(&line).unwrap();
        for field in [
            "events",
            "bytes",
            "seconds",
            "events_per_s",
            "lost",
            "duplicates",
            "out_of_order",
            "corrupt",
            "rejected",
        ] {
            assert!(value.get(field).is_some(), "{field} missing from {line}");
        }
        assert_eq!(value["events_per_s"], 2000.0);
        assert_eq!(value["retransmits"], 3);
    }
}
