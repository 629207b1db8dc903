// The hubcache executable: parses the command line and dispatches.
#include "daemon/cli.h"

#ifdef HUBCACHE_JEMALLOC
// jemalloc's defaults keep freed pages for 10 s. A swarm at loopback speed
// frees a 4 MiB piece buffer every few milliseconds, from libtorrent's and
// the blocking pool's threads, and the kept pages made a node's anonymous
// RSS peak at ~300 MB. Returned after 200 ms by jemalloc's own background
// thread (never on a request's path), the peak stays ~130 MB with the same
// throughput (bench/RESULTS.md, issue 16). The environment's MALLOC_CONF
// still overrides this.
extern "C" {
// NOLINTNEXTLINE: jemalloc reads this global by name.
const char* malloc_conf = "background_thread:true,dirty_decay_ms:200,muzzy_decay_ms:0";
}
#endif

int main(int argc, char** argv) { return hubcache::daemon::Main(argc, argv); }
