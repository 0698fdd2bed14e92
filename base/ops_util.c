/*
 * ops_util.c - compound effects built only from the ops table (see ops.h),
 * so they work over every transport and every injected fault.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "ops.h"
#include "sbuf.h"
#include "xalloc.h"

const char *ops_strerror(int neg_errno)
{
	if (neg_errno == -EXDEV)
		return "it leads out of the target's root (a symlink or '..' on the way); nothing was written there";
	return strerror(-neg_errno);
}

char *ops_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

static char *join(const char *dir, const char *name)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s", dir, name);
	return sbuf_detach(&sb, NULL);
}

int ops_each_child(struct punix_ops *o, const char *path,
		   int (*fn)(struct punix_ops *o, const char *child, const char *name, void *arg), void *arg)
{
	char **names;
	size_t n;
	int r = o->list_dir(o, path, &names, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		char *child = join(path, names[i]);
		r = fn(o, child, names[i], arg);
		free(child);
	}
	ops_free_names(names, n);
	return r;
}

static int remove_child(struct punix_ops *o, const char *child, const char *name, void *arg)
{
	(void)name;
	(void)arg;
	return ops_remove_tree(o, child);
}

/* Every path of a tree that needs an fsync, children before their directory. */
struct tree_paths {
	char **v;
	size_t n;
};

static int collect_tree(struct punix_ops *o, const char *path, struct tree_paths *t);

static int collect_child(struct punix_ops *o, const char *child, const char *name, void *arg)
{
	(void)name;
	return collect_tree(o, child, arg);
}

static int collect_tree(struct punix_ops *o, const char *path, struct tree_paths *t)
{
	struct ops_stat st;
	int r = o->stat(o, path, 0, &st);
	if (r < 0)
		return r;
	if (st.type == OPS_FT_LINK)
		return 0; /* the link is made durable by fsync of its directory */
	if (st.type == OPS_FT_DIR) {
		r = ops_each_child(o, path, collect_child, t);
		if (r < 0)
			return r;
	}
	t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
	t->v[t->n++] = xstrdup(path);
	return 0;
}


int ops_mkdir_p(struct punix_ops *o, const char *path, uint32_t mode)
{
	struct ops_stat st;
	if (o->stat(o, path, 1, &st) == 0)
		return st.type == OPS_FT_DIR ? 0 : -ENOTDIR;
	char *parent = ops_dirname(path);
	int r = 0;
	if (strcmp(parent, path) != 0 && strcmp(parent, ".") != 0 && strcmp(parent, "/") != 0)
		r = ops_mkdir_p(o, parent, mode);
	free(parent);
	if (r < 0)
		return r;
	r = o->mkdir(o, path, mode);
	if (r == -EEXIST)
		return 0;
	if (r < 0)
		return r;
	/* A new directory exists durably once its parent's entry is synced. */
	char *dir = ops_dirname(path);
	r = o->fsync_path(o, dir);
	free(dir);
	return r;
}

static int write_all(struct punix_ops *o, int h, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = o->write(o, h, p, len);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void ops_tmp_suffix(char out[OPS_TMP_SUFFIX_LEN + 1])
{
	unsigned char b[OPS_TMP_SUFFIX_LEN / 2];
	size_t got = 0;
	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			abort(); /* the kernel's random source cannot fail once booted */
		got += (size_t)n;
	}
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < sizeof(b); i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[OPS_TMP_SUFFIX_LEN] = '\0';
}

char *ops_tmp_name(const char *path)
{
	char *dir = ops_dirname(path);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char rnd[OPS_TMP_SUFFIX_LEN + 1];
	ops_tmp_suffix(rnd);
	struct sbuf tmp = SBUF_INIT;
	sbuf_printf(&tmp, "%s/" OPS_TMP_PREFIX_FMT "%s", strcmp(dir, "/") ? dir : "", base, rnd);
	free(dir);
	return sbuf_detach(&tmp, NULL);
}

static int write_atomic(struct punix_ops *o, const char *path, const void *data, size_t len, uint32_t mode,
			bool sync_dir)
{
	/* An unpredictable name, created exclusively: nobody can plant it first,
	 * or make it a symlink to somewhere else. */
	char *tmp = ops_tmp_name(path);
	char *dir = ops_dirname(path);
	int h, r = o->open(o, tmp, OPS_O_WRONLY | OPS_O_CREAT | OPS_O_EXCL | OPS_O_NOFOLLOW, mode & 0700, &h);
	if (r < 0)
		goto out;
	r = write_all(o, h, data, len);
	/* The mode given at creation is filtered by the umask; set it exactly,
	 * on the open file, never by a path that could have been swapped. */
	if (r == 0)
		r = o->fchmod(o, h, mode);
	if (r == 0)
		r = o->fsync(o, h);
	int rc = o->close(o, h);
	if (r == 0)
		r = rc;
	if (r == 0)
		r = o->rename(o, tmp, path);
	if (r == 0 && sync_dir)
		r = o->fsync_path(o, dir);
	if (r < 0)
		o->unlink(o, tmp);
out:
	free(tmp);
	free(dir);
	return r;
}

