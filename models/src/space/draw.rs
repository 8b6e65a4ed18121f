//! DOT and SVG writers shared by all spaces.
//!
//! A cell is described generically ([`Cell`]): some input states, then computed nodes, each fed
//! by one or more edges (`from` state, op label), and an output box fed by some states. States
//! are numbered inputs first, then nodes, as in the spaces' hidden-state indices.
//!
//! The SVG layout is a staircase that needs no graph layout engine and never lets text
//! overlap: state `s` owns column `s`; input boxes sit on top; node `n` gets its own row, its
//! box on its own column; every state's output runs down its column (a "bus") as far as its
//! last consumer, or into the output box at the bottom. An edge leaves its source bus (a dot
//! marks the junction) horizontally and enters its node from the left through a box holding
//! the op name; that box lies between the node's column and the one before, where no bus runs.

use std::fmt::Write;

/// One edge into a node.
pub(crate) struct Feed {
    /// Source state.
    pub from: usize,
    /// Op label written on the edge.
    pub op: String,
    /// Drawn dashed and grey (an NB201 `none` edge).
    pub dead: bool,
}

/// A computed node.
pub(crate) struct DrawNode {
    pub label: String,
    pub feeds: Vec<Feed>,
}

/// A cell to draw.
pub(crate) struct Cell {
    pub title: String,
    pub inputs: Vec<String>,
    pub nodes: Vec<DrawNode>,
    pub output: String,
    pub output_from: Vec<usize>,
}

/// `s` with the characters that SVG (XML) markup gives a meaning escaped as entities: `&`,
/// `<`, `>` and `"` (`&quot;`), so it can stand in text and in double-quoted attribute
/// values. The workspace's one escape, used by every SVG writer (the cell drawings here,
/// `nao`'s plots) and the DOT labels; re-exported as [`super::escape_markup`].
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Graphviz DOT: one cluster per cell, left to right, ops as edge labels.
pub(crate) fn dot(name: &str, cells: &[Cell]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph \"{}\" {{", esc(name));
    s.push_str("  rankdir=LR;\n  node [fontname=\"monospace\", fontsize=12];\n");
    s.push_str("  edge [fontname=\"monospace\", fontsize=11];\n");
    for (c, cell) in cells.iter().enumerate() {
        let n_in = cell.inputs.len();
        let _ = writeln!(s, "  subgraph cluster_{c} {{");
        let _ = writeln!(s, "    label=\"{}\";", esc(&cell.title));
        for (i, l) in cell.inputs.iter().enumerate() {
            let _ = writeln!(
                s,
                "    c{c}_s{i} [label=\"{}\", shape=box, style=\"rounded,filled\", fillcolor=\"#cfe2f3\"];",
                esc(l)
            );
        }
        for (n, node) in cell.nodes.iter().enumerate() {
            let id = n_in + n;
            let _ = writeln!(
                s,
                "    c{c}_s{id} [label=\"{}\", shape=circle, style=filled, fillcolor=\"#fff2cc\"];",
                esc(&node.label)
            );
            for f in &node.feeds {
                let style = if f.dead {
                    ", style=dashed, color=grey, fontcolor=grey"
                } else {
                    ""
                };
                let _ = writeln!(
                    s,
                    "    c{c}_s{} -> c{c}_s{id} [label=\"{}\"{style}];",
                    f.from,
                    esc(&f.op)
                );
            }
        }
        let _ = writeln!(
            s,
            "    c{c}_out [label=\"{}\", shape=box, style=filled, fillcolor=\"#d9ead3\"];",
            esc(&cell.output)
        );
        for &o in &cell.output_from {
            let _ = writeln!(s, "    c{c}_s{o} -> c{c}_out;");
        }
        s.push_str("  }\n");
    }
    s.push_str("}\n");
    s
}

const FONT: f64 = 12.0;
/// Width of one monospace character at `FONT` (DejaVu Sans Mono is 0.602 em), with margin.
const CH: f64 = 7.6;
const PAD: f64 = 8.0;
const FEED_H: f64 = 28.0;
const BOX_H: f64 = 20.0;
const ROW_GAP: f64 = 12.0;
const MARGIN: f64 = 12.0;

fn text_w(s: &str) -> f64 {
    s.chars().count() as f64 * CH
}

