//! The pooling extension under Burn's `Autodiff`: max pooling records a backward step that keeps
//! the input (its checkpoint) and the output, and finds each window's maximum again; average
//! pooling keeps only the input's size.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};

use super::pool::PoolBackend;
use crate::graph::PoolSpec;

#[derive(Debug)]
struct MaxPool;

impl<B: PoolBackend> Backward<B, 1> for MaxPool {
    /// The input's checkpoint, the output, the pooling.
    type State = (NodeId, FloatTensor<B>, PoolSpec);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, y, pool) = ops.state;
        if let Some(node) = node_x {
            let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_state);
            grads.register::<B>(node.id, B::fast_max_pool2d_backward(x, y, grad, pool));
        }
    }
}

#[derive(Debug)]
struct AvgPool;

impl<B: PoolBackend> Backward<B, 1> for AvgPool {
    /// The input's `[h, w]`, the pooling.
    type State = ([usize; 2], PoolSpec);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (input, pool) = ops.state;
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::fast_avg_pool2d_backward(grad, input, pool));
        }
    }
}

impl<B: PoolBackend, C: CheckpointStrategy> PoolBackend for Autodiff<B, C> {
    fn fast_max_pool2d(x: FloatTensor<Self>, pool: PoolSpec) -> FloatTensor<Self> {
        match MaxPool.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let y = B::fast_max_pool2d(x.into_primitive(), pool.clone());
                prep.finish((x_state, y.clone(), pool), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_max_pool2d(x.into_primitive(), pool)),
        }
    }

    fn fast_max_pool2d_backward(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        pool: PoolSpec,
    ) -> FloatTensor<Self> {
        // Second derivatives are not recorded: the result is a constant of the graph.
        Self::from_inner(B::fast_max_pool2d_backward(
            x.into_primitive(),
            y.into_primitive(),
            grad.into_primitive(),
            pool,
        ))
    }

    fn fast_avg_pool2d(x: FloatTensor<Self>, pool: PoolSpec) -> FloatTensor<Self> {
        let [_, _, h, w] = super::dims4(&x);
        let input = [h, w];
        match AvgPool.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(
                (input, pool.clone()),
                B::fast_avg_pool2d(x.into_primitive(), pool),
            ),
            OpsKind::UnTracked(prep) => prep.finish(B::fast_avg_pool2d(x.into_primitive(), pool)),
        }
    }

    fn fast_avg_pool2d_backward(
        grad: FloatTensor<Self>,
        input: [usize; 2],
        pool: PoolSpec,
    ) -> FloatTensor<Self> {
        // Second derivatives are not recorded: the result is a constant of the graph.
        Self::from_inner(B::fast_avg_pool2d_backward(
            grad.into_primitive(),
            input,
            pool,
        ))
    }
}
