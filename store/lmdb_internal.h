// Thin RAII wrappers over the LMDB C API, internal to store/.
//
// MDB_* types never leave store/: Index (index.h) is the public face. These
// wrappers map LMDB return codes to error_codes once, at the boundary, and
// copy values out of LMDB memory before a transaction ends, so no pointer
// into the map outlives its transaction.
//
// Threading: the environment is opened with MDB_NOTLS, so a read transaction
// is not bound to the thread that began it; write transactions run only on
// the Index's writer thread. A Txn is used by one thread at a time.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace hubcache::store::internal {

// Maps an LMDB return code: MDB_NOTFOUND → core::Errc::kNotFound, errno
// values → system category, other MDB_* codes → Errc::kIndexFailure (logged
// with LMDB's message).
ErrorCode LmdbError(int rc);

class Env {
 public:
  // Opens (creating) the environment in directory `dir` with room for
  // `max_dbs` named databases and a map of `map_size` bytes.
  static Result<std::unique_ptr<Env>> Open(const std::filesystem::path& dir, unsigned max_dbs,
                                           std::size_t map_size);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* get() const { return env_; }

 private:
  explicit Env(MDB_env* env) : env_(env) {}
  MDB_env* env_;
};

class Txn {
 public:
  static Result<Txn> Begin(const Env& env, bool read_only);
  // Takes ownership of a transaction begun elsewhere (a nested one).
  static Txn Adopt(MDB_txn* txn) { return Txn(txn); }
  Txn(Txn&& other) noexcept : txn_(other.txn_) { other.txn_ = nullptr; }
  Txn& operator=(Txn&&) = delete;
  ~Txn();

  // Opens (with create in a write transaction) a named database.
  Result<MDB_dbi> OpenDb(const char* name, bool create);

  // The value under `key`, copied out; nullopt if absent.
  Result<std::optional<std::string>> Get(MDB_dbi dbi, std::string_view key) const;
  Result<void> Put(MDB_dbi dbi, std::string_view key, std::string_view value);
  // True if something was deleted.
  Result<bool> Del(MDB_dbi dbi, std::string_view key);
  // Calls `fn(key, value)` for each entry whose key starts with `prefix`, in
  // key order, until it returns false. The views are valid only during the
  // call.
  Result<void> Scan(MDB_dbi dbi, std::string_view prefix,
                    const std::function<bool(std::string_view, std::string_view)>& fn) const;
  // Number of entries in `dbi`.
  Result<std::uint64_t> Count(MDB_dbi dbi) const;

  // Commits; the Txn is spent afterwards.
  Result<void> Commit();

  MDB_txn* get() const { return txn_; }

 private:
  explicit Txn(MDB_txn* txn) : txn_(txn) {}
  MDB_txn* txn_;
};

}  // namespace hubcache::store::internal
