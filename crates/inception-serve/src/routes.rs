//! The routes, their errors as JSON, and the request metrics.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Multipart, Path, Query, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use inception::data::Preset;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;

use crate::ServeConfig;
use crate::batcher::{self, Answer, Job, Queue, Refused, Task};
use crate::metrics::Metrics;
use crate::models::{self, ModelInfo};

/// The web page: no external script, style or font.
const PAGE: &str = include_str!("page.html");

/// A model being served.
pub(crate) struct Served {
    info: ModelInfo,
    diagram: String,
    preset: Preset,
    queue: Queue,
}

/// Everything the handlers share.
pub(crate) struct State {
    pub(crate) config: ServeConfig,
    /// Set once loading ends: the models, or why they did not load.
    pub(crate) served: OnceLock<Result<Vec<Served>, String>>,
    pub(crate) metrics: Arc<Metrics>,
}

type Shared = Arc<State>;

/// Loads every model and starts its worker (on a blocking thread, at start-up).
pub(crate) fn load_all(state: &State) {
    let mut served = Vec::new();
    for spec in &state.config.models {
        match models::load(spec) {
            Ok(loaded) => served.push(Served {
                queue: batcher::start(
                    loaded.model,
                    state.config.batch,
                    state.metrics.clone(),
                    spec.name.clone(),
                ),
                info: loaded.info,
                diagram: loaded.diagram,
                preset: loaded.preset,
            }),
            Err(e) => {
                eprintln!("model {}: {e}", spec.name);
                let _ = state.served.set(Err(format!("model {}: {e}", spec.name)));
                return;
            }
        }
    }
    let _ = state.served.set(Ok(served));
}

pub(crate) fn router(state: Shared) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/models", get(list))
        // Each handler serves both spellings: without a `{name}` it answers for the first model.
        .route("/v1/model", get(info))
        .route("/v1/models/{name}", get(info))
        .route("/v1/model/diagram.svg", get(diagram))
        .route("/v1/models/{name}/diagram.svg", get(diagram))
        .route("/v1/classify", post(classify))
        .route("/v1/models/{name}/classify", post(classify))
        .route("/v1/features", post(features))
        .route("/v1/models/{name}/features", post(features))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// An error answer: `{"error": "...", "status": N}`.
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.message, "status": self.status.as_u16() });
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// Counts every answer by route and status, with its latency.
async fn record(
    axum::extract::State(state): axum::extract::State<Shared>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let start = Instant::now();
    let response = next.run(req).await;
    state.metrics.request(
        &route,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(json!({ "status": "ok" }))
}

async fn readyz(axum::extract::State(state): axum::extract::State<Shared>) -> Response {
    match state.served.get() {
        Some(Ok(_)) => axum::Json(json!({ "status": "ready" })).into_response(),
        Some(Err(e)) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.clone()).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "loading" })),
        )
            .into_response(),
    }
}

async fn metrics(axum::extract::State(state): axum::extract::State<Shared>) -> Response {
    let queues: Vec<(String, usize)> = match state.served.get() {
        Some(Ok(s)) => s
            .iter()
            .map(|m| (m.info.name.clone(), m.queue.depth()))
            .collect(),
        _ => Vec::new(),
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&queues),
    )
        .into_response()
}

/// The served models, or why there are none yet.
fn served(state: &State) -> Result<&[Served], ApiError> {
    match state.served.get() {
        Some(Ok(s)) => Ok(s),
        Some(Err(e)) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.clone())),
        None => Err(ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the models are still loading",
            )
        }),
    }
}

/// The model a route names, or the first one when it names none.
fn model<'a>(state: &'a State, name: &Name) -> Result<&'a Served, ApiError> {
    let all = served(state)?;
    match name.as_ref().map(|n| n.0.as_str()) {
        None => all
            .first()
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no model is served")),
        Some(n) => all.iter().find(|m| m.info.name == n).ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|m| m.info.name.as_str()).collect();
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no model named `{n}`; served: {}", names.join(", ")),
            )
        }),
    }
}

