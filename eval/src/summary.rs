//! A run's results: one row per image, and the summary (mean, standard deviation and 95 %
//! interval of each metric, overall, per prompt category and per reference), written as a
//! per-image CSV and a summary JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::scorer::ImageScores;

/// One scored (or failed) image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The image, relative to the images folder.
    pub image: String,
    /// The reference photo's file name.
    pub reference: String,
    pub prompt: Option<String>,
    pub category: String,
    pub seed: Option<u64>,
    pub scores: Option<ImageScores>,
    /// Why the image could not be scored (unreadable, no reference…).
    pub error: Option<String>,
    /// Seconds to generate it (`eval run`), when known.
    pub generate_seconds: Option<f64>,
    /// Seconds to score it.
    pub score_seconds: f64,
}

/// The metrics of the summary, in report order: (key, name people read).
pub const METRICS: [(&str, &str); 8] = [
    ("facesim_arcface", "FaceSim (ArcFace)"),
    ("facesim_facenet", "FaceSim (FaceNet)"),
    ("fgis", "FGIS"),
    ("clip_i", "CLIP-I (ViT-H)"),
    ("clip_t", "CLIP-T"),
    ("clip_i_clip", "CLIP-I (--clip)"),
    ("dino", "DINO"),
    ("generate_seconds", "seconds per image"),
];

/// A metric's value for one row.
pub fn value(row: &Row, metric: &str) -> Option<f64> {
    let s = row.scores.as_ref();
    match metric {
        "facesim_arcface" => s.and_then(|s| s.facesim_arcface).map(f64::from),
        "fgis" => s.and_then(|s| s.fgis).map(f64::from),
        "clip_i" => s.map(|s| f64::from(s.clip_i)),
        "clip_t" => s.and_then(|s| s.clip_t).map(f64::from),
        "clip_i_clip" => s.and_then(|s| s.clip_i_clip).map(f64::from),
        "dino" => s.and_then(|s| s.dino).map(f64::from),
        "facesim_facenet" => s.and_then(|s| s.facesim_facenet).map(f64::from),
        "generate_seconds" => row.generate_seconds,
        _ => None,
    }
}

/// Mean, sample standard deviation and the half-width of the 95 % interval of the mean
/// (normal approximation, 1.96 standard errors).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    pub ci95: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Self {
            n,
            mean,
            std,
            ci95: 1.96 * std / (n as f64).sqrt(),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// Every metric's statistics over some rows.
pub type Stats = BTreeMap<String, Stat>;

fn stats(rows: &[&Row]) -> Stats {
    let mut out = Stats::new();
    for (key, _) in METRICS {
        let values: Vec<f64> = rows.iter().filter_map(|r| value(r, key)).collect();
        if let Some(s) = Stat::of(&values) {
            out.insert(key.to_string(), s);
        }
    }
    out
}

/// The summary JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The run's name (its folder).
    pub name: String,
    pub images: usize,
    /// Images that could not be scored.
    pub failed: usize,
    /// Share of scored images with a face found.
    pub detection_rate: Option<f64>,
    /// Share of (image, reference region) pairs where the image lacks the region.
    pub region_missing_rate: Option<f64>,
    pub overall: Stats,
    pub by_category: BTreeMap<String, Stats>,
    pub by_reference: BTreeMap<String, Stats>,
    /// Mean cosine per facial region (FGIS's parts).
    pub fgis_regions: BTreeMap<String, Stat>,
    /// (metric, network and preprocessing).
    pub networks: Vec<(String, String)>,
    /// How the images were made and scored.
    pub settings: BTreeMap<String, String>,
    /// The set-level FID (with `--fid`).
    #[serde(default)]
    pub fid: Option<Fid>,
}

/// FID between the scored images and a set of real photos.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fid {
    pub value: f64,
    /// Images on each side (FID is unstable below about a thousand).
    pub generated: usize,
    pub real: usize,
    /// Which real set: the reference photos or the `--fid-real` folder.
    pub real_set: String,
}

