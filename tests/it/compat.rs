//! `[compat]`: other servers' URL dialects. URLs are built by the real client libraries
//! (`tests/compat/urls.mjs`: unpic, Nuxt Image, @imgproxy/imgproxy-node, thumbor; pinned by
//! its lockfile, `npm ci` runs here when needed), requested from the real server, and must
//! answer the very bytes of the equivalent native URL, from the same cache entry.

use std::path::Path;
use std::process::Command;

use imgcdn::config::Config;

use crate::support::{proxy, Origin};

const IMGPROXY_KEY: &str = "943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881";
const IMGPROXY_SALT: &str = "520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5";
const THUMBOR_KEY: &str = "MY_SECURE_KEY";
const PHOTO: &str = "photo-2560x1600.jpg";
/// An `Accept` that takes WebP but not AVIF, for `f_auto` on both sides.
const ACCEPT: &str = "image/webp,image/*;q=0.8";

fn all_routes(c: &mut Config) {
    c.compat.ipx = "/_ipx".into();
    c.compat.imgproxy = "/imgproxy".into();
    c.compat.thumbor = "/thumbor".into();
    c.compat.nextjs = "/_next/image".into();
    c.compat.cloudflare = "/cdn-cgi/image".into();
}

fn signed(c: &mut Config) {
    all_routes(c);
    c.compat.imgproxy_key = IMGPROXY_KEY.into();
    c.compat.imgproxy_salt = IMGPROXY_SALT.into();
    c.compat.thumbor_key = THUMBOR_KEY.into();
}

#[derive(serde::Deserialize, Debug)]
struct Case {
    name: String,
    url: String,
    native: String,
    source: String,
}

/// Run `urls.mjs` for this origin URL, with the secrets when `secrets`.
async fn client_urls(absolute: String, secrets: bool) -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat");
    tokio::task::spawn_blocking(move || {
        if !dir.join("node_modules/unpic").exists() {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .expect("npm runs (node and npm are needed for the compat test)");
            assert!(status.success(), "npm ci in tests/compat");
        }
        let mut node = Command::new("node");
        node.arg(dir.join("urls.mjs"))
            .arg(absolute)
            .arg(PHOTO)
            .env_remove("IMGPROXY_KEY")
            .env_remove("IMGPROXY_SALT")
            .env_remove("THUMBOR_KEY");
        if secrets {
            node.env("IMGPROXY_KEY", IMGPROXY_KEY)
                .env("IMGPROXY_SALT", IMGPROXY_SALT)
                .env("THUMBOR_KEY", THUMBOR_KEY);
        }
        let output = node.output().expect("node runs");
        assert!(
            output.status.success(),
            "urls.mjs: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("urls.mjs prints a JSON array")
    })
    .await
    .expect("join")
}

/// Every client-built URL answers 200 with exactly the bytes of `/img/<native>/<source>`, and
/// the native request is then a cache hit: the same `Transform`, source and key.
async fn check_cases(p: &crate::support::Proxy, cases: &[Case]) {
    for case in cases {
        let r = p.get_with(&case.url, &[("accept", ACCEPT)]).await;
        assert_eq!(r.status, 200, "{} {}: {}", case.name, case.url, r.text());
        let native = p
            .get_with(
                &format!("/img/{}/{}", case.native, case.source),
                &[("accept", ACCEPT)],
            )
            .await;
        native.assert_ok();
        assert!(
            native.header("x-cache").starts_with("HIT"),
            "{}: /img/{} is not the entry {} made (x-cache {})",
            case.name,
            case.native,
            case.url,
            native.header("x-cache")
        );
        assert_eq!(
            r.header("content-type"),
            native.header("content-type"),
            "{}",
            case.name
        );
        assert_eq!(r.dims(), native.dims(), "{}", case.name);
        assert!(r.body == native.body, "{}: bodies differ", case.name);
    }
}

#[tokio::test]
async fn client_library_urls_answer_what_the_native_url_does() {
    let origin = Origin::start(vec![]).await;
    let cases = client_urls(origin.url(&format!("/f/{PHOTO}")), false).await;
    assert!(cases.len() >= 20, "{cases:?}");
    for dialect in [
        "/_ipx/",
        "/imgproxy/",
        "/thumbor/",
        "/_next/image?",
        "/cdn-cgi/image/",
    ] {
        assert!(
            cases.iter().any(|c| c.url.starts_with(dialect)),
            "no {dialect} case"
        );
    }
    let p = proxy(all_routes).await;
    check_cases(&p, &cases).await;
}

