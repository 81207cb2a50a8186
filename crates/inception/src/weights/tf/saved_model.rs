//! TF2 SavedModel folders (`saved_model.pb` + `variables/`), as TF-Hub publishes them: the
//! checkpoint in `variables/` keys its values by object path (`variables/0/.ATTRIBUTES/…`); the
//! variables' own names (`InceptionV3/Conv2d_1a_3x3/weights`) and whether they are trained live
//! in the SavedModel's object graph. The two graphs are joined as TensorFlow's loader restores a
//! SavedModel: both walked from the root object, child by child, by the children's local names.

use std::collections::{HashMap, HashSet};

use prost::Message;

use super::proto::{SavedModel, SavedObjectGraph, SavedVariable, TrackableObjectGraph};
use crate::error::FormatError;

/// A variable a SavedModel declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedVariableInfo {
    /// Its own name, without TensorFlow's `:0`.
    pub name: String,
    /// Whether training updates it (false for BatchNorm's moving statistics).
    pub trainable: bool,
}

/// The object graph of a `saved_model.pb`; `None` for TensorFlow 1's format (a TF1 SavedModel,
/// or a TF1 Hub module beside its `tfhub_module.pb`), whose checkpoint keys its variables by
/// their own names.
pub(crate) fn object_graph_if_any(
    saved_model_pb: &[u8],
) -> Result<Option<SavedObjectGraph>, FormatError> {
    let model = SavedModel::decode(saved_model_pb)
        .map_err(|e| FormatError::from(format!("not a SavedModel (saved_model.pb): {e}")))?;
    Ok(model
        .meta_graphs
        .into_iter()
        .find_map(|g| g.object_graph_def))
}

/// The object graph of a `saved_model.pb` (an error for TensorFlow 1's format, which has none).
pub(crate) fn object_graph(saved_model_pb: &[u8]) -> Result<SavedObjectGraph, FormatError> {
    object_graph_if_any(saved_model_pb)?.ok_or_else(|| {
        FormatError::unsupported(
            "a SavedModel without an object graph (TensorFlow 1's format)",
            "TensorFlow 2 SavedModels; TF-Hub's TF2 downloads",
        )
    })
}

/// Every variable of a `saved_model.pb`, in the object graph's order.
pub fn saved_variables(saved_model_pb: &[u8]) -> Result<Vec<SavedVariableInfo>, FormatError> {
    Ok(object_graph(saved_model_pb)?
        .nodes
        .iter()
        .filter_map(|n| n.variable.as_ref())
        .map(info)
        .collect())
}

fn info(v: &SavedVariable) -> SavedVariableInfo {
    SavedVariableInfo {
        name: v.name.strip_suffix(":0").unwrap_or(&v.name).to_string(),
        trainable: v.trainable,
    }
}

/// For each node of the checkpoint's object graph that is a variable of the SavedModel: the
/// node's index and the variable. Objects reached twice (shared, or a cycle) are visited once.
pub(crate) fn join(
    checkpoint: &TrackableObjectGraph,
    saved: &SavedObjectGraph,
) -> HashMap<usize, SavedVariableInfo> {
    let mut out = HashMap::new();
    let mut seen = HashSet::new();
    let mut stack = vec![(0usize, 0usize)];
    while let Some((c, s)) = stack.pop() {
        if !seen.insert(c) {
            continue;
        }
        let (Some(cn), Some(sn)) = (checkpoint.nodes.get(c), saved.nodes.get(s)) else {
            continue;
        };
        if let Some(v) = &sn.variable {
            out.insert(c, info(v));
        }
        let by_name: HashMap<&str, i32> = sn
            .children
            .iter()
            .map(|r| (r.local_name.as_str(), r.node_id))
            .collect();
        for child in &cn.children {
            if let (Ok(a), Some(Ok(b))) = (
                usize::try_from(child.node_id),
                by_name
                    .get(child.local_name.as_str())
                    .map(|&b| usize::try_from(b)),
            ) {
                stack.push((a, b));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::tf::proto::{ObjectReference, SavedObject, TrackableObject};

    fn child(name: &str, id: i32) -> ObjectReference {
        ObjectReference {
            node_id: id,
            local_name: name.into(),
        }
    }

    #[test]
    fn the_graphs_are_joined_by_path_not_by_node_number() {
        // Checkpoint: root → {a: 1, b: 2}, 2 → {back: 0} (a cycle). SavedModel: the same
        // objects numbered differently: root → {b: 1, a: 2}.
        let checkpoint = TrackableObjectGraph {
            nodes: vec![
                TrackableObject {
                    children: vec![child("a", 1), child("b", 2)],
                    attributes: vec![],
                },
                TrackableObject::default(),
                TrackableObject {
                    children: vec![child("back", 0)],
                    attributes: vec![],
                },
            ],
        };
        let var = |name: &str, trainable| SavedObject {
            children: vec![],
            variable: Some(SavedVariable {
                trainable,
                name: format!("{name}:0"),
            }),
        };
        let saved = SavedObjectGraph {
            nodes: vec![
                SavedObject {
                    children: vec![child("b", 1), child("a", 2)],
                    variable: None,
                },
                var("net/moving_mean", false),
                var("net/weights", true),
            ],
        };
        let joined = join(&checkpoint, &saved);
        assert_eq!(joined.len(), 2);
        assert_eq!(joined[&1].name, "net/weights");
        assert!(joined[&1].trainable);
        assert_eq!(joined[&2].name, "net/moving_mean");
        assert!(!joined[&2].trainable);
    }
}
