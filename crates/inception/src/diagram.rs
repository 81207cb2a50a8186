//! Architecture diagrams drawn the way the GoogLeNet paper's Figure 3 draws them: the main path
//! top to bottom, each inception module as parallel branches joined by a concatenation, and the
//! auxiliary classifiers on the side. SVG always; PNG through `resvg`.
//!
//! ```
//! use inception::models::{Arch, ModelConfig};
//!
//! let graph = ModelConfig::new(Arch::GoogLeNet).with_aux_logits(true).graph().unwrap();
//! let svg = inception::diagram::to_svg(&graph);
//! assert!(svg.starts_with("<svg") && svg.contains("inception4a") && svg.contains("aux2"));
//! ```

use std::fmt::Write as _;

use crate::graph::{BlockKind, Graph, NodeId, Op, OutputRole};
use crate::summary::{group_digits, is_significant};

const BOX_W: f64 = 132.0;
const BOX_H: f64 = 24.0;
const GAP_X: f64 = 10.0;
const ROW_GAP: f64 = 16.0;
const MAIN_W: f64 = 220.0;
const TITLE_H: f64 = 34.0;

/// What the diagram draws for one significant node.
struct Item {
    label: String,
    fill: &'static str,
}

fn item(op: &Op) -> Item {
    let conv = "#9ecbff";
    let pool = "#ff9e9e";
    let other = "#b8e6a0";
    let out = "#ffe27a";
    let (label, fill) = match op {
        Op::Input { shape } => (
            format!("input {}x{}x{}", shape[0], shape[1], shape[2]),
            other,
        ),
        Op::Conv2d(c) => {
            let s = if c.stride[0] > 1 {
                format!("/{}", c.stride[0])
            } else {
                String::new()
            };
            (
                format!(
                    "{}x{}{s} {}conv, {}",
                    c.kernel[0],
                    c.kernel[1],
                    if c.groups > 1 { "depthwise " } else { "" },
                    c.filters
                ),
                conv,
            )
        }
        Op::MaxPool(p) => (
            format!("{}x{}/{} max pool", p.kernel[0], p.kernel[1], p.stride[0]),
            pool,
        ),
        Op::AvgPool(p) => (
            format!("{}x{}/{} avg pool", p.kernel[0], p.kernel[1], p.stride[0]),
            pool,
        ),
        Op::AdaptiveAvgPool { size } => (format!("avg pool to {}x{}", size[0], size[1]), pool),
        Op::GlobalPool(crate::graph::GlobalPool::Avg) => ("global avg pool".into(), pool),
        Op::GlobalPool(crate::graph::GlobalPool::Max) => ("global max pool".into(), pool),
        Op::Lrn(_) => ("local resp. norm".into(), other),
        Op::Concat => ("concat".into(), out),
        Op::Add => ("add".into(), out),
        Op::Dense(d) => (format!("fc, {}", d.units), other),
        Op::Dropout { rate } => (format!("dropout {}%", (rate * 100.0).round()), other),
        Op::Softmax => ("softmax".into(), out),
        Op::ChannelAffine { .. } => ("transform_input".into(), other),
        Op::BatchNorm(_) => ("batch norm".into(), other),
        Op::Relu => ("relu".into(), other),
        Op::Flatten { .. } => ("flatten".into(), other),
    };
    Item { label, fill }
}

/// A laid-out box.
struct Placed {
    x: f64,
    y: f64,
    w: f64,
    label: String,
    fill: &'static str,
}

/// SVG output under construction.
struct Canvas {
    body: String,
    width: f64,
    height: f64,
}

impl Canvas {
    fn rect(&mut self, b: &Placed) {
        let _ = writeln!(
            self.body,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{BOX_H}" rx="4" fill="{}" stroke="#333" stroke-width="1"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"##,
            b.x,
            b.y,
            b.w,
            b.fill,
            b.x + b.w / 2.0,
            b.y + BOX_H / 2.0 + 4.0,
            escape(&b.label)
        );
        self.width = self.width.max(b.x + b.w);
        self.height = self.height.max(b.y + BOX_H);
    }

    fn line(&mut self, from: (f64, f64), to: (f64, f64)) {
        let _ = writeln!(
            self.body,
            r##"<path d="M{:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="none" stroke="#555" stroke-width="1.2" marker-end="url(#arrow)"/>"##,
            from.0,
            from.1,
            from.0,
            (from.1 + to.1) / 2.0,
            to.0,
            (from.1 + to.1) / 2.0,
            to.0,
            to.1
        );
    }

