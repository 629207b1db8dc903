// The version of this build, from the CMake project version.
#pragma once

namespace hubcache::daemon {

const char* Version();

}  // namespace hubcache::daemon
