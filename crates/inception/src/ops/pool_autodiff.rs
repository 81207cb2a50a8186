//! The max-pooling extension under Burn's `Autodiff`: the forward pass records a backward step
//! that keeps the input (its checkpoint) and finds each window's maximum again.

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
    type State = (NodeId, PoolSpec);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, pool) = ops.state;
        if let Some(node) = node_x {
            let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_state);
            grads.register::<B>(node.id, B::fast_max_pool2d_backward(x, grad, pool));
        }
    }
}

impl<B: PoolBackend, C: CheckpointStrategy> PoolBackend for Autodiff<B, C> {
    fn fast_max_pool2d(x: FloatTensor<Self>, pool: PoolSpec) -> FloatTensor<Self> {
        match MaxPool.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), pool.clone());
                prep.finish(state, B::fast_max_pool2d(x.into_primitive(), pool))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_max_pool2d(x.into_primitive(), pool)),
        }
    }

    fn fast_max_pool2d_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        pool: PoolSpec,
    ) -> FloatTensor<Self> {
        // Second derivatives are not recorded: the result is a constant of the graph.
        Self::from_inner(B::fast_max_pool2d_backward(
            x.into_primitive(),
            grad.into_primitive(),
            pool,
        ))
    }
}
