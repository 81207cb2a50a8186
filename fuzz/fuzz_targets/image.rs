//! Image files (every format `classify`, `features`, `eval` and `train` decode): any bytes give
//! an image or an error, and a header claiming a huge size is refused before allocating.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = inception::data::decode_bytes(data);
});
