//! Every input format end to end: decoded like an independent decoder decodes it (the
//! `ref-*.png` next to each fixture, see `tests/fixtures/formats/README.md`), oriented, alpha
//! kept, served in an output format a browser shows, negotiated by `f_auto`, described by
//! `/meta`; truncated and bit-flipped files answer 4xx, never 5xx; limits answer 413. Plus the
//! odd inputs browsers show: lenient JPEGs and GIFs without a colour table.

use image::GenericImageView;

use crate::support::*;

/// A fixture under `tests/fixtures/formats/`, its reference decode, and whether it has alpha.
struct Case {
    file: &'static str,
    reference: &'static str,
    alpha: bool,
    /// Largest mean absolute difference per channel (0..255) from the reference.
    tolerance: f64,
}

const fn case(file: &'static str, reference: &'static str, alpha: bool) -> Case {
    Case {
        file,
        reference,
        alpha,
        tolerance: 1.0,
    }
}

const CASES: &[Case] = &[
    case("photo.tiff", "ref-photo-tiff.png", false),
    case("photo-orient6.tiff", "ref-photo-orient6-tiff.png", false),
    case("alpha16.tiff", "ref-alpha16-tiff.png", true),
    case("photo.bmp", "ref-photo-bmp.png", false),
    case("alpha.bmp", "ref-alpha-bmp.png", true),
    case("icon.ico", "ref-icon-ico.png", true),
    case("photo.ppm", "ref-photo-ppm.png", false),
    case("gray.pgm", "ref-gray-pgm.png", false),
    case("alpha.pam", "ref-alpha-pam.png", true),
    case("photo-rle.tga", "ref-photo-rle-tga.png", false),
    case("alpha.tga", "ref-alpha-tga.png", true),
    case("alpha.qoi", "ref-alpha-qoi.png", true),
    // JPEG XL against libjxl's djxl (lossy: a few levels of difference after resampling).
    case("jxl-lossless.jxl", "jxl-lossless.ref.png", false),
    Case {
        tolerance: 1.5,
        ..case("jxl-lossy.jxl", "jxl-lossy.ref.png", false)
    },
    Case {
        tolerance: 1.5,
        ..case("jxl-alpha.jxl", "jxl-alpha.ref.png", true)
    },
    Case {
        tolerance: 1.5,
        ..case("jxl-jpeg.jxl", "jxl-jpeg.ref.png", false)
    },
    Case {
        tolerance: 1.5,
        ..case("jxl-orient6.jxl", "jxl-orient6.ref.png", false)
    },
    case("jxl-gray.jxl", "jxl-gray.ref.png", false),
    Case {
        tolerance: 2.0,
        ..case("jxl-romm-lossless.jxl", "jxl-romm-lossless.ref.png", false)
    },
    case("jxl-anim.jxl", "jxl-anim.ref.png", true),
    // HEIC and AVIF against libheif's heif-convert and libavif's avifdec.
    case(
        "heif/photo-exif.heic",
        "heif/photo-exif.heic.ref.png",
        false,
    ),
    case("heif/alpha.heic", "heif/alpha.heic.ref.png", true),
    case(
        "heif/photo-exif.avif",
        "heif/photo-exif.avif.ref.png",
        false,
    ),
    case("heif/alpha.avif", "heif/alpha.avif.ref.png", true),
    case("heif/10bit.avif", "heif/10bit.avif.ref.png", false),
    case(
        "heif/irot1-imir0.avif",
        "heif/irot1-imir0.avif.ref.png",
        false,
    ),
    case("heif/grid-2x2.avif", "heif/grid-2x2.avif.ref.png", false),
    case("heif/anim.avif", "heif/anim.avif.ref.png", true),
    // SVG against librsvg's rsvg-convert (anti-aliasing differs a little).
    Case {
        tolerance: 1.5,
        ..case("logo.svg", "logo.rsvg.png", true)
    },
    Case {
        tolerance: 1.5,
        ..case("alpha.svg", "alpha.rsvg.png", true)
    },
];

fn formats_fixture(name: &str) -> bytes::Bytes {
    fixture(&format!("formats/{name}"))
}

