//! What the server tests share: a model file, the photos, a server on 127.0.0.1 and an HTTP
//! client that reads error statuses as answers.
#![allow(dead_code)]

#[path = "../../../inception/tests/common/mod.rs"]
pub mod shared;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use inception::data::Preset;
use inception_serve::{ModelSpec, ServeConfig};
use serde_json::Value;

pub fn images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../inception/tests/data/images")
}

pub fn photo(name: &str) -> Vec<u8> {
    std::fs::read(images().join(name)).unwrap()
}

/// A GoogLeNet at 64x64 with three named classes, random weights, saved as safetensors.
pub fn model_file(dir: &Path) -> PathBuf {
    shared::pets_model(dir, &Preset::torchvision(64))
}

pub struct Server {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start(adjust: impl FnOnce(&mut ServeConfig)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let file = model_file(dir.path());
        let mut config = ServeConfig::new(vec![
            ModelSpec {
                name: "pets".into(),
                weights: file.to_string_lossy().into_owned(),
                options: Default::default(),
            },
            ModelSpec {
                name: "pets2".into(),
                weights: file.to_string_lossy().into_owned(),
                options: Default::default(),
            },
        ]);
        adjust(&mut config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                addr_tx.send(listener.local_addr()?).unwrap();
                inception_serve::serve(listener, config, async {
                    let _ = stopped.await;
                })
                .await
            })
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        let server = Server {
            url: format!("http://{addr}"),
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        };
        // Ready once the weights are loaded and warmed up.
        let t = Instant::now();
        loop {
            let (status, body) = server.get("/readyz");
            if status == 200 {
                assert_eq!(body["status"], "ready");
                break;
            }
            assert_eq!(status, 503, "{body}");
            assert!(t.elapsed() < Duration::from_secs(120), "never ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into()
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let mut r = Self::agent()
            .get(&format!("{}{path}", self.url))
            .call()
            .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn post(&self, path: &str, body: &[u8]) -> (u16, Value, Option<String>) {
        let mut r = Self::agent()
            .post(&format!("{}{path}", self.url))
            .header("content-type", "application/octet-stream")
            .send(body)
            .unwrap();
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let text = r.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            retry,
        )
    }

    /// Stops the server as SIGINT would, and waits for `serve` to return.
    pub fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap().unwrap();
    }
}

pub fn probabilities(body: &Value) -> Vec<(String, f64)> {
    body["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["label"].as_str().unwrap().to_string(),
                p["probability"].as_f64().unwrap(),
            )
        })
        .collect()
}
