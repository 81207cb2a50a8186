//! The operators: each ONNX node becomes graph layers (and weights under their names).

use super::proto::NodeProto;
use super::tensor::{Const, tensor};
use super::{Importer, Val, attr_f, attr_i, attr_ints, attr_s, padding, pair};
use crate::error::FormatError;
use crate::graph::{NodeId, Op, Pool, Shape};

impl Importer {
    pub(super) fn node(&mut self, node: &NodeProto) -> std::result::Result<Val, FormatError> {
        let op = node.op_type.as_str();
        let name = self.layer_name(node);
        let id = match op {
            "Identity" => return self.val(node, 0),
            "Constant" => return self.import_constant(node),
            "Conv" => self.import_conv(node, &name)?,
            "Relu" => self.g.relu(&name, self.x(node)?),
            "MaxPool" | "AveragePool" => self.import_pool(node, &name, op)?,
            "GlobalAveragePool" => self.g.global_avg_pool(&name, self.x(node)?),
            "GlobalMaxPool" => self.g.global_max_pool(&name, self.x(node)?),
            "LRN" => self.import_lrn(node, &name)?,
            "Concat" => self.import_concat(node, &name)?,
            "BatchNormalization" => self.import_batch_norm(node, &name)?,
            "Gemm" | "MatMul" => self.import_dense(node, &name, op)?,
            "Add" | "Sub" | "Mul" | "Div" => self.import_arithmetic(node, &name, op)?,
            "Flatten" => self.import_flatten_node(node, &name)?,
            "Reshape" => self.import_reshape(node, &name)?,
            "Dropout" => self.import_dropout(node, &name)?,
            "Softmax" => self.import_softmax(node, &name)?,
            "Pad" => return self.import_pad(node),
            "Transpose" => return self.import_transpose(node),
            other => return Err(format!("unsupported ONNX operator `{other}`").into()),
        };
        Ok(Val::Node(id))
    }

    /// Constant.
    fn import_constant(&mut self, node: &NodeProto) -> std::result::Result<Val, FormatError> {
        let a = node.attribute.first().ok_or("a Constant without a value")?;
        let c = match a.name.as_str() {
            "value" => tensor(a.t.as_ref().ok_or("a Constant without a tensor")?)?,
            "value_float" => Const {
                dims: vec![],
                data: vec![a.f],
            },
            "value_floats" => Const {
                dims: vec![a.floats.len()],
                data: a.floats.clone(),
            },
            "value_int" => Const {
                dims: vec![],
                data: vec![a.i as f32],
            },
            "value_ints" => Const {
                dims: vec![a.ints.len()],
                data: a.ints.iter().map(|&v| v as f32).collect(),
            },
            other => return Err(format!("Constant attribute `{other}` is not supported").into()),
        };
        Ok(Val::Const(c))
    }

    /// Conv.
    fn import_conv(
        &mut self,
        node: &NodeProto,
        name: &str,
    ) -> std::result::Result<NodeId, FormatError> {
        let (x, pre) = match self.val(node, 0)? {
            Val::Node(x) => (x, [0; 4]),
            Val::Padded(x, p) => (x, p),
            Val::Const(_) => return Err("its input is a constant".into()),
        };
        let w = self.konst(node, 1)?.ok_or("no weight")?;
        let [o, i, kh, kw]: [usize; 4] = w.dims.clone().try_into().map_err(|_| {
            format!(
                "weight dims {:?}: only 2-D convolutions are supported",
                w.dims
            )
        })?;
        if attr_i(node, "group", 1) != 1 {
            return Err("grouped convolutions are not supported".into());
        }
        if attr_ints(node, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
            return Err("dilated convolutions are not supported".into());
        }
        let stride = pair(attr_ints(node, "strides"), 1)?;
        let padding = padding(node, pre)?;
        let b = self.konst(node, 2)?;
        let id = self
            .g
            .conv2d(name, x, o, [kh, kw], stride, padding, b.is_some());
        let in_c = self.g.shape(x).channels();
        if in_c != i {
            return Err(
                format!("weight expects {i} input channels but the input has {in_c}").into(),
            );
        }
        self.put(name, "weight", w.dims, w.data);
        if let Some(b) = b {
            if b.data.len() != o {
                return Err(format!("bias has {} values for {o} filters", b.data.len()).into());
            }
            self.put(name, "bias", vec![o], b.data);
        }
        Ok(id)
    }