/// Standalone SVG with the cells stacked top to bottom.
pub(crate) fn svg(cells: &[Cell]) -> String {
    let mut body = String::new();
    let mut width: f64 = 0.0;
    let mut y = 0.0;
    for cell in cells {
        let (w, h) = svg_cell(cell, y, &mut body);
        width = width.max(w);
        y += h;
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"DejaVu Sans Mono, monospace\" font-size=\"{FONT}\">",
        w = width.ceil(),
        h = y.ceil()
    );
    s.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/></marker></defs>\n",
    );
    let _ = writeln!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{:.0}\" height=\"{:.0}\" fill=\"white\"/>",
        width.ceil(),
        y.ceil()
    );
    s.push_str(&body);
    s.push_str("</svg>\n");
    s
}

fn text(out: &mut String, x: f64, y: f64, s: &str, extra: &str) {
    let _ = writeln!(
        out,
        "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\"{extra}>{}</text>",
        y + 0.35 * FONT,
        esc(s)
    );
}

#[allow(clippy::too_many_arguments)]
fn rect(out: &mut String, x: f64, y: f64, w: f64, h: f64, rx: f64, fill: &str, stroke: &str) {
    let _ = writeln!(
        out,
        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"{rx:.1}\" fill=\"{fill}\" stroke=\"{stroke}\"/>"
    );
}

fn line(out: &mut String, x1: f64, y1: f64, x2: f64, y2: f64, extra: &str) {
    let _ = writeln!(
        out,
        "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#333\" stroke-width=\"1.3\"{extra}/>"
    );
}

