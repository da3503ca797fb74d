//! [`FusedOps`] under autodiff: each op is one node of the graph, whose backward step calls the
//! backend's backward kernel.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::FloatTensor;

use super::{FusedKernels, FusedOps};

/// LayerNorm's backward step; its state is `x`, `gamma` and the backend's saved tensors.
#[derive(Debug)]
struct LayerNormBackward;

type LayerNormState<B> = (FloatTensor<B>, FloatTensor<B>, [FloatTensor<B>; 2]);

impl<B: FusedKernels> Backward<B, 3> for LayerNormBackward {
    type State = LayerNormState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, saved) = ops.state;
        let input_grads = B::layer_norm_backward(grad, x, gamma, saved);
        for (parent, grad) in ops.parents.into_iter().zip(input_grads) {
            if let Some(parent) = parent {
                grads.register::<B>(parent.id, grad);
            }
        }
    }
}

/// GELU's backward step; its state is the input.
#[derive(Debug)]
struct GeluBackward;

impl<B: FusedKernels> Backward<B, 1> for GeluBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let x = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| B::gelu_grad(grad, x));
    }
}

impl<B: FusedKernels, C: CheckpointStrategy> FusedOps for Autodiff<B, C> {
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let (x, x_node) = x.into_parts();
        let (gamma, gamma_node) = gamma.into_parts();
        let (beta, beta_node) = beta.into_parts();
        let (output, saved) = B::layer_norm_forward(x.clone(), gamma.clone(), beta, epsilon);
        // The statistics are cheap to keep and costly to recompute: compute-bound.
        match LayerNormBackward
            .prepare::<C>([x_node, gamma_node, beta_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, gamma, saved), output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, x_node) = x.into_parts();
        let output = B::gelu_forward(x.clone());
        match GeluBackward.prepare::<C>([x_node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(x, output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }
}
