/*
 * fault.c - the fault-injecting ops tables the conformance tests drive
 * (target.h, docs/testing.md).
 *
 * Any number of tables (the target's, the store's) can be wrapped; they
 * share one plan, read once from the environment, so "the Nth effect"
 * counts every effect of the process on any of them, and the journal's
 * commits too (fault_journal_tick). What a wrapper can do at an effect:
 *
 *   fail it with EIO (PUNIX_FAULT_EIO_AT, once or FOREVER after);
 *   kill the process there (PUNIX_FAULT_KILL_AT);
 *   and, with PUNIX_FAULT_LOSSY=1, lose at a crash whatever was not synced:
 *   the wrapper logs every change to a directory entry (create, rename,
 *   unlink, rmdir, symlink) until that directory is fsynced, and every file
 *   written through a handle until the handle is fsynced; at a crash it
 *   undoes the unsynced directory changes, newest first, and empties the
 *   unsynced files, then dies. What survives is what a power cut would
 *   leave on a filesystem that keeps only what was synced (a strict model:
 *   real filesystems often keep more). Entries removed or replaced before
 *   their directory was synced are kept aside beside them
 *   (.punix-lossy-N, hidden from listings) until then, so they can come
 *   back.
 *
 * A plan belongs to whoever made it (the CLI, from the environment, once;
 * the engine it is given to): two engines in one process have two plans,
 * or none. Effects of many ops run on worker threads at once, so a plan's
 * counting and its lossy log are kept under its (recursive) mutex.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/sbuf.h"
#include "../base/vec.h"
#include "../base/xalloc.h"
#include "target.h"

enum lossy_kind { L_CREATE, L_RENAME, L_REMOVE };

struct lossy_rec {
	enum lossy_kind kind;
	struct punix_ops *base;
	char *dir;    /* the directory whose sync makes it durable */
	char *path;   /* created / removed / renamed-to path */
	char *from;   /* rename: where it came from */
	char *aside;  /* what was at path before (moved aside), or NULL */
	bool durable;
};

struct lossy_file {
	struct punix_ops *base;
	int h;
	char *path;
	bool open;
};

struct fault_plan {
	pthread_mutex_t mu;
	struct fault_config cfg;
	long count;
	long aside_seq;
	VEC(struct lossy_rec) recs;
	VEC(struct lossy_file) files;
	struct faulty *local; /* the wrapper of ops_local(), made once */
};

struct faulty {
	struct punix_ops ops;
	struct punix_ops *base;
	struct fault_plan *fp;
};

#define FB(o) (((struct faulty *)(o))->base)
#define FP(o) (((struct faulty *)(o))->fp)


/* ---- the lossy model ------------------------------------------------------------ */

static char *parent_of(const char *path)
{
	return ops_dirname(path);
}

#define ASIDE_PREFIX ".punix-lossy-"

/* Moves what is at path aside, beside it (if anything), for a crash to bring back. */
static char *put_aside(struct fault_plan *fp, struct punix_ops *b, const char *path)
{
	struct ops_stat st;
	if (b->stat(b, path, 0, &st) < 0)
		return NULL;
	struct sbuf sb = SBUF_INIT;
	char *dir = ops_dirname(path);
	sbuf_printf(&sb, "%s/" ASIDE_PREFIX "%ld", strcmp(dir, "/") ? dir : "", ++fp->aside_seq);
	free(dir);
	if (b->rename(b, path, sb.sb_buf) < 0) {
		sbuf_free(&sb);
		return NULL;
	}
	return sbuf_detach(&sb, NULL);
}

static void record(struct fault_plan *fp, enum lossy_kind k, struct punix_ops *b, const char *path, const char *from, char *aside)
{
	struct lossy_rec r = {k, b, parent_of(path), xstrdup(path), from ? xstrdup(from) : NULL, aside, false};
	VEC_PUSH(&fp->recs, r);
}