    /// MaxPool / AveragePool.
    fn import_pool(
        &mut self,
        node: &NodeProto,
        name: &str,
        op: &str,
    ) -> std::result::Result<NodeId, FormatError> {
        let x = self.x(node)?;
        if node.output.len() > 1 {
            return Err("MaxPool indices are not supported".into());
        }
        let k = pair(attr_ints(node, "kernel_shape"), 0)?;
        let s = pair(attr_ints(node, "strides"), 1)?;
        if k[0] != k[1] || s[0] != s[1] {
            return Err("only square pooling windows are supported".into());
        }
        if attr_ints(node, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
            return Err("dilated pooling is not supported".into());
        }
        let padding = padding(node, [0; 4])?;
        let ceil = attr_i(node, "ceil_mode", 0) != 0;
        Ok(if op == "MaxPool" {
            self.g.max_pool(
                name,
                x,
                Pool::new(k[0], s[0]).padding(padding).with_ceil_mode(ceil),
            )
        } else {
            let include = attr_i(node, "count_include_pad", 0) != 0;
            self.g.avg_pool(
                name,
                x,
                Pool::new(k[0], s[0])
                    .padding(padding)
                    .with_ceil_mode(ceil)
                    .with_count_include_pad(include),
            )
        })
    }

    /// LRN.
    fn import_lrn(
        &mut self,
        node: &NodeProto,
        name: &str,
    ) -> std::result::Result<NodeId, FormatError> {
        let size = attr_i(node, "size", 0);
        if size <= 0 {
            return Err("LRN needs a positive size".into());
        }
        let x = self.x(node)?;
        Ok(self.g.lrn(
            name,
            x,
            size as usize,
            attr_f(node, "alpha", 1e-4) as f64,
            attr_f(node, "beta", 0.75) as f64,
            attr_f(node, "bias", 1.0) as f64,
        ))
    }

    /// Concat.
    fn import_concat(
        &mut self,
        node: &NodeProto,
        name: &str,
    ) -> std::result::Result<NodeId, FormatError> {
        let axis = attr_i(node, "axis", 1);
        let xs: Vec<NodeId> = (0..node.input.len())
            .map(|i| match self.val(node, i)? {
                Val::Node(id) => Ok(id),
                _ => Err(FormatError::unsupported("Concat of constants", "")),
            })
            .collect::<std::result::Result<_, _>>()?;
        let rank4 = xs.iter().all(|&x| matches!(self.g.shape(x), Shape::Map(_)));
        if !(axis == 1 || (rank4 && axis == -3)) {
            return Err(
                format!("concatenation on axis {axis}; only channels (1) is supported").into(),
            );
        }
        Ok(self.g.concat(name, &xs))
    }

    /// BatchNormalization.
    fn import_batch_norm(
        &mut self,
        node: &NodeProto,
        name: &str,
    ) -> std::result::Result<NodeId, FormatError> {
        let x = self.x(node)?;
        if attr_i(node, "training_mode", 0) != 0 || node.output.len() > 1 {
            return Err("training-mode BatchNormalization is not supported".into());
        }
        let get = |i: usize, what: &str| -> std::result::Result<Const, FormatError> {
            self.konst(node, i)?
                .ok_or_else(|| format!("no {what}").into())
        };
        let (scale, bias, mean, var) = (
            get(1, "scale")?,
            get(2, "B")?,
            get(3, "mean")?,
            get(4, "var")?,
        );
        let eps = attr_f(node, "epsilon", 1e-5) as f64;
        let id = self.g.batch_norm(name, x, eps, true);
        let c = self.g.shape(x).channels();
        for (suffix, t) in [
            ("weight", scale),
            ("bias", bias),
            ("running_mean", mean),
            ("running_var", var),
        ] {
            if t.data.len() != c {
                return Err(
                    format!("{suffix} has {} values for {c} channels", t.data.len()).into(),
                );
            }
            self.put(name, suffix, vec![c], t.data);
        }
        Ok(id)
    }

