//! What a training run leaves behind besides the model: the per-epoch CSV log and the learning
//! curves as SVG (and PNG through the diagram rasteriser).

use std::fmt::Write as _;
use std::path::Path;

use super::trainer::EpochStats;
use crate::error::{Error, Result};
use crate::files::write_atomic;

/// The CSV log: one row per epoch (`epoch, lr, train_loss, train_top1, val_loss, val_top1,
/// val_top5, images_per_sec, seconds`), rewritten atomically after every epoch.
pub fn write_csv(path: &Path, history: &[EpochStats]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for s in history {
        w.serialize(s)
            .map_err(|e| Error::io_reason(path, format!("{e}")))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::io_reason(path, format!("{e}")))?;
    write_atomic(path, &bytes)
}

/// Two panels — loss (train and validation) and accuracy (train top-1, validation top-1 and
/// top-5) against the epoch — as a standalone SVG.
pub fn curves_svg(title: &str, history: &[EpochStats]) -> String {
    let (pw, ph, pad) = (420.0, 260.0, 50.0);
    let top = 56.0;
    let width = 2.0 * pw + 3.0 * pad;
    let height = ph + top + 50.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{pad}" y="24" font-size="16">{}</text>
"#,
        escape(title)
    );
    let epochs: Vec<f64> = history.iter().map(|s| s.epoch as f64).collect();
    let max_loss = history
        .iter()
        .flat_map(|s| [s.train_loss, s.val_loss])
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let loss: Vec<(&str, &str, Vec<f64>)> = vec![
        (
            "train",
            "#1f77b4",
            history.iter().map(|s| s.train_loss).collect(),
        ),
        (
            "validation",
            "#d62728",
            history.iter().map(|s| s.val_loss).collect(),
        ),
    ];
    let acc: Vec<(&str, &str, Vec<f64>)> = vec![
        (
            "train top-1",
            "#1f77b4",
            history.iter().map(|s| 100.0 * s.train_top1).collect(),
        ),
        (
            "val top-1",
            "#d62728",
            history.iter().map(|s| 100.0 * s.val_top1).collect(),
        ),
        (
            "val top-5",
            "#2ca02c",
            history.iter().map(|s| 100.0 * s.val_top5).collect(),
        ),
    ];
    // Accuracy axis from the lowest value seen (rounded down to 10%) to 100%.
    let low = acc
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .fold(100.0f64, f64::min);
    let low = ((low / 10.0).floor() * 10.0).clamp(0.0, 90.0);
    panel(
        &mut svg,
        pad,
        top,
        (pw, ph),
        "loss",
        &epochs,
        (0.0, max_loss * 1.05),
        &loss,
    );
    panel(
        &mut svg,
        2.0 * pad + pw,
        top,
        (pw, ph),
        "accuracy (%)",
        &epochs,
        (low, 100.0),
        &acc,
    );
    svg.push_str("</svg>\n");
    svg
}

