//! Inputs a careless user or an attacker gives: each is a one-line error (or a refusal before
//! anything large is allocated), never a panic, an abort or a silently wrong result. One test
//! per defect of issue 16 that the library owns.

mod common;

use std::path::Path;

use inception::burn::tensor::Device;
use inception::data::{Preset, decode_bytes, decode_file};
use inception::files;
use inception::models::{Arch, ModelConfig};
use inception::predict::{Classifier, LoadOptions};
use inception::train::{
    Decay, ImageSet, OptimizerKind, Recipe, TrainConfig, Trainer, load_checkpoint, save_checkpoint,
    save_model,
};
use inception::weights::{self, keras};

#[test]
fn images_claiming_huge_sizes_are_refused_from_their_headers() {
    // PNG 100000x100000, GIF screen 65535x65535, JPEG SOF 65500x65500, TIFF 2^31 wide: each
    // aborted the process allocating 12–30 GB.
    let e = decode_bytes(&common::png_header(100_000, 100_000))
        .unwrap_err()
        .to_string();
    assert!(e.contains("limit"), "png: {e}");
    // A real-looking 20000x20000 header too (400 megapixels, over Pillow's limit).
    let e = decode_bytes(&common::png_header(20_000, 20_000)).unwrap_err();
    assert!(
        matches!(
            e,
            inception::FormatError::TooLarge {
                got: 400_000_000,
                limit: 89_478_485,
                ..
            }
        ),
        "png 20000: {e:?}"
    );

    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&65535u16.to_le_bytes());
    gif.extend_from_slice(&65535u16.to_le_bytes());
    gif.extend_from_slice(&[0x00, 0x00, 0x00]);
    gif.extend_from_slice(b",\x00\x00\x00\x00\xff\xff\xff\xff\x00\x02\x02\x44\x01\x00;");
    assert!(decode_bytes(&gif).is_err());

    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08];
    jpeg.extend_from_slice(&65500u16.to_be_bytes());
    jpeg.extend_from_slice(&65500u16.to_be_bytes());
    jpeg.extend_from_slice(&[3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]);
    jpeg.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 0x3F, 0, 0xFF, 0xD9]);
    assert!(decode_bytes(&jpeg).is_err());

    let mut tiff = b"II*\x00\x08\x00\x00\x00".to_vec();
    let entries: [(u16, u16, u32, u32); 6] = [
        (256, 4, 1, 1 << 31), // width
        (257, 4, 1, 1),       // height
        (258, 3, 1, 8),       // bits per sample
        (262, 3, 1, 1),       // photometric
        (273, 4, 1, 0),       // strip offsets
        (279, 4, 1, 0),       // strip byte counts
    ];
    tiff.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, count, value) in entries {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&kind.to_le_bytes());
        tiff.extend_from_slice(&count.to_le_bytes());
        tiff.extend_from_slice(&value.to_le_bytes());
    }
    tiff.extend_from_slice(&[0, 0, 0, 0]);
    assert!(decode_bytes(&tiff).is_err());

    // A stream is refused before it is read.
    if Path::new("/dev/zero").exists() {
        let e = decode_file(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = files::read_array(Path::new("/dev/zero"), None).unwrap_err();
        assert!(e.to_string().contains("unknown array format"), "{e}");
    }
}

#[test]
fn streams_and_devices_are_neither_read_nor_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    // A .npy "file" that is a device: refused before reading.
    #[cfg(unix)]
    {
        let link = tmp.path().join("zero.npy");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let e = files::read_array(&link, None).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // Writing onto a symbolic link replaced the link; onto a device, the device.
        let e = files::write_atomic(&link, b"x").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let fifo = tmp.path().join("pipe.npy");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        if made {
            let e = files::write_atomic(&fifo, b"x").unwrap_err().to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
    }
    // (Checked, never written: the test runs as root on CI.)
    if Path::new("/dev/null").exists() {
        let e = files::check_output_target(Path::new("/dev/null"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
    let e = files::write_atomic(tmp.path(), b"x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("folder") || e.contains("not a file name"), "{e}");
}

#[test]
fn hostile_keras_configs_are_errors() {
    let input = |shape: serde_json::Value| {
        serde_json::json!({
            "class_name": "Functional",
            "config": {
                "name": "m",
                "layers": [
                    {"class_name": "InputLayer", "name": "in",
                     "config": {"name": "in", "batch_shape": shape},
                     "inbound_nodes": []},
                    {"class_name": "Conv2D", "name": "c",
                     "config": {"name": "c", "filters": 4, "kernel_size": [3, 3],
                                "strides": [0, 0], "padding": "same", "use_bias": true},
                     "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__",
                        "config": {"keras_history": ["in", 0, 0]}}], "kwargs": {}}]}
                ],
                "input_layers": [["in", 0, 0]],
                "output_layers": [["c", 0, 0]]
            }
        })
    };
    // `"batch_shape": []` panicked (a slice index).
    let e = keras::graph_from_config(&input(serde_json::json!([])))
        .unwrap_err()
        .to_string();
    assert!(e.contains("shape"), "{e}");
    // Strides [0, 0] divided by zero.
    let e = keras::graph_from_config(&input(serde_json::json!([null, 8, 8, 3])))
        .unwrap_err()
        .to_string();
    assert!(e.contains("non-zero") || e.contains("stride"), "{e}");
}

