// Helpers shared by the huggingface.js test scripts: one line per check,
// content ids as the Hub computes them, listings from the fake Hub.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { listFiles } from "@huggingface/hub";

let failures = 0;
export function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures++;
}
export function finish() {
  console.log(failures === 0 ? "all checks passed" : `${failures} checks failed`);
  process.exit(failures === 0 ? 0 : 1);
}

export async function list(hubUrl, repo, revision, recursive = true) {
  const entries = [];
  for await (const e of listFiles({ repo, revision, recursive, hubUrl })) entries.push(e);
  return entries;
}

export function gitSha1(bytes) {
  return createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
}
export function contentId(entry, bytes) {
  return entry.lfs ? createHash("sha256").update(bytes).digest("hex") : gitSha1(bytes);
}
export function expectedId(entry) {
  return entry.lfs ? entry.lfs.oid : entry.oid;
}
export const entryKey = (e) => `${e.type} ${e.path} ${e.oid} ${e.size}`;

// Every file of `dir` hashes to what the fake Hub's tree says.
export async function checkSnapshot(dir, files, what) {
  let good = 0;
  for (const f of files) {
    const bytes = await readFile(path.join(dir, f.path)).catch(() => null);
    if (bytes && contentId(f, bytes) === expectedId(f)) good++;
    else check(false, `${what}: ${f.path} has the wrong bytes`);
  }
  check(good === files.length, `${what}: ${good}/${files.length} files correct`);
}
