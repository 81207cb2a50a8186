#![no_main]
//! A `saved_model.pb` must give its variables or an error: never a panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = inception::weights::tf::saved_variables(data);
});
