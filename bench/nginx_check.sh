#!/usr/bin/env bash
# bench/nginx_check.sh: proves bench/nginx.conf against the fake Hub.
#
# Starts hubcache-fakehub (prebuilt; FAKEHUB=path to choose one), renders the nginx
# template into a temp dir, `nginx -t`s and starts it, then checks with curl:
#   a) a regular file (307 relative redirect): 200, same bytes as the Hub, then a HIT
#      that does not touch the Hub; HEAD from the cache with X-Repo-Commit
#   b) an LFS file (302 to the CDN): the same, plus X-Linked-Etag / X-Linked-Size
#   c) Range bytes=10-19 of the cached LFS file: 206 with the right bytes, from the cache;
#      and a Range on an uncached file (nginx fetches it whole)
#   d) 8 concurrent GETs of the uncached 256 MiB org/big file: right bytes for all, and
#      how many GETs the CDN saw (must be 1)
#   e) tokens: private repo refused to anonymous and to a wrong token even once cached,
#      served and cached for the owner; no token ever reaches the CDN
#   f) commit-pinned resolve, HEAD on an uncached file, API pass-through
#   g) Xet (the fake Hub runs with --xet): no Xet hints leak, the JS probe gets bytes
# Then stops nginx and the fake Hub. Exit 0 when everything passed.
# KEEP_TMP=1 keeps the temp dir (rendered config, logs, cache) for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."

NGINX=${NGINX:-/usr/sbin/nginx}
if [[ -z "${FAKEHUB:-}" ]]; then
  for candidate in build/release build/asan build/debug build/fakehub build; do
    if [[ -x "$candidate/tests/fakehub/hubcache-fakehub" ]]; then
      FAKEHUB=$candidate/tests/fakehub/hubcache-fakehub
      break
    fi
  done
fi
[[ -x "${FAKEHUB:-}" ]] || { echo "no hubcache-fakehub binary found; set FAKEHUB" >&2; exit 2; }
command -v jq >/dev/null || { echo "jq is required" >&2; exit 2; }

tmp=$(mktemp -d /tmp/nginxchk.XXXXXX)
work=$tmp/work
mkdir -p "$work" "$tmp/out"
fakehub_pid=
nginx_pid=

