//! Every option and every input kind, end to end, asserted by decoding the response.

use crate::support::*;

const PHOTO: &str = "photo-2560x1600.jpg";

#[tokio::test]
async fn img_local_width_only_keeps_aspect() {
    let p = proxy(|_| {}).await;
    let r = p.get(&format!("/img/w_300/{PHOTO}")).await;
    r.assert_ok();
    assert_eq!(r.header("content-type"), "image/jpeg");
    assert_eq!(r.format(), image::ImageFormat::Jpeg);
    assert_eq!(r.dims(), (300, 188));
}

#[tokio::test]
async fn img_height_only_and_both_fit_inside_the_box() {
    let p = proxy(|_| {}).await;
    assert_eq!(
        p.get(&format!("/img/h_100/{PHOTO}")).await.dims(),
        (160, 100)
    );
    assert_eq!(
        p.get(&format!("/img/w_300,h_100/{PHOTO}")).await.dims(),
        (160, 100)
    );
    assert_eq!(
        p.get(&format!("/img/h_100,w_300,c_fit/{PHOTO}"))
            .await
            .dims(),
        (160, 100)
    );
}

#[tokio::test]
async fn img_no_options_keeps_original_size() {
    let p = proxy(|_| {}).await;
    assert_eq!(p.get(&format!("/img/_/{PHOTO}")).await.dims(), (2560, 1600));
}

#[tokio::test]
async fn img_dpr_multiplies_the_box() {
    let p = proxy(|_| {}).await;
    assert_eq!(
        p.get(&format!("/img/w_150,dpr_2/{PHOTO}")).await.dims(),
        (300, 188)
    );
    assert_eq!(
        p.get(&format!("/img/w_200,dpr_1.5/{PHOTO}")).await.dims(),
        (300, 188)
    );
}

#[tokio::test]
async fn img_fill_covers_the_box_exactly() {
    let p = proxy(|_| {}).await;
    assert_eq!(
        p.get(&format!("/img/w_200,h_200,c_fill/{PHOTO}"))
            .await
            .dims(),
        (200, 200)
    );
    for g in ["n", "s", "e", "w", "ne", "nw", "se", "sw", "center"] {
        let r = p
            .get(&format!("/img/w_100,h_300,c_fill,g_{g}/{PHOTO}"))
            .await;
        assert_eq!(r.dims(), (100, 300), "gravity {g}");
    }
}

#[tokio::test]
async fn img_fill_gravity_picks_the_side() {
    // Left half red, right half transparent→ flattened white: west keeps red, east keeps white.
    let origin = Origin::start(vec![("/split.png", Reply::Body("image/png", alpha_png()))]).await;
    let p = proxy(|_| {}).await;
    let url = origin.url("/split.png");
    let west = p
        .get(&format!("/img/w_50,h_100,c_fill,g_w,f_jpeg/{url}"))
        .await
        .image();
    let east = p
        .get(&format!("/img/w_50,h_100,c_fill,g_e,f_jpeg/{url}"))
        .await
        .image();
    let [r, g, _] = mean_rgb(&west);
    assert!(
        r > 240.0 && g < 20.0,
        "west should be red: {:?}",
        mean_rgb(&west)
    );
    let [r, g, b] = mean_rgb(&east);
    assert!(
        r > 240.0 && g > 240.0 && b > 240.0,
        "east should be white: {:?}",
        mean_rgb(&east)
    );
}

#[tokio::test]
async fn img_pad_fills_the_box_with_bg() {
    let p = proxy(|_| {}).await;
    let r = p
        .get(&format!("/img/w_300,h_300,c_pad,bg_ff0000,f_png/{PHOTO}"))
        .await;
    assert_eq!(r.dims(), (300, 300));
    let img = r.image().to_rgb8();
    assert_eq!(
        img.get_pixel(150, 0).0,
        [255, 0, 0],
        "top band is the bg colour"
    );
    assert_eq!(
        img.get_pixel(150, 299).0,
        [255, 0, 0],
        "bottom band is the bg colour"
    );
}

