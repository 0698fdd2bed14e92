/*
 * ops_beneath.c - the effect seam over one directory tree of this machine,
 * with nothing reachable outside it (ops.h: ops_beneath).
 *
 * Every path the table is given is a target path ("/etc/app.conf") and is
 * resolved beneath the root's directory descriptor, never as a string
 * glued to the root: the directory part with openat2(RESOLVE_BENEATH), so
 * neither "..", an absolute symlink nor a relative one climbing out can
 * leave the root, and the last component with the *at(2) call itself and
 * without following a symlink for anything that changes the tree (create,
 * rename, unlink, chmod, chown, lock, sync). Reads (stat with follow,
 * read_file, list_dir, open for reading) follow symlinks, still beneath.
 *
 * The root is opened once, when the table is made: a root that is swapped
 * afterwards does not move the table. Where the kernel lacks openat2 the
 * directory part is walked one component at a time with O_NOFOLLOW, which
 * refuses every symlink on the way (stricter, never looser).
 *
 * Rooted at "/", the table is the local machine with the same
 * no-follow-on-change rule for last components, and runs commands.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ops.h"
#include "ops_local_internal.h"
#include "sbuf.h"
#include "xalloc.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

struct beneath {
	struct punix_ops ops; /* first: the table is the context */
	int rootfd;           /* O_PATH, O_DIRECTORY */
	char *root;           /* canonical, for messages */
	bool slash;           /* rooted at "/": the machine itself */
};

#define B(o) ((struct beneath *)(o))

/*
 * Splits an absolute target path into its directory part and last
 * component, relative to the root. "/" itself has no last component.
 * Refuses "..", and anything not absolute: -EXDEV says "outside the root".
 */
static int split(const char *path, char **dir, const char **last)
{
	size_t len = strlen(path);
	if (path[0] != '/' || (len > 1 && path[len - 1] == '/'))
		return -EINVAL;
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EXDEV;
		p += n;
	}
	const char *d = path;
	while (*d == '/')
		d++;
	if (!*d) { /* "/" */
		*dir = xstrdup(".");
		*last = NULL;
		return 0;
	}
	const char *slash = strrchr(path, '/');
	*last = slash + 1;
	*dir = d < slash ? xstrndup(d, (size_t)(slash - d)) : xstrdup(".");
	return 0;
}

/* Opens rel beneath the root, following symlinks only while they stay in it. */
static int open_beneath(struct beneath *b, const char *rel, int flags, mode_t mode)
{
	if (!rel[0])
		rel = ".";
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_NO_MAGICLINKS | (b->slash ? 0 : RESOLVE_BENEATH),
	};
	long fd = syscall(SYS_openat2, b->rootfd, rel, &how, sizeof(how));
	if (fd >= 0)
		return (int)fd;
	if (errno != ENOSYS)
		return -errno;
	/* No openat2: walk the components without following any symlink. */
	int cur = dup(b->rootfd);
	if (cur < 0)
		return -errno;
	char *copy = xstrdup(rel), *save = NULL;
	char *parts[256];
	size_t np = 0;
	for (char *c = strtok_r(copy, "/", &save); c && np < 256; c = strtok_r(NULL, "/", &save))
		if (strcmp(c, ".") != 0)
			parts[np++] = c;
	int r = 0;
	for (size_t i = 0; i < np && r == 0; i++) {
		bool lastc = i + 1 == np;
		int f = lastc ? (flags | O_NOFOLLOW | O_CLOEXEC) : (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int nfd = openat(cur, parts[i], f, mode);
		if (nfd < 0)
			r = errno == ELOOP ? -EXDEV : -errno;
		close(cur);
		cur = nfd;
	}
	if (r == 0 && np == 0) {
		int nfd = openat(cur, ".", flags | O_CLOEXEC, mode);
		r = nfd < 0 ? -errno : 0;
		close(cur);
		cur = nfd;
	}
	free(copy);
	return r < 0 ? r : cur;
}

/* The directory holding path's last component, opened beneath the root. */
static int parent(struct beneath *b, const char *path, int *dfd, char **dir, const char **last)
{
	int r = split(path, dir, last);
	if (r < 0)
		return r;
	if (!*last) {
		free(*dir);
		*dir = NULL;
		return -EINVAL; /* the root itself is never created, renamed or removed */
	}
	r = open_beneath(b, *dir, O_PATH | O_DIRECTORY, 0);
	if (r < 0) {
		free(*dir);
		*dir = NULL;
		return r;
	}
	*dfd = r;
	return 0;
}

#define WITH_PARENT(o, path, body)                                        \
	do {                                                              \
		int dfd_;                                                 \
		char *dir_;                                               \
		const char *last_;                                        \
		int r_ = parent(B(o), path, &dfd_, &dir_, &last_);        \
		if (r_ < 0)                                               \
			return r_;                                        \
		r_ = (body);                                              \
		int e_ = errno;                                           \
		close(dfd_);                                              \
		free(dir_);                                               \
		errno = e_;                                               \
		return r_ < 0 ? -errno : r_;                              \
	} while (0)

