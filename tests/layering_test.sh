#!/usr/bin/env bash
# Fails when an #include crosses a module boundary that STYLE.md §1 forbids.
set -u
root=${1:?usage: layering_test.sh SOURCE_DIR}
cd "$root" || exit 2
status=0

# forbid DIR PATTERN WHY: no file under DIR may include a header matching PATTERN.
forbid() {
  local dir=$1 pattern=$2 why=$3
  [ -d "$dir" ] || return 0
  local hits
  hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($pattern)" "$dir" \
           --include='*.h' --include='*.cc' 2>/dev/null)
  if [ -n "$hits" ]; then
    echo "layering violation ($why):"
    echo "$hits" | sed 's/^/    /'
    status=1
  fi
}

forbid core  'store/|proxy/|p2p/|config/|daemon/'           "core depends on nothing of ours"
forbid core  'lmdb\.h|libtorrent/|openssl/'                 "core stays free of module libraries"
forbid store 'proxy/|p2p/|config/|daemon/'                  "store depends only on core"
forbid store 'core/asio\.h|boost/asio|boost/beast'          "no Asio in store/"
forbid store 'libtorrent/'                                  "libtorrent stays in p2p/"
forbid proxy 'p2p/|config/|daemon/'                         "proxy depends on store and core"
forbid proxy 'lmdb\.h|libtorrent/'                          "LMDB stays in store/, libtorrent in p2p/"
forbid proxy 'store/(blob_index|index_env|[a-z_]*_internal)\.h' "only the store writes blob records"
forbid daemon 'store/(blob_index|index_env|[a-z_]*_internal)\.h' "only the store writes blob records"
forbid p2p   'store/(blob_index|index_env|[a-z_]*_internal)\.h' "only the store writes blob records"
forbid p2p   'proxy/|config/|daemon/'                       "p2p depends on store and core"
forbid p2p   'lmdb\.h'                                      "LMDB stays in store/"
forbid config 'daemon/'                                     "config reads only options.h"
forbid config 'lmdb\.h|libtorrent/|boost/asio|boost/beast'  "config has no I/O libraries"

# config/ may include only the options.h of other modules.
bad=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"(store|proxy|p2p)/' config \
        --include='*.h' --include='*.cc' | grep -vE '"(store|proxy|p2p)/options\.h"')
if [ -n "$bad" ]; then
  echo "layering violation (config includes only module options.h):"
  echo "$bad" | sed 's/^/    /'
  status=1
fi

# Nobody includes Asio directly except through core/asio.h.
bad=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<boost/asio' core store proxy p2p config daemon \
        --include='*.h' --include='*.cc' 2>/dev/null | grep -vE '^core/asio(_ssl)?\.h:')
if [ -n "$bad" ]; then
  echo "include Asio through core/asio.h, adding what is missing there:"
  echo "$bad" | sed 's/^/    /'
  status=1
fi

[ $status -eq 0 ] && echo "layering: ok"
exit $status