#[tokio::test]
async fn img_scale_stretches_to_the_box() {
    let p = proxy(|_| {}).await;
    assert_eq!(
        p.get(&format!("/img/w_100,h_300,c_scale/{PHOTO}"))
            .await
            .dims(),
        (100, 300)
    );
}

#[tokio::test]
async fn img_never_enlarges_without_up() {
    let p = proxy(|_| {}).await;
    assert_eq!(
        p.get(&format!("/img/w_5000/{PHOTO}")).await.dims(),
        (2560, 1600)
    );
    // fill without up: the largest box-shaped crop that fits in the source.
    assert_eq!(
        p.get(&format!("/img/w_4000,h_4000,c_fill/{PHOTO}"))
            .await
            .dims(),
        (1600, 1600)
    );
    // scale without up: the box's aspect ratio, no bigger than the source.
    assert_eq!(
        p.get(&format!("/img/w_3200,h_1600,c_scale/{PHOTO}"))
            .await
            .dims(),
        (2560, 1280)
    );
    // pad without up: the un-enlarged image padded to exactly the box.
    assert_eq!(
        p.get(&format!("/img/w_3000,h_2000,c_pad/{PHOTO}"))
            .await
            .dims(),
        (3000, 2000)
    );
}

#[tokio::test]
async fn img_up_1_enlarges() {
    let origin = Origin::start(vec![(
        "/small.jpg",
        Reply::Body("image/jpeg", jpeg(100, 50)),
    )])
    .await;
    let p = proxy(|_| {}).await;
    let url = origin.url("/small.jpg");
    assert_eq!(p.get(&format!("/img/w_400/{url}")).await.dims(), (100, 50));
    assert_eq!(
        p.get(&format!("/img/w_400,up_1/{url}")).await.dims(),
        (400, 200)
    );
    assert_eq!(
        p.get(&format!("/img/w_200,h_200,c_fill,up_1/{url}"))
            .await
            .dims(),
        (200, 200)
    );
    // limits.max_upscale (4 by default): 100 px to 401 px is more.
    p.get(&format!("/img/w_401,up_1/{url}"))
        .await
        .assert_error(413, "upscale-too-large");
    p.get(&format!("/img/w_400,h_400,c_fill,up_1/{url}"))
        .await
        .assert_error(413, "upscale-too-large");
}

#[tokio::test]
async fn img_quality_changes_size() {
    let p = proxy(|_| {}).await;
    let low = p.get(&format!("/img/w_600,q_10/{PHOTO}")).await;
    let high = p.get(&format!("/img/w_600,q_95/{PHOTO}")).await;
    low.assert_ok();
    high.assert_ok();
    assert!(
        low.body.len() * 2 < high.body.len(),
        "{} vs {}",
        low.body.len(),
        high.body.len()
    );
}

#[tokio::test]
async fn img_explicit_formats() {
    let p = proxy(|_| {}).await;
    for (f, mime, fmt) in [
        ("jpeg", "image/jpeg", image::ImageFormat::Jpeg),
        ("png", "image/png", image::ImageFormat::Png),
        ("webp", "image/webp", image::ImageFormat::WebP),
        ("avif", "image/avif", image::ImageFormat::Avif),
    ] {
        let r = p.get(&format!("/img/w_200,f_{f}/{PHOTO}")).await;
        r.assert_ok();
        assert_eq!(r.header("content-type"), mime);
        assert_eq!(r.format(), fmt);
        assert_eq!(r.dims(), (200, 125));
        assert_eq!(r.header("vary"), "", "no Vary without f_auto");
    }
}

#[tokio::test]
async fn img_webp_q100_is_lossless() {
    let origin = Origin::start(vec![("/a.png", Reply::Body("image/png", alpha_png()))]).await;
    let p = proxy(|_| {}).await;
    let r = p
        .get(&format!("/img/f_webp,q_100/{}", origin.url("/a.png")))
        .await;
    let img = r.image().to_rgba8();
    assert_eq!(img.get_pixel(10, 10).0, [255, 0, 0, 255]);
    assert_eq!(img.get_pixel(390, 10).0[3], 0);
}

