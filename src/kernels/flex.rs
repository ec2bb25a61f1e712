//! Access to flex tensors' f32 values, for every kernel here.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::DType;

/// The tensor's flex primitive, if it is a plain (non-autodiff) f32 flex tensor.
pub(super) fn f32_flex<const D: usize>(tensor: &Tensor<D>) -> Option<FlexTensor> {
    if tensor.dtype() != DType::F32 {
        return None;
    }
    let primitive = tensor.clone().try_into_primitive::<Flex>().ok()?;
    Some(made_contiguous(primitive))
}

/// The same tensor with a contiguous row-major layout.
pub(super) fn made_contiguous(tensor: FlexTensor) -> FlexTensor {
    if tensor.is_contiguous() {
        tensor
    } else {
        tensor.to_contiguous()
    }
}

/// The elements of a contiguous f32 flex tensor, in row-major order.
pub(super) fn contiguous(tensor: &FlexTensor) -> &[f32] {
    let (start, end) = tensor
        .layout()
        .contiguous_offsets()
        .expect("a contiguous tensor (see made_contiguous)");
    &tensor.storage::<f32>()[start..end]
}