cleanup() {
  local rc=$?
  if [[ -n "$nginx_pid" ]] && kill -0 "$nginx_pid" 2>/dev/null; then
    kill -QUIT "$nginx_pid" 2>/dev/null || true   # graceful stop of the master + workers
    for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
    kill -TERM "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
  fi
  if [[ -n "$fakehub_pid" ]] && kill -0 "$fakehub_pid" 2>/dev/null; then
    kill -TERM "$fakehub_pid" 2>/dev/null || true
    wait "$fakehub_pid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 ]]; then
    echo "--- nginx error.log (tail)"; tail -n 20 "$work/error.log" 2>/dev/null || true
    echo "--- fakehub stderr (tail)"; tail -n 20 "$tmp/fakehub.err" 2>/dev/null || true
  fi
  if [[ "${KEEP_TMP:-0}" == 1 || $rc -ne 0 ]]; then
    echo "temp dir kept: $tmp"
  else
    rm -rf "$tmp"
  fi
  exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok   $*"; }
note() { echo "     $*"; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- fake Hub (it binds free ports itself: --port 0 --cdn-port 0) ----------------------------
"$FAKEHUB" --port 0 --cdn-port 0 --xet --quiet >"$tmp/fakehub.out" 2>"$tmp/fakehub.err" &
fakehub_pid=$!
for _ in $(seq 300); do
  grep -q '^fakehub ' "$tmp/fakehub.out" 2>/dev/null && break
  kill -0 "$fakehub_pid" 2>/dev/null || fail "fakehub exited: $(cat "$tmp/fakehub.err")"
  sleep 0.1
done
HUB=$(sed -n 's/^fakehub hub=\([^ ]*\) .*/\1/p' "$tmp/fakehub.out")
CDN=$(sed -n 's/.* cdn=\([^ ]*\) .*/\1/p' "$tmp/fakehub.out")
[[ -n "$HUB" && -n "$CDN" ]] || fail "could not read the fakehub's address"
echo "fakehub: hub=$HUB cdn=$CDN ($FAKEHUB)"

# ---- nginx ------------------------------------------------------------------------------------
PORT=$(free_port)
NX=http://127.0.0.1:$PORT
sed -e "s|@LISTEN_PORT@|$PORT|g" -e "s|@HUB@|${HUB#http://}|g" -e "s|@WORKDIR@|$work|g" \
  bench/nginx.conf >"$tmp/nginx.conf"
if grep -n '@[A-Z_]*@' "$tmp/nginx.conf"; then fail "unsubstituted placeholder"; fi
"$NGINX" -t -q -p "$work" -c "$tmp/nginx.conf" || fail "nginx -t"
ok "nginx -t"
"$NGINX" -p "$work" -c "$tmp/nginx.conf" >"$tmp/nginx.out" 2>&1 &
nginx_pid=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "$NX/api/models/org/model" && break
  kill -0 "$nginx_pid" 2>/dev/null || fail "nginx exited: $(cat "$tmp/nginx.out")"
  sleep 0.1
done
echo "nginx: $NX (pid $nginx_pid, workdir $work)"

# ---- helpers ----------------------------------------------------------------------------------
# fetch NAME URL [curl args...]: body to $tmp/out/NAME, headers to $tmp/out/NAME.h
fetch() {
  local name=$1 url=$2
  shift 2
  curl -s -o "$tmp/out/$name" -D "$tmp/out/$name.h" "$@" "$url" || fail "curl $url"
}
# header NAME HEADER: value of that response header (last one), CR stripped
header() {
  { grep -i "^$2:" "$tmp/out/$1.h" || true; } | tail -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'
}
header_count() { grep -ci "^$2:" "$tmp/out/$1.h" || true; }
status() { head -n 1 "$tmp/out/$1.h" | cut -d' ' -f2; }
expect_status() { [[ "$(status "$1")" == "$2" ]] || fail "$1: status $(status "$1"), expected $2"; }
expect_cache() {
  [[ "$(header "$1" X-Cache-Status)" == "$2" ]] || fail "$1: X-Cache-Status '$(header "$1" X-Cache-Status)', expected $2"
}
same_bytes() { cmp -s "$tmp/out/$1" "$tmp/out/$2" || fail "$1 and $2 differ"; }
clear_log() { curl -s -X DELETE "$HUB/_fake/log" >/dev/null; }
# upstream_requests [jq filter]: requests the fake Hub answered since the last clear_log
upstream_requests() { curl -s "$HUB/_fake/log" | jq "[.[] | select(${1:-true})] | length"; }
cdn_gets() { upstream_requests '.listener == "cdn" and .method == "GET"'; }

COMMIT=$(curl -s "$HUB/api/models/org/model/revision/main" | jq -r .sha)
[[ "$COMMIT" =~ ^[0-9a-f]{40}$ ]] || fail "no commit from the Hub"

# ---- a) regular file --------------------------------------------------------------------------
fetch config.direct "$HUB/org/model/resolve/main/config.json" -L
clear_log
fetch config.1 "$NX/org/model/resolve/main/config.json"
expect_status config.1 200; expect_cache config.1 MISS; same_bytes config.1 config.direct
[[ "$(header config.1 X-Repo-Commit)" == "$COMMIT" ]] || fail "config.1: X-Repo-Commit"
[[ "$(header_count config.1 X-Repo-Commit)" == 1 ]] || fail "config.1: X-Repo-Commit sent twice"
note "miss: Hub saw $(upstream_requests) requests (resolve 307 + resolve-cache 200)"
clear_log
fetch config.2 "$NX/org/model/resolve/main/config.json"
expect_status config.2 200; expect_cache config.2 HIT; same_bytes config.2 config.direct
fetch config.head "$NX/org/model/resolve/main/config.json" -I
expect_status config.head 200; expect_cache config.head HIT
[[ "$(header config.head X-Repo-Commit)" == "$COMMIT" ]] || fail "config.head: X-Repo-Commit"
[[ "$(header config.head Content-Length)" == "$(stat -c %s "$tmp/out/config.direct")" ]] || fail "config.head: Content-Length"
[[ "$(header config.head ETag)" == "\"$(header config.1 ETag | tr -d '"')\"" ]] || fail "config.head: ETag"
[[ "$(upstream_requests)" == 0 ]] || fail "the HIT touched the Hub"
ok "a) config.json: 200 MISS then HIT (Hub not asked), same $(stat -c %s "$tmp/out/config.direct") bytes; HEAD 200 with X-Repo-Commit, ETag, Content-Length"

# ---- b) LFS file ------------------------------------------------------------------------------
fetch model.direct "$HUB/org/model/resolve/main/model.safetensors" -L
model_sha=$(sha256sum <"$tmp/out/model.direct" | cut -d' ' -f1)
clear_log
fetch model.1 "$NX/org/model/resolve/main/model.safetensors"
expect_status model.1 200; expect_cache model.1 MISS; same_bytes model.1 model.direct
note "miss: Hub saw $(upstream_requests '.listener == "hub"') request(s), CDN $(upstream_requests '.listener == "cdn"')"
clear_log
fetch model.2 "$NX/org/model/resolve/main/model.safetensors"
expect_status model.2 200; expect_cache model.2 HIT; same_bytes model.2 model.direct
fetch model.head "$NX/org/model/resolve/main/model.safetensors" -I
expect_status model.head 200; expect_cache model.head HIT
[[ "$(header model.head X-Repo-Commit)" == "$COMMIT" ]] || fail "model.head: X-Repo-Commit"
[[ "$(header model.head X-Linked-Etag)" == "\"$model_sha\"" ]] || fail "model.head: X-Linked-Etag"
[[ "$(header model.head X-Linked-Size)" == 5000000 ]] || fail "model.head: X-Linked-Size"
[[ "$(header model.head Content-Length)" == 5000000 ]] || fail "model.head: Content-Length"
[[ -z "$(header model.head X-Cache)" ]] || fail "model.head: the CDN's X-Cache leaked"
[[ "$(upstream_requests)" == 0 ]] || fail "the HIT touched the Hub or CDN"
ok "b) model.safetensors (5 MB LFS via CDN): 200 MISS then HIT (nothing upstream), same bytes; HEAD 200 with X-Repo-Commit, X-Linked-Etag, X-Linked-Size"

# ---- c) ranges --------------------------------------------------------------------------------
clear_log
fetch range.1 "$NX/org/model/resolve/main/model.safetensors" -H 'Range: bytes=10-19'
expect_status range.1 206; expect_cache range.1 HIT
[[ "$(header range.1 Content-Range)" == "bytes 10-19/5000000" ]] || fail "range.1: Content-Range $(header range.1 Content-Range)"
dd if="$tmp/out/model.direct" of="$tmp/out/range.expected" bs=1 skip=10 count=10 status=none
same_bytes range.1 range.expected
fetch range.416 "$NX/org/model/resolve/main/model.safetensors" -H 'Range: bytes=5000000-'
expect_status range.416 416
[[ "$(header range.416 Content-Range)" == "bytes */5000000" ]] || fail "range.416: Content-Range"
[[ "$(upstream_requests)" == 0 ]] || fail "ranges of a cached file went upstream"
ok "c) Range bytes=10-19 of the cached LFS file: 206, Content-Range bytes 10-19/5000000, right 10 bytes, HIT; past the end: 416"
fetch parquet.direct "$HUB/datasets/org/data/resolve/main/data/big.parquet" -L
clear_log
fetch parquet.range "$NX/datasets/org/data/resolve/main/data/big.parquet" -H 'Range: bytes=1000-1999'
expect_status parquet.range 206; expect_cache parquet.range MISS
dd if="$tmp/out/parquet.direct" of="$tmp/out/parquet.expected" bs=1 skip=1000 count=1000 status=none
same_bytes parquet.range parquet.expected
cdn_ranges=$(curl -s "$HUB/_fake/log" | jq -r '[.[] | select(.listener == "cdn") | (.range // "" | if . == "" then "none" else . end)] | join(",")')
cdn_bytes=$(curl -s "$HUB/_fake/log" | jq '[.[] | select(.listener == "cdn") | .body_bytes_sent] | add')
fetch parquet.full "$NX/datasets/org/data/resolve/main/data/big.parquet"
expect_cache parquet.full HIT; same_bytes parquet.full parquet.direct
ok "c) Range on an uncached file: 206 MISS with the right bytes; the CDN was asked with Range=$cdn_ranges and sent $cdn_bytes bytes (the whole file); the next GET is a HIT"

# ---- d) 8 concurrent GETs of the uncached 256 MiB file ----------------------------------------
big_sha=$(curl -sL "$HUB/org/big/resolve/main/model.safetensors" | sha256sum | cut -d' ' -f1)
clear_log
start=$EPOCHREALTIME
pids=()
for i in $(seq 8); do
  (curl -s -o - -w '%{stderr}%{http_code} %{size_download} %header{x-cache-status} %{time_starttransfer} %{time_total}\n' \
     "$NX/org/big/resolve/main/model.safetensors" 2>"$tmp/out/big.$i.w" |
     sha256sum | cut -d' ' -f1 >"$tmp/out/big.$i.sha") &
  pids+=($!)
done
wait "${pids[@]}"
end=$EPOCHREALTIME
for i in $(seq 8); do
  read -r code size cache ttfb total <"$tmp/out/big.$i.w"
  got=$(cat "$tmp/out/big.$i.sha")
  note "client $i: $code $size bytes X-Cache-Status=$cache first byte ${ttfb}s total ${total}s sha256 ${got:0:12}"
  [[ "$code" == 200 && "$size" == 268435456 ]] || fail "big client $i: $code $size"
  [[ "$got" == "$big_sha" ]] || fail "big client $i: wrong sha256 $got"
done
n_cdn=$(cdn_gets)
n_hub=$(upstream_requests '.listener == "hub"')
bytes_cdn=$(curl -s "$HUB/_fake/log" | jq '[.[] | select(.listener == "cdn") | .body_bytes_sent] | add')
wall=$(python3 -c "print('%.2f' % ($end - $start))")
[[ "$n_cdn" == 1 ]] || fail "d) the CDN saw $n_cdn GETs for 8 concurrent clients (expected 1)"
ok "d) 8 concurrent GETs of uncached org/big (256 MiB): all 8 bodies sha256 ${big_sha:0:12}...; CDN saw $n_cdn GET ($bytes_cdn bytes), Hub $n_hub request(s); wall ${wall}s"

# ---- e) tokens --------------------------------------------------------------------------------
PRIV=/org/private/resolve/main/model.safetensors
fetch priv.direct "$HUB$PRIV" -L -H 'Authorization: Bearer hf_owner'
clear_log
fetch priv.anon "$NX$PRIV"
expect_status priv.anon 401
[[ "$(header priv.anon X-Error-Code)" == RepoNotFound ]] || fail "priv.anon: X-Error-Code"
fetch priv.other "$NX$PRIV" -H 'Authorization: Bearer hf_user'
expect_status priv.other 404
fetch priv.owner1 "$NX$PRIV" -H 'Authorization: Bearer hf_owner'
expect_status priv.owner1 200; expect_cache priv.owner1 MISS; same_bytes priv.owner1 priv.direct
fetch priv.owner2 "$NX$PRIV" -H 'Authorization: Bearer hf_owner'
expect_status priv.owner2 200; expect_cache priv.owner2 HIT; same_bytes priv.owner2 priv.direct
fetch priv.anon2 "$NX$PRIV"
expect_status priv.anon2 401
fetch priv.other2 "$NX$PRIV" -H 'Authorization: Bearer hf_user'
expect_status priv.other2 404
fetch priv.bad "$NX$PRIV" -H 'Authorization: Bearer hf_nobody'
expect_status priv.bad 401
[[ "$(upstream_requests '.listener == "cdn" and .had_authorization')" == 0 ]] || fail "a token reached the CDN"
[[ "$(upstream_requests '.listener == "cdn"')" == 1 ]] || fail "private file fetched from the CDN more than once"
ok "e) org/private: anonymous 401, wrong token 404, owner 200 MISS then HIT; once cached still 401/404/401 for anonymous/wrong/invalid tokens; CDN fetched it once, never with a token"

# ---- f) commit-pinned, HEAD on a miss, API ----------------------------------------------------
fetch pinned.1 "$NX/org/model/resolve/$COMMIT/config.json"
expect_status pinned.1 200; expect_cache pinned.1 MISS; same_bytes pinned.1 config.direct
fetch pinned.2 "$NX/org/model/resolve/$COMMIT/config.json"
expect_cache pinned.2 HIT; same_bytes pinned.2 config.direct
fetch v1.direct "$HUB/org/model/resolve/v1.0/model.safetensors" -L
clear_log
fetch v1.head "$NX/org/model/resolve/v1.0/model.safetensors" -I
expect_status v1.head 200; expect_cache v1.head MISS
[[ "$(header v1.head Content-Length)" == "$(stat -c %s "$tmp/out/v1.direct")" ]] || fail "v1.head: Content-Length"
[[ "$(header v1.head X-Repo-Commit)" =~ ^[0-9a-f]{40}$ ]] || fail "v1.head: X-Repo-Commit"
fetch v1.get "$NX/org/model/resolve/v1.0/model.safetensors"
expect_status v1.get 200; expect_cache v1.get HIT; same_bytes v1.get v1.direct
[[ "$(cdn_gets)" == 1 ]] || fail "HEAD + GET fetched the file $(cdn_gets) times"
fetch api "$NX/api/models/org/model/revision/main"
expect_status api 200
[[ "$(jq -r .sha "$tmp/out/api")" == "$COMMIT" ]] || fail "api: sha"
[[ -z "$(header api X-Cache-Status)" ]] || fail "api: should not go through the cache"
fetch missing "$NX/org/model/resolve/main/no-such-file"
expect_status missing 404
[[ "$(header missing X-Error-Code)" == EntryNotFound ]] || fail "missing: X-Error-Code"
ok "f) resolve at a commit: MISS then HIT; HEAD of an uncached file: 200 with size and commit, fetched it into the cache (GET then HIT, 1 CDN GET); API passed through; 404 EntryNotFound passed through"

# ---- g) Xet -----------------------------------------------------------------------------------
fetch xet.direct "$HUB/org/model/resolve/main/model.safetensors" -I
[[ -n "$(header xet.direct X-Xet-Hash)" ]] || fail "fakehub does not send Xet hints (--xet?)"
[[ -z "$(header model.head X-Xet-Hash)" && -z "$(header model.head Link)" ]] || fail "Xet hints leaked"
fetch xet.probe "$NX/org/model/resolve/main/model.safetensors" \
  -H 'Accept: application/vnd.xet-fileinfo+json, */*' -H 'Range: bytes=0-0'
expect_status xet.probe 206
[[ "$(header xet.probe Content-Range)" == "bytes 0-0/5000000" ]] || fail "xet.probe: Content-Range"
[[ "$(header xet.probe Content-Type)" != *xet* ]] || fail "xet.probe: got the Xet file-info answer"
ok "g) Xet: the Hub sends X-Xet-Hash, nginx's answers do not; the JS probe (Accept xet-fileinfo, Range 0-0) gets 206 bytes 0-0/5000000"

echo "PASS: bench/nginx.conf behaves (nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), $(grep -c 'worker process' <(ps -o cmd --ppid "$nginx_pid")) workers)"