#[tokio::test]
async fn img_auto_format_negotiates_and_varies() {
    let origin = Origin::start(vec![("/a.png", Reply::Body("image/png", alpha_png()))]).await;
    let p = proxy(|_| {}).await;
    let avif = p
        .get_with(
            &format!("/img/w_200,f_auto/{PHOTO}"),
            &[("accept", "image/avif,image/webp,*/*")],
        )
        .await;
    assert_eq!(avif.header("content-type"), "image/avif");
    assert_eq!(avif.header("vary"), "Accept");
    assert_eq!(avif.dims(), (200, 125));
    let webp = p
        .get_with(
            &format!("/img/w_200,f_auto/{PHOTO}"),
            &[("accept", "image/webp,*/*")],
        )
        .await;
    assert_eq!(webp.header("content-type"), "image/webp");
    assert_eq!(webp.header("vary"), "Accept");
    let big = p
        .get_with(
            &format!("/img/w_1400,f_auto/{PHOTO}"),
            &[("accept", "image/avif,image/webp,*/*")],
        )
        .await;
    assert_eq!(
        big.header("content-type"),
        "image/webp",
        "over output.avif_max_pixels → WebP"
    );
    let jpeg = p
        .get_with(
            &format!("/img/w_200,f_auto/{PHOTO}"),
            &[("accept", "image/*,*/*")],
        )
        .await;
    assert_eq!(jpeg.header("content-type"), "image/jpeg");
    assert_eq!(jpeg.header("vary"), "Accept");
    let png = p
        .get_with(
            &format!("/img/w_200,f_auto/{}", origin.url("/a.png")),
            &[("accept", "*/*")],
        )
        .await;
    assert_eq!(
        png.header("content-type"),
        "image/png",
        "alpha without WebP support → PNG"
    );
}

#[tokio::test]
async fn img_default_format_is_the_sources_and_a_still_gif_becomes_png() {
    let mut still = Vec::new();
    image::DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
        48,
        30,
        image::Rgba([10, 200, 30, 255]),
    ))
    .write_to(
        &mut std::io::Cursor::new(&mut still),
        image::ImageFormat::Gif,
    )
    .expect("gif");
    let origin = Origin::start(vec![("/s.gif", Reply::Body("image/gif", still.into()))]).await;
    let p = proxy(|_| {}).await;
    let gif = p.get(&format!("/img/w_24/{}", origin.url("/s.gif"))).await;
    assert_eq!(gif.header("content-type"), "image/png");
    assert_eq!(gif.dims(), (24, 15));
    let webp = p.get("/img/w_100/lossy-2560x1600.webp").await;
    assert_eq!(webp.header("content-type"), "image/webp");
    assert_eq!(webp.dims(), (100, 63));
}

/// Frames of an animated GIF or WebP response: (width, height) each, and the count.
fn animation_frames(r: &Reply2) -> Vec<(u32, u32)> {
    use image::AnimationDecoder;
    let bytes = std::io::Cursor::new(r.body.clone());
    let frames = match r.header("content-type") {
        "image/gif" => image::codecs::gif::GifDecoder::new(bytes)
            .expect("gif")
            .into_frames(),
        "image/webp" => image::codecs::webp::WebPDecoder::new(bytes)
            .expect("webp")
            .into_frames(),
        other => panic!("{other} is not animated"),
    };
    frames
        .map(|f| f.expect("frame").buffer().dimensions())
        .collect()
}

