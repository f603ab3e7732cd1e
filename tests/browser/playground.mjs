// Load the playground at argv[2] in headless Chromium, pick the first sample, set a width,
// and check that the result image's natural width follows; then change the width again.
// Exit 0 and print "ok ..." on success; print the reason and exit 1 otherwise.
import { chromium } from "playwright-core";

const base = process.argv[2];
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(base + "/", { waitUntil: "load" });
  const samples = await page.$$eval("#sample option", (os) => os.map((o) => o.value).filter(Boolean));
  if (!samples.length) throw new Error("no samples listed");
  await page.selectOption("#sample", samples[0]);
  const widthIs = async (w) => {
    await page.waitForFunction(
      (w) => {
        const img = document.getElementById("result-img");
        return img.complete && img.naturalWidth === w;
      },
      w,
      { timeout: 20000 },
    );
  };
  await page.fill("#w", "200");
  await widthIs(200);
  await page.fill("#w", "120");
  await widthIs(120);
  const url = await page.textContent("#url");
  if (!url.includes("/img/w_120/")) throw new Error("URL shown: " + url);
  const cache = await page.textContent('#result-info dd[data-k="cache"]');
  const original = await page.$eval("#original-img", (i) => i.naturalWidth);
  if (!(original > 120)) throw new Error("original width " + original);
  if (errors.length) throw new Error("page errors: " + errors.join("; "));
  console.log(`ok sample=${samples[0]} url=${url} cache=${cache} original=${original}`);
} catch (e) {
  console.log("failed: " + (e && e.stack ? e.stack : e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