#[tokio::test]
async fn client_library_signatures_verify_and_a_wrong_one_is_403() {
    let origin = Origin::start(vec![]).await;
    let cases: Vec<Case> = client_urls(origin.url(&format!("/f/{PHOTO}")), true)
        .await
        .into_iter()
        .filter(|c| c.name.ends_with("-signed"))
        .collect();
    assert!(cases.len() >= 8, "{cases:?}");
    let p = proxy(signed).await;
    check_cases(&p, &cases).await;
    for case in &cases {
        // The signature is the segment after the route's prefix.
        let (prefix, rest) = case.url[1..].split_once('/').expect("prefix");
        let (signature, path) = rest.split_once('/').expect("signature");
        let flipped: String = signature
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i == 3 {
                    if c == 'A' {
                        'B'
                    } else {
                        'A'
                    }
                } else {
                    c
                }
            })
            .collect();
        for url in [
            format!("/{prefix}/{flipped}/{path}"),
            format!("/{prefix}/unsafe/{path}"),
            format!("/{prefix}/insecure/{path}"),
            format!("/{prefix}/{signature}/{path}x"),
        ] {
            p.get(&url).await.assert_error(403, "signature");
        }
    }
}

#[tokio::test]
async fn equivalent_urls_in_every_dialect_share_one_cache_entry() {
    let p = proxy(all_routes).await;
    let first = p.get(&format!("/_ipx/w_300/{PHOTO}")).await;
    first.assert_ok();
    assert_eq!(first.header("x-cache"), "MISS");
    for url in [
        format!("/cdn-cgi/image/width=300/{PHOTO}"),
        format!("/thumbor/unsafe/fit-in/300x0/{PHOTO}"),
        format!("/imgproxy/insecure/w:300/plain/local:///{PHOTO}"),
        format!("/imgproxy/_/rs:fit:300/plain/{PHOTO}"),
        format!("/img/w_300/{PHOTO}"),
    ] {
        let r = p.get(&url).await;
        r.assert_ok();
        assert!(
            r.header("x-cache").starts_with("HIT"),
            "{url}: {}",
            r.header("x-cache")
        );
        assert!(r.body == first.body, "{url}");
    }
    // Next.js negotiates the format, like f_auto: one entry per Accept class, `Vary: Accept`.
    let next = p
        .get_with(
            &format!("/_next/image?url=%2F{PHOTO}&w=300&q=75"),
            &[("accept", ACCEPT)],
        )
        .await;
    next.assert_ok();
    assert_eq!(next.header("content-type"), "image/webp");
    assert!(next.header("vary").to_ascii_lowercase().contains("accept"));
    let native = p
        .get_with(
            &format!("/img/w_300,q_75,f_auto/{PHOTO}"),
            &[("accept", ACCEPT)],
        )
        .await;
    assert!(native.header("x-cache").starts_with("HIT"));
}

#[tokio::test]
async fn dialect_errors_are_400_403_404_with_a_short_reason() {
    let p = proxy(|c| {
        all_routes(c);
        c.compat.thumbor_key = THUMBOR_KEY.into();
    })
    .await;
    for (url, status, needle) in [
        (format!("/_ipx/median_3/{PHOTO}"), 400, "median_3"),
        (format!("/_ipx/f_tiff/{PHOTO}"), 400, "f_tiff"),
        ("/_ipx/w_300".to_owned(), 400, "missing source"),
        (
            format!("/imgproxy/_/rt:auto/w:300/plain/{PHOTO}"),
            400,
            "rt:auto",
        ),
        (format!("/imgproxy/_/wm:0.5/plain/{PHOTO}"), 400, "wm:0.5"),
        (
            format!("/imgproxy/_/w:300/exp:1000/plain/{PHOTO}"),
            404,
            "expired",
        ),
        (format!("/thumbor/unsafe/300x200/{PHOTO}"), 403, "unsafe"),
        ("/_next/image?url=%2Fa.jpg".to_owned(), 400, "missing w"),
        (
            format!("/_next/image?url=%2F{PHOTO}&w=300&fit=cover"),
            400,
            "fit",
        ),
        (
            format!("/cdn-cgi/image/gravity=face/{PHOTO}"),
            400,
            "gravity=face",
        ),
        (
            format!("/cdn-cgi/image/onerror=redirect/{PHOTO}"),
            400,
            "onerror",
        ),
        // The source policy is the native one.
        ("/_ipx/w_300/..%2Fsecret.jpg".to_owned(), 403, "escapes"),
        (
            "/cdn-cgi/image/w=300/http://10.0.0.1/a.jpg".to_owned(),
            403,
            "",
        ),
        ("/_ipx/w_300/missing.jpg".to_owned(), 404, ""),
    ] {
        p.get(&url).await.assert_error(status, needle);
    }
    // Only GET and HEAD.
    let r = p
        .request(reqwest::Method::POST, &format!("/_ipx/w_300/{PHOTO}"), &[])
        .await;
    assert_eq!(r.status, 405);
    // A route that is off is no route.
    let off = proxy(|_| {}).await;
    off.get(&format!("/_ipx/w_300/{PHOTO}"))
        .await
        .assert_error(404, "");
}

