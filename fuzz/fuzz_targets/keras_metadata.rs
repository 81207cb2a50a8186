#![no_main]
//! A Keras SavedModel's `keras_metadata.pb` must give Ok or Err, and so must building a graph
//! from the config it holds: never a panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(cfg) = inception::weights::keras::saved_model::config_from_metadata(data) {
        let _ = inception::weights::keras::graph_from_config(&cfg);
    }
});
