#!/usr/bin/env bash
# Installs every build and test dependency of hubcache from Debian 12's
# archive. Idempotent: when everything is present it only checks and exits.
# Uses sudo when not root; when it cannot install, it prints the command to
# run and fails.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config ccache git
  # libraries (see DESIGN.md "Toolchain notes")
  libboost-dev libboost-system-dev libssl-dev liblmdb-dev libspdlog-dev libfmt-dev
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libexpected-dev
  libtorrent-rasterbar-dev libsystemd-dev libjemalloc-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev lmdb-utils
  curl nginx wrk apache2-utils tinyproxy ca-certificates procps iproute2 python3 bsdextrautils
  libnss-wrapper  # a private hosts file for the cluster's DNS membership test
  python3-yaml    # parses deploy/kubernetes/ in tests/deploy_test.py
  clang-14 libclang-rt-14-dev  # the libFuzzer fuzzers in tests/fuzz/
  chromium                    # the status page's browser test (tests/e2e/js/status_page.mjs)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# The real-client tests need node and npm. Debian's npm conflicts with a
# preinstalled Node, so install Debian's only where they are missing.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

install_packages() {
  cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo)
    else
      echo "deps: missing packages: ${missing[*]}" >&2
      echo "deps: cannot install them without root. Run:" >&2
      echo "    sudo apt-get update && sudo ${cmd[*]}" >&2
      exit 1
    fi
  fi

  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get update -q || ! "${sudo[@]}" "${cmd[@]}"; then
    echo "deps: apt-get failed. Install the packages by hand:" >&2
    echo "    apt-get update && ${cmd[*]}" >&2
    exit 1
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all Debian packages are installed"
else
  install_packages
fi

# With --test: the huggingface.js client for the end-to-end tests, exactly
# as locked in tests/e2e/js/package-lock.json (from the npm registry, once;
# a stamp says which lock file node_modules was installed from).
if [ "${1:-}" = "--test" ]; then
  js_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/e2e/js"
  stamp="$js_dir/node_modules/.hubcache-installed-lock"
  if ! cmp -s "$js_dir/package-lock.json" "$stamp"; then
    echo "deps: installing the huggingface.js test client (npm ci in tests/e2e/js)"
    if ! (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error); then
      echo "deps: npm ci failed in $js_dir; the end-to-end tests need it" >&2
      exit 1
    fi
    cp "$js_dir/package-lock.json" "$stamp"
  fi
fi