#[tokio::test]
async fn imgproxy_at_the_root_sits_behind_every_native_route() {
    let p = proxy(|c| {
        c.compat.imgproxy = "/".into();
        c.compat.imgproxy_presets = [("small".to_owned(), "rs:fit:120:120".to_owned())].into();
    })
    .await;
    let r = p
        .get(&format!("/insecure/pr:small/plain/{PHOTO}@png"))
        .await;
    r.assert_ok();
    assert_eq!(r.dims(), (120, 75));
    assert_eq!(r.header("content-type"), "image/png");
    assert_eq!(p.get("/health").await.text(), "OK");
    p.get(&format!("/img/w_50/{PHOTO}")).await.assert_ok();
    p.get("/nothing-here").await.assert_error(400, "");
}

#[tokio::test]
async fn new_native_options_focal_point_ratio_gray_and_outside() {
    let p = proxy(all_routes).await;
    // ar_ resolves to the other side and c_fill: the very entry of the spelled-out URL.
    let ar = p.get(&format!("/img/w_300,ar_2:1/{PHOTO}")).await;
    ar.assert_ok();
    assert_eq!(ar.dims(), (300, 150));
    let spelled = p.get(&format!("/img/w_300,h_150,c_fill/{PHOTO}")).await;
    assert!(spelled.header("x-cache").starts_with("HIT"));
    // A focal point at the left edge keeps the left of the photo: as g_w, unlike the centre.
    let left = p
        .get(&format!("/img/w_100,h_100,c_fill,g_fp_0_0.5/{PHOTO}"))
        .await;
    let west = p.get(&format!("/img/w_100,h_100,c_fill,g_w/{PHOTO}")).await;
    let centre = p.get(&format!("/img/w_100,h_100,c_fill/{PHOTO}")).await;
    assert_eq!(left.dims(), (100, 100));
    assert!(left.body == west.body);
    assert!(left.body != centre.body);
    let px = p
        .get(&format!("/img/w_100,h_100,c_fill,g_px_0_800/{PHOTO}"))
        .await;
    assert!(px.body == west.body);
    // gray_1: every pixel's channels are equal.
    let gray = p.get(&format!("/img/w_64,gray_1,f_png/{PHOTO}")).await;
    gray.assert_ok();
    let rgb = gray.image().to_rgb8();
    assert!(rgb.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    // c_outside covers the box without cropping: 2560x1600 into 300x300 → 480x300.
    let outside = p.get(&format!("/img/w_300,h_300,c_outside/{PHOTO}")).await;
    assert_eq!(outside.dims(), (480, 300));
    // A crop window placed by gravity is the rectangle it resolves to on this 2560x1600 photo.
    let rect = p
        .get(&format!("/img/w_200,crop_1280_400_1280_1200/{PHOTO}"))
        .await;
    rect.assert_ok();
    for url in [
        format!("/img/w_200,crop_1280x1200_se/{PHOTO}"),
        format!("/img/w_200,crop_0.5x0.75_se/{PHOTO}"),
        format!("/imgproxy/_/w:200/c:1280:1200:soea/plain/{PHOTO}"),
    ] {
        let r = p.get(&url).await;
        assert_eq!(r.dims(), rect.dims(), "{url}");
        assert!(r.body == rect.body, "{url}");
    }
    for (url, needle) in [
        ("/img/w_300,h_100,ar_2:1/x.jpg", "ar_2:1"),
        ("/img/ar_2:1/x.jpg", "ar_2:1"),
        ("/img/w_10,g_fp_1.5_0/x.jpg", "g_fp_1.5_0"),
        ("/img/gray_2/x.jpg", "gray_2"),
    ] {
        p.get(url).await.assert_error(400, needle);
    }
}
