//! The one metrics registry. Names are `voicebot_*` with units in the name; counters
//! get `_total` from the encoder. Modules own their counter handles and the same
//! handles are registered here, so nothing is copied at scrape time.

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

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        encode(&mut out, &self.registry).ok();
        out
    }
}

/// Buckets for latencies from 20 ms to about 40 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.02, 1.5, 20))
}