/// Mean absolute difference per channel, over RGBA (colour where alpha is 0 ignored).
fn mean_abs_diff(a: &image::DynamicImage, b: &image::DynamicImage) -> f64 {
    let (a, b) = (a.to_rgba8(), b.to_rgba8());
    assert_eq!(a.dimensions(), b.dimensions());
    let mut sum = 0f64;
    for (p, q) in a.pixels().zip(b.pixels()) {
        let visible = p[3] > 0 || q[3] > 0;
        for c in 0..4 {
            if c == 3 || visible {
                sum += (f64::from(p[c]) - f64::from(q[c])).abs();
            }
        }
    }
    sum / (f64::from(a.width() * a.height()) * 4.0)
}

#[tokio::test]
async fn every_format_decodes_like_an_independent_decoder() {
    let p = proxy(|_| {}).await;
    for c in CASES {
        let r = p.get(&format!("/img/f_png/formats/{}", c.file)).await;
        assert_eq!(r.status, 200, "{}: {}", c.file, r.text());
        assert_eq!(r.header("content-type"), "image/png", "{}", c.file);
        let got = r.image();
        let want = image::load_from_memory(&formats_fixture(c.reference)).expect("reference");
        assert_eq!(got.dimensions(), want.dimensions(), "{}", c.file);
        assert_eq!(got.color().has_alpha(), c.alpha, "{}", c.file);
        let diff = mean_abs_diff(&got, &want);
        assert!(diff <= c.tolerance, "{}: mean difference {diff:.2}", c.file);
    }
}

#[tokio::test]
async fn input_only_formats_are_served_as_jpeg_or_png_and_resized() {
    let p = proxy(|_| {}).await;
    for c in CASES {
        let r = p.get(&format!("/img/w_32/formats/{}", c.file)).await;
        r.assert_ok();
        // AVIF is an output format too: its own, as for JPEG or PNG sources.
        let (mime, format) = if c.file.ends_with(".avif") {
            ("image/avif", image::ImageFormat::Avif)
        } else if c.alpha {
            ("image/png", image::ImageFormat::Png)
        } else {
            ("image/jpeg", image::ImageFormat::Jpeg)
        };
        assert_eq!(r.header("content-type"), mime, "{}", c.file);
        assert_eq!(r.format(), format, "{}", c.file);
        let want = image::load_from_memory(&formats_fixture(c.reference)).expect("reference");
        let (w, h) = want.dimensions();
        let expected = (32, (f64::from(h) * 32.0 / f64::from(w)).round() as u32);
        assert_eq!(r.dims(), expected, "{}", c.file);
    }
}

#[tokio::test]
async fn f_auto_and_meta_work_for_new_inputs() {
    let p = proxy(|_| {}).await;
    let r = p
        .get_with(
            "/img/w_32,f_auto/formats/photo.tiff",
            &[("accept", "image/webp,*/*")],
        )
        .await;
    r.assert_ok();
    assert_eq!(r.header("content-type"), "image/webp");
    let m = p.get("/meta/w_32/formats/alpha.tga").await;
    assert_eq!(m.status, 200, "{}", m.text());
    let m: serde_json::Value = serde_json::from_slice(&m.body).expect("json");
    assert_eq!(m["width"], 32);
    assert_eq!(m["format"], "png");
    assert_eq!(m["has_alpha"], true);
}

#[tokio::test]
async fn truncated_and_bit_flipped_files_are_4xx_never_5xx() {
    let mut routes = Vec::new();
    let mut names = Vec::new();
    for c in CASES {
        let bytes = formats_fixture(c.file);
        let cut = bytes.slice(..bytes.len() / 2);
        let name = format!("/cut/{}", c.file);
        routes.push((name.clone(), cut));
        // A cut animation keeps the frames it has (the first one here), as browsers show.
        names.push((name, !c.file.contains("anim")));
        for i in 0..12usize {
            let mut flipped = bytes.to_vec();
            // Header bytes first (where the parsers branch), then spread through the data.
            let at = if i < 6 {
                4 + i * 5
            } else {
                i * bytes.len() / 12
            };
            if let Some(b) = flipped.get_mut(at) {
                *b ^= 0x5A;
            }
            let name = format!("/flip{i}/{}", c.file);
            routes.push((name.clone(), bytes::Bytes::from(flipped)));
            names.push((name, false));
        }
    }
    let origin = Origin::start(
        routes
            .iter()
            .map(|(n, b)| {
                (
                    n.as_str(),
                    Reply::Body("application/octet-stream", b.clone()),
                )
            })
            .collect(),
    )
    .await;
    let p = proxy(|_| {}).await;
    for (name, must_fail) in names {
        let r = p.get(&format!("/img/w_20/{}", origin.url(&name))).await;
        if must_fail {
            assert!(
                [415, 422].contains(&r.status),
                "{name}: {} {}",
                r.status,
                r.text()
            );
        } else {
            assert!(r.status < 500, "{name}: {} {}", r.status, r.text());
        }
    }
}

