// The hubcache executable: parses the command line and dispatches.
#include "daemon/cli.h"

int main(int argc, char** argv) { return hubcache::daemon::Main(argc, argv); }
