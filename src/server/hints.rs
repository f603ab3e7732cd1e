//! Client hints (`output.client_hints = true`): the browser says its device pixel ratio
//! (`Sec-CH-DPR`, legacy `DPR`), the layout width of the image in device pixels
//! (`Sec-CH-Width`, legacy `Width`) and whether the user asked to save data (`Save-Data: on`).
//!
//! What the URL spells always wins, presets included (the caller passes the preset-expanded
//! segment): `dpr_` over a DPR hint, `w_` over a width hint, `q_` over `Save-Data`. A width
//! hint is already in device pixels, so DPR is not applied to it again. Hints are snapped so
//! they cannot mint variants: DPR to 1, 1.5, 2, 3 or 4, widths up to the next width bucket (or
//! to [`WIDTH_LADDER`] without buckets). The hints change the `Transform`, so the cache key
//! follows from it; the response names the hints it consulted in `Vary`. Pure: no I/O.

use http::header::HeaderMap;

use crate::config::UrlPolicy;
use crate::options::{self, Transform, MAX_DIMENSION};

/// Sent on every image response when hints are on, so browsers start sending them.
pub const ACCEPT_CH: &str = "Sec-CH-DPR, DPR, Sec-CH-Width, Width, Save-Data";

/// Widths a hinted width snaps up to when no `output.width_buckets` are configured (the
/// device and image sizes Next.js uses).
pub const WIDTH_LADDER: &[u32] = &[
    16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840,
];

/// Device pixel ratios a DPR hint is rounded to (the nearest).
const DPR_STEPS: &[f64] = &[1.0, 1.5, 2.0, 3.0, 4.0];

/// The hint headers that `apply` consulted, for `Vary`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Consulted {
    pub dpr: bool,
    pub width: bool,
    pub save_data: bool,
}

impl Consulted {
    /// The `Vary` value for these hints (empty when none).
    pub fn vary(self) -> String {
        let mut parts = Vec::new();
        if self.dpr {
            parts.push("Sec-CH-DPR, DPR");
        }
        if self.width {
            parts.push("Sec-CH-Width, Width");
        }
        if self.save_data {
            parts.push("Save-Data");
        }
        parts.join(", ")
    }
}

fn header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| headers.get(*n))
        .and_then(|v| v.to_str().ok())
}

/// Adjust `t` (parsed from `segment`, which must be the preset-expanded segment) by the
/// request's hints. A width hint is snapped up to the width buckets, or to [`WIDTH_LADDER`]
/// without them (no redirect: the URL did not choose it).
pub fn apply(
    t: &mut Transform,
    segment: &str,
    headers: &HeaderMap,
    save_data_quality: u8,
    policy: &UrlPolicy,
) -> Consulted {
    let mut used = Consulted::default();
    let url_width = options::mentions(segment, "w");
    if !url_width {
        used.width = true;
        let hint = header(headers, &["sec-ch-width", "width"])
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|w| (1..=MAX_DIMENSION).contains(w));
        if let Some(w) = hint {
            let ladder = if policy.width_buckets.is_empty() {
                WIDTH_LADDER
            } else {
                &policy.width_buckets[..]
            };
            let w = ladder
                .iter()
                .copied()
                .find(|&b| b >= w)
                .or(ladder.last().copied())
                .unwrap_or(w);
            t.width = Some(w);
        }
    }
    if !options::mentions(segment, "dpr") {
        used.dpr = true;
        let dpr = header(headers, &["sec-ch-dpr", "dpr"])
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .map(quantise_dpr);
        if let Some(dpr) = dpr {
            // A hinted width is in device pixels already: scale only the height then.
            let width = t.width;
            let hinted_width = !url_width && width.is_some();
            options::apply_dpr(t, &dpr.to_string());
            if hinted_width {
                t.width = width;
            }
        }
    }
    if !options::mentions(segment, "q") {
        used.save_data = true;
        let on =
            header(headers, &["save-data"]).is_some_and(|v| v.trim().eq_ignore_ascii_case("on"));
        if on {
            t.quality = Some(save_data_quality);
        }
    }
    used
}

