//! SVG codec tests: sniffing, sizes, pixels against librsvg's `rsvg-convert`, hostile documents.

use std::time::{Duration, Instant};

use super::*;

const LIMITS: Limits = Limits {
    max_source_pixels: 50_000_000,
    max_output_pixels: 25_000_000,
    max_decode_bytes: 512 << 20,
    max_frames: 1000,
    max_animation_pixels: 100_000_000,
    max_upscale: 4,
    max_avif_pixels: 2_100_000,
    deadline: None,
};

const LOGO: &[u8] = include_bytes!("../../../../tests/fixtures/formats/logo.svg");
const ALPHA: &[u8] = include_bytes!("../../../../tests/fixtures/formats/alpha.svg");

fn at(scale: f64) -> DecodeAt {
    DecodeAt {
        scale,
        ..DecodeAt::page(1)
    }
}

fn render(svg: &[u8], scale: f64) -> Result<Pixels, PipelineError> {
    let header = probe(svg, &LIMITS)?;
    decode(svg, &header, &at(scale), &LIMITS)
}

/// A reference PNG written by `rsvg-convert`, as RGBA8.
fn reference(name: &str) -> (u32, u32, Vec<u8>) {
    let path = format!(
        "{}/tests/fixtures/formats/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut reader = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Mean absolute difference per channel of two RGBA buffers, colour weighted by alpha (the
/// colour of an almost transparent pixel is noise).
fn mean_error(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mut sum = 0.0;
    for (p, q) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        let weight = f64::from(p[3].max(q[3])) / 255.0;
        for c in 0..3 {
            sum += f64::from(p[c].abs_diff(q[c])) * weight;
        }
        sum += f64::from(p[3].abs_diff(q[3]));
    }
    sum / a.len() as f64
}

fn transparent(p: &Pixels) -> bool {
    p.buf.chunks_exact(4).all(|px| px[3] == 0)
}

#[test]
fn sniff_accepts_svg_prologues() {
    for ok in [
        &b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"[..],
        b"\xEF\xBB\xBF  \n<?xml version=\"1.0\"?>\n<svg>",
        b"<!-- Generator: Adobe Illustrator --><?xml-stylesheet href=\"a.css\"?>\n<svg\n>",
        b"<?xml version=\"1.0\"?><!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \
          \"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\"><svg width=\"1\">",
        b"<!DOCTYPE svg [ <!ENTITY ns \"http://www.w3.org/2000/svg\"> ]><svg xmlns=\"&ns;\">",
        LOGO,
        ALPHA,
    ] {
        assert!(sniff(ok), "{}", String::from_utf8_lossy(ok));
    }
}

#[test]
fn sniff_refuses_html_and_others() {
    for no in [
        &b""[..],
        b"<!DOCTYPE html><html><body><svg></svg></body></html>",
        b"<html><svg xmlns=\"http://www.w3.org/2000/svg\"/></html>",
        b"<!doctype html>\n<svg>",
        b"<?xml version=\"1.0\"?><html xmlns=\"http://www.w3.org/1999/xhtml\"><svg/></html>",
        b"<svgfoo/>",
        b"text <svg/>",
        b"<!-- unterminated comment <svg/>",
        b"<!DOCTYPE svgx><svg/>",
        b"\x89PNG\r\n\x1a\n",
    ] {
        assert!(!sniff(no), "{}", String::from_utf8_lossy(no));
    }
    // The root must come within the first 4 KiB.
    let mut late = b"<!--".to_vec();
    late.extend(std::iter::repeat_n(b'x', 5000));
    late.extend(b"--><svg/>");
    assert!(!sniff(&late));
}

#[test]
fn probe_logo_intrinsic_size() {
    let h = probe(LOGO, &LIMITS).unwrap();
    assert_eq!(
        (h.width, h.height, h.orientation, h.frames),
        (120, 80, 1, 1)
    );
    let m = metadata(LOGO);
    assert!(m.exif.is_none() && m.icc.is_none());
}

#[test]
fn probe_rounds_up_and_caps_huge_sizes() {
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="10.2" height="0.3"/>"#;
    let h = probe(svg, &LIMITS).unwrap();
    assert_eq!((h.width, h.height), (11, 1));
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="1000000" height="500000"/>"#;
    let h = probe(svg, &LIMITS).unwrap();
    assert_eq!((h.width, h.height), (10_000, 5_000));
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9000 9000"/>"#;
    let h = probe(svg, &LIMITS).unwrap();
    assert!(u64::from(h.width) * u64::from(h.height) <= LIMITS.max_source_pixels);
    assert_eq!(h.width, h.height);
}

#[test]
fn decode_logo_matches_rsvg() {
    let p = render(LOGO, 1.0).unwrap();
    let (w, h, reference) = reference("logo.rsvg.png");
    assert_eq!((p.width, p.height, p.alpha), (w, h, true));
    let e = mean_error(&p.buf, &reference);
    assert!(e < 1.5, "mean error {e}");
}

#[test]
fn decode_logo_scaled_up_matches_rsvg() {
    let p = render(LOGO, 2.5).unwrap();
    let (w, h, reference) = reference("logo-300.rsvg.png");
    assert_eq!((p.width, p.height), (w, h));
    assert_eq!((p.width, p.height), (300, 200));
    let e = mean_error(&p.buf, &reference);
    assert!(e < 1.5, "mean error {e}");
}

#[test]
fn decode_scale_rounds_up() {
    let p = render(LOGO, 0.1).unwrap();
    assert_eq!((p.width, p.height), (12, 8));
    let p = render(LOGO, 0.001).unwrap();
    assert_eq!((p.width, p.height), (1, 1));
}

#[test]
fn decode_alpha_is_straight_and_matches_rsvg() {
    let p = render(ALPHA, 1.0).unwrap();
    let (_, _, reference) = reference("alpha.rsvg.png");
    let e = mean_error(&p.buf, &reference);
    assert!(e < 1.5, "mean error {e}");
    let px = |x: usize, y: usize| &p.buf[(y * 64 + x) * 4..][..4];
    assert_eq!(px(1, 1), [0, 0, 0, 0]);
    // Half-transparent red alone: straight alpha keeps the full red.
    let red = px(50, 45);
    assert!(
        red[0] >= 250 && red[1] < 5 && red[3].abs_diff(128) <= 1,
        "{red:?}"
    );
    assert_eq!(px(12, 12), [0, 0x40, 0xff, 255]);
}

#[test]
fn decode_in_strips_equals_one_render() {
    // 2000 px tall: many strips, the same pixels as resvg rendering in one go.
    let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="1000">
        <filter id="b"><feGaussianBlur stdDeviation="8"/></filter>
        <circle cx="50" cy="500" r="40" fill="#c00" filter="url(#b)"/>
        <path d="M0 0 L100 1000" stroke="blue" stroke-width="3"/></svg>"##;
    let p = render(svg, 2.0).unwrap();
    let tree = parse(svg, &LIMITS).unwrap();
    let mut whole = resvg::tiny_skia::Pixmap::new(200, 2000).unwrap();
    resvg::render(&tree, Transform::from_scale(2.0, 2.0), &mut whole.as_mut());
    let whole: Vec<u8> = whole
        .pixels()
        .iter()
        .flat_map(|c| {
            let c = c.demultiply();
            [c.red(), c.green(), c.blue(), c.alpha()]
        })
        .collect();
    assert!(mean_error(&p.buf, &whole) < 0.05);
}

#[test]
fn external_images_are_never_loaded() {
    let fixture = format!(
        "{}/tests/fixtures/formats/alpha.rsvg.png",
        env!("CARGO_MANIFEST_DIR")
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    // A 1x1 opaque red PNG.
    let data_png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
    for href in [
        fixture.clone(),
        format!("file://{fixture}"),
        "file:///etc/passwd".into(),
        "alpha.rsvg.png".into(),
        format!("http://127.0.0.1:{port}/x.png"),
        format!("data:image/png;base64,{data_png}"),
        format!("data:text/plain;base64,{data_png}"),
        "data:image/svg+xml;utf8,&lt;svg xmlns='http://www.w3.org/2000/svg'&gt;&lt;rect width='9' height='9'/&gt;&lt;/svg&gt;".into(),
    ] {
        let svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="8" height="8">
               <image href="{href}" width="8" height="8"/><image xlink:href="{href}" width="8" height="8"/></svg>"#
        );
        let p = render(svg.as_bytes(), 1.0).unwrap();
        assert!(transparent(&p), "{href} was drawn");
        let clean = String::from_utf8(sanitize(svg.as_bytes(), &LIMITS).unwrap()).unwrap();
        assert!(!clean.contains("<image"), "{clean}");
    }
    assert!(listener.accept().is_err(), "a connection was made");
}

#[test]
fn external_use_css_and_entities_resolve_to_nothing() {
    for svg in [
        &br#"<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><use href="other.svg#x"/>
            <use href="/etc/passwd#x"/></svg>"#[..],
        br#"<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><style>
            @import url("http://127.0.0.1:1/x.css"); @import "file:///etc/passwd";</style>
            <rect width="8" height="8" fill="none"/></svg>"#,
        br#"<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
            <svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><desc>&xxe;</desc></svg>"#,
        br#"<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
            <svg xmlns="http://www.w3.org/2000/svg" width="8" height="8" id="&xxe;"/>"#,
    ] {
        // Refused or drawn empty; never the file's contents.
        if let Ok(p) = render(svg, 1.0) {
            assert!(transparent(&p));
        }
        if let Ok(clean) = sanitize(svg, &LIMITS) {
            assert!(!String::from_utf8(clean).unwrap().contains("root:"));
        }
    }
}

#[test]
fn internal_entities_from_illustrator_are_kept() {
    let svg = br##"<?xml version="1.0"?>
        <!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [
        <!ENTITY ns_svg "http://www.w3.org/2000/svg"> <!ENTITY fill "#ff0000"> ]>
        <svg xmlns="&ns_svg;" width="4" height="4"><rect width="4" height="4" fill="&fill;"/></svg>"##;
    assert!(sniff(svg));
    let p = render(svg, 1.0).unwrap();
    assert_eq!(&p.buf[..4], [255, 0, 0, 255]);
}

#[test]
fn billion_laughs_is_refused() {
    let mut svg =
        String::from("<?xml version=\"1.0\"?><!DOCTYPE svg [<!ENTITY a \"lol lol lol lol\">");
    for i in 1..10 {
        let prev = (b'a' + i - 1) as char;
        let refs: String = std::iter::repeat_n(format!("&{prev};"), 10).collect();
        svg += &format!("<!ENTITY {} \"{refs}\">", (b'a' + i) as char);
    }
    svg += "]><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"8\" height=\"8\"><desc>&j;</desc></svg>";
    assert!(matches!(
        probe(svg.as_bytes(), &LIMITS),
        Err(PipelineError::Unsupported(_))
    ));
    // One flat entity referenced a million times expands past the size cap.
    let big = "x".repeat(4000);
    let refs = "&b;".repeat(3000);
    let svg = format!(
        "<!DOCTYPE svg [<!ENTITY b \"{big}\">]><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\"><desc>{refs}</desc></svg>"
    );
    assert!(matches!(
        probe(svg.as_bytes(), &LIMITS),
        Err(PipelineError::Unsupported(_))
    ));
}

/// CVE-2019-20446 style: each level is a group of ten `<use>` of the level below.
fn use_bomb(levels: usize) -> String {
    let mut svg = String::from(
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="100"><defs><path id="l0" d="M0 0 L100 100 L0 100 Z"/>"#,
    );
    for level in 1..=levels {
        svg += &format!("<g id=\"l{level}\">");
        for _ in 0..10 {
            svg += &format!("<use xlink:href=\"#l{}\"/>", level - 1);
        }
        svg += "</g>";
    }
    svg + &format!("</defs><use xlink:href=\"#l{levels}\"/></svg>")
}

#[test]
fn nested_use_explosion_is_bounded() {
    let started = Instant::now();
    let svg = use_bomb(10);
    let result = probe(svg.as_bytes(), &LIMITS);
    assert!(
        matches!(result, Err(PipelineError::DecodeTooLarge { .. })),
        "{result:?}"
    );
    eprintln!("use bomb refused in {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn deep_nesting_is_refused() {
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\">{}{}</svg>",
        "<g>".repeat(5000),
        "</g>".repeat(5000)
    );
    assert!(probe(svg.as_bytes(), &LIMITS).is_err());
}

#[test]
fn costly_render_is_refused_before_rendering() {
    // 2000 full-canvas blurred layers at 4000 x 4000.
    let mut svg = String::from(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><filter id="b"><feGaussianBlur stdDeviation="30"/></filter>"##,
    );
    for _ in 0..2000 {
        svg += r##"<rect width="100" height="100" fill="red" filter="url(#b)"/>"##;
    }
    svg += "</svg>";
    let header = probe(svg.as_bytes(), &LIMITS).unwrap();
    let result = decode(svg.as_bytes(), &header, &at(40.0), &LIMITS);
    assert!(
        matches!(result, Err(PipelineError::DecodeTooLarge { .. })),
        "{result:?}"
    );
}

/// A tall document, light per row but long in all: 200 blurred discs down 100 x 4000.
fn tall_blurred() -> String {
    let mut svg = String::from(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="4000"><filter id="b"><feGaussianBlur stdDeviation="3"/></filter>"##,
    );
    for i in 0..200 {
        svg += &format!(
            r##"<circle cx="50" cy="{}" r="30" fill="red" filter="url(#b)"/>"##,
            i * 20
        );
    }
    svg + "</svg>"
}

#[test]
fn slow_render_stops_at_the_deadline() {
    let svg = tall_blurred();
    let header = probe(svg.as_bytes(), &LIMITS).unwrap();
    let deadline = Instant::now() + Duration::from_millis(50);
    let limits = Limits {
        deadline: Some(deadline),
        ..LIMITS
    };
    let result = decode(svg.as_bytes(), &header, &at(2.0), &limits);
    let late = Instant::now().saturating_duration_since(deadline);
    eprintln!("timed out {late:?} after the deadline");
    assert_eq!(result.unwrap_err(), PipelineError::Timeout);
    assert!(late < Duration::from_millis(500), "{late:?} late");
}

#[test]
fn dense_render_is_refused_before_rendering() {
    // 60 full-size blurred discs: each 16-row strip alone would take about half a second.
    let mut svg = String::from(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><filter id="b"><feGaussianBlur stdDeviation="3"/></filter>"##,
    );
    for i in 0..60 {
        svg += &format!(
            r##"<circle cx="{}" cy="50" r="45" fill="red" filter="url(#b)"/>"##,
            i
        );
    }
    svg += "</svg>";
    let header = probe(svg.as_bytes(), &LIMITS).unwrap();
    let result = decode(svg.as_bytes(), &header, &at(4.0), &LIMITS);
    assert!(
        matches!(result, Err(PipelineError::DecodeTooLarge { .. })),
        "{result:?}"
    );
}

#[test]
fn limits_give_413() {
    let header = probe(LOGO, &LIMITS).unwrap();
    let small = Limits {
        max_source_pixels: 10_000,
        ..LIMITS
    };
    let r = decode(LOGO, &header, &at(2.0), &small);
    assert!(
        matches!(r, Err(PipelineError::SourceTooLarge { .. })),
        "{r:?}"
    );
    let small = Limits {
        max_decode_bytes: 4 * 120 * 80 - 1,
        ..LIMITS
    };
    let r = decode(LOGO, &header, &at(1.0), &small);
    assert!(
        matches!(r, Err(PipelineError::DecodeTooLarge { .. })),
        "{r:?}"
    );
    let mut big = LOGO.to_vec();
    big.resize(MAX_SVG_BYTES + 1, b' ');
    let r = probe(&big, &LIMITS);
    assert!(
        matches!(r, Err(PipelineError::MetadataTooLarge { .. })),
        "{r:?}"
    );
}

#[test]
fn truncated_and_corrupt_inputs_are_errors() {
    for cut in [0, 1, 10, LOGO.len() / 2, LOGO.len() - 10] {
        assert!(probe(&LOGO[..cut], &LIMITS).is_err(), "cut at {cut}");
    }
    assert!(matches!(
        probe(b"<svg\xff>", &LIMITS),
        Err(PipelineError::Corrupt(_))
    ));
    assert!(probe(
        br#"<svg xmlns="http://www.w3.org/2000/svg" width="0" height="5"/>"#,
        &LIMITS
    )
    .is_err());
    // Bit flips: any result, never a panic.
    for i in 0..LOGO.len() {
        let mut flipped = LOGO.to_vec();
        flipped[i] ^= 1 << (i % 8);
        if let Ok(h) = probe(&flipped, &LIMITS) {
            let _ = decode(&flipped, &h, &at(0.5), &LIMITS);
        }
    }
}

#[test]
fn sanitize_drops_active_content() {
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10" onload="alert(1)">
        <script>alert(2)</script>
        <a href="javascript:alert(3)"><rect width="10" height="10" fill="red" onclick="alert(4)"/></a>
        <a xlink:href="javascript:alert(5)"><circle r="3" fill="blue"/></a>
        <foreignObject width="10" height="10"><div xmlns="http://www.w3.org/1999/xhtml"><iframe src="https://evil.example/"></iframe>hi</div></foreignObject>
        <image href="https://evil.example/x.png" width="5" height="5"/>
        <set attributeName="onmouseover" to="alert(6)"/>
        </svg>"#;
    let clean = String::from_utf8(sanitize(svg, &LIMITS).unwrap()).unwrap();
    for bad in [
        "script",
        "alert",
        "javascript",
        "foreignObject",
        "iframe",
        "evil",
        "<image",
        "onload",
        "onclick",
        "<set",
    ] {
        assert!(!clean.contains(bad), "{bad} in {clean}");
    }
    // What is drawn survives, and the result is an SVG we read back the same.
    assert!(clean.contains("<path"));
    assert!(sniff(clean.as_bytes()));
    assert!(!transparent(&render(clean.as_bytes(), 1.0).unwrap()));
}

/// Prints render times; run with `--ignored --nocapture` (release numbers are in the report).
#[test]
#[ignore]
fn timing() {
    for (name, svg, scale) in [
        ("logo 300px", LOGO, 2.5),
        ("logo 2000px", LOGO, 2000.0 / 120.0),
        ("logo 4200px (12 MP)", LOGO, 35.0),
    ] {
        let header = probe(svg, &LIMITS).unwrap();
        let started = Instant::now();
        let runs = 5;
        for _ in 0..runs {
            decode(svg, &header, &at(scale), &LIMITS).unwrap();
        }
        eprintln!("{name}: {:?} per render", started.elapsed() / runs);
        let tree = parse(svg, &LIMITS).unwrap();
        let (w, h) = output_size(&header, scale, &LIMITS).unwrap();
        let started = Instant::now();
        let mut whole = resvg::tiny_skia::Pixmap::new(w, h).unwrap();
        let s = w as f32 / tree.size().width();
        resvg::render(&tree, Transform::from_scale(s, s), &mut whole.as_mut());
        eprintln!("{name}: one resvg::render {:?}", started.elapsed());
        let started = Instant::now();
        demultiply(whole.data_mut());
        eprintln!("{name}: demultiply {:?}", started.elapsed());
    }
}

#[test]
fn use_chains_within_the_cap_still_render() {
    // Three levels of ten: 10^3 paths, under the caps.
    let svg = use_bomb(3);
    let p = render(svg.as_bytes(), 1.0).unwrap();
    assert!(!transparent(&p));
}

#[test]
fn deep_xml_nesting_is_refused_without_overflowing_the_stack() {
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\">{}{}</svg>",
        "<g>".repeat(200_000),
        "</g>".repeat(200_000)
    );
    assert!(matches!(
        probe(svg.as_bytes(), &LIMITS),
        Err(PipelineError::DecodeTooLarge { .. })
    ));
}

