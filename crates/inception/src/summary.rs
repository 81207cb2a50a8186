//! A Keras-style summary: one row per layer (or per block), output shapes, parameter counts split
//! into trainable and non-trainable, and multiply-accumulates.
//!
//! ```
//! use inception::models::{Arch, ModelConfig};
//! use inception::summary::Summary;
//!
//! let graph = ModelConfig::new(Arch::InceptionV3).graph().unwrap();
//! let s = Summary::of(&graph);
//! assert_eq!(s.total_params, 23_834_568 + 2 * 17_216); // + BN running statistics
//! assert!((s.macs as f64 / 1e9 - 5.71).abs() < 0.01);
//! ```

use serde::Serialize;

use crate::graph::{Graph, NodeId, Op, OutputRole};

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SummaryRow {
    /// Layer (or block) name.
    pub name: String,
    /// Keras-style type name (`Conv2D`, `BatchNormalization`, or the block kind).
    pub layer_type: String,
    /// Output shape with the batch dimension first (`null` for the batch).
    pub output_shape: Vec<Option<usize>>,
    /// Parameters (trainable + non-trainable).
    pub params: usize,
    /// Names of the input layers.
    pub connected_to: Vec<String>,
}

/// The whole summary; serialises to the JSON that `inception summary --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Model name.
    pub model: String,
    /// Input shape `[channels, height, width]`.
    pub input_shape: [usize; 3],
    /// Output names and shapes.
    pub outputs: Vec<(String, Vec<Option<usize>>)>,
    /// Rows.
    pub layers: Vec<SummaryRow>,
    /// Parameters learned by gradient descent (Keras's "Trainable params").
    pub trainable_params: usize,
    /// BatchNorm running statistics (Keras's "Non-trainable params").
    pub non_trainable_params: usize,
    /// Both.
    pub total_params: usize,
    /// Multiply-accumulates per image for inference (main output only, conv and dense layers).
    pub macs: u64,
    /// Layers with parameters on the longest path to the main output.
    pub depth: usize,
}

impl Summary {
    /// The per-layer summary of `graph`.
    pub fn of(graph: &Graph) -> Self {
        let rows = graph
            .nodes
            .iter()
            .map(|n| SummaryRow {
                name: n.name.clone(),
                layer_type: n.op.type_name().to_string(),
                output_shape: n.shape.with_batch(),
                params: n.op.params().total(),
                connected_to: n
                    .inputs
                    .iter()
                    .map(|&i| graph.nodes[i].name.clone())
                    .collect(),
            })
            .collect();
        Self::with_rows(graph, rows)
    }

    /// A condensed summary with one row per block (stem, each inception module, aux heads, head)
    /// and one per layer outside any block.
    pub fn by_block(graph: &Graph) -> Self {
        let mut rows: Vec<SummaryRow> = Vec::new();
        let mut row_of_block: Vec<Option<usize>> = vec![None; graph.blocks.len()];
        let mut row_of_node: Vec<usize> = Vec::with_capacity(graph.nodes.len());
        for n in &graph.nodes {
            let existing = n.block.and_then(|b| row_of_block[b]);
            let r = match existing {
                Some(r) => r,
                None => {
                    let (name, ty) = match n.block {
                        Some(b) => (
                            graph.blocks[b].name.clone(),
                            format!("{:?}", graph.blocks[b].kind),
                        ),
                        None => (n.name.clone(), n.op.type_name().to_string()),
                    };
                    let mut connected: Vec<String> = Vec::new();
                    for &i in &n.inputs {
                        let from = &rows[row_of_node[i]].name;
                        if !connected.contains(from) {
                            connected.push(from.clone());
                        }
                    }
                    rows.push(SummaryRow {
                        name,
                        layer_type: ty,
                        output_shape: vec![],
                        params: 0,
                        connected_to: connected,
                    });
                    if let Some(b) = n.block {
                        row_of_block[b] = Some(rows.len() - 1);
                    }
                    rows.len() - 1
                }
            };
            rows[r].params += n.op.params().total();
            rows[r].output_shape = n.shape.with_batch();
            row_of_node.push(r);
        }
        Self::with_rows(graph, rows)
    }

