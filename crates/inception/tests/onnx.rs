//! ONNX import: the model-zoo style fixture against onnxruntime's outputs; the full-size zoo
//! layout and a torchvision-export style graph (both written here as ONNX protobufs) against our
//! own architectures; broken graphs as clear errors.

mod common;

use common::{assert_close, fixtures};
use inception::burn::tensor::{Device, Distribution, Tensor, TensorData};
use inception::graph::{GlobalPool, Op};
use inception::models::{Arch, ModelConfig};
use inception::weights::onnx::proto::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};
use inception::weights::{self, ModelSource, StateDict};
use inception::{Network, Value};
use prost::Message;

fn values(v: Value) -> Vec<f32> {
    v.flat().into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn caffe_small_onnx_reproduces_onnxruntime() {
    let dir = fixtures();
    let device = Device::default();
    let loaded = weights::load_file(
        &dir.join("googlenet_caffe_small.onnx"),
        ModelSource::Auto,
        |c| c,
        &device,
    )
    .unwrap();
    assert_eq!(loaded.format, weights::Format::Onnx);
    let names: Vec<&str> = loaded.outputs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["prob_1", "loss3_classifier_1"]);
    let io = weights::read(&dir.join("googlenet_caffe_small_io.safetensors")).unwrap();
    let t = io.get("input").unwrap();
    let x = Tensor::<4>::from_data(TensorData::new(t.data.clone(), [1, 3, 64, 64]), &device);
    let ids: Vec<_> = loaded.outputs.iter().map(|(_, id)| *id).collect();
    let mut out = loaded.network.run(x, &ids).unwrap().into_iter();
    assert_close(
        "prob",
        &values(out.next().unwrap()),
        &io.get("prob").unwrap().data,
        1e-4,
    );
    assert_close(
        "logits",
        &values(out.next().unwrap()),
        &io.get("logits").unwrap().data,
        1e-4,
    );
}

