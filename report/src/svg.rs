//! Plots as hand-written SVG (text is left to the viewer: no font files needed),
//! rasterised to PNG with resvg for people who want a picture file.

use std::fmt::Write;

// Type sizes are chosen for the page, which shows a plot 520 px wide (a factor 0.81):
// 15 px in the picture is 12 px on screen at 100% zoom.
const W: f64 = 640.0;
const H: f64 = 470.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
/// Tick labels, the x axis label and up to two legend rows live below the plot area, so
/// that no legend covers a curve.
const BOTTOM: f64 = 110.0;
const TICK_FONT: f64 = 15.0;
const LABEL_FONT: f64 = 16.0;
const LEGEND_ROW: f64 = 22.0;
const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= n as f64).unwrap_or(mag * 10.0);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(t);
        t += step;
    }
    out
}

fn header(out: &mut String, title: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="DejaVu Sans, Arial, sans-serif"><rect width="{W}" height="{H}" fill="white"/><text x="{}" y="24" text-anchor="middle" font-size="18">{}</text>"#,
        W / 2.0,
        crate::html::esc(title)
    );
}

/// The data ranges of a chart and their map to pixels.
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    /// Every x is a whole number (epochs): x ticks are whole numbers too.
    whole_x: bool,
}

impl Frame {
    /// Ranges that hold every finite point of `series` (y from 0 unless `y_range` fixes it);
    /// a single value or no data gets a unit range instead of a division by zero.
    fn fit(series: &[Series], y_range: Option<(f64, f64)>) -> Frame {
        let all: Vec<(f64, f64)> = series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        let (x0, x1) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| (a.0.min(p.0), a.1.max(p.0)));
        let (y0, y1) = y_range.unwrap_or_else(|| {
            let (lo, hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| (a.0.min(p.1), a.1.max(p.1)));
            (lo.min(0.0), if hi > lo { hi * 1.05 } else { lo + 1.0 })
        });
        let (x0, x1) = if all.is_empty() {
            (0.0, 1.0)
        } else if x1 > x0 {
            (x0, x1)
        } else {
            (x0 - 0.5, x0 + 0.5)
        };
        let (y0, y1) = if y1 > y0 { (y0, y1) } else { (0.0, 1.0) };
        let whole_x = !all.is_empty() && all.iter().all(|p| p.0.fract() == 0.0);
        Frame { x0, x1, y0, y1, whole_x }
    }

    fn px(&self, x: f64) -> f64 {
        LEFT + (x - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)
    }

    fn py(&self, y: f64) -> f64 {
        H - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM)
    }

    /// Horizontal grid lines with y tick labels, and x tick labels.
    fn ticks(&self, out: &mut String) {
        for t in nice_ticks(self.y0, self.y1, 6) {
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{}" y="{:.1}" text-anchor="end" font-size="{TICK_FONT}">{}</text>"##,
                W - RIGHT,
                LEFT - 6.0,
                self.py(t) + 5.0,
                fmt_tick(t),
                y = self.py(t)
            );
        }
        for t in nice_ticks(self.x0, self.x1, 8).into_iter().filter(|t| !self.whole_x || t.fract().abs() < 1e-9) {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{}" text-anchor="middle" font-size="{TICK_FONT}">{}</text>"#,
                self.px(t),
                H - BOTTOM + 20.0,
                fmt_tick(t)
            );
        }
    }

    /// Series `index`: its polyline, and its points when there are few.
    fn series(&self, out: &mut String, index: usize, s: &Series) {
        let colour = COLOURS[index % COLOURS.len()];
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
            .collect();
        let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = write!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#,
            pts.join(" ")
        );
        if s.points.len() <= 60 {
            for p in &pts {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(out, r#"<circle cx="{x}" cy="{y}" r="3" fill="{colour}"/>"#);
            }
        }
    }
}

/// The legend, in rows below the x axis label: a sample of each line and its name.
fn legend(out: &mut String, series: &[Series]) {
    let mut x = LEFT;
    let mut y = H - BOTTOM + 68.0;
    for (index, s) in series.iter().enumerate() {
        // About 0.55 em per character in the sans-serif faces the viewer may pick.
        let width = 34.0 + 0.55 * TICK_FONT * s.name.chars().count() as f64 + 18.0;
        if x > LEFT && x + width > W - RIGHT {
            x = LEFT;
            y += LEGEND_ROW;
        }
        let colour = COLOURS[index % COLOURS.len()];
        let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = write!(
            out,
            r#"<line x1="{x}" x2="{}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/><text x="{}" y="{}" font-size="{TICK_FONT}">{}</text>"#,
            x + 26.0,
            x + 32.0,
            y + 5.0,
            crate::html::esc(&s.name)
        );
        x += width;
    }
}

