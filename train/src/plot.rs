//! The loss plot of a run (`RUN/loss.html`): a self-contained page with one SVG chart per loss
//! part (noise loss and total; L_loc), each step faint and an exponential moving average on
//! top, redrawn at every checkpoint so a person can watch a long run.

use std::fmt::Write;

/// One `metrics.csv` row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub step: f64,
    pub total: f64,
    pub noise: f64,
    pub loc: f64,
}

/// Reads `metrics.csv` (`step,total,noise_loss,loc_loss,masked,seconds`); bad lines are skipped.
pub fn parse_metrics(text: &str) -> Vec<Point> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<f64> = line
                .split(',')
                .take(4)
                .map(|v| v.trim().parse().ok())
                .collect::<Option<_>>()?;
            (f.len() == 4).then(|| Point {
                step: f[0],
                total: f[1],
                noise: f[2],
                loc: f[3],
            })
        })
        .collect()
}

/// Exponential moving average with a window of about `n` points.
fn smooth(values: &[f64], n: usize) -> Vec<f64> {
    let alpha = 2.0 / (n as f64 + 1.0);
    let mut avg = values.first().copied().unwrap_or(0.0);
    values
        .iter()
        .map(|&v| {
            avg += alpha * (v - avg);
            avg
        })
        .collect()
}

const W: f64 = 720.0;
const H: f64 = 260.0;
const PAD: f64 = 48.0;

/// One chart: `series` of (name, colour, values) against `steps`.
fn chart(title: &str, steps: &[f64], series: &[(&str, &str, Vec<f64>)]) -> String {
    let finite = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (lo.min(0.0), lo.max(0.0) + 1.0)
    };
    let (s0, s1) = (
        steps.first().copied().unwrap_or(0.0),
        steps.last().copied().unwrap_or(1.0),
    );
    let span = (s1 - s0).max(1.0);
    let x = |s: f64| PAD + (s - s0) / span * (W - 2.0 * PAD);
    let y = |v: f64| H - PAD + (lo - v) / (hi - lo) * (H - 2.0 * PAD);
    let mut svg = format!(
        "<figure><figcaption>{title}</figcaption><svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{title}\">"
    );
    let _ = write!(
        svg,
        "<line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" class=\"axis\"/><line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{b}\" class=\"axis\"/>\
         <text x=\"4\" y=\"{t}\">{hi:.4}</text><text x=\"4\" y=\"{b}\">{lo:.4}</text>\
         <text x=\"{PAD}\" y=\"{s}\">step {s0}</text><text x=\"{r}\" y=\"{s}\" text-anchor=\"end\">{s1}</text>",
        b = H - PAD,
        r = W - PAD,
        t = PAD + 4.0,
        s = H - PAD + 18.0,
    );
    if lo < 0.0 && hi > 0.0 {
        let _ = write!(
            svg,
            "<line x1=\"{PAD}\" y1=\"{z}\" x2=\"{r}\" y2=\"{z}\" class=\"zero\"/>",
            z = y(0.0),
            r = W - PAD
        );
    }
    for (i, (name, colour, values)) in series.iter().enumerate() {
        let path = |vals: &[f64]| -> String {
            steps
                .iter()
                .zip(vals)
                .filter(|(_, v)| v.is_finite())
                .map(|(&s, &v)| format!("{:.1},{:.1}", x(s), y(v)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let window = (values.len() / 20).clamp(1, 200);
        let _ = write!(
            svg,
            "<polyline points=\"{}\" stroke=\"{colour}\" class=\"raw\"/><polyline points=\"{}\" stroke=\"{colour}\" class=\"avg\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{colour}\">{name}</text>",
            path(values),
            path(&smooth(values, window)),
            W - PAD - 150.0,
            PAD + 16.0 * i as f64,
        );
    }
    svg + "</svg></figure>"
}

/// The page for `points` of the run `title`.
pub fn loss_page(title: &str, points: &[Point]) -> String {
    let steps: Vec<f64> = points.iter().map(|p| p.step).collect();
    let get = |f: fn(&Point) -> f64| points.iter().map(f).collect::<Vec<_>>();
    let escaped = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let last = points.last().map_or(String::new(), |p| {
        format!(
            "step {}: total {:.5}, noise {:.5}, L_loc {:.4}",
            p.step, p.total, p.noise, p.loc
        )
    });
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escaped}: losses</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:780px}}svg{{width:100%;background:#fafafa}}\
         .axis{{stroke:#888}}.zero{{stroke:#bbb;stroke-dasharray:4}}polyline{{fill:none}}.raw{{stroke-width:1;opacity:.3}}\
         .avg{{stroke-width:2}}text{{font-size:12px;fill:#444}}</style></head><body>\
         <h1>{escaped}</h1><p id=\"last\">{last}</p>{}{}</body></html>\n",
        chart(
            "Noise loss and total",
            &steps,
            &[
                ("noise loss", "#1f77b4", get(|p| p.noise)),
                ("total", "#2ca02c", get(|p| p.total)),
            ],
        ),
        chart(
            "Facial attention localization loss (L_loc, unweighted)",
            &steps,
            &[("L_loc", "#d62728", get(|p| p.loc))],
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_become_two_charts() {
        let points = parse_metrics(
            "step,total,noise_loss,loc_loss,masked,seconds\n1,0.5,0.4,0.1,0,1.0\nbad\n2,0.3,0.3,-0.2,1,1.0\n",
        );
        assert_eq!(points.len(), 2);
        assert_eq!(points[1].loc, -0.2);
        let page = loss_page("run <a>", &points);
        assert_eq!(page.matches("<svg").count(), 2);
        assert!(page.contains("run &lt;a&gt;"));
        assert!(page.contains("class=\"zero\""), "L_loc crosses zero");
        assert!(page.contains("step 2: total 0.30000"));
    }
}
