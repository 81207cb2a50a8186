//! Loading the served models: weights opened as `inception classify` opens them, a feature
//! extractor on the same network, a warm-up batch, and what `GET /v1/model` tells about each.

use inception::Pooling;
use inception::burn::tensor::{Device, Tensor};
use inception::data::Preset;
use inception::predict::{Classifier, FeatureExtractor, LoadOptions};
use serde::Serialize;

use crate::batcher::Model;

/// A model to serve: its name in the routes, and its weights.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    /// The name in `/v1/models/{name}/…`.
    pub name: String,
    /// A weights file or a pretrained name (anything `Classifier::load` opens).
    pub weights: String,
    /// How to open them (architecture, preprocessing, input size).
    pub options: LoadOptions,
}

/// What `GET /v1/model` answers.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    /// The name in the routes.
    pub name: String,
    /// The network (its graph's name: the architecture for a built-in one).
    pub architecture: String,
    /// The weights it was loaded from.
    pub weights: String,
    /// One input: `[channels, height, width]`.
    pub input: [usize; 3],
    /// Classes, when the model has a classifier.
    pub classes: Option<usize>,
    /// Their names, in output order.
    pub labels: Vec<String>,
    /// Length of `/v1/features` vectors.
    pub feature_dim: usize,
    /// Parameters (BatchNorm's moving statistics included).
    pub parameters: usize,
    /// What images go through before the model.
    pub preprocessing: Preset,
}

/// A model ready to run: its worker's model, its description, its diagram.
pub struct Loaded {
    /// For the worker.
    pub model: Model,
    /// For `GET /v1/model`.
    pub info: ModelInfo,
    /// The architecture diagram (SVG), as `inception diagram` draws it.
    pub diagram: String,
    /// The preprocessing the request threads run.
    pub preset: Preset,
}

/// Opens `spec`'s weights and runs one batch through them, so that the first request does not
/// pay for the engine's compilation.
pub fn load(spec: &ModelSpec) -> inception::Result<Loaded> {
    let (classifier, extractor) = match Classifier::load(&spec.weights, &spec.options) {
        Ok(clf) => {
            let fx = FeatureExtractor::new(
                clf.network().clone(),
                clf.preset().clone(),
                None,
                Some(Pooling::Avg),
            )?;
            (Some(clf), fx)
        }
        // Weights without their top: features only.
        Err(inception::Error::Config(c)) if c.setting == "output" => (
            None,
            FeatureExtractor::load(&spec.weights, &spec.options, None, None)?,
        ),
        Err(e) => return Err(e),
    };
    let network = extractor.network();
    let graph = network.graph();
    let input = graph.input_shape();
    let params = network.param_count();
    let preset = extractor.preset().clone();
    let info = ModelInfo {
        name: spec.name.clone(),
        architecture: graph.name().to_string(),
        weights: spec.weights.clone(),
        input,
        classes: classifier.as_ref().map(|c| c.labels().len()),
        labels: classifier
            .as_ref()
            .map(|c| c.labels().names().to_vec())
            .unwrap_or_default(),
        feature_dim: extractor.dim(),
        parameters: params.trainable + params.non_trainable,
        preprocessing: preset.clone(),
    };
    let diagram = inception::diagram::to_svg(graph);
    let warm = || Tensor::<4>::zeros([1, input[0], input[1], input[2]], &Device::default());
    if let Some(clf) = &classifier {
        clf.predict(warm(), 1)?;
    }
    extractor.extract(warm())?;
    Ok(Loaded {
        model: Model {
            classifier,
            extractor,
            input,
        },
        info,
        diagram,
        preset,
    })
}