#[tokio::test]
async fn source_limits_apply_to_new_inputs() {
    let p = proxy(|c| c.limits.max_source_pixels = 500).await;
    for c in CASES {
        let r = p.get(&format!("/img/w_20/formats/{}", c.file)).await;
        if c.file.ends_with(".svg") {
            // A vector has no pixels of its own: it is rendered within the limit instead.
            r.assert_ok();
            assert_eq!(r.dims().0, 20);
        } else {
            r.assert_error(413, "larger than the limit");
        }
    }
    // Rendering a vector larger than the limit is refused like any other output.
    let r = p.get("/img/w_2000,f_png/formats/logo.svg").await;
    assert!([413].contains(&r.status), "{} {}", r.status, r.text());
}

// ---- Lenient JPEG: what libjpeg and browsers show is served; data that ends early is 422.

/// A 64x48 JPEG, and its pixels as decoded by `image` (zune-jpeg).
fn plain_jpeg() -> (Vec<u8>, image::DynamicImage) {
    let bytes = jpeg(64, 48).to_vec();
    let img = image::load_from_memory(&bytes).expect("decodes");
    (bytes, img)
}

/// Index of the first marker `code` in `jpeg`'s header.
fn marker(jpeg: &[u8], code: u8) -> usize {
    jpeg.windows(2)
        .position(|w| w == [0xFF, code])
        .unwrap_or_else(|| panic!("no marker {code:02x}"))
}

fn insert(mut bytes: Vec<u8>, at: usize, what: &[u8]) -> Vec<u8> {
    bytes.splice(at..at, what.iter().copied());
    bytes
}

#[tokio::test]
async fn jpegs_with_libjpeg_warnings_are_served_and_truncated_ones_are_not() {
    let (good, want) = plain_jpeg();
    let sof = marker(&good, 0xC0);
    let sos = marker(&good, 0xDA);
    let eoi = good.len() - 2;
    // An ICC profile segment (APP2) after the frame header: a real (sRGB) profile.
    let profile = moxcms_free_srgb_profile();
    let mut app2 = vec![0xFF, 0xE2];
    app2.extend(u16::try_from(profile.len() + 16).unwrap().to_be_bytes());
    app2.extend(b"ICC_PROFILE\0\x01\x01");
    app2.extend(&profile);
    let sof_len = usize::from(u16::from_be_bytes([good[sof + 2], good[sof + 3]]));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("junk before a marker", insert(good.clone(), sof, b"junk")),
        (
            "FF 00 in the header",
            insert(good.clone(), sof, &[0xFF, 0x00]),
        ),
        ("junk before EOI", insert(good.clone(), eoi, &[1, 2, 3])),
        (
            "ICC after SOF",
            insert(good.clone(), sof + 2 + sof_len, &app2),
        ),
        (
            "broken EXIF segment",
            insert(
                good.clone(),
                2,
                &[
                    0xFF, 0xE1, 0, 12, b'E', b'x', b'i', b'f', 0, 0, b'M', b'M', 0, 0x2A,
                ],
            ),
        ),
        (
            "short Adobe APP14",
            insert(
                good.clone(),
                2,
                &[0xFF, 0xEE, 0, 7, b'A', b'd', b'o', b'b', b'e'],
            ),
        ),
    ];
    let truncated: Vec<(&str, Vec<u8>)> = vec![
        ("cut in the scan", good[..(sos + eoi) / 2].to_vec()),
        ("cut before EOI", good[..eoi].to_vec()),
        (
            "junk then cut",
            insert(good.clone(), sof, b"junk")[..(sos + eoi) / 2].to_vec(),
        ),
        ("a thumbnail's markers, junk, then cut", {
            // An APP1 holding a whole little JPEG (its own SOS and EOI) before the frame.
            let thumb = jpeg(8, 8);
            let mut app1 = vec![0xFF, 0xE1];
            app1.extend(u16::try_from(thumb.len() + 2).unwrap().to_be_bytes());
            app1.extend_from_slice(&thumb);
            let with = insert(insert(good.clone(), sof, b"junk"), 2, &app1);
            let cut = with.len() - (eoi - sos) / 2;
            with[..cut].to_vec()
        }),
    ];
    let mut routes = Vec::new();
    for (i, (_, bytes)) in cases.iter().chain(truncated.iter()).enumerate() {
        routes.push((format!("/{i}.jpg"), bytes::Bytes::from(bytes.clone())));
    }
    let origin = Origin::start(
        routes
            .iter()
            .map(|(n, b)| (n.as_str(), Reply::Body("image/jpeg", b.clone())))
            .collect(),
    )
    .await;
    let p = proxy(|_| {}).await;
    for (i, (what, _)) in cases.iter().enumerate() {
        let r = p
            .get(&format!("/img/f_png/{}", origin.url(&format!("/{i}.jpg"))))
            .await;
        assert_eq!(r.status, 200, "{what}: {}", r.text());
        let diff = mean_abs_diff(&r.image(), &want);
        assert!(diff < 2.0, "{what}: mean difference {diff:.2}");
    }
    for (j, (what, _)) in truncated.iter().enumerate() {
        let i = cases.len() + j;
        let r = p
            .get(&format!("/img/f_png/{}", origin.url(&format!("/{i}.jpg"))))
            .await;
        r.assert_error(422, "corrupt image");
        let _ = what;
    }
}

