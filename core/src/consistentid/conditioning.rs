//! The three conditionings of the official pipeline and the merge-step schedule (the loop
//! that uses them is `pipeline::consistentid::generate`).

use burn::tensor::Tensor;

use crate::{Error, Result};

/// Each `[1, 77 + 4, D]`: prompt tokens followed by the 4 ID tokens.
#[derive(Clone, Debug)]
pub struct Conditioning {
    /// Negative prompt fused with zero-image features + ID tokens of a zero embedding.
    pub null: Tensor<3>,
    /// The facial-fused prompt + ID tokens.
    pub augmented: Tensor<3>,
    /// The plain text prompt + ID tokens.
    pub text_only: Tensor<3>,
}

impl Conditioning {
    /// `[uncond; cond]` for step `i`: steps `i <= merge_step` use the text-only prompt, later
    /// ones the facial-fused one (the official `start_merge_step` rule).
    pub fn at_step(&self, i: usize, merge_step: usize) -> Tensor<3> {
        let cond = if i <= merge_step {
            self.text_only.clone()
        } else {
            self.augmented.clone()
        };
        Tensor::cat(vec![self.null.clone(), cond], 0)
    }

    /// The ablation "identity tokens off": the last `n` tokens (the ID tokens) of the
    /// conditional sides set to zero, so only the prompt (and its facial features) steer.
    pub fn without_id_tokens(mut self, n: usize) -> Self {
        for t in [&mut self.augmented, &mut self.text_only] {
            let [b, len, d] = t.dims();
            let n = n.min(len);
            *t = t.clone().slice_assign(
                [0..b, len - n..len, 0..d],
                Tensor::zeros([b, n, d], &t.device()),
            );
        }
        self
    }

    /// The three must share one `[1, L, D]` shape.
    pub fn check(&self) -> Result<()> {
        let dims = self.null.dims();
        if dims[0] != 1 || self.augmented.dims() != dims || self.text_only.dims() != dims {
            return Err(Error::InvalidRequest(format!(
                "conditionings must share one [1, L, D] shape, got {dims:?}, {:?}, {:?}",
                self.augmented.dims(),
                self.text_only.dims()
            )));
        }
        Ok(())
    }
}
