//! A Keras 3 model config (`config.json` of a `.keras` file) built as our [`Graph`], layer by
//! layer, with the Keras layer names.

use std::collections::HashMap;

use serde_json::Value as Json;

use crate::error::{Error, FormatError, Result};
use crate::graph::{Graph, GraphBuilder, NodeId, Op, Padding, Pool};

/// Builds a [`Graph`] from a Keras 3 model config (`config.json` of a `.keras` file): Functional
/// or Sequential models made of InputLayer, Conv2D, MaxPooling2D, AveragePooling2D,
/// Concatenate, Add, BatchNormalization, GlobalAveragePooling2D, GlobalMaxPooling2D, Flatten,
/// Dense, Dropout, Activation, ReLU and Softmax. Layers keep their Keras names; a layer with an
/// `activation` becomes `NAME.conv`/`NAME.dense` plus `NAME.relu`/`NAME.softmax`, so that the
/// name `NAME` (a feature tap) gives the activated output, as in Keras.
pub fn graph_from_config(config: &Json) -> Result<Graph> {
    let in_config = |why: FormatError| Error::format(why.at("Keras model config"));
    let bad = |why: String| in_config(FormatError::from(why));
    let class = config["class_name"].as_str().unwrap_or_default();
    let cfg = &config["config"];
    let name = cfg["name"].as_str().unwrap_or("keras_model");
    let layers = cfg["layers"]
        .as_array()
        .ok_or_else(|| bad("no `layers` list".into()))?;
    let mut g = GraphBuilder::new(name);
    let mut outputs: HashMap<String, NodeId> = HashMap::new();
    let mut last: Option<NodeId> = None;
    let sequential = class == "Sequential";
    if !sequential && class != "Functional" && class != "Model" {
        return Err(bad(format!(
            "a `{class}` model; only Functional and Sequential models can be read"
        )));
    }
    for layer in layers {
        let lclass = layer["class_name"].as_str().unwrap_or_default();
        let lcfg = &layer["config"];
        let lname = layer["name"]
            .as_str()
            .or_else(|| lcfg["name"].as_str())
            .ok_or_else(|| bad(format!("a {lclass} layer without a name")))?
            .to_string();
        let inputs: Vec<NodeId> = if lclass == "InputLayer" {
            Vec::new()
        } else if sequential {
            vec![last.ok_or_else(|| bad("the Sequential model has no InputLayer".into()))?]
        } else {
            inbound(layer, &outputs).map_err(|e| bad(format!("layer `{lname}`: {e}")))?
        };
        let x = inputs.first().copied();
        let need_x = || x.ok_or_else(|| bad(format!("layer `{lname}` has no input")));
        let usize_pair = |key: &str| -> Option<[usize; 2]> {
            match &lcfg[key] {
                Json::Array(v) if v.len() == 2 => {
                    Some([v[0].as_u64()? as usize, v[1].as_u64()? as usize])
                }
                Json::Number(n) => n.as_u64().map(|n| [n as usize; 2]),
                _ => None,
            }
        };
        let padding = || match lcfg["padding"].as_str() {
            Some("same") => Ok(Padding::Same),
            Some("valid") | None => Ok(Padding::Valid),
            Some(p) => Err(bad(format!("layer `{lname}`: padding `{p}`"))),
        };
        let channels_last = || {
            if lcfg["data_format"].as_str().unwrap_or("channels_last") != "channels_last" {
                Err(bad(format!(
                    "layer `{lname}`: only channels_last is supported"
                )))
            } else {
                Ok(())
            }
        };
        let out = match lclass {
            "InputLayer" => {
                let shape = lcfg["batch_shape"]
                    .as_array()
                    .or_else(|| lcfg["batch_input_shape"].as_array())
                    .ok_or_else(|| bad(format!("input `{lname}` has no batch_shape")))?;
                let dims: Option<Vec<usize>> = shape
                    .iter()
                    .skip(1)
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect();
                match dims.as_deref() {
                    Some([h, w, c]) => g.input([*c, *h, *w]),
                    _ => {
                        return Err(bad(format!(
                            "input `{lname}` has shape {shape:?}; an image input [H, W, C] of known size is needed"
                        )));
                    }
                }
            }
            "Conv2D" => {
                channels_last()?;
                if usize_pair("dilation_rate").unwrap_or([1, 1]) != [1, 1]
                    || lcfg["groups"].as_u64().unwrap_or(1) != 1
                {
                    return Err(bad(format!(
                        "layer `{lname}`: dilated or grouped convolutions are not supported"
                    )));
                }
                let filters = lcfg["filters"]
                    .as_u64()
                    .ok_or_else(|| bad(format!("layer `{lname}` has no filters")))?
                    as usize;
                let kernel = usize_pair("kernel_size")
                    .ok_or_else(|| bad(format!("layer `{lname}` has no kernel_size")))?;
                let stride = usize_pair("strides").unwrap_or([1, 1]);
                let bias = lcfg["use_bias"].as_bool().unwrap_or(true);
                let act = lcfg["activation"].as_str().unwrap_or("linear");
                let conv_name = if act == "linear" {
                    lname.clone()
                } else {
                    format!("{lname}.conv")
                };
                let c = g.conv2d(
                    &conv_name,
                    need_x()?,
                    filters,
                    kernel,
                    stride,
                    padding()?,
                    bias,
                );
                activation(&mut g, &lname, act, c).map_err(in_config)?
            }
            "Dense" => {
                let units = lcfg["units"]
                    .as_u64()
                    .ok_or_else(|| bad(format!("layer `{lname}` has no units")))?
                    as usize;
                let bias = lcfg["use_bias"].as_bool().unwrap_or(true);
                let act = lcfg["activation"].as_str().unwrap_or("linear");
                let dense_name = if act == "linear" {
                    lname.clone()
                } else {
                    format!("{lname}.dense")
                };
                let d = g.dense(&dense_name, need_x()?, units, bias);
                activation(&mut g, &lname, act, d).map_err(in_config)?
            }
            "MaxPooling2D" | "AveragePooling2D" => {
                channels_last()?;
                let pool = usize_pair("pool_size").unwrap_or([2, 2]);
                let stride = usize_pair("strides").unwrap_or(pool);
                if pool[0] != pool[1] || stride[0] != stride[1] {
                    return Err(bad(format!(
                        "layer `{lname}`: only square pools are supported"
                    )));
                }
                if lclass == "MaxPooling2D" {
                    g.max_pool(
                        &lname,
                        need_x()?,
                        Pool::new(pool[0], stride[0]).padding(padding()?),
                    )
                } else {
                    // Keras averages over the valid pixels only.
                    g.avg_pool(
                        &lname,
                        need_x()?,
                        Pool::new(pool[0], stride[0]).padding(padding()?),
                    )
                }
            }
            "Concatenate" => {
                let axis = lcfg["axis"].as_i64().unwrap_or(-1);
                if axis != -1 && axis != 3 {
                    return Err(bad(format!(
                        "layer `{lname}`: concatenation on axis {axis}; only channels (-1) is supported"
                    )));
                }
                g.concat(&lname, &inputs)
            }
            "Add" => g.add_nodes(&lname, &inputs),
            "BatchNormalization" => {
                let axis = lcfg["axis"]
                    .as_i64()
                    .or_else(|| lcfg["axis"][0].as_i64())
                    .unwrap_or(-1);
                if axis != -1 && axis != 3 && axis != 1 {
                    return Err(bad(format!(
                        "layer `{lname}`: normalisation on axis {axis}"
                    )));
                }
                let eps = lcfg["epsilon"].as_f64().unwrap_or(1e-3);
                let scale = lcfg["scale"].as_bool().unwrap_or(true);
                g.batch_norm(&lname, need_x()?, eps, scale)
            }
            "GlobalAveragePooling2D" => g.global_avg_pool(&lname, need_x()?),
            "GlobalMaxPooling2D" => g.global_max_pool(&lname, need_x()?),
            "Flatten" => g.add(
                &lname,
                Op::Flatten {
                    channels_last: true,
                },
                &[need_x()?],
            ),
            "Dropout" => g.dropout(&lname, need_x()?, lcfg["rate"].as_f64().unwrap_or(0.5)),
            "Activation" => {
                let act = lcfg["activation"].as_str().unwrap_or("linear");
                match act {
                    "relu" => g.relu(&lname, need_x()?),
                    "softmax" => g.softmax(&lname, need_x()?),
                    "linear" => need_x()?,
                    other => return Err(bad(format!("layer `{lname}`: activation `{other}`"))),
                }
            }
            "ReLU" => g.relu(&lname, need_x()?),
            "Softmax" => g.softmax(&lname, need_x()?),
            other => {
                return Err(bad(format!(
                    "layer `{lname}` is a {other}, which this importer does not support"
                )));
            }
        };
        outputs.insert(lname, out);
        last = Some(out);
    }
    let out = if sequential {
        last
    } else {
        let spec = &cfg["output_layers"];
        let first = spec.get(0).filter(|v| v.is_array()).unwrap_or(spec);
        first[0].as_str().and_then(|n| outputs.get(n).copied())
    }
    .ok_or_else(|| bad("the model's output layer is missing".into()))?;
    g.output("output", out);
    g.finish()
}

