//! [`FusedOps`] under autodiff: each op is one node of the graph, whose backward step calls the
//! backend's backward kernel.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};

use super::{AdamWStep, FusedKernels, FusedOps};
use crate::AttentionMode;

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

/// A linear layer's backward step; its state is the input and the weight.
#[derive(Debug)]
struct LinearBackward;

impl<B: FusedKernels> Backward<B, 3> for LinearBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight) = ops.state;
        let input_grads = B::linear_backward(grad, x, weight);
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

/// What attention's backward takes besides the output's gradient.
#[derive(Debug, Clone)]
struct AttentionState<B: FusedKernels> {
    qkv: FloatTensor<B>,
    rotary: Option<FloatTensor<B>>,
    output: FloatTensor<B>,
    logsumexp: FloatTensor<B>,
    heads: usize,
    mode: AttentionMode,
}

impl<B: FusedKernels> Backward<B, 1> for AttentionBackward {
    type State = AttentionState<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let AttentionState {
            qkv,
            rotary,
            output,
            logsumexp,
            heads,
            mode,
        } = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            B::attention_backward(grad, qkv, rotary, output, logsumexp, heads, mode)
        });
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

    fn fused_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, x_node) = x.into_parts();
        let (weight, weight_node) = weight.into_parts();
        let (bias, bias_node) = bias.into_parts();
        let output = B::linear_forward(x.clone(), weight.clone(), bias);
        match LinearBackward
            .prepare::<C>([x_node, weight_node, bias_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, weight), output),
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

    /// Optimizer state is never differentiated: the update runs on the inner backend.
    fn fused_adamw(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [param, grad, moment_1, moment_2] = [param, grad, moment_1, moment_2].map(Self::inner);
        let (param, moment_1, moment_2) = B::adamw(param, grad, moment_1, moment_2, step);
        (
            Self::from_inner(param),
            Self::from_inner(moment_1),
            Self::from_inner(moment_2),
        )
    }

    fn fused_attention(qkv: FloatTensor<Self>, heads: usize, mode: AttentionMode) -> FloatTensor<Self> {
        attention::<B, C>(qkv, None, heads, mode)
    }

    fn fused_rotary_attention(
        qkv: FloatTensor<Self>,
        angles: FloatTensor<Self>,
        heads: usize,
        mode: AttentionMode,
    ) -> FloatTensor<Self> {
        // The angles are constants: no gradient flows to them.
        attention::<B, C>(qkv, Some(angles.into_primitive()), heads, mode)
    }
}

/// Attention on the backend's kernels, recorded as one node of the graph.
fn attention<B: FusedKernels, C: CheckpointStrategy>(
    qkv: FloatTensor<Autodiff<B, C>>,
    rotary: Option<FloatTensor<B>>,
    heads: usize,
    mode: AttentionMode,
) -> FloatTensor<Autodiff<B, C>> {
    let (qkv, qkv_node) = qkv.into_parts();
    let (output, logsumexp) = B::attention_forward(qkv.clone(), rotary.clone(), heads, mode.clone());
    match AttentionBackward.prepare::<C>([qkv_node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let state = AttentionState {
                qkv,
                rotary,
                output: output.clone(),
                logsumexp,
                heads,
                mode,
            };
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}
