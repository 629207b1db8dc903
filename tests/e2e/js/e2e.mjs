// huggingface.js (@huggingface/hub) against hubcache, compared with the fake
// Hub itself. Run by tests/e2e/js_client_test.cc:
//   node e2e.mjs <hubcache url> <fake hub url> <cache dir>
// Prints one line per check and exits 1 if any failed.
import { readFile, readdir, readlink, lstat } from "node:fs/promises";
import path from "node:path";
import { downloadFile, snapshotDownload } from "@huggingface/hub";
import { check, checkSnapshot, contentId, entryKey, expectedId, finish, list } from "./checks.mjs";

const [hubcache, fakehub, cacheDir] = process.argv.slice(2);

const scenarios = [
  { repo: "org/model", revision: "main" },
  { repo: "org/model", revision: "v1.0" },
  { repo: "org/model", revision: "feat/x" },
  { repo: "org/model", revision: "refs/pr/1" },
  { repo: { type: "dataset", name: "org/data" }, revision: "main" },
];

for (const { repo, revision } of scenarios) {
  const name = `${typeof repo === "string" ? repo : `datasets/${repo.name}`}@${revision}`;
  const direct = await list(fakehub, repo, revision);
  const proxied = await list(hubcache, repo, revision);
  const key = entryKey;
  check(
    direct.length > 0 && JSON.stringify(proxied.map(key).sort()) === JSON.stringify(direct.map(key).sort()),
    `${name}: listFiles through hubcache lists the same ${direct.length} entries`,
  );
  check(!proxied.some((e) => e.xetHash), `${name}: no xetHash`);
  const files = direct.filter((e) => e.type === "file");

  const snapshot = await snapshotDownload({ repo, revision, cacheDir, hubUrl: hubcache });
  await checkSnapshot(snapshot, files, `${name}: snapshotDownload`);
  const commit = path.basename(snapshot);
  check(/^[0-9a-f]{40}$/.test(commit), `${name}: snapshot folder is the commit ${commit}`);

  // By commit too: the same folder.
  const byCommit = await snapshotDownload({ repo, revision: commit, cacheDir, hubUrl: hubcache });
  check(byCommit === snapshot, `${name}: snapshotDownload by commit gives the same folder`);
}

// downloadFile through hubcache: bytes hash to what the fake Hub lists (the
// fake Hub itself sends Xet hints, which would take a direct download to
// the Xet CAS; through hubcache there are none).
const reference = new Map((await list(fakehub, "org/model", "main")).map((e) => [e.path, e]));
for (const file of ["config.json", "model.safetensors", "dir/é x+y.txt"]) {
  const blob = await downloadFile({ repo: "org/model", path: file, hubUrl: hubcache });
  const bytes = Buffer.from(await blob.arrayBuffer());
  const entry = reference.get(file);
  check(entry && contentId(entry, bytes) === expectedId(entry), `downloadFile ${file}: ${bytes.length} bytes correct`);
}
const missing = await downloadFile({ repo: "org/model", path: "nope.bin", hubUrl: hubcache });
check(missing === null, "downloadFile of a missing file is null");

// The cache layout snapshotDownload wrote: refs without newline, relative symlinks into blobs.
const modelDir = path.join(cacheDir, "models--org--model");
const ref = await readFile(path.join(modelDir, "refs", "main"), "utf8");
check(/^[0-9a-f]{40}$/.test(ref), "refs/main holds the commit without a newline");
const link = await readlink(path.join(modelDir, "snapshots", ref, "config.json"));
check(link.startsWith("../") && link.includes("blobs/"), `snapshot entries are relative links (${link})`);
const blobs = await readdir(path.join(modelDir, "blobs"));
check(blobs.every((b) => /^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(b)), `${blobs.length} blobs named by digest`);
check((await lstat(path.join(modelDir, "snapshots", ref, "config.json"))).isSymbolicLink(), "symlinked");

finish();