/// The smallest valid ICC profile we can make without a colour library: the sRGB profile
/// moxcms writes (a dev-time dependency of the library itself).
fn moxcms_free_srgb_profile() -> Vec<u8> {
    moxcms::ColorProfile::new_srgb()
        .encode()
        .expect("encode srgb")
}

#[tokio::test]
async fn gif_without_any_colour_table_uses_a_default_palette() {
    // A 2x2 GIF89a: no global table, an image descriptor without a local one, LZW data
    // for indices 0,1,1,0 (black, white, white, black with the default palette).
    let frame = image::RgbaImage::from_fn(2, 2, |x, y| {
        if (x + y) % 2 == 0 {
            image::Rgba([0, 0, 0, 255])
        } else {
            image::Rgba([255, 255, 255, 255])
        }
    });
    let gif = encode(
        &image::DynamicImage::ImageRgba8(frame),
        image::ImageFormat::Gif,
    );
    let stripped = strip_colour_tables(&gif);
    let origin = Origin::start(vec![("/g.gif", Reply::Body("image/gif", stripped.into()))]).await;
    let p = proxy(|_| {}).await;
    let r = p.get(&format!("/img/f_png/{}", origin.url("/g.gif"))).await;
    r.assert_ok();
    assert_eq!(r.dims(), (2, 2));
}

/// `gif` with its global and local colour tables removed (flags cleared, tables cut out).
fn strip_colour_tables(gif: &[u8]) -> Vec<u8> {
    let table = |flags: u8| {
        if flags & 0x80 != 0 {
            3 << ((flags & 7) + 1)
        } else {
            0
        }
    };
    let mut out = gif[..13].to_vec();
    out[10] &= 0x7F;
    let mut at = 13 + table(gif[10]);
    while at < gif.len() {
        match gif[at] {
            0x2C => {
                let flags = gif[at + 9];
                out.extend_from_slice(&gif[at..at + 9]);
                out.push(flags & 0x78);
                at += 10 + table(flags);
                // LZW minimum code size and the sub-blocks, copied as they are.
                out.push(gif[at]);
                at += 1;
                while gif[at] != 0 {
                    let n = usize::from(gif[at]) + 1;
                    out.extend_from_slice(&gif[at..at + n]);
                    at += n;
                }
                out.push(0);
                at += 1;
            }
            0x21 => {
                out.extend_from_slice(&gif[at..at + 2]);
                at += 2;
                while gif[at] != 0 {
                    let n = usize::from(gif[at]) + 1;
                    out.extend_from_slice(&gif[at..at + n]);
                    at += n;
                }
                out.push(0);
                at += 1;
            }
            _ => {
                out.extend_from_slice(&gif[at..]);
                break;
            }
        }
    }
    out
}

