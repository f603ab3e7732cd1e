//! Cache pre-warming (`imgcdn warm`): turn a list of paths, a sitemap or sources × widths into
//! request targets, then request them with bounded concurrency, either from a running server
//! (`online`) or straight into the configured cache directory through the same handler the
//! server runs (`offline`: no listener, same keys, same pipeline, same cache code).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};

use crate::server::{self, AppState};
use crate::signature;

/// Where targets come from, besides the lines of the list file.
#[derive(Debug, Clone, Default)]
pub struct Expand {
    /// Source URLs (or paths under `source.base`) to make variants of.
    pub sources: Vec<String>,
    /// One variant per width (`w_<n>`); none = one variant without `w_`.
    pub widths: Vec<u32>,
    /// Options added to every variant (`f_auto`, `q_70`, …); `_` or empty for none.
    pub options: String,
}

/// The request targets (paths like `/img/w_300/x.jpg`, or whole URLs) from `lines` (one per
/// line; blank lines and `#` comments skipped) and from `expand`.
pub fn targets(lines: &str, expand: &Expand) -> Vec<String> {
    let mut out: Vec<String> = lines
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let extra = expand.options.trim();
    let extra = if extra == "_" { "" } else { extra };
    for source in &expand.sources {
        let source = source.trim();
        if source.is_empty() {
            continue;
        }
        let widths: Vec<Option<u32>> = if expand.widths.is_empty() {
            vec![None]
        } else {
            expand.widths.iter().copied().map(Some).collect()
        };
        for width in widths {
            let mut opts: Vec<String> = width.map(|w| format!("w_{w}")).into_iter().collect();
            if !extra.is_empty() {
                opts.push(extra.to_owned());
            }
            let opts = if opts.is_empty() {
                "_".to_owned()
            } else {
                opts.join(",")
            };
            out.push(format!("/img/{opts}/{source}"));
        }
    }
    out
}

/// Image URLs in a sitemap: every `<image:loc>`, or every `<loc>` when it has none (a sitemap
/// of image URLs). XML entities in them are decoded.
pub fn sitemap_sources(xml: &str) -> Vec<String> {
    let images = between(xml, "<image:loc>", "</image:loc>");
    let locs = if images.is_empty() {
        between(xml, "<loc>", "</loc>")
    } else {
        images
    };
    locs.into_iter()
        .map(|l| {
            l.trim()
                .trim_start_matches("<![CDATA[")
                .trim_end_matches("]]>")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .filter(|l| !l.is_empty())
        .collect()
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(close) else { break };
        out.push(&rest[..end]);
        rest = &rest[end + close.len()..];
    }
    out
}

/// Sign a target with `key`: a path as `imgcdn sign` does; a whole URL by signing its path.
pub fn sign(target: &str, key: &str) -> String {
    match split_url(target) {
        Some((origin, path)) => format!("{origin}{}", signature::sign_path(key, path)),
        None => signature::sign_path(key, target),
    }
}

/// `https://host:port/p?q` → (`https://host:port`, `/p?q`).
fn split_url(target: &str) -> Option<(&str, &str)> {
    let after_scheme = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))?;
    let scheme_len = target.len() - after_scheme.len();
    let path_at = after_scheme
        .find('/')
        .map_or(target.len(), |i| scheme_len + i);
    Some((&target[..path_at], &target[path_at..]))
}

/// What one warm run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Made now (the server answered `X-Cache: MISS`).
    pub made: u64,
    /// Already in a cache tier.
    pub cached: u64,
    /// Failures by status (`"404"`) or `"network"`.
    pub failed: BTreeMap<String, u64>,
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Summary {
    pub fn failures(&self) -> u64 {
        self.failed.values().sum()
    }

    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Answered { status, hit, bytes } if (200..300).contains(&status) => {
                self.bytes += bytes;
                if hit {
                    self.cached += 1;
                } else {
                    self.made += 1;
                }
            }
            Outcome::Answered { status, .. } => {
                *self.failed.entry(status.to_string()).or_default() += 1;
            }
            Outcome::Network => *self.failed.entry("network".into()).or_default() += 1,
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} made, {} already cached, {} failed",
            self.made,
            self.cached,
            self.failures()
        )?;
        if !self.failed.is_empty() {
            let parts: Vec<String> = self
                .failed
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            write!(f, " ({})", parts.join(", "))?;
        }
        write!(
            f,
            "; {:.1} MB in {:.1} s",
            self.bytes as f64 / 1e6,
            self.elapsed.as_secs_f64()
        )
    }
}

/// The result of one request.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Answered { status: u16, hit: bool, bytes: u64 },
    Network,
}

fn progress(len: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta} {msg}")
    {
        bar.set_style(style);
    }
    bar
}

async fn run_all<F, Fut>(targets: Vec<String>, concurrency: usize, show: bool, one: F) -> Summary
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let started = Instant::now();
    let bar = progress(targets.len(), show);
    let mut summary = Summary::default();
    let mut results = stream::iter(targets)
        .map(one)
        .buffer_unordered(concurrency.max(1));
    while let Some(outcome) = results.next().await {
        summary.add(outcome);
        bar.inc(1);
        if summary.failures() > 0 {
            bar.set_message(format!("{} failed", summary.failures()));
        }
    }
    bar.finish_and_clear();
    summary.elapsed = started.elapsed();
    summary
}

