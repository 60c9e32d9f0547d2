//! 3×3 convolutions (stride 1, zero padding 1) for the CPU backend as column blocks and one
//! matrix product per block.
//!
//! burn-flex converts every convolution's input to NHWC and flattens its weights on one core,
//! then gathers each 512-pixel tile element by element and scatters the product back. Here the
//! NCHW input is used as it is: a block of output rows gets its columns (one row per input
//! channel and tap, made of whole image rows shifted by the tap, so plain slice copies) on all
//! cores, then one product with the weights as they are stored (`[out, in·9]`, the bias as one
//! more column against a row of ones) writes the block's output in place.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Tensor, TensorData};

/// Columns per block up to this many values (16 MiB of f32).
const BLOCK: usize = 1 << 22;

/// Inputs from this many values per image up (the VAE decoder's, the UNet's largest), where this
/// path took 13–29 % less time than burn-flex's at the VAE's shapes and 5 % less at the UNet's.
/// Below it the two were even, once 15 % the other way (`native/examples/kernel_bench.rs`,
/// bench/RESULTS.md).
const MIN_INPUT: usize = 1 << 21;

/// Whether this path takes the call: f32 3×3 convolutions with stride 1, padding 1, no
/// dilation or groups, inputs of [`MIN_INPUT`] values or more, off the CubeCL devices, and not
/// under autodiff (building the result from host data would cut the graph).
pub(super) fn applies(conv: &Conv2d, x: &Tensor<4>) -> bool {
    if x.is_autodiff() {
        return false;
    }
    #[cfg(feature = "cube")]
    if super::on_cube(x) {
        return false;
    }
    let weight = conv.weight.val();
    x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && conv.kernel_size == [3, 3]
        && conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && matches!(conv.padding, PaddingConfig2d::Explicit(1, 1, 1, 1))
        && weight.dims()[1] == x.dims()[1]
        && x.dims()[1..].iter().product::<usize>() >= MIN_INPUT
}

/// # Shapes
/// - `x`: `[batch, in, height, width]` → `[batch, out, height, width]`
pub(super) fn forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    let [batch, channels, height, width] = x.dims();
    let weight = conv.weight.val();
    let out = weight.dims()[0];
    let mut lhs = weight.reshape([out, channels * 9]);
    if let Some(bias) = &conv.bias {
        lhs = Tensor::cat(vec![lhs, bias.val().reshape([out, 1])], 1);
    }
    let rows = lhs.dims()[1];
    let data = x.into_data();
    let Ok(values) = data.as_slice::<f32>() else {
        return conv.forward(Tensor::from_data(data, &device));
    };
    let block_rows = (BLOCK / (rows * width)).clamp(1, height);
    let plane = channels * height * width;
    let images = (0..batch)
        .map(|b| {
            let image = Image {
                values: &values[b * plane..(b + 1) * plane],
                channels,
                height,
                width,
            };
            let blocks = (0..height)
                .step_by(block_rows)
                .map(|y0| {
                    let n = block_rows.min(height - y0);
                    let cols = image.columns(y0, n, rows);
                    let rhs =
                        Tensor::<2>::from_data(TensorData::new(cols, [rows, n * width]), &device);
                    lhs.clone().matmul(rhs)
                })
                .collect();
            Tensor::cat(blocks, 1).reshape([1, out, height, width])
        })
        .collect();
    Tensor::cat(images, 0)
}

/// One image's input, NCHW.
struct Image<'a> {
    values: &'a [f32],
    channels: usize,
    height: usize,
    width: usize,
}

impl Image<'_> {
    /// The columns of output rows `y0..y0 + n`: row `(c·3 + ky)·3 + kx` holds, for each output
    /// pixel, the input pixel under tap (ky, kx) of channel c (zero outside the image); rows past
    /// `channels·9` (the bias's) are ones.
    fn columns(&self, y0: usize, n: usize, rows: usize) -> Vec<f32> {
        let len = n * self.width;
        let mut cols = vec![0f32; rows * len];
        let (taps, ones) = cols.split_at_mut(self.channels * 9 * len);
        ones.fill(1.0);
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(self.channels);
        let per_thread = self.channels.div_ceil(threads);
        std::thread::scope(|scope| {
            for (i, chunk) in taps.chunks_mut(per_thread * 9 * len).enumerate() {
                scope.spawn(move || {
                    for (j, channel) in chunk.chunks_mut(9 * len).enumerate() {
                        self.fill_channel(i * per_thread + j, channel, y0, n);
                    }
                });
            }
        });
        cols
    }

    /// The 9 tap rows of channel `c` (zeroed on entry).
    fn fill_channel(&self, c: usize, taps: &mut [f32], y0: usize, n: usize) {
        let (h, w) = (self.height, self.width);
        let plane = &self.values[c * h * w..(c + 1) * h * w];
        for (tap, row) in taps.chunks_mut(n * w).enumerate() {
            let (ky, kx) = (tap / 3, tap % 3);
            for (yy, dst) in row.chunks_mut(w).enumerate() {
                // Input row y0 + yy + ky - 1; above or below the image it stays zero.
                let Some(sy) = (y0 + yy + ky).checked_sub(1).filter(|&sy| sy < h) else {
                    continue;
                };
                let src = &plane[sy * w..(sy + 1) * w];
                match kx {
                    0 => dst[1..].copy_from_slice(&src[..w - 1]),
                    1 => dst.copy_from_slice(src),
                    _ => dst[..w - 1].copy_from_slice(&src[1..]),
                }
            }
        }
    }
}