    fn segment(&mut self, from: (f64, f64), to: (f64, f64)) {
        let _ = writeln!(
            self.body,
            r##"<path d="M{:.1},{:.1} L{:.1},{:.1}" fill="none" stroke="#555" stroke-width="1.2"/>"##,
            from.0, from.1, to.0, to.1
        );
    }

    fn text(&mut self, x: f64, y: f64, size: f64, anchor: &str, color: &str, s: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{anchor}" fill="{color}">{}</text>"#,
            escape(s)
        );
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The significant node a node's value comes from, looking through BN/ReLU/flatten.
fn source(graph: &Graph, mut id: NodeId) -> NodeId {
    while !is_significant(&graph.nodes[id].op) && !graph.nodes[id].inputs.is_empty() {
        id = graph.nodes[id].inputs[0];
    }
    id
}

/// One drawable step of a path: either a single box or a block of parallel branches.
enum Step {
    Single(NodeId),
    Block {
        block: usize,
        /// Per branch, rows of nodes drawn side by side.
        branches: Vec<Vec<Vec<NodeId>>>,
        /// The nodes outside any branch (the final concat).
        tail: Vec<NodeId>,
    },
}

fn steps(graph: &Graph, nodes: &[NodeId]) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut i = 0;
    while i < nodes.len() {
        let n = &graph.nodes[nodes[i]];
        let multi_branch = n.block.is_some_and(|b| {
            matches!(
                graph.blocks[b].kind,
                BlockKind::Inception | BlockKind::Reduction | BlockKind::Residual
            )
        });
        if !multi_branch {
            if is_significant(&n.op) {
                out.push(Step::Single(nodes[i]));
            }
            i += 1;
            continue;
        }
        let b = n.block.expect("checked");
        let mut j = i;
        let mut branches: Vec<Vec<Vec<NodeId>>> = Vec::new();
        let mut tail = Vec::new();
        while j < nodes.len() && graph.nodes[nodes[j]].block == Some(b) {
            let id = nodes[j];
            let node = &graph.nodes[id];
            j += 1;
            if !is_significant(&node.op) {
                continue;
            }
            match node.branch {
                Some(k) => {
                    if branches.len() <= k {
                        branches.resize(k + 1, Vec::new());
                    }
                    let rows = &mut branches[k];
                    let src = source(graph, node.inputs[0]);
                    // Nodes that read the same value sit side by side (E's 1x3 and 3x1).
                    let same_row = rows.last().is_some_and(|row: &Vec<NodeId>| {
                        let first = row[0];
                        let first_src = source(graph, graph.nodes[first].inputs[0]);
                        first_src == src
                            && node.inputs.len() == 1
                            && graph.nodes[first].inputs.len() == 1
                    });
                    if same_row {
                        rows.last_mut().expect("non-empty").push(id);
                    } else {
                        rows.push(vec![id]);
                    }
                }
                None => tail.push(id),
            }
        }
        out.push(Step::Block {
            block: b,
            branches,
            tail,
        });
        i = j;
    }
    out
}

fn step_width(step: &Step) -> f64 {
    match step {
        Step::Single(_) => MAIN_W,
        Step::Block { branches, .. } => {
            let cols: f64 = branches
                .iter()
                .map(|rows| rows.iter().map(|r| r.len()).max().unwrap_or(1) as f64)
                .sum();
            (cols * (BOX_W + GAP_X) - GAP_X).max(MAIN_W) + 24.0
        }
    }
}

