#include "store/small_blob_cache.h"

#include "store/blob_store.h"

namespace hubcache::store {

SmallBlobCache::SmallBlobCache(BlobStore& store) : store_(store) { store_.AddObserver(this); }

SmallBlobCache::~SmallBlobCache() { store_.RemoveObserver(this); }

std::shared_ptr<const std::string> SmallBlobCache::Get(const Digest& digest) {
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(digest);
    if (it != entries_.end()) {
      order_.splice(order_.end(), order_, it->second.position);
      store_.Touch(digest);
      return it->second.content;
    }
  }
  auto record = store_.GetBlob(digest);
  if (!record || !*record || (*record)->size > kMaxBlobBytes) return nullptr;
  auto blob = store_.Lookup(digest);  // checks the file against the index; records the access
  if (!blob) return nullptr;
  auto content = std::make_shared<std::string>(blob->size, '\0');
  std::size_t done = 0;
  while (done < content->size()) {
    auto n = store_.disk().Read(blob->fd.get(), reinterpret_cast<std::uint8_t*>(content->data()) + done,
                                content->size() - done, done);
    if (!n || *n == 0) return nullptr;
    done += *n;
  }
  std::lock_guard lock(mu_);
  // Removed since the read above? The store deletes the index entry before it
  // calls OnRemoving (which takes mu_): either the entry is gone by now and
  // this check sees it, or OnRemoving runs after the insertion and drops it.
  auto still = store_.GetBlob(digest);
  if (!still || !*still) return content;
  auto [it, inserted] = entries_.try_emplace(digest);
  if (inserted) {
    it->second.content = content;
    it->second.position = order_.insert(order_.end(), digest);
    bytes_ += content->size();
    while (bytes_ > kCapacityBytes && !order_.empty()) {
      auto oldest = entries_.find(order_.front());
      bytes_ -= oldest->second.content->size();
      entries_.erase(oldest);
      order_.pop_front();
    }
  }
  return it->second.content;
}

std::uint64_t SmallBlobCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

void SmallBlobCache::OnRemoving(const Digest& digest) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(digest);
  if (it == entries_.end()) return;
  bytes_ -= it->second.content->size();
  order_.erase(it->second.position);
  entries_.erase(it);
}

}  // namespace hubcache::store