/// Prints estimated work against measured time, to calibrate `MAX_WORK` and `STRIP_WORK`.
#[test]
#[ignore]
fn calibrate() {
    let mut blurred = String::from(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><filter id="b"><feGaussianBlur stdDeviation="3"/></filter>"##,
    );
    let mut paths =
        String::from(r##"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">"##);
    for i in 0..60 {
        blurred += &format!(
            r##"<circle cx="{}" cy="50" r="45" fill="red" filter="url(#b)"/>"##,
            i % 100
        );
    }
    for i in 0..20_000 {
        paths += &format!(
            r##"<path d="M{} {} l30 5 l-10 20 z" fill="#{:06x}" opacity="0.5"/>"##,
            i % 90,
            (i / 90) % 90,
            i * 7919 % 0xffffff
        );
    }
    blurred += "</svg>";
    paths += "</svg>";
    for (name, svg, scale) in [
        ("logo 2000", LOGO.to_vec(), 2000.0 / 120.0),
        ("blurred 400", blurred.into_bytes(), 4.0),
        ("20k paths 400", paths.into_bytes(), 4.0),
        ("tall blurred 200x8000", tall_blurred().into_bytes(), 2.0),
    ] {
        let header = probe(&svg, &LIMITS).unwrap();
        let tree = parse(&svg, &LIMITS).unwrap();
        let (w, h) = output_size(&header, scale, &LIMITS).unwrap();
        let size = tree.size();
        let (sx, sy) = (w as f32 / size.width(), h as f32 / size.height());
        let view = usvg::Rect::from_xywh(0.0, 0.0, size.width(), size.height()).unwrap();
        let mut cost = Cost::default();
        measure(tree.root(), view, sx.into(), sy.into(), 1, &mut cost);
        let rows = strip_rows(&tree, sx, sy, w, h, &LIMITS);
        let started = Instant::now();
        let r = decode(&svg, &header, &at(scale), &LIMITS);
        eprintln!(
            "{name}: nodes {} pixels {:.3e} rows {rows:?} -> {:?} in {:?}",
            cost.nodes,
            cost.pixels,
            r.map(|p| p.width),
            started.elapsed()
        );
    }
}

/// Runs `f`, asserting it returns within a second (the refusals must never start the slow
/// work), and reports how long it took.
fn quickly<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    eprintln!("{what}: {took:?}");
    assert!(took < Duration::from_secs(1), "{what} took {took:?}");
    out
}

