// huggingface.js against an offline hubcache that serves an imported bundle,
// and reading a huggingface_hub cache that `hubcache export --hf-cache` wrote.
// Run by tests/e2e/ops_test.cc:
//   node offline.mjs serve <offline hubcache url> <fake hub url> <client cache dir>
//   node offline.mjs tags <offline hubcache url> <fake hub url> <client cache dir>
//   node offline.mjs scan <exported hf cache dir> <fake hub url>
// `tags`: only main of org/model was prefetched; tag v1.1 is on that commit,
// tag v1.0 on one the bundle does not carry.
// The fake Hub is asked only for the expected listings.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { downloadFile, listFiles, modelInfo, scanCacheDir, snapshotDownload } from "@huggingface/hub";
import { check, checkSnapshot, contentId, entryKey, expectedId, finish, list } from "./checks.mjs";

const [mode, target, fakehub, cacheDir] = process.argv.slice(2);

async function serve(hubcache) {
  const model = "org/model";
  const main = await list(fakehub, model, "main");
  const mainFiles = main.filter((e) => e.type === "file");
  const v1Files = (await list(fakehub, model, "v1.0")).filter((e) => e.type === "file");
  const info = await modelInfo({ name: model, hubUrl: fakehub, additionalFields: ["sha"] });

  for (const [revision, files] of [["main", mainFiles], ["v1.0", v1Files], [info.sha, mainFiles]]) {
    try {
      const dir = await snapshotDownload({ repo: model, revision, cacheDir, hubUrl: hubcache });
      await checkSnapshot(dir, files, `offline snapshotDownload ${model}@${revision}`);
    } catch (e) {
      check(false, `offline snapshotDownload ${model}@${revision}: ${e.message}`);
    }
  }
  const dataset = { type: "dataset", name: "org/data" };
  const dataFiles = (await list(fakehub, dataset, "main")).filter((e) => e.type === "file");
  try {
    const dir = await snapshotDownload({ repo: dataset, cacheDir, hubUrl: hubcache });
    await checkSnapshot(dir, dataFiles, "offline snapshotDownload datasets/org/data");
  } catch (e) {
    check(false, `offline snapshotDownload datasets/org/data: ${e.message}`);
  }

  const reference = new Map(main.map((e) => [e.path, e]));
  for (const file of ["config.json", "model.safetensors"]) {
    const blob = await downloadFile({ repo: model, path: file, hubUrl: hubcache });
    const bytes = blob ? Buffer.from(await blob.arrayBuffer()) : Buffer.alloc(0);
    const entry = reference.get(file);
    check(entry && contentId(entry, bytes) === expectedId(entry), `offline downloadFile ${file}`);
  }
  for (const recursive of [false, true]) {
    const direct = await list(fakehub, model, "main", recursive);
    const proxied = await list(hubcache, model, "main", recursive).catch((e) => {
      check(false, `offline listFiles recursive=${recursive}: ${e.message}`);
      return [];
    });
    check(
      JSON.stringify(proxied.map(entryKey).sort()) === JSON.stringify(direct.map(entryKey).sort()),
      `offline listFiles recursive=${recursive}: the same ${direct.length} entries as the Hub`,
    );
  }
  const sub = [];
  for await (const e of listFiles({ repo: model, path: "sub", recursive: true, hubUrl: hubcache })) sub.push(e.path);
  check(JSON.stringify(sub.sort()) === JSON.stringify(["sub/dir", "sub/dir/notes.txt"]), `offline listFiles of a folder: ${sub}`);
  const offlineInfo = await modelInfo({ name: model, hubUrl: hubcache, additionalFields: ["sha"] });
  check(offlineInfo.id === info.id && offlineInfo.sha === info.sha, "offline modelInfo: id and sha");
}