    /// Gemm / MatMul.
    fn import_dense(
        &mut self,
        node: &NodeProto,
        name: &str,
        op: &str,
    ) -> std::result::Result<NodeId, FormatError> {
        let x = self.x(node)?;
        let w = self
            .konst(node, 1)?
            .ok_or("no weight matrix (B must be an initializer)")?;
        let [r, c]: [usize; 2] = w
            .dims
            .clone()
            .try_into()
            .map_err(|_| "B must be a matrix".to_string())?;
        let (trans_a, trans_b, alpha, beta) = if op == "Gemm" {
            (
                attr_i(node, "transA", 0),
                attr_i(node, "transB", 0),
                attr_f(node, "alpha", 1.0),
                attr_f(node, "beta", 1.0),
            )
        } else {
            (0, 0, 1.0, 1.0)
        };
        if trans_a != 0 {
            return Err("transA is not supported".into());
        }
        // PyTorch layout [out, in]: B as is with transB, else transposed.
        let (units, inputs, weight) = if trans_b != 0 {
            (r, c, w.data.iter().map(|v| v * alpha).collect::<Vec<_>>())
        } else {
            let mut t = vec![0.0; r * c];
            for i in 0..r {
                for o in 0..c {
                    t[o * r + i] = w.data[i * c + o] * alpha;
                }
            }
            (c, r, t)
        };
        let features = self.g.shape(x).numel();
        let x = if matches!(self.g.shape(x), Shape::Map(_)) {
            if features != inputs {
                return Err(format!("expects {inputs} features but gets {features}").into());
            }
            self.g.flatten(&format!("{name}_flatten"), x)
        } else {
            x
        };
        let bias = if op == "Gemm" {
            self.konst(node, 2)?
        } else {
            None
        };
        let id = self.g.dense(name, x, units, bias.is_some());
        self.put(name, "weight", vec![units, inputs], weight);
        if let Some(b) = bias {
            let data: Vec<f32> = match b.data.len() {
                1 => vec![b.data[0] * beta; units],
                n if n == units => b.data.iter().map(|v| v * beta).collect(),
                n => return Err(format!("bias C has {n} values for {units} outputs").into()),
            };
            self.put(name, "bias", vec![units], data);
        }
        Ok(id)
    }

    /// Add / Sub / Mul / Div.
    fn import_arithmetic(
        &mut self,
        node: &NodeProto,
        name: &str,
        op: &str,
    ) -> std::result::Result<NodeId, FormatError> {
        let (a, b) = (self.val(node, 0)?, self.val(node, 1)?);
        Ok(match (a, b) {
            (Val::Node(a), Val::Node(b)) if op == "Add" => self.g.add_nodes(name, &[a, b]),
            (Val::Node(x), Val::Const(c)) => self.affine(name, op, x, &c)?,
            (Val::Const(c), Val::Node(x)) if op == "Add" || op == "Mul" => {
                self.affine(name, op, x, &c)?
            }
            _ => return Err(format!("{op} of these operands is not supported").into()),
        })
    }

    /// Flatten.
    fn import_flatten_node(
        &mut self,
        node: &NodeProto,
        name: &str,
    ) -> std::result::Result<NodeId, FormatError> {
        let x = self.x(node)?;
        if attr_i(node, "axis", 1) != 1 {
            return Err("only Flatten(axis=1) is supported".into());
        }
        Ok(self.flatten(name, x))
    }

    /// Reshape.
    fn import_reshape(
        &mut self,
        node: &NodeProto,
        name: &str,
    ) -> std::result::Result<NodeId, FormatError> {
        let x = self.x(node)?;
        let shape = match self.konst(node, 1) {
            Ok(Some(c)) => c.data.iter().map(|&v| v as i64).collect(),
            _ => attr_ints(node, "shape").ok_or("the target shape must be a constant")?,
        };
        let numel = self.g.shape(x).numel() as i64;
        let flattening = shape.len() == 2
            && (shape[1] == -1 || shape[1] == numel)
            && (shape[0] <= 1 || shape[0] == -1 || shape[0] == 0);
        if !flattening {
            return Err(
                format!("Reshape to {shape:?} is not supported (only [N, -1] flattening)").into(),
            );
        }
        Ok(self.flatten(name, x))
    }

    /// Dropout.
    fn import_dropout(
        &mut self,
        node: &NodeProto,
        name: &str,
    ) -> std::result::Result<NodeId, FormatError> {
        let x = self.x(node)?;
        let ratio = if self.opset >= 12 {
            self.konst(node, 1)?
                .map_or(0.5, |c| c.data.first().copied().unwrap_or(0.5))
        } else {
            attr_f(node, "ratio", 0.5)
        };
        Ok(self.g.dropout(name, x, ratio as f64))
    }

