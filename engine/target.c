/*
 * target.c - the rebased and the fault-injecting ops tables (target.h).
 */
#include "target.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/sbuf.h"
#include "../base/xalloc.h"

struct rebased {
	struct punix_ops ops; /* first: the table is the context */
	struct punix_ops *base;
	char *root;
};

static char *rb(struct punix_ops *o, const char *path)
{
	struct rebased *r = (struct rebased *)o;
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s%s%s", r->root, path[0] == '/' ? "" : "/", path);
	return sbuf_detach(&sb, NULL);
}

#define BASE(o) (((struct rebased *)(o))->base)

static int rb_stat(struct punix_ops *o, const char *p, int follow, struct ops_stat *st)
{
	char *q = rb(o, p);
	int r = BASE(o)->stat(BASE(o), q, follow, st);
	free(q);
	return r;
}

static int rb_open(struct punix_ops *o, const char *p, int flags, uint32_t mode, int *h)
{
	char *q = rb(o, p);
	int r = BASE(o)->open(BASE(o), q, flags, mode, h);
	free(q);
	return r;
}

static ssize_t rb_read(struct punix_ops *o, int h, void *buf, size_t n)
{
	return BASE(o)->read(BASE(o), h, buf, n);
}

static ssize_t rb_write(struct punix_ops *o, int h, const void *buf, size_t n)
{
	return BASE(o)->write(BASE(o), h, buf, n);
}

static int rb_fsync(struct punix_ops *o, int h)
{
	return BASE(o)->fsync(BASE(o), h);
}

static int rb_close(struct punix_ops *o, int h)
{
	return BASE(o)->close(BASE(o), h);
}

static int rb_read_file(struct punix_ops *o, const char *p, size_t max, char **buf, size_t *len)
{
	char *q = rb(o, p);
	int r = BASE(o)->read_file(BASE(o), q, max, buf, len);
	free(q);
	return r;
}

static int rb_list_dir(struct punix_ops *o, const char *p, char ***names, size_t *n)
{
	char *q = rb(o, p);
	int r = BASE(o)->list_dir(BASE(o), q, names, n);
	free(q);
	return r;
}

#define RB_PATH1(fn, call)                                        \
	static int rb_##fn(struct punix_ops *o, const char *p)    \
	{                                                         \
		char *q = rb(o, p);                               \
		int r = BASE(o)->call(BASE(o), q);                \
		free(q);                                          \
		return r;                                         \
	}

RB_PATH1(unlink, unlink)
RB_PATH1(rmdir, rmdir)
RB_PATH1(fsync_path, fsync_path)

static int rb_mkdir(struct punix_ops *o, const char *p, uint32_t mode)
{
	char *q = rb(o, p);
	int r = BASE(o)->mkdir(BASE(o), q, mode);
	free(q);
	return r;
}

static int rb_chmod(struct punix_ops *o, const char *p, uint32_t mode)
{
	char *q = rb(o, p);
	int r = BASE(o)->chmod(BASE(o), q, mode);
	free(q);
	return r;
}

static int rb_rename(struct punix_ops *o, const char *from, const char *to)
{
	char *a = rb(o, from), *b = rb(o, to);
	int r = BASE(o)->rename(BASE(o), a, b);
	free(a);
	free(b);
	return r;
}

/* The link's own text is not rebased: targets are relative by design. */
static int rb_symlink(struct punix_ops *o, const char *target, const char *p)
{
	char *q = rb(o, p);
	int r = BASE(o)->symlink(BASE(o), target, q);
	free(q);
	return r;
}

static int rb_readlink(struct punix_ops *o, const char *p, char **target)
{
	char *q = rb(o, p);
	int r = BASE(o)->readlink(BASE(o), q, target);
	free(q);
	return r;
}

static int rb_fchmod(struct punix_ops *o, int h, uint32_t mode)
{
	return BASE(o)->fchmod(BASE(o), h, mode);
}

static int rb_chown_user(struct punix_ops *o, const char *p, const char *user)
{
	(void)o;
	(void)p;
	(void)user;
	return -ENOTSUP; /* the users of a rebased tree are not this machine's */
}

static int rb_realpath(struct punix_ops *o, const char *p, char **out)
{
	(void)o;
	(void)p;
	(void)out;
	return -ENOTSUP; /* a rebased path has no meaning outside its root */
}

