//! Every `[compat]` dialect parser on arbitrary UTF-8 (the path rest, then an optional query
//! after the first NUL): no panic, and every accepted URL's `Transform` prints a canonical
//! native form that parses back to it, so a dialect can only ask for what `/img/` can.
#![no_main]

use std::collections::BTreeMap;

use imgcdn::compat::{cloudflare, imgproxy, ipx, nextjs, thumbor};
use imgcdn::options;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (rest, query) = match text.split_once('\0') {
        Some((rest, query)) => (rest, Some(query)),
        None => (text, None),
    };
    let keys = imgproxy::Keys::default();
    let presets = BTreeMap::from([("p".to_owned(), "rs:fill:10:10/q:50".to_owned())]);
    let results = [
        ipx::parse(rest, query),
        imgproxy::parse(rest, query, &keys, &presets, 1_700_000_000),
        thumbor::parse(rest, query, None),
        thumbor::parse(rest, query, Some(b"key".as_slice())),
        nextjs::parse(rest, query),
        cloudflare::parse(rest, query),
    ];
    for request in results.into_iter().flatten() {
        let t = request.transform;
        let canonical = t.to_string();
        assert_eq!(options::parse(&canonical), Ok(t), "{canonical:?} from {text:?}");
        assert!(!request.source.is_empty());
    }
});
