#![no_main]
//! A legacy V1 TensorFlow checkpoint must give Ok or Err: never a panic or a hang.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = inception::weights::tf::read_v1(data);
});
