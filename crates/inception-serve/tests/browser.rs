//! The web page in a real browser: headless Chromium, driven over the DevTools protocol, opens
//! the page, chooses a real photo through the page's file input, and the bars with the class
//! labels and probabilities appear, with the latency and the model's facts.
//!
//! `INCEPTION_SCREENSHOT=page.png` also saves a screenshot of the page with its answer.

mod common;

use std::time::Duration;

use common::{Server, images};
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions};

#[cfg_attr(
    not(has_chromium),
    ignore = "needs Chromium (Debian's `chromium`, or $CHROME); .ci/run installs it"
)]
#[test]
fn the_page_classifies_a_chosen_photo() {
    let server = Server::start(|_| {});
    let chrome = option_env!("INCEPTION_CHROME").map(std::path::PathBuf::from);
    let options = LaunchOptions::default_builder()
        .path(chrome)
        .headless(true)
        // CI runs as root, where Chromium refuses its sandbox.
        .sandbox(false)
        .window_size(Some((1200, 900)))
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let browser = Browser::new(options).unwrap();
    let tab = browser.new_tab().unwrap();
    tab.navigate_to(&format!("{}/", server.url))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    // The page lists the models (from /v1/models) and shows the first one's facts.
    tab.wait_for_element_with_custom_timeout("#model option", Duration::from_secs(30))
        .unwrap();
    let facts = tab
        .wait_for_element("#model-facts")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert!(
        facts.contains("3 classes") && facts.contains("M parameters"),
        "{facts}"
    );

    // Choose the photo as a user does through the file dialog.
    // An absolute path without `..` (Chromium cannot read the file otherwise).
    let photo = images().join("chelsea.png").canonicalize().unwrap();
    tab.wait_for_element("#file")
        .unwrap()
        .set_input_files(&[photo.to_str().unwrap()])
        .unwrap();
    if tab
        .wait_for_element_with_custom_timeout(".bar .label", Duration::from_secs(60))
        .is_err()
    {
        let state = tab
            .evaluate(
                "document.getElementById('file').files.length + ' file(s); status: ' + \
                 document.getElementById('status').textContent",
                false,
            )
            .unwrap()
            .value;
        panic!("no bars: {state:?}");
    }
    let labels: Vec<String> = tab
        .find_elements(".bar .label")
        .unwrap()
        .iter()
        .map(|e| e.get_inner_text().unwrap())
        .collect();
    let mut sorted = labels.clone();
    sorted.sort();
    assert_eq!(sorted, ["bird", "cat", "dog"], "{labels:?}");
    let percents: Vec<f64> = tab
        .find_elements(".bar .p")
        .unwrap()
        .iter()
        .map(|e| {
            e.get_inner_text()
                .unwrap()
                .trim_end_matches('%')
                .parse()
                .unwrap()
        })
        .collect();
    assert!(percents.windows(2).all(|w| w[0] >= w[1]), "{percents:?}");
    assert!(
        (percents.iter().sum::<f64>() - 100.0).abs() < 0.5,
        "{percents:?}"
    );
    let status = tab
        .wait_for_element("#status")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert!(status.contains("ms on the server"), "{status}");
    // The photo is shown, and the architecture diagram loaded.
    assert!(tab.find_elements("#drop img").unwrap().len() == 1);
    let diagram_ok = tab
        .evaluate(
            "document.getElementById('diagram-img').complete && \
             document.getElementById('diagram-img').naturalWidth > 0",
            false,
        )
        .unwrap()
        .value;
    assert_eq!(diagram_ok, Some(serde_json::Value::Bool(true)));

    if let Some(path) = std::env::var_os("INCEPTION_SCREENSHOT") {
        let png = tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
    server.stop();
}
