//! The report: one self-contained HTML file (no external resource) with each metric's table
//! overall, per prompt category and per reference (mean ± 95 % interval), histograms as inline
//! SVG, the thumbnails with their scores, and the networks and settings; one or several runs
//! side by side (`eval compare`).

use std::collections::BTreeSet;

use crate::summary::{METRICS, Row, Stat, Stats, Summary, value};

/// An image of the grid: its row and a small data-URI thumbnail.
pub struct Thumb<'a> {
    pub row: &'a Row,
    pub data_uri: String,
}

/// HTML text escaping.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn cell(stat: Option<&Stat>) -> String {
    match stat {
        Some(s) => format!(
            "<td>{:.4} <span class=\"ci\">± {:.4}</span> <span class=\"n\">n={}</span></td>",
            s.mean, s.ci95, s.n
        ),
        None => "<td class=\"none\">—</td>".into(),
    }
}

fn rate(v: Option<f64>) -> String {
    v.map(|x| format!("{:.1} %", 100.0 * x))
        .unwrap_or_else(|| "—".into())
}

/// A table of one metric: a row per group, a column per run.
type Groups = std::collections::BTreeMap<String, Stats>;
/// A summary's groups (per category, per reference).
type Grouping = fn(&Summary) -> &Groups;
/// One of a summary's rates.
type Rate = fn(&Summary) -> Option<f64>;

fn by_category(s: &Summary) -> &Groups {
    &s.by_category
}

fn by_reference(s: &Summary) -> &Groups {
    &s.by_reference
}

fn group_table(runs: &[&Summary], metric: &str, label: &str, groups: Grouping) -> String {
    let keys: BTreeSet<&String> = runs.iter().flat_map(|r| groups(r).keys()).collect();
    if keys.is_empty() {
        return String::new();
    }
    let mut html = format!("<table class=\"group\" data-metric=\"{metric}\"><tr><th>{label}</th>");
    for r in runs {
        html.push_str(&format!("<th>{}</th>", escape(&r.name)));
    }
    html.push_str("</tr>");
    for k in keys {
        html.push_str(&format!("<tr><td>{}</td>", escape(k)));
        for r in runs {
            html.push_str(&cell(groups(r).get(k).and_then(|s| s.get(metric))));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
    html
}

/// An inline SVG histogram of `values` (20 bins over their range).
fn histogram(values: &[f64], title: &str) -> String {
    if values.is_empty() {
        return String::new();
    }
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut bins = [0usize; 20];
    for &v in values {
        let i = (((v - lo) / span) * 20.0).floor() as usize;
        bins[i.min(19)] += 1;
    }
    let top = bins.iter().copied().max().unwrap_or(1).max(1);
    let (w, h) = (300.0, 100.0);
    let mut bars = String::new();
    for (i, &b) in bins.iter().enumerate() {
        let bh = h * b as f64 / top as f64;
        bars.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{b}</title></rect>",
            i as f64 * w / 20.0 + 1.0,
            h - bh,
            w / 20.0 - 2.0,
            bh
        ));
    }
    let title = escape(title);
    let (text_y, svg_h) = (h + 12.0, h + 14.0);
    format!(
        "<figure class=\"hist\"><svg viewBox=\"0 0 {w} {svg_h}\" width=\"{w}\" height=\"{svg_h}\" role=\"img\" aria-label=\"{title}\">{bars}<text x=\"0\" y=\"{text_y}\">{lo:.3}</text><text x=\"{w}\" y=\"{text_y}\" text-anchor=\"end\">{hi:.3}</text></svg><figcaption>{title}</figcaption></figure>"
    )
}

