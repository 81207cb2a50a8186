//! Keras 2 SavedModel folders (`model.save(dir)` under TensorFlow 2): `keras_metadata.pb` holds
//! the model's config as JSON (the root object's metadata), `variables/` a TensorFlow checkpoint
//! whose object graph names each variable `LAYER/ROLE` (`conv2d_2/kernel`). The config becomes our
//! graph as a `.keras` file's does (Keras 2's spelling normalised first), the variables become
//! Keras weights in the config's layer order.

use std::path::Path;

use prost::Message;
use serde_json::Value as Json;

use super::{KerasClass, KerasLayer, KerasWeights};
use crate::error::{Error, FormatError, Result};

/// `tensorflow.SavedMetadata` (`keras_metadata.pb`).
#[derive(Clone, PartialEq, prost::Message)]
struct SavedMetadata {
    #[prost(message, repeated, tag = "1")]
    nodes: Vec<SavedObject>,
}

/// `tensorflow.SavedObject` of `keras_metadata.pb`.
#[derive(Clone, PartialEq, prost::Message)]
struct SavedObject {
    #[prost(string, tag = "3")]
    node_path: String,
    #[prost(string, tag = "4")]
    identifier: String,
    #[prost(string, tag = "5")]
    metadata: String,
}

/// Whether `path` is a Keras SavedModel folder.
pub fn is_saved_model(path: &Path) -> bool {
    path.is_dir() && path.join("keras_metadata.pb").is_file()
}

/// Keras 2's config spelled as Keras 3's: `{"class_name": "__tuple__", "items": […]}` as the
/// list, and `inbound_nodes` `[[["layer", 0, 0, {}], …]]` as `[{"args": [keras tensors]}]`.
fn normalise(v: Json) -> Json {
    match v {
        Json::Object(mut o) => {
            if o.get("class_name").and_then(Json::as_str) == Some("__tuple__")
                && let Some(items) = o.remove("items")
            {
                return normalise(items);
            }
            if let Some(Json::Array(nodes)) = o.remove("inbound_nodes") {
                let nodes = nodes
                    .into_iter()
                    .map(|node| match node {
                        Json::Array(calls) if calls.iter().all(Json::is_array) => {
                            let args: Vec<Json> = calls
                                .into_iter()
                                .map(|c| {
                                    serde_json::json!({
                                        "class_name": "__keras_tensor__",
                                        "config": {"keras_history": [c[0].clone(), c[1].clone(), c[2].clone()]}
                                    })
                                })
                                .collect();
                            serde_json::json!({ "args": [args], "kwargs": {} })
                        }
                        other => normalise(other),
                    })
                    .collect();
                o.insert("inbound_nodes".into(), Json::Array(nodes));
            }
            Json::Object(o.into_iter().map(|(k, v)| (k, normalise(v))).collect())
        }
        Json::Array(a) => Json::Array(a.into_iter().map(normalise).collect()),
        other => other,
    }
}

/// The model config of a Keras SavedModel folder, in Keras 3's spelling.
pub fn config(dir: &Path) -> Result<Json> {
    let path = dir.join("keras_metadata.pb");
    let bytes = crate::files::read_regular(&path, 256 << 20)?;
    config_from_metadata(&bytes).map_err(|e| Error::Format(e).in_file(&path))
}

/// The model config in `keras_metadata.pb`'s bytes: its root object's metadata, in Keras 3's
/// spelling.
pub fn config_from_metadata(bytes: &[u8]) -> std::result::Result<Json, FormatError> {
    let meta =
        SavedMetadata::decode(bytes).map_err(|e| format!("not Keras SavedModel metadata: {e}"))?;
    let root = meta
        .nodes
        .iter()
        .find(|n| n.node_path == "root")
        .ok_or("no root object")?;
    if !root.identifier.starts_with("_tf_keras_") {
        return Err(FormatError::from(format!(
            "the root object is a `{}`, not a Keras model",
            root.identifier
        )));
    }
    let json: Json = serde_json::from_str(&root.metadata)
        .map_err(|e| format!("the root object's metadata is not JSON: {e}"))?;
    Ok(normalise(json))
}

/// The folder's weights as Keras weights: its variables (named `LAYER/ROLE` by the
/// checkpoint's object graph) grouped by layer, in the config's layer order.
pub fn weights(dir: &Path, config: &Json) -> Result<KerasWeights> {
    let sd = crate::weights::tf::read(dir)?;
    let layers = config["config"]["layers"]
        .as_array()
        .ok_or_else(|| Error::format("the model config has no layers").in_file(dir))?;
    let mut out = Vec::new();
    for layer in layers {
        let name = layer["config"]["name"]
            .as_str()
            .or_else(|| layer["name"].as_str())
            .unwrap_or_default();
        let class = match layer["class_name"].as_str().unwrap_or_default() {
            "Conv2D" => KerasClass::Conv2D,
            "BatchNormalization" => KerasClass::BatchNormalization,
            "Dense" => KerasClass::Dense,
            _ => continue,
        };
        let prefix = format!("{name}/");
        let weights: Vec<_> = sd
            .iter()
            .filter_map(|(n, t)| {
                let role = n.strip_prefix(&prefix)?;
                (!role.contains('/')).then(|| (role.to_string(), t.clone()))
            })
            .collect();
        if weights.is_empty() {
            return Err(Error::Format(FormatError::from(format!(
                "layer `{name}` has no variables in the checkpoint"
            )))
            .in_file(dir));
        }
        out.push(KerasLayer {
            name: name.to_string(),
            class,
            weights,
        });
    }
    Ok(KerasWeights {
        layers: out,
        config: Some(config.clone()),
    })
}
