#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sandbot::fuzz::json_path(data));
