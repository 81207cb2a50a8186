//! safetensors headers and payloads.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = inception::weights::safetensors::read_bytes(data);
});
