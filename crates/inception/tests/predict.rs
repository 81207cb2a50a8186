//! Classification and feature extraction through the library: the loader, the class names and
//! preprocessing a checkpoint carries, the frozen feature extractor, and the parallel batches.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_close, fixtures};
use inception::burn::tensor::Device;
use inception::data::{Labels, Preset, collect_images, decode_file, image_batches};
use inception::graph::Op;
use inception::models::{Arch, ModelConfig};
use inception::predict::{Classifier, FeatureExtractor, LoadOptions};
use inception::{Network, Pooling, pretrained, weights};

fn images_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/images")
}

#[test]
fn classifier_uses_the_checkpoints_class_names_and_preprocessing() {
    let tmp = tempfile::tempdir().unwrap();
    let stored = Preset::KerasInception {
        size: 64,
        filter: inception::data::Filter::Bilinear,
    };
    let file = common::pets_model(tmp.path(), &stored);

    let clf = Classifier::load(file.to_str().unwrap(), &LoadOptions::default()).unwrap();
    assert_eq!(clf.labels().names(), ["cat", "dog", "bird"]);
    assert_eq!(clf.preset(), &stored);
    let photo = decode_file(&images_dir().join("chelsea.png")).unwrap();
    let top = &clf.classify(&[photo], 5)[0];
    // Top-k of 3 classes: all of them, most probable first, probabilities summing to one.
    assert_eq!(top.len(), 3);
    assert!(top.windows(2).all(|w| w[0].probability >= w[1].probability));
    let sum: f32 = top.iter().map(|p| p.probability).sum();
    assert!((sum - 1.0).abs() < 1e-5, "{sum}");
    let mut names: Vec<&str> = top.iter().map(|p| p.label.as_str()).collect();
    names.sort();
    assert_eq!(names, ["bird", "cat", "dog"]);

    // An explicit preset wins over the stored one, at the model's size.
    let opts = LoadOptions {
        preset: Some(Preset::torchvision(224)),
        ..Default::default()
    };
    let clf = Classifier::load(file.to_str().unwrap(), &opts).unwrap();
    assert_eq!(clf.preset(), &Preset::torchvision(64));
}

