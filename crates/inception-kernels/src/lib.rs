//! The CPU kernels behind `inception`'s inference engine, free of any framework type so that
//! they can serve Burn's backend extensions too.
//!
//! Activations are channels-last (NHWC). A value is a [`View`] into a buffer: inside each pixel
//! of the buffer, `c` channels starting at `offset` out of `stride` — so an inception module's
//! branches write straight into their slices of the concatenated output.
//!
//! Every kernel is parallel over output rows on rayon's current thread pool, and writes every
//! value of its output view (never reads the output first), so buffers can be reused freely.

mod avgpool;
mod conv;
mod maxpool;
mod nchw;
mod norm;
mod ops;
mod sgemm;
mod simd;
#[cfg(test)]
mod testing;
mod update;
mod winograd;

pub use avgpool::{AvgPoolShape, avg_pool_backward, avg_pool_forward};
pub use conv::{ConvGeometry, ConvKernel};
pub use maxpool::{MaxPoolShape, max_pool_backward, max_pool_forward};
pub use nchw::{
    Conv2dShape, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
    conv2d_forward,
};
pub use norm::{NormShape, batch_norm_train, batch_norm_train_backward};
pub use ops::{
    Pool, adaptive_avg, add, affine, copy, flatten, gather_nchw, global_pool, input_nhwc, lrn,
    relu, softmax,
};
pub use sgemm::{Epilogue, Isa, PackedB, isa, sgemm};
pub use update::{RmsPropStep, SgdStep, rmsprop_step, sgd_step};

/// Where a value lives: in each pixel of a buffer laid out `[N, h, w, stride]`, the `c`
/// channels starting at `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// Which buffer (the caller's numbering; kernels take the buffer itself).
    pub slot: usize,
    /// First channel of the value inside a pixel.
    pub offset: usize,
    /// Values per pixel in the buffer.
    pub stride: usize,
    /// Channels of the value.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl View {
    /// A whole buffer holding `c` channels of `h` x `w` pixels.
    pub fn dense(slot: usize, c: usize, h: usize, w: usize) -> Self {
        Self {
            slot,
            offset: 0,
            stride: c,
            c,
            h,
            w,
        }
    }

    /// Pixels per sample.
    pub fn pixels(&self) -> usize {
        self.h * self.w
    }

    /// Values a batch of `batch` samples occupies in the buffer.
    pub fn buffer_len(&self, batch: usize) -> usize {
        batch * self.pixels() * self.stride
    }

    /// Whether a buffer of `len` values holds `batch` samples of this view.
    pub fn fits(&self, len: usize, batch: usize) -> bool {
        self.offset + self.c <= self.stride && self.buffer_len(batch) <= len
    }
}
