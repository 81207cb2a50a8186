//! `inception serve` as a user runs it: the real binary on 127.0.0.1, a real photo over HTTP,
//! then SIGINT or SIGTERM: it answers, stops accepting, and exits 0.

#[path = "../../inception/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inception::data::Preset;

/// One HTTP/1.1 request; the status and the body.
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
    (status, body.to_string())
}

#[cfg(unix)]
#[test]
fn serve_classifies_a_photo_and_stops_on_sigint_or_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let file = common::pets_model(tmp.path(), &Preset::torchvision(64));

    let photo = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../inception/tests/data/images/chelsea.png"),
    )
    .unwrap();
    // Ctrl-C sends SIGINT; a service manager sends SIGTERM: each ends in exit 0.
    for signal in ["-INT", "-TERM"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_inception"))
            .args(["serve", "--addr", "127.0.0.1:0", "--weights"])
            .arg(format!("pets={}", file.display()))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        // "serving pets on http://127.0.0.1:PORT/ (…)"
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        let t = Instant::now();
        while http(&addr, "GET", "/readyz", b"").0 != 200 {
            assert!(t.elapsed() < Duration::from_secs(120), "never ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let (status, body) = http(&addr, "POST", "/v1/models/pets/classify?top=2", &photo);
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["predictions"].as_array().unwrap().len(), 2);

        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = child.wait().unwrap();
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).unwrap();
        assert!(status.success(), "{signal}: {status:?}: {rest}");
        assert!(rest.contains("stopped"), "{rest}");
        assert!(TcpStream::connect(&addr).is_err(), "still listening");
    }
}

#[test]
fn serve_refuses_bad_limits_in_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_inception"))
        .args(["serve", "--weights", "x.pth", "--timeout", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--timeout"), "{err}");
}
