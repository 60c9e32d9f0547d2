//! `GET /metrics` in the Prometheus text exposition format (0.0.4): the queue, jobs by how
//! they ended, job and queue-wait durations, denoising steps and their time, predictions
//! created and refused, and the workers (this process in the embedded mode). Counters live in
//! the process and start at zero with it, as Prometheus expects of counters.

use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use consistentid_core::api::Status;

/// Job durations are counted into these buckets (seconds), as a Prometheus histogram.
const BUCKETS: [f64; 10] = [1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0];

#[derive(Default)]
struct Counts {
    created: u64,
    refused: u64,
    ended: [u64; 3],
    job_seconds: f64,
    job_buckets: [u64; BUCKETS.len()],
    wait_seconds: f64,
    steps: u64,
    step_seconds: f64,
    last_step: Option<Instant>,
}

/// The host's counters.
#[derive(Default)]
pub struct Metrics(Mutex<Counts>);

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Counts)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// A prediction was accepted into the queue.
    pub fn created(&self) {
        self.with(|c| c.created += 1);
    }

    /// A creation was refused (full queue, rate limit, a bad request).
    pub fn refused(&self) {
        self.with(|c| c.refused += 1);
    }

    /// A job ended, after `seconds` of work and `waited` in the queue.
    pub fn ended(&self, status: Status, seconds: f64, waited: f64) {
        let slot = match status {
            Status::Succeeded => 0,
            Status::Failed => 1,
            _ => 2,
        };
        self.with(|c| {
            c.ended[slot] += 1;
            c.job_seconds += seconds;
            c.wait_seconds += waited;
            for (b, &le) in c.job_buckets.iter_mut().zip(&BUCKETS) {
                *b += u64::from(seconds <= le);
            }
            c.last_step = None;
        });
    }

    /// A denoising step ended (its time counts from the step before in the same job).
    pub fn step(&self, first: bool) {
        let now = Instant::now();
        self.with(|c| {
            if let (false, Some(last)) = (first, c.last_step) {
                c.steps += 1;
                c.step_seconds += now.duration_since(last).as_secs_f64();
            }
            c.last_step = Some(now);
        });
    }

    /// The exposition, with the queue and worker gauges read now.
    pub fn render(
        &self,
        queue_length: usize,
        queue_capacity: usize,
        workers: &[(String, bool)],
    ) -> String {
        let c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let plain = |v: String| vec![(String::new(), v)];
        metric(
            "consistentid_queue_length",
            "gauge",
            "Jobs waiting (not counting the running ones).",
            &plain(queue_length.to_string()),
        );
        metric(
            "consistentid_queue_capacity",
            "gauge",
            "Jobs the queue takes.",
            &plain(queue_capacity.to_string()),
        );
        metric(
            "consistentid_predictions_created_total",
            "counter",
            "Predictions accepted into the queue.",
            &plain(c.created.to_string()),
        );
        metric(
            "consistentid_predictions_refused_total",
            "counter",
            "Creations refused (bad input, full queue, rate limit).",
            &plain(c.refused.to_string()),
        );
        let ended: Vec<(String, String)> = ["succeeded", "failed", "canceled"]
            .iter()
            .zip(c.ended)
            .map(|(s, n)| (format!("{{status=\"{s}\"}}"), n.to_string()))
            .collect();
        metric(
            "consistentid_jobs_total",
            "counter",
            "Jobs ended, by how.",
            &ended,
        );
        let total: u64 = c.ended.iter().sum();
        let mut histogram: Vec<(String, String)> = BUCKETS
            .iter()
            .zip(c.job_buckets)
            .map(|(le, n)| (format!("_bucket{{le=\"{le}\"}}"), n.to_string()))
            .collect();
        histogram.push(("_bucket{le=\"+Inf\"}".into(), total.to_string()));
        histogram.push(("_sum".into(), c.job_seconds.to_string()));
        histogram.push(("_count".into(), total.to_string()));
        metric(
            "consistentid_job_seconds",
            "histogram",
            "Time from a job's start to its end.",
            &histogram,
        );
        metric(
            "consistentid_queue_wait_seconds_total",
            "counter",
            "Time ended jobs spent waiting in the queue.",
            &plain(c.wait_seconds.to_string()),
        );
        metric(
            "consistentid_steps_total",
            "counter",
            "Denoising steps timed (each after the first of a job).",
            &plain(c.steps.to_string()),
        );
        metric(
            "consistentid_step_seconds_total",
            "counter",
            "Time of those steps.",
            &plain(c.step_seconds.to_string()),
        );
        let mut counted = std::collections::BTreeMap::new();
        for (device, ready) in workers {
            *counted.entry((device.as_str(), *ready)).or_insert(0u32) += 1;
        }
        let workers: Vec<(String, String)> = counted
            .iter()
            .map(|((device, ready), n)| {
                (
                    format!("{{device=\"{device}\",ready=\"{ready}\"}}"),
                    n.to_string(),
                )
            })
            .collect();
        metric(
            "consistentid_workers",
            "gauge",
            "Workers, by device and whether their models are loaded.",
            &workers,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_and_buckets() {
        let m = Metrics::default();
        m.created();
        m.created();
        m.ended(Status::Succeeded, 3.0, 0.5);
        m.ended(Status::Failed, 100.0, 1.5);
        m.step(true);
        m.step(false);
        let text = m.render(4, 64, &[("cpu".into(), true)]);
        for line in [
            "consistentid_queue_length 4",
            "consistentid_predictions_created_total 2",
            "consistentid_jobs_total{status=\"succeeded\"} 1",
            "consistentid_jobs_total{status=\"failed\"} 1",
            "consistentid_job_seconds_bucket{le=\"2.5\"} 0",
            "consistentid_job_seconds_bucket{le=\"5\"} 1",
            "consistentid_job_seconds_bucket{le=\"160\"} 2",
            "consistentid_job_seconds_bucket{le=\"+Inf\"} 2",
            "consistentid_job_seconds_sum 103",
            "consistentid_queue_wait_seconds_total 2",
            "consistentid_steps_total 1",
            "consistentid_workers{device=\"cpu\",ready=\"true\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
