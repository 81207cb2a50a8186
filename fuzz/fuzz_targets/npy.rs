//! .npy input arrays.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = inception::files::parse_npy(data);
});