/// The two axis lines and their labels.
fn axes(out: &mut String, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{}" stroke="#333"/><line x1="{LEFT}" x2="{}" y1="{b}" y2="{b}" stroke="#333"/><text x="{}" y="{}" text-anchor="middle" font-size="{LABEL_FONT}">{}</text><text x="18" y="{}" text-anchor="middle" font-size="{LABEL_FONT}" transform="rotate(-90 18 {})">{}</text>"##,
        H - BOTTOM,
        W - RIGHT,
        (LEFT + W - RIGHT) / 2.0,
        H - BOTTOM + 44.0,
        crate::html::esc(x_label),
        (TOP + H - BOTTOM) / 2.0,
        (TOP + H - BOTTOM) / 2.0,
        crate::html::esc(y_label),
        b = H - BOTTOM
    );
}

/// A line chart with axes, ticks and a legend. `y_range` fixes the y axis (e.g. 0..1).
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series], y_range: Option<(f64, f64)>) -> String {
    line_chart_with_intervals(title, x_label, y_label, series, &[], y_range)
}

/// [`line_chart`] with a vertical error bar at each point that has an interval:
/// `intervals[i][j]` is the `(lo, hi)` of series `i`'s point `j` (missing: none).
pub fn line_chart_with_intervals(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    intervals: &[Vec<Option<(f64, f64)>>],
    y_range: Option<(f64, f64)>,
) -> String {
    let (mut out, _) = open_chart(title, x_label, y_label, series, intervals, y_range);
    out.push_str("</svg>");
    out
}

/// [`line_chart`] with a short text beside points: `(x, y, text)` in data units, e.g. how
/// many images a reliability bin holds.
pub fn line_chart_with_notes(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    notes: &[(f64, f64, String)],
    y_range: Option<(f64, f64)>,
) -> String {
    let (mut out, frame) = open_chart(title, x_label, y_label, series, &[], y_range);
    // Notes of points closer than a line of text are joined into one ("10, 12").
    let mut placed: Vec<(f64, f64, String)> = Vec::new();
    for (x, y, text) in notes.iter().filter(|(x, y, _)| x.is_finite() && y.is_finite()) {
        let (px, py) = (frame.px(*x), frame.py(*y));
        match placed.iter_mut().find(|(qx, qy, _)| (qx - px).hypot(qy - py) < 2.0 * TICK_FONT) {
            Some(near) => {
                near.2.push_str(", ");
                near.2.push_str(text);
            }
            None => placed.push((px, py, text.clone())),
        }
    }
    for (px, py, text) in &placed {
        // Above the point, or below it when the point is near the top.
        let ty = if py - TOP < 24.0 { py + 22.0 } else { py - 10.0 };
        let _ = write!(
            out,
            r##"<text x="{px:.1}" y="{ty:.1}" text-anchor="{anchor}" font-size="{TICK_FONT}" fill="#444">{}</text>"##,
            crate::html::esc(text),
            anchor = if *px > W - RIGHT - 40.0 {
                "end"
            } else if *px < LEFT + 40.0 {
                "start"
            } else {
                "middle"
            }
        );
    }
    out.push_str("</svg>");
    out
}

/// Everything of a line chart but its closing tag, and the frame that maps data to pixels.
fn open_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    intervals: &[Vec<Option<(f64, f64)>>],
    y_range: Option<(f64, f64)>,
) -> (String, Frame) {
    let frame = Frame::fit(series, y_range);
    let mut out = String::new();
    header(&mut out, title);
    frame.ticks(&mut out);
    axes(&mut out, x_label, y_label);
    for (i, s) in series.iter().enumerate() {
        frame.series(&mut out, i, s);
        let bars = intervals.get(i).map_or(&[][..], Vec::as_slice);
        for (&(x, _), interval) in s.points.iter().zip(bars) {
            if let Some((lo, hi)) = interval.filter(|(lo, hi)| x.is_finite() && lo.is_finite() && hi.is_finite()) {
                let (px, ylo, yhi) = (frame.px(x), frame.py(lo), frame.py(hi));
                let _ = write!(
                    out,
                    r#"<path d="M{:.1},{ylo:.1}V{yhi:.1}M{:.1},{ylo:.1}h8M{:.1},{yhi:.1}h8" stroke="{}" stroke-width="1.2" fill="none"/>"#,
                    px,
                    px - 4.0,
                    px - 4.0,
                    COLOURS[i % COLOURS.len()]
                );
            }
        }
    }
    legend(&mut out, series);
    (out, frame)
}

fn fmt_tick(t: f64) -> String {
    if (t - t.round()).abs() < 1e-9 {
        format!("{}", t.round() as i64)
    } else {
        let s = format!("{t:.3}");
        s.trim_end_matches('0').to_string()
    }
}

