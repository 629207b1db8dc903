// The status page in a real browser (Debian's chromium, headless, driven by
// puppeteer-core): it loads without a console error, shows a download moving,
// lists the cached repos, puts a hostile file name on the page as text, and
// shows restricted repos only with the admin token.
//
// node status_page.mjs HUBCACHE_URL ADMIN_TOKEN SCREENSHOT.png
// Exit 0 when every check holds; otherwise each failure is printed.
import puppeteer from "puppeteer-core";

const [base, adminToken, screenshot] = process.argv.slice(2);
const failures = [];
function check(ok, what) {
  if (!ok) failures.push(what);
  console.log((ok ? "ok   " : "FAIL ") + what);
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const problems = [];
  page.on("console", m => { if (m.type() === "error") problems.push("console: " + m.text()); });
  page.on("pageerror", e => problems.push("page error: " + e.message));
  page.on("requestfailed", r => problems.push("request failed: " + r.url()));
  page.on("dialog", async d => { problems.push("dialog opened: " + d.message()); await d.dismiss(); });

  await page.goto(base + "/_hubcache/", { waitUntil: "load" });
  await page.waitForFunction(() => document.getElementById("version").textContent.startsWith("version "));
  check(true, "the page loads and shows the version");
  const upstream = await page.$eval("#upstream-state", e => e.textContent);
  check(upstream === "reachable", "the upstream is shown reachable (" + upstream + ")");

  // A download in progress, moving.
  const bytesOfBig = () => page.evaluate(() => {
    const row = [...document.querySelectorAll("#downloads-body tr")]
        .find(tr => tr.cells[0].textContent === "org/big");
    return row ? Number(row.dataset.bytes) : -1;
  });
  await page.waitForFunction(() => [...document.querySelectorAll("#downloads-body tr")]
      .some(tr => tr.cells[0].textContent === "org/big" && Number(tr.dataset.bytes) > 0), { timeout: 30000 });
  const before = await bytesOfBig();
  await page.waitForFunction(b => [...document.querySelectorAll("#downloads-body tr")]
      .some(tr => tr.cells[0].textContent === "org/big" && Number(tr.dataset.bytes) > b),
      { timeout: 30000 }, before);
  const after = await bytesOfBig();
  check(after > before, `the download moves on the page (${before} → ${after} bytes)`);
  const file = await page.evaluate(() => [...document.querySelectorAll("#downloads-body tr")]
      .find(tr => tr.cells[0].textContent === "org/big").cells[1].textContent);
  check(file === "model.safetensors", "the download names its file (" + file + ")");
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });

  // The cached repos; the restricted one only as a count.
  await page.waitForFunction(() => document.querySelectorAll("#repos-body tr").length > 0, { timeout: 20000 });
  const repos = await page.$$eval("#repos-body tr", rows => rows.map(r => r.cells[0].querySelector("a").textContent));
  check(repos.includes("org/model"), "the cached repos are listed (" + repos.join(", ") + ")");
  check(!repos.includes("org/gated"), "a restricted repo is not listed without the admin token");
  const note = await page.$eval("#repos-hidden", e => e.hidden ? "" : e.textContent);
  check(note.startsWith("1 restricted"), "the page says a restricted repo is hidden (" + note + ")");
  const text = await page.evaluate(() => document.body.innerText);
  check(!text.includes("org/gated"), "the restricted repo's name is nowhere on the page");

  // Filtering.
  await page.type("#repo-filter", "hostile");
  const filtered = await page.$$eval("#repos-body tr", rows => rows.map(r => r.cells[0].querySelector("a").textContent));
  check(filtered.length === 1 && filtered[0] === "org/hostile", "the filter keeps matching repos (" + filtered.join(", ") + ")");

  // A repo whose file names are markup: shown as text, never run.
  await page.goto(base + "/_hubcache/#repo?repo=org%2Fhostile&rev=main", { waitUntil: "load" });
  await page.waitForFunction(() => document.querySelectorAll("#repo-body tr").length === 2, { timeout: 20000 });
  const names = await page.$$eval("#repo-body tr", rows => rows.map(r => r.cells[0].textContent));
  check(names.includes("<script>alert(1)</script>"), "the hostile file name is shown as text (" + names.join(" | ") + ")");
  check(names.includes("<img src=x onerror=alert(2)>.txt"), "the other hostile name too");
  const injected = await page.evaluate(() => document.querySelectorAll("main script, main img").length);
  check(injected === 0, "no element was made from a file name");

  // The admin token: a wrong one is refused, the right one shows the restricted repo.
  await page.goto(base + "/_hubcache/#repos", { waitUntil: "load" });
  await page.$eval("#repo-filter", e => { e.value = ""; e.dispatchEvent(new Event("input")); });
  await page.waitForFunction(() => document.querySelectorAll("#repos-body tr").length > 1, { timeout: 20000 });
  await page.type("#admin-token", "not-the-admin-token-0123456789");
  await page.click("#admin-apply");
  await page.waitForFunction(() => document.getElementById("admin-state").textContent === "wrong admin token", { timeout: 10000 });
  check(true, "a wrong admin token is refused");
  await page.type("#admin-token", adminToken);
  await page.click("#admin-apply");
  await page.waitForFunction(() => [...document.querySelectorAll("#repos-body tr a")]
      .some(a => a.textContent === "org/gated"), { timeout: 20000 });
  check(true, "the admin token shows the restricted repo");

  // "wrong admin token" came from a 401 the page asked for; nothing else may fail.
  const unexpected = problems.filter(p => !p.includes("401"));
  check(unexpected.length === 0, "no console error, page error, failed request or dialog" +
        (unexpected.length ? ": " + unexpected.join("; ") : ""));
} finally {
  await browser.close();
}
if (failures.length) {
  console.log(failures.length + " check(s) failed");
  process.exit(1);
}
console.log("all checks passed");
