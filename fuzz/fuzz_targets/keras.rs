//! Keras HDF5 / .keras files: our layer reading and config import (HDF5 parsing is the
//! hdf5-reader crate's).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(k) = inception::weights::keras::read_bytes(data.to_vec())
        && let Some(cfg) = &k.config
    {
        let _ = inception::weights::keras::graph_from_config(cfg);
    }
});
