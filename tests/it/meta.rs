//! `GET /meta/<options>/<source>`: JSON about the rendition, cached like it.

use base64::Engine as _;

use crate::support::*;

const PHOTO: &str = "photo-2560x1600.jpg";

fn json(r: &Reply2) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/json");
    serde_json::from_slice(&r.body).expect("json")
}

#[tokio::test]
async fn meta_describes_the_rendition_and_is_cached() {
    let p = proxy(|_| {}).await;
    let first = p.get(&format!("/meta/w_300/{PHOTO}")).await;
    let m = json(&first);
    let img = p.get(&format!("/img/w_300/{PHOTO}")).await;
    assert_eq!(m["width"], 300);
    assert_eq!(m["height"], 188);
    assert_eq!(m["format"], "jpeg");
    assert_eq!(m["bytes"], img.body.len());
    assert_eq!(m["has_alpha"], false);
    assert_eq!(m["frames"], 1);
    let colour = m["dominant_color"].as_str().expect("colour");
    assert!(
        colour.len() == 7
            && colour.starts_with('#')
            && colour[1..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{colour}"
    );
    let hash = base64::engine::general_purpose::STANDARD
        .decode(m["thumbhash"].as_str().expect("thumbhash"))
        .expect("base64");
    assert!((5..=30).contains(&hash.len()), "{} bytes", hash.len());
    assert_eq!(first.header("x-cache"), "MISS");
    let again = p.get(&format!("/meta/w_300/{PHOTO}")).await;
    assert!(again.header("x-cache").starts_with("HIT"));
    assert_eq!(again.body, first.body);
}

#[tokio::test]
async fn meta_reports_alpha_colour_and_negotiated_format() {
    let origin = Origin::start(vec![("/a.png", Reply::Body("image/png", alpha_png()))]).await;
    let p = proxy(|_| {}).await;
    let m = json(
        &p.get(&format!("/meta/w_100/{}", origin.url("/a.png")))
            .await,
    );
    assert_eq!(
        (m["width"].clone(), m["height"].clone()),
        (100.into(), 50.into())
    );
    assert_eq!(m["format"], "png");
    assert_eq!(m["has_alpha"], true);
    // Half opaque red, half transparent: red dominates.
    assert_eq!(m["dominant_color"], "#ff0000");
    let auto = p
        .get_with(
            &format!("/meta/w_100,f_auto/{PHOTO}"),
            &[("accept", "image/avif,image/webp")],
        )
        .await;
    assert_eq!(json(&auto)["format"], "avif");
    assert_eq!(auto.header("vary"), "Accept");
}

#[tokio::test]
async fn meta_errors_are_the_image_errors() {
    let p = proxy(|_| {}).await;
    p.get("/meta/w_300/missing.jpg")
        .await
        .assert_error(404, "source-not-found");
    p.get(&format!("/meta/w_0/{PHOTO}"))
        .await
        .assert_error(400, "bad-options");
}