/// Draws `steps` in a column centred at `cx`, starting at `y`, connected from `from` (a point
/// the first box is linked from). Returns the y below the last box, and for each node drawn, the
/// bottom-centre anchor of its box.
fn draw_path(
    c: &mut Canvas,
    graph: &Graph,
    steps: &[Step],
    cx: f64,
    mut y: f64,
    mut from: Option<(f64, f64)>,
    anchors: &mut Vec<(NodeId, (f64, f64))>,
) -> f64 {
    for step in steps {
        match step {
            Step::Single(id) => {
                let it = item(&graph.nodes[*id].op);
                let b = Placed {
                    x: cx - MAIN_W / 2.0,
                    y,
                    w: MAIN_W,
                    label: it.label,
                    fill: it.fill,
                };
                if let Some(p) = from {
                    c.line(p, (cx, y));
                }
                c.rect(&b);
                let shape = graph.nodes[*id].shape;
                c.text(
                    cx + MAIN_W / 2.0 + 6.0,
                    y + BOX_H / 2.0 + 4.0,
                    10.0,
                    "start",
                    "#666",
                    &shape.to_string(),
                );
                let bottom = (cx, y + BOX_H);
                anchors.push((*id, bottom));
                from = Some(bottom);
                y += BOX_H + ROW_GAP;
            }
            Step::Block {
                block,
                branches,
                tail,
            } => {
                let w = step_width(step);
                let x0 = cx - w / 2.0;
                let blk = &graph.blocks[*block];
                let rows = branches.iter().map(Vec::len).max().unwrap_or(0) as f64;
                let h = 22.0 + rows * (BOX_H + ROW_GAP) + BOX_H + 14.0;
                let _ = writeln!(
                    c.body,
                    r##"<rect x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="8" fill="#f6f6f6" stroke="#999" stroke-dasharray="4 3"/>"##
                );
                c.text(x0 + 8.0, y + 14.0, 12.0, "start", "#000", &blk.name);
                c.text(x0 + w + 6.0, y + 14.0, 10.0, "start", "#555", &blk.label);
                c.width = c
                    .width
                    .max(x0 + w + 6.0 + 5.6 * blk.label.chars().count() as f64);
                if let Some(p) = from {
                    c.line(p, (cx, y));
                }
                let top = (cx, y);
                let mut col_x = cx - (w - 24.0) / 2.0;
                let mut last_anchors: Vec<(f64, f64)> = Vec::new();
                for rows_of_branch in branches {
                    let cols = rows_of_branch.iter().map(|r| r.len()).max().unwrap_or(1) as f64;
                    let bw = cols * (BOX_W + GAP_X) - GAP_X;
                    let mut prev: Vec<(f64, f64)> = vec![top];
                    let mut ry = y + 22.0;
                    for row in rows_of_branch {
                        let n = row.len() as f64;
                        let rw = n * (BOX_W + GAP_X) - GAP_X;
                        let mut bx = col_x + (bw - rw) / 2.0;
                        let mut here = Vec::new();
                        for &id in row {
                            let it = item(&graph.nodes[id].op);
                            for p in &prev {
                                c.line(*p, (bx + BOX_W / 2.0, ry));
                            }
                            c.rect(&Placed {
                                x: bx,
                                y: ry,
                                w: BOX_W,
                                label: it.label,
                                fill: it.fill,
                            });
                            let bottom = (bx + BOX_W / 2.0, ry + BOX_H);
                            anchors.push((id, bottom));
                            here.push(bottom);
                            bx += BOX_W + GAP_X;
                        }
                        prev = here;
                        ry += BOX_H + ROW_GAP;
                    }
                    // Short branches run straight down to the level of the longest one, so
                    // their links to the concat do not cross other boxes.
                    let level = y + 22.0 + rows * (BOX_H + ROW_GAP) - ROW_GAP;
                    for p in prev {
                        if p.1 < level {
                            c.segment(p, (p.0, level));
                        }
                        last_anchors.push((p.0, level.max(p.1)));
                    }
                    col_x += bw + GAP_X;
                }
                let ty = y + 22.0 + rows * (BOX_H + ROW_GAP);
                let mut bottom = (cx, ty + BOX_H);
                for &id in tail {
                    let it = item(&graph.nodes[id].op);
                    for p in &last_anchors {
                        c.line(*p, (cx, ty));
                    }
                    c.rect(&Placed {
                        x: cx - BOX_W / 2.0,
                        y: ty,
                        w: BOX_W,
                        label: it.label,
                        fill: it.fill,
                    });
                    anchors.push((id, bottom));
                }
                if let Some(&id) = tail.last() {
                    let shape = graph.nodes[id].shape;
                    c.text(
                        x0 + w + 6.0,
                        ty + BOX_H / 2.0 + 4.0,
                        10.0,
                        "start",
                        "#666",
                        &shape.to_string(),
                    );
                } else {
                    bottom = last_anchors.first().copied().unwrap_or(bottom);
                }
                from = Some(bottom);
                y += h + ROW_GAP;
            }
        }
    }
    y
}

