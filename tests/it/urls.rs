//! CDN-friendly URLs and clients: width buckets, listed qualities, canonical redirects,
//! `f_auto` by redirect, client hints and the fallback image for origin 404s.

use crate::support::*;

const PHOTO: &str = "photo-2560x1600.jpg";
const WEBP_AVIF: (&str, &str) = ("accept", "image/avif,image/webp,*/*");

#[tokio::test]
async fn urls_width_buckets_redirect_to_next_bucket_up() {
    let p = proxy(|c| c.output.width_buckets = vec![64, 128, 256, 384, 512]).await;
    let r = p.get(&format!("/img/w_300,h_150,c_fill/{PHOTO}?v=1")).await;
    assert_eq!(r.status, 308, "{}", r.text());
    assert_eq!(
        r.header("location"),
        format!("/img/w_384,h_192,c_fill/{PHOTO}?v=1")
    );
    assert_eq!(r.header("cache-control"), "public, max-age=86400");
    let followed = p.get(r.header("location")).await;
    followed.assert_ok();
    assert_eq!(followed.dims(), (384, 192));
    // A bucket itself, and a width above all buckets.
    p.get(&format!("/img/w_256/{PHOTO}")).await.assert_ok();
    let big = p.get(&format!("/img/w_4000/{PHOTO}")).await;
    assert_eq!(big.status, 308);
    assert_eq!(big.header("location"), format!("/img/w_512/{PHOTO}"));
}

#[tokio::test]
async fn urls_qualities_redirect_and_config_checks_default() {
    let p = proxy(|c| c.output.qualities = vec![50, 80]).await;
    let r = p.get(&format!("/img/w_100,q_60/{PHOTO}")).await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), format!("/img/w_100,q_80/{PHOTO}"));
    p.get(&format!("/img/w_100,q_50/{PHOTO}")).await.assert_ok();
    p.get(&format!("/img/w_100/{PHOTO}")).await.assert_ok();
    let mut bad = imgcdn::config::Config::default();
    bad.output.qualities = vec![50, 60];
    let err = imgcdn::config::Settings::try_from(bad).expect_err("80 not listed");
    assert!(err.to_string().contains("output.qualities"), "{err}");
}

#[tokio::test]
async fn urls_canonical_redirect_respells_and_signs() {
    let key = "0123456789abcdef0123";
    let p = proxy(|c| {
        c.output.canonical_redirect = true;
        c.security.signing_keys = vec![key.into()];
    })
    .await;
    let message = format!("/h_100,w_200,dpr_1/{PHOTO}");
    let signed = format!("/img/s_{}{message}", imgcdn::signature::sign(key, &message));
    let r = p.get(&signed).await;
    assert_eq!(r.status, 308, "{}", r.text());
    let canonical = format!("/w_200,h_100/{PHOTO}");
    assert_eq!(
        r.header("location"),
        format!(
            "/img/s_{}{canonical}",
            imgcdn::signature::sign(key, &canonical)
        )
    );
    let followed = p.get(r.header("location")).await;
    followed.assert_ok();
    // Off by default: the same spelling is served as is.
    let plain = proxy(|_| {}).await;
    plain
        .get(&format!("/img/h_100,w_200/{PHOTO}"))
        .await
        .assert_ok();
}

#[tokio::test]
async fn urls_auto_format_redirect_names_the_format_and_prefills_its_key() {
    let p = proxy(|c| c.output.auto_format = imgcdn::config::AutoFormat::Redirect).await;
    let path = format!("/img/w_200,f_auto/{PHOTO}");
    let avif = p.get_with(&path, &[WEBP_AVIF]).await;
    assert_eq!(avif.status, 302, "{}", avif.text());
    assert_eq!(
        avif.header("location"),
        format!("/img/w_200,f_avif/{PHOTO}")
    );
    assert_eq!(avif.header("vary"), "Accept");
    assert!(avif.header("cache-control").starts_with("private"));
    let target = p.get(avif.header("location")).await;
    target.assert_ok();
    assert_eq!(target.header("content-type"), "image/avif");
    assert!(target.header("x-cache").starts_with("HIT"), "made once");
    let webp = p.get_with(&path, &[("accept", "image/webp")]).await;
    assert_eq!(
        webp.header("location"),
        format!("/img/w_200,f_webp/{PHOTO}")
    );
    let jpeg = p.get_with(&path, &[("accept", "*/*")]).await;
    assert_eq!(
        jpeg.header("location"),
        format!("/img/w_200,f_jpeg/{PHOTO}")
    );
}

#[tokio::test]
async fn urls_client_hints_resize_and_vary() {
    let p = proxy(|c| c.output.client_hints = true).await;
    let r = p
        .get_with(
            &format!("/img/w_200/{PHOTO}"),
            &[("sec-ch-dpr", "2"), ("save-data", "on")],
        )
        .await;
    r.assert_ok();
    assert_eq!(r.dims(), (400, 250));
    assert_eq!(r.header("vary"), "Sec-CH-DPR, DPR, Save-Data");
    assert!(r.header("accept-ch").contains("Sec-CH-Width"));
    let normal = p.get(&format!("/img/w_400/{PHOTO}")).await;
    assert!(
        r.body.len() < normal.body.len(),
        "Save-Data: {} vs {}",
        r.body.len(),
        normal.body.len()
    );
    let width = p
        .get_with(&format!("/img/_/{PHOTO}"), &[("sec-ch-width", "384")])
        .await;
    assert_eq!(width.dims(), (384, 240));
    // Off by default: hints change nothing.
    let off = proxy(|_| {}).await;
    let r = off
        .get_with(&format!("/img/w_200/{PHOTO}"), &[("sec-ch-dpr", "2")])
        .await;
    assert_eq!(r.dims(), (200, 125));
    assert_eq!(r.header("vary"), "");
    assert_eq!(r.header("accept-ch"), "");
}

#[tokio::test]
async fn urls_fallback_image_for_origin_404_only() {
    let origin = Origin::start(vec![("/gone.jpg", Reply::Status(404))]).await;
    let p = proxy(|c| c.error.fallback_image = PHOTO.into()).await;
    let r = p
        .get(&format!("/img/w_100,f_png/{}", origin.url("/gone.jpg")))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-fallback"), "origin-404");
    assert_eq!(r.header("cache-control"), "public, max-age=60");
    assert_eq!(r.header("content-type"), "image/png");
    assert_eq!(r.dims(), (100, 63));
    // Not cached as the real result: once the origin has the image, it is served.
    let again = p
        .get(&format!("/img/w_100,f_png/{}", origin.url("/gone.jpg")))
        .await;
    assert_eq!(again.status, 404, "the origin still says 404");
    // Other origin errors are not replaced.
    let broken = Origin::start(vec![("/x.jpg", Reply::Status(500))]).await;
    p.get(&format!("/img/w_100/{}", broken.url("/x.jpg")))
        .await
        .assert_error(502, "");
    // Without the setting a 404 is the plain text error.
    let plain = proxy(|_| {}).await;
    plain
        .get(&format!("/img/w_100/{}", origin.url("/gone.jpg")))
        .await
        .assert_error(404, "");
}