static void synced_dir(struct fault_plan *fp, struct punix_ops *b, const char *dir)
{
	for (size_t i = 0; i < fp->recs.n; i++) {
		struct lossy_rec *r = &fp->recs.v[i];
		if (!r->durable && r->base == b && !strcmp(r->dir, dir)) {
			r->durable = true;
			if (r->aside)
				ops_remove_tree(b, r->aside);
		}
	}
}

static void synced_file(struct fault_plan *fp, struct punix_ops *b, int h)
{
	for (size_t i = 0; i < fp->files.n; i++)
		if (fp->files.v[i].base == b && fp->files.v[i].h == h && fp->files.v[i].open)
			fp->files.v[i].path[0] = '\0'; /* its data is durable */
}

static void renamed_file(struct fault_plan *fp, struct punix_ops *b, const char *from, const char *to)
{
	for (size_t i = 0; i < fp->files.n; i++)
		if (fp->files.v[i].base == b && !strcmp(fp->files.v[i].path, from)) {
			free(fp->files.v[i].path);
			fp->files.v[i].path = xstrdup(to);
		}
}

/* Undoes what was not synced, newest first; then the process dies. */
static void lose_unsynced(struct fault_plan *fp)
{
	for (size_t i = 0; i < fp->files.n; i++) {
		struct lossy_file *f = &fp->files.v[i];
		int h;
		if (f->path[0] && f->base->open(f->base, f->path, OPS_O_WRONLY | OPS_O_TRUNC | OPS_O_NOFOLLOW, 0, &h) == 0)
			f->base->close(f->base, h);
	}
	for (size_t i = fp->recs.n; i-- > 0;) {
		struct lossy_rec *r = &fp->recs.v[i];
		if (r->durable)
			continue;
		struct punix_ops *b = r->base;
		switch (r->kind) {
		case L_CREATE:
			ops_remove_tree(b, r->path);
			break;
		case L_RENAME:
			b->rename(b, r->path, r->from);
			if (r->aside)
				b->rename(b, r->aside, r->path);
			break;
		case L_REMOVE:
			if (r->aside)
				b->rename(b, r->aside, r->path);
			break;
		}
	}
}

static void drop_asides(struct fault_plan *fp)
{
	for (size_t i = 0; i < fp->recs.n; i++) {
		struct lossy_rec *r = &fp->recs.v[i];
		if (!r->durable && r->aside)
			ops_remove_tree(r->base, r->aside);
		free(r->dir);
		free(r->path);
		free(r->from);
		free(r->aside);
	}
	VEC_FREE(&fp->recs);
	for (size_t i = 0; i < fp->files.n; i++)
		free(fp->files.v[i].path);
	VEC_FREE(&fp->files);
}

void fault_crash(struct fault_plan *fp)
{
	if (fp) {
		pthread_mutex_lock(&fp->mu); /* no other thread changes anything after this */
		if (fp->cfg.lossy)
			lose_unsynced(fp);
	}
	raise(SIGKILL);
	abort(); /* not reached: SIGKILL cannot be caught */
}

/* ---- counting ------------------------------------------------------------------- */

/* Counts one effect; returns -EIO when this one is to fail. */
static int tick(struct fault_plan *fp)
{
	pthread_mutex_lock(&fp->mu);
	long n = ++fp->count;
	pthread_mutex_unlock(&fp->mu);
	if (fp->cfg.kill_at && n == fp->cfg.kill_at)
		fault_crash(fp);
	if (fp->cfg.eio_at && (n == fp->cfg.eio_at || (fp->cfg.forever && n > fp->cfg.eio_at)))
		return -EIO;
	return 0;
}

int fault_journal_tick(struct fault_plan *fp)
{
	return fp ? tick(fp) : 0;
}

static struct fault_plan *plan_lock(struct fault_plan *fp)
{
	pthread_mutex_lock(&fp->mu);
	return fp;
}

