//! The server's counters in Prometheus's text format (version 0.0.4): requests by route and
//! status, a latency histogram, a batch-size histogram, the queue depth of each model, errors.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Upper bounds of the batch-size histogram.
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], v: f64) {
        if self.counts.len() != bounds.len() {
            self.counts = vec![0; bounds.len()];
        }
        for (b, c) in bounds.iter().zip(&mut self.counts) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, bounds: &[f64]) {
        for (i, b) in bounds.iter().enumerate() {
            let c = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

#[derive(Default)]
struct Counters {
    requests: BTreeMap<(String, u16), u64>,
    latency: Histogram,
    batches: Histogram,
    errors: BTreeMap<String, u64>,
}

/// The server's metrics, shared by every request.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Counters>,
}

impl Metrics {
    /// A request to `route` answered with `status` after `seconds`.
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        if let Ok(mut c) = self.inner.lock() {
            *c.requests.entry((route.to_string(), status)).or_default() += 1;
            c.latency.observe(&LATENCY_BUCKETS, seconds);
            if status >= 400 {
                let kind = if status >= 500 { "server" } else { "client" };
                *c.errors.entry(kind.to_string()).or_default() += 1;
            }
        }
    }

    /// A batch of `n` images went through a model.
    pub fn batch(&self, n: usize) {
        if let Ok(mut c) = self.inner.lock() {
            c.batches.observe(&BATCH_BUCKETS, n as f64);
        }
    }

    /// The text exposition, with each model's current queue depth.
    pub fn render(&self, queues: &[(String, usize)]) -> String {
        let mut out = String::new();
        let Ok(c) = self.inner.lock() else {
            return out;
        };
        out.push_str("# HELP inception_requests_total Requests answered, by route and status.\n");
        out.push_str("# TYPE inception_requests_total counter\n");
        for ((route, status), n) in &c.requests {
            let _ = writeln!(
                out,
                "inception_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str("# HELP inception_request_duration_seconds Time from request to answer.\n");
        out.push_str("# TYPE inception_request_duration_seconds histogram\n");
        c.latency.write(
            &mut out,
            "inception_request_duration_seconds",
            &LATENCY_BUCKETS,
        );
        out.push_str("# HELP inception_batch_size Images per batch run through a model.\n");
        out.push_str("# TYPE inception_batch_size histogram\n");
        c.batches
            .write(&mut out, "inception_batch_size", &BATCH_BUCKETS);
        out.push_str("# HELP inception_queue_depth Requests waiting for a model.\n");
        out.push_str("# TYPE inception_queue_depth gauge\n");
        for (model, depth) in queues {
            let _ = writeln!(
                out,
                "inception_queue_depth{{model=\"{}\"}} {depth}",
                escape(model)
            );
        }
        out.push_str("# HELP inception_errors_total Requests answered with an error status.\n");
        out.push_str("# TYPE inception_errors_total counter\n");
        for kind in ["client", "server"] {
            let n = c.errors.get(kind).copied().unwrap_or(0);
            let _ = writeln!(out, "inception_errors_total{{kind=\"{kind}\"}} {n}");
        }
        out
    }
}

/// A label value as the text format quotes it: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_histograms_cumulative() {
        let m = Metrics::default();
        m.request("/v1/classify", 200, 0.02);
        m.request("/v1/classify", 200, 3.0);
        m.batch(3);
        let text = m.render(&[("a\"b".to_string(), 2)]);
        assert!(
            text.contains("inception_queue_depth{model=\"a\\\"b\"} 2"),
            "{text}"
        );
        assert!(text.contains("inception_request_duration_seconds_bucket{le=\"0.025\"} 1"));
        assert!(text.contains("inception_request_duration_seconds_bucket{le=\"5\"} 2"));
        assert!(text.contains("inception_request_duration_seconds_count 2"));
        assert!(text.contains("inception_batch_size_bucket{le=\"2\"} 0"));
        assert!(text.contains("inception_batch_size_bucket{le=\"4\"} 1"));
    }
}