#[test]
fn sizes_beyond_the_limits_are_refused_before_allocating() {
    // `--input-size 100000` aborted allocating 30 GB.
    let e = ModelConfig::new(Arch::GoogLeNet)
        .with_input_size(100_000)
        .graph()
        .unwrap_err()
        .to_string();
    assert!(e.contains("over the limit"), "{e}");
    assert!(
        ModelConfig::new(Arch::GoogLeNet)
            .with_input_size(100_000)
            .init(&Device::default())
            .is_err()
    );
    // A preset from a file's metadata with a zero size or std gave NaN probabilities.
    let bad = Preset::Normalize {
        size: 0,
        channels: 1,
        mean: vec![0.1],
        std: vec![0.0],
    };
    assert!(bad.validate().is_err());
    let bad = Preset::Normalize {
        size: 28,
        channels: 1,
        mean: vec![0.1],
        std: vec![0.0],
    };
    assert!(bad.validate().unwrap_err().to_string().contains("std"));
    assert!(Preset::torchvision(224).validate().is_ok());
    // Folder images at a size no model takes.
    let tmp = tempfile::tempdir().unwrap();
    let e = ImageSet::from_folder(tmp.path(), 3, 100_000, None).unwrap_err();
    assert!(e.to_string().contains("between 1 and"), "{e}");
}

#[test]
fn every_arch_info_row_is_its_arch() {
    // ARCH_INFO is indexed by the variant; ALL lists every variant once (in display order).
    for (i, row) in inception::models::ARCH_INFO.iter().enumerate() {
        assert_eq!(row.arch as usize, i);
    }
    assert_eq!(Arch::ALL.len(), inception::models::ARCH_INFO.len());
    for arch in Arch::ALL {
        assert_eq!(arch.info().arch, arch);
        assert_eq!(Arch::from_name(arch.name()).unwrap(), arch);
    }
}

/// A tiny digits setup: 2 classes of 40 images.
fn two_digits() -> (ImageSet, ImageSet) {
    let (train, test) = ImageSet::digits().unwrap();
    (
        train.with_classes(&[0, 1]).take_per_class(40, 0),
        test.with_classes(&[0, 1]).take_per_class(10, 0),
    )
}

fn mini(classes: usize) -> ModelConfig {
    ModelConfig::new(Arch::InceptionMini)
        .with_classes(classes)
        .with_aux_logits(true)
}

