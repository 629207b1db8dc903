// huggingface.js through hubcache by a renamed repo's old name: the Hub
// answers the old name with a 307 to the new one, hubcache passes it on, and
// fetch() follows it. Run by tests/e2e/js_client_test.cc:
//   node renamed.mjs <hubcache url> <fake hub url> <cache dir>
// Prints one line per check and exits 1 if any failed.
import path from "node:path";
import { downloadFile, fileDownloadInfo, listFiles, modelInfo, snapshotDownload } from "@huggingface/hub";
import { check, checkSnapshot, contentId, entryKey, expectedId, finish, list } from "./checks.mjs";

const [hubcache, fakehub, cacheDir] = process.argv.slice(2);
const oldName = "org/old-model";
const newName = "org/model";

const reference = await list(fakehub, newName, "main");
const byPath = new Map(reference.map((e) => [e.path, e]));

async function attempt(what, fn) {
  try {
    await fn();
  } catch (e) {
    check(false, `${what}: ${e.constructor.name}: ${e.message}`);
  }
}

for (const file of ["config.json", "model.safetensors", "dir/é x+y.txt"]) {
  await attempt(`downloadFile ${oldName} ${file}`, async () => {
    const blob = await downloadFile({ repo: oldName, path: file, hubUrl: hubcache });
    const bytes = blob ? Buffer.from(await blob.arrayBuffer()) : Buffer.alloc(0);
    const entry = byPath.get(file);
    check(entry && contentId(entry, bytes) === expectedId(entry),
      `downloadFile through the old name ${oldName}: ${file}, ${bytes.length} bytes correct`);
  });
}

await attempt("fileDownloadInfo", async () => {
  const info = await fileDownloadInfo({ repo: oldName, path: "config.json", hubUrl: hubcache });
  check(info && new URL(info.url).pathname === `/${newName}/resolve/main/config.json` &&
    new URL(info.url).origin === new URL(hubcache).origin,
    `the download URL is the new name's, on hubcache (${info?.url})`);
});

await attempt("modelInfo", async () => {
  const info = await modelInfo({ name: oldName, hubUrl: hubcache, additionalFields: ["sha"] });
  check(info.name === newName, `modelInfo through the old name is ${newName} (${info.name})`);
});

await attempt("listFiles", async () => {
  const entries = [];
  for await (const e of listFiles({ repo: oldName, recursive: true, hubUrl: hubcache })) entries.push(e);
  check(JSON.stringify(entries.map(entryKey).sort()) === JSON.stringify(reference.map(entryKey).sort()),
    `listFiles through the old name: the same ${reference.length} entries`);
});

await attempt("snapshotDownload", async () => {
  const dir = await snapshotDownload({ repo: oldName, cacheDir, hubUrl: hubcache });
  await checkSnapshot(dir, reference.filter((e) => e.type === "file"), `snapshotDownload through the old name`);
  check(path.basename(dir) === (await modelInfo({ name: newName, hubUrl: fakehub, additionalFields: ["sha"] })).sha,
    "the snapshot is the new name's main commit");
});

finish();
