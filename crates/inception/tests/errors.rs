//! Errors are typed: a caller can match on what went wrong and read its fields (the layer, the
//! shapes expected and got, the file, the missing tensors) instead of parsing a message.

use inception::burn::tensor::Device;
use inception::graph::{GraphBuilder, Padding, Shape};
use inception::models::{Arch, ModelConfig};
use inception::weights::{self, DType, ModelSource, StateDict, WeightTensor};
use inception::{Error, FormatError, GraphFault, NameKind, ShapeFault, WeightsFault};

#[test]
fn a_shape_error_names_the_layer_and_what_it_expected_and_got() {
    // A dense layer fed a feature map.
    let mut g = GraphBuilder::new("mismatch");
    let x = g.input([3, 8, 8]);
    let y = g.conv2d("a", x, 4, [3, 3], [1, 1], Padding::Same, false);
    let head = g.dense("head", y, 2, true);
    g.output("head", head);
    let Error::Shape(e) = g.finish().unwrap_err() else {
        panic!("not a shape error")
    };
    assert_eq!(e.layer, "head");
    assert_eq!(e.op, "Dense");
    assert_eq!(e.input, vec![Shape::Map([4, 8, 8])]);
    assert_eq!(
        e.fault,
        ShapeFault::NotAVector {
            got: Shape::Map([4, 8, 8])
        }
    );

    // A residual sum of maps with different channel counts.
    let mut g = GraphBuilder::new("residual");
    let x = g.input([3, 8, 8]);
    let y = g.conv2d("a", x, 4, [1, 1], [1, 1], Padding::Valid, false);
    let sum = g.add_nodes("sum", &[x, y]);
    g.output("sum", sum);
    let Error::Shape(e) = g.finish().unwrap_err() else {
        panic!("not a shape error")
    };
    assert_eq!(
        e.fault,
        ShapeFault::Add {
            first: Shape::Map([3, 8, 8]),
            other: Shape::Map([4, 8, 8])
        }
    );

    // A too-small input: the fault carries the smallest size the window fits, and a built-in
    // model adds the smallest input it accepts.
    let cfg = ModelConfig::new(Arch::GoogLeNet).with_input_size(8);
    let Error::Shape(e) = cfg.graph().unwrap_err() else {
        panic!("not a shape error")
    };
    assert!(matches!(e.fault, ShapeFault::TooSmall { .. }), "{e:?}");
    assert_eq!(e.min_input, cfg.min_input_size());
}

#[test]
fn io_errors_carry_the_path_and_format_errors_the_place() {
    let missing = std::path::Path::new("/nonexistent/model.pth");
    match weights::read(missing).unwrap_err() {
        Error::Io { path, reason } => {
            assert_eq!(path, missing);
            assert_eq!(reason, "no such file");
        }
        e => panic!("{e:?}"),
    }

    // A corrupt ONNX file: the file wraps a format error.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.onnx");
    // The ONNX magic a sniffer looks for is the protobuf's first field; garbage after it.
    std::fs::write(&path, b"\x08\x07\x12\x04junk\xff\xff\xff").unwrap();
    let e = weights::load_file(&path, ModelSource::Auto, |c| c, &Device::default()).unwrap_err();
    match &e {
        Error::InFile { path: p, error } => {
            assert_eq!(p, &path);
            assert!(matches!(**error, Error::Format(_)), "{error:?}");
        }
        Error::Io { path: p, .. } => assert_eq!(p, &path),
        e => panic!("{e:?}"),
    }
    assert!(
        e.to_string().starts_with(&path.display().to_string()),
        "{e}"
    );
}

#[test]
fn weights_that_do_not_fit_list_the_tensors_by_kind() {
    // GoogLeNet's weights for 1000 classes, loaded as a 10-class model, with one tensor
    // dropped and one added.
    let device = Device::default();
    let cfg = ModelConfig::new(Arch::GoogLeNet);
    let net = cfg.init(&device).unwrap();
    let mut sd = weights::export(&net, &cfg);
    let mut trimmed = StateDict::new(sd.format);
    for (name, t) in sd.iter() {
        if name != "conv1.conv.weight" {
            trimmed.insert(name.to_string(), t.clone());
        }
    }
    trimmed.insert(
        "stray.weight".into(),
        WeightTensor::new(vec![1], vec![0.0], DType::F32),
    );
    sd = trimmed;
    let ten = ModelConfig::new(Arch::GoogLeNet).with_classes(10);
    let e = weights::load_model(&ten, &sd, &device).unwrap_err();
    let Error::Weights(w) = e else {
        panic!("{e:?}")
    };
    let WeightsFault::Mismatch {
        model,
        missing,
        unexpected,
        mis_shaped,
    } = *w
    else {
        panic!("{w:?}")
    };
    assert!(model.starts_with("googlenet"), "{model}");
    assert_eq!(missing, vec!["conv1.conv.weight".to_string()]);
    assert_eq!(unexpected, vec!["stray.weight".to_string()]);
    assert_eq!(mis_shaped.len(), 2, "{mis_shaped:?}");
    assert!(
        mis_shaped.iter().all(|m| m.contains("fc.")),
        "{mis_shaped:?}"
    );
}

