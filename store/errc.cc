#include "store/errc.h"

#include <string>

namespace hubcache::store {
namespace {

class StoreCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "hubcache.store"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::kOk: return "ok";
      case Errc::kDigestMismatch: return "content does not match its digest";
      case Errc::kSizeMismatch: return "content size does not match";
      case Errc::kIncomplete: return "blob is incomplete";
      case Errc::kBusy: return "blob is being written by another writer";
      case Errc::kNoSpace: return "not enough cache space";
      case Errc::kSchemaMismatch: return "index schema version mismatch";
      case Errc::kIndexFailure: return "index (LMDB) failure";
    }
    return "unknown store error";
  }
};

}  // namespace

const boost::system::error_category& Category() {
  static const StoreCategory category;
  return category;
}

}  // namespace hubcache::store
