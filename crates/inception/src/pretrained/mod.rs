//! The published pretrained checkpoints, by name, and a download cache that verifies them.
//!
//! Each entry says where the file lives, how to verify it (the checksum its publisher
//! verifies: torchvision's SHA-256 prefix in the file name, Keras's MD5, the Hugging Face hub's
//! SHA-256 ETag), how its model was configured (`transform_input`, the top) and how its inputs
//! were preprocessed. [`Cache::fetch`] downloads a file once into the cache directory
//! (`$INCEPTION_CACHE`, else `$XDG_CACHE_HOME/inception`, else `~/.cache/inception`),
//! reporting progress to a callback, into a temporary file that is checked and then renamed —
//! an interrupted or corrupt download never leaves a file behind. Downloading needs the
//! `download` cargo feature (on by default).
//!
//! ```
//! use inception::pretrained;
//!
//! let entry = pretrained::find("googlenet").unwrap();
//! assert_eq!(entry.name, "googlenet.torchvision");
//! assert!(entry.transform_input);
//! ```

#[cfg(feature = "download")]
mod download;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::Preset;
use crate::error::{Error, Result};
use crate::models::Arch;
use crate::weights::Format;

/// How a download is verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Checksum {
    /// The first hex digits of the SHA-256 (torchvision's `check_hash`: the part of the file
    /// name after the last `-`).
    Sha256Prefix(String),
    /// The full SHA-256.
    Sha256(String),
    /// MD5 (the hash `keras.utils.get_file` checks for keras.applications weights).
    Md5(String),
    /// The SHA-256 the Hugging Face hub publishes for the file (`X-Linked-Etag`), as
    /// `huggingface_hub` verifies it.
    HubEtag,
    /// No published checksum: the SHA-256 is printed so that it can be pinned.
    Unpublished,
}

/// One published checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pretrained {
    /// Registry name (`googlenet.torchvision`, `inception_v3.keras`, …).
    pub name: String,
    /// Where it comes from, in a few words.
    pub source: String,
    /// The architecture it fits.
    pub arch: Arch,
    /// Download URL.
    pub url: String,
    /// File name in the cache.
    pub file_name: String,
    /// How the download is verified.
    pub checksum: Checksum,
    /// The file format.
    #[serde(skip)]
    pub format: Format,
    /// Whether the model needs torchvision's `transform_input`.
    pub transform_input: bool,
    /// Whether the file holds the classifier.
    pub include_top: bool,
    /// The preprocessing its training used.
    pub preprocessing: Preset,
    /// The label set of its classifier (`imagenet-1k`).
    pub labels: String,
}

fn entry(
    name: &str,
    source: &str,
    arch: Arch,
    url: &str,
    checksum: Checksum,
    format: Format,
    preprocessing: Preset,
) -> Pretrained {
    let file_name = url.rsplit('/').next().unwrap_or(name).to_string();
    Pretrained {
        name: name.into(),
        source: source.into(),
        arch,
        url: url.into(),
        file_name,
        checksum,
        format,
        transform_input: false,
        include_top: true,
        preprocessing,
        labels: "imagenet-1k".into(),
    }
}