// ---- writing ONNX graphs for the tests -------------------------------------------------------

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.to_vec(),
        r#type: 7,
        ..Default::default()
    }
}
fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: v,
        r#type: 2,
        ..Default::default()
    }
}
fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: v,
        r#type: 1,
        ..Default::default()
    }
}
fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: output.into(),
        attribute,
        ..Default::default()
    }
}
fn init(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: 1,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}
fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            dim_value: d,
                            ..Default::default()
                        })
                        .collect(),
                }),
            }),
        }),
    }
}
fn model(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    input: ValueInfoProto,
    output: &str,
    opset: i64,
) -> Vec<u8> {
    ModelProto {
        ir_version: 7,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(GraphProto {
            name: "test".into(),
            node: nodes,
            initializer: inits,
            input: vec![input],
            output: vec![value_info(output, &[])],
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Writes `net` as an ONNX graph the way an exporter does (one ONNX node per layer, PyTorch
/// layouts), using its layer names for values and weights.
fn to_onnx(net: &Network, opset: i64) -> Vec<u8> {
    let graph = net.graph();
    let sd = weights::state_dict(net);
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let name = |i: usize| graph.nodes()[i].name.clone();
    let w = |n: &str, inits: &mut Vec<TensorProto>, sd: &StateDict| -> String {
        let t = sd.get(n).unwrap();
        inits.push(init(n, &t.shape, &t.data));
        n.to_string()
    };
    let mut input = None;
    for (i, n) in graph.nodes().iter().enumerate() {
        let ins: Vec<String> = n.inputs.iter().map(|&j| name(j)).collect();
        let x: Vec<&str> = ins.iter().map(String::as_str).collect();
        let out = &n.name;
        match &n.op {
            Op::Input { .. } => {
                let [c, h, w] = graph.input_shape();
                input = Some(value_info(out, &[1, c as i64, h as i64, w as i64]));
            }
            Op::Conv2d(c) => {
                let wn = w(&format!("{out}.weight"), &mut inits, &sd);
                let mut args = vec![x[0], wn.as_str()];
                let bn = if c.bias {
                    Some(w(&format!("{out}.bias"), &mut inits, &sd))
                } else {
                    None
                };
                if let Some(b) = &bn {
                    args.push(b);
                }
                let [[t, b], [l, r]] = c.padding;
                nodes.push(node(
                    "Conv",
                    &args,
                    out,
                    vec![
                        ints("kernel_shape", &[c.kernel[0] as i64, c.kernel[1] as i64]),
                        ints("strides", &[c.stride[0] as i64, c.stride[1] as i64]),
                        ints("pads", &[t as i64, l as i64, b as i64, r as i64]),
                    ],
                ));
            }
            Op::BatchNorm(b) => {
                let names: Vec<String> = ["weight", "bias", "running_mean", "running_var"]
                    .iter()
                    .map(|s| w(&format!("{out}.{s}"), &mut inits, &sd))
                    .collect();
                let mut args = vec![x[0]];
                args.extend(names.iter().map(String::as_str));
                nodes.push(node(
                    "BatchNormalization",
                    &args,
                    out,
                    vec![float("epsilon", b.epsilon as f32)],
                ));
            }
            Op::Relu => nodes.push(node("Relu", &x, out, vec![])),
            Op::MaxPool(p) | Op::AvgPool(p) => {
                let op = if matches!(n.op, Op::MaxPool(_)) {
                    "MaxPool"
                } else {
                    "AveragePool"
                };
                let mut attrs = vec![
                    ints("kernel_shape", &[p.kernel[0] as i64, p.kernel[1] as i64]),
                    ints("strides", &[p.stride[0] as i64, p.stride[1] as i64]),
                    ints(
                        "pads",
                        &[
                            p.padding[0][0] as i64,
                            p.padding[1][0] as i64,
                            p.padding[0][1] as i64,
                            p.padding[1][1] as i64,
                        ],
                    ),
                    int("ceil_mode", p.ceil_mode as i64),
                ];
                if op == "AveragePool" {
                    attrs.push(int("count_include_pad", p.count_include_pad as i64));
                }
                nodes.push(node(op, &x, out, attrs));
            }
            Op::GlobalPool(GlobalPool::Avg) => {
                // torch exports adaptive_avg_pool2d(1) + flatten as these two nodes.
                nodes.push(node("GlobalAveragePool", &x, &format!("{out}_4d"), vec![]));
                nodes.push(node(
                    "Flatten",
                    &[&format!("{out}_4d")],
                    out,
                    vec![int("axis", 1)],
                ));
            }
            Op::Lrn(l) => nodes.push(node(
                "LRN",
                &x,
                out,
                vec![
                    int("size", l.size as i64),
                    float("alpha", l.alpha as f32),
                    float("beta", l.beta as f32),
                    float("bias", l.k as f32),
                ],
            )),
            Op::Concat => nodes.push(node("Concat", &x, out, vec![int("axis", 1)])),
            Op::Dropout { .. } => nodes.push(node("Identity", &x, out, vec![])),
            Op::Dense(_) => {
                let wn = w(&format!("{out}.weight"), &mut inits, &sd);
                let bn = w(&format!("{out}.bias"), &mut inits, &sd);
                nodes.push(node("Gemm", &[x[0], &wn, &bn], out, vec![int("transB", 1)]));
            }
            other => panic!("no ONNX writer for {other:?}"),
        }
        let _ = i;
    }
    let main = name(graph.main_output().node);
    model(nodes, inits, input.unwrap(), &main, opset)
}

/// A network with random weights and randomised BatchNorm statistics.
fn random_network(cfg: &ModelConfig) -> Network {
    let device = Device::default();
    let mut net = cfg.init(&device).unwrap();
    let mut sd = weights::state_dict(&net);
    let mut seed = 12345u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    };
    let names: Vec<String> = sd.iter().map(|(n, _)| n.to_string()).collect();
    for n in names {
        let mut t = sd.get(&n).unwrap().clone();
        if n.ends_with("running_var") {
            t.data.iter_mut().for_each(|v| *v = 0.5 + next().abs());
        } else if n.ends_with("running_mean") || n.ends_with(".bias") {
            t.data.iter_mut().for_each(|v| *v = 0.1 * next());
        }
        sd.insert(n, t);
    }
    weights::load_into(&mut net, &sd, &Default::default()).unwrap();
    net
}

fn import_and_compare(cfg: ModelConfig, opset: i64) {
    let net = random_network(&cfg);
    let bytes = to_onnx(&net, opset);
    let onnx = weights::onnx::import(&bytes, None).unwrap();
    assert_eq!(onnx.graph.params(), net.graph().params());
    let mut imported = Network::new(onnx.graph.clone(), &Device::default());
    weights::load_into(&mut imported, &onnx.weights, &Default::default()).unwrap();
    let [c, h, w] = net.graph().input_shape();
    let x = Tensor::<4>::random(
        [1, c, h, w],
        Distribution::Uniform(-1.0, 1.0),
        &Device::default(),
    );
    let want = values(net.infer(x.clone()).unwrap());
    let got = values(imported.infer(x).unwrap());
    assert_close(
        &format!("{} via ONNX opset {opset}", cfg.arch),
        &got,
        &want,
        1e-5,
    );
}

#[test]
fn full_size_zoo_layout_imports_exactly() {
    // bvlc_googlenet as the ONNX model zoo lays it out: conv biases, LRN, ceil-mode pools.
    import_and_compare(ModelConfig::new(Arch::GoogLeNetBvlc), 12);
}

#[test]
fn torchvision_export_layout_imports_exactly() {
    // torchvision's googlenet and inception_v3 as torch.onnx.export writes them in eval mode:
    // BatchNormalization nodes, GlobalAveragePool + Flatten, Gemm with transB.
    import_and_compare(ModelConfig::new(Arch::GoogLeNet).with_input_size(96), 17);
    import_and_compare(ModelConfig::new(Arch::InceptionV3).with_input_size(107), 21);
}

#[test]
fn broken_onnx_graphs_are_clear_errors() {
    let input = value_info("x", &[1, 3, 8, 8]);
    // A cycle: a -> b -> a.
    let cyc = model(
        vec![
            node("Relu", &["b"], "a", vec![]),
            node("Relu", &["a"], "b", vec![]),
        ],
        vec![],
        input.clone(),
        "b",
        13,
    );
    let e = weights::onnx::import(&cyc, None).unwrap_err().to_string();
    assert!(e.contains("cycle"), "{e}");
    // An operator we do not implement.
    let unk = model(
        vec![node("Gelu", &["x"], "y", vec![])],
        vec![],
        input.clone(),
        "y",
        20,
    );
    let e = weights::onnx::import(&unk, None).unwrap_err();
    // The operator's node is the error's place; the reason under it is typed.
    assert!(
        matches!(&e, inception::FormatError::At { place, .. } if place == "node `y` (Gelu)"),
        "{e:?}"
    );
    let e = e.to_string();
    assert!(
        e.contains("unsupported ONNX operator `Gelu`") && e.contains("node `y`"),
        "{e}"
    );
    // An undefined input.
    let undef = model(
        vec![node("Relu", &["nope"], "y", vec![])],
        vec![],
        input.clone(),
        "y",
        13,
    );
    assert!(
        weights::onnx::import(&undef, None)
            .unwrap_err()
            .to_string()
            .contains("`nope`")
    );
    // An opset outside 7–21, and bytes that are not protobuf at all.
    let old = model(
        vec![node("Relu", &["x"], "y", vec![])],
        vec![],
        input,
        "y",
        6,
    );
    assert!(
        weights::onnx::import(&old, None)
            .unwrap_err()
            .to_string()
            .contains("opset 6")
    );
    assert!(weights::onnx::import(b"\x08\xff\xff\xff", None).is_err());
}

#[test]
fn tf2onnx_style_nhwc_input_is_recognised() {
    // The same network, once with an NCHW input and once behind the NHWC → NCHW Transpose that
    // tf2onnx puts first: same graph, same numbers, and the model says it takes NHWC.
    let cfg = ModelConfig::new(Arch::GoogLeNet).with_input_size(64);
    let net = random_network(&cfg);
    let nchw = to_onnx(&net, 13);
    let mut m = ModelProto::decode(nchw.as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    let original = g.input[0].name.clone();
    g.input[0] = value_info("x_nhwc", &[1, 64, 64, 3]);
    g.node.insert(
        0,
        node(
            "Transpose",
            &["x_nhwc"],
            &original,
            vec![ints("perm", &[0, 3, 1, 2])],
        ),
    );
    let nhwc = m.encode_to_vec();
    let a = weights::onnx::import(&nchw, None).unwrap();
    let b = weights::onnx::import(&nhwc, None).unwrap();
    assert!(!a.input_nhwc && b.input_nhwc);
    assert_eq!(b.input, "x_nhwc");
    assert_eq!(a.graph.input_shape(), b.graph.input_shape());
    let x = Tensor::<4>::random(
        [1, 3, 64, 64],
        Distribution::Uniform(-1.0, 1.0),
        &Device::default(),
    );
    let run = |m: &weights::onnx::OnnxModel| {
        let mut n = Network::new(m.graph.clone(), &Device::default());
        weights::load_into(&mut n, &m.weights, &Default::default()).unwrap();
        values(n.infer(x.clone()).unwrap())
    };
    assert_eq!(run(&a), run(&b));
}

#[test]
fn hostile_onnx_shapes_are_refused_before_allocating() {
    // Issue 16: a Conv with pads of 100000 asked for 2.5 TB; a MaxPool with a 10^6 kernel was
    // blamed on the next Conv ("input has 0 channels"). Both are now errors naming the node,
    // found by shape inference before anything is allocated.
    let input = value_info("x", &[1, 3, 224, 224]);
    let w = vec![0.0f32; 64 * 3 * 3 * 3];
    let padded = model(
        vec![node(
            "Conv",
            &["x", "w"],
            "conv",
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("pads", &[100_000, 100_000, 100_000, 100_000]),
            ],
        )],
        vec![init("w", &[64, 3, 3, 3], &w)],
        input.clone(),
        "conv",
        13,
    );
    let e = weights::onnx::import(&padded, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("node `conv`") && e.contains("over the limit"),
        "{e}"
    );
    let pooled = model(
        vec![
            node(
                "MaxPool",
                &["x"],
                "pool",
                vec![ints("kernel_shape", &[1_000_000, 1_000_000])],
            ),
            node(
                "Conv",
                &["pool", "w"],
                "conv",
                vec![ints("kernel_shape", &[3, 3])],
            ),
        ],
        vec![init("w", &[64, 3, 3, 3], &w)],
        input.clone(),
        "conv",
        13,
    );
    let e = weights::onnx::import(&pooled, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("node `pool` (MaxPool)"), "{e}");
    assert!(!e.contains("0 channels"), "{e}");
    // A zero stride is refused, never divided by.
    let zero = model(
        vec![node(
            "MaxPool",
            &["x"],
            "pool",
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[0, 0])],
        )],
        vec![],
        input,
        "pool",
        13,
    );
    let e = weights::onnx::import(&zero, None).unwrap_err().to_string();
    assert!(e.contains("node `pool`") && e.contains("positive"), "{e}");
}

#[test]
fn a_symbolic_input_size_is_taken_from_the_caller() {
    // Issue 16: the size path of `load_file` was dead (always None), so an ONNX model with a
    // symbolic height and width never loaded although the error asked for the size.
    let input = value_info("x", &[1, 3, 0, 0]);
    let bytes = model(
        vec![node("Relu", &["x"], "y", vec![])],
        vec![],
        input,
        "y",
        13,
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("symbolic.onnx");
    std::fs::write(&path, bytes).unwrap();
    let device = Device::default();
    let e = weights::load_file(&path, ModelSource::Auto, |c| c, &device)
        .unwrap_err()
        .to_string();
    assert!(e.contains("symbolic"), "{e}");
    let loaded =
        weights::load_file_sized(&path, ModelSource::Auto, Some(40), |c| c, &device).unwrap();
    assert_eq!(loaded.network.graph().input_shape(), [3, 40, 40]);
}
