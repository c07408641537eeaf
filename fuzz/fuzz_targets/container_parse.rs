#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| isec_core::fuzzing::container_parse(data));
