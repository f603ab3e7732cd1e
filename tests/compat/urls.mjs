// Prints one JSON array of image URLs built by the real npm client libraries for other image
// servers (IPX, imgproxy, thumbor, Next.js, Cloudflare), each with the imgcdn native options
// that mean the same thing. The Rust compat test requests `url` from imgcdn's compatibility
// route and compares the result with `/img/<native>/<source>`.
//
//   node urls.mjs <absolute source URL> <relative source path>
//   node urls.mjs http://127.0.0.1:9999/photo.jpg photo.jpg
//
// Env (optional): IMGPROXY_KEY + IMGPROXY_SALT (hex) and THUMBOR_KEY add "-signed" variants.
//
// Each element: {name, client, url, native, source}. `url` is path + query, no scheme/host.
// `source` is exactly what goes after `/img/<native>/` for the comparison (argument 1 or 2,
// the relative one without a leading slash). `native` is in imgcdn's canonical spelling
// (fixed order, defaults left out). Widths and heights stay below the 2560 px wide source,
// so whether the other server would enlarge never matters.

import { transformUrl } from "unpic";
import Thumbor from "thumbor";
import nuxtIpxProvider from "@nuxt/image/runtime/providers/ipx";
import nuxtImgproxyProvider from "@nuxt/image/runtime/providers/imgproxy";
import nuxtCloudflareProvider from "@nuxt/image/runtime/providers/cloudflare";

const [abs, relArg] = process.argv.slice(2);
if (!abs || !relArg || !/^https?:\/\//i.test(abs)) {
  console.error("usage: node urls.mjs <absolute http(s) source URL> <relative source path>");
  process.exit(2);
}
const rel = relArg.replace(/^\/+/, "");

const IMGPROXY_KEY = process.env.IMGPROXY_KEY || "";
const IMGPROXY_SALT = process.env.IMGPROXY_SALT || "";
const THUMBOR_KEY = process.env.THUMBOR_KEY || "";
// @imgproxy/imgproxy-node reads IMGPROXY_KEY/IMGPROXY_SALT from process.env when it is loaded and
// signs every URL with them unless told otherwise: hide them so the unsigned cases stay unsigned
// (the signed cases pass key and salt explicitly), then load it.
delete process.env.IMGPROXY_KEY;
delete process.env.IMGPROXY_SALT;
const { generateImageUrl } = await import("@imgproxy/imgproxy-node");

const cases = [];

// Strip any scheme + host a library adds; insist on the mount prefix imgcdn uses.
function add(name, client, url, native, source, prefix) {
  const path = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, "");
  if (!(path === prefix || path.startsWith(prefix + "/") || path.startsWith(prefix + "?"))) {
    throw new Error(`${name}: ${client} built ${url}, which is not under ${prefix}`);
  }
  cases.push({ name, client, url: path, native, source });
}

// ---------------------------------------------------------------- unpic: IPX (/_ipx)
// unpic's ipx provider writes `k_v` joined by `,`, adds `f_auto` unless a format is given, and
// turns width+height into `s_WxH`. IPX: `w_` alone scales to that width (never enlarging);
// `s_WxH` is sharp's resize(W, H) whose default fit is `cover` (fill the box, crop the centre);
// `fit_inside` is sharp's inside (= c_fit); `f_auto` picks the format from Accept.
const ipx = (url, ops, fit) =>
  transformUrl({ url, provider: "ipx", ...ops }, fit ? { ipx: { fit } } : undefined, {
    ipx: { baseURL: "/_ipx" },
  });
