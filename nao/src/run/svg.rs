//! Hand-written SVG plots: the search curve, the predictor's quality per round, and the
//! `Frame` (axes, ticks, legend) they and the training curves share.

use crate::search::{Record, Source};

/// "Nice" tick values covering `[lo, hi]` (about 5 of them).
pub fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return vec![lo];
    }
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

pub(crate) fn fmt_tick(x: f64) -> String {
    let s = format!("{x:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Escapes text for SVG markup (the workspace's one escape, [`models::space::escape_markup`]).
pub(crate) use models::space::escape_markup as esc;

/// Which side of the plot area a vertical axis is on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Left,
    Right,
}

/// The frame every plot here is drawn in: the canvas, its margins and the plot area between
/// them, with the SVG pieces they share (header and title, axis lines, ticks, axis titles,
/// legend entries, a line series).
pub(crate) struct Frame {
    pub w: f64,
    pub h: f64,
    /// Margins: left, right, top, bottom.
    pub ml: f64,
    pub mr: f64,
    pub mt: f64,
    pub mb: f64,
}

impl Frame {
    /// A `w` x `h` canvas with margins `(left, right, top, bottom)`.
    pub fn new(w: f64, h: f64, (ml, mr, mt, mb): (f64, f64, f64, f64)) -> Frame {
        Frame {
            w,
            h,
            ml,
            mr,
            mt,
            mb,
        }
    }

    /// Width of the plot area.
    pub fn pw(&self) -> f64 {
        self.w - self.ml - self.mr
    }

    /// Height of the plot area.
    pub fn ph(&self) -> f64 {
        self.h - self.mt - self.mb
    }

    /// The plot area's right edge.
    pub fn right(&self) -> f64 {
        self.ml + self.pw()
    }

    /// The plot area's bottom edge.
    pub fn bottom(&self) -> f64 {
        self.mt + self.ph()
    }

    /// The SVG header, a white background and the centred `title` (escaped).
    pub fn open(&self, title: &str) -> String {
        let (w, h) = (self.w, self.h);
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{:.1}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
            self.ml + self.pw() / 2.0,
            esc(title)
        )
    }

    /// The axis lines: left, bottom, and right when `right_axis`.
    pub fn axes(&self, right_axis: bool) -> String {
        let (ml, mt, b, r) = (self.ml, self.mt, self.bottom(), self.right());
        let mut o = format!(
            "<line x1=\"{ml}\" y1=\"{mt}\" x2=\"{ml}\" y2=\"{b:.1}\" stroke=\"black\"/>\n\
             <line x1=\"{ml}\" y1=\"{b:.1}\" x2=\"{r:.1}\" y2=\"{b:.1}\" stroke=\"black\"/>\n"
        );
        if right_axis {
            o += &format!(
                "<line x1=\"{r:.1}\" y1=\"{mt}\" x2=\"{r:.1}\" y2=\"{b:.1}\" stroke=\"black\"/>\n"
            );
        }
        o
    }

    /// A tick at height `y` on the `side` axis with its `label` (escaped), and a light grid
    /// line across the plot area when `grid`.
    pub fn y_tick(&self, y: f64, label: &str, side: Side, grid: bool) -> String {
        let (ml, r) = (self.ml, self.right());
        let (edge, out, text, anchor) = match side {
            Side::Left => (ml, ml - 5.0, ml - 8.0, "end"),
            Side::Right => (r, r + 5.0, r + 8.0, "start"),
        };
        let mut o = format!(
            "<line x1=\"{out:.1}\" y1=\"{y:.1}\" x2=\"{edge:.1}\" y2=\"{y:.1}\" stroke=\"black\"/>\n"
        );
        if grid {
            o += &format!(
                "<line x1=\"{ml}\" y1=\"{y:.1}\" x2=\"{r:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\n"
            );
        }
        o += &format!(
            "<text x=\"{text:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>\n",
            y + 4.0,
            esc(label)
        );
        o
    }

    /// A tick at `x` on the bottom axis with its `label`.
    pub fn x_tick(&self, x: f64, label: &str) -> String {
        let b = self.bottom();
        format!(
            "<line x1=\"{x:.1}\" y1=\"{b:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"black\"/>\n<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            b + 5.0,
            b + 19.0,
            esc(label)
        )
    }

    /// The bottom axis's title, and the left axis's (rotated) when given.
    pub fn titles(&self, x_title: &str, y_title: Option<&str>) -> String {
        let mut o = format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            self.ml + self.pw() / 2.0,
            self.h - 12.0,
            esc(x_title)
        );
        if let Some(t) = y_title {
            let y = self.mt + self.ph() / 2.0;
            o += &format!(
                "<text x=\"18\" y=\"{y:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {y:.1})\">{}</text>\n",
                esc(t)
            );
        }
        o
    }

    /// Legend entry `k` (counted from the top, right of the plot area, `dx` from its
    /// edge): a short line in `colour` and the `label`.
    pub fn legend_line(&self, k: usize, dx: f64, colour: &str, label: &str) -> String {
        let x = self.right() + dx;
        let y = self.mt + 10.0 + 20.0 * k as f64;
        format!(
            "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/>\n<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            x + 20.0,
            x + 25.0,
            y + 4.0,
            esc(label)
        )
    }
}