/// The report of `runs` (their rows, for histograms, when known) and, for one run, its grid.
pub fn render(runs: &[(&Summary, Option<&[Row]>)], thumbs: &[Thumb]) -> String {
    let summaries: Vec<&Summary> = runs.iter().map(|(s, _)| *s).collect();
    let title = if summaries.len() == 1 {
        format!("Evaluation: {}", summaries[0].name)
    } else {
        format!(
            "Evaluation: {}",
            summaries
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(" vs ")
        )
    };
    let mut body = format!("<h1>{}</h1>", escape(&title));
    // Overall.
    body.push_str("<h2>Overall</h2><table id=\"overall\"><tr><th>metric</th>");
    for s in &summaries {
        body.push_str(&format!("<th>{}</th>", escape(&s.name)));
    }
    body.push_str("</tr>");
    for (key, name) in METRICS {
        if summaries.iter().all(|s| !s.overall.contains_key(key)) {
            continue;
        }
        body.push_str(&format!("<tr data-metric=\"{key}\"><td>{name}</td>"));
        for s in &summaries {
            body.push_str(&cell(s.overall.get(key)));
        }
        body.push_str("</tr>");
    }
    let rates: [(&str, Rate); 2] = [
        ("face detection rate", |s| s.detection_rate),
        ("FGIS region missing rate", |s| s.region_missing_rate),
    ];
    for (label, get) in rates {
        body.push_str(&format!("<tr><td>{label}</td>"));
        for s in &summaries {
            body.push_str(&format!("<td>{}</td>", rate(get(s))));
        }
        body.push_str("</tr>");
    }
    if summaries.iter().any(|s| s.fid.is_some()) {
        body.push_str("<tr data-metric=\"fid\"><td>FID (lower is better)</td>");
        for s in &summaries {
            body.push_str(&match &s.fid {
                Some(f) => format!(
                    "<td>{:.2} <small>({} images vs {} of {})</small></td>",
                    f.value,
                    f.generated,
                    f.real,
                    escape(&f.real_set)
                ),
                None => "<td>—</td>".into(),
            });
        }
        body.push_str("</tr>");
    }
    body.push_str("<tr><td>images (failed)</td>");
    for s in &summaries {
        body.push_str(&format!("<td>{} ({})</td>", s.images, s.failed));
    }
    body.push_str("</tr></table>");
    // Histograms.
    body.push_str("<h2>Distributions</h2><div class=\"hists\">");
    for (summary, rows) in runs {
        let Some(rows) = rows else { continue };
        for (key, name) in METRICS {
            let values: Vec<f64> = rows.iter().filter_map(|r| value(r, key)).collect();
            if values.is_empty() {
                continue; // a metric this run did not compute (CLIP-T without --clip)
            }
            body.push_str(&histogram(&values, &format!("{name}, {}", summary.name)));
        }
    }
    body.push_str("</div>");
    // Per category and per reference.
    let groupings: [(&str, &str, Grouping); 2] = [
        ("Per prompt category", "category", by_category),
        ("Per reference", "reference", by_reference),
    ];
    for (heading, label, by) in groupings {
        body.push_str(&format!("<h2>{heading}</h2>"));
        for (key, name) in METRICS {
            if summaries.iter().all(|s| !s.overall.contains_key(key)) {
                continue;
            }
            let table = group_table(&summaries, key, label, by);
            if !table.is_empty() && table.contains("<td>") {
                body.push_str(&format!("<h3>{name}</h3>{table}"));
            }
        }
    }
    // FGIS parts.
    body.push_str("<h2>FGIS per facial region</h2><table id=\"regions\"><tr><th>region</th>");
    for s in &summaries {
        body.push_str(&format!("<th>{}</th>", escape(&s.name)));
    }
    body.push_str("</tr>");
    let regions: BTreeSet<&String> = summaries
        .iter()
        .flat_map(|s| s.fgis_regions.keys())
        .collect();
    for region in regions {
        body.push_str(&format!("<tr><td>{}</td>", escape(region)));
        for s in &summaries {
            body.push_str(&cell(s.fgis_regions.get(region)));
        }
        body.push_str("</tr>");
    }
    body.push_str("</table>");
    // The grid.
    if !thumbs.is_empty() {
        body.push_str("<h2>Images</h2><div id=\"grid\" class=\"grid\">");
        for t in thumbs {
            let r = t.row;
            let score = |k: &str| {
                value(r, k)
                    .map(|v| format!("{v:.3}"))
                    .unwrap_or_else(|| "—".into())
            };
            body.push_str(&format!(
                "<figure><img src=\"{}\" alt=\"{}\" loading=\"lazy\"><figcaption><b>{}</b> {}<br>FaceSim {} · FGIS {} · CLIP-I {}{}{}</figcaption></figure>",
                t.data_uri,
                escape(&r.image),
                escape(&r.reference),
                escape(r.prompt.as_deref().unwrap_or("")),
                score("facesim_arcface"),
                score("fgis"),
                score("clip_i"),
                value(r, "clip_t").map(|v| format!(" · CLIP-T {v:.3}")).unwrap_or_default(),
                r.error.as_deref().map(|e| format!("<br><span class=\"err\">{}</span>", escape(e))).unwrap_or_default(),
            ));
        }
        body.push_str("</div>");
    }
    // Networks and settings.
    body.push_str("<h2>Networks and settings</h2>");
    for s in &summaries {
        body.push_str(&format!("<h3>{}</h3><dl>", escape(&s.name)));
        for (k, v) in &s.networks {
            body.push_str(&format!("<dt>{}</dt><dd>{}</dd>", escape(k), escape(v)));
        }
        for (k, v) in &s.settings {
            body.push_str(&format!("<dt>{}</dt><dd>{}</dd>", escape(k), escape(v)));
        }
        body.push_str("</dl>");
    }
    body.push_str("<p class=\"note\">Means with the half-width of their 95 % interval (1.96 standard errors). FaceSim counts an image without a face as 0; the detection rate says how often that happened. FGIS averages the regions both images have.</p>");
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        escape(&title)
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}.ci,.n{color:#666;font-size:.85em}.none{color:#999}.hists{display:flex;flex-wrap:wrap;gap:1rem}.hist rect{fill:#4a7bd0}.hist text{font-size:10px;fill:#444}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(10rem,1fr));gap:.75rem}.grid img{width:100%;height:auto}.grid figure{margin:0;font-size:.8rem}.err{color:#b00}dt{font-weight:600}dd{margin:0 0 .5rem 1rem}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scorer::ImageScores;
    use crate::summary::summarise;

    #[test]
    fn a_report_names_its_runs_and_escapes_what_people_wrote() {
        let rows = vec![Row {
            image: "a/0.png".into(),
            reference: "a.png".into(),
            prompt: Some("<script>x</script>".into()),
            category: "style".into(),
            scores: Some(ImageScores {
                facesim_arcface: Some(0.5),
                face_detected: true,
                clip_i: 0.7,
                clip_t: None,
                clip_i_clip: None,
                dino: None,
                facesim_facenet: None,
                fgis: Some(0.6),
                fgis_regions: vec![("face".into(), 0.6)],
                regions_missing: vec![],
            }),
            ..Row::default()
        }];
        let a = summarise(
            "A",
            &rows,
            &[("FaceSim (ArcFace)", "buffalo_l")],
            Default::default(),
        );
        let b = summarise("B", &rows, &[], Default::default());
        let html = render(
            &[(&a, Some(&rows)), (&b, None)],
            &[Thumb {
                row: &rows[0],
                data_uri: "data:image/png;base64,AA".into(),
            }],
        );
        assert!(html.contains("Evaluation: A vs B") && html.contains("buffalo_l"));
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        assert!(html.contains("<svg") && html.contains("id=\"grid\""));
        assert!(html.contains("0.5000"));
    }
}
