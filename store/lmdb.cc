#include <sys/stat.h>

#include <cerrno>

#include "core/errc.h"
#include "core/log.h"
#include "store/errc.h"
#include "store/lmdb_internal.h"

namespace hubcache::store::internal {
namespace {

MDB_val Val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

std::string_view View(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

}  // namespace

ErrorCode LmdbError(int rc) {
  if (rc == MDB_NOTFOUND) return core::Errc::kNotFound;
  if (rc > 0) return core::ErrnoError(rc);  // LMDB passes errno values through
  log::Error(log::Module::kStore, "lmdb_error", {{"rc", rc}, {"error", mdb_strerror(rc)}});
  return Errc::kIndexFailure;
}

Result<std::unique_ptr<Env>> Env::Open(const std::filesystem::path& dir, unsigned max_dbs,
                                       std::size_t map_size) {
  std::error_code fs_ec;
  std::filesystem::create_directories(dir, fs_ec);
  if (fs_ec) return Fail(core::ErrnoError(fs_ec.value()));
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return Fail(LmdbError(rc));
  std::unique_ptr<Env> holder(new Env(env));
  if ((rc = mdb_env_set_maxdbs(env, max_dbs)) != 0) return Fail(LmdbError(rc));
  if ((rc = mdb_env_set_mapsize(env, map_size)) != 0) return Fail(LmdbError(rc));
  // MDB_NOTLS: read transactions may move between threads (coroutines do).
  if ((rc = mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0640)) != 0) return Fail(LmdbError(rc));
  // Readers left behind by a crashed process would pin old pages forever.
  int dead = 0;
  mdb_reader_check(env, &dead);
  return holder;
}

Env::~Env() { mdb_env_close(env_); }

Result<Txn> Txn::Begin(const Env& env, bool read_only) {
  MDB_txn* txn = nullptr;
  const int rc = mdb_txn_begin(env.get(), nullptr, read_only ? MDB_RDONLY : 0, &txn);
  if (rc != 0) return Fail(LmdbError(rc));
  return Txn(txn);
}

Txn::~Txn() {
  if (txn_ != nullptr) mdb_txn_abort(txn_);
}

Result<MDB_dbi> Txn::OpenDb(const char* name, bool create) {
  MDB_dbi dbi = 0;
  const int rc = mdb_dbi_open(txn_, name, create ? MDB_CREATE : 0, &dbi);
  if (rc != 0) return Fail(LmdbError(rc));
  return dbi;
}

Result<std::optional<std::string>> Txn::Get(MDB_dbi dbi, std::string_view key) const {
  MDB_val k = Val(key);
  MDB_val v{};
  const int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string>();
  if (rc != 0) return Fail(LmdbError(rc));
  return std::optional<std::string>(std::string(View(v)));
}

Result<void> Txn::Put(MDB_dbi dbi, std::string_view key, std::string_view value) {
  MDB_val k = Val(key);
  MDB_val v = Val(value);
  const int rc = mdb_put(txn_, dbi, &k, &v, 0);
  if (rc != 0) return Fail(LmdbError(rc));
  return {};
}

Result<bool> Txn::Del(MDB_dbi dbi, std::string_view key) {
  MDB_val k = Val(key);
  const int rc = mdb_del(txn_, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) return Fail(LmdbError(rc));
  return true;
}

Result<void> Txn::Scan(MDB_dbi dbi, std::string_view prefix,
                       const std::function<bool(std::string_view, std::string_view)>& fn) const {
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn_, dbi, &cursor);
  if (rc != 0) return Fail(LmdbError(rc));
  MDB_val k = Val(prefix);
  MDB_val v{};
  rc = mdb_cursor_get(cursor, &k, &v, prefix.empty() ? MDB_FIRST : MDB_SET_RANGE);
  while (rc == 0) {
    const std::string_view key = View(k);
    if (!key.starts_with(prefix) || !fn(key, View(v))) break;
    rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) return Fail(LmdbError(rc));
  return {};
}

Result<std::uint64_t> Txn::Count(MDB_dbi dbi) const {
  MDB_stat stat{};
  const int rc = mdb_stat(txn_, dbi, &stat);
  if (rc != 0) return Fail(LmdbError(rc));
  return static_cast<std::uint64_t>(stat.ms_entries);
}

Result<void> Txn::Commit() {
  const int rc = mdb_txn_commit(txn_);
  txn_ = nullptr;  // committed or aborted by LMDB either way
  if (rc != 0) return Fail(LmdbError(rc));
  return {};
}

}  // namespace hubcache::store::internal