static void plan_unlock(struct fault_plan **fp)
{
	pthread_mutex_unlock(&(*fp)->mu);
}

/* Counts the effect (failing it if planned) and keeps the plan's lossy log to this thread until return. */
#define TICK()                                                                                 \
	struct fault_plan *guard_ __attribute__((cleanup(plan_unlock))) = plan_lock(FP(o)); \
	do {                                                                                   \
		int t_ = tick(guard_);                                                         \
		if (t_)                                                                        \
			return t_;                                                             \
	} while (0)

/* Counts the effect without holding the plan across it (a lock may wait). */
#define TICK_UNGUARDED()                    \
	do {                                \
		int t_ = tick(FP(o));       \
		if (t_)                     \
			return t_;          \
	} while (0)

static int f_stat(struct punix_ops *o, const char *p, int follow, struct ops_stat *st)
{
	TICK();
	return FB(o)->stat(FB(o), p, follow, st);
}

static int f_open(struct punix_ops *o, const char *p, int flags, uint32_t mode, int *h)
{
	TICK();
	struct punix_ops *b = FB(o);
	struct ops_stat st;
	bool existed = !FP(o)->cfg.lossy || b->stat(b, p, 0, &st) == 0;
	int r = b->open(b, p, flags, mode, h);
	if (r == 0 && FP(o)->cfg.lossy && (flags & OPS_O_WRONLY)) {
		if (!existed)
			record(FP(o), L_CREATE, b, p, NULL, NULL);
		struct lossy_file f = {b, *h, xstrdup(p), true};
		VEC_PUSH(&FP(o)->files, f);
	}
	return r;
}

static ssize_t f_read(struct punix_ops *o, int h, void *buf, size_t n)
{
	TICK();
	return FB(o)->read(FB(o), h, buf, n);
}

static ssize_t f_write(struct punix_ops *o, int h, const void *buf, size_t n)
{
	TICK();
	return FB(o)->write(FB(o), h, buf, n);
}

static int f_fsync(struct punix_ops *o, int h)
{
	TICK();
	int r = FB(o)->fsync(FB(o), h);
	if (r == 0 && FP(o)->cfg.lossy)
		synced_file(FP(o), FB(o), h);
	return r;
}

static int f_close(struct punix_ops *o, int h)
{
	struct fault_plan *guard_ __attribute__((cleanup(plan_unlock))) = plan_lock(FP(o));
	int t = tick(guard_);
	int r = FB(o)->close(FB(o), h); /* a handle is released whatever happens */
	for (size_t i = 0; i < FP(o)->files.n; i++)
		if (FP(o)->files.v[i].base == FB(o) && FP(o)->files.v[i].h == h)
			FP(o)->files.v[i].open = false;
	return t ? t : r;
}

static int f_read_file(struct punix_ops *o, const char *p, size_t max, char **buf, size_t *len)
{
	TICK();
	return FB(o)->read_file(FB(o), p, max, buf, len);
}

/* Listings never show what the lossy model keeps aside. */
static size_t hide_aside(char **names, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(names[i], ASIDE_PREFIX, sizeof(ASIDE_PREFIX) - 1))
			free(names[i]);
		else
			names[k++] = names[i];
	}
	return k;
}

static int f_list_dir(struct punix_ops *o, const char *p, char ***names, size_t *n)
{
	TICK();
	int r = FB(o)->list_dir(FB(o), p, names, n);
	if (r == 0 && FP(o)->cfg.lossy)
		*n = hide_aside(*names, *n);
	return r;
}

static int f_mkdir(struct punix_ops *o, const char *p, uint32_t mode)
{
	TICK();
	int r = FB(o)->mkdir(FB(o), p, mode);
	if (r == 0 && FP(o)->cfg.lossy)
		record(FP(o), L_CREATE, FB(o), p, NULL, NULL);
	return r;
}