/// Every registered checkpoint.
pub fn registry() -> Vec<Pretrained> {
    let keras = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/";
    let hub =
        |repo: &str| format!("https://huggingface.co/timm/{repo}/resolve/main/model.safetensors");
    let timm = Preset::TimmInception {
        resize: 341,
        crop: 299,
    };
    let mut timm_tv = entry(
        "inception_v3.tv_in1k",
        "timm (torchvision weights, timm preprocessing)",
        Arch::InceptionV3,
        &hub("inception_v3.tv_in1k"),
        Checksum::HubEtag,
        Format::Safetensors,
        timm.clone(),
    );
    timm_tv.file_name = "timm-inception_v3.tv_in1k.safetensors".into();
    let mut timm_tf = entry(
        "inception_v3.tf_in1k",
        "timm (ported from the TensorFlow-Slim checkpoint)",
        Arch::InceptionV3,
        &hub("inception_v3.tf_in1k"),
        Checksum::HubEtag,
        Format::Safetensors,
        timm,
    );
    timm_tf.file_name = "timm-inception_v3.tf_in1k.safetensors".into();
    // timm's ports of the TF-slim checkpoints (BatchNorm's γ kept, background class dropped).
    let timm_port = |arch: Arch, repo: &str| {
        let mut e = entry(
            repo,
            "timm (ported from the TensorFlow-Slim checkpoint)",
            arch,
            &hub(repo),
            Checksum::HubEtag,
            Format::Safetensors,
            Preset::TimmInception {
                resize: 341,
                crop: 299,
            },
        );
        e.file_name = format!("timm-{repo}.safetensors");
        e
    };
    let keras_irv2 =
        "https://storage.googleapis.com/tensorflow/keras-applications/inception_resnet_v2/";
    let mut irv2_notop = entry(
        "inception_resnet_v2.keras_notop",
        "keras.applications InceptionResNetV2(weights=\"imagenet\", include_top=False)",
        Arch::InceptionResNetV2,
        &format!("{keras_irv2}inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        Checksum::Md5("d19885ff4a710c122648d3b5c3b684e4".into()),
        Format::Keras,
        Preset::keras(),
    );
    irv2_notop.include_top = false;
    // TF-Hub's Inception SavedModels (TF2 format, the TF-slim networks inside): RGB in [0, 1]
    // resized without cropping, which the model scales to [-1, 1] — here the preset's part.
    // TF-Hub publishes no checksum.
    let hub_model = |arch: Arch, model: &str, kind: &str, size: usize| {
        let mut e = entry(
            &format!("{model}.tfhub_{kind}"),
            &format!("TF-Hub google/imagenet/{model}/{kind}/5 (TF-slim weights)"),
            arch,
            &format!("https://tfhub.dev/google/imagenet/{model}/{kind}/5?tf-hub-format=compressed"),
            Checksum::Unpublished,
            Format::TfCheckpoint,
            Preset::KerasInception {
                size,
                filter: crate::data::resize::Filter::Bilinear,
            },
        );
        e.file_name = format!("tfhub-{model}-{kind}-5.tar.gz");
        e.include_top = kind == "classification";
        e.labels = if e.include_top {
            "imagenet-1k+background".into()
        } else {
            "none (feature vector)".into()
        };
        e
    };
    let mut hub = Vec::new();
    for (arch, model, size) in [
        (Arch::InceptionV1Slim, "inception_v1", 224),
        (Arch::InceptionV2, "inception_v2", 224),
        (Arch::InceptionV3Slim, "inception_v3", 299),
        (Arch::InceptionResNetV2, "inception_resnet_v2", 299),
    ] {
        for kind in ["feature_vector", "classification"] {
            hub.push(hub_model(arch, model, kind, size));
        }
    }
    // TF-slim's own checkpoints (1001 classes, "background" first; the V1 format inside a
    // .tar.gz). Google publishes no checksum for them.
    let slim = |arch: Arch, name: &str, tarball: &str, size: usize| Pretrained {
        labels: "imagenet-1k+background".into(),
        ..entry(
            name,
            "TF-slim (tensorflow/models research/slim), read without TensorFlow",
            arch,
            &format!("https://storage.googleapis.com/download.tensorflow.org/models/{tarball}"),
            Checksum::Unpublished,
            Format::TfCheckpoint,
            Preset::TfSlim { size },
        )
    };
    let mut notop = entry(
        "inception_v3.keras_notop",
        "keras.applications InceptionV3(weights=\"imagenet\", include_top=False)",
        Arch::InceptionV3Keras,
        &format!("{keras}inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        Checksum::Md5("bcbd6486424b2319ff4ef7d526e38f63".into()),
        Format::Keras,
        Preset::keras(),
    );
    notop.include_top = false;
    vec![
        Pretrained {
            transform_input: true,
            ..entry(
                "googlenet.torchvision",
                "torchvision GoogLeNet_Weights.IMAGENET1K_V1",
                Arch::GoogLeNet,
                "https://download.pytorch.org/models/googlenet-1378be20.pth",
                Checksum::Sha256Prefix("1378be20".into()),
                Format::PyTorch,
                Preset::Torchvision {
                    resize: 256,
                    crop: 224,
                },
            )
        },
        Pretrained {
            transform_input: true,
            ..entry(
                "inception_v3.torchvision",
                "torchvision Inception_V3_Weights.IMAGENET1K_V1",
                Arch::InceptionV3,
                "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
                Checksum::Sha256Prefix("0cc3c7bd".into()),
                Format::PyTorch,
                Preset::Torchvision {
                    resize: 342,
                    crop: 299,
                },
            )
        },
        entry(
            "inception_v3.keras",
            "keras.applications InceptionV3(weights=\"imagenet\")",
            Arch::InceptionV3Keras,
            &format!("{keras}inception_v3_weights_tf_dim_ordering_tf_kernels.h5"),
            Checksum::Md5("9a0d58056eeedaa3f26cb7ebd46da564".into()),
            Format::Keras,
            Preset::keras(),
        ),
        notop,
        timm_tv,
        timm_tf,
        timm_port(Arch::InceptionV4, "inception_v4.tf_in1k"),
        timm_port(Arch::InceptionResNetV2, "inception_resnet_v2.tf_in1k"),
        entry(
            "inception_resnet_v2.keras",
            "keras.applications InceptionResNetV2(weights=\"imagenet\")",
            Arch::InceptionResNetV2,
            &format!("{keras_irv2}inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5"),
            Checksum::Md5("e693bd0210a403b3192acc6073ad2e96".into()),
            Format::Keras,
            Preset::keras(),
        ),
        irv2_notop,
        slim(
            Arch::InceptionV1Slim,
            "inception_v1.tf_slim",
            "inception_v1_2016_08_28.tar.gz",
            224,
        ),
        slim(
            Arch::InceptionV2,
            "inception_v2.tf_slim",
            "inception_v2_2016_08_28.tar.gz",
            224,
        ),
        slim(
            Arch::InceptionV3Slim,
            "inception_v3.tf_slim",
            "inception_v3_2016_08_28.tar.gz",
            299,
        ),
        slim(
            Arch::InceptionV4,
            "inception_v4.tf_slim",
            "inception_v4_2016_09_09.tar.gz",
            299,
        ),
        slim(
            Arch::InceptionResNetV2,
            "inception_resnet_v2.tf_slim",
            "inception_resnet_v2_2016_08_30.tar.gz",
            299,
        ),
        entry(
            "googlenet.onnx_zoo",
            "ONNX model zoo googlenet-12 (bvlc_googlenet from Caffe)",
            Arch::GoogLeNetBvlc,
            "https://github.com/onnx/models/raw/main/validated/vision/classification/inception_and_googlenet/googlenet/model/googlenet-12.onnx",
            Checksum::Unpublished,
            Format::Onnx,
            Preset::Caffe { size: 224 },
        ),
    ]
    .into_iter()
    .chain(hub)
    .collect()
}

/// The entry called `name`, or the default ImageNet checkpoint of an architecture name
/// (`googlenet`, `inception-v3`, `inception-v3-keras`, `googlenet-bvlc`).
pub fn find(name: &str) -> Result<Pretrained> {
    let all = registry();
    if let Some(e) = all.iter().find(|e| e.name == name) {
        return Ok(e.clone());
    }
    if let Ok(arch) = Arch::from_name(name) {
        return default_for(arch, true);
    }
    let names = all.iter().map(|e| e.name.as_str()).chain(["a model name"]);
    Err(Error::unknown(
        crate::error::NameKind::Pretrained,
        name,
        None,
        names,
    ))
}

/// The ImageNet checkpoint `--weights imagenet` means for `arch` (Keras: with or without the
/// top, as `keras.applications` picks).
pub fn default_for(arch: Arch, include_top: bool) -> Result<Pretrained> {
    let name = match (arch, include_top) {
        (Arch::GoogLeNet, _) => "googlenet.torchvision",
        (Arch::InceptionV3, _) => "inception_v3.torchvision",
        (Arch::InceptionV3Keras, true) => "inception_v3.keras",
        (Arch::InceptionV3Keras, false) => "inception_v3.keras_notop",
        (Arch::GoogLeNetBvlc, _) => "googlenet.onnx_zoo",
        (Arch::InceptionV4, _) => "inception_v4.tf_in1k",
        (Arch::InceptionResNetV2, _) => "inception_resnet_v2.tf_in1k",
        (Arch::InceptionMini, _) => {
            return Err(Error::unknown(
                crate::error::NameKind::Pretrained,
                arch.name(),
                None,
                std::iter::empty::<&str>(),
            ));
        }
        (Arch::InceptionV1Slim, _) => "inception_v1.tf_slim",
        (Arch::InceptionV2, _) => "inception_v2.tf_slim",
        (Arch::InceptionV3Slim, _) => "inception_v3.tf_slim",
    };
    Ok(registry()
        .into_iter()
        .find(|e| e.name == name)
        .expect("every published architecture has a default checkpoint"))
}

/// Which file `--weights`-style specification means, and the registry entry behind it.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The weights file (in the cache for a registry name).
    pub path: PathBuf,
    /// The registry entry: named, implied by `imagenet`, or recognised from the file's name
    /// (e.g. torchvision's `googlenet-1378be20.pth` in `~/.cache/torch/hub/checkpoints`).
    pub entry: Option<Pretrained>,
}

/// Resolves a weights specification: an existing file (recognised by its file name where it is
/// a published checkpoint, so `transform_input` and the preprocessing come with it), a registry
/// name (see [`registry`]), a model name, or `imagenet` for `arch`'s default checkpoint.
/// Registry files are fetched into `cache` (downloading and verifying them if needed).
pub fn resolve(spec: &str, arch: Option<Arch>, cache: &Cache) -> Result<Resolved> {
    let path = PathBuf::from(spec);
    // A TensorFlow checkpoint is often named by its prefix, which is no file itself.
    #[cfg(feature = "tensorflow")]
    let exists = path.exists() || crate::weights::tf::is_checkpoint(&path);
    #[cfg(not(feature = "tensorflow"))]
    let exists = path.exists();
    if exists {
        return Ok(Resolved {
            entry: recognise(&path),
            path,
        });
    }
    let entry = if spec == "imagenet" {
        let arch = arch.ok_or_else(|| {
            Error::config(
                "weights",
                "imagenet",
                "the name needs the architecture (e.g. googlenet)",
            )
        })?;
        default_for(arch, true)?
    } else {
        match find(spec) {
            Ok(e) => e,
            Err(e) if spec.contains(['/', '.']) => {
                return Err(Error::io_reason(
                    Path::new(spec),
                    format!("no such file ({e})"),
                ));
            }
            Err(e) => return Err(e),
        }
    };
    let path = cache.fetch(&entry)?;
    Ok(Resolved {
        path,
        entry: Some(entry),
    })
}

/// The registry entry whose published file name `path` has (`googlenet-1378be20.pth`,
/// `inception_v3_weights_tf_dim_ordering_tf_kernels.h5`, …).
pub fn recognise(path: &Path) -> Option<Pretrained> {
    let name = path.file_name()?.to_str()?;
    registry().into_iter().find(|e| e.file_name == name)
}

/// How far a download has come: reported to the cache's progress callback as bytes arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownloadProgress<'a> {
    /// The registry entry's file name.
    pub file: &'a str,
    /// Bytes received so far.
    pub received: u64,
    /// The size, when the server says it.
    pub total: Option<u64>,
    /// The file's SHA-256 once it is complete and verified (the last report); a user can
    /// compare it where the publisher gives no checksum.
    pub sha256: Option<&'a str>,
}

