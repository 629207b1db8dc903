// Errors of the store (store::Errc) and their category.
//
// Failures that are not specific to the store use core::Errc or the system
// category (errno values from the filesystem).
#pragma once

#include <boost/system/error_code.hpp>
#include <type_traits>

namespace hubcache::store {

enum class Errc {
  kOk = 0,
  kDigestMismatch = 1,  // the bytes written do not hash to the expected digest
  kSizeMismatch,        // more or fewer bytes than announced
  kIncomplete,          // Commit() before every byte was written
  kBusy,                // another writer is writing this blob
  kNoSpace,             // cannot reserve the space (max_bytes / min_free_percent)
  kSchemaMismatch,      // the index was written by an incompatible version
  kIndexFailure,        // LMDB reported an error (logged with its message)
};

const boost::system::error_category& Category();

inline boost::system::error_code make_error_code(Errc e) {
  return {static_cast<int>(e), Category()};
}

}  // namespace hubcache::store

namespace boost::system {
template <>
struct is_error_code_enum<hubcache::store::Errc> : std::true_type {};
}  // namespace boost::system
