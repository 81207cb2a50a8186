//! One model's worker: requests queue up (bounded), and the worker runs those that arrive
//! together as one batch through the model, on a thread of its own, so that the HTTP threads
//! only decode and preprocess.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use inception::burn::tensor::{Device, Tensor, TensorData};
use inception::predict::{Classifier, FeatureExtractor, Prediction};
use tokio::sync::oneshot;

use crate::metrics::Metrics;

/// What a request wants from the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// The `top` most probable classes.
    Classify {
        /// How many.
        top: usize,
    },
    /// The feature vector.
    Features,
}

/// What the model answered.
#[derive(Debug)]
pub enum Answer {
    /// Classes, most probable first.
    Top(Vec<Prediction>),
    /// A feature vector.
    Vector(Vec<f32>),
}

/// A preprocessed image waiting for the model.
pub struct Job {
    /// The model's input for one image, `channels * size * size` values, CHW.
    pub input: Vec<f32>,
    /// What to compute.
    pub task: Task,
    /// Where the answer goes (the request may have given up: then it is dropped).
    pub reply: oneshot::Sender<Result<Answer, String>>,
}

/// Batching limits.
#[derive(Clone, Copy, Debug)]
pub struct BatchPolicy {
    /// The most images in one batch.
    pub max_batch: usize,
    /// How long the first request of a batch waits for others.
    pub max_wait: Duration,
    /// Requests waiting at most; more are refused (503).
    pub queue: usize,
}

/// The sending side of a model's queue.
pub struct Queue {
    sender: SyncSender<Job>,
    depth: Arc<AtomicUsize>,
}

/// Why a job was not queued.
#[derive(Debug)]
pub enum Refused {
    /// The queue is full.
    Full,
    /// The worker has stopped.
    Stopped,
}

impl Queue {
    /// Queues a job without waiting.
    pub fn submit(&self, job: Job) -> Result<(), Refused> {
        self.depth.fetch_add(1, Ordering::SeqCst);
        match self.sender.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.depth.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    TrySendError::Full(_) => Refused::Full,
                    TrySendError::Disconnected(_) => Refused::Stopped,
                })
            }
        }
    }

    /// Requests waiting now.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::SeqCst)
    }
}

/// The model a worker runs: a classifier with its feature extractor on the same network, or an
/// extractor alone (weights without a top).
pub struct Model {
    /// Class scores, when the weights have a top.
    pub classifier: Option<Classifier>,
    /// Feature vectors.
    pub extractor: FeatureExtractor,
    /// `[channels, size, size]` of one input.
    pub input: [usize; 3],
}

/// Starts `model`'s worker thread; it ends when every [`Queue`] is dropped.
pub fn start(model: Model, policy: BatchPolicy, metrics: Arc<Metrics>, name: String) -> Queue {
    let (sender, receiver) = sync_channel(policy.queue.max(1));
    let depth = Arc::new(AtomicUsize::new(0));
    let worker_depth = depth.clone();
    std::thread::Builder::new()
        .name(format!("model {name}"))
        .spawn(move || run(model, policy, receiver, worker_depth, metrics))
        .map(drop)
        .unwrap_or_else(|e| eprintln!("the worker of model {name} did not start: {e}"));
    Queue { sender, depth }
}

fn run(
    model: Model,
    policy: BatchPolicy,
    receiver: Receiver<Job>,
    depth: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
) {
    while let Ok(first) = receiver.recv() {
        let mut jobs = vec![first];
        let deadline = Instant::now() + policy.max_wait;
        while jobs.len() < policy.max_batch.max(1) {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok(job) => jobs.push(job),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        depth.fetch_sub(jobs.len(), Ordering::SeqCst);
        metrics.batch(jobs.len());
        // Classification and features in one batch each, the first asking the most classes.
        let (classify, features): (Vec<Job>, Vec<Job>) = jobs
            .into_iter()
            .partition(|j| matches!(j.task, Task::Classify { .. }));
        if !classify.is_empty() {
            answer(&model, classify, true);
        }
        if !features.is_empty() {
            answer(&model, features, false);
        }
    }
}

fn answer(model: &Model, jobs: Vec<Job>, classify: bool) {
    let [c, h, w] = model.input;
    let n = jobs.len();
    let mut data = Vec::with_capacity(n * c * h * w);
    for j in &jobs {
        data.extend_from_slice(&j.input);
    }
    let x = Tensor::<4>::from_data(TensorData::new(data, [n, c, h, w]), &Device::default());
    let result: Result<Vec<Answer>, String> = if classify {
        let top = jobs
            .iter()
            .map(|j| match j.task {
                Task::Classify { top } => top,
                Task::Features => 0,
            })
            .max()
            .unwrap_or(1);
        match &model.classifier {
            Some(clf) => clf
                .predict(x, top)
                .map(|all| all.into_iter().map(Answer::Top).collect())
                .map_err(|e| e.to_string()),
            None => Err("this model has no classifier".into()),
        }
    } else {
        model
            .extractor
            .extract(x)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                let [rows, dim] = t.dims();
                let values = t
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| format!("{e:?}"))?;
                Ok((0..rows)
                    .map(|i| Answer::Vector(values[i * dim..(i + 1) * dim].to_vec()))
                    .collect())
            })
    };
    match result {
        Ok(answers) => {
            for (job, mut a) in jobs.into_iter().zip(answers) {
                if let (Task::Classify { top }, Answer::Top(p)) = (job.task, &mut a) {
                    p.truncate(top);
                }
                let _ = job.reply.send(Ok(a));
            }
        }
        Err(e) => {
            for job in jobs {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}
