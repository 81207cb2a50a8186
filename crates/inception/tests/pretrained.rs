//! The download cache against a local HTTP server on 127.0.0.1 (tests never use the internet):
//! good files land verified; bad checksums, 404s, truncated and interrupted downloads fail with
//! a clear message and leave nothing behind; a TF-Hub download lands and reads as its folder.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use inception::models::Arch;
use inception::pretrained::{self, Cache, Checksum, DownloadProgress, Pretrained};
use sha2::{Digest, Sha256};

const BODY: &[u8] = b"pretend these are weights: 0123456789abcdef 0123456789abcdef";

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Serves a few fixed routes; returns the base URL and a request counter.
fn server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = handle(stream);
        }
    });
    (base, hits)
}

/// The request line of the request on `stream`, its headers read past.
fn read_request(stream: &TcpStream) -> std::io::Result<String> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    Ok(request)
}

fn handle(mut stream: TcpStream) -> std::io::Result<()> {
    let request = read_request(&stream)?;
    let mut parts = request.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    let head = method == "HEAD";
    let ok = |extra: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
            BODY.len()
        )
    };
    match path {
        "/ok.bin" => {
            stream.write_all(ok("").as_bytes())?;
            if !head {
                stream.write_all(BODY)?;
            }
        }
        "/hub/model.safetensors" => {
            let resp = format!(
                "HTTP/1.1 302 Found\r\nLocation: /ok.bin\r\nX-Linked-Etag: \"{}\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                sha256_hex(BODY)
            );
            stream.write_all(resp.as_bytes())?;
        }
        "/truncated.bin" => {
            stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n",
            )?;
            stream.write_all(&BODY[..10])?;
        }
        "/interrupted.bin" => {
            // A chunked body whose connection drops before the last chunk.
            stream.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            )?;
            stream.write_all(b"10\r\n0123456789abcdef\r\n")?;
        }
        _ => {
            stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
            )?;
        }
    }
    stream.flush()?;
    Ok(())
}

fn entry(url: String, checksum: Checksum) -> Pretrained {
    let mut e = pretrained::find("googlenet").unwrap();
    e.url = url;
    e.file_name = "weights.bin".into();
    e.checksum = checksum;
    e
}

/// Files in the cache directory (temporary ones included).
fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn verified_download_lands_once() {
    let (base, hits) = server();
    let tmp = tempfile::tempdir().unwrap();
    // Progress reaches the caller's callback; the library draws nothing itself.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let cache = Cache::at(tmp.path().join("cache")).with_progress(std::sync::Arc::new(
        move |p: &inception::pretrained::DownloadProgress| {
            record
                .lock()
                .unwrap()
                .push((p.received, p.sha256.map(str::to_string)));
        },
    ));
    for checksum in [
        Checksum::Sha256(sha256_hex(BODY)),
        Checksum::Sha256Prefix(sha256_hex(BODY)[..8].to_string()),
    ] {
        let e = entry(format!("{base}/ok.bin"), checksum);
        let path = cache.fetch(&e).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), BODY);
        let last = seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(last, (BODY.len() as u64, Some(sha256_hex(BODY))));
        let before = hits.load(Ordering::SeqCst);
        cache.fetch(&e).unwrap();
        assert_eq!(
            hits.load(Ordering::SeqCst),
            before,
            "second fetch must not download"
        );
        std::fs::remove_file(path).unwrap();
    }
    // Keras's MD5, and the hub's SHA-256 ETag behind a redirect.
    let md5: String = md5::Md5::digest(BODY)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    cache
        .fetch(&entry(format!("{base}/ok.bin"), Checksum::Md5(md5)))
        .unwrap();
    std::fs::remove_file(cache.dir.join("weights.bin")).unwrap();
    let e = entry(format!("{base}/hub/model.safetensors"), Checksum::HubEtag);
    assert_eq!(std::fs::read(cache.fetch(&e).unwrap()).unwrap(), BODY);
}

