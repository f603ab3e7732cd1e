//! `options::parse` on arbitrary UTF-8; every accepted segment must round-trip through the
//! canonical `Display` form: `parse(&t.to_string()) == Ok(t)`.
#![no_main]

use imgcdn::options;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Request paths are UTF-8 by the time they reach `parse`; skip anything else.
    let Ok(segment) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = options::parse(segment) {
        let canonical = t.to_string();
        let again = options::parse(&canonical);
        assert_eq!(
            again,
            Ok(t.clone()),
            "canonical form {canonical:?} of {segment:?} does not re-parse to {t:?}"
        );
        // The canonical form is a fixed point.
        assert_eq!(again.unwrap().to_string(), canonical);
    }
});
