//! The batch-normalisation extension under Burn's `Autodiff`: the forward pass runs the inner
//! backend's extension and records a backward step that runs its backward pass. The mean and
//! variance it returns are constants of the graph (they feed the running statistics).

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};

use super::norm::NormBackend;

#[derive(Debug)]
struct BatchNormTrain;

impl<B: NormBackend> Backward<B, 3> for BatchNormTrain {
    /// The checkpoints of the input, γ and β; the batch mean and variance; ε; the fused ReLU.
    type State = ([NodeId; 3], FloatTensor<B>, FloatTensor<B>, f64, bool);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let ([x_state, gamma_state, beta_state], mean, variance, epsilon, relu) = ops.state;
        let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_state);
        let gamma: FloatTensor<B> = checkpointer.retrieve_node_output(gamma_state);
        let beta: FloatTensor<B> = checkpointer.retrieve_node_output(beta_state);
        let (dx, dgamma, dbeta) =
            B::fast_batch_norm_train_backward(x, gamma, beta, mean, variance, epsilon, relu, grad);
        for (node, g) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: NormBackend, C: CheckpointStrategy> NormBackend for Autodiff<B, C> {
    fn fast_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        match BatchNormTrain
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let states = [
                    prep.checkpoint(&x),
                    prep.checkpoint(&gamma),
                    prep.checkpoint(&beta),
                ];
                let (y, mean, var) = B::fast_batch_norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    relu,
                );
                let state = (states, mean.clone(), var.clone(), epsilon, relu);
                let y = prep.finish(state, y);
                (y, Self::from_inner(mean), Self::from_inner(var))
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) = B::fast_batch_norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    relu,
                );
                (
                    prep.finish(y),
                    Self::from_inner(mean),
                    Self::from_inner(var),
                )
            }
        }
    }

    fn fast_batch_norm_train_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // Second derivatives are not recorded: the results are constants of the graph.
        let (dx, dgamma, dbeta) = B::fast_batch_norm_train_backward(
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
            mean.into_primitive(),
            variance.into_primitive(),
            epsilon,
            relu,
            grad.into_primitive(),
        );
        (
            Self::from_inner(dx),
            Self::from_inner(dgamma),
            Self::from_inner(dbeta),
        )
    }
}
