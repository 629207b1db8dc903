// Errors of the p2p module (p2p::Errc) and their category.
//
// Failures that are not specific to p2p use core::Errc (kInvalidArgument,
// kNotFound), store::Errc (kSizeMismatch) or the system category (errno
// values from the filesystem, ECANCELED for a stopped job). Thread safety:
// the category is an immutable static.
#pragma once

#include <boost/system/error_code.hpp>
#include <type_traits>

namespace hubcache::p2p {

enum class Errc {
  kOk = 0,
  kInvalidTorrent = 1,  // the bytes are not a .torrent libtorrent can load
  kTorrentMismatch,     // a valid .torrent, but not of the blob that was asked for
  kNotCanonical,        // describes the blob, but not in the form every node builds
  kBadPieceHashes,      // piece hashes that do not fit the blob (size or count)
  kNoHolders,           // no other live node holds the blob
  kStalled,             // a swarm download made no progress for cluster.stall_timeout
  kBusy,                // this node is downloading that blob already
  kUnexpectedReply,     // a node answered with another status or length than asked for
  kLeaderCannotFetch,   // the blob's leader could not fetch it from the Hub
  kPeersGone,           // every peer of a swarm download left before it was done
};

const boost::system::error_category& Category();

inline boost::system::error_code make_error_code(Errc e) {
  return {static_cast<int>(e), Category()};
}

}  // namespace hubcache::p2p

namespace boost::system {
template <>
struct is_error_code_enum<hubcache::p2p::Errc> : std::true_type {};
}  // namespace boost::system