#[test]
fn nonsense_hyper_parameters_are_refused() {
    let (train, _) = two_digits();
    let base = TrainConfig::recipe(Recipe::Digits, mini(2), &train);
    assert!(base.validate().is_ok());
    let cases: Vec<(TrainConfig, &str)> = vec![
        (
            {
                let mut c = base.clone();
                c.schedule.lr = f64::NAN;
                c
            },
            "learning rate",
        ),
        (
            {
                let mut c = base.clone();
                c.label_smoothing = 2.0;
                c
            },
            "label smoothing",
        ),
        (
            {
                let mut c = base.clone();
                c.batch_size = 0;
                c
            },
            "batch size",
        ),
        (
            {
                let mut c = base.clone();
                c.std = vec![0.0];
                c
            },
            "std",
        ),
        (base.clone().with_epochs(0), "epochs"),
    ];
    for (cfg, what) in cases {
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(what), "{what}: {e}");
        assert!(Trainer::new(cfg, &Device::default()).is_err());
    }
    // `step:0:0` silently set the rate to 0.
    for spec in ["step:0:0", "step:8:0", "step:8:1.5", "step:x:0.9", "linear"] {
        assert!(Decay::parse(spec).is_err(), "{spec}");
    }
    assert_eq!(
        Decay::parse("step:8:0.96").unwrap(),
        Decay::Step {
            every: 8.0,
            gamma: 0.96
        }
    );
    assert!(OptimizerKind::parse("adam").is_err());
    // Validation fractions outside (0, 1) were a panic (1.5) or "no images" (-1, NaN).
    let tmp = tempfile::tempdir().unwrap();
    for f in [1.5, -1.0, f64::NAN, 0.0, 1.0] {
        let e = ImageSet::folder_splits(tmp.path(), 1, 28, f, 0).unwrap_err();
        assert!(e.to_string().contains("between 0 and 1"), "{f}: {e}");
    }
    let (a, b) = train.split(1.5, 0);
    assert_eq!((a.len(), b.len()), (0, train.len()));
}

#[test]
fn training_refuses_one_class_and_empty_epochs() {
    let (train, val) = two_digits();
    // One class: it "succeeded" with loss 0 and 100% accuracy.
    let one = train.with_classes(&[0]);
    let cfg = TrainConfig::recipe(Recipe::Digits, mini(1), &one).with_epochs(1);
    let mut t = Trainer::new(cfg, &Device::default()).unwrap();
    let e = t
        .fit(&one, &val.with_classes(&[0]), &mut |_| true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least two"), "{e}");
    // Fewer images than one batch.
    let few = train.take_per_class(3, 0);
    let cfg = TrainConfig::recipe(Recipe::Digits, mini(2), &few).with_epochs(1);
    let mut t = Trainer::new(cfg, &Device::default()).unwrap();
    let e = t.fit(&few, &val, &mut |_| true).unwrap_err().to_string();
    assert!(e.contains("fewer than one batch"), "{e}");
}

#[test]
fn a_diverging_run_stops_with_an_error_naming_the_step() {
    let (train, val) = two_digits();
    let mut cfg = TrainConfig::recipe(Recipe::Digits, mini(2), &train).with_epochs(1);
    cfg.batch_size = 8;
    cfg.schedule.lr = 1e30;
    cfg.schedule.warmup_epochs = 0.0;
    cfg.schedule.decay = Decay::Constant;
    let mut t = Trainer::new(cfg, &Device::default()).unwrap();
    let e = t.fit(&train, &val, &mut |_| true).unwrap_err();
    assert!(
        matches!(e, inception::Error::Diverged { step, .. } if step >= 1),
        "{e}"
    );
    assert!(e.to_string().contains("step"), "{e}");
}

#[test]
fn keras_layout_trains_on_logits_and_its_classifier_applies_softmax() {
    // inception-v3-keras kept its softmax when trained: the loss was log_softmax(softmax(z)).
    let (train, _) = two_digits();
    let model = ModelConfig::new(Arch::InceptionV3Keras)
        .with_classes(2)
        .with_in_channels(1)
        .with_input_size(75);
    assert!(model.softmax);
    let cfg = TrainConfig::recipe(Recipe::Digits, model.clone(), &train);
    let t = Trainer::new(cfg.clone(), &Device::default()).unwrap();
    assert!(!t.config.model.softmax);
    let g = t.network.graph();
    assert!(!matches!(
        g.nodes()[g.main_output().node].op,
        inception::graph::Op::Softmax
    ));
    // A network that ends in a softmax is refused rather than trained wrongly.
    let soft = model.init(&Device::default().autodiff()).unwrap();
    let e = Trainer::with_network(cfg, soft).unwrap_err().to_string();
    assert!(e.contains("softmax"), "{e}");
}

#[test]
fn broken_metadata_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, _) = two_digits();
    let cfg = TrainConfig::recipe(Recipe::Digits, mini(2), &train);
    let t = Trainer::new(cfg.clone(), &Device::default()).unwrap();
    let path = tmp.path().join("model.safetensors");
    let classes = ["zero".to_string(), "one".to_string()];
    save_model(&path, &t.inference_network(), &cfg, &classes, &[]).unwrap();
    let clf = Classifier::load(path.to_str().unwrap(), &LoadOptions::default()).unwrap();
    assert_eq!(clf.labels().len(), 2);
    let rewrite = |key: &str, value: &str, name: &str| {
        let mut sd = weights::safetensors::read(&path).unwrap();
        sd.metadata.insert(key.into(), value.into());
        let out = tmp.path().join(name);
        weights::safetensors::write(&out, &sd).unwrap();
        out
    };
    // Size 0 and std 0 gave NaN probabilities with exit code 0.
    let nan = rewrite(
        inception::data::PREPROCESSING_KEY,
        r#"{"kind":"normalize","size":0,"channels":1,"mean":[0.1],"std":[0.0]}"#,
        "nan.safetensors",
    );
    let e = Classifier::load(nan.to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nan.safetensors") && e.contains(inception::data::PREPROCESSING_KEY),
        "{e}"
    );
    // A class list of the wrong length silently became class_N.
    let three = rewrite(
        inception::data::CLASSES_KEY,
        r#"["a","b","c"]"#,
        "three.safetensors",
    );
    let e = Classifier::load(three.to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("three.safetensors") && e.contains("3 classes"),
        "{e}"
    );
    let garbage = rewrite(
        inception::data::CLASSES_KEY,
        "not json",
        "garbage.safetensors",
    );
    let e = Classifier::load(garbage.to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("garbage.safetensors"), "{e}");
}