/// The step of [`DPR_STEPS`] nearest to `dpr`.
fn quantise_dpr(dpr: f64) -> f64 {
    DPR_STEPS
        .iter()
        .copied()
        .min_by(|a, b| (a - dpr).abs().total_cmp(&(b - dpr).abs()))
        .unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn run(opts: &str, hints: &[(&'static str, &'static str)], buckets: &[u32]) -> String {
        let mut t = options::parse(opts).expect("options");
        let mut h = HeaderMap::new();
        for (k, v) in hints {
            h.insert(*k, HeaderValue::from_static(v));
        }
        let policy = UrlPolicy {
            width_buckets: buckets.to_vec(),
            ..UrlPolicy::default()
        };
        apply(&mut t, opts, &h, 50, &policy);
        t.to_string()
    }

    #[test]
    fn dpr_hint_scales_url_sizes_unless_url_has_dpr() {
        assert_eq!(
            run("w_300,h_100", &[("sec-ch-dpr", "2")], &[]),
            "w_600,h_200"
        );
        assert_eq!(run("w_300", &[("dpr", "1.5")], &[]), "w_450");
        assert_eq!(run("w_300,dpr_1", &[("sec-ch-dpr", "2")], &[]), "w_300");
        assert_eq!(
            run("w_300", &[("sec-ch-dpr", "9")], &[]),
            "w_1200",
            "clamped to 4"
        );
        assert_eq!(run("w_300", &[("sec-ch-dpr", "junk")], &[]), "w_300");
        // Quantised: 3.137 is 3, 1.2 is 1, 1.3 is 1.5.
        assert_eq!(run("w_300", &[("sec-ch-dpr", "3.137")], &[]), "w_900");
        assert_eq!(run("w_300", &[("sec-ch-dpr", "1.2")], &[]), "w_300");
        assert_eq!(run("w_300", &[("sec-ch-dpr", "1.3")], &[]), "w_450");
        assert_eq!(run("w_300", &[("sec-ch-dpr", "NaN")], &[]), "w_300");
    }

    #[test]
    fn width_hint_only_without_url_width_and_not_multiplied_again() {
        assert_eq!(run("_", &[("sec-ch-width", "640")], &[]), "w_640");
        // Snapped up to the ladder without buckets.
        assert_eq!(run("_", &[("sec-ch-width", "641")], &[]), "w_750");
        assert_eq!(run("_", &[("sec-ch-width", "4000")], &[]), "w_3840");
        assert_eq!(run("w_100", &[("sec-ch-width", "640")], &[]), "w_100");
        assert_eq!(
            run(
                "h_100",
                &[("sec-ch-width", "640"), ("sec-ch-dpr", "2")],
                &[]
            ),
            "w_640,h_200"
        );
        assert_eq!(run("_", &[("width", "0")], &[]), "_");
        assert_eq!(run("_", &[("width", "37")], &[]), "w_48");
        assert_eq!(run("_", &[("width", "700")], &[256, 768, 1024]), "w_768");
    }

    #[test]
    fn save_data_lowers_quality_unless_url_has_q() {
        assert_eq!(run("w_10", &[("save-data", "on")], &[]), "w_10,q_50");
        assert_eq!(run("w_10,q_90", &[("save-data", "on")], &[]), "w_10,q_90");
        assert_eq!(run("w_10", &[("save-data", "off")], &[]), "w_10");
    }

    #[test]
    fn vary_names_consulted_hints() {
        let all = Consulted {
            dpr: true,
            width: true,
            save_data: true,
        };
        assert_eq!(
            all.vary(),
            "Sec-CH-DPR, DPR, Sec-CH-Width, Width, Save-Data"
        );
        assert_eq!(Consulted::default().vary(), "");
    }
}