/// Draws one cell at vertical offset `y0`; returns its (width, height).
fn svg_cell(cell: &Cell, y0: f64, out: &mut String) -> (f64, f64) {
    let n_in = cell.inputs.len();
    let n_states = n_in + cell.nodes.len();
    let op_w = cell
        .nodes
        .iter()
        .flat_map(|n| n.feeds.iter())
        .map(|f| text_w(&f.op))
        .fold(0.0, f64::max)
        + 2.0 * PAD;
    let node_w = cell
        .nodes
        .iter()
        .map(|n| text_w(&n.label))
        .fold(2.0 * CH, f64::max)
        + 2.0 * PAD;
    let in_w: Vec<f64> = cell.inputs.iter().map(|l| text_w(l) + 2.0 * PAD).collect();
    let gap = 14.0; // op box right edge -> node box left edge (the arrow)
    let mut col = op_w + gap + node_w / 2.0 + 14.0;
    for pair in in_w.windows(2) {
        col = col.max((pair[0] + pair[1]) / 2.0 + 12.0);
    }
    let x0 = MARGIN + in_w.first().map_or(0.0, |w| w / 2.0).max(node_w / 2.0);
    let xs: Vec<f64> = (0..n_states).map(|s| x0 + s as f64 * col).collect();

    // Title and input row.
    let title_y = y0 + MARGIN + 8.0;
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN:.1}\" y=\"{:.1}\" font-weight=\"bold\" font-size=\"14\">{}</text>",
        title_y + 5.0,
        esc(&cell.title)
    );
    let in_top = title_y + 16.0;
    let in_h = 24.0;
    let mut start_y = vec![0.0; n_states]; // where each state's bus starts
    let mut right: f64 = 0.0;
    for (i, l) in cell.inputs.iter().enumerate() {
        rect(
            out,
            xs[i] - in_w[i] / 2.0,
            in_top,
            in_w[i],
            in_h,
            4.0,
            "#cfe2f3",
            "#3d6fa6",
        );
        text(out, xs[i], in_top + in_h / 2.0, l, "");
        start_y[i] = in_top + in_h;
        right = right.max(xs[i] + in_w[i] / 2.0);
    }

    // Node rows.
    let mut row_y = in_top + in_h + 18.0;
    let mut consumers: Vec<Vec<f64>> = vec![Vec::new(); n_states]; // feed y's per source
    let mut boxes = String::new(); // drawn after the buses so they sit on top
    for (n, node) in cell.nodes.iter().enumerate() {
        let s = n_in + n;
        let x = xs[s];
        let h = node.feeds.len().max(1) as f64 * FEED_H;
        let node_left = x - node_w / 2.0;
        for (f, feed) in node.feeds.iter().enumerate() {
            let fy = row_y + (f as f64 + 0.5) * FEED_H;
            consumers[feed.from].push(fy);
            let op_right = node_left - gap;
            let op_left = op_right - op_w;
            // bus -> op box, op box -> node (arrow)
            let _ = writeln!(
                boxes,
                "<line x1=\"{:.1}\" y1=\"{fy:.1}\" x2=\"{op_left:.1}\" y2=\"{fy:.1}\" stroke=\"{}\" stroke-width=\"1.3\"{}/>",
                xs[feed.from],
                if feed.dead { "#999" } else { "#333" },
                if feed.dead {
                    " stroke-dasharray=\"4,3\""
                } else {
                    ""
                }
            );
            let _ = writeln!(
                boxes,
                "<line x1=\"{op_right:.1}\" y1=\"{fy:.1}\" x2=\"{node_left:.1}\" y2=\"{fy:.1}\" stroke=\"{}\" stroke-width=\"1.3\" marker-end=\"url(#arrow)\"/>",
                if feed.dead { "#999" } else { "#333" }
            );
            let _ = writeln!(
                boxes,
                "<circle cx=\"{:.1}\" cy=\"{fy:.1}\" r=\"3\" fill=\"{}\"/>",
                xs[feed.from],
                if feed.dead { "#999" } else { "#333" }
            );
            if feed.dead {
                rect(
                    &mut boxes,
                    op_left,
                    fy - BOX_H / 2.0,
                    op_w,
                    BOX_H,
                    3.0,
                    "#f3f3f3",
                    "#999",
                );
                text(
                    &mut boxes,
                    op_left + op_w / 2.0,
                    fy,
                    &feed.op,
                    " fill=\"#888\"",
                );
            } else {
                rect(
                    &mut boxes,
                    op_left,
                    fy - BOX_H / 2.0,
                    op_w,
                    BOX_H,
                    3.0,
                    "#fce5cd",
                    "#b45f06",
                );
                text(&mut boxes, op_left + op_w / 2.0, fy, &feed.op, "");
            }
        }
        rect(
            &mut boxes,
            node_left,
            row_y + 2.0,
            node_w,
            h - 4.0,
            8.0,
            "#fff2cc",
            "#bf9000",
        );
        text(
            &mut boxes,
            x,
            row_y + h / 2.0,
            &node.label,
            " font-weight=\"bold\"",
        );
        start_y[s] = row_y + h - 2.0;
        right = right.max(x + node_w / 2.0);
        row_y += h + ROW_GAP;
    }

    // Output box.
    let out_top = row_y + 10.0;
    let out_h = 26.0;
    let (mut ol, mut or) = (f64::INFINITY, f64::NEG_INFINITY);
    for &o in &cell.output_from {
        ol = ol.min(xs[o] - 24.0);
        or = or.max(xs[o] + 24.0);
    }
    if cell.output_from.is_empty() {
        ol = xs[n_states - 1] - 24.0;
        or = xs[n_states - 1] + 24.0;
    }
    let need = text_w(&cell.output) + 2.0 * PAD;
    if or - ol < need {
        let mid = (ol + or) / 2.0;
        ol = (mid - need / 2.0).max(MARGIN);
        or = ol + need;
    }
    right = right.max(or);

    // Buses.
    for s in 0..n_states {
        let feeds_to_out = cell.output_from.contains(&s);
        let end = if feeds_to_out {
            Some(out_top)
        } else {
            consumers[s].iter().copied().reduce(f64::max)
        };
        if let Some(end) = end {
            let arrow = if feeds_to_out {
                " marker-end=\"url(#arrow)\""
            } else {
                ""
            };
            line(out, xs[s], start_y[s], xs[s], end, arrow);
        }
    }
    out.push_str(&boxes);
    rect(out, ol, out_top, or - ol, out_h, 4.0, "#d9ead3", "#38761d");
    text(
        out,
        (ol + or) / 2.0,
        out_top + out_h / 2.0,
        &cell.output,
        " font-weight=\"bold\"",
    );

    (right + MARGIN, out_top + out_h + MARGIN + 8.0 - y0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }

    #[test]
    fn single_node_cell_draws() {
        let cell = Cell {
            title: "t".into(),
            inputs: vec!["in".into()],
            nodes: vec![DrawNode {
                label: "1".into(),
                feeds: vec![Feed {
                    from: 0,
                    op: "op<x>".into(),
                    dead: false,
                }],
            }],
            output: "out".into(),
            output_from: vec![1],
        };
        let s = svg(&[cell]);
        assert!(s.contains(">op&lt;x&gt;<") && s.contains(">out<"));
    }
}
