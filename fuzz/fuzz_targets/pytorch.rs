//! torch.save zip archives: zip structure, pickle and storages together.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = inception::weights::pytorch::read_from(std::io::Cursor::new(data));
});