static char *rel_of(const char *path)
{
	while (*path == '/')
		path++;
	return xstrdup(*path ? path : ".");
}

/* Opens path (following symlinks beneath the root); the root for "/". */
static int open_path(struct beneath *b, const char *path, int flags)
{
	char *dir;
	const char *last;
	int r = split(path, &dir, &last);
	if (r < 0)
		return r;
	free(dir);
	char *rel = rel_of(path);
	r = open_beneath(b, rel, flags, 0);
	free(rel);
	return r;
}

static int bn_stat(struct punix_ops *o, const char *path, int follow, struct ops_stat *out)
{
	struct stat st;
	if (follow) {
		int fd = open_path(B(o), path, O_PATH);
		if (fd < 0)
			return fd;
		int r = fstat(fd, &st) < 0 ? -errno : 0;
		close(fd);
		if (r < 0)
			return r;
	} else {
		char *dir;
		const char *last;
		int r = split(path, &dir, &last);
		if (r < 0)
			return r;
		int dfd = open_beneath(B(o), dir, O_PATH | O_DIRECTORY, 0);
		free(dir);
		if (dfd < 0)
			return dfd;
		r = fstatat(dfd, last ? last : "", &st, last ? AT_SYMLINK_NOFOLLOW : AT_EMPTY_PATH) < 0 ? -errno : 0;
		close(dfd);
		if (r < 0)
			return r;
	}
	local_fill_stat(&st, out);
	return 0;
}

