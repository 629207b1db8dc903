/* eio_shim: an LD_PRELOAD library that makes a real hubcache process see a
 * failing disk.
 *
 * Bad sectors: EIO_SHIM_FILE names a control file of "<st_dev> <st_ino>"
 * lines. A descriptor opened on a file listed there when it is opened (the
 * control file is read at every open) fails every pread, read and sendfile
 * with EIO until it is closed. Other descriptors, and files opened after
 * their line is removed, read normally.
 *
 * A filesystem remounted read-only after errors (ext4's errors=remount-ro,
 * which a tmpfs cannot be made to do while files are open for writing):
 * while the file named by EROFS_SHIM_SWITCH exists, everything under the
 * directory EROFS_SHIM_DIR fails to be written with EROFS: opening for
 * writing, creating, renaming, unlinking, making directories, and writing,
 * truncating or syncing descriptors opened there (LMDB's too). With
 * EROFS_SHIM_OPEN_DELAY_MS, a refused open for writing fails after that long.
 *
 * Without the variables the shim does nothing.
 *
 * Only for tests (tests/e2e/disk_faults_test.cc); built without sanitizers.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FDS 65536

static atomic_uchar bad_fd[MAX_FDS];
static atomic_uchar dir_fd[MAX_FDS]; /* opened under EROFS_SHIM_DIR */

typedef int (*openat_fn)(int, const char*, int, ...);
typedef ssize_t (*pread_fn)(int, void*, size_t, off_t);
typedef ssize_t (*read_fn)(int, void*, size_t);
typedef ssize_t (*sendfile_fn)(int, int, off_t*, size_t);
typedef int (*close_fn)(int);

static void* next(const char* name) { return dlsym(RTLD_NEXT, name); }

/* Whether the file behind `fd` is listed in the control file. */
static int listed(int fd) {
  const char* control = getenv("EIO_SHIM_FILE");
  if (control == NULL || fd < 0 || fd >= MAX_FDS) return 0;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  static openat_fn real_openat;
  static read_fn real_read;
  static close_fn real_close;
  if (real_openat == NULL) real_openat = (openat_fn)next("openat");
  if (real_read == NULL) real_read = (read_fn)next("read");
  if (real_close == NULL) real_close = (close_fn)next("close");
  const int cfd = real_openat(AT_FDCWD, control, O_RDONLY | O_CLOEXEC);
  if (cfd < 0) return 0;
  char text[4096];
  ssize_t n = real_read(cfd, text, sizeof text - 1);
  real_close(cfd);
  if (n <= 0) return 0;
  text[n] = '\0';
  int found = 0;
  char* save = NULL;
  for (char* line = strtok_r(text, "\n", &save); line != NULL && !found;
       line = strtok_r(NULL, "\n", &save)) {
    unsigned long long dev = 0, ino = 0;
    if (sscanf(line, "%llu %llu", &dev, &ino) == 2 && dev == (unsigned long long)st.st_dev &&
        ino == (unsigned long long)st.st_ino) {
      found = 1;
    }
  }
  return found;
}