/// A line through `points` (already in canvas coordinates; drawn only when there are two or
/// more) with a dot on each, in `colour`.
pub(crate) fn dotted_line(points: &[(f64, f64)], colour: &str) -> String {
    let mut o = String::new();
    if points.len() > 1 {
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        o += &format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>\n",
            path.join(" ")
        );
    }
    for (x, y) in points {
        o += &format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{colour}\"/>\n");
    }
    o
}

/// The search curve: each evaluation's score against its index (dots coloured by where the
/// architecture came from; failures as red crosses under the axis), the best so far as a
/// step line, dashed lines where rounds start; axes, ticks, labels, a legend.
pub fn search_curve(records: &[Record], metric: &str, title: &str) -> String {
    let f = Frame::new(860.0, 480.0, (70.0, 170.0, 40.0, 60.0));
    let (ml, mt, pw, ph) = (f.ml, f.mt, f.pw(), f.ph());
    let n = records.len().max(1);
    let scores: Vec<f64> = records.iter().filter_map(|r| r.score).collect();
    let (mut lo, mut hi) = scores
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &s| {
            (a.min(s), b.max(s))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        lo -= 0.5;
        hi += 0.5;
    }
    let pad = (hi - lo) * 0.05;
    let (lo, hi) = (lo - pad, hi + pad);
    let xs = |i: f64| ml + pw * (i + 0.5) / n as f64;
    let ys = |s: f64| mt + ph * (1.0 - (s - lo) / (hi - lo));
    let mut o = f.open(title);
    // round boundaries
    for win in records.windows(2) {
        if win[1].round != win[0].round {
            let x = ml + pw * win[1].index as f64 / n as f64;
            o += &format!(
                "<line x1=\"{x:.1}\" y1=\"{mt}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"#888\">r{}</text>\n",
                mt + ph,
                x + 2.0,
                mt + 10.0,
                win[1].round
            );
        }
    }
    // axes and ticks
    o += &f.axes(false);
    for t in ticks(lo, hi) {
        o += &f.y_tick(ys(t), &fmt_tick(t), Side::Left, true);
    }
    for t in ticks(0.0, (n - 1) as f64) {
        if t.fract() == 0.0 {
            o += &f.x_tick(xs(t), &(t as usize).to_string());
        }
    }
    o += &f.titles("evaluation", Some(metric));
    // points
    let colour = |s: Source| match s {
        Source::Random => "#999999",
        Source::Generated => "#1f77b4",
        Source::TopUp => "#ff7f0e",
        Source::Mutation => "#2ca02c",
    };
    for r in records {
        let x = xs(r.index as f64);
        match r.score {
            Some(s) => {
                o += &format!(
                    "<circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\" fill-opacity=\"0.7\"/>\n",
                    ys(s),
                    colour(r.source)
                )
            }
            None => {
                let y = mt + ph - 6.0;
                o += &format!(
                    "<path d=\"M{:.1} {:.1} l6 6 m0 -6 l-6 6\" stroke=\"#d62728\" stroke-width=\"1.5\"/>\n",
                    x - 3.0,
                    y - 3.0
                )
            }
        }
    }
    // best so far
    let mut best = f64::NEG_INFINITY;
    let mut path = String::new();
    for r in records {
        if let Some(s) = r.score
            && s > best
        {
            let (x, y) = (xs(r.index as f64), ys(s));
            if path.is_empty() {
                path = format!("M{x:.1} {y:.1}");
            } else {
                path += &format!(" H{x:.1} V{y:.1}");
            }
            best = s;
        }
    }
    if !path.is_empty() {
        path += &format!(" H{:.1}", xs((n - 1) as f64));
        o += &format!("<path d=\"{path}\" fill=\"none\" stroke=\"black\" stroke-width=\"2\"/>\n");
    }
    // legend
    let lx = ml + pw + 20.0;
    let mut ly = mt + 10.0;
    o += &format!(
        "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"black\" stroke-width=\"2\"/><text x=\"{}\" y=\"{}\">best so far</text>\n",
        lx + 18.0,
        lx + 24.0,
        ly + 4.0
    );
    for (name, s) in [
        ("random", Source::Random),
        ("generated (NAO)", Source::Generated),
        ("random top-up", Source::TopUp),
        ("mutation", Source::Mutation),
    ] {
        if records.iter().any(|r| r.source == s) {
            ly += 20.0;
            o += &format!(
                "<circle cx=\"{}\" cy=\"{ly}\" r=\"4\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{name}</text>\n",
                lx + 9.0,
                colour(s),
                lx + 24.0,
                ly + 4.0
            );
        }
    }
    if records.iter().any(|r| r.score.is_none()) {
        ly += 20.0;
        o += &format!(
            "<path d=\"M{} {} l6 6 m0 -6 l-6 6\" stroke=\"#d62728\" stroke-width=\"1.5\"/><text x=\"{}\" y=\"{}\">failed</text>\n",
            lx + 6.0,
            ly - 3.0,
            lx + 24.0,
            ly + 4.0
        );
    }
    o += "</svg>\n";
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice() {
        assert_eq!(ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = ticks(0.13, 0.91);
        assert!(t.len() >= 4 && t.len() <= 9, "{t:?}");
        assert_eq!(ticks(1.0, 1.0), vec![1.0]);
    }

    #[test]
    fn empty_curve_is_valid_svg() {
        let s = search_curve(&[], "acc", "t");
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
    }
}

/// The predictor's quality per NAO round as a line plot: each of `reference_kendall_tau`,
/// `reference_pairwise_acc`, `heldout_kendall_tau`, `heldout_pairwise_acc` that some round
/// of `rounds` (the lines of `rounds.jsonl`) holds, against the round; `None` when no round
/// holds any of them.
pub fn predictor_quality(rounds: &[serde_json::Value]) -> Option<String> {
    const SERIES: [(&str, &str, &str); 4] = [
        ("reference_kendall_tau", "tau, reference sample", "#1f77b4"),
        (
            "reference_pairwise_acc",
            "pairwise acc., reference",
            "#aec7e8",
        ),
        ("heldout_kendall_tau", "tau, new batch", "#d62728"),
        (
            "heldout_pairwise_acc",
            "pairwise acc., new batch",
            "#ff9896",
        ),
    ];
    let points = |key: &str| -> Vec<(f64, f64)> {
        rounds
            .iter()
            .filter_map(|r| Some((r["round"].as_f64()?, r[key].as_f64()?)))
            .collect()
    };
    /// (label, colour, points).
    type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);
    let series: Vec<Series> = SERIES
        .iter()
        .map(|(k, label, colour)| (*label, *colour, points(k)))
        .filter(|s| !s.2.is_empty())
        .collect();
    if series.is_empty() {
        return None;
    }
    let f = Frame::new(760.0, 400.0, (60.0, 200.0, 40.0, 50.0));
    let (ml, mt, pw, ph) = (f.ml, f.mt, f.pw(), f.ph());
    let all = series.iter().flat_map(|s| s.2.iter());
    let (x_lo, x_hi) = all
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    let y_lo = all.map(|p| p.1).fold(0.0f64, f64::min).max(-1.0);
    let (y_lo, y_hi) = (y_lo, 1.0);
    let x_span = (x_hi - x_lo).max(1.0);
    let xs = |x: f64| ml + pw * (x - x_lo) / x_span;
    let ys = |y: f64| mt + ph * (1.0 - (y - y_lo) / (y_hi - y_lo));
    let mut o = f.open("predictor quality per round") + &f.axes(false);
    for t in ticks(y_lo, y_hi) {
        o += &f.y_tick(ys(t), &fmt_tick(t), Side::Left, true);
    }
    for t in ticks(x_lo, x_lo + x_span) {
        if t.fract() == 0.0 {
            o += &f.x_tick(xs(t), &(t as usize).to_string());
        }
    }
    o += &f.titles("round", None);
    for (i, (label, colour, pts)) in series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = pts.iter().map(|&(x, y)| (xs(x), ys(y))).collect();
        o += &dotted_line(&pts, colour);
        o += &f.legend_line(i, 15.0, colour, label);
    }
    o += "</svg>\n";
    Some(o)
}

#[cfg(test)]
mod predictor_plot_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plots_what_the_rounds_hold() {
        assert!(predictor_quality(&[json!({"round": 0, "new": 30})]).is_none());
        let rounds = [
            json!({"round": 1, "reference_kendall_tau": 0.3, "heldout_pairwise_acc": 0.6}),
            json!({"round": 2, "reference_kendall_tau": 0.5, "heldout_pairwise_acc": null}),
        ];
        let svg = predictor_quality(&rounds).unwrap();
        assert!(svg.contains("tau, reference sample"));
        assert!(svg.contains("pairwise acc., new batch"));
        assert!(!svg.contains("tau, new batch"));
        // Two points for the reference tau (a line and two dots), one for the new batch's
        // pairwise accuracy (a dot only).
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 3);
    }
}