/// Request every target from the server at `server` (`http://host:port`); whole-URL targets
/// are requested as they are. `accept` is sent as `Accept` (it decides `f_auto` variants).
pub async fn online(
    server: &str,
    targets: Vec<String>,
    concurrency: usize,
    accept: &str,
    show_progress: bool,
) -> Result<Summary, reqwest::Error> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()?;
    let server = server.trim_end_matches('/').to_owned();
    let one = |target: String| {
        let client = client.clone();
        let url = if split_url(&target).is_some() {
            target
        } else {
            format!("{server}{target}")
        };
        async move {
            let Ok(response) = client.get(url).header("accept", accept).send().await else {
                return Outcome::Network;
            };
            let status = response.status().as_u16();
            let hit = response
                .headers()
                .get("x-cache")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("HIT"));
            match response.bytes().await {
                Ok(body) => Outcome::Answered {
                    status,
                    hit,
                    bytes: body.len() as u64,
                },
                Err(_) => Outcome::Network,
            }
        }
    };
    Ok(run_all(targets, concurrency, show_progress, one).await)
}

/// Answer every target in-process with the server's own handler, filling `state`'s caches
/// (and so its cache directory). A whole-URL target is taken by its path.
pub async fn offline(
    state: Arc<AppState>,
    targets: Vec<String>,
    concurrency: usize,
    accept: &str,
    show_progress: bool,
) -> Summary {
    let one = |target: String| {
        let state = state.clone();
        let path = match split_url(&target) {
            Some((_, path)) => path.to_owned(),
            None => target,
        };
        async move {
            let (status, hit, bytes) = server::answer_local(&state, &path, accept).await;
            // With a shared store, uploads must not outrun its queue (a full queue drops them).
            state.cache.wait_for_store_room().await;
            Outcome::Answered { status, hit, bytes }
        }
    };
    let summary = run_all(targets, concurrency, show_progress, one).await;
    if !state.cache.flush(std::time::Duration::from_secs(300)).await {
        tracing::warn!("some shared store uploads did not finish");
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_lines_and_sources_times_widths() {
        let expand = Expand {
            sources: vec!["https://a.example/x.jpg".into(), "cat.jpg".into()],
            widths: vec![320, 640],
            options: "f_auto".into(),
        };
        let got = targets(
            "# comment\n/img/w_1/a.jpg\n\n  https://cdn.example/img/_/b.jpg  \n",
            &expand,
        );
        assert_eq!(
            got,
            [
                "/img/w_1/a.jpg",
                "https://cdn.example/img/_/b.jpg",
                "/img/w_320,f_auto/https://a.example/x.jpg",
                "/img/w_640,f_auto/https://a.example/x.jpg",
                "/img/w_320,f_auto/cat.jpg",
                "/img/w_640,f_auto/cat.jpg",
            ]
        );
        let plain = Expand {
            sources: vec!["x.jpg".into()],
            ..Expand::default()
        };
        assert_eq!(targets("", &plain), ["/img/_/x.jpg"]);
    }

    #[test]
    fn sitemap_prefers_image_locs_and_decodes_entities() {
        let xml = r#"<?xml version="1.0"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>https://site.example/page</loc>
    <image:image><image:loc>https://img.example/a.jpg?v=1&amp;s=2</image:loc></image:image>
    <image:image><image:loc><![CDATA[https://img.example/b.png]]></image:loc></image:image>
  </url>
</urlset>"#;
        assert_eq!(
            sitemap_sources(xml),
            [
                "https://img.example/a.jpg?v=1&s=2",
                "https://img.example/b.png"
            ]
        );
        let plain = "<urlset><url><loc> https://img.example/c.jpg </loc></url></urlset>";
        assert_eq!(sitemap_sources(plain), ["https://img.example/c.jpg"]);
        assert!(sitemap_sources("<loc>unterminated").is_empty());
    }

    #[test]
    fn sign_paths_and_whole_urls() {
        let key = "0123456789abcdef";
        assert_eq!(
            sign("/img/w_1/x.jpg", key),
            signature::sign_path(key, "/img/w_1/x.jpg")
        );
        assert_eq!(
            sign("https://cdn.example:8443/img/w_1/x.jpg", key),
            format!(
                "https://cdn.example:8443{}",
                signature::sign_path(key, "/img/w_1/x.jpg")
            )
        );
    }

    #[test]
    fn summary_counts_and_prints() {
        let mut s = Summary::default();
        s.add(Outcome::Answered {
            status: 200,
            hit: false,
            bytes: 1_000_000,
        });
        s.add(Outcome::Answered {
            status: 200,
            hit: true,
            bytes: 500_000,
        });
        s.add(Outcome::Answered {
            status: 404,
            hit: false,
            bytes: 9,
        });
        s.add(Outcome::Network);
        assert_eq!(
            (s.made, s.cached, s.failures(), s.bytes),
            (1, 1, 2, 1_500_000)
        );
        assert_eq!(
            s.to_string(),
            "1 made, 1 already cached, 2 failed (404: 1, network: 1); 1.5 MB in 0.0 s"
        );
    }
}
