//! Memory-efficient attention on the CubeCL backends: cubek's flash-attention routine in its
//! "unit" form (online softmax over key blocks, f32 accumulation; no tensor cores, so any head
//! dim that the vector width divides: SD1.5's 40, 80 and 160 all do). burn without `autotune`
//! always takes its fallback, which writes the whole `[b, heads, n, m]` score matrix: 1.2 GB in
//! f16 for a 512×768 portrait's first self-attention with CFG, and above WebGPU's buffer limits.

use burn::backend::{Backend, backend_extension, tensor::FloatTensor};
use burn::tensor::Tensor;
use burn::tensor::ops::AttentionModuleOptions;
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::attention::{AttentionStrategy, attention};
use burn_cubecl::tensor::CubeTensor;

/// The flash routine behind `burn::backend::Dispatch`: only CubeCL tensors reach it.
#[backend_extension(Cube)]
pub trait FlashAttentionBackend: Backend {
    /// # Shapes
    /// - `q`: `[b, heads, n, d]`, `k`/`v`: `[b, heads, m, d]` → `[b, heads, n, d]`
    fn flash_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// # Shapes
/// - `q`: `[b, heads, n, d]`, `k`/`v`: `[b, heads, m, d]` → `[b, heads, n, d]`
pub fn forward(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    let out = <burn::backend::Dispatch as FlashAttentionBackend>::flash_attention(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
    );
    Tensor::from_dispatch(out)
}

impl FlashAttentionBackend for CubeBackend {
    fn flash_attention(q: CubeTensor, k: CubeTensor, v: CubeTensor) -> CubeTensor {
        let options = AttentionModuleOptions::default();
        // A shape the routine cannot tile already degrades to the fallback inside burn; a
        // device without plane (subgroup) operations is refused, and takes the fallback here.
        let flash = attention(
            q.clone(),
            k.clone(),
            v.clone(),
            None,
            None,
            options,
            AttentionStrategy::FlashUnit,
        );
        match flash {
            Ok(out) => out,
            Err(_) => attention(q, k, v, None, None, options, AttentionStrategy::Fallback)
                .unwrap_or_else(|e| unreachable!("burn's fallback attention failed: {e:?}")),
        }
    }
}
