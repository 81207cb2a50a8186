//! The convolution extension under Burn's `Autodiff`: the forward pass runs the inner
//! backend's extension and records a backward step that computes the input, weight and bias
//! gradients with the extension's backward passes.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};

use super::conv::ConvBackend;
use super::dims4;

/// What the backward step keeps: the input's and the weight's checkpoints and the options.
type State = (NodeId, NodeId, ConvOptions<2>);

#[derive(Debug)]
struct ConvWithBias;

#[derive(Debug)]
struct ConvNoBias;

impl<B: ConvBackend> Backward<B, 3> for ConvWithBias {
    type State = State;

    fn backward(self, ops: Ops<State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(node) = node_b {
            grads.register::<B>(node.id, B::fast_conv2d_bias_backward(grad.clone()));
        }
        let tracked = [node_x.map(|n| n.id), node_w.map(|n| n.id)];
        register::<B>(tracked, ops.state, grad, grads, checkpointer);
    }
}

impl<B: ConvBackend> Backward<B, 2> for ConvNoBias {
    type State = State;

    fn backward(self, ops: Ops<State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let tracked = [node_x.map(|n| n.id), node_w.map(|n| n.id)];
        register::<B>(tracked, ops.state, grad, grads, checkpointer);
    }
}

/// Registers the input's and the weight's gradients, for those of the two that are tracked.
fn register<B: ConvBackend>(
    [x_id, w_id]: [Option<NodeId>; 2],
    (x_state, w_state, options): State,
    grad: FloatTensor<B>,
    grads: &mut Gradients,
    checkpointer: &mut Checkpointer,
) {
    let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_state);
    let weight: FloatTensor<B> = checkpointer.retrieve_node_output(w_state);
    let x_shape = dims4(&x);
    let w_shape = dims4(&weight);
    if let Some(id) = w_id {
        let dw = B::fast_conv2d_weight_backward(x, grad.clone(), w_shape, options.clone());
        grads.register::<B>(id, dw);
    }
    if let Some(id) = x_id {
        grads.register::<B>(
            id,
            B::fast_conv2d_x_backward(weight, grad, x_shape, options),
        );
    }
}

impl<B: ConvBackend, C: CheckpointStrategy> ConvBackend for Autodiff<B, C> {
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match ConvNoBias
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    options.clone(),
                );
                let y = B::fast_conv2d(x.into_primitive(), weight.into_primitive(), options);
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                options,
            )),
        }
    }

    fn fast_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match ConvWithBias
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    options.clone(),
                );
                let y = B::fast_conv2d_bias(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    options,
                );
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_conv2d_bias(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                options,
            )),
        }
    }

    fn fast_conv2d_x_backward(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        x_shape: [usize; 4],
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        // Second derivatives are not recorded: the result is a constant of the graph.
        Self::from_inner(B::fast_conv2d_x_backward(
            weight.into_primitive(),
            grad.into_primitive(),
            x_shape,
            options,
        ))
    }

    fn fast_conv2d_weight_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weight_shape: [usize; 4],
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::fast_conv2d_weight_backward(
            x.into_primitive(),
            grad.into_primitive(),
            weight_shape,
            options,
        ))
    }

    fn fast_conv2d_bias_backward(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::fast_conv2d_bias_backward(grad.into_primitive()))
    }
}
