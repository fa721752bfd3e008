//! The one metrics registry. Names are `voicebot_*` with units in the name; counters
//! get `_total` from the encoder. Modules own their counter handles and the same
//! handles are registered here, so nothing is copied at scrape time.
//!
//! prometheus-client writes OpenMetrics; scrapers that do not ask for it (older
//! Prometheus, promtool, curl) get the classic text format 0.0.4 from [`text_004`].

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Default)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn gauge(&mut self, name: &str, help: &str, g: &Gauge) {
        self.registry.register(name, help, g.clone());
    }

    pub fn counter(&mut self, name: &str, help: &str, c: &Counter) {
        self.registry.register(name, help, c.clone());
    }

    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.registry.register(name, help, h.clone());
    }

    /// Any metric, e.g. a labelled `Family`.
    pub fn register(
        &mut self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric + Clone,
    ) {
        self.registry.register(name, help, metric);
    }

    /// Metrics computed at scrape time.
    pub fn collector(&mut self, collector: Box<dyn prometheus_client::collector::Collector>) {
        self.registry.register_collector(collector);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        encode(&mut out, &self.registry).ok();
        out
    }
}

/// OpenMetrics text rewritten as Prometheus text format 0.0.4: a counter family is
/// named after its `_total` samples, and `# UNIT` and `# EOF` (unknown there) go.
pub fn text_004(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta.and_then(|(p, rest)| rest.split_once(' ').map(|(n, r)| (p, n, r))) {
            Some((p, name, rest)) if counters.contains(name) && !name.ends_with("_total") => {
                out.push_str(&format!("{p}{name}_total {rest}\n"));
            }
            Some((p, name, "unknown")) if p == "# TYPE " => {
                out.push_str(&format!("{p}{name} untyped\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Buckets for latencies from 20 ms to about 40 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.02, 1.5, 20))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::family::Family;

    #[test]
    fn the_classic_text_format_names_counter_families_by_their_samples() {
        let mut m = Metrics::default();
        let calls = Family::<Vec<(&str, &str)>, Counter>::default();
        calls.get_or_create(&vec![("outcome", "resolved")]).inc();
        m.register("voicebot_calls", "Calls ended", calls);
        m.gauge(
            "voicebot_calls_active",
            "Calls in progress",
            &Gauge::default(),
        );
        let om = m.render();
        assert!(om.contains("# TYPE voicebot_calls counter") && om.ends_with("# EOF\n"));
        let text = text_004(&om);
        assert!(
            text.contains("# HELP voicebot_calls_total Calls ended"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE voicebot_calls_total counter"),
            "{text}"
        );
        assert!(
            text.contains("voicebot_calls_total{outcome=\"resolved\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE voicebot_calls_active gauge"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
    }
}