#[test]
fn a_model_without_its_top_is_not_a_classifier() {
    let cfg = ModelConfig::new(Arch::GoogLeNet)
        .with_include_top(false)
        .with_input_size(64);
    let net = Network::new(cfg.graph().unwrap(), &Device::default());
    let e = Classifier::new(net, Preset::torchvision(64), Labels::imagenet())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not class scores") && e.contains("features"),
        "{e}"
    );
    let net = Network::new(
        ModelConfig::new(Arch::GoogLeNet)
            .with_input_size(64)
            .graph()
            .unwrap(),
        &Device::default(),
    );
    let e = Classifier::new(net, Preset::torchvision(64), Labels::numbered(10)).unwrap_err();
    let inception::Error::Config(c) = &e else {
        panic!("{e:?}")
    };
    assert_eq!((c.setting, c.value.as_str()), ("labels", "10"));
    assert!(e.to_string().contains("has 1000 classes"), "{e}");
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn feature_extractor_is_the_backbone_without_its_top() {
    let dir = fixtures();
    let photos: Vec<_> = ["chelsea.png", "rocket.jpg"]
        .iter()
        .map(|f| decode_file(&images_dir().join(f)).unwrap())
        .collect();
    let file = dir.join("inception_v3_tv_fp16.safetensors");
    let fx = FeatureExtractor::load(file.to_str().unwrap(), &LoadOptions::default(), None, None)
        .unwrap();
    assert_eq!(fx.dim(), 2048);
    assert_eq!(fx.layer(), "Mixed_7c");
    assert_eq!(fx.preset(), &Preset::torchvision(299));
    // include_top=false: the classifier is not even built.
    let graph = fx.network().graph();
    assert!(!graph.nodes().iter().any(|n| matches!(n.op, Op::Dense(_))));
    let v = fx.extract_images(&photos);
    assert_eq!(v.dims(), [2, 2048]);
    // The same numbers as the full network's `avgpool` on the same preprocessed batch.
    let full = weights::load_file(
        &file,
        weights::ModelSource::Auto,
        |c| c.with_aux_logits(false),
        &Device::default(),
    )
    .unwrap();
    let x = Preset::torchvision(299).batch(&photos, &Device::default());
    let want = full
        .network
        .features(x, &["avgpool"])
        .unwrap()
        .remove(0)
        .flat();
    assert_close(
        "features vs avgpool",
        &v.into_data().try_to_vec::<f32>().unwrap(),
        &want.into_data().try_to_vec::<f32>().unwrap(),
        1e-5,
    );
    // Max pooling of a named block.
    let fx = FeatureExtractor::load(
        file.to_str().unwrap(),
        &LoadOptions::default(),
        Some("Mixed_6e"),
        Some(Pooling::Max),
    )
    .unwrap();
    assert_eq!((fx.dim(), fx.layer()), (768, "Mixed_6e"));
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn keras_features_flatten_in_keras_order() {
    let dir = fixtures();
    let file = dir.join("keras_inception_v3.h5");
    let photo = decode_file(&images_dir().join("rocket.jpg")).unwrap();
    let fx = FeatureExtractor::load(
        file.to_str().unwrap(),
        &LoadOptions::default(),
        Some("mixed5"),
        None,
    )
    .unwrap();
    assert_eq!(fx.preset(), &Preset::keras());
    assert_eq!(fx.dim(), 17 * 17 * 768);
    let v = fx
        .extract_images(std::slice::from_ref(&photo))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let map = fx
        .network()
        .features(
            Preset::keras().batch(&[photo], &Device::default()),
            &["mixed5"],
        )
        .unwrap()
        .remove(0)
        .map()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    // Element (h, w, c) of Keras's NHWC output is element (c, h, w) of ours.
    let (h, w, c) = (3, 11, 700);
    assert_eq!(v[(h * 17 + w) * 768 + c], map[(c * 17 + h) * 17 + w]);
}

#[test]
fn published_file_names_are_recognised() {
    let e = pretrained::recognise(Path::new("/hub/checkpoints/googlenet-1378be20.pth")).unwrap();
    assert_eq!(e.name, "googlenet.torchvision");
    assert!(e.transform_input);
    let e = pretrained::recognise(Path::new(
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ))
    .unwrap();
    assert!(!e.include_top);
    assert!(pretrained::recognise(Path::new("my_googlenet.pth")).is_none());
}

#[test]
fn folders_are_walked_recursively_for_images_only() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("b/nested")).unwrap();
    for f in [
        "b/nested/z.JPG",
        "b/a.png",
        "a.webp",
        "notes.txt",
        "b/readme.md",
    ] {
        std::fs::write(root.join(f), b"x").unwrap();
    }
    let explicit = root.join("notes.txt");
    let missing = root.join("missing.jpg");
    let (files, failed) = collect_images(&[root.to_path_buf(), explicit.clone(), missing.clone()]);
    let rel: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
        .collect();
    // Sorted walk, image extensions only (any case); an explicit file is always tried.
    assert_eq!(rel, ["a.webp", "b/a.png", "b/nested/z.JPG", "notes.txt"]);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, missing);
}

#[test]
fn batches_keep_input_order_and_skip_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.jpg");
    std::fs::write(&bad, b"GIF89a but not really").unwrap();
    let empty = tmp.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let dir = images_dir();
    let paths = vec![
        dir.join("chelsea.png"),
        bad.clone(),
        dir.join("rocket.jpg"),
        empty.clone(),
        dir.join("camera.png"),
    ];
    let preset = Preset::torchvision(64);
    let batches: Vec<_> = image_batches(paths.clone(), preset.clone(), 2).collect();
    assert_eq!(batches.len(), 3);
    let good: Vec<PathBuf> = batches.iter().flat_map(|b| b.paths.clone()).collect();
    assert_eq!(good, [paths[0].clone(), paths[2].clone(), paths[4].clone()]);
    let failed: Vec<&PathBuf> = batches
        .iter()
        .flat_map(|b| b.failed.iter().map(|f| &f.0))
        .collect();
    assert_eq!(failed, [&bad, &empty]);
    assert!(batches[1].failed[0].1.contains("empty"));
    // Each batch holds exactly the preprocessed images.
    let b = &batches[0];
    let want = preset.apply(&decode_file(&paths[0]).unwrap());
    assert_eq!(b.data.len(), 3 * 64 * 64);
    assert_eq!(b.data, want);
    assert_eq!(b.tensor(&Device::default()).dims(), [1, 3, 64, 64]);
}