#[tokio::test]
async fn img_animation_is_kept_and_every_frame_resized() {
    let p = proxy(|_| {}).await;
    let src = "animated-480x300.gif";
    // The source's own format: an animated GIF stays an animated GIF.
    let gif = p.get(&format!("/img/w_100/{src}")).await;
    gif.assert_ok();
    assert_eq!(gif.header("content-type"), "image/gif");
    assert_eq!(animation_frames(&gif), vec![(100, 63); 5]);
    // f_auto: animated WebP for a browser that takes WebP (AVIF would lose the animation).
    let auto = p
        .get_with(
            &format!("/img/w_120,h_120,c_fill,f_auto/{src}"),
            &[("accept", "image/avif,image/webp,*/*")],
        )
        .await;
    assert_eq!(auto.header("content-type"), "image/webp");
    assert_eq!(animation_frames(&auto), vec![(120, 120); 5]);
    let auto = p.get(&format!("/img/w_120,f_auto/{src}")).await;
    assert_eq!(auto.header("content-type"), "image/gif");
    // A format without animation gets the first frame.
    let png = p.get(&format!("/img/w_100,f_png/{src}")).await;
    assert_eq!(png.header("content-type"), "image/png");
    // /meta counts the frames.
    let meta = p.get(&format!("/meta/w_100,f_webp/{src}")).await;
    let json: serde_json::Value = serde_json::from_slice(&meta.body).expect("json");
    assert_eq!(json["frames"], 5);
    assert_eq!(json["format"], "webp");
    // Bounded: more frames than limits.max_frames is refused before decoding.
    let small = proxy(|c| c.limits.max_frames = 4).await;
    small
        .get(&format!("/img/w_100/{src}"))
        .await
        .assert_error(413, "too-many-frames");
}

#[tokio::test]
async fn img_page_picks_a_frame_and_beyond_the_last_is_422() {
    let p = proxy(|_| {}).await;
    let first = p.get("/img/w_100,page_1/animated-480x300.gif").await;
    let second = p.get("/img/page_2,w_100/animated-480x300.gif").await;
    assert_eq!(second.header("content-type"), "image/png");
    assert_eq!(second.dims(), (100, 63));
    assert_ne!(
        first.image().to_rgba8(),
        second.image().to_rgba8(),
        "frame 2 differs from frame 1"
    );
    // The fixture has five frames.
    assert_eq!(p.get("/img/page_5/animated-480x300.gif").await.status, 200);
    p.get("/img/page_6/animated-480x300.gif")
        .await
        .assert_error(422, "page-out-of-range");
}

#[tokio::test]
async fn img_exif_orientation_is_applied() {
    let p = proxy(|_| {}).await;
    let r = p.get("/img/w_300/exif-orient6.jpg").await;
    assert_eq!(r.dims(), (300, 188), "stored portrait, displayed landscape");
}

#[tokio::test]
async fn img_cmyk_jpeg_decodes_with_sane_colours() {
    let p = proxy(|_| {}).await;
    let ours = p.get("/img/w_200/cmyk-2560x1600.jpg").await;
    ours.assert_ok();
    let reference =
        image::load_from_memory(&fixture("cmyk-2560x1600.jpg")).expect("reference decode");
    let reference = reference.resize_exact(200, 125, image::imageops::FilterType::Triangle);
    let (a, b) = (mean_rgb(&ours.image()), mean_rgb(&reference));
    for c in 0..3 {
        assert!((a[c] - b[c]).abs() < 12.0, "channel {c}: {a:?} vs {b:?}");
    }
}

#[tokio::test]
async fn img_grayscale_and_progressive_jpegs() {
    let p = proxy(|_| {}).await;
    assert_eq!(
        p.get("/img/w_300/gray-2560x1600.jpg").await.dims(),
        (300, 188)
    );
    assert_eq!(
        p.get("/img/w_300/progressive-2560x1600.jpg").await.dims(),
        (300, 188)
    );
}

