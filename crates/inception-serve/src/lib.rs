//! An HTTP inference server for inception's models, as TorchServe and TF Serving serve theirs:
//! `POST /v1/classify` (an image in, the top classes out as JSON), `POST /v1/features` (the
//! feature vector, JSON or `.npy`), `GET /v1/model`, `/healthz`, `/readyz`, `/metrics`
//! (Prometheus), several models by name (`/v1/models/{name}/…`), and a web page at `/`.
//!
//! Requests that arrive together run through the model as one batch (bounded in size and wait)
//! on the model's own thread; decoding and preprocessing run on tokio's blocking threads. Every
//! limit answers with a status and a JSON error: a body over the limit 413, an undecodable or
//! oversized image 400, a full queue 503 with `Retry-After`, a request over its time 504.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use inception_serve::{ModelSpec, ServeConfig};
//! let config = ServeConfig::new(vec![ModelSpec {
//!     name: "googlenet".into(),
//!     weights: "googlenet.torchvision".into(),
//!     options: Default::default(),
//! }]);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! inception_serve::serve(listener, config, inception_serve::shutdown_signal()).await
//! # }
//! ```

mod batcher;
mod metrics;
mod models;
mod routes;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use batcher::BatchPolicy;
pub use models::{ModelInfo, ModelSpec};

/// What the server serves and its limits.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The models; the first answers the routes without a model name.
    pub models: Vec<ModelSpec>,
    /// Batching.
    pub batch: BatchPolicy,
    /// The largest request body, in bytes (413 above).
    pub max_body_bytes: usize,
    /// How long a request may take before it is answered 504.
    pub timeout: Duration,
}

impl ServeConfig {
    /// `models` with the default limits: batches of up to 16 images gathered for at most 5 ms,
    /// 64 requests queued per model, bodies up to 32 MiB, 30 s per request.
    pub fn new(models: Vec<ModelSpec>) -> Self {
        Self {
            models,
            batch: BatchPolicy {
                max_batch: 16,
                max_wait: Duration::from_millis(5),
                queue: 64,
            },
            max_body_bytes: 32 << 20,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `config` on `listener` until `shutdown` completes: the listener is bound (and
/// `/healthz` answers) at once, the models load in the background (`/readyz` says when they
/// are ready), and on shutdown the server stops accepting, finishes the requests in flight and
/// returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = Arc::new(routes::State {
        config: config.clone(),
        served: OnceLock::new(),
        metrics: Default::default(),
    });
    let loading = state.clone();
    tokio::task::spawn_blocking(move || routes::load_all(&loading));
    let app = routes::router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}