/// The diagram of `graph` as a standalone SVG document.
pub fn to_svg(graph: &Graph) -> String {
    let main = graph.main_output().node;
    let needed_main = graph.needed(&[main]);
    let main_nodes: Vec<NodeId> = (0..graph.nodes.len()).filter(|&i| needed_main[i]).collect();
    let main_steps = steps(graph, &main_nodes);
    let half = main_steps.iter().map(step_width).fold(MAIN_W, f64::max) / 2.0;
    let cx = 20.0 + half;
    let mut c = Canvas {
        body: String::new(),
        width: 0.0,
        height: 0.0,
    };
    let mut anchors = Vec::new();
    let params = graph.params();
    let title = format!(
        "{} — {} parameters, {:.2} G multiply-adds at {}x{}",
        graph.name,
        group_digits(params.trainable as u64),
        graph.macs_for(&[main]) as f64 / 1e9,
        graph.input_shape()[1],
        graph.input_shape()[2]
    );
    c.text(20.0, 22.0, 15.0, "start", "#000", &title);
    let bottom = draw_path(
        &mut c,
        graph,
        &main_steps,
        cx,
        TITLE_H + 10.0,
        None,
        &mut anchors,
    );
    let _ = bottom;

    // Auxiliary heads, each in its own column to the right, level with the node it reads.
    let mut aux_x = c.width + 60.0;
    for out in graph.aux_outputs() {
        let needed = graph.needed(&[out.node]);
        let nodes: Vec<NodeId> = (0..graph.nodes.len())
            .filter(|&i| needed[i] && !needed_main[i])
            .collect();
        let Some(&first) = nodes.first() else {
            continue;
        };
        let src = source(graph, graph.nodes[first].inputs[0]);
        let anchor = anchors
            .iter()
            .find(|(id, _)| *id == src)
            .map(|(_, p)| *p)
            .unwrap_or((cx, TITLE_H));
        let aux_steps = steps(graph, &nodes);
        let ax = aux_x + MAIN_W / 2.0;
        let label_y = anchor.1 + 6.0;
        c.text(
            ax,
            label_y,
            12.0,
            "middle",
            "#a00",
            &format!("{} (auxiliary classifier)", out.name),
        );
        let mut aux_anchors = Vec::new();
        let end = draw_path(
            &mut c,
            graph,
            &aux_steps,
            ax,
            label_y + 10.0,
            None,
            &mut aux_anchors,
        );
        c.line(anchor, (ax - MAIN_W / 2.0, label_y + 10.0 + BOX_H / 2.0));
        c.text(
            ax,
            end + 2.0,
            11.0,
            "middle",
            "#a00",
            "weighted loss in training; dropped for inference",
        );
        aux_x += MAIN_W + 140.0;
    }
    for out in graph.outputs.iter().filter(|o| o.role == OutputRole::Main) {
        if let Some((_, p)) = anchors.iter().find(|(id, _)| *id == out.node) {
            c.text(
                p.0,
                p.1 + 16.0,
                12.0,
                "middle",
                "#000",
                &format!("output: {}", out.name),
            );
            c.height = c.height.max(p.1 + 24.0);
        }
    }
    let legend_y = c.height + 24.0;
    let mut lx = 20.0;
    for (label, fill) in [
        ("convolution (with its BN / ReLU)", "#9ecbff"),
        ("pooling", "#ff9e9e"),
        ("concat / softmax", "#ffe27a"),
        ("other", "#b8e6a0"),
    ] {
        let _ = writeln!(
            c.body,
            r##"<rect x="{lx}" y="{:.1}" width="14" height="14" fill="{fill}" stroke="#333"/>"##,
            legend_y - 11.0
        );
        c.text(lx + 20.0, legend_y, 11.0, "start", "#000", label);
        lx += 40.0 + label.len() as f64 * 6.0;
    }
    let width = (c.width + 120.0).max(lx + 20.0);
    let height = legend_y + 16.0;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>
<rect width="100%" height="100%" fill="white"/>
{}</svg>
"##,
        c.body
    )
}

/// Rasterises an SVG document to PNG bytes at `scale` (1.0 = one pixel per SVG unit), using
/// the system's fonts for the labels.
#[cfg(feature = "png")]
pub fn svg_to_png(svg: &str, scale: f32) -> crate::Result<Vec<u8>> {
    let bad = |why: String| crate::Error::format(crate::FormatError::from(why).at("diagram"));
    let mut opt = resvg::usvg::Options::default();
    opt.fontdb_mut().load_system_fonts();
    let tree =
        resvg::usvg::Tree::from_str(svg, &opt).map_err(|e| bad(format!("invalid SVG: {e}")))?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .ok_or_else(|| bad("too large".into()))?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| bad("too large to rasterise".into()))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| bad(format!("PNG encoding failed: {e}")))
}