#[test]
fn a_checkpoint_with_nonsense_settings_does_not_resume() {
    // `batch_size: 0` in a checkpoint's metadata divided by zero on --resume.
    let tmp = tempfile::tempdir().unwrap();
    let (train, _) = two_digits();
    let cfg = TrainConfig::recipe(Recipe::Digits, mini(2), &train);
    let t = Trainer::new(cfg, &Device::default()).unwrap();
    let path = tmp.path().join("checkpoint.safetensors");
    save_checkpoint(&path, &t, &["0".into(), "1".into()]).unwrap();
    assert!(load_checkpoint(&path, &Device::default()).is_ok());
    let bytes = std::fs::read(&path).unwrap();
    let needle = br#"batch_size\":64"#;
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the checkpoint records its batch size");
    let mut patched = bytes.clone();
    patched[at..at + needle.len()].copy_from_slice(br#"batch_size\":0 "#);
    std::fs::write(&path, patched).unwrap();
    let e = load_checkpoint(&path, &Device::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("batch size 0"), "{e}");
}

#[test]
fn a_light_digit_for_a_dark_digits_model_gets_a_hint() {
    let preset = Preset::Normalize {
        size: 4,
        channels: 1,
        mean: vec![0.13],
        std: vec![0.31],
    };
    // A white page (value 1.0 after /255) normalised by the preset.
    let white: Vec<f32> = vec![(1.0 - 0.13) / 0.31; 16];
    let hint = preset.brightness_hint(&white).unwrap();
    assert!(hint.contains("invert"), "{hint}");
    let dark: Vec<f32> = vec![(0.1 - 0.13) / 0.31; 16];
    assert!(preset.brightness_hint(&dark).is_none());
    assert!(Preset::torchvision(224).brightness_hint(&white).is_none());
}

#[test]
fn every_layout_trains_on_its_logits() {
    // Issue 16: a layout whose top ends in a softmax trained on log_softmax(softmax(z)). Every
    // built-in layout now trains a few steps on logits, with a finite loss.
    let (train, val) = two_digits();
    let train = train.take_per_class(4, 0);
    let val = val.take_per_class(2, 0);
    for arch in Arch::ALL {
        let size = ModelConfig::new(arch)
            .with_in_channels(1)
            .min_input_size()
            .unwrap()
            .max(28);
        let model = ModelConfig::new(arch)
            .with_classes(2)
            .with_in_channels(1)
            .with_input_size(size);
        let mut cfg = TrainConfig::recipe(Recipe::Digits, model, &train).with_epochs(1);
        cfg.batch_size = 4;
        let mut t = Trainer::new(cfg, &Device::default()).unwrap();
        let g = t.network.graph();
        assert!(
            !matches!(
                g.nodes()[g.main_output().node].op,
                inception::graph::Op::Softmax
            ),
            "{arch}"
        );
        t.fit(&train, &val, &mut |_| true).unwrap();
        let h = &t.history[0];
        assert!(
            h.train_loss.is_finite() && h.val_loss.is_finite(),
            "{arch}: {h:?}"
        );
    }
}
