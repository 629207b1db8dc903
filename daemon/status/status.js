// hubcache's status page: polls the daemon's JSON (/_hubcache/api/...) and
// draws it. Names are put on the page as text, never as markup.
"use strict";

const state = { repos: [], sortKey: "cached_bytes", sortDown: true, clusterShown: false };

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1)) + " " + units[i];
}

function duration(seconds) {
  seconds = Math.floor(seconds);
  const d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600);
  const m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + s + "s";
  return s + "s";
}

function ago(unix) {
  if (!unix) return "never";
  return duration(Date.now() / 1000 - unix) + " ago";
}

async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem("hubcache-admin-token");
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch("api/" + path, { headers, cache: "no-store" });
  const body = await response.json();
  if (response.status === 401) {
    sessionStorage.removeItem("hubcache-admin-token");
    $("admin-state").textContent = "wrong admin token";
    throw new Error(body.error || "unauthorized");
  }
  if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
  return body;
}

function showError(error) {
  const p = $("error");
  if (error) {
    p.textContent = "Cannot reach hubcache: " + error.message;
    p.hidden = false;
  } else {
    p.hidden = true;
  }
}

function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// ------------------------------------------------------------------ overview

function drawChart(history) {
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  const width = 600, height = 140, pad = 4;
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  svg.setAttribute("preserveAspectRatio", "none");
  const points = history.slice(-360);
  const max = Math.max(1, ...points.map(p => Math.max(p.served_bytes, p.upstream_bytes)));
  const line = (key, cls) => {
    const path = document.createElementNS(svgNs, "polyline");
    const coords = points.map((p, i) => {
      const x = points.length < 2 ? width : (i / (points.length - 1)) * width;
      const y = height - pad - (p[key] / max) * (height - 2 * pad);
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    path.setAttribute("points", coords.join(" "));
    path.setAttribute("class", cls);
    svg.appendChild(path);
  };
  line("served_bytes", "served-line");
  line("upstream_bytes", "fetched-line");
  const label = document.createElementNS(svgNs, "title");
  label.textContent = "peak " + bytes(max) + " per 10 s";
  svg.appendChild(label);
  $("chart").replaceChildren(svg);
}

async function refreshOverview() {
  const o = await api("overview");
  $("version").textContent = "version " + o.version;
  $("uptime").textContent = duration(o.uptime_seconds);
  $("upstream").textContent = o.upstream.url;
  const badge = $("upstream-state");
  if (o.upstream.configured_offline) {
    badge.textContent = "offline (configured)";
    badge.className = "badge bad";
  } else if (o.upstream.reachable) {
    badge.textContent = "reachable";
    badge.className = "badge ok";
  } else {
    badge.textContent = "unreachable: " + o.upstream.problem;
    badge.className = "badge bad";
  }
  $("cache-dir").textContent = o.store.cache_dir;
  $("blobs").textContent = o.store.blobs.toLocaleString() + " (" + o.store.evictions + " evicted, " +
      o.store.quarantined + " quarantined since start)";
  const answers = Object.values(o.answers).reduce((a, b) => a + b, 0);
  const hits = (o.answers.HIT || 0) + (o.answers.STALE || 0);
  const recent = o.history.slice(-360);
  const recentAnswers = recent.reduce((a, p) => a + p.answers, 0);
  const recentHits = recent.reduce((a, p) => a + p.hits, 0);
  $("hit-ratio").textContent =
      (recentAnswers ? (100 * recentHits / recentAnswers).toFixed(1) + "% over the last hour, " : "") +
      (answers ? (100 * hits / answers).toFixed(1) + "% since start" : "no answers yet") +
      " (" + bytes(Object.values(o.served_bytes).reduce((a, b) => a + b, 0)) + " served, " +
      bytes(o.upstream_bytes) + " from upstream)";
  const used = o.store.used_bytes + o.store.reserved_bytes;
  const limit = o.store.max_bytes;
  const held = bytes(o.store.used_bytes) + " stored" +
      (o.store.reserved_bytes ? " + " + bytes(o.store.reserved_bytes) + " reserved for downloads" : "");
  const bar = $("use-bar");
  if (limit > 0) {
    const share = Math.min(1, used / limit);
    bar.style.width = (100 * share).toFixed(1) + "%";
    bar.className = share > 0.9 ? "bar-fill warn" : "bar-fill";
    $("use-text").textContent = held + " of " + bytes(limit) + " (store.max_bytes), " +
        o.store.min_free_percent + "% of the disk kept free";
  } else {
    bar.style.width = "0";
    $("use-text").textContent = held + ", no store.max_bytes; " +
        o.store.min_free_percent + "% of the disk kept free";
  }
  drawChart(o.history);
  return o;
}

// ----------------------------------------------------------------- downloads

async function refreshDownloads() {
  const d = await api("downloads");
  $("downloads-count").textContent = "(" + d.downloads.length + ")";
  replaceRows($("downloads-body"), d.downloads.map(f => {
    const tr = el("tr");
    tr.dataset.digest = f.digest;
    tr.dataset.bytes = f.bytes;
    tr.appendChild(el("td", f.repo));
    tr.appendChild(el("td", f.path || f.digest));
    const cell = el("td", null, "progress");
    const bar = el("div", null, "bar");
    const fill = el("div", null, "bar-fill");
    const share = f.size ? f.bytes / f.size : 1;
    fill.style.width = (100 * share).toFixed(1) + "%";
    bar.appendChild(fill);
    cell.appendChild(bar);
    cell.appendChild(el("span", bytes(f.bytes) + " (" + (100 * share).toFixed(1) + "%)", "label bytes-so-far"));
    tr.appendChild(cell);
    tr.appendChild(el("td", bytes(f.size), "num"));
    tr.appendChild(el("td", bytes(f.rate) + "/s", "num"));
    tr.appendChild(el("td", { hub: "Hub", swarm: "peers (swarm)", leader: "leader (streaming its download)" }[f.source] || f.source));
    tr.appendChild(el("td", f.readers, "num"));
    return tr;
  }));
  const hidden = $("downloads-hidden");
  hidden.hidden = d.restricted_hidden === 0;
  hidden.textContent = d.restricted_hidden + " more of restricted repos (the admin token shows them)";
}

// --------------------------------------------------------------------- repos

function drawRepos() {
  const filter = $("repo-filter").value.trim().toLowerCase();
  const key = state.sortKey;
  const rows = state.repos
      .filter(r => !filter || r.repo.toLowerCase().includes(filter))
      .sort((a, b) => {
        const x = a[key], y = b[key];
        const order = typeof x === "string" ? x.localeCompare(y) : x - y;
        return state.sortDown ? -order : order;
      });
  for (const button of document.querySelectorAll("button.sort")) {
    button.classList.toggle("active", button.dataset.key === key);
  }
  replaceRows($("repos-body"), rows.map(r => {
    const tr = el("tr");
    const name = el("td");
    const link = el("a", r.repo);
    const firstRef = Object.keys(r.refs)[0] || (r.commits[0] && r.commits[0].commit) || "main";
    link.href = "#repo?repo=" + encodeURIComponent(r.repo) + "&rev=" + encodeURIComponent(firstRef);
    name.appendChild(link);
    if (!r.public) name.appendChild(el("span", " restricted", "muted"));
    tr.appendChild(name);
    tr.appendChild(el("td", bytes(r.cached_bytes), "num"));
    tr.appendChild(el("td", r.cached_files, "num"));
    const revisions = el("td");
    const refs = Object.entries(r.refs);
    revisions.textContent = refs.length
        ? refs.map(([ref, commit]) => ref + " → " + commit.slice(0, 8)).join(", ")
        : r.commits.map(c => c.commit.slice(0, 8)).join(", ");
    tr.appendChild(revisions);
    tr.appendChild(el("td", r.pins.join(", ")));
    tr.appendChild(el("td", ago(r.last_access)));
    return tr;
  }));
}

async function refreshRepos() {
  const r = await api("repos");
  state.repos = r.repos;
  $("repos-count").textContent = "(" + r.repos.length + ")";
  const hidden = $("repos-hidden");
  hidden.hidden = r.restricted_hidden === 0;
  hidden.textContent = r.restricted_hidden + " restricted repos not shown (the admin token shows them)";
  drawRepos();
}

async function showRepo(repo, rev) {
  const r = await api("repo?repo=" + encodeURIComponent(repo) + "&rev=" + encodeURIComponent(rev));
  $("repo-name").textContent = r.repo;
  $("repo-rev").textContent = r.revision;
  $("repo-commit").textContent = r.commit;
  replaceRows($("repo-body"), r.files.map(f => {
    const tr = el("tr");
    tr.appendChild(el("td", f.path));
    tr.appendChild(el("td", bytes(f.size), "num"));
    tr.appendChild(el("td", f.lfs ? "LFS" : "git"));
    tr.appendChild(el("td", f.cached ? "yes" : "no"));
    return tr;
  }));
}

// ------------------------------------------------------------------- cluster

async function refreshCluster() {
  const c = await api("cluster");
  if (!c.enabled) return;
  $("cluster").hidden = false;
  $("cluster-link").hidden = false;
  $("cluster-node").textContent = c.node;
  $("cluster-leads").textContent = c.leader_of;
  $("cluster-torrents").textContent = c.torrents + " (" + c.seeds_loaded + " seeding now)";
  $("cluster-swarms").textContent = c.swarm_downloads_running + " (" + c.swarm_downloads_done +
      " done, " + c.swarm_downloads_failed + " failed since start)";
  replaceRows($("cluster-body"), c.members.map(m => {
    const tr = el("tr");
    tr.appendChild(el("td", m.address + (m.self ? " (this node)" : "")));
    tr.appendChild(el("td", m.self ? "self" : m.alive ? "alive" : "down" + (m.refused ? ": " + m.refused : "")));
    tr.appendChild(el("td", m.self ? "" : bytes(m.bytes_in || 0), "num"));
    tr.appendChild(el("td", m.self ? "" : bytes(m.bytes_out || 0), "num"));
    tr.appendChild(el("td", m.self ? "" : duration(m.seen_ms_ago / 1000) + " ago", "num"));
    return tr;
  }));
}

// ------------------------------------------------------------------- routing

function route() {
  const hash = location.hash;
  const detail = hash.startsWith("#repo?");
  $("repo").hidden = !detail;
  for (const id of ["overview", "downloads", "repos"]) $(id).hidden = detail;
  if (detail) {
    const params = new URLSearchParams(hash.slice("#repo?".length));
    showRepo(params.get("repo") || "", params.get("rev") || "main").catch(showError);
  }
}

async function tick() {
  try {
    const overview = await refreshOverview();
    await refreshDownloads();
    if (overview.cluster) await refreshCluster();
    showError(null);
  } catch (error) {
    showError(error);
  }
}

function start() {
  $("admin").addEventListener("submit", event => {
    event.preventDefault();
    const token = $("admin-token").value.trim();
    if (token) sessionStorage.setItem("hubcache-admin-token", token);
    else sessionStorage.removeItem("hubcache-admin-token");
    $("admin-token").value = "";
    $("admin-state").textContent = token ? "admin" : "";
    tick();
    refreshRepos().catch(showError);
  });
  if (sessionStorage.getItem("hubcache-admin-token")) $("admin-state").textContent = "admin";
  $("repo-filter").addEventListener("input", drawRepos);
  for (const button of document.querySelectorAll("button.sort")) {
    button.addEventListener("click", () => {
      if (state.sortKey === button.dataset.key) state.sortDown = !state.sortDown;
      else { state.sortKey = button.dataset.key; state.sortDown = button.dataset.key !== "repo"; }
      drawRepos();
    });
  }
  window.addEventListener("hashchange", route);
  route();
  tick();
  refreshRepos().catch(showError);
  setInterval(tick, 1000);
  setInterval(() => refreshRepos().catch(showError), 10000);
}

start();
