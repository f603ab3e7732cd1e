//! Signed URLs: `/img/s_<SIG>/<options>/<source>`, where `SIG` is the unpadded base64url of
//! HMAC-SHA256(key, M) and M is the path and query after the signature segment, starting with
//! `/` (for `/img/s_X/w_300/https://a.com/p.jpg?v=1`, M = `/w_300/https://a.com/p.jpg?v=1`).
//!
//! The first key signs; every key verifies, so keys can be rotated. Verification is constant
//! time (HMAC `verify_slice`). A proxy on the way may collapse `://` to `:/`; such a URL verifies
//! as the original did, because the collapsed form is restored before verifying. The MAC covers
//! exactly the bytes that are then parsed: nothing is normalised between verifying and using.
//! Pure: no I/O.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The prefix of the signature segment.
pub const PREFIX: &str = "s_";

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], message: &str) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(message.as_bytes());
    Some(mac)
}

/// The signature of `message` with `key`.
pub fn sign(key: &str, message: &str) -> String {
    mac(key.as_bytes(), message)
        .map(|m| URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// True when `signature` is the signature of `message`, or of `message` with collapsed `:/`
/// restored, under any of `keys`.
pub fn verify(keys: &[String], signature: &str, message: &str) -> bool {
    let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    let restored = restore_collapsed(message);
    let candidates = std::iter::once(message).chain(restored.as_deref());
    let mut ok = false;
    for candidate in candidates {
        for key in keys {
            // Check every key so the time taken does not say which one matched.
            if let Some(m) = mac(key.as_bytes(), candidate) {
                ok |= m.verify_slice(&given).is_ok();
            }
        }
    }
    ok
}

/// `/w_300/https:/a.com/x` → `/w_300/https://a.com/x`: undo the `//` → `/` collapse some proxies
/// apply to the source URL's scheme, which is the first path segment that reads `http:`,
/// `https:` or a bucket scheme (`s3:`, `gs:`, `az:`). Only that one is restored, and never in
/// the query: a signature must not also
/// cover URLs that differ elsewhere (`?u=/https:/b` and `?u=/https://b` are different
/// sources). `None` when there is nothing to restore.
pub fn restore_collapsed(message: &str) -> Option<String> {
    let path_end = message.find('?').unwrap_or(message.len());
    let path = &message[..path_end];
    let mut from = 0;
    while let Some(i) = path[from..].find(":/").map(|i| i + from) {
        let head = &path[..i];
        let segment = head.rfind('/').map_or(head, |j| &head[j + 1..]);
        let is_scheme = ["http", "https", "s3", "gs", "az"]
            .iter()
            .any(|s| segment.eq_ignore_ascii_case(s));
        // The source starts at the second segment, after the options: `/w_300/https:/…`.
        // A scheme further on belongs to a relative path, whose slashes are its own.
        if is_scheme && head.matches('/').count() != 2 {
            return None;
        }
        if is_scheme {
            if message[i + 2..].starts_with('/') {
                // The source's scheme is intact: nothing was collapsed.
                return None;
            }
            return Some(format!("{}://{}", &message[..i], &message[i + 2..]));
        }
        from = i + 2;
    }
    None
}

/// Sign a path for `imgcdn sign`: `/img/w_300/x.jpg?v=1` (or `/w_300/x.jpg?v=1`) becomes
/// `/img/s_<SIG>/w_300/x.jpg?v=1`. An existing signature segment is replaced.
pub fn sign_path(key: &str, path: &str) -> String {
    let message = path
        .strip_prefix("/img")
        .filter(|m| m.starts_with('/'))
        .unwrap_or(path);
    let message = if message.starts_with('/') {
        message.to_owned()
    } else {
        format!("/{message}")
    };
    let message = match message[1..].split_once('/') {
        Some((first, rest)) if first.starts_with(PREFIX) => format!("/{rest}"),
        _ => message,
    };
    format!("/img/{PREFIX}{}{message}", sign(key, &message))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "/w_300/https://a.com/p.jpg?v=1";
    /// Computed independently: Python `hmac.new(b"secret-key", M, hashlib.sha256)`, base64url.
    const SIG: &str = "mlmzHReUt_HIZpVa5d1l-UJI3tgi076KsDgXbQ1HiV4";

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn signature_matches_an_independent_implementation() {
        assert_eq!(sign("secret-key", M), SIG);
        assert!(verify(&keys(&["secret-key"]), SIG, M));
    }

    #[test]
    fn signature_wrong_key_message_or_encoding_fails() {
        assert!(!verify(&keys(&["other"]), SIG, M));
        assert!(!verify(
            &keys(&["secret-key"]),
            SIG,
            "/w_301/https://a.com/p.jpg?v=1"
        ));
        assert!(!verify(&keys(&["secret-key"]), "not base64!", M));
        assert!(!verify(&keys(&["secret-key"]), "", M));
        assert!(!verify(&keys(&[]), SIG, M));
        let mut padded = SIG.to_string();
        padded.push('=');
        assert!(!verify(&keys(&["secret-key"]), &padded, M));
    }

    #[test]
    fn signature_any_key_verifies_for_rotation() {
        assert!(verify(&keys(&["new", "secret-key"]), SIG, M));
    }

    #[test]
    fn signature_sign_path_accepts_either_form() {
        let want = format!("/img/s_{SIG}{M}");
        assert_eq!(sign_path("secret-key", &format!("/img{M}")), want);
        assert_eq!(sign_path("secret-key", M), want);
        assert_eq!(sign_path("secret-key", &M[1..]), want);
        assert_eq!(sign_path("secret-key", &format!("/img/s_old{M}")), want);
    }

    #[test]
    fn signature_collapsed_scheme_slashes_verify() {
        assert!(verify(
            &keys(&["secret-key"]),
            SIG,
            "/w_300/https:/a.com/p.jpg?v=1"
        ));
        assert_eq!(
            restore_collapsed("/w_1/http:/a/b:/c"),
            Some("/w_1/http://a/b:/c".into())
        );
        assert_eq!(restore_collapsed(M), None);
        assert_eq!(restore_collapsed("/x/notscheme:/y"), None);
    }

    #[test]
    fn signature_collapse_is_restored_only_at_the_source_scheme() {
        // Only the first scheme segment; later ones and the query are left as they are, so a
        // signature for one URL does not verify another one with a slash dropped elsewhere.
        assert_eq!(
            restore_collapsed("/w_1/https:/a.com/x/http:/b"),
            Some("/w_1/https://a.com/x/http:/b".into())
        );
        assert_eq!(
            restore_collapsed("/w_1/s3:/photos/cat.jpg"),
            Some("/w_1/s3://photos/cat.jpg".into())
        );
        assert_eq!(restore_collapsed("/w_1/https://a.com/r/http:/b"), None);
        assert_eq!(restore_collapsed("/w_1/x.jpg?u=/https:/b"), None);
        assert_eq!(restore_collapsed("/w_1/dir/https:/x"), None);
        let k = keys(&["secret-key"]);
        let signed = "/w_1/https://a.com/r?u=/https://b.com/x";
        let sig = sign_path("secret-key", signed);
        let sig = sig
            .strip_prefix("/img/s_")
            .and_then(|r| r.split('/').next())
            .unwrap_or_default();
        assert!(verify(&k, sig, signed));
        assert!(!verify(&k, sig, "/w_1/https://a.com/r?u=/https:/b.com/x"));
    }
}