#[test]
fn format_errors_nest_their_place() {
    let e = FormatError::from("bad bias")
        .at("tensor `fc.bias`")
        .at("node `fc` (Gemm)");
    assert_eq!(
        e.to_string(),
        "node `fc` (Gemm): tensor `fc.bias`: bad bias"
    );
    let FormatError::At { place, reason } = e else {
        panic!()
    };
    assert_eq!(place, "node `fc` (Gemm)");
    assert!(matches!(*reason, FormatError::At { .. }));
}

#[test]
fn a_bad_setting_names_the_setting_its_value_and_what_it_must_be() {
    let e = ModelConfig::new(Arch::GoogLeNet)
        .with_dropout(1.5)
        .graph()
        .unwrap_err();
    let Error::Config(c) = &e else {
        panic!("not a configuration error: {e:?}")
    };
    assert_eq!(c.subject.as_deref(), Some("googlenet"));
    assert_eq!(c.setting, "dropout");
    assert_eq!(c.value, "1.5");
    assert!(c.expected.contains("[0, 1)"), "{e}");
    assert_eq!(
        e.to_string(),
        "googlenet: dropout 1.5: it must be in [0, 1)"
    );

    // A combination: aux heads without the top.
    let e = ModelConfig::new(Arch::InceptionV3)
        .with_aux_logits(true)
        .with_include_top(false)
        .check()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config(c) if c.setting == "aux_logits"),
        "{e:?}"
    );

    // A training hyper-parameter.
    let e = inception::train::Decay::parse("step:0:0.5").unwrap_err();
    assert!(
        matches!(&e, Error::Config(c) if c.setting == "schedule"),
        "{e:?}"
    );
}

#[test]
fn an_unknown_name_carries_its_kind_and_the_names_that_exist() {
    let Error::Unknown(u) = Arch::from_name("inception-v9").unwrap_err() else {
        panic!("not an unknown name")
    };
    assert_eq!(u.kind, NameKind::Model);
    assert_eq!(u.name, "inception-v9");
    assert!(u.known.iter().any(|k| k == "inception-v3"), "{u:?}");

    let graph = ModelConfig::new(Arch::GoogLeNet).graph().unwrap();
    let Error::Unknown(u) = graph.resolve("inception9z").unwrap_err() else {
        panic!("not an unknown name")
    };
    assert_eq!(u.kind, NameKind::Layer);
    assert_eq!(u.name, "inception9z");
    assert_eq!(u.within.as_deref(), Some(graph.name()));
}

#[test]
fn a_malformed_graph_says_which_fault() {
    // Two layers with one name.
    let mut g = GraphBuilder::new("twins");
    let x = g.input([3, 8, 8]);
    let a = g.conv2d("a", x, 4, [1, 1], [1, 1], Padding::Valid, false);
    let b = g.conv2d("a", a, 4, [1, 1], [1, 1], Padding::Valid, false);
    g.output("b", b);
    let e = g.finish().unwrap_err();
    assert_eq!(
        e,
        Error::Graph {
            graph: "twins".into(),
            fault: GraphFault::DuplicateName { name: "a".into() }
        }
    );

    // A second input.
    let mut g = GraphBuilder::new("two-inputs");
    g.input([3, 8, 8]);
    g.input([3, 8, 8]);
    assert!(matches!(
        g.finish(),
        Err(Error::Graph {
            fault: GraphFault::SecondInput,
            ..
        })
    ));

    // No input at all.
    let g = GraphBuilder::new("empty");
    assert!(matches!(
        g.finish(),
        Err(Error::Graph {
            fault: GraphFault::NoInput,
            ..
        })
    ));
}