add("unpic-ipx-width", "unpic-ipx", ipx(rel, { width: 300 }), "w_300,f_auto", rel, "/_ipx");
add("unpic-ipx-size", "unpic-ipx", ipx(rel, { width: 200, height: 200 }), "w_200,h_200,c_fill,f_auto", rel, "/_ipx");
add("unpic-ipx-quality-webp", "unpic-ipx", ipx(rel, { width: 300, quality: 80, format: "webp" }), "w_300,q_80,f_webp", rel, "/_ipx");
add("unpic-ipx-fit-cover", "unpic-ipx", ipx(rel, { width: 200, height: 150 }, "cover"), "w_200,h_150,c_fill,f_auto", rel, "/_ipx");
add("unpic-ipx-fit-inside", "unpic-ipx", ipx(rel, { width: 200, height: 200 }, "inside"), "w_200,h_200,f_auto", rel, "/_ipx");
add("unpic-ipx-absolute", "unpic-ipx", ipx(abs, { width: 300 }), "w_300,f_auto", abs, "/_ipx");

// ---------------------------------------------------------------- Nuxt Image: IPX (/_ipx)
// Nuxt Image's ipx provider joins modifiers with `&` (IPX splits on `&` and `,`), adds no
// format, writes `_` when there are no modifiers, and also turns width+height into `s_WxH`.
const nuxtIpx = (src, modifiers) => nuxtIpxProvider().getImage(src, { modifiers, baseURL: "/_ipx" }, {}).url;
add("nuxt-ipx-width-quality", "nuxt-ipx", nuxtIpx(rel, { width: 300, quality: 80 }), "w_300,q_80", rel, "/_ipx");
add("nuxt-ipx-size-webp", "nuxt-ipx", nuxtIpx(rel, { width: 200, height: 200, format: "webp" }), "w_200,h_200,c_fill,f_webp", rel, "/_ipx");
add("nuxt-ipx-fit-inside", "nuxt-ipx", nuxtIpx(rel, { width: 200, height: 200, fit: "inside" }), "w_200,h_200", rel, "/_ipx");
add("nuxt-ipx-none", "nuxt-ipx", nuxtIpx(rel, {}), "_", rel, "/_ipx");
add("nuxt-ipx-absolute", "nuxt-ipx", nuxtIpx(abs, { width: 300 }), "w_300", abs, "/_ipx");

// ---------------------------------------------------------------- unpic: Cloudflare (/cdn-cgi/image)
// unpic adds `fit=cover` (and `f=auto` without a format). With only a width, every Cloudflare
// fit mode just scales to that width; `cover` may enlarge (up_1), which a 300/500 px result of
// a 2560 px source never needs.
const cf = (url, ops) => transformUrl({ url, provider: "cloudflare", ...ops }, undefined, { cloudflare: {} });
add("unpic-cloudflare-quality-webp", "unpic-cloudflare", cf(abs, { width: 300, quality: 80, format: "webp" }), "w_300,up_1,q_80,f_webp", abs, "/cdn-cgi/image");
add("unpic-cloudflare-width", "unpic-cloudflare", cf(rel, { width: 500 }), "w_500,up_1,f_auto", rel, "/cdn-cgi/image");

// ---------------------------------------------------------------- Nuxt Image: Cloudflare
// Nuxt writes Cloudflare's short names (w=, q=, f=) and no fit unless asked.
const nuxtCf = (src, modifiers) => nuxtCloudflareProvider().getImage(src, { modifiers, baseURL: "/" }, {}).url;
add("nuxt-cloudflare-quality-webp", "nuxt-cloudflare", nuxtCf(abs, { width: 300, quality: 80, format: "webp" }), "w_300,q_80,f_webp", abs, "/cdn-cgi/image");

// ---------------------------------------------------------------- unpic: Next.js (/_next/image)
// `?w=&q=&url=` (q defaults to 75); the Next optimizer picks the format from Accept. Next wants
// local sources with a leading slash.
const next = (url, ops) => transformUrl({ url, provider: "nextjs", ...ops });
add("unpic-nextjs-width-quality", "unpic-nextjs", next("/" + rel, { width: 300, quality: 80 }), "w_300,q_80,f_auto", rel, "/_next/image");
add("unpic-nextjs-absolute", "unpic-nextjs", next(abs, { width: 640 }), "w_640,q_75,f_auto", abs, "/_next/image");