#[test]
fn failed_downloads_leave_nothing_behind() {
    let (base, _) = server();
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::at(tmp.path());
    let cases = [
        (
            "/ok.bin",
            Checksum::Sha256Prefix("deadbeef".into()),
            "checksum mismatch",
        ),
        ("/missing.bin", Checksum::Unpublished, "404"),
        ("/truncated.bin", Checksum::Unpublished, "bytes"),
        ("/interrupted.bin", Checksum::Unpublished, "interrupted"),
    ];
    for (path, checksum, needle) in cases {
        let e = entry(format!("{base}{path}"), checksum);
        let err = cache.fetch(&e).unwrap_err().to_string();
        assert!(err.contains(needle), "{path}: {err}");
        assert!(!err.contains('\n'), "{err}");
        assert!(
            listing(tmp.path()).is_empty(),
            "{path}: {:?}",
            listing(tmp.path())
        );
    }
}

#[test]
fn offline_says_where_to_put_the_file() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::at(tmp.path());
    let e = entry(
        format!("http://127.0.0.1:{port}/x.pth"),
        Checksum::Unpublished,
    );
    let err = cache.fetch(&e).unwrap_err().to_string();
    assert!(
        err.contains("put it at")
            && err.contains(&*tmp.path().join("weights.bin").to_string_lossy()),
        "{err}"
    );
}

#[test]
fn registry_covers_the_published_checkpoints() {
    let all = pretrained::registry();
    for name in [
        "googlenet.torchvision",
        "inception_v3.torchvision",
        "inception_v3.keras",
        "inception_v3.keras_notop",
        "inception_v3.tv_in1k",
        "inception_v3.tf_in1k",
        "googlenet.onnx_zoo",
        "inception_v4.tf_in1k",
        "inception_resnet_v2.tf_in1k",
        "inception_resnet_v2.keras",
        "inception_resnet_v2.keras_notop",
    ] {
        assert!(all.iter().any(|e| e.name == name), "{name}");
    }
    // The rest of the family: timm's ports are the defaults of v4 and Inception-ResNet-v2
    // (the Hugging Face hub's SHA-256, timm's preprocessing); Keras's files carry the MD5
    // keras.applications checks.
    for arch in [Arch::InceptionV4, Arch::InceptionResNetV2] {
        let e = pretrained::default_for(arch, true).unwrap();
        assert_eq!((e.arch, &e.checksum), (arch, &Checksum::HubEtag));
        assert!(
            e.url.starts_with("https://huggingface.co/timm/"),
            "{}",
            e.url
        );
        assert_eq!(e.preprocessing.name(), "timm");
    }
    let k = pretrained::find("inception_resnet_v2.keras").unwrap();
    assert_eq!(
        k.checksum,
        Checksum::Md5("e693bd0210a403b3192acc6073ad2e96".into())
    );
    assert!(
        !pretrained::find("inception_resnet_v2.keras_notop")
            .unwrap()
            .include_top
    );
    // TF-slim's own tarballs: no published checksum, TF-slim's preprocessing, 1001 labels; the
    // defaults of TF-slim's v1, v2 and v3 layouts.
    for (arch, name) in [
        (Arch::InceptionV1Slim, "inception_v1.tf_slim"),
        (Arch::InceptionV2, "inception_v2.tf_slim"),
        (Arch::InceptionV3Slim, "inception_v3.tf_slim"),
    ] {
        let e = pretrained::default_for(arch, true).unwrap();
        assert_eq!(
            (e.name.as_str(), &e.checksum),
            (name, &Checksum::Unpublished)
        );
        assert_eq!(e.preprocessing.name(), "tf-slim");
        assert!(e.url.ends_with(".tar.gz"), "{}", e.url);
    }
    for name in ["inception_v4.tf_slim", "inception_resnet_v2.tf_slim"] {
        assert!(all.iter().any(|e| e.name == name), "{name}");
    }
    // TF-Hub's SavedModels: compressed downloads, [0, 1] RGB resized without a crop.
    let hub = pretrained::find("inception_v3.tfhub_feature_vector").unwrap();
    assert!(
        hub.url
            .ends_with("inception_v3/feature_vector/5?tf-hub-format=compressed")
    );
    assert!(!hub.include_top && hub.file_name.ends_with(".tar.gz"));
    assert_eq!(hub.preprocessing.name(), "keras");
    assert!(
        pretrained::find("inception_resnet_v2.tfhub_classification")
            .unwrap()
            .include_top
    );
    // torchvision's published GoogLeNet and Inception v3 need transform_input; the hash
    // prefix is the one in the file name, as torchvision checks it.
    let g = pretrained::find("googlenet").unwrap();
    assert!(g.transform_input);
    assert_eq!(g.checksum, Checksum::Sha256Prefix("1378be20".into()));
    assert!(
        pretrained::find("inception-v3")
            .unwrap()
            .url
            .ends_with("inception_v3_google-0cc3c7bd.pth")
    );
    assert!(
        !pretrained::default_for(Arch::InceptionV3Keras, false)
            .unwrap()
            .include_top
    );
    assert!(pretrained::find("resnet50").is_err());
    // Names are unique, and so are cache file names.
    let mut names: Vec<&str> = all.iter().map(|e| e.file_name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all.len());
}

