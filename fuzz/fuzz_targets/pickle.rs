//! The restricted unpickler must return Ok or Err for any bytes: never panic, hang or blow up.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = inception::weights::pickle::unpickle(data);
});