#[tokio::test]
async fn img_16bit_png_and_alpha() {
    let origin = Origin::start(vec![
        ("/16.png", Reply::Body("image/png", png16())),
        ("/a.png", Reply::Body("image/png", alpha_png())),
    ])
    .await;
    let p = proxy(|_| {}).await;
    let r = p
        .get(&format!("/img/w_160/{}", origin.url("/16.png")))
        .await;
    assert_eq!(r.header("content-type"), "image/png");
    assert_eq!(r.dims(), (160, 100));

    let kept = p
        .get(&format!("/img/w_200/{}", origin.url("/a.png")))
        .await
        .image()
        .to_rgba8();
    assert_eq!(
        kept.get_pixel(190, 50).0[3],
        0,
        "PNG output keeps transparency"
    );
    assert_eq!(kept.get_pixel(10, 50).0, [255, 0, 0, 255]);

    let flat = p
        .get(&format!(
            "/img/w_200,f_jpeg,bg_0000ff/{}",
            origin.url("/a.png")
        ))
        .await
        .image()
        .to_rgb8();
    let px = flat.get_pixel(190, 50).0;
    assert!(
        px[2] > 230 && px[0] < 30 && px[1] < 30,
        "transparent area flattened onto bg: {px:?}"
    );
}

#[tokio::test]
async fn options_segment_may_be_percent_encoded() {
    let p = proxy(|_| {}).await;
    assert_eq!(
        p.get(&format!("/img/w_100%2Ch_100%2Cc_fill/{PHOTO}"))
            .await
            .dims(),
        (100, 100)
    );
}

#[tokio::test]
async fn img_rotate_flip_crop_blur_sharpen_end_to_end() {
    let p = proxy(|_| {}).await;
    // Turned before sizing: a landscape photo becomes portrait, w applies to the result.
    let r = p.get(&format!("/img/r_90,w_100/{PHOTO}")).await;
    r.assert_ok();
    assert_eq!(r.dims(), (100, 160));
    // The same transform spelled in another order is the same cache entry.
    let again = p.get(&format!("/img/w_100,r_90/{PHOTO}")).await;
    assert_eq!(again.header("x-cache"), "HIT memory");
    assert_eq!(
        p.get(&format!("/img/crop_100_100_800_400,w_200/{PHOTO}"))
            .await
            .dims(),
        (200, 100)
    );
    for options in ["flip_hv,w_50", "blur_4,w_50", "sharpen_0.8,w_50"] {
        let r = p.get(&format!("/img/{options}/{PHOTO}")).await;
        r.assert_ok();
        assert_eq!(r.dims(), (50, 31), "{options}");
    }
    p.get(&format!("/img/crop_3000_0_10_10/{PHOTO}"))
        .await
        .assert_error(422, "crop-outside-image");
    p.get(&format!("/img/r_45/{PHOTO}"))
        .await
        .assert_error(400, "bad-options");
}

