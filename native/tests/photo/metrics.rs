//! `GET /metrics` over real HTTP: the Prometheus text format (every sample line a name, optional
//! labels and a number; HELP and TYPE for each), and the counters moving with a prediction that
//! succeeds and one that is refused.

use super::common::host::*;
use super::common::*;
use serde_json::json;

/// The value of the sample line `name` (with its labels) in the exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
}

fn metrics(host: &Host) -> String {
    let (code, ctype, body) = get_bytes(&host.url("/metrics"), None);
    assert_eq!(code, 200);
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    String::from_utf8(body).unwrap()
}

#[test]
fn metrics_follow_the_jobs_in_the_prometheus_format() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(model.path(), data.path(), &[]);
    host.wait_health("ready");
    let before = metrics(&host);
    for line in before.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let bare = name.split('{').next().unwrap();
        assert!(
            bare.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{line}"
        );
        let family = bare
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(before.contains(&format!("# TYPE {family} ")), "{line}");
    }
    assert_eq!(
        sample(&before, "consistentid_predictions_created_total"),
        0.0
    );
    assert_eq!(
        sample(
            &before,
            "consistentid_workers{device=\"cpu\",ready=\"true\"}"
        ),
        1.0
    );

    let face = data_uri(&real_data("images/astronaut.png"), "image/png");
    let input = json!({
        "prompt": "a portrait", "face_image": face, "id_embedding": id_embedding(),
        "num_inference_steps": 3, "start_merge_step": 1, "width": 32, "height": 32
    });
    let (code, done) = post_json(
        &host.url("/v1/predictions"),
        Some(TOKEN),
        &json!({ "input": input }),
        &[("Prefer", "wait=120")],
    );
    assert_eq!(code, 201, "{done}");
    assert_eq!(done["status"], "succeeded");
    let (code, _) = post_json(
        &host.url("/v1/predictions"),
        Some(TOKEN),
        &json!({ "input": { "prompt": "x" } }),
        &[],
    );
    assert_eq!(code, 422);
    let after = metrics(&host);
    assert_eq!(
        sample(&after, "consistentid_predictions_created_total"),
        1.0
    );
    assert_eq!(
        sample(&after, "consistentid_predictions_refused_total"),
        1.0
    );
    assert_eq!(
        sample(&after, "consistentid_jobs_total{status=\"succeeded\"}"),
        1.0
    );
    assert_eq!(sample(&after, "consistentid_job_seconds_count"), 1.0);
    assert_eq!(
        sample(&after, "consistentid_job_seconds_bucket{le=\"+Inf\"}"),
        1.0
    );
    assert!(sample(&after, "consistentid_job_seconds_sum") > 0.0);
    assert_eq!(
        sample(&after, "consistentid_steps_total"),
        2.0,
        "3 steps, the first untimed"
    );
    assert_eq!(sample(&after, "consistentid_queue_length"), 0.0);
}