static int rb_lock(struct punix_ops *o, const char *p, int excl, int wait, int *h)
{
	char *q = rb(o, p);
	int r = BASE(o)->lock(BASE(o), q, excl, wait, h);
	free(q);
	return r;
}

static int rb_unlock(struct punix_ops *o, int h)
{
	return BASE(o)->unlock(BASE(o), h);
}

/* All the paths rebased, in one request of the table below. */
static int rb_exists(struct punix_ops *o, const char *const *paths, size_t n, unsigned char *found)
{
	char **q = xcalloc(n + 1, sizeof(*q));
	for (size_t i = 0; i < n; i++)
		q[i] = rb(o, paths[i]);
	int r = BASE(o)->exists(BASE(o), (const char *const *)q, n, found);
	for (size_t i = 0; i < n; i++)
		free(q[i]);
	free(q);
	return r;
}

static int rb_fsync_paths(struct punix_ops *o, const char *const *paths, size_t n, size_t *failed)
{
	char **q = xcalloc(n + 1, sizeof(*q));
	for (size_t i = 0; i < n; i++)
		q[i] = rb(o, paths[i]);
	int r = BASE(o)->fsync_paths(BASE(o), (const char *const *)q, n, failed);
	for (size_t i = 0; i < n; i++)
		free(q[i]);
	free(q);
	return r;
}

static int rb_arch(struct punix_ops *o, char *out, size_t n)
{
	return BASE(o)->arch(BASE(o), out, n);
}

static int64_t rb_now(struct punix_ops *o)
{
	return BASE(o)->now(BASE(o));
}

static int rb_run(struct punix_ops *o, const struct ops_cmd *cmd, int *status)
{
	(void)o;
	(void)cmd;
	(void)status;
	return -ENOTSUP; /* nothing runs "inside" a rebased tree */
}

/* A stream is a command on the host the tree is on (host mode's channel), given the root itself. */
static int rb_stream_open(struct punix_ops *o, const char *line, struct ops_stream **s)
{
	return BASE(o)->stream_open ? BASE(o)->stream_open(BASE(o), line, s) : -ENOTSUP;
}

static ssize_t rb_stream_read(struct punix_ops *o, struct ops_stream *s, void *buf, size_t n)
{
	return BASE(o)->stream_read(BASE(o), s, buf, n);
}

static ssize_t rb_stream_write(struct punix_ops *o, struct ops_stream *s, const void *buf, size_t n)
{
	return BASE(o)->stream_write(BASE(o), s, buf, n);
}

static int rb_stream_close(struct punix_ops *o, struct ops_stream *s, int *status)
{
	return BASE(o)->stream_close(BASE(o), s, status);
}

struct punix_ops *ops_rebased(struct punix_ops *base, const char *root)
{
	struct rebased *r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->root = xstrdup(root);
	size_t n = strlen(r->root);
	while (n > 1 && r->root[n - 1] == '/')
		r->root[--n] = '\0';
	r->ops = (struct punix_ops){
		.name = "rebased",
		.ctx = r,
		.stat = rb_stat,
		.open = rb_open,
		.read = rb_read,
		.write = rb_write,
		.fsync = rb_fsync,
		.close = rb_close,
		.read_file = rb_read_file,
		.list_dir = rb_list_dir,
		.mkdir = rb_mkdir,
		.rename = rb_rename,
		.unlink = rb_unlink,
		.rmdir = rb_rmdir,
		.symlink = rb_symlink,
		.readlink = rb_readlink,
		.chmod = rb_chmod,
		.fchmod = rb_fchmod,
		.chown_user = rb_chown_user,
		.realpath = rb_realpath,
		.fsync_path = rb_fsync_path,
		.lock = rb_lock,
		.unlock = rb_unlock,
		.run = rb_run,
		.now = rb_now,
		.arch = rb_arch,
		.exists = rb_exists,
		.fsync_paths = rb_fsync_paths,
		.stream_open = rb_stream_open,
		.stream_read = rb_stream_read,
		.stream_write = rb_stream_write,
		.stream_close = rb_stream_close,
	};
	return &r->ops;
}

struct punix_ops *ops_rebased_base(struct punix_ops *o)
{
	return o && strcmp(o->name, "rebased") == 0 ? ((struct rebased *)o)->base : NULL;
}

void ops_rebased_free(struct punix_ops *o)
{
	if (!o || strcmp(o->name, "rebased") != 0)
		return;
	struct rebased *r = (struct rebased *)o;
	free(r->root);
	free(r);
}