static int f_rename(struct punix_ops *o, const char *a, const char *b)
{
	TICK();
	struct punix_ops *base = FB(o);
	char *aside = FP(o)->cfg.lossy ? put_aside(FP(o), base, b) : NULL;
	int r = base->rename(base, a, b);
	if (r < 0) {
		if (aside)
			base->rename(base, aside, b);
		free(aside);
		return r;
	}
	if (FP(o)->cfg.lossy) {
		record(FP(o), L_RENAME, base, b, a, aside);
		renamed_file(FP(o), base, a, b);
	}
	return r;
}

/*
 * A removal before its directory is synced can be lost: a file is moved
 * aside, to come back at a crash. Removing a directory is taken as durable
 * at once, with the removals inside it (a simplification: what it held is
 * gone for good once the directory itself is).
 */
static int remove_entry(struct punix_ops *o, const char *p, bool dir)
{
	TICK();
	struct punix_ops *b = FB(o);
	if (!FP(o)->cfg.lossy)
		return dir ? b->rmdir(b, p) : b->unlink(b, p);
	if (dir) {
		for (size_t i = 0; i < FP(o)->recs.n; i++) {
			struct lossy_rec *r = &FP(o)->recs.v[i];
			if (!r->durable && r->base == b && !strcmp(r->dir, p)) {
				r->durable = true;
				if (r->aside)
					ops_remove_tree(b, r->aside);
			}
		}
		return b->rmdir(b, p);
	}
	struct ops_stat st;
	int r = b->stat(b, p, 0, &st);
	if (r < 0)
		return r;
	if (st.type == OPS_FT_DIR)
		return -EISDIR;
	char *aside = put_aside(FP(o), b, p);
	if (!aside)
		return b->unlink(b, p);
	record(FP(o), L_REMOVE, b, p, NULL, aside);
	return 0;
}

static int f_unlink(struct punix_ops *o, const char *p)
{
	return remove_entry(o, p, false);
}

static int f_rmdir(struct punix_ops *o, const char *p)
{
	return remove_entry(o, p, true);
}

static int f_symlink(struct punix_ops *o, const char *t, const char *p)
{
	TICK();
	int r = FB(o)->symlink(FB(o), t, p);
	if (r == 0 && FP(o)->cfg.lossy)
		record(FP(o), L_CREATE, FB(o), p, NULL, NULL);
	return r;
}

static int f_readlink(struct punix_ops *o, const char *p, char **t)
{
	TICK();
	return FB(o)->readlink(FB(o), p, t);
}

static int f_chmod(struct punix_ops *o, const char *p, uint32_t mode)
{
	TICK();
	return FB(o)->chmod(FB(o), p, mode);
}

static int f_fchmod(struct punix_ops *o, int h, uint32_t mode)
{
	TICK();
	return FB(o)->fchmod(FB(o), h, mode);
}

static int f_chown_user(struct punix_ops *o, const char *p, const char *user)
{
	TICK();
	return FB(o)->chown_user(FB(o), p, user);
}

static int f_realpath(struct punix_ops *o, const char *p, char **out)
{
	TICK();
	return FB(o)->realpath(FB(o), p, out);
}

static int f_fsync_path(struct punix_ops *o, const char *p)
{
	TICK();
	int r = FB(o)->fsync_path(FB(o), p);
	if (r == 0 && FP(o)->cfg.lossy) {
		struct ops_stat st;
		if (FB(o)->stat(FB(o), p, 0, &st) == 0 && st.type == OPS_FT_DIR)
			synced_dir(FP(o), FB(o), p);
		else /* a file synced by its path: its data is durable */
			for (size_t i = 0; i < FP(o)->files.n; i++)
				if (FP(o)->files.v[i].base == FB(o) && !strcmp(FP(o)->files.v[i].path, p))
					FP(o)->files.v[i].path[0] = '\0';
	}
	return r;
}

static int f_lock(struct punix_ops *o, const char *p, int excl, int wait, int *h)
{
	TICK_UNGUARDED();
	return FB(o)->lock(FB(o), p, excl, wait, h);
}

