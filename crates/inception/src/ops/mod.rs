//! Our CPU kernels as custom operations of Burn's Flex backend (Burn's backend extensions), so
//! that training keeps Burn's autodiff graph, optimizers, checkpoints and data parallelism while
//! its convolutions, batch normalisations and pooling run on [`inception_kernels`]' NCHW passes.
//!
//! [`conv2d`], [`batch_norm_train`], [`max_pool2d`] and [`avg_pool2d`] are what the network's
//! layers call. On a Flex device
//! (with or without autodiff) they run the extensions, whose autodiff implementations record
//! our own backward passes; anywhere else (wgpu, CUDA) and for what the kernels do not cover
//! (groups, dilation, other float types) they are Burn's own operations, so every backend keeps
//! working.

mod conv;
mod conv_autodiff;
mod norm;
mod norm_autodiff;
mod pool;
mod pool_autodiff;
mod update;

pub use conv::{ConvBackend, conv2d, conv2d_layer};
pub use norm::{NormBackend, batch_norm_train};
pub use pool::{PoolBackend, avg_pool2d, max_pool2d};
pub use update::{UpdateBackend, rmsprop_step, sgd_step};

use burn::backend::{DispatchDevice, TensorMetadata};
use burn::tensor::{DType, Device, Shape, TensorData};
use burn_flex::FlexTensor;

/// Whether `device` is Burn's Flex CPU backend, with or without autodiff.
fn on_flex(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// The four dimensions of a rank-4 tensor primitive (NCHW).
fn dims4(t: &impl TensorMetadata) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

/// The tensor as a contiguous f32 buffer starting at offset 0 (copied only when it is not).
fn contiguous(t: FlexTensor) -> FlexTensor {
    let t = if t.dtype() == DType::F32 {
        t
    } else {
        FlexTensor::from_data(t.into_data().convert::<f32>())
    };
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The values of a tensor [`contiguous`] made.
fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("made contiguous f32 by `contiguous`")
}

/// A contiguous f32 tensor.
fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}
