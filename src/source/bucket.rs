//! Bucket sources (`s3://<bucket>/<key>`, `gs://…`, `az://<container>/…`): their grammar,
//! canonical text and the `source.buckets` allow-list entries.
//!
//! Pure: no I/O and no clients; reading objects is `objects.rs`. A user names a bucket and a
//! key, never an endpoint: where buckets live is operator configuration (`source.bucket_*`).
//!
//! Rules worth knowing:
//! - `s3:/bucket/key` (the `//` collapsed by a proxy) is repaired like `https:/host/path`.
//! - The key is percent-decoded once (`my%20cat.jpg` names `my cat.jpg`); a `#` ends it, as in
//!   any URL. Empty segments, `.`, `..` and control characters are refused (400), so the key is
//!   the object's name exactly, with no normalisation that two spellings could disagree on.
//! - Bucket names are checked against the provider's rules (lowercase, 3–63 characters).
//! - The only query an `s3://` source takes is `versionId=<id>` (the object version read); it
//!   is part of the canonical text and so of the cache key. `gs://` and `az://` take no query.

use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use super::SourceError;

/// The object-store provider a bucket source names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketScheme {
    /// `s3://`: Amazon S3 or the S3-compatible `source.bucket_endpoint`.
    S3,
    /// `gs://`: Google Cloud Storage.
    Gs,
    /// `az://`: Azure Blob Storage (the name is a container).
    Az,
}

impl BucketScheme {
    fn from_name(scheme: &str) -> Option<BucketScheme> {
        match scheme.to_ascii_lowercase().as_str() {
            "s3" => Some(BucketScheme::S3),
            "gs" => Some(BucketScheme::Gs),
            "az" => Some(BucketScheme::Az),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BucketScheme::S3 => "s3",
            BucketScheme::Gs => "gs",
            BucketScheme::Az => "az",
        }
    }

    /// Whether `name` follows the provider's bucket (container) naming rules: 3–63 of
    /// `a-z 0-9 -`, plus `.` for S3 and GCS and `_` for GCS, starting and ending with a letter
    /// or digit. Dotted names that look like IPv4 addresses are refused as S3 does.
    fn valid_name(self, name: &str) -> bool {
        let bytes = name.as_bytes();
        let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
            return false;
        };
        let allowed = |b: u8| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || b == b'-'
                || (b == b'.' && self != BucketScheme::Az)
                || (b == b'_' && self == BucketScheme::Gs)
        };
        (3..=63).contains(&bytes.len())
            && first.is_ascii_alphanumeric()
            && last.is_ascii_alphanumeric()
            && bytes.iter().all(|&b| allowed(b))
            && !name.contains("..")
            && name.parse::<std::net::Ipv4Addr>().is_err()
    }
}

impl fmt::Display for BucketScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `source.buckets` entry: `s3://name`, `gs://name`, `az://name`, or a bare `name` (S3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BucketName {
    pub scheme: BucketScheme,
    pub name: String,
}

impl std::str::FromStr for BucketName {
    type Err = String;

    fn from_str(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let (scheme, name) = match entry.split_once("://") {
            Some((scheme, name)) => (
                BucketScheme::from_name(scheme)
                    .ok_or_else(|| format!("`{entry}`: only s3://, gs:// and az:// buckets"))?,
                name.strip_suffix('/').unwrap_or(name),
            ),
            None => (BucketScheme::S3, entry),
        };
        if !scheme.valid_name(name) {
            return Err(format!(
                "`{entry}` is not a {scheme} bucket name (3-63 lowercase letters, digits, `-`)"
            ));
        }
        Ok(BucketName {
            scheme,
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.name)
    }
}

/// One object in a bucket: a [`super::Source::Bucket`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BucketObject {
    pub bucket: BucketName,
    /// The object key, decoded: `a/my cat.jpg`.
    pub key: String,
    /// `?versionId=` of an `s3://` source: that version of the object is read.
    pub version: Option<String>,
}

/// Escaped in the canonical text so that it reads back unambiguously: `%` itself, `?` and `#`
/// (which would end the key), spaces and controls.
const KEY_ESCAPE: &AsciiSet = &CONTROLS.add(b' ').add(b'%').add(b'?').add(b'#');
/// The version id also escapes `&`, `=` and `+`, which would change the query's meaning.
const VERSION_ESCAPE: &AsciiSet = &KEY_ESCAPE.add(b'&').add(b'=').add(b'+').add(b'/');

/// The canonical text: `s3://bucket/key` with the key's `%`, `?`, `#`, spaces and controls
/// escaped, then `?versionId=<id>` when a version is named.
impl fmt::Display for BucketObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.bucket,
            utf8_percent_encode(&self.key, KEY_ESCAPE)
        )?;
        if let Some(v) = &self.version {
            write!(f, "?versionId={}", utf8_percent_encode(v, VERSION_ESCAPE))?;
        }
        Ok(())
    }
}