#[test]
fn weights_resolve_to_one_model_source_everywhere() {
    use inception::predict::{LoadOptions, resolve_weights};
    use inception::weights::ModelSource;
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::at(tmp.path().join("cache"));
    let options = |model: ModelSource| LoadOptions {
        model,
        cache: Some(cache.clone()),
        ..Default::default()
    };
    // A published file recognised by its name brings its architecture and transform_input;
    // an architecture the caller names for a file wins.
    let published = tmp.path().join("googlenet-1378be20.pth");
    std::fs::write(&published, b"").unwrap();
    let spec = published.to_str().unwrap();
    let r = resolve_weights(spec, &options(ModelSource::Auto)).unwrap();
    assert!(r.recognised_file && r.transform_input);
    assert!(matches!(r.model, ModelSource::Arch(Arch::GoogLeNet)));
    let r = resolve_weights(spec, &options(ModelSource::Arch(Arch::GoogLeNetBvlc))).unwrap();
    assert!(matches!(r.model, ModelSource::Arch(Arch::GoogLeNetBvlc)));
    // Any other file: the caller's choice, nothing recognised.
    let plain = tmp.path().join("mine.pth");
    std::fs::write(&plain, b"").unwrap();
    let r = resolve_weights(plain.to_str().unwrap(), &options(ModelSource::Auto)).unwrap();
    assert!(!r.recognised_file && r.entry.is_none() && !r.transform_input);
    assert!(matches!(r.model, ModelSource::Auto));
    // A registry name fixes its architecture; an ONNX graph always brings its own.
    for (name, arch) in [
        ("googlenet.onnx_zoo", None),
        ("inception_v3.keras", Some(Arch::InceptionV3Keras)),
    ] {
        let entry = pretrained::find(name).unwrap();
        let path = cache.path(&entry);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"").unwrap();
        let r = resolve_weights(name, &options(ModelSource::Arch(Arch::GoogLeNet))).unwrap();
        assert_eq!(r.path, path);
        match arch {
            None => assert!(matches!(r.model, ModelSource::Auto), "{name}"),
            Some(a) => assert!(matches!(r.model, ModelSource::Arch(x) if x == a), "{name}"),
        }
    }
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn a_tf_hub_download_lands_and_reads_as_its_folder() {
    // TF-Hub's compressed download (`?tf-hub-format=compressed`: the SavedModel folder as a
    // .tar.gz, no published checksum), served from 127.0.0.1: it lands in the cache with its
    // SHA-256 reported, and reads from there as the folder itself does.
    let dir = common::fixtures().join("tf/hub_inception_v3_dm025_feature_vector");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut tar = tar::Builder::new(&mut gz);
        tar.append_dir_all(".", &dir).unwrap();
        tar.finish().unwrap();
    }
    let bytes = gz.finish().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/google/imagenet/inception_v3/feature_vector/5?tf-hub-format=compressed",
        listener.local_addr().unwrap()
    );
    let body = bytes.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = read_request(&stream);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    let mut e = pretrained::find("inception_v3.tfhub_feature_vector").unwrap();
    assert!(matches!(e.checksum, Checksum::Unpublished));
    e.url = url;
    let tmp = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let cache =
        Cache::at(tmp.path().join("cache")).with_progress(Arc::new(move |p: &DownloadProgress| {
            if let Some(s) = p.sha256 {
                *record.lock().unwrap() = Some(s.to_string());
            }
        }));
    let path = cache.fetch(&e).unwrap();
    assert_eq!(seen.lock().unwrap().clone(), Some(sha256_hex(&bytes)));
    let from_cache = inception::weights::tf::read(&path).unwrap();
    let from_dir = inception::weights::tf::read(&dir).unwrap();
    assert_eq!(from_cache.len(), from_dir.len());
    for (name, t) in from_dir.iter() {
        assert_eq!(from_cache.get(name).unwrap().data, t.data, "{name}");
    }
}