async function tags(hubcache) {
  const model = "org/model";
  const files = (await list(fakehub, model, "v1.1")).filter((e) => e.type === "file");
  try {
    const dir = await snapshotDownload({ repo: model, revision: "v1.1", cacheDir, hubUrl: hubcache });
    await checkSnapshot(dir, files, `offline snapshotDownload ${model}@v1.1 (a tag on the prefetched commit)`);
    const ref = await readFile(path.join(cacheDir, "models--org--model", "refs", "v1.1"), "utf8");
    check(path.basename(dir) === ref, `refs/v1.1 names the snapshot ${ref}`);
  } catch (e) {
    check(false, `offline snapshotDownload ${model}@v1.1: ${e.message}`);
  }
  const reference = new Map(files.map((e) => [e.path, e]));
  for (const file of ["config.json", "model.safetensors"]) {
    const blob = await downloadFile({ repo: model, path: file, revision: "v1.1", hubUrl: hubcache });
    const bytes = blob ? Buffer.from(await blob.arrayBuffer()) : Buffer.alloc(0);
    const entry = reference.get(file);
    check(entry && contentId(entry, bytes) === expectedId(entry), `offline downloadFile ${file}@v1.1`);
  }
  // A tag on a commit the site never got: the Hub's error for a missing
  // revision, at once.
  for (const [what, call] of [
    ["snapshotDownload", () => snapshotDownload({ repo: model, revision: "v1.0", cacheDir, hubUrl: hubcache })],
    ["downloadFile", () => downloadFile({ repo: model, path: "config.json", revision: "v1.0", hubUrl: hubcache })],
  ]) {
    try {
      await call();
      check(false, `offline ${what} ${model}@v1.0 should fail`);
    } catch (e) {
      check(e.statusCode === 404 && e.message.startsWith("Invalid rev id: v1.0"),
        `offline ${what} ${model}@v1.0: ${e.statusCode} ${e.message}`);
    }
  }
}

async function scan(dir) {
  const cache = await scanCacheDir(dir);
  check(cache.warnings.length === 0, `scanCacheDir: no warnings (${cache.warnings.map((w) => w.message)})`);
  const repo = cache.repos.find((r) => r.id.name === "org/model" && r.id.type === "model");
  check(repo !== undefined, "scanCacheDir finds org/model");
  if (!repo) return;
  const refs = repo.revisions.flatMap((r) => r.refs).sort();
  check(JSON.stringify(refs) === JSON.stringify(["main", "v1.0"]), `org/model refs: ${refs}`);
  for (const revision of ["main", "v1.0"]) {
    const expected = (await list(fakehub, "org/model", revision)).filter((e) => e.type === "file");
    const cached = repo.revisions.find((r) => r.refs.includes(revision));
    // scanCacheDir lists the top level of a snapshot (it skips folders).
    const top = expected.filter((e) => !e.path.includes("/"));
    const sized = (cached?.files ?? []).filter((f) => {
      const e = top.find((t) => t.path === path.basename(f.path));
      return e && e.size === f.blob.size;
    });
    check(sized.length === top.length, `${revision}: ${top.length} top-level files listed with their sizes`);
    if (cached) await checkSnapshot(cached.path, expected, `exported snapshot ${revision}`);
    // Python's tree cache: the Hub's ids, no xet_hash.
    const tree = JSON.parse(await readFile(path.join(repo.path, "trees", `${cached.commitOid}.json`), "utf8"));
    const good = expected.filter((e) => {
      const t = tree.files[e.path];
      return t && t.blob_id === e.oid && t.size === e.size && !("xet_hash" in t) &&
        (e.lfs ? t.lfs_sha256 === e.lfs.oid : !("lfs_sha256" in t));
    });
    check(good.length === expected.length, `${revision}: trees/<commit>.json agrees with the Hub (${good.length}/${expected.length})`);
  }
}

if (mode === "serve") await serve(target);
else if (mode === "tags") await tags(target);
else if (mode === "scan") await scan(target);
else check(false, `unknown mode ${mode}`);
finish();