#[tokio::test]
async fn passthrough_serves_listed_formats_as_they_are_when_nothing_changes() {
    let p = proxy(|c| c.source.passthrough = vec!["tiff".into(), "gif".into()]).await;
    let original = formats_fixture("photo.tiff");
    for options in ["_", "q_50", "c_fill,g_n"] {
        let r = p.get(&format!("/img/{options}/formats/photo.tiff")).await;
        r.assert_ok();
        assert_eq!(r.header("content-type"), "image/tiff", "{options}");
        assert_eq!(r.header("x-content-type-options"), "nosniff");
        assert!(r.header("content-security-policy").contains("sandbox"));
        assert_eq!(r.body, original, "{options}");
    }
    // A size or another format goes through the pipeline.
    let r = p.get("/img/w_20/formats/photo.tiff").await;
    assert_eq!(r.header("content-type"), "image/jpeg");
    let r = p.get("/img/f_png/formats/photo.tiff").await;
    assert_eq!(r.header("content-type"), "image/png");
    // A format not listed is transcoded as ever.
    let r = p.get("/img/_/formats/photo.bmp").await;
    assert_eq!(r.header("content-type"), "image/jpeg");
    // Unknown names are a configuration error.
    let mut c = imgcdn::config::Config::default();
    c.source.passthrough = vec!["pdf".into()];
    let err = imgcdn::config::Settings::try_from(c).expect_err("refused");
    assert!(err.to_string().contains("source.passthrough"), "{err}");
}

#[tokio::test]
async fn svg_renders_at_the_output_size_and_loads_nothing_external() {
    let p = proxy(|_| {}).await;
    // Rendered at 300 px from the vector (not a 120 px bitmap scaled up), without `up_1`.
    let r = p.get("/img/w_300,f_png/formats/logo.svg").await;
    r.assert_ok();
    let want = image::load_from_memory(&formats_fixture("logo-300.rsvg.png")).expect("ref");
    assert_eq!(r.dims(), (300, 200));
    let diff = mean_abs_diff(&r.image(), &want);
    assert!(diff <= 1.5, "mean difference {diff:.2}");
    assert_eq!(
        p.get("/img/w_2000/formats/logo.svg").await.dims(),
        (2000, 1333)
    );
    // External references of every kind reach nothing.
    let origin = Origin::start(vec![("/x.png", Reply::Body("image/png", alpha_png()))]).await;
    let svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="40" height="40"><style>@import url("{u}");</style><image href="{u}" width="40" height="40"/><image xlink:href="file:///etc/passwd" width="40" height="40"/><use href="{u}#a"/><rect width="10" height="10" fill="red"/></svg>"#,
        u = origin.url("/x.png")
    );
    let page = Origin::start(vec![(
        "/e.svg",
        Reply::Body("image/svg+xml", bytes::Bytes::from(svg)),
    )])
    .await;
    let r = p.get(&format!("/img/f_png/{}", page.url("/e.svg"))).await;
    r.assert_ok();
    assert_eq!(r.dims(), (40, 40));
    assert_eq!(origin.hits(), 0, "the SVG made the server fetch");
}

#[tokio::test]
async fn svg_passthrough_serves_a_sanitised_svg_only_when_asked() {
    let hostile = br#"<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" onload="alert(1)"><script>alert(2)</script><foreignObject width="20" height="20"><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject><a href="javascript:alert(3)"><rect width="20" height="20" fill="blue"/></a></svg>"#;
    let origin = Origin::start(vec![(
        "/h.svg",
        Reply::Body("image/svg+xml", bytes::Bytes::from_static(hostile)),
    )])
    .await;
    let url = origin.url("/h.svg");
    // Off by default: rasterised (as PNG: SVG has alpha).
    let p = proxy(|_| {}).await;
    let r = p.get(&format!("/img/_/{url}")).await;
    assert_eq!(r.header("content-type"), "image/png");
    let p = proxy(|c| c.output.svg_passthrough = true).await;
    let r = p.get(&format!("/img/_/{url}")).await;
    r.assert_ok();
    assert_eq!(r.header("content-type"), "image/svg+xml");
    assert!(r.header("content-security-policy").contains("sandbox"));
    let text = r.text().to_lowercase();
    for bad in ["script", "onload", "javascript", "foreignobject", "alert"] {
        assert!(!text.contains(bad), "{bad} in {text}");
    }
    assert!(text.contains("<svg"), "{text}");
    // Listed in source.passthrough, an SVG is sanitised all the same.
    let listed = proxy(|c| c.source.passthrough = vec!["svg".into()]).await;
    let r = listed.get(&format!("/img/_/{url}")).await;
    assert_eq!(r.header("content-type"), "image/svg+xml");
    assert!(!r.text().to_lowercase().contains("script"), "{}", r.text());
    // A size still rasterises.
    let r = p.get(&format!("/img/w_10/{url}")).await;
    assert_eq!(r.header("content-type"), "image/png");
    assert_eq!(r.dims(), (10, 10));
}
