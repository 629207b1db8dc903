#include "store/cache_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "core/errc.h"

#include "tests/support/temp_dir.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;

class CacheDirTest : public ::testing::Test {
 protected:
  testing::TempDir temp_{"hubcache-cachedir-test"};
  const fs::path root_ = temp_.path() / "cache";
};

TEST_F(CacheDirTest, CreatesMissingDirectoriesPrivately) {
  const fs::path dir = root_ / "a" / "b";
  auto opened = CacheDir::Open(dir);
  ASSERT_TRUE(opened) << opened.error().message();
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_EQ((*opened)->path(), fs::absolute(dir));
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & S_IRWXO, 0u) << "cache dir must not be readable by others";
  EXPECT_TRUE(fs::exists(dir / CacheDir::kLockFileName));
}

TEST_F(CacheDirTest, SecondOpenIsRefusedWhileTheFirstHoldsIt) {
  auto first = CacheDir::Open(root_);
  ASSERT_TRUE(first);
  auto second = CacheDir::Open(root_);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), core::Errc::kLocked);
  EXPECT_EQ(CacheDir::HolderPid(root_), ::getpid());
}

TEST_F(CacheDirTest, ReleasedOnDestruction) {
  { auto first = CacheDir::Open(root_); ASSERT_TRUE(first); }
  auto again = CacheDir::Open(root_);
  EXPECT_TRUE(again) << again.error().message();
}

TEST_F(CacheDirTest, LockHeldByAnotherProcess) {
  auto mine = CacheDir::Open(root_);
  ASSERT_TRUE(mine);
  mine->reset();
  // A forked child takes the lock; the parent must be refused, and get it
  // back once the child exits (the kernel drops the lock on exit).
  int ready[2];
  int release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    auto held = CacheDir::Open(root_);
    char c = held ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    (void)!::read(release[0], &c, 1);
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  auto refused = CacheDir::Open(root_);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), core::Errc::kLocked);
  EXPECT_EQ(CacheDir::HolderPid(root_), child);
  (void)!::write(release[1], "x", 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(CacheDir::Open(root_));
  for (int fd : {ready[0], ready[1], release[0], release[1]}) ::close(fd);
}

TEST_F(CacheDirTest, AFileInTheWayIsAnError) {
  fs::create_directories(root_);
  std::ofstream(root_ / "file") << "x";
  auto opened = CacheDir::Open(root_ / "file");
  ASSERT_FALSE(opened);
  EXPECT_TRUE(opened.error().value() == EEXIST || opened.error().value() == ENOTDIR)
      << opened.error().message();
}

}  // namespace
}  // namespace hubcache::store