// ---------------------------------------------------------------- imgproxy-node (/imgproxy)
// imgproxy: resizing type defaults to fit, enlarge off, gravity centre; `rt:fill` covers the box
// and crops by gravity (`no` = north edge, `fp:x:y` = focus point, fractions).
const imgproxyCases = [
  ["imgproxy-node-width-quality-webp", abs, { width: 300, quality: 80, format: "webp" }, "w_300,q_80,f_webp"],
  ["imgproxy-node-fill-north", abs, { resizing_type: "fill", width: 200, height: 200, gravity: { type: "no" } }, "w_200,h_200,c_fill,g_n"],
  ["imgproxy-node-resize-focus", abs, { resize: { resizing_type: "fill", width: 300, height: 200 }, gravity: { type: "fp", x: 0.3, y: 0.7 } }, "w_300,h_200,c_fill,g_fp_0.3_0.7"],
  ["imgproxy-node-plain", { value: abs, displayAs: "plain" }, { width: 400, format: "png" }, "w_400,f_png"],
];
const signImgproxy = IMGPROXY_KEY && IMGPROXY_SALT;
for (const [name, url, options, native] of imgproxyCases) {
  add(name, "imgproxy-node", generateImageUrl({ endpoint: "/imgproxy", url, options }), native, abs, "/imgproxy");
  if (signImgproxy) {
    const signed = generateImageUrl({ endpoint: "/imgproxy", url, options, key: IMGPROXY_KEY, salt: IMGPROXY_SALT });
    add(name + "-signed", "imgproxy-node", signed, native, abs, "/imgproxy");
  }
}

// ---------------------------------------------------------------- Nuxt Image: imgproxy
// Nuxt signs with HMAC-SHA256 too, but writes `unsafe` (not `insecure`) unsigned; its `fit: cover`
// with both sizes becomes `rt:fill`.
const nuxtImgproxyCases = [
  ["nuxt-imgproxy-width-quality-webp", { width: 300, quality: 80, format: "webp" }, "w_300,q_80,f_webp"],
  ["nuxt-imgproxy-cover", { width: 200, height: 200, fit: "cover" }, "w_200,h_200,c_fill"],
];
for (const [name, modifiers, native] of nuxtImgproxyCases) {
  const build = (key, salt) =>
    nuxtImgproxyProvider().getImage(abs, { modifiers: { ...modifiers }, baseURL: "/imgproxy", key, salt }, {}).url;
  add(name, "nuxt-imgproxy", build(undefined, undefined), native, abs, "/imgproxy");
  if (signImgproxy) add(name + "-signed", "nuxt-imgproxy", build(IMGPROXY_KEY, IMGPROXY_SALT), native, abs, "/imgproxy");
}

// ---------------------------------------------------------------- thumbor (/thumbor)
// thumbor: `WxH` crops to exactly that box (centre, no smart crop) and enlarges to it =
// c_fill,up_1; `Wx0` keeps the aspect ratio (still enlarging); `fit-in/WxH` fits inside the box
// without enlarging = c_fit. Signed: HMAC-SHA1 of the path after the
// signature, URL-safe base64 with its `=` kept.
const thumborCases = [
  ["thumbor-width-quality-webp", (t) => t.resize(300, 0).filter("quality(80)").filter("format(webp)"), "w_300,up_1,q_80,f_webp"],
  ["thumbor-crop", (t) => t.resize(200, 200), "w_200,h_200,c_fill,up_1"],
  ["thumbor-fit-in", (t) => t.fitIn(200, 200), "w_200,h_200"],
];
for (const [name, ops, native] of thumborCases) {
  // The builder is stateful: one instance per URL.
  const build = (key) => ops(new Thumbor(key || null, "/thumbor").setImagePath(abs)).buildUrl();
  add(name, "thumbor", build(null), native, abs, "/thumbor");
  if (THUMBOR_KEY) add(name + "-signed", "thumbor", build(THUMBOR_KEY), native, abs, "/thumbor");
}

// One element per line: still one JSON array, and readable in a failure message.
process.stdout.write("[\n" + cases.map((c) => JSON.stringify(c)).join(",\n") + "\n]\n");
