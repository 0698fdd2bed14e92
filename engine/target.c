/*
 * target.c - the rebased and the fault-injecting ops tables (target.h).
 */
#include "target.h"

#include <errno.h>
#include <signal.h>
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

static int rb_run(struct punix_ops *o, const struct ops_cmd *cmd, int *status)
{
	(void)o;
	(void)cmd;
	(void)status;
	return -ENOTSUP; /* nothing runs "inside" a rebased tree */
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

/* ---- fault injection ----------------------------------------------------------- */

static struct {
	struct punix_ops ops;
	struct punix_ops *base;
	long count, eio_at, kill_at;
	int forever;
} fault;

/* Counts one effect; returns -EIO when this one is to fail. */
static int tick(void)
{
	fault.count++;
	if (fault.kill_at && fault.count == fault.kill_at)
		raise(SIGKILL);
	if (fault.eio_at && (fault.count == fault.eio_at || (fault.forever && fault.count > fault.eio_at)))
		return -EIO;
	return 0;
}

#define FB fault.base
#define TICK()                    \
	do {                      \
		int t_ = tick();  \
		if (t_)           \
			return t_; \
	} while (0)

static int f_stat(struct punix_ops *o, const char *p, int follow, struct ops_stat *st)
{
	(void)o;
	TICK();
	return FB->stat(FB, p, follow, st);
}

static int f_open(struct punix_ops *o, const char *p, int flags, uint32_t mode, int *h)
{
	(void)o;
	TICK();
	return FB->open(FB, p, flags, mode, h);
}

static ssize_t f_read(struct punix_ops *o, int h, void *buf, size_t n)
{
	(void)o;
	TICK();
	return FB->read(FB, h, buf, n);
}

static ssize_t f_write(struct punix_ops *o, int h, const void *buf, size_t n)
{
	(void)o;
	TICK();
	return FB->write(FB, h, buf, n);
}

static int f_fsync(struct punix_ops *o, int h)
{
	(void)o;
	TICK();
	return FB->fsync(FB, h);
}

static int f_close(struct punix_ops *o, int h)
{
	(void)o;
	int t = tick();
	int r = FB->close(FB, h); /* a handle is released whatever happens */
	return t ? t : r;
}

static int f_read_file(struct punix_ops *o, const char *p, size_t max, char **buf, size_t *len)
{
	(void)o;
	TICK();
	return FB->read_file(FB, p, max, buf, len);
}

static int f_list_dir(struct punix_ops *o, const char *p, char ***names, size_t *n)
{
	(void)o;
	TICK();
	return FB->list_dir(FB, p, names, n);
}

static int f_mkdir(struct punix_ops *o, const char *p, uint32_t mode)
{
	(void)o;
	TICK();
	return FB->mkdir(FB, p, mode);
}

static int f_rename(struct punix_ops *o, const char *a, const char *b)
{
	(void)o;
	TICK();
	return FB->rename(FB, a, b);
}

static int f_unlink(struct punix_ops *o, const char *p)
{
	(void)o;
	TICK();
	return FB->unlink(FB, p);
}

static int f_rmdir(struct punix_ops *o, const char *p)
{
	(void)o;
	TICK();
	return FB->rmdir(FB, p);
}

static int f_symlink(struct punix_ops *o, const char *t, const char *p)
{
	(void)o;
	TICK();
	return FB->symlink(FB, t, p);
}

static int f_readlink(struct punix_ops *o, const char *p, char **t)
{
	(void)o;
	TICK();
	return FB->readlink(FB, p, t);
}

static int f_chmod(struct punix_ops *o, const char *p, uint32_t mode)
{
	(void)o;
	TICK();
	return FB->chmod(FB, p, mode);
}

static int f_fchmod(struct punix_ops *o, int h, uint32_t mode)
{
	(void)o;
	TICK();
	return FB->fchmod(FB, h, mode);
}

static int f_chown_user(struct punix_ops *o, const char *p, const char *user)
{
	(void)o;
	TICK();
	return FB->chown_user(FB, p, user);
}

static int f_realpath(struct punix_ops *o, const char *p, char **out)
{
	(void)o;
	TICK();
	return FB->realpath(FB, p, out);
}

static int f_fsync_path(struct punix_ops *o, const char *p)
{
	(void)o;
	TICK();
	return FB->fsync_path(FB, p);
}

static int f_lock(struct punix_ops *o, const char *p, int excl, int wait, int *h)
{
	(void)o;
	TICK();
	return FB->lock(FB, p, excl, wait, h);
}

static int f_unlock(struct punix_ops *o, int h)
{
	(void)o;
	return FB->unlock(FB, h);
}

static int f_run(struct punix_ops *o, const struct ops_cmd *cmd, int *status)
{
	(void)o;
	TICK();
	return FB->run(FB, cmd, status);
}

struct punix_ops *ops_faulty_base(struct punix_ops *o)
{
	return o && !strcmp(o->name, "faulty") ? fault.base : NULL;
}

struct punix_ops *ops_faulty(struct punix_ops *base)
{
	const char *eio = getenv("PUNIX_FAULT_EIO_AT"), *kill_at = getenv("PUNIX_FAULT_KILL_AT");
	if ((!eio || !*eio) && (!kill_at || !*kill_at))
		return base;
	fault.base = base;
	fault.eio_at = eio ? atol(eio) : 0;
	fault.kill_at = kill_at ? atol(kill_at) : 0;
	fault.forever = getenv("PUNIX_FAULT_EIO_FOREVER") && atoi(getenv("PUNIX_FAULT_EIO_FOREVER"));
	fault.ops = (struct punix_ops){
		.name = "faulty",
		.stat = f_stat,
		.open = f_open,
		.read = f_read,
		.write = f_write,
		.fsync = f_fsync,
		.close = f_close,
		.read_file = f_read_file,
		.list_dir = f_list_dir,
		.mkdir = f_mkdir,
		.rename = f_rename,
		.unlink = f_unlink,
		.rmdir = f_rmdir,
		.symlink = f_symlink,
		.readlink = f_readlink,
		.chmod = f_chmod,
		.fchmod = f_fchmod,
		.chown_user = f_chown_user,
		.realpath = f_realpath,
		.fsync_path = f_fsync_path,
		.lock = f_lock,
		.unlock = f_unlock,
		.run = f_run,
	};
	return &fault.ops;
}