#[allow(clippy::too_many_arguments)]
fn panel(
    svg: &mut String,
    x0: f64,
    y0: f64,
    (w, h): (f64, f64),
    label: &str,
    xs: &[f64],
    (lo, hi): (f64, f64),
    series: &[(&str, &str, Vec<f64>)],
) {
    let xmax = xs.iter().copied().fold(1.0f64, f64::max);
    let px = |x: f64| x0 + (x - 1.0).max(0.0) / (xmax - 1.0).max(1.0) * w;
    let py = |y: f64| y0 + h - ((y - lo) / (hi - lo).max(1e-12)).clamp(0.0, 1.0) * h;
    let _ = writeln!(
        svg,
        r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#888"/>"##
    );
    for i in 0..=4 {
        let v = lo + (hi - lo) * i as f64 / 4.0;
        let y = py(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{x0}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            x0 + w,
            x0 - 4.0,
            y + 4.0,
            trim(v)
        );
    }
    let step = (xmax / 8.0).ceil().max(1.0);
    let mut e = 1.0;
    while e <= xmax {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{e}</text>"#,
            px(e),
            y0 + h + 16.0
        );
        e += step;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">epoch</text><text x="{x0}" y="{}">{label}</text>"#,
        x0 + w / 2.0,
        y0 + h + 34.0,
        y0 - 6.0
    );
    for (k, (name, color, ys)) in series.iter().enumerate() {
        let pts: Vec<String> = xs
            .iter()
            .zip(ys)
            .filter(|(_, y)| y.is_finite())
            .map(|(&x, &y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        if pts.len() == 1 {
            let _ = writeln!(
                svg,
                r#"<circle cx="{}" cy="{}" r="3" fill="{color}"/>"#,
                px(xs[0]),
                py(ys[0])
            );
        }
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            pts.join(" ")
        );
        // Legends go where the curves are not: top right for losses (falling), bottom right
        // for accuracies (rising).
        let ly = if lo > 0.0 || label.starts_with("acc") {
            y0 + h - 8.0 - 16.0 * (series.len() - 1 - k) as f64
        } else {
            y0 + 14.0 + 16.0 * k as f64
        };
        let _ = writeln!(
            svg,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{name}</text>"#,
            x0 + w - 120.0,
            ly - 4.0,
            x0 + w - 100.0,
            ly - 4.0,
            x0 + w - 94.0,
            ly
        );
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The confusion matrix as an SVG heat map: rows are the true classes, columns the predicted
/// ones; each cell shows its count, shaded by its share of the row. A last column of the matrix
/// beyond `classes` counts predictions of classes the data does not have (an ImageNet model on
/// a few of its classes): it is drawn as "other" with a note saying so, and left out when empty.
pub fn confusion_svg(title: &str, classes: &[String], confusion: &[Vec<usize>]) -> String {
    let n = classes.len();
    let other = confusion
        .iter()
        .any(|row| row.iter().skip(n).any(|&c| c > 0));
    let cols = if other { n + 1 } else { n };
    let cell = if n > 30 { 14.0 } else { 32.0 };
    let label_w = 12.0 + 7.0 * classes.iter().map(|c| c.chars().count()).max().unwrap_or(1) as f64;
    let (x0, y0) = (label_w + 30.0, 70.0 + label_w);
    // DejaVu Sans at 15 px averages ~9 px a character (wide ones more): room for the title.
    let width = (x0 + cell * cols as f64 + 20.0).max(30.0 + 9.5 * title.chars().count() as f64);
    let note = "other: predicted a class that is not among the data's classes";
    let width = if other {
        width.max(30.0 + 6.8 * note.chars().count() as f64)
    } else {
        width
    };
    let height = y0 + cell * n as f64 + if other { 60.0 } else { 40.0 };
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="15">{}</text>
<text x="{x0}" y="44">predicted →</text>
<text x="10" y="{}" >true ↓</text>
"#,
        escape(title),
        y0 - 6.0
    );
    for (j, name) in classes
        .iter()
        .map(String::as_str)
        .chain(other.then_some("other"))
        .enumerate()
    {
        let x = x0 + cell * (j as f64 + 0.5);
        let _ = writeln!(
            svg,
            r#"<text transform="translate({x},{}) rotate(-60)">{}</text>"#,
            y0 - 6.0,
            escape(name)
        );
    }
    for (i, row) in confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        let y = y0 + cell * i as f64;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            x0 - 6.0,
            y + cell * 0.65,
            escape(&classes[i])
        );
        for (j, &count) in row.iter().take(cols).enumerate() {
            let share = count as f64 / total;
            // Correct cells in blue, confusions in red, the darker the more.
            let (r, g, b) = if i == j {
                (31, 119, 180)
            } else {
                (214, 39, 40)
            };
            let mix = |c: u8| (255.0 - (255.0 - c as f64) * share).round() as u8;
            let x = x0 + cell * j as f64;
            let _ = writeln!(
                svg,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="rgb({},{},{})" stroke="#ddd"/>"##,
                mix(r),
                mix(g),
                mix(b)
            );
            if count > 0 && cell >= 20.0 {
                let fill = if share > 0.5 { "white" } else { "black" };
                let _ = writeln!(
                    svg,
                    r#"<text x="{}" y="{}" text-anchor="middle" fill="{fill}">{count}</text>"#,
                    x + cell / 2.0,
                    y + cell * 0.65
                );
            }
        }
    }
    if other {
        let _ = writeln!(
            svg,
            r##"<text x="10" y="{}" fill="#555">{note}</text>"##,
            y0 + cell * n as f64 + 30.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}
