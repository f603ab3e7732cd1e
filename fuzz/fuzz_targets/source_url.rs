//! `source::parse` on arbitrary UTF-8, split at the first `?` into path rest and query, against
//! a folder base and a URL base. Local results must be relative with no `..` (or root/prefix)
//! component; remote results must be http(s) with no credentials; bucket results must have a
//! clean key and a canonical text that parses back to them.
#![no_main]

use std::path::{Component, PathBuf};
use std::sync::OnceLock;

use imgcdn::source::{self, Base, Source};
use libfuzzer_sys::fuzz_target;
use url::Url;

fn bases() -> &'static [Base; 2] {
    static BASES: OnceLock<[Base; 2]> = OnceLock::new();
    BASES.get_or_init(|| {
        [
            Base::Dir(PathBuf::from("/srv/images")),
            Base::Url(Url::parse("http://origin.test/base/").unwrap()),
        ]
    })
}

fn check(input: &str, base: &Base, result: Result<Source, source::SourceError>) {
    match result {
        Ok(Source::Local(p)) => {
            assert!(
                matches!(base, Base::Dir(_)),
                "Local source {p:?} from {input:?} with a URL base"
            );
            assert!(p.is_relative(), "Local source {p:?} from {input:?} is not relative");
            for c in p.components() {
                assert!(
                    matches!(c, Component::Normal(_)),
                    "Local source {p:?} from {input:?} has component {c:?}"
                );
                let s = c.as_os_str().to_string_lossy();
                assert!(
                    !s.contains('\0') && !s.contains('\\'),
                    "Local source {p:?} from {input:?} has NUL or backslash"
                );
            }
        }
        Ok(Source::Remote(u)) => {
            assert!(
                matches!(u.scheme(), "http" | "https"),
                "Remote source {u} from {input:?} has scheme {}",
                u.scheme()
            );
            assert!(
                u.username().is_empty() && u.password().is_none(),
                "Remote source {u} from {input:?} carries credentials"
            );
            assert!(
                u.host_str().is_some_and(|h| !h.is_empty()),
                "Remote source {u} from {input:?} has no host"
            );
            assert!(u.fragment().is_none(), "Remote source {u} from {input:?} has a fragment");
        }
        Ok(Source::Bucket(o)) => {
            assert!(
                o.key
                    .split('/')
                    .all(|seg| !seg.is_empty() && seg != "." && seg != ".."),
                "Bucket source {o} from {input:?} has an empty, . or .. key segment"
            );
            assert!(
                !o.key.chars().any(char::is_control),
                "Bucket source {o} from {input:?} has a control character"
            );
            // The canonical text is the cache-key text: it must read back as the same object.
            let again = source::parse(&o.to_string(), None, base);
            assert!(
                again.as_ref().ok() == Some(&Source::Bucket(o.clone())),
                "Bucket source {o} from {input:?} reads back as {again:?}"
            );
        }
        Err(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (rest, query) = match input.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (input, None),
    };
    for base in bases() {
        let result = source::parse(rest, query, base);
        check(input, base, result);
    }
});