/// Summarises rows.
pub fn summarise(
    name: &str,
    rows: &[Row],
    networks: &[(&str, &str)],
    settings: BTreeMap<String, String>,
) -> Summary {
    let scored: Vec<&Row> = rows.iter().filter(|r| r.scores.is_some()).collect();
    let group = |key: fn(&Row) -> &str| {
        let mut groups: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
        for r in scored.iter().copied() {
            groups.entry(key(r).to_string()).or_default().push(r);
        }
        groups
            .into_iter()
            .map(|(k, rs)| (k, stats(&rs)))
            .collect::<BTreeMap<_, _>>()
    };
    let detected = scored
        .iter()
        .filter(|r| r.scores.as_ref().is_some_and(|s| s.face_detected))
        .count();
    let (mut present, mut missing) = (0usize, 0usize);
    let mut regions: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in &scored {
        if let Some(s) = &r.scores {
            present += s.fgis_regions.len();
            missing += s.regions_missing.len();
            for (word, v) in &s.fgis_regions {
                regions.entry(word.clone()).or_default().push(f64::from(*v));
            }
        }
    }
    Summary {
        name: name.to_string(),
        images: rows.len(),
        failed: rows.len() - scored.len(),
        detection_rate: (!scored.is_empty()).then(|| detected as f64 / scored.len() as f64),
        region_missing_rate: (present + missing > 0)
            .then(|| missing as f64 / (present + missing) as f64),
        overall: stats(&scored),
        by_category: group(|r| r.category.as_str()),
        by_reference: group(|r| r.reference.as_str()),
        fgis_regions: regions
            .into_iter()
            .filter_map(|(k, v)| Stat::of(&v).map(|s| (k, s)))
            .collect(),
        networks: networks
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        settings,
        fid: None,
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The per-image CSV.
pub fn rows_csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "image,reference,prompt,category,seed,facesim_arcface,face_detected,fgis,fgis_regions,regions_missing,clip_i,clip_t,clip_i_clip,dino,facesim_facenet,generate_seconds,score_seconds,error\n",
    );
    let num = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
    for r in rows {
        let s = r.scores.as_ref();
        let regions = s
            .map(|s| {
                s.fgis_regions
                    .iter()
                    .map(|(w, v)| format!("{w}={v:.4}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let fields = [
            csv_field(&r.image),
            csv_field(&r.reference),
            csv_field(r.prompt.as_deref().unwrap_or("")),
            csv_field(&r.category),
            r.seed.map(|s| s.to_string()).unwrap_or_default(),
            num(value(r, "facesim_arcface")),
            s.map(|s| s.face_detected.to_string()).unwrap_or_default(),
            num(value(r, "fgis")),
            regions,
            s.map(|s| s.regions_missing.join(" ")).unwrap_or_default(),
            num(value(r, "clip_i")),
            num(value(r, "clip_t")),
            num(value(r, "clip_i_clip")),
            num(value(r, "dino")),
            num(value(r, "facesim_facenet")),
            num(r.generate_seconds),
            format!("{:.3}", r.score_seconds),
            csv_field(r.error.as_deref().unwrap_or("")),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(reference: &str, category: &str, facesim: Option<f32>, detected: bool) -> Row {
        Row {
            image: format!("{reference}/x.png"),
            reference: reference.into(),
            category: category.into(),
            scores: Some(ImageScores {
                facesim_arcface: facesim,
                face_detected: detected,
                clip_i: 0.5,
                clip_t: Some(0.25),
                clip_i_clip: None,
                dino: None,
                facesim_facenet: None,
                fgis: Some(0.25),
                fgis_regions: vec![("nose".into(), 0.25)],
                regions_missing: if detected {
                    vec![]
                } else {
                    vec!["eyes".into()]
                },
            }),
            ..Row::default()
        }
    }

    #[test]
    fn statistics_groups_and_rates() {
        let s = Stat::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!((s.n, s.mean, s.min, s.max), (4, 2.5, 1.0, 4.0));
        assert!((s.std - 1.290_994_448_7).abs() < 1e-9);
        assert!((s.ci95 - 1.96 * s.std / 2.0).abs() < 1e-12);
        let rows = vec![
            row("a.png", "style", Some(0.6), true),
            row("a.png", "action", Some(0.0), false),
            row("b.png", "style", Some(0.4), true),
            Row {
                error: Some("unreadable".into()),
                ..Row::default()
            },
        ];
        let sum = summarise("run", &rows, &[], BTreeMap::new());
        assert_eq!((sum.images, sum.failed), (4, 1));
        assert!((sum.detection_rate.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((sum.region_missing_rate.unwrap() - 0.25).abs() < 1e-12);
        assert!((sum.overall["facesim_arcface"].mean - 1.0 / 3.0).abs() < 1e-6);
        assert!((sum.by_category["style"]["facesim_arcface"].mean - 0.5).abs() < 1e-6);
        assert_eq!(sum.by_reference["a.png"]["clip_i"].n, 2);
        let csv = rows_csv(&rows);
        assert_eq!(csv.lines().count(), 5);
        assert!(csv.contains(",nose=0.2500,"), "{csv}");
    }
}
