//! Architectures against the reference checkpoints in `$INCEPTION_FIXTURES` (default
//! `../shared/fixtures` next to the repository): every tensor name and shape a torchvision state
//! dict holds must be one our graph names, and nothing more. Skipped, with a note, where the
//! fixtures are absent (a user's fresh clone); `.ci/run` always provides them.

use std::collections::BTreeMap;
mod common;

use common::fixtures;

use inception::models::{Arch, ModelConfig};

/// Tensor names and shapes from a safetensors header (8-byte length, then JSON).
fn safetensors_shapes(path: &std::path::Path) -> BTreeMap<String, Vec<usize>> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| {
            let shape = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            (k.clone(), shape)
        })
        .collect()
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn inception_v3_names_and_shapes_match_the_torchvision_state_dict() {
    let dir = fixtures();
    let file = safetensors_shapes(&dir.join("inception_v3_tv_fp16.safetensors"));
    let file: BTreeMap<String, Vec<usize>> = file
        .into_iter()
        .filter(|(k, _)| !k.ends_with("num_batches_tracked"))
        .collect();
    let graph = ModelConfig::new(Arch::InceptionV3)
        .with_aux_logits(true)
        .graph()
        .unwrap();
    let ours: BTreeMap<String, Vec<usize>> = graph.state_dict_shapes().into_iter().collect();
    let missing: Vec<_> = file.keys().filter(|k| !ours.contains_key(*k)).collect();
    let extra: Vec<_> = ours.keys().filter(|k| !file.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    assert_eq!(ours, file);
    // The fixture's parameter count (without running statistics) is ours.
    let params: usize = file
        .iter()
        .filter(|(k, _)| !k.ends_with("running_mean") && !k.ends_with("running_var"))
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    assert_eq!(params, graph.params().trainable);
}