int ops_write_atomic(struct punix_ops *o, const char *path, const void *data, size_t len, uint32_t mode)
{
	return write_atomic(o, path, data, len, mode, true);
}

int ops_write_atomic_nodirsync(struct punix_ops *o, const char *path, const void *data, size_t len, uint32_t mode)
{
	return write_atomic(o, path, data, len, mode, false);
}

int ops_remove_tree(struct punix_ops *o, const char *path)
{
	struct ops_stat st;
	int r = o->stat(o, path, 0, &st);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (st.type != OPS_FT_DIR) {
		r = o->unlink(o, path);
		return r == -ENOENT ? 0 : r;
	}
	/* A read-only directory (store outputs are) must be made writable first. */
	if ((st.mode & 0700) != 0700)
		o->chmod(o, path, st.mode | 0700);
	r = ops_each_child(o, path, remove_child, NULL);
	if (r < 0)
		return r;
	r = o->rmdir(o, path);
	return r == -ENOENT ? 0 : r;
}

int ops_remove_children(struct punix_ops *o, const char *dir, const char *const *names, size_t n)
{
	if (o->remove_children)
		return o->remove_children(o, dir, names, n);
	for (size_t i = 0; i < n; i++) {
		if (!names[i][0] || strchr(names[i], '/') || !strcmp(names[i], ".") || !strcmp(names[i], ".."))
			return -EINVAL;
		char *child = join(dir, names[i]);
		int r = ops_remove_tree(o, child);
		free(child);
		if (r < 0)
			return r;
	}
	return 0;
}

int ops_fsync_tree(struct punix_ops *o, const char *path)
{
	/* listed first, then synced in one request (over SSH: one exec, not one per file) */
	struct tree_paths t = {NULL, 0};
	int r = collect_tree(o, path, &t);
	if (r == 0)
		r = o->fsync_paths(o, (const char *const *)t.v, t.n, NULL);
	for (size_t i = 0; i < t.n; i++)
		free(t.v[i]);
	free(t.v);
	return r;
}

static int copy_file(struct punix_ops *src, const char *from, struct punix_ops *dst, const char *to, uint32_t mode)
{
	int in, out, r = src->open(src, from, OPS_O_RDONLY | OPS_O_NOFOLLOW, 0, &in);
	if (r < 0)
		return r;
	r = dst->open(dst, to, OPS_O_WRONLY | OPS_O_CREAT | OPS_O_EXCL | OPS_O_NOFOLLOW, mode & 0700, &out);
	if (r < 0) {
		src->close(src, in);
		return r;
	}
	char buf[65536];
	for (;;) {
		ssize_t n = src->read(src, in, buf, sizeof(buf));
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n == 0)
			break;
		r = write_all(dst, out, buf, (size_t)n);
		if (r < 0)
			break;
	}
	src->close(src, in);
	if (r == 0)
		r = dst->fchmod(dst, out, mode); /* exactly, whatever the umask */
	int rc = dst->close(dst, out);
	return r < 0 ? r : rc;
}

int ops_copy_file(struct punix_ops *o, const char *from, const char *to, uint32_t mode)
{
	return copy_file(o, from, o, to, mode);
}

struct copy_arg {
	struct punix_ops *dst;
	const char *to;
};

static int copy_between_child(struct punix_ops *src, const char *child, const char *name, void *arg)
{
	struct copy_arg *a = arg;
	char *to = join(a->to, name);
	int r = ops_copy_tree_to(src, child, a->dst, to);
	free(to);
	return r;
}

int ops_copy_tree_to(struct punix_ops *src, const char *from, struct punix_ops *dst, const char *to)
{
	struct ops_stat st;
	int r = src->stat(src, from, 0, &st);
	if (r < 0)
		return r;
	switch (st.type) {
	case OPS_FT_LINK: {
		char *target;
		r = src->readlink(src, from, &target);
		if (r < 0)
			return r;
		r = dst->symlink(dst, target, to);
		free(target);
		return r;
	}
	case OPS_FT_REG:
		return copy_file(src, from, dst, to, (st.mode & 0111) ? 0755 : 0644);
	case OPS_FT_DIR: {
		r = dst->mkdir(dst, to, 0755);
		if (r < 0)
			return r;
		struct copy_arg a = {dst, to};
		return ops_each_child(src, from, copy_between_child, &a);
	}
	case OPS_FT_OTHER:
		break;
	}
	return -EINVAL; /* sockets, devices, FIFOs have no place in a copied tree */
}

int ops_copy_tree(struct punix_ops *o, const char *from, const char *to)
{
	return ops_copy_tree_to(o, from, o, to);
}