/// A confusion-matrix heatmap: rows actual, columns predicted; colour by row rate.
pub fn heatmap(title: &str, classes: &[String], counts: &[Vec<usize>]) -> String {
    let n = classes.len().max(1) as f64;
    let (left, top, size) = (150.0, 60.0, 300.0);
    let cell = size / n;
    let mut out = String::new();
    header(&mut out, title);
    for (r, row) in counts.iter().enumerate() {
        let total: usize = row.iter().sum();
        for (c, &v) in row.iter().enumerate() {
            let rate = if total == 0 { 0.0 } else { v as f64 / total as f64 };
            let shade = (255.0 - rate * 200.0) as u8;
            let text = if rate > 0.6 { "white" } else { "black" };
            let (x, y) = (left + c as f64 * cell, top + r as f64 * cell);
            let _ = write!(
                out,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="rgb({shade},{shade},255)" stroke="#555"/><text x="{}" y="{}" text-anchor="middle" font-size="20" fill="{text}">{v}</text><text x="{}" y="{}" text-anchor="middle" font-size="{TICK_FONT}" fill="{text}">{:.1}%</text>"##,
                x + cell / 2.0,
                y + cell / 2.0,
                x + cell / 2.0,
                y + cell / 2.0 + 20.0,
                rate * 100.0
            );
        }
    }
    for (i, class) in classes.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end" font-size="{LABEL_FONT}">{}</text><text x="{}" y="{}" text-anchor="middle" font-size="{LABEL_FONT}">{}</text>"#,
            left - 8.0,
            top + (i as f64 + 0.5) * cell + 4.0,
            crate::html::esc(class),
            left + (i as f64 + 0.5) * cell,
            top + size + 20.0,
            crate::html::esc(class)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="{LABEL_FONT}">predicted</text><text x="30" y="{}" text-anchor="middle" font-size="{LABEL_FONT}" transform="rotate(-90 30 {})">actual</text></svg>"#,
        left + size / 2.0,
        top + size + 42.0,
        top + size / 2.0,
        top + size / 2.0
    );
    out
}

/// Rasterises an SVG to PNG (text drawn with whatever system fonts exist).
pub fn to_png(svg: &str) -> Result<Vec<u8>, String> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options::default();
    options.fontdb_mut().load_system_fonts();
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| e.to_string())?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).ok_or("empty image")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The x tick labels of a chart, in order.
    fn x_labels(svg: &str) -> Vec<String> {
        let marker = format!(r#"y="{}" text-anchor="middle" font-size="{TICK_FONT}">"#, H - BOTTOM + 20.0);
        svg.split(&marker).skip(1).map(|rest| rest.split('<').next().unwrap_or_default().to_string()).collect()
    }

    #[test]
    fn epoch_axes_have_whole_ticks_and_other_axes_keep_fractions() {
        let epochs = Series {
            name: "loss".into(),
            points: (1..=5).map(|e| (e as f64, 1.0 / e as f64)).collect(),
            dashed: false,
        };
        let labels = x_labels(&line_chart("t", "epoch", "loss", &[epochs], None));
        assert_eq!(labels, ["1", "2", "3", "4", "5"]);
        let roc = Series { name: "roc".into(), points: vec![(0.0, 0.0), (0.3, 0.8), (1.0, 1.0)], dashed: false };
        let labels = x_labels(&line_chart("t", "fpr", "tpr", &[roc], Some((0.0, 1.0))));
        assert!(labels.iter().any(|l| l.contains('.')), "{labels:?}");
    }

    /// Every `font-size` in an SVG, and every `y` of a text element.
    fn attribute(svg: &str, name: &str) -> Vec<f64> {
        svg.split(&format!(" {name}=\"")).skip(1).filter_map(|r| r.split('"').next()?.parse().ok()).collect()
    }

    #[test]
    fn text_is_12_px_or_more_where_the_page_shows_a_plot_and_legends_are_below_the_curves() {
        // The page shows a plot 520 px wide.
        let scale = 520.0 / W;
        let series: Vec<Series> = ["train", "validation (selection)", "a third series with a long name"]
            .iter()
            .enumerate()
            .map(|(i, n)| Series { name: n.to_string(), points: vec![(0.0, 0.0), (1.0, i as f64)], dashed: i == 1 })
            .collect();
        let notes = [(0.5, 0.5, "12".to_string())];
        for svg in [
            line_chart("t", "x", "y", &series, None),
            line_chart_with_notes("t", "x", "y", &series[..1], &notes, Some((0.0, 1.0))),
            heatmap("t", &["NORMAL".into(), "PNEUMONIA".into()], &[vec![3, 1], vec![0, 4]]),
        ] {
            let smallest = attribute(&svg, "font-size").into_iter().fold(f64::INFINITY, f64::min);
            assert!(smallest * scale >= 12.0, "{smallest} px drawn at {:.1} px", smallest * scale);
            assert!(attribute(&svg, "y").iter().all(|&y| y <= H), "text below the picture");
        }
        // Legend entries (the series' names) sit below the x axis, outside the plot area.
        let svg = line_chart("t", "x", "y", &series, None);
        for name in ["train", "validation (selection)"] {
            let before = svg.split(&format!(">{}</text>", crate::html::esc(name))).next().unwrap_or_default();
            let y = attribute(before.rsplit("<text").next().unwrap_or_default(), "y")[0];
            assert!(y > H - BOTTOM + 44.0, "{name} at y {y}");
        }
    }
}