#[tokio::test]
async fn img_avif_background_answers_webp_first_then_avif() {
    let p = proxy(|c| c.output.avif_background = true).await;
    let path = format!("/img/w_200,f_auto/{PHOTO}");
    let accept = [("accept", "image/avif,image/webp,*/*")];
    let first = p.get_with(&path, &accept).await;
    first.assert_ok();
    assert_eq!(first.header("content-type"), "image/webp");
    assert_eq!(first.header("cache-control"), "public, max-age=60");
    assert_eq!(first.header("x-avif"), "pending");
    assert_eq!(first.header("vary"), "Accept");
    assert_eq!(first.dims(), (200, 125));
    // The AVIF is made in the background; poll until it is cached (bounded).
    let mut later = p.get_with(&path, &accept).await;
    for _ in 0..200 {
        if later.header("content-type") == "image/avif" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        later = p.get_with(&path, &accept).await;
    }
    assert_eq!(later.header("content-type"), "image/avif");
    assert!(
        later.header("x-cache").starts_with("HIT"),
        "{:?}",
        later.headers
    );
    assert_eq!(later.header("x-avif"), "");
    assert_eq!(
        later.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(later.dims(), (200, 125));
    // A client without AVIF support gets the WebP the stand-in made, from the cache.
    let webp = p.get_with(&path, &[("accept", "image/webp,*/*")]).await;
    assert_eq!(webp.header("content-type"), "image/webp");
    assert!(webp.header("x-cache").starts_with("HIT"));
    assert_eq!(webp.body, first.body);
}

#[tokio::test]
async fn img_reads_its_own_avif_output() {
    let p = proxy(|_| {}).await;
    let avif = p.get(&format!("/img/w_50,f_avif/{PHOTO}")).await;
    avif.assert_ok();
    let origin = Origin::start(vec![(
        "/a.avif",
        Reply::Body("image/avif", avif.body.clone()),
    )])
    .await;
    let r = p
        .get(&format!("/img/w_20,f_png/{}", origin.url("/a.avif")))
        .await;
    r.assert_ok();
    assert_eq!(r.dims(), (20, 12));
}

#[tokio::test]
async fn img_trim_end_to_end() {
    let img = image::RgbaImage::from_fn(120, 90, |x, y| {
        if (20..100).contains(&x) && (15..75).contains(&y) {
            image::Rgba([40, 120, 200, 255])
        } else {
            image::Rgba([250, 250, 250, 255])
        }
    });
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let origin = Origin::start(vec![("/t.png", Reply::Body("image/png", png.into()))]).await;
    let p = proxy(|_| {}).await;
    let r = p
        .get(&format!("/img/trim_8,w_40/{}", origin.url("/t.png")))
        .await;
    r.assert_ok();
    assert_eq!(r.dims(), (40, 30));
    // Every pixel is subject, the very edges too: the resampling filter sees only the kept box.
    let img = r.image().to_rgba8();
    for (x, y) in [(0, 0), (39, 0), (0, 29), (39, 29), (20, 15)] {
        let px = img.get_pixel(x, y).0;
        for (got, want) in px.iter().zip([40u8, 120, 200, 255]) {
            assert!(got.abs_diff(want) <= 4, "({x},{y}): {px:?}");
        }
    }
    // The same for crop_: nothing of the white border bleeds in.
    let r = p
        .get(&format!(
            "/img/crop_20_15_80_60,w_40,f_png/{}",
            origin.url("/t.png")
        ))
        .await;
    assert_eq!(r.dims(), (40, 30));
    let px = r.image().to_rgba8().get_pixel(0, 0).0;
    assert!(
        px[0].abs_diff(40) <= 4 && px[1].abs_diff(120) <= 4,
        "crop edge: {px:?}"
    );
    p.get(&format!("/img/trim_300/{}", origin.url("/t.png")))
        .await
        .assert_error(400, "trim");
}

/// The sRGB 8-bit value of a Display P3 colour from the published matrices (P3 shares sRGB's
/// transfer curve and D65 white), independent of the colour library the server uses.
fn p3_to_srgb(rgb: [u8; 3]) -> [f64; 3] {
    let lin = rgb.map(|v| {
        let x = f64::from(v) / 255.0;
        if x <= 0.04045 {
            x / 12.92
        } else {
            ((x + 0.055) / 1.055).powf(2.4)
        }
    });
    let m = [
        [1.224_940_2, -0.224_940_2, 0.0],
        [-0.042_056_9, 1.042_056_9, 0.0],
        [-0.019_637_6, -0.078_636_0, 1.098_273_6],
    ];
    m.map(|row| {
        let v = (row[0] * lin[0] + row[1] * lin[1] + row[2] * lin[2]).clamp(0.0, 1.0);
        let e = if v <= 0.003_130_8 {
            v * 12.92
        } else {
            1.055 * v.powf(1.0 / 2.4) - 0.055
        };
        e * 255.0
    })
}

/// A flat P3 image as PNG (`iCCP`) and as JPEG (`APP2 ICC_PROFILE`), both with the profile
/// built in the test: the output must be the sRGB value of that colour, not the raw numbers.
#[tokio::test]
async fn img_icc_display_p3_is_converted_to_srgb() {
    let colour = [60u8, 170, 90];
    let profile = moxcms::ColorProfile::new_display_p3()
        .encode()
        .expect("encode profile");
    let flat = image::RgbImage::from_pixel(64, 48, image::Rgb(colour));
    // PNG with iCCP.
    let mut png = Vec::new();
    {
        let mut info = png::Info::with_size(64, 48);
        info.color_type = png::ColorType::Rgb;
        info.bit_depth = png::BitDepth::Eight;
        info.icc_profile = Some(profile.clone().into());
        let enc = png::Encoder::with_info(&mut png, info).expect("png info");
        let mut w = enc.write_header().expect("png header");
        w.write_image_data(flat.as_raw()).expect("png data");
    }
    // JPEG (q100, 4:4:4) with the profile in one APP2 chunk after SOI.
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 100)
        .encode_image(&flat)
        .expect("jpeg");
    let mut app2 = vec![0xFF, 0xE2];
    let len = u16::try_from(2 + 14 + profile.len()).expect("profile fits one chunk");
    app2.extend(len.to_be_bytes());
    app2.extend(b"ICC_PROFILE\0\x01\x01");
    app2.extend(&profile);
    jpeg.splice(2..2, app2);

    let origin = Origin::start(vec![
        ("/p3.png", Reply::Body("image/png", png.into())),
        ("/p3.jpg", Reply::Body("image/jpeg", jpeg.into())),
        (
            "/plain.png",
            Reply::Body("image/png", {
                let mut v = Vec::new();
                image::DynamicImage::ImageRgb8(flat.clone())
                    .write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Png)
                    .expect("png");
                v.into()
            }),
        ),
    ])
    .await;
    let p = proxy(|_| {}).await;
    let want = p3_to_srgb(colour);
    for path in ["/p3.png", "/p3.jpg"] {
        let r = p
            .get(&format!("/img/w_32,f_png/{}", origin.url(path)))
            .await;
        r.assert_ok();
        let px = r.image().to_rgb8().get_pixel(16, 12).0;
        for (got, want) in px.iter().zip(want) {
            assert!(
                (f64::from(*got) - want).abs() <= 2.5,
                "{path}: got {px:?}, want {want:?} (source {colour:?})"
            );
        }
    }
    // Without a profile the numbers are taken as sRGB and kept.
    let r = p
        .get(&format!("/img/w_32,f_png/{}", origin.url("/plain.png")))
        .await;
    assert_eq!(r.image().to_rgb8().get_pixel(16, 12).0, colour);
}