/// Whether `scheme` names a bucket source.
pub(super) fn is_bucket_scheme(scheme: &str) -> bool {
    BucketScheme::from_name(scheme).is_some()
}

/// Parse `s` (`s3://bucket/key?…`, URL text whose scheme [`is_bucket_scheme`]) plus the request
/// query.
pub(super) fn parse(s: &str, query: Option<&str>) -> Result<BucketObject, SourceError> {
    let bad = |why: &str| SourceError::BadSource(why.to_owned());
    let (scheme, rest) = s.split_once(':').ok_or_else(|| bad("not a bucket URL"))?;
    let scheme = BucketScheme::from_name(scheme).ok_or_else(|| bad("not a bucket URL"))?;
    // `s3:/bucket/key` is what a proxy that collapses `//` makes of `s3://bucket/key`.
    let rest = rest
        .strip_prefix("//")
        .or_else(|| rest.strip_prefix('/'))
        .ok_or_else(|| bad("expected s3://<bucket>/<key>"))?;
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (path, own_query) = match rest.split_once('?') {
        Some((path, q)) => (path, Some(q)),
        None => (rest, None),
    };
    let (name, key) = path
        .split_once('/')
        .ok_or_else(|| bad("expected s3://<bucket>/<key>"))?;
    if !scheme.valid_name(name) {
        return Err(bad("invalid bucket name"));
    }
    let key = percent_decode_str(key)
        .decode_utf8()
        .map_err(|_| bad("not UTF-8"))?
        .into_owned();
    if key.is_empty()
        || key
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        || key.chars().any(char::is_control)
    {
        return Err(bad("invalid object key"));
    }
    let mut version = None;
    let queries = [own_query, query].into_iter().flatten();
    for (k, v) in queries.flat_map(|q| url::form_urlencoded::parse(q.as_bytes())) {
        if scheme != BucketScheme::S3 || k != "versionId" {
            return Err(bad("a bucket source takes no query but s3's versionId"));
        }
        if version.is_some() || v.is_empty() || v.len() > 1024 || v.chars().any(char::is_control) {
            return Err(bad("invalid versionId"));
        }
        version = Some(v.into_owned());
    }
    Ok(BucketObject {
        bucket: BucketName {
            scheme,
            name: name.to_owned(),
        },
        key,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn canonical(s: &str, query: Option<&str>, expected: &str) {
        match parse(s, query) {
            Ok(o) => assert_eq!(o.to_string(), expected, "{s:?}"),
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    #[track_caller]
    fn refused(s: &str, query: Option<&str>) {
        assert!(
            matches!(parse(s, query), Err(SourceError::BadSource(_))),
            "{s:?} {query:?}"
        );
    }

    #[test]
    fn bucket_urls_have_one_canonical_text() {
        canonical("s3://photos/cat.jpg", None, "s3://photos/cat.jpg");
        canonical("gs://photos/a/b.png", None, "gs://photos/a/b.png");
        canonical(
            "s3://photos/cat.jpg",
            Some("versionId=3"),
            "s3://photos/cat.jpg?versionId=3",
        );
        refused("s3://photos/", None);
        refused("s3://photos/cat.jpg", Some("x=1"));
        refused("gs://photos/cat.jpg", Some("versionId=3"));
        refused("s3://photos/../etc/passwd", None);
    }

    #[test]
    fn bucket_names_follow_provider_rules() {
        for ok in [
            "s3://photos",
            "photos",
            "gs://my_bucket",
            "az://img-1",
            "s3://a.b-c",
        ] {
            assert!(ok.parse::<BucketName>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "Photos",
            "s3://my_bucket",
            "az://a.b.c",
            "-photos",
            "photos-",
            "a..b",
            "192.168.1.1",
            "ftp://photos",
            "x".repeat(64).as_str(),
        ] {
            assert!(bad.parse::<BucketName>().is_err(), "{bad}");
        }
        assert_eq!(
            "photos".parse::<BucketName>().map(|b| b.to_string()),
            Ok("s3://photos".into())
        );
    }
}