static int bn_open(struct punix_ops *o, const char *path, int flags, uint32_t mode, int *h)
{
	int f = local_open_flags(flags) | O_NOCTTY;
	int fd;
	if (flags & (OPS_O_CREAT | OPS_O_WRONLY)) {
		/* anything that writes never follows a symlink at the last component */
		int dfd;
		char *dir;
		const char *last;
		int r = parent(B(o), path, &dfd, &dir, &last);
		if (r < 0)
			return r;
		fd = openat(dfd, last, f | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
		int e = errno;
		close(dfd);
		free(dir);
		if (fd < 0)
			return -e;
	} else {
		fd = open_path(B(o), path, f);
		if (fd < 0)
			return fd;
	}
	*h = fd;
	return 0;
}

static int bn_read_file(struct punix_ops *o, const char *path, size_t max, char **buf, size_t *len)
{
	int fd = open_path(B(o), path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return fd;
	return local_read_fd(fd, max, buf, len); /* closes fd */
}

static int bn_list_dir(struct punix_ops *o, const char *path, char ***names, size_t *n)
{
	int fd = open_path(B(o), path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	return local_list_fd(fd, names, n); /* closes fd */
}

static int bn_mkdir(struct punix_ops *o, const char *path, uint32_t mode)
{
	WITH_PARENT(o, path, mkdirat(dfd_, last_, (mode_t)mode));
}

static int bn_rename(struct punix_ops *o, const char *from, const char *to)
{
	int a, b;
	char *da, *db;
	const char *la, *lb;
	int r = parent(B(o), from, &a, &da, &la);
	if (r < 0)
		return r;
	r = parent(B(o), to, &b, &db, &lb);
	if (r < 0) {
		close(a);
		free(da);
		return r;
	}
	r = renameat(a, la, b, lb) < 0 ? -errno : 0;
	close(a);
	close(b);
	free(da);
	free(db);
	return r;
}

static int bn_unlink(struct punix_ops *o, const char *path)
{
	WITH_PARENT(o, path, unlinkat(dfd_, last_, 0));
}

static int bn_rmdir(struct punix_ops *o, const char *path)
{
	WITH_PARENT(o, path, unlinkat(dfd_, last_, AT_REMOVEDIR));
}

static int bn_symlink(struct punix_ops *o, const char *target, const char *path)
{
	WITH_PARENT(o, path, symlinkat(target, dfd_, last_));
}

static int bn_readlink(struct punix_ops *o, const char *path, char **target)
{
	WITH_PARENT(o, path, local_readlinkat(dfd_, last_, target));
}

/* chmod of the last component itself, never of what a symlink there names. */
static int chmod_nofollow(int dfd, const char *last, mode_t mode)
{
	if (syscall(SYS_fchmodat2, dfd, last, mode, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	/* older kernels: through a descriptor of the file itself */
	int fd = openat(dfd, last, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	int r = fstat(fd, &st);
	if (r == 0 && S_ISLNK(st.st_mode)) {
		errno = ELOOP;
		r = -1;
	}
	if (r == 0) {
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		r = chmod(proc, mode);
	}
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

static int bn_chmod(struct punix_ops *o, const char *path, uint32_t mode)
{
	WITH_PARENT(o, path, chmod_nofollow(dfd_, last_, (mode_t)mode));
}

static int bn_fchmod(struct punix_ops *o, int h, uint32_t mode)
{
	(void)o;
	return fchmod(h, (mode_t)mode) < 0 ? -errno : 0;
}

static int chown_nofollow(int dfd, const char *last, const char *user)
{
	uid_t uid;
	gid_t gid;
	int r = local_user_ids(user, &uid, &gid);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return fchownat(dfd, last, uid, gid, AT_SYMLINK_NOFOLLOW);
}

static int bn_chown_user(struct punix_ops *o, const char *path, const char *user)
{
	if (!B(o)->slash)
		return -ENOTSUP; /* the users of a rebased tree are not this machine's */
	WITH_PARENT(o, path, chown_nofollow(dfd_, last_, user));
}

static int bn_realpath(struct punix_ops *o, const char *path, char **out)
{
	if (!B(o)->slash)
		return -ENOTSUP; /* a path beneath a root is already what it names */
	return ops_local()->realpath(ops_local(), path, out);
}

static int bn_fsync_path(struct punix_ops *o, const char *path)
{
	char *dir;
	const char *last;
	int r = split(path, &dir, &last);
	if (r < 0)
		return r;
	int fd;
	if (!last) {
		fd = open_beneath(B(o), dir, O_RDONLY | O_DIRECTORY, 0);
	} else {
		int dfd = open_beneath(B(o), dir, O_PATH | O_DIRECTORY, 0);
		fd = dfd < 0 ? dfd : openat(dfd, last, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (dfd >= 0 && fd < 0)
			fd = -errno;
		if (dfd >= 0)
			close(dfd);
	}
	free(dir);
	if (fd < 0)
		return fd;
	r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int bn_remove_children(struct punix_ops *o, const char *dir, const char *const *names, size_t n)
{
	if (!n)
		return 0;
	/* the directory beneath the root; what is below it by descriptors, never through a symlink */
	int fd = open_path(B(o), dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	int r = local_remove_children_fd(fd, names, n);
	close(fd);
	return r;
}

static int bn_lock(struct punix_ops *o, const char *path, int exclusive, int wait, int *h)
{
	int dfd;
	char *dir;
	const char *last;
	int r = parent(B(o), path, &dfd, &dir, &last);
	if (r < 0)
		return r;
	int fd = openat(dfd, last, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
	r = fd < 0 ? -errno : 0;
	close(dfd);
	free(dir);
	if (r < 0)
		return r;
	return local_flock(fd, exclusive, wait, h);
}

static int bn_arch(struct punix_ops *o, char *out, size_t n)
{
	(void)o;
	return ops_local()->arch(ops_local(), out, n);
}

static int64_t bn_now(struct punix_ops *o)
{
	(void)o;
	return ops_local()->now(ops_local());
}

static int bn_run(struct punix_ops *o, const struct ops_cmd *cmd, int *status)
{
	if (!B(o)->slash)
		return -ENOTSUP; /* nothing runs "inside" a rebased tree */
	return ops_local()->run(ops_local(), cmd, status);
}

static int bn_stream_open(struct punix_ops *o, const char *line, struct ops_stream **s)
{
	if (!B(o)->slash)
		return -ENOTSUP;
	return ops_local()->stream_open(ops_local(), line, s);
}

struct punix_ops *ops_beneath(const char *root, struct sbuf *err)
{
	int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		sbuf_printf(err, "%s: %s", root, strerror(errno));
		return NULL;
	}
	struct beneath *b = xcalloc(1, sizeof(*b));
	const struct punix_ops *l = ops_local();
	b->rootfd = fd;
	b->root = xstrdup(root);
	b->slash = strcmp(root, "/") == 0;
	b->ops = *l;
	b->ops.name = "beneath";
	b->ops.ctx = b;
	b->ops.stat = bn_stat;
	b->ops.open = bn_open;
	b->ops.read_file = bn_read_file;
	b->ops.list_dir = bn_list_dir;
	b->ops.mkdir = bn_mkdir;
	b->ops.rename = bn_rename;
	b->ops.unlink = bn_unlink;
	b->ops.rmdir = bn_rmdir;
	b->ops.symlink = bn_symlink;
	b->ops.readlink = bn_readlink;
	b->ops.chmod = bn_chmod;
	b->ops.fchmod = bn_fchmod;
	b->ops.chown_user = bn_chown_user;
	b->ops.realpath = bn_realpath;
	b->ops.fsync_path = bn_fsync_path;
	b->ops.lock = bn_lock;
	b->ops.run = bn_run;
	b->ops.now = bn_now;
	b->ops.arch = bn_arch;
	b->ops.exists = ops_exists_by_stat;
	b->ops.fsync_paths = ops_fsync_paths_each;
	b->ops.remove_children = bn_remove_children;
	b->ops.stream_open = bn_stream_open;
	return &b->ops;
}

bool ops_is_beneath(const struct punix_ops *o)
{
	return o && !strcmp(o->name, "beneath");
}

const char *ops_beneath_root(const struct punix_ops *o)
{
	return ops_is_beneath(o) ? ((const struct beneath *)o)->root : NULL;
}

void ops_beneath_free(struct punix_ops *o)
{
	if (!ops_is_beneath(o))
		return;
	struct beneath *b = B(o);
	close(b->rootfd);
	free(b->root);
	free(b);
}