/// A JPEG whose EXIF has an artist, a copyright, and tags that must never leave (camera make,
/// a GPS latitude).
fn jpeg_with_exif() -> Vec<u8> {
    use exif::{Field, In, Rational, Tag, Value};
    let ascii = |tag, s: &str| Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![s.as_bytes().to_vec()]),
    };
    let fields = [
        ascii(Tag::Artist, "Ann Example"),
        ascii(Tag::Copyright, "(c) 2026 Ann Example, all rights reserved"),
        ascii(Tag::Make, "SecretCam"),
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![Rational::from((48, 1)); 3]),
        },
    ];
    let mut writer = exif::experimental::Writer::new();
    for f in &fields {
        writer.push_field(f);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).expect("write exif");
    let tiff = tiff.into_inner();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&image::RgbImage::from_pixel(
            64,
            48,
            image::Rgb([90, 120, 150]),
        ))
        .expect("jpeg");
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend(
        u16::try_from(2 + 6 + tiff.len())
            .expect("fits")
            .to_be_bytes(),
    );
    app1.extend(b"Exif\0\0");
    app1.extend(&tiff);
    jpeg.splice(2..2, app1);
    jpeg
}

/// The EXIF tags of an output file, by name (empty when it has no EXIF).
fn exif_tags(body: &[u8]) -> Vec<String> {
    exif::Reader::new()
        .read_from_container(&mut std::io::Cursor::new(body))
        .map(|e| {
            e.fields()
                .map(|f| format!("{}={}", f.tag, f.display_value()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn img_metadata_is_stripped_and_keep_copyright_keeps_artist_and_copyright_only() {
    let origin = Origin::start(vec![(
        "/e.jpg",
        Reply::Body("image/jpeg", jpeg_with_exif().into()),
    )])
    .await;
    let url = |f: &str| format!("/img/w_32,f_{f}/{}", origin.url("/e.jpg"));
    let plain = proxy(|_| {}).await;
    let keep = proxy(|c| c.output.keep_copyright = true).await;
    for f in ["jpeg", "png", "webp", "avif"] {
        let r = plain.get(&url(f)).await;
        r.assert_ok();
        assert_eq!(exif_tags(&r.body), Vec::<String>::new(), "f_{f}: stripped");
        let r = keep.get(&url(f)).await;
        r.assert_ok();
        assert_eq!(r.dims(), (32, 24), "f_{f}: still a valid image");
        let tags = exif_tags(&r.body);
        assert_eq!(tags.len(), 2, "f_{f}: {tags:?}");
        assert!(
            tags[0].starts_with("Artist=") && tags[0].contains("Ann Example"),
            "{tags:?}"
        );
        assert!(
            tags[1].starts_with("Copyright=") && tags[1].contains("(c) 2026"),
            "{tags:?}"
        );
    }
}

#[tokio::test]
async fn img_g_auto_fill_keeps_the_subject() {
    // A flat grey 600x200 picture with a small saturated, textured subject at the right edge.
    let picture = |subject_x: u32| {
        image::RgbImage::from_fn(600, 200, |x, y| {
            if (subject_x..subject_x + 80).contains(&x) && (60..140).contains(&y) {
                if (x / 8 + y / 8) % 2 == 0 {
                    image::Rgb([230, 30, 20])
                } else {
                    image::Rgb([250, 220, 40])
                }
            } else {
                image::Rgb([128, 128, 128])
            }
        })
    };
    let png = |img: image::RgbImage| {
        let mut v = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Png)
            .expect("png");
        bytes::Bytes::from(v)
    };
    let origin = Origin::start(vec![
        ("/right.png", Reply::Body("image/png", png(picture(500)))),
        ("/left.png", Reply::Body("image/png", png(picture(20)))),
    ])
    .await;
    let p = proxy(|_| {}).await;
    // How much of the output is the subject (pixels far from grey).
    let subject_share = |r: &Reply2| {
        let img = r.image().to_rgb8();
        let n = img
            .pixels()
            .filter(|px| px.0.iter().any(|c| c.abs_diff(128) > 40))
            .count();
        n as f64 / f64::from(img.width() * img.height())
    };
    for path in ["/right.png", "/left.png"] {
        let auto = p
            .get(&format!(
                "/img/w_100,h_100,c_fill,g_auto,f_png/{}",
                origin.url(path)
            ))
            .await;
        auto.assert_ok();
        assert_eq!(auto.dims(), (100, 100));
        let centre = p
            .get(&format!(
                "/img/w_100,h_100,c_fill,f_png/{}",
                origin.url(path)
            ))
            .await;
        assert!(
            subject_share(&auto) > 0.12, // all of it is 0.16
            "{path}: g_auto kept {:.2} of subject",
            subject_share(&auto)
        );
        assert!(
            subject_share(&centre) < 0.01,
            "{path}: the centre has no subject"
        );
        // Deterministic: the same bytes again (from a new render, not the cache).
        let again = proxy(|_| {})
            .await
            .get(&format!(
                "/img/w_100,h_100,c_fill,g_auto,f_png/{}",
                origin.url(path)
            ))
            .await;
        assert_eq!(again.body, auto.body, "{path}");
        // Turned: the window is found in stored pixels and mapped through the orientation.
        let turned = p
            .get(&format!(
                "/img/r_90,w_100,h_100,c_fill,g_auto,f_png/{}",
                origin.url(path)
            ))
            .await;
        assert_eq!(turned.dims(), (100, 100));
        assert!(subject_share(&turned) > 0.12, "{path} r_90");
    }
}