async fn list(axum::extract::State(state): axum::extract::State<Shared>) -> Response {
    match served(&state) {
        Ok(s) => axum::Json(s.iter().map(|m| m.info.clone()).collect::<Vec<_>>()).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The model's name from the route, when the route has one.
type Name = Option<Path<String>>;

async fn info(axum::extract::State(state): axum::extract::State<Shared>, name: Name) -> Response {
    match model(&state, &name) {
        Ok(m) => axum::Json(m.info.clone()).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn diagram(
    axum::extract::State(state): axum::extract::State<Shared>,
    name: Name,
) -> Response {
    match model(&state, &name) {
        Ok(m) => ([(header::CONTENT_TYPE, "image/svg+xml")], m.diagram.clone()).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct ClassifyParams {
    top: Option<usize>,
}

async fn classify(
    axum::extract::State(state): axum::extract::State<Shared>,
    name: Name,
    Query(q): Query<ClassifyParams>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let run = async {
        // The body is read first: a client is never cut off in the middle of sending it.
        let bytes = image_bytes(&state, req).await?;
        let m = model(&state, &name)?;
        let classes = m.info.classes.ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "model `{}` has no classifier (weights without their top); ask for \
                     /features",
                    m.info.name
                ),
            )
        })?;
        let top = q.top.unwrap_or(5.min(classes));
        if top == 0 || top > classes {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("top={top}: it must be between 1 and {classes}"),
            ));
        }
        let answer = infer(&state, m, bytes, Task::Classify { top }).await?;
        let Answer::Top(predictions) = answer else {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the model answered with features",
            ));
        };
        Ok(axum::Json(json!({
            "model": m.info.name,
            "predictions": predictions,
            "latency_ms": started.elapsed().as_secs_f64() * 1e3,
        }))
        .into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn features(
    axum::extract::State(state): axum::extract::State<Shared>,
    name: Name,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let run = async {
        let bytes = image_bytes(&state, req).await?;
        let m = model(&state, &name)?;
        let Answer::Vector(v) = infer(&state, m, bytes, Task::Features).await? else {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the model answered with classes",
            ));
        };
        let wants_npy = headers
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("application/x-npy") || a.contains("application/npy"));
        Ok(if wants_npy {
            ([(header::CONTENT_TYPE, "application/x-npy")], npy(&v)).into_response()
        } else {
            axum::Json(json!({ "model": m.info.name, "features": v })).into_response()
        })
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// A 1-d little-endian f32 `.npy` file (format 1.0).
fn npy(values: &[f32]) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
        values.len()
    );
    // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The image of a request: the raw body, or the first file of a multipart form.
async fn image_bytes(state: &Shared, req: Request) -> Result<Bytes, ApiError> {
    let rejected = |status: StatusCode, text: String| {
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "the body is over the limit of {} bytes",
                state.config.max_body_bytes
            )
        } else {
            text
        };
        ApiError::new(status, message)
    };
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let bytes = if multipart {
        let mut form = Multipart::from_request(req, state)
            .await
            .map_err(|e| rejected(e.status(), e.body_text()))?;
        loop {
            match form.next_field().await {
                Ok(Some(field)) if field.file_name().is_some() || field.name() == Some("image") => {
                    break field
                        .bytes()
                        .await
                        .map_err(|e| rejected(e.status(), e.body_text()))?;
                }
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "the form has no file (send the image as a file field, or as the body)",
                    ));
                }
                Err(e) => return Err(rejected(e.status(), e.body_text())),
            }
        }
    } else {
        Bytes::from_request(req, state)
            .await
            .map_err(|e| rejected(e.status(), e.body_text()))?
    };
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the request has no image (send its bytes as the body)",
        ));
    }
    Ok(bytes)
}

/// Decodes and preprocesses an image off the async threads, queues it for the
/// model and waits for the answer within the request timeout.
async fn infer(state: &Shared, m: &Served, bytes: Bytes, task: Task) -> Result<Answer, ApiError> {
    let deadline = state.config.timeout;
    let preset = m.preset.clone();
    let input = tokio::task::spawn_blocking(move || {
        inception::data::decode_bytes(&bytes).map(|img| preset.apply(&img))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the image: {e}")))?;
    let (reply, answer) = oneshot::channel();
    m.queue
        .submit(Job { input, task, reply })
        .map_err(|r| match r {
            Refused::Full => ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "model `{}` has {} requests waiting; retry later",
                        m.info.name, state.config.batch.queue
                    ),
                )
            },
            Refused::Stopped => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the model has stopped")
            }
        })?;
    match tokio::time::timeout(deadline, answer).await {
        Ok(Ok(Ok(a))) => Ok(a),
        Ok(Ok(Err(e))) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e)),
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the model dropped the request",
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!("no answer within {} s", deadline.as_secs_f64()),
        )),
    }
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route {} {}; see GET / for the page and the routes",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}