fn svg_500(body: &str) -> String {
    format!(r##"<svg xmlns="http://www.w3.org/2000/svg" width="500" height="500">{body}</svg>"##)
}

#[test]
fn exponential_css_selectors_are_refused_before_usvg() {
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><style>x * * * * * * * * * * * *{{fill:red}}</style>{}<rect width="10" height="10"/>{}</svg>"##,
        "<g>".repeat(100),
        "</g>".repeat(100)
    );
    assert!(svg.len() < 1024);
    let refused = PipelineError::Unsupported("SVG stylesheet too complex".into());
    let result = quickly("13-compound selector, 100 nested groups", || {
        probe(svg.as_bytes(), &LIMITS)
    });
    assert_eq!(result.unwrap_err(), refused);
    assert_eq!(sanitize(svg.as_bytes(), &LIMITS).unwrap_err(), refused);

    // Within the compound limit, backtracking over 1000 nested groups is still too much.
    let deep = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><style>x * * *{{fill:red}}</style>{}{}</svg>"##,
        "<g>".repeat(1000),
        "</g>".repeat(1000)
    );
    let result = quickly("4-compound selector, 1000 nested groups", || {
        probe(deep.as_bytes(), &LIMITS)
    });
    assert_eq!(result.unwrap_err(), refused);

    // Backtracking over earlier siblings.
    let siblings = svg_500(&format!(
        "<style>a ~ b ~ c ~ rect{{fill:red}}</style>{}",
        "<rect/>".repeat(1000)
    ));
    let result = quickly("4-compound sibling selector, 1000 siblings", || {
        probe(siblings.as_bytes(), &LIMITS)
    });
    assert_eq!(result.unwrap_err(), refused);

    // Many rules times many elements, and too much CSS.
    let rules: String = (0..2000).map(|i| format!(".c{i}{{fill:red}}")).collect();
    let rects = "<rect/>".repeat(1000);
    let wide = svg_500(&format!("<style>{rules}</style>{rects}"));
    assert_eq!(probe(wide.as_bytes(), &LIMITS).unwrap_err(), refused);
    let big = svg_500(&format!("<style>/*{}*/</style>", " ".repeat(70 << 10)));
    assert_eq!(probe(big.as_bytes(), &LIMITS).unwrap_err(), refused);
}

