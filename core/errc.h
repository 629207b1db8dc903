// Errors shared by every module (core::Errc) and the mapping of errno.
//
// Modules with errors of their own (store, proxy) define their own Errc enum
// and category the same way; this one holds the conditions that are not
// specific to any module. Thread safety: the categories are immutable statics.
#pragma once

#include <boost/system/error_code.hpp>
#include <type_traits>

namespace hubcache::core {

enum class Errc {
  kOk = 0,
  kInvalidArgument = 1,  // input failed validation; the caller passed bad data
  kNotFound,             // the named thing does not exist
  kAlreadyExists,        // creating something that is already there
  kLocked,               // another process holds a lock we need
  kCorrupt,              // stored data failed a consistency check
  kUnavailable,          // a dependency (disk, network) is not usable now
};

const boost::system::error_category& Category();

inline boost::system::error_code make_error_code(Errc e) {
  return {static_cast<int>(e), Category()};
}

// Maps an errno value to an error_code in the system category. Call it once,
// at the boundary where the failing syscall happened.
inline boost::system::error_code ErrnoError(int err) {
  return {err, boost::system::system_category()};
}

}  // namespace hubcache::core

namespace boost::system {
template <>
struct is_error_code_enum<hubcache::core::Errc> : std::true_type {};
}  // namespace boost::system
