#![no_main]
//! A TensorFlow tensor bundle's index (with the same bytes as its data shard) must give Ok or
//! Err: never a panic, a hang or an allocation the bytes do not justify.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = inception::weights::tf::read_bundle(data, &[data.to_vec()]);
});