static int f_unlock(struct punix_ops *o, int h)
{
	return FB(o)->unlock(FB(o), h);
}

static int f_run(struct punix_ops *o, const struct ops_cmd *cmd, int *status)
{
	TICK_UNGUARDED();
	return FB(o)->run(FB(o), cmd, status);
}

/* Reading the clock is not counted: the tests' effect numbers stay what they were. */
/* One request, one effect. */
static int f_exists(struct punix_ops *o, const char *const *paths, size_t n, unsigned char *found)
{
	TICK();
	return FB(o)->exists(FB(o), paths, n, found);
}

static int f_arch(struct punix_ops *o, char *out, size_t n)
{
	return FB(o)->arch(FB(o), out, n);
}

static int64_t f_now(struct punix_ops *o)
{
	return FB(o)->now(FB(o));
}

/* Opening a stream is one effect; what flows on it is the other side's business. */
static int f_stream_open(struct punix_ops *o, const char *line, struct ops_stream **s)
{
	TICK_UNGUARDED();
	return FB(o)->stream_open ? FB(o)->stream_open(FB(o), line, s) : -ENOTSUP;
}

static ssize_t f_stream_read(struct punix_ops *o, struct ops_stream *s, void *buf, size_t n)
{
	return FB(o)->stream_read(FB(o), s, buf, n);
}

static ssize_t f_stream_write(struct punix_ops *o, struct ops_stream *s, const void *buf, size_t n)
{
	return FB(o)->stream_write(FB(o), s, buf, n);
}

static int f_stream_close(struct punix_ops *o, struct ops_stream *s, int *status)
{
	return FB(o)->stream_close(FB(o), s, status);
}

static struct faulty *faulty_new(struct fault_plan *fp, struct punix_ops *base)
{
	struct faulty *f = xcalloc(1, sizeof(*f));
	f->base = base;
	f->fp = fp;
	f->ops = (struct punix_ops){
		.name = "faulty",
		.ctx = f,
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
		.now = f_now,
		.arch = f_arch,
		.exists = f_exists,
		.fsync_paths = ops_fsync_paths_each, /* each through f_fsync_path: counted and logged as before */
		.stream_open = f_stream_open,
		.stream_read = f_stream_read,
		.stream_write = f_stream_write,
		.stream_close = f_stream_close,
	};
	return f;
}

struct fault_plan *fault_plan_new(const struct fault_config *cfg)
{
	if (!cfg || !(cfg->eio_at || cfg->kill_at || cfg->lossy))
		return NULL;
	struct fault_plan *fp = xcalloc(1, sizeof(*fp));
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&fp->mu, &a);
	pthread_mutexattr_destroy(&a);
	fp->cfg = *cfg;
	fp->local = faulty_new(fp, ops_local());
	return fp;
}

long fault_plan_count(struct fault_plan *fp)
{
	if (!fp)
		return 0;
	pthread_mutex_lock(&fp->mu);
	long n = fp->count;
	pthread_mutex_unlock(&fp->mu);
	return n;
}

void fault_plan_free(struct fault_plan *fp)
{
	if (!fp)
		return;
	drop_asides(fp); /* no crash came: every removal happened */
	free(fp->local);
	pthread_mutex_destroy(&fp->mu);
	free(fp);
}

struct punix_ops *ops_faulty(struct fault_plan *fp, struct punix_ops *base)
{
	if (!fp)
		return base;
	if (base == ops_local())
		return &fp->local->ops;
	return &faulty_new(fp, base)->ops;
}

struct punix_ops *ops_faulty_base(struct punix_ops *o)
{
	return o && !strcmp(o->name, "faulty") ? FB(o) : NULL;
}

void ops_faulty_free(struct punix_ops *o)
{
	if (ops_faulty_base(o) && o != &FP(o)->local->ops)
		free(o->ctx);
}
