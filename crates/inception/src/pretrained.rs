//! The published pretrained checkpoints, by name, and a download cache that verifies them.
//!
//! Each entry says where the file lives, how to verify it (the checksum its publisher
//! verifies: torchvision's SHA-256 prefix in the file name, Keras's MD5, the Hugging Face hub's
//! SHA-256 ETag), how its model was configured (`transform_input`, the top) and how its inputs
//! were preprocessed. [`Cache::fetch`] downloads a file once into the cache directory
//! (`$INCEPTION_CACHE`, else `$XDG_CACHE_HOME/inception`, else `~/.cache/inception`), with a
//! progress bar, into a temporary file that is checked and then renamed — an interrupted or
//! corrupt download never leaves a file behind.
//!
//! ```
//! use inception::pretrained;
//!
//! let entry = pretrained::find("googlenet").unwrap();
//! assert_eq!(entry.name, "googlenet.torchvision");
//! assert!(entry.transform_input);
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::Md5;
use serde::Serialize;
use sha2::{Digest, Sha256};

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
    let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
    Err(Error::Unknown(format!(
        "no pretrained weights called `{name}`; known: {} (or a model name)",
        names.join(", ")
    )))
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
        (Arch::InceptionMini, _) => {
            return Err(Error::Unknown(format!(
                "{arch} has no published weights; train it with `inception train --model {arch}`"
            )));
        }
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
    if path.exists() {
        return Ok(Resolved {
            entry: recognise(&path),
            path,
        });
    }
    let entry = if spec == "imagenet" {
        let arch = arch.ok_or_else(|| {
            Error::Config("--weights imagenet needs the model (e.g. --model googlenet)".to_string())
        })?;
        default_for(arch, true)?
    } else {
        match find(spec) {
            Ok(e) => e,
            Err(e) if spec.contains(['/', '.']) => {
                return Err(Error::Io(format!("{spec}: no such file ({e})")));
            }
            Err(e) => return Err(e),
        }
    };
    let path = cache.fetch(&entry, true)?;
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

/// The download cache.
#[derive(Clone, Debug)]
pub struct Cache {
    /// Where files are kept.
    pub dir: PathBuf,
}

impl Cache {
    /// `$INCEPTION_CACHE`, else `$XDG_CACHE_HOME/inception` (`~/.cache/inception`).
    pub fn default_dir() -> Result<PathBuf> {
        if let Some(d) = std::env::var_os("INCEPTION_CACHE") {
            return Ok(PathBuf::from(d));
        }
        dirs::cache_dir()
            .map(|d| d.join("inception"))
            .ok_or_else(|| Error::Io("no cache directory: set INCEPTION_CACHE".into()))
    }

    /// The cache in [`Cache::default_dir`].
    pub fn new() -> Result<Self> {
        Ok(Self {
            dir: Self::default_dir()?,
        })
    }

    /// A cache in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Where `entry` is (or will be) stored.
    pub fn path(&self, entry: &Pretrained) -> PathBuf {
        self.dir.join(&entry.file_name)
    }

    /// The cached file of `entry`, downloading and verifying it first if it is not there.
    /// `progress` draws a progress bar on stderr (when it is a terminal).
    pub fn fetch(&self, entry: &Pretrained, progress: bool) -> Result<PathBuf> {
        let path = self.path(entry);
        if path.is_file() {
            return Ok(path);
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        download(entry, &path, progress)?;
        Ok(path)
    }
}

fn offline_hint(entry: &Pretrained, path: &Path) -> String {
    format!(
        "download {} yourself and put it at {} (or pass the file with --weights)",
        entry.url,
        path.display()
    )
}

fn download(entry: &Pretrained, path: &Path, progress: bool) -> Result<()> {
    let fail = |why: String| {
        Error::Io(format!(
            "{}: {why}; {}",
            entry.name,
            offline_hint(entry, path)
        ))
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    // The hub's checksum is on its redirect response, before the CDN.
    let etag = if entry.checksum == Checksum::HubEtag {
        let head: ureq::Agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into();
        let resp = head
            .head(&entry.url)
            .call()
            .map_err(|e| fail(format!("cannot reach {} ({e})", entry.url)))?;
        let tag = resp
            .headers()
            .get("x-linked-etag")
            .or_else(|| resp.headers().get("etag"))
            .and_then(|v| v.to_str().ok())
            .map(|s| {
                s.trim_matches('"')
                    .trim_start_matches("W/")
                    .trim_matches('"')
                    .to_string()
            });
        match tag {
            Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => Some(t),
            _ => {
                return Err(fail(format!(
                    "{} publishes no SHA-256 ETag to verify against",
                    entry.url
                )));
            }
        }
    } else {
        None
    };
    let resp = agent
        .get(&entry.url)
        .call()
        .map_err(|e| fail(format!("cannot download {} ({e})", entry.url)))?;
    let total: Option<u64> = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let tmp = path.with_file_name(format!(".{}.{}.part", entry.file_name, std::process::id()));
    let result = (|| -> Result<()> {
        let bar = if progress {
            let bar = indicatif::ProgressBar::with_draw_target(
                total,
                indicatif::ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .expect("a valid template"),
            );
            bar.set_message(format!("downloading {}", entry.file_name));
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut reader = resp.into_body().into_reader();
        let mut sha = Sha256::new();
        let mut md5 = Md5::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut got: u64 = 0;
        loop {
            let n = reader.read(&mut buf).map_err(|e| {
                fail(format!(
                    "the download was interrupted after {got} bytes{} ({e})",
                    total.map(|t| format!(" of {t}")).unwrap_or_default()
                ))
            })?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
            md5.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(|e| Error::io(&tmp, e))?;
            got += n as u64;
            bar.set_position(got);
        }
        bar.finish_and_clear();
        if let Some(t) = total
            && got != t
        {
            return Err(fail(format!(
                "the download was cut short: {got} of {t} bytes"
            )));
        }
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        let sha = hex(&sha.finalize());
        let md5 = hex(&md5.finalize());
        let (ok, want, have) = match &entry.checksum {
            Checksum::Sha256Prefix(p) => (
                sha.starts_with(p.as_str()),
                format!("SHA-256 {p}…"),
                sha.clone(),
            ),
            Checksum::Sha256(h) => (sha == *h, format!("SHA-256 {h}"), sha.clone()),
            Checksum::Md5(h) => (md5 == *h, format!("MD5 {h}"), md5.clone()),
            Checksum::HubEtag => {
                let t = etag.clone().unwrap_or_default();
                (sha == t, format!("SHA-256 {t}"), sha.clone())
            }
            Checksum::Unpublished => {
                eprintln!("{}: no published checksum; SHA-256 {sha}", entry.name);
                (true, String::new(), sha.clone())
            }
        };
        if !ok {
            return Err(Error::Io(format!(
                "{}: checksum mismatch for {}: expected {want}, got {have} (corrupt download or \
                 changed upstream file; nothing was kept — retry, or verify the file yourself)",
                entry.name, entry.url
            )));
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
