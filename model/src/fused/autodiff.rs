//! [`FusedOps`] under autodiff: each op is one node of the graph, whose backward step calls the
//! backend's backward kernel.

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
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
        register_all::<B, _, 3>(ops.parents, input_grads, grads, |parent| parent.id);
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

/// Attention's backward step.
#[derive(Debug)]
struct AttentionBackward;

/// What attention's backward takes: the inputs, the output and the log-sum-exp.
#[derive(Debug, Clone)]
struct AttentionState<B: FusedKernels> {
    inputs: [FloatTensor<B>; 3],
    output: FloatTensor<B>,
    logsumexp: FloatTensor<B>,
    causal: bool,
}

impl<B: FusedKernels> Backward<B, 3> for AttentionBackward {
    type State = AttentionState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let AttentionState {
            inputs,
            output,
            logsumexp,
            causal,
        } = ops.state;
        let input_grads = B::attention_backward(grad, inputs, output, logsumexp, causal);
        register_all::<B, _, 3>(ops.parents, input_grads, grads, |parent| parent.id);
    }
}

/// Registers the gradient of each parent that requires one; `id` reads a parent's node id
/// (burn-autodiff does not export the parents' type).
fn register_all<B: FusedKernels, P, const N: usize>(
    parents: [Option<P>; N],
    input_grads: [FloatTensor<B>; N],
    grads: &mut Gradients,
    id: impl Fn(&P) -> NodeId,
) {
    for (parent, grad) in parents.into_iter().zip(input_grads) {
        if let Some(parent) = parent {
            grads.register::<B>(id(&parent), grad);
        }
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

    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        causal: bool,
    ) -> FloatTensor<Self> {
        let (q, q_node) = q.into_parts();
        let (k, k_node) = k.into_parts();
        let (v, v_node) = v.into_parts();
        let (output, logsumexp) = B::attention_forward(q.clone(), k.clone(), v.clone(), causal);
        match AttentionBackward
            .prepare::<C>([q_node, k_node, v_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = AttentionState {
                    inputs: [q, k, v],
                    output: output.clone(),
                    logsumexp,
                    causal,
                };
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }
}