#[test]
fn ordinary_stylesheets_still_render() {
    let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><style><![CDATA[
        /* Illustrator */ .a{fill:red} #b rect, g > rect[x~="0"]{stroke:blue}
        @media screen { .c { fill: lime } }
    ]]></style><rect class="a" width="10" height="10"/><g id="b"><rect width="1" height="1"/></g></svg>"##;
    let pixels = render(svg.as_bytes(), 1.0).unwrap();
    assert_eq!(&pixels.buf[4 * 55..4 * 56], &[255, 0, 0, 255]);
    assert_eq!(compounds(r#"g > rect[x~="a b"] ~ a:not(.b c)"#), 3);
    assert_eq!(compounds("  "), 0);
}

const HUGE_PATTERN: &str = r##"<pattern id="p" width="10" height="10" patternUnits="userSpaceOnUse" patternTransform="scale(10000)"><rect width="10" height="10"/></pattern><rect width="100" height="100" fill="url(#p)"/>"##;

#[test]
fn huge_pattern_tiles_are_refused() {
    let svg = svg_500(HUGE_PATTERN);
    let header = probe(svg.as_bytes(), &LIMITS).unwrap();
    let result = quickly("100k x 100k pattern tile", || {
        decode(svg.as_bytes(), &header, &at(1.0), &LIMITS)
    });
    assert!(
        matches!(result, Err(PipelineError::DecodeTooLarge { width, .. }) if width >= 100_000),
        "{result:?}"
    );
    // The same tile nested in a pattern, a mask and a scaled group.
    let nested = svg_500(&format!(
        r##"<mask id="m"><g transform="scale(0.5)">{HUGE_PATTERN}</g></mask><rect width="9" height="9" mask="url(#m)"/>"##
    ));
    let header = probe(nested.as_bytes(), &LIMITS).unwrap();
    let result = decode(nested.as_bytes(), &header, &at(1.0), &LIMITS);
    assert!(
        matches!(result, Err(PipelineError::DecodeTooLarge { .. })),
        "{result:?}"
    );
    let inner = svg_500(
        r##"<pattern id="q" width="10" height="10" patternUnits="userSpaceOnUse" patternTransform="scale(100)"><rect width="10" height="10"/></pattern><pattern id="p" width="10" height="10" patternUnits="userSpaceOnUse" patternTransform="scale(100)"><rect width="10" height="10" fill="url(#q)"/></pattern><rect width="100" height="100" fill="url(#p)"/>"##,
    );
    let header = probe(inner.as_bytes(), &LIMITS).unwrap();
    let result = decode(inner.as_bytes(), &header, &at(1.0), &LIMITS);
    assert!(
        matches!(result, Err(PipelineError::DecodeTooLarge { .. })),
        "{result:?}"
    );
}

#[test]
fn small_patterns_still_render() {
    let svg = svg_500(
        r##"<pattern id="p" width="10" height="10" patternUnits="userSpaceOnUse" patternTransform="scale(2)"><rect width="5" height="10" fill="red"/></pattern><rect width="500" height="500" fill="url(#p)"/>"##,
    );
    let pixels = render(svg.as_bytes(), 1.0).unwrap();
    // Red columns 10 px wide every 20 px.
    assert_eq!(&pixels.buf[4 * 5..4 * 6], &[255, 0, 0, 255]);
    assert_eq!(pixels.buf[4 * 15 + 3], 0);
}

fn filtered_500(primitive: &str) -> String {
    svg_500(&format!(
        r##"<filter id="f">{primitive}</filter><rect width="500" height="500" fill="red" filter="url(#f)"/>"##
    ))
}

#[test]
fn costly_filter_primitives_are_refused() {
    let matrix = vec!["1"; 30 * 30].join(" ");
    for (what, primitive) in [
        (
            "feMorphology radius 500",
            r#"<feMorphology radius="500"/>"#.to_string(),
        ),
        (
            "feTurbulence 2e9 octaves",
            r#"<feTurbulence baseFrequency="0.05" numOctaves="2000000000"/>"#.to_string(),
        ),
        (
            "feConvolveMatrix 30 x 30",
            format!(r#"<feConvolveMatrix order="30" kernelMatrix="{matrix}"/>"#),
        ),
    ] {
        let svg = filtered_500(&primitive);
        let header = probe(svg.as_bytes(), &LIMITS).unwrap();
        let result = quickly(what, || decode(svg.as_bytes(), &header, &at(1.0), &LIMITS));
        assert!(
            matches!(result, Err(PipelineError::DecodeTooLarge { .. })),
            "{what}: {result:?}"
        );
    }
}

#[test]
fn ordinary_filters_still_render() {
    for primitive in [
        r#"<feGaussianBlur stdDeviation="3"/>"#,
        r#"<feMorphology radius="2"/>"#,
        r#"<feTurbulence baseFrequency="0.05" numOctaves="4"/>"#,
        r#"<feConvolveMatrix order="3" kernelMatrix="1 1 1 1 1 1 1 1 1"/>"#,
    ] {
        let svg = filtered_500(primitive);
        let pixels = render(svg.as_bytes(), 1.0).unwrap();
        assert!(!transparent(&pixels), "{primitive}");
    }
}