fn activation(
    g: &mut GraphBuilder,
    name: &str,
    act: &str,
    x: NodeId,
) -> std::result::Result<NodeId, FormatError> {
    Ok(match act {
        "linear" => x,
        "relu" => g.relu(&format!("{name}.relu"), x),
        "softmax" => g.softmax(&format!("{name}.softmax"), x),
        other => {
            return Err(format!("layer `{name}`: activation `{other}` is not supported").into());
        }
    })
}

/// The inputs of a Functional layer: the `keras_history` of each tensor in `inbound_nodes[0]`.
fn inbound(
    layer: &Json,
    outputs: &HashMap<String, NodeId>,
) -> std::result::Result<Vec<NodeId>, FormatError> {
    let nodes = layer["inbound_nodes"]
        .as_array()
        .ok_or("no inbound_nodes")?;
    if nodes.len() != 1 {
        return Err(format!(
            "called {} times; shared layers are not supported",
            nodes.len()
        )
        .into());
    }
    let mut found = Vec::new();
    collect(&nodes[0]["args"], outputs, &mut found)?;
    if found.is_empty() {
        return Err("no input tensors".into());
    }
    Ok(found)
}

fn collect(
    v: &Json,
    outputs: &HashMap<String, NodeId>,
    found: &mut Vec<NodeId>,
) -> std::result::Result<(), FormatError> {
    match v {
        Json::Array(items) => {
            for item in items {
                collect(item, outputs, found)?;
            }
        }
        Json::Object(o)
            if o.get("class_name").and_then(Json::as_str) == Some("__keras_tensor__") =>
        {
            let src = o["config"]["keras_history"][0]
                .as_str()
                .ok_or("a tensor without keras_history")?;
            let id = outputs
                .get(src)
                .ok_or_else(|| format!("input `{src}` is not defined before it is used"))?;
            found.push(*id);
        }
        _ => {}
    }
    Ok(())
}