    /// Softmax.
    fn import_softmax(
        &mut self,
        node: &NodeProto,
        name: &str,
    ) -> std::result::Result<NodeId, FormatError> {
        let x = self.x(node)?;
        let default = if self.opset >= 13 { -1 } else { 1 };
        let axis = attr_i(node, "axis", default);
        if !matches!(self.g.shape(x), Shape::Flat(_)) || !(axis == 1 || axis == -1) {
            return Err("only Softmax over the features of a [N, F] tensor is supported".into());
        }
        Ok(self.g.softmax(name, x))
    }

    /// Pad.
    fn import_pad(&mut self, node: &NodeProto) -> std::result::Result<Val, FormatError> {
        let x = self.x(node)?;
        let mode = attr_s(node, "mode").unwrap_or_else(|| "constant".into());
        let (pads, value) = if self.opset >= 11 {
            let p = self.konst(node, 1)?.ok_or("no pads")?;
            let v = self
                .konst(node, 2)?
                .map_or(0.0, |c| c.data.first().copied().unwrap_or(0.0));
            (p.data.iter().map(|&v| v as i64).collect::<Vec<_>>(), v)
        } else {
            (
                attr_ints(node, "pads").ok_or("no pads")?,
                attr_f(node, "value", 0.0),
            )
        };
        if mode != "constant" || value != 0.0 {
            return Err(format!(
                "only zero constant padding is supported (mode {mode}, value {value})"
            )
            .into());
        }
        let ok = pads.len() == 8
            && pads[0] == 0
            && pads[1] == 0
            && pads[4] == 0
            && pads[5] == 0
            && pads.iter().all(|&v| v >= 0);
        if !ok {
            return Err(format!(
                "pads {pads:?}: only spatial padding of an NCHW tensor is supported"
            )
            .into());
        }
        Ok(Val::Padded(
            x,
            [
                pads[2] as usize,
                pads[3] as usize,
                pads[6] as usize,
                pads[7] as usize,
            ],
        ))
    }

    /// Transpose.
    fn import_transpose(&mut self, node: &NodeProto) -> std::result::Result<Val, FormatError> {
        let x = self.x(node)?;
        let perm = attr_ints(node, "perm").unwrap_or_default();
        if perm.iter().enumerate().all(|(i, &p)| p == i as i64) {
            return Ok(Val::Node(x));
        }
        if self.input_nhwc && node.input.first() == Some(&self.input) {
            // The NHWC → NCHW transpose at the input: the caller supplies NCHW.
            return Ok(Val::Node(x));
        }
        Err(format!("Transpose with perm {perm:?} is not supported (NCHW graphs only)").into())
    }

    fn flatten(&mut self, name: &str, x: NodeId) -> NodeId {
        match self.g.shape(x) {
            Shape::Flat(_) => x,
            Shape::Map(_) => self.g.flatten(name, x),
        }
    }

    /// `x (+|-|*|/) c` with a scalar or per-channel constant, as a channel affine map.
    fn affine(
        &mut self,
        name: &str,
        op: &str,
        x: NodeId,
        c: &Const,
    ) -> std::result::Result<NodeId, FormatError> {
        let channels = self.g.shape(x).channels();
        let per_channel =
            c.data.len() == channels && c.dims.iter().filter(|&&d| d != 1).count() <= 1;
        let values: Vec<f32> = match c.data.len() {
            1 => vec![c.data[0]; channels],
            _ if per_channel => c.data.clone(),
            n => {
                return Err(format!(
                    "a constant of {n} values for {channels} channels is not supported"
                )
                .into());
            }
        };
        let (scale, shift): (Vec<f32>, Vec<f32>) = match op {
            "Add" => (vec![1.0; channels], values),
            "Sub" => (vec![1.0; channels], values.iter().map(|v| -v).collect()),
            "Mul" => (values, vec![0.0; channels]),
            _ => (
                values.iter().map(|v| 1.0 / v).collect(),
                vec![0.0; channels],
            ),
        };
        Ok(self.g.add(name, Op::ChannelAffine { scale, shift }, &[x]))
    }
}
