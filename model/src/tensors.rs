//! Token ids to the device and values back to the host.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// A `[n]` int tensor of token ids on `device`.
pub fn ids(ids: impl IntoIterator<Item = u32>, device: &Device) -> Tensor<1, Int> {
    let data: Vec<i64> = ids.into_iter().map(i64::from).collect();
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [n]), device)
}

/// A float tensor's values on the host, in row-major order.
pub fn host_floats<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("a float tensor converts to f32")
}
