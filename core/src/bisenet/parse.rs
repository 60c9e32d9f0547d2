//! A face photo to BiSeNet's label map at its input size (512 × 512, values 0–18), the map the
//! official region selection reads: the device half (Pillow-exact resize, normalisation,
//! network, argmax) and the read back, blocking (native) or not (WebGPU in the browser can only
//! read asynchronously).

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::BiSeNet;
use super::preprocess::{SIZE, preprocess};
use crate::image::RgbImage;
use crate::{Error, Result};

impl BiSeNet {
    /// The label map of `face`, `SIZE × SIZE` row-major.
    pub fn label_map(&self, face: &RgbImage, device: &Device) -> Result<Vec<u8>> {
        let data = self
            .label_tensor(face, device)
            .try_into_data()
            .map_err(|e| Error::Readback(format!("{e:?}")))?;
        to_labels(data)
    }

    /// [`Self::label_map`] reading the labels back without blocking.
    pub async fn label_map_async(&self, face: &RgbImage, device: &Device) -> Result<Vec<u8>> {
        let data = self
            .label_tensor(face, device)
            .into_data_async()
            .await
            .map_err(|e| Error::Readback(format!("{e:?}")))?;
        to_labels(data)
    }

    /// The labels on the device, `[SIZE, SIZE]`.
    fn label_tensor(&self, face: &RgbImage, device: &Device) -> Tensor<2, Int> {
        let x: Tensor<4> = Tensor::from_data(
            TensorData::new(preprocess(face), [1, 3, SIZE, SIZE]),
            device,
        );
        self.forward(x).labels.reshape([SIZE, SIZE])
    }
}

/// Class indices (any integer type the backend reads back) as bytes.
fn to_labels(data: TensorData) -> Result<Vec<u8>> {
    Ok(data
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| Error::Readback(format!("{e:?}")))?
        .into_iter()
        .map(|v| v as u8)
        .collect())
}