static int under_dir(const char* path) {
  const char* dir = getenv("EROFS_SHIM_DIR");
  if (dir == NULL || path == NULL) return 0;
  const size_t n = strlen(dir);
  return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static int read_only(void) {
  const char* flag = getenv("EROFS_SHIM_SWITCH");
  return flag != NULL && access(flag, F_OK) == 0;
}

/* Whether a path-changing call on `path` must fail with EROFS. */
static int refuse_path(const char* path) {
  if (under_dir(path) && read_only()) {
    errno = EROFS;
    return 1;
  }
  return 0;
}

/* A refused open for writing, after EROFS_SHIM_OPEN_DELAY_MS if set (a disk
 * that takes its time to fail: what joins a download meanwhile). */
static int slow_refusal(void) {
  const char* ms = getenv("EROFS_SHIM_OPEN_DELAY_MS");
  if (ms != NULL && atoi(ms) > 0) {
    const int saved = errno;
    usleep((useconds_t)atoi(ms) * 1000);
    errno = saved;
  }
  return -1;
}

/* Whether a write to `fd` must fail with EROFS. */
static int refuse_fd(int fd) {
  if (fd >= 0 && fd < MAX_FDS && atomic_load(&dir_fd[fd]) && read_only()) {
    errno = EROFS;
    return 1;
  }
  return 0;
}

static int opened(int fd, const char* path) {
  if (fd >= 0 && fd < MAX_FDS) {
    atomic_store(&bad_fd[fd], (unsigned char)listed(fd));
    atomic_store(&dir_fd[fd], (unsigned char)under_dir(path));
  }
  return fd;
}

static int writes(int flags) {
  return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
}

static int is_bad(int fd) { return fd >= 0 && fd < MAX_FDS && atomic_load(&bad_fd[fd]); }

static mode_t mode_of(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_of(flags, ap);
  va_end(ap);
  if (writes(flags) && refuse_path(path)) return slow_refusal();
  return opened(((openat_fn)next("openat"))(AT_FDCWD, path, flags, mode), path);
}
int open64(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_of(flags, ap);
  va_end(ap);
  if (writes(flags) && refuse_path(path)) return slow_refusal();
  return opened(((openat_fn)next("openat"))(AT_FDCWD, path, flags, mode), path);
}
int openat(int dir, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_of(flags, ap);
  va_end(ap);
  if (writes(flags) && refuse_path(path)) return slow_refusal();
  return opened(((openat_fn)next("openat"))(dir, path, flags, mode), path);
}
int openat64(int dir, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_of(flags, ap);
  va_end(ap);
  if (writes(flags) && refuse_path(path)) return slow_refusal();
  return opened(((openat_fn)next("openat"))(dir, path, flags, mode), path);
}

int close(int fd) {
  if (fd >= 0 && fd < MAX_FDS) {
    atomic_store(&bad_fd[fd], 0);
    atomic_store(&dir_fd[fd], 0);
  }
  return ((close_fn)next("close"))(fd);
}

ssize_t pread(int fd, void* buf, size_t len, off_t offset) {
  if (is_bad(fd)) {
    errno = EIO;
    return -1;
  }
  return ((pread_fn)next("pread"))(fd, buf, len, offset);
}
ssize_t pread64(int fd, void* buf, size_t len, off_t offset) {
  if (is_bad(fd)) {
    errno = EIO;
    return -1;
  }
  return ((pread_fn)next("pread64"))(fd, buf, len, offset);
}
ssize_t read(int fd, void* buf, size_t len) {
  if (is_bad(fd)) {
    errno = EIO;
    return -1;
  }
  return ((read_fn)next("read"))(fd, buf, len);
}
ssize_t sendfile(int out, int in, off_t* offset, size_t len) {
  if (is_bad(in)) {
    errno = EIO;
    return -1;
  }
  return ((sendfile_fn)next("sendfile"))(out, in, offset, len);
}
ssize_t sendfile64(int out, int in, off_t* offset, size_t len) {
  if (is_bad(in)) {
    errno = EIO;
    return -1;
  }
  return ((sendfile_fn)next("sendfile64"))(out, in, offset, len);
}

/* The writes a read-only filesystem refuses. */
typedef ssize_t (*pwrite_fn)(int, const void*, size_t, off_t);
typedef ssize_t (*write_fn)(int, const void*, size_t);
typedef ssize_t (*writev_fn)(int, const struct iovec*, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec*, int, off_t);
typedef int (*fd_fn)(int);
typedef int (*ftruncate_fn)(int, off_t);
typedef int (*fallocate_fn)(int, int, off_t, off_t);
typedef int (*path_fn)(const char*);
typedef int (*mkdir_fn)(const char*, mode_t);
typedef int (*mkdirat_fn)(int, const char*, mode_t);
typedef int (*path2_fn)(const char*, const char*);
typedef int (*renameat_fn)(int, const char*, int, const char*);
typedef int (*renameat2_fn)(int, const char*, int, const char*, unsigned);
typedef int (*unlinkat_fn)(int, const char*, int);

ssize_t pwrite(int fd, const void* buf, size_t len, off_t offset) {
  if (refuse_fd(fd)) return -1;
  return ((pwrite_fn)next("pwrite"))(fd, buf, len, offset);
}
ssize_t pwrite64(int fd, const void* buf, size_t len, off_t offset) {
  if (refuse_fd(fd)) return -1;
  return ((pwrite_fn)next("pwrite64"))(fd, buf, len, offset);
}
ssize_t write(int fd, const void* buf, size_t len) {
  if (refuse_fd(fd)) return -1;
  return ((write_fn)next("write"))(fd, buf, len);
}
ssize_t writev(int fd, const struct iovec* iov, int count) {
  if (refuse_fd(fd)) return -1;
  return ((writev_fn)next("writev"))(fd, iov, count);
}
ssize_t pwritev(int fd, const struct iovec* iov, int count, off_t offset) {
  if (refuse_fd(fd)) return -1;
  return ((pwritev_fn)next("pwritev"))(fd, iov, count, offset);
}
ssize_t pwritev64(int fd, const struct iovec* iov, int count, off_t offset) {
  if (refuse_fd(fd)) return -1;
  return ((pwritev_fn)next("pwritev64"))(fd, iov, count, offset);
}
int fsync(int fd) {
  if (refuse_fd(fd)) return -1;
  return ((fd_fn)next("fsync"))(fd);
}
int fdatasync(int fd) {
  if (refuse_fd(fd)) return -1;
  return ((fd_fn)next("fdatasync"))(fd);
}
int ftruncate(int fd, off_t length) {
  if (refuse_fd(fd)) return -1;
  return ((ftruncate_fn)next("ftruncate"))(fd, length);
}
int ftruncate64(int fd, off_t length) {
  if (refuse_fd(fd)) return -1;
  return ((ftruncate_fn)next("ftruncate64"))(fd, length);
}
int fallocate(int fd, int mode, off_t offset, off_t length) {
  if (refuse_fd(fd)) return -1;
  return ((fallocate_fn)next("fallocate"))(fd, mode, offset, length);
}
int fallocate64(int fd, int mode, off_t offset, off_t length) {
  if (refuse_fd(fd)) return -1;
  return ((fallocate_fn)next("fallocate64"))(fd, mode, offset, length);
}
int mkdir(const char* path, mode_t mode) {
  if (refuse_path(path)) return -1;
  return ((mkdir_fn)next("mkdir"))(path, mode);
}
int mkdirat(int dir, const char* path, mode_t mode) {
  if (refuse_path(path)) return -1;
  return ((mkdirat_fn)next("mkdirat"))(dir, path, mode);
}
int rmdir(const char* path) {
  if (refuse_path(path)) return -1;
  return ((path_fn)next("rmdir"))(path);
}
int unlink(const char* path) {
  if (refuse_path(path)) return -1;
  return ((path_fn)next("unlink"))(path);
}
int unlinkat(int dir, const char* path, int flags) {
  if (refuse_path(path)) return -1;
  return ((unlinkat_fn)next("unlinkat"))(dir, path, flags);
}
int remove(const char* path) {
  if (refuse_path(path)) return -1;
  return ((path_fn)next("remove"))(path);
}
int rename(const char* from, const char* to) {
  if (refuse_path(from) || refuse_path(to)) return -1;
  return ((path2_fn)next("rename"))(from, to);
}
int renameat(int from_dir, const char* from, int to_dir, const char* to) {
  if (refuse_path(from) || refuse_path(to)) return -1;
  return ((renameat_fn)next("renameat"))(from_dir, from, to_dir, to);
}
int renameat2(int from_dir, const char* from, int to_dir, const char* to, unsigned flags) {
  if (refuse_path(from) || refuse_path(to)) return -1;
  return ((renameat2_fn)next("renameat2"))(from_dir, from, to_dir, to, flags);
}
int link(const char* from, const char* to) {
  if (refuse_path(to)) return -1;
  return ((path2_fn)next("link"))(from, to);
}
