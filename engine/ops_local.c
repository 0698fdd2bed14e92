/*
 * ops_local.c - the effect seam over the local filesystem (see ops.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/vec.h"
#include "../base/xalloc.h"
#include "ops.h"

static enum ops_ftype ftype(mode_t m)
{
	if (S_ISREG(m))
		return OPS_FT_REG;
	if (S_ISDIR(m))
		return OPS_FT_DIR;
	if (S_ISLNK(m))
		return OPS_FT_LINK;
	return OPS_FT_OTHER;
}

static int local_stat(struct punix_ops *o, const char *path, int follow, struct ops_stat *out)
{
	(void)o;
	struct stat st;
	if ((follow ? stat(path, &st) : lstat(path, &st)) < 0)
		return -errno;
	out->type = ftype(st.st_mode);
	out->size = (uint64_t)st.st_size;
	out->dev = (uint64_t)st.st_dev;
	out->ino = (uint64_t)st.st_ino;
	out->mode = (uint32_t)(st.st_mode & 07777);
	return 0;
}

static int local_read_file(struct punix_ops *o, const char *path, size_t max, char **bufp, size_t *lenp)
{
	(void)o;
	/* O_NONBLOCK: opening a FIFO must not hang; it is rejected below. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	size_t cap = (size_t)st.st_size + 1, len = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			/* The file grew while we read it; keep the limit. */
			if (cap > max + 1) {
				free(buf);
				close(fd);
				return -EFBIG;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			free(buf);
			close(fd);
			return e;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int local_list_dir(struct punix_ops *o, const char *path, char ***namesp, size_t *np)
{
	(void)o;
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	VEC(char *) names = {0};
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		VEC_PUSH(&names, xstrdup(e->d_name));
	}
	int err = errno;
	closedir(d);
	if (err) {
		ops_free_names(names.v, names.n);
		return -err;
	}
	if (names.n > 1)
		qsort(names.v, names.n, sizeof(names.v[0]), name_cmp);
	*namesp = names.v;
	*np = names.n;
	return 0;
}

void ops_free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static struct punix_ops local_ops = {
	.name = "local",
	.ctx = NULL,
	.stat = local_stat,
	.read_file = local_read_file,
	.list_dir = local_list_dir,
};

struct punix_ops *ops_local(void)
{
	return &local_ops;
}