/// A progress callback (the command line draws a bar with it; the library draws nothing).
pub type ProgressFn = dyn Fn(&DownloadProgress) + Send + Sync;

/// The download cache.
#[derive(Clone)]
pub struct Cache {
    /// Where files are kept.
    pub dir: PathBuf,
    progress: Option<std::sync::Arc<ProgressFn>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("dir", &self.dir).finish()
    }
}

impl Cache {
    /// `$INCEPTION_CACHE`, else `$XDG_CACHE_HOME/inception` (`~/.cache/inception`).
    pub fn default_dir() -> Result<PathBuf> {
        if let Some(d) = std::env::var_os("INCEPTION_CACHE") {
            return Ok(PathBuf::from(d));
        }
        dirs::cache_dir()
            .map(|d| d.join("inception"))
            .ok_or_else(|| {
                Error::config(
                    "cache directory",
                    "",
                    "this system has none; set INCEPTION_CACHE",
                )
            })
    }

    /// The cache in [`Cache::default_dir`].
    pub fn new() -> Result<Self> {
        Ok(Self::at(Self::default_dir()?))
    }

    /// A cache in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            progress: None,
        }
    }

    /// Reports each download's progress to `progress`.
    pub fn with_progress(mut self, progress: std::sync::Arc<ProgressFn>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Where `entry` is (or will be) stored.
    pub fn path(&self, entry: &Pretrained) -> PathBuf {
        self.dir.join(&entry.file_name)
    }

    /// The cached file of `entry`, downloading and verifying it first if it is not there
    /// (progress goes to the callback of [`Cache::with_progress`]). Without the `download`
    /// feature a missing file is an error that says where to put it.
    pub fn fetch(&self, entry: &Pretrained) -> Result<PathBuf> {
        let path = self.path(entry);
        if path.is_file() {
            return Ok(path);
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        #[cfg(feature = "download")]
        {
            let quiet = |_: &DownloadProgress| {};
            let progress: &ProgressFn = match &self.progress {
                Some(p) => p.as_ref(),
                None => &quiet,
            };
            download::download(entry, &path, progress)?;
            Ok(path)
        }
        #[cfg(not(feature = "download"))]
        {
            Err(Error::Download {
                weights: entry.name.to_string(),
                reason: format!(
                    "not in the cache, and this build has no downloads (cargo feature \
                     `download`); {}",
                    offline_hint(entry, &path)
                ),
            })
        }
    }
}

/// What to do without a network: where the file comes from and where it goes.
pub(crate) fn offline_hint(entry: &Pretrained, path: &Path) -> String {
    format!(
        "download {} yourself and put it at {} (or give that file as the weights)",
        entry.url,
        path.display()
    )
}
