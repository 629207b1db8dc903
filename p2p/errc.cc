#include "p2p/errc.h"

#include <string>

namespace hubcache::p2p {
namespace {

class P2pCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "hubcache.p2p"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::kOk: return "ok";
      case Errc::kInvalidTorrent: return "not a valid .torrent";
      case Errc::kTorrentMismatch: return ".torrent describes another blob";
      case Errc::kNotCanonical: return ".torrent is not in canonical form";
      case Errc::kBadPieceHashes: return "piece hashes do not fit the blob";
      case Errc::kNoHolders: return "no other node of the cluster holds the blob";
      case Errc::kStalled: return "the swarm download made no progress";
      case Errc::kPeersGone: return "every peer of the swarm download left";
      case Errc::kBusy: return "the blob is being downloaded already";
      case Errc::kUnexpectedReply: return "the node answered with another status or length";
      case Errc::kLeaderCannotFetch: return "the blob's leader could not fetch it";
    }
    return "unknown p2p error";
  }
};

}  // namespace

const boost::system::error_category& Category() {
  static const P2pCategory category;
  return category;
}

}  // namespace hubcache::p2p
