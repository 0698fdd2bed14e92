/*
 * ops_remove.c - rm -rf of many entries of one directory by descriptors
 * (ops.h: remove_children), for the local and the confined tables.
 *
 * The directory is opened once; each entry is removed relative to it, and
 * each directory below relative to its parent's descriptor (openat with
 * O_NOFOLLOW, getdents64, unlinkat): no path is resolved twice, no symlink
 * is ever followed, and the types getdents gives save a stat per entry. A
 * read-only directory below an entry (store outputs are) is made writable
 * only when an unlink in it is refused, which root never is; the directory
 * the entries are in never is.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ops.h"
#include "ops_local_internal.h"

/* Directories nested deeper than this are refused (each level holds a descriptor). */
#define REMOVE_MAX_DEPTH 512

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static int remove_entry(int dfd, const char *name, unsigned char type, int depth);

/* Makes the directory open on fd writable once, when an unlink in it was refused (read-only, not root). */
static bool open_up(int fd, bool *done, int r)
{
	if ((r != -EACCES && r != -EPERM) || *done)
		return false;
	*done = true;
	return fchmod(fd, 0700) == 0;
}

/* Empties the directory open on fd and removes it (name in dfd). */
static int remove_dir(int dfd, const char *name, int fd, int depth)
{
	char buf[16384] __attribute__((aligned(8)));
	bool opened_up = false;
	int r = 0;
	/* entries removed while listing may hide others: list again while rmdir says it is not empty */
	for (int pass = 0; r == 0; pass++) {
		for (;;) {
			long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
			if (n <= 0) {
				r = n < 0 ? -errno : 0;
				break;
			}
			for (long off = 0; off < n && r == 0;) {
				struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
				off += d->d_reclen;
				if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
					continue;
				r = remove_entry(fd, d->d_name, d->d_type, depth + 1);
				if (open_up(fd, &opened_up, r))
					r = remove_entry(fd, d->d_name, d->d_type, depth + 1);
			}
			if (r < 0)
				break;
		}
		if (r < 0)
			break;
		if (unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			break;
		r = -errno;
		if (r == -ENOTEMPTY && pass < 3 && lseek(fd, 0, SEEK_SET) == 0)
			r = 0;
	}
	return r;
}

/* Removes name in dfd, whatever it is; type is getdents' (DT_UNKNOWN: not known). */
static int remove_entry(int dfd, const char *name, unsigned char type, int depth)
{
	if (type != DT_DIR && type != DT_UNKNOWN)
		return unlinkat(dfd, name, 0) == 0 || errno == ENOENT ? 0 : -errno;
	if (depth > REMOVE_MAX_DEPTH)
		return -ELOOP;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == EACCES) {
		/* an unreadable directory: readable first (never through a symlink) */
		if (fchmodat(dfd, name, 0700, AT_SYMLINK_NOFOLLOW) == 0)
			fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	}
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ENOTDIR || errno == ELOOP) /* a file or a symlink after all */
			return unlinkat(dfd, name, 0) == 0 || errno == ENOENT ? 0 : -errno;
		return -errno;
	}
	int r = remove_dir(dfd, name, fd, depth);
	close(fd);
	return r;
}

int local_remove_children_fd(int dfd, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!names[i][0] || strchr(names[i], '/') || !strcmp(names[i], ".") || !strcmp(names[i], ".."))
			return -EINVAL;
	/* the directory itself is never opened up: only what is below the entries */
	for (size_t i = 0; i < n; i++) {
		int r = remove_entry(dfd, names[i], DT_UNKNOWN, 0);
		if (r < 0)
			return r;
	}
	return 0;
}

int local_remove_children(struct punix_ops *o, const char *dir, const char *const *names, size_t n)
{
	(void)o;
	if (!n)
		return 0;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	int r = local_remove_children_fd(fd, names, n);
	close(fd);
	return r;
}