    fn with_rows(graph: &Graph, layers: Vec<SummaryRow>) -> Self {
        let params = graph.params();
        let main: NodeId = graph.main_output().node;
        Summary {
            model: graph.name.clone(),
            input_shape: graph.input_shape(),
            outputs: graph
                .outputs
                .iter()
                .map(|o| {
                    let name = match o.role {
                        OutputRole::Main => o.name.clone(),
                        OutputRole::Aux => format!("{} (aux)", o.name),
                    };
                    (name, graph.nodes[o.node].shape.with_batch())
                })
                .collect(),
            layers,
            trainable_params: params.trainable,
            non_trainable_params: params.non_trainable,
            total_params: params.total(),
            macs: graph.macs_for(&[main]),
            depth: graph.depth(),
        }
    }

    /// The Keras-style text table.
    pub fn to_table(&self) -> String {
        let headers = ["Layer (type)", "Output Shape", "Param #", "Connected to"];
        let cells: Vec<[String; 4]> = self
            .layers
            .iter()
            .map(|r| {
                [
                    format!("{} ({})", r.name, r.layer_type),
                    shape_text(&r.output_shape),
                    group_digits(r.params as u64),
                    r.connected_to.join(", "),
                ]
            })
            .collect();
        let mut widths = headers.map(str::len);
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        widths[3] = widths[3].min(48);
        let total: usize = widths.iter().sum::<usize>() + 3 * 3;
        let mut out = String::new();
        let [h, w] = [self.input_shape[1], self.input_shape[2]];
        out.push_str(&format!(
            "Model: \"{}\"  (input {} x {} x {})\n",
            self.model, self.input_shape[0], h, w
        ));
        let rule = |c: char| c.to_string().repeat(total) + "\n";
        out.push_str(&rule('━'));
        out.push_str(&line(&headers.map(String::from), &widths));
        out.push_str(&rule('━'));
        for row in &cells {
            out.push_str(&line(row, &widths));
        }
        out.push_str(&rule('─'));
        let mb = |n: usize| n as f64 * 4.0 / (1024.0 * 1024.0);
        out.push_str(&format!(
            " Total params: {} ({:.2} MB)\n",
            group_digits(self.total_params as u64),
            mb(self.total_params)
        ));
        out.push_str(&format!(
            " Trainable params: {} ({:.2} MB)\n",
            group_digits(self.trainable_params as u64),
            mb(self.trainable_params)
        ));
        out.push_str(&format!(
            " Non-trainable params: {} ({:.2} MB)\n",
            group_digits(self.non_trainable_params as u64),
            mb(self.non_trainable_params)
        ));
        out.push_str(&format!(
            " Multiply-accumulates: {:.3} G per image ({} MACs)\n",
            self.macs as f64 / 1e9,
            group_digits(self.macs)
        ));
        out.push_str(&format!(" Depth: {} layers with parameters\n", self.depth));
        for (name, shape) in &self.outputs {
            out.push_str(&format!(" Output {name}: {}\n", shape_text(shape)));
        }
        out
    }
}

fn line(cells: &[String; 4], widths: &[usize; 4]) -> String {
    let mut s = String::from(" ");
    for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
        let c: String = if c.chars().count() > *w {
            c.chars().take(w - 1).collect::<String>() + "…"
        } else {
            c.clone()
        };
        let pad = w - c.chars().count();
        if i == 2 {
            s.push_str(&" ".repeat(pad));
            s.push_str(&c);
        } else {
            s.push_str(&c);
            s.push_str(&" ".repeat(pad));
        }
        s.push_str("   ");
    }
    s.trim_end().to_string() + "\n"
}

/// `(None, 64, 112, 112)`.
pub fn shape_text(shape: &[Option<usize>]) -> String {
    let parts: Vec<String> = shape
        .iter()
        .map(|d| d.map_or("None".to_string(), |v| v.to_string()))
        .collect();
    format!("({})", parts.join(", "))
}

/// `6624904` → `6,624,904`.
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Whether an op is a "layer" worth showing in condensed views (not BN/ReLU/flatten).
pub(crate) fn is_significant(op: &Op) -> bool {
    !matches!(op, Op::BatchNorm(_) | Op::Relu | Op::Flatten { .. })
}
