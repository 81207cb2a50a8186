//! The server on 127.0.0.1 with a real model file and real photos, through a real HTTP client:
//! every route, every error status, batching, overload and graceful shutdown.

mod common;

use std::time::{Duration, Instant};

use common::{Server, photo, probabilities};
use inception_serve::BatchPolicy;
use serde_json::Value;

#[test]
fn every_route_answers_and_every_error_is_json() {
    let server = Server::start(|c| c.max_body_bytes = 256 << 10);

    // Health, the model's description, its diagram, the page.
    assert_eq!(
        server.get("/healthz"),
        (200, serde_json::json!({"status": "ok"}))
    );
    let (status, info) = server.get("/v1/model");
    assert_eq!(status, 200);
    assert_eq!(info["name"], "pets");
    assert_eq!(info["input"], serde_json::json!([3, 64, 64]));
    assert_eq!(info["classes"], 3);
    assert_eq!(info["labels"], serde_json::json!(["cat", "dog", "bird"]));
    assert_eq!(info["feature_dim"], 1024);
    assert!(info["parameters"].as_u64().unwrap() > 5_000_000, "{info}");
    let (_, list) = server.get("/v1/models");
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(server.get("/v1/models/pets2").1["name"], "pets2");
    let (status, svg) = server.get("/v1/model/diagram.svg");
    assert_eq!(status, 200);
    assert!(svg.as_str().unwrap().starts_with("<svg"), "{svg}");
    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    let page = page.as_str().unwrap();
    assert!(
        page.contains("Drop an image") && !page.contains("http://") && !page.contains("https://")
    );

    // A real photo: three classes, most probable first, summing to one; `top` cuts the list.
    let cat = photo("chelsea.png");
    let (status, body, _) = server.post("/v1/classify", &cat);
    assert_eq!(status, 200, "{body}");
    let p = probabilities(&body);
    assert_eq!(p.len(), 3);
    assert!(p.windows(2).all(|w| w[0].1 >= w[1].1));
    assert!((p.iter().map(|x| x.1).sum::<f64>() - 1.0).abs() < 1e-5);
    assert!(body["latency_ms"].as_f64().unwrap() > 0.0);
    let (_, two, _) = server.post("/v1/models/pets2/classify?top=2", &cat);
    assert_eq!(probabilities(&two), p[..2].to_vec());
    // A JPEG as a multipart form's file, as a browser form sends it.
    let rocket = photo("rocket.jpg");
    let boundary = "XyZ0123";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"rocket.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(&rocket);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut r = Server::agent()
        .post(&format!("{}/v1/classify", server.url))
        .header(
            "content-type",
            &format!("multipart/form-data; boundary={boundary}"),
        )
        .send(&form[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let (_, raw, _) = server.post("/v1/classify", &rocket);
    assert_eq!(probabilities(&body), probabilities(&raw));

    // Features: JSON, or .npy by Accept.
    let (status, f, _) = server.post("/v1/features", &cat);
    assert_eq!(status, 200);
    let v: Vec<f64> = f["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(v.len(), 1024);
    let mut r = Server::agent()
        .post(&format!("{}/v1/features", server.url))
        .header("accept", "application/x-npy")
        .send(&cat[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let npy = r.body_mut().read_to_vec().unwrap();
    let arr = inception::files::parse_npy(&npy).unwrap();
    assert_eq!(arr.shape, vec![1024]);
    for (a, b) in arr.data.iter().zip(&v) {
        assert!((*a as f64 - b).abs() <= 1e-6 * b.abs().max(1.0));
    }

    // Errors: JSON bodies with the status.
    let error = |(status, body, _): (u16, Value, Option<String>)| {
        assert_eq!(body["status"], status, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
        (status, body["error"].as_str().unwrap().to_string())
    };
    let (s, e) = error(server.post("/v1/classify", b"not an image at all"));
    assert_eq!(s, 400, "{e}");
    assert_eq!(error(server.post("/v1/classify", b"")).0, 400);
    assert_eq!(error(server.post("/v1/classify?top=0", &cat)).0, 400);
    let (s, e) = error(server.post("/v1/classify?top=4", &cat));
    assert_eq!(s, 400);
    assert!(e.contains("between 1 and 3"), "{e}");
    // A PNG whose header claims 100000 x 100000 pixels: refused from its header.
    let bomb = common::shared::png_header(100_000, 100_000);
    let (s, e) = error(server.post("/v1/classify", &bomb));
    assert_eq!(s, 400, "{e}");
    // A body over the limit.
    let (s, e) = error(server.post("/v1/classify", &vec![0u8; 300 << 10]));
    assert_eq!(s, 413, "{e}");
    assert!(e.contains("limit"), "{e}");
    let (s, e) = error(server.post("/v1/models/nope/classify", &cat));
    assert_eq!(s, 404);
    assert!(e.contains("pets, pets2"), "{e}");
    let (status, body) = server.get("/v2/nothing");
    assert_eq!((status, body["status"].as_u64()), (404, Some(404)));
    let (status, body) = server.get("/v1/classify");
    assert_eq!((status, body["status"].as_u64()), (405, Some(405)));

    // Metrics: Prometheus text with what happened above.
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    let text = text.as_str().unwrap().to_string();
    assert!(
        text.contains("inception_requests_total{route=\"/v1/classify\",status=\"200\"}"),
        "{text}"
    );
    assert!(text.contains("status=\"413\""), "{text}");
    assert!(text.contains("inception_request_duration_seconds_bucket{le=\"+Inf\"}"));
    assert!(text.contains("inception_queue_depth{model=\"pets\"} 0"));
    assert!(text.contains("inception_errors_total{kind=\"client\"}"));
    server.stop();
}

#[test]
fn concurrent_requests_are_batched_and_answered_as_alone() {
    let server = Server::start(|c| {
        c.batch = BatchPolicy {
            max_batch: 8,
            max_wait: Duration::from_millis(200),
            queue: 64,
        }
    });
    let photos = ["chelsea.png", "rocket.jpg", "camera.png"];
    let alone: Vec<Vec<(String, f64)>> = photos
        .iter()
        .map(|p| probabilities(&server.post("/v1/classify", &photo(p)).1))
        .collect();
    let n = 12;
    let answers: Vec<(usize, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let server = &server;
                s.spawn(move || {
                    let (status, body, _) =
                        server.post("/v1/classify", &photo(photos[i % photos.len()]));
                    assert_eq!(status, 200, "{body}");
                    (i, body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(answers.len(), n, "a request was lost");
    for (i, body) in answers {
        let got = probabilities(&body);
        let want = &alone[i % photos.len()];
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.0, w.0);
            assert!((g.1 - w.1).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }
    // Every image went through the model once; at least one batch held several.
    let (_, text) = server.get("/metrics");
    let text = text.as_str().unwrap().to_string();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap()
    };
    // The three requests alone and the concurrent ones (the warm-up runs outside the queue).
    assert_eq!(value("inception_batch_size_sum"), (n + photos.len()) as f64);
    assert!(
        value("inception_batch_size_count") < (n + photos.len()) as f64,
        "{text}"
    );
    server.stop();
}

#[test]
fn overload_gets_503_with_retry_after_and_timeouts_504() {
    // One request at a time, one waiting: a burst must see 503s, never a hang or a crash.
    let server = Server::start(|c| {
        c.batch = BatchPolicy {
            max_batch: 1,
            max_wait: Duration::ZERO,
            queue: 1,
        }
    });
    let cat = photo("chelsea.png");
    let statuses: Vec<(u16, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (server, cat) = (&server, &cat);
                s.spawn(move || {
                    let (status, _, retry) = server.post("/v1/classify", cat);
                    (status, retry)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|s| s.0 == 200).count();
    let busy: Vec<_> = statuses.iter().filter(|s| s.0 == 503).collect();
    assert_eq!(ok + busy.len(), 16, "{statuses:?}");
    assert!(ok >= 1 && !busy.is_empty(), "{statuses:?}");
    assert!(
        busy.iter().all(|s| s.1.as_deref() == Some("1")),
        "{statuses:?}"
    );
    // Still serving afterwards.
    assert_eq!(server.post("/v1/classify", &cat).0, 200);
    server.stop();

    // A request over its time is answered 504.
    let server = Server::start(|c| c.timeout = Duration::from_micros(1));
    let (status, body, _) = server.post("/v1/classify", &cat);
    assert_eq!(status, 504, "{body}");
    server.stop();
}

#[test]
fn shutdown_answers_the_requests_in_flight() {
    let server = Server::start(|c| {
        c.batch = BatchPolicy {
            max_batch: 4,
            max_wait: Duration::from_millis(500),
            queue: 8,
        }
    });
    let cat = photo("chelsea.png");
    let url = server.url.clone();
    // A request waits in a batch for 500 ms; shutdown comes meanwhile; it is still answered.
    let in_flight = std::thread::spawn(move || {
        let mut r = Server::agent()
            .post(&format!("{url}/v1/classify"))
            .send(&cat[..])
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    });
    std::thread::sleep(Duration::from_millis(150));
    let url = server.url.clone();
    server.stop();
    let (status, body) = in_flight.join().unwrap();
    assert_eq!(status, 200, "{body}");
    // And nothing listens any more.
    assert!(
        Server::agent()
            .get(&format!("{url}/healthz"))
            .call()
            .is_err()
    );
}

#[test]
fn a_bounded_load_test_loses_nothing() {
    // 6 clients x 10 requests on loopback, real photos: every request answered 200, none lost;
    // the latency percentiles and throughput are reported (not asserted: machines differ).
    let server = Server::start(|_| {});
    let (clients, each) = (6, 10);
    let photos: Vec<Vec<u8>> = ["chelsea.png", "rocket.jpg", "camera.png"]
        .iter()
        .map(|p| photo(p))
        .collect();
    let start = Instant::now();
    let mut latencies: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (server, photos) = (&server, &photos);
                s.spawn(move || {
                    (0..each)
                        .map(|i| {
                            let t = Instant::now();
                            let (status, body, _) =
                                server.post("/v1/classify", &photos[(c + i) % photos.len()]);
                            assert_eq!(status, 200, "{body}");
                            assert_eq!(body["predictions"].as_array().unwrap().len(), 3);
                            t.elapsed().as_secs_f64()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(latencies.len(), clients * each, "a request was lost");
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize] * 1e3;
    eprintln!(
        "load: {} requests from {clients} clients in {wall:.2} s: {:.1} requests/s, p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        latencies.len() as f64 / wall,
        pct(0.5),
        pct(0.99)
    );
    let (_, text) = server.get("/metrics");
    let text = text.as_str().unwrap().to_string();
    assert!(
        text.contains(&format!(
            "inception_requests_total{{route=\"/v1/classify\",status=\"200\"}} {}",
            clients * each
        )),
        "{text}"
    );
    server.stop();
}
