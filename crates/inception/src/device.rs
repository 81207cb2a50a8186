//! Choosing where the arithmetic runs: Burn's pure-Rust CPU backend (always there) or, when the
//! crate is built with the `cuda` or `wgpu` feature, GPUs — one, or several for data-parallel
//! training.
//!
//! ```
//! let devices = inception::device::parse_devices("cpu").unwrap();
//! assert_eq!(devices.len(), 1);
//! // Several devices train data-parallel; the CPU can stand in twice (used by the tests).
//! assert_eq!(inception::device::parse_devices("cpu,cpu").unwrap().len(), 2);
//! assert!(inception::device::parse_devices("tpu:0").is_err());
//! ```

use burn::tensor::Device;

use crate::error::{Error, Result};

/// The device names this build understands, for help texts and errors.
pub fn available() -> Vec<&'static str> {
    let mut names = vec!["cpu"];
    if cfg!(feature = "cuda") {
        names.push("cuda[:N]");
    }
    if cfg!(feature = "wgpu") {
        names.push("wgpu[:N]");
        names.push("wgpu:integrated[:N]");
        names.push("wgpu:cpu");
    }
    names
}

/// Parses a comma-separated device list: `cpu` (Burn's pure-Rust Flex backend), `cuda:0,cuda:1`
/// (feature `cuda`), `wgpu`, `wgpu:1`, `wgpu:integrated`, `wgpu:cpu` (feature `wgpu`; `wgpu:cpu`
/// is a software Vulkan/Metal adapter such as Mesa's lavapipe). `cuda:0-3` names a range. The
/// first device holds the master weights and the optimizer.
pub fn parse_devices(spec: &str) -> Result<Vec<Device>> {
    let mut devices = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        devices.extend(parse_one(item)?);
    }
    if devices.is_empty() {
        return Err(unknown(spec));
    }
    Ok(devices)
}

fn unknown(spec: &str) -> Error {
    Error::unknown(crate::error::NameKind::Device, spec, None, available())
}

/// `N` or `A-B`.
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
fn indices(spec: &str, part: &str) -> Result<Vec<usize>> {
    let bad = || unknown(spec);
    match part.split_once('-') {
        Some((a, b)) => {
            let (a, b): (usize, usize) =
                (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if a > b {
                return Err(bad());
            }
            Ok((a..=b).collect())
        }
        None => Ok(vec![part.parse().map_err(|_| bad())?]),
    }
}

fn parse_one(item: &str) -> Result<Vec<Device>> {
    let (backend, rest) = match item.split_once(':') {
        Some((b, r)) => (b, Some(r)),
        None => (item, None),
    };
    match (backend, rest) {
        // Burn's Flex backend by name: in a GPU build `Device::default()` is the GPU.
        ("cpu", None) => Ok(vec![Device::flex()]),
        #[cfg(feature = "cuda")]
        ("cuda", None) => Ok(vec![Device::cuda(0)]),
        #[cfg(feature = "cuda")]
        ("cuda", Some(n)) => Ok(indices(item, n)?.into_iter().map(Device::cuda).collect()),
        #[cfg(feature = "wgpu")]
        ("wgpu", rest) => {
            use burn::tensor::DeviceKind;
            let kinds: Vec<DeviceKind> = match rest {
                None => vec![DeviceKind::DefaultDevice],
                Some("cpu") => vec![DeviceKind::Cpu],
                Some("integrated") => vec![DeviceKind::IntegratedGpu(0)],
                Some(r) => match r.strip_prefix("integrated:") {
                    Some(n) => indices(item, n)?
                        .into_iter()
                        .map(DeviceKind::IntegratedGpu)
                        .collect(),
                    None => indices(item, r)?
                        .into_iter()
                        .map(DeviceKind::DiscreteGpu)
                        .collect(),
                },
            };
            Ok(kinds.into_iter().map(Device::wgpu).collect())
        }
        _ => Err(unknown(item)),
    }
}
