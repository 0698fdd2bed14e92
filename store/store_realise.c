/*
 * store_realise.c - building a derivation with std.shell.
 *
 * The steps, each safe to repeat after a crash at any point:
 *
 *   1. lock the derivation (flock: the kernel drops it if we die);
 *   2. if the path is valid, done (a concurrent builder got there first);
 *   3. remove what an interrupted build of it left: .build/<name>-*, and
 *      the path itself if it exists without a registration;
 *   4. build in .build/<name>-<pid>/: a fresh copy of the source as the
 *      working directory, private HOME and TMPDIR, OUTPUT a fresh directory,
 *      /bin/sh -c COMMAND in a clean environment, output to the log;
 *   5. make the output read-only, hash it, fsync it;
 *   6. rename it to the store path, fsync the store directory;
 *   7. register it (durable atomic write): from here on it is valid.
 *
 * A crash before 7 leaves nothing that is valid; the next build of the same
 * derivation, or `punix recover`, removes the leftovers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../base/vec.h"
#include "../base/xalloc.h"
#include "store.h"
#include "store_internal.h"

void store_result_free(struct store_result *r)
{
	free(r->log_path);
	sbuf_free(&r->error);
	r->log_path = NULL;
}

static char *fmt(const char *f, const char *a, const char *b)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, f, a, b);
	return sbuf_detach(&sb, NULL);
}

/* Removes .build/<name>-* left by builds of this derivation that died. */
static int remove_stale_builds(struct store *s, const char *name)
{
	char **names;
	size_t n;
	int r = s->ops->list_dir(s->ops, s->build_dir, &names, &n);
	if (r < 0)
		return r;
	size_t len = strlen(name);
	for (size_t i = 0; i < n && r == 0; i++) {
		const char *e = names[i];
		if (strncmp(e, name, len) != 0 || e[len] != '-' || strchr(e + len + 1, '-'))
			continue;
		char *dir = fmt("%s/%s", s->build_dir, e);
		r = ops_remove_tree(s->ops, dir);
		free(dir);
	}
	ops_free_names(names, n);
	return r;
}

static int make_read_only(struct punix_ops *o, const char *path);

static int read_only_child(struct punix_ops *o, const char *child, const char *name, void *arg)
{
	(void)name;
	(void)arg;
	return make_read_only(o, child);
}

/* Files 0444 or 0555, directories 0555: a valid path is never edited in place. */
static int make_read_only(struct punix_ops *o, const char *path)
{
	struct ops_stat st;
	int r = o->stat(o, path, 0, &st);
	if (r < 0 || st.type == OPS_FT_LINK)
		return r;
	if (st.type == OPS_FT_DIR) {
		r = ops_each_child(o, path, read_only_child, NULL);
		return r < 0 ? r : o->chmod(o, path, 0555);
	}
	return o->chmod(o, path, (st.mode & 0111) ? 0555 : 0444);
}

/* PATH: the dependencies' bin/ directories, then a minimal system path. */
static char *build_path_var(const struct store_drv *d)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_puts(&sb, "PATH=");
	for (size_t i = 0; i < d->ndeps; i++)
		sbuf_printf(&sb, "%s/bin:", d->deps[i]);
	sbuf_puts(&sb, "/usr/local/bin:/usr/bin:/bin");
	return sbuf_detach(&sb, NULL);
}

static int run_build(struct store *s, const struct store_drv *d, const char *dir, const char *out,
		     struct store_result *res)
{
	struct punix_ops *o = s->ops;
	char *src = fmt("%s/%s", dir, "src");
	char *home = fmt("%s/%s", dir, "home");
	char *tmp = fmt("%s/%s", dir, "tmp");
	int r = 0;
	if (d->source_dir)
		r = ops_copy_tree(o, d->source_dir, src);
	else
		r = o->mkdir(o, src, 0755);
	if (r == 0)
		r = o->mkdir(o, home, 0700);
	if (r == 0)
		r = o->mkdir(o, tmp, 0700);
	if (r == 0)
		r = o->mkdir(o, out, 0755);
	if (r < 0) {
		sbuf_printf(&res->error, "cannot prepare the build directory %s: %s", dir, strerror(-r));
		goto done;
	}

	char *env_out = fmt("OUTPUT=%s%s", out, "");
	char *env_home = fmt("HOME=%s%s", home, "");
	char *env_tmp = fmt("TMPDIR=%s%s", tmp, "");
	char *env_path = build_path_var(d);
	const char *env[] = {
		env_out, env_home, env_tmp, env_path, "SOURCE_DATE_EPOCH=0", "LC_ALL=C", "TZ=UTC", "SHELL=/bin/sh",
		NULL,
	};
	const char *argv[] = {"/bin/sh", "-c", d->command, NULL};
	struct ops_cmd cmd = {argv, env, src, res->log_path, 1};
	int status = 0;
	/* A fresh log per attempt: the log of a failure is the failure's alone. */
	r = ops_write_atomic(o, res->log_path, "", 0, 0644);
	if (r == 0)
		r = o->run(o, &cmd, &status);
	free(env_out);
	free(env_home);
	free(env_tmp);
	free(env_path);
	if (r < 0) {
		sbuf_printf(&res->error, "cannot run /bin/sh: %s", strerror(-r));
		goto done;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		sbuf_printf(&res->error, "the build command exited with status %d", WEXITSTATUS(status));
		r = 1;
	} else if (WIFSIGNALED(status)) {
		sbuf_printf(&res->error, "the build command was killed by signal %d", WTERMSIG(status));
		r = 1;
	} else {
		struct ops_stat st;
		if (o->stat(o, out, 0, &st) < 0) {
			sbuf_puts(&res->error, "the build command succeeded but left no $OUTPUT");
			r = 1;
		}
	}
done:
	free(src);
	free(home);
	free(tmp);
	return r;
}

int store_realise(struct store *s, const struct store_drv *d, const char *path, struct store_result *res)
{
	struct punix_ops *o = s->ops;
	const char *name = store_path_name(path);
	memset(res, 0, sizeof(*res));
	res->log_path = fmt("%s/%s.log", s->log_dir, name);

	char *lock = store_lock_path(s, path);
	int lh, r = o->lock(o, lock, 1, 1, &lh);
	free(lock);
	if (r < 0) {
		sbuf_printf(&res->error, "cannot lock %s: %s", name, strerror(-r));
		res->outcome = STORE_FAILED;
		return r;
	}
	if (store_is_valid(s, path)) {
		res->outcome = STORE_CACHED;
		o->unlock(o, lh);
		return 0;
	}

	char pid[32];
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	char *dir = NULL, *out = NULL;
	r = remove_stale_builds(s, name);
	if (r == 0)
		r = ops_remove_tree(o, path); /* unregistered, so never valid */
	if (r < 0) {
		sbuf_printf(&res->error, "cannot remove leftovers of %s: %s", name, strerror(-r));
		goto fail;
	}
	dir = fmt("%s/%s", s->build_dir, name);
	{
		char *d2 = fmt("%s-%s", dir, pid);
		free(dir);
		dir = d2;
	}
	out = fmt("%s/%s", dir, "out");
	r = o->mkdir(o, dir, 0755);
	if (r < 0) {
		sbuf_printf(&res->error, "cannot create %s: %s", dir, strerror(-r));
		goto fail;
	}
	r = run_build(s, d, dir, out, res);
	if (r != 0)
		goto fail;

	unsigned char nar[32];
	uint64_t bytes = 0;
	r = make_read_only(o, out);
	if (r == 0)
		r = store_hash_tree(o, out, nar, &bytes);
	if (r == 0)
		r = ops_fsync_tree(o, out);
	if (r == 0)
		r = o->rename(o, out, path);
	if (r == 0)
		r = o->fsync_path(o, s->root);
	if (r == 0)
		r = store_register(s, path, nar, bytes, d->deps, d->ndeps);
	if (r < 0) {
		sbuf_printf(&res->error, "cannot install %s: %s", name, strerror(-r));
		ops_remove_tree(o, path);
		goto fail;
	}
	ops_remove_tree(o, dir);
	free(dir);
	free(out);
	o->unlock(o, lh);
	res->outcome = STORE_BUILT;
	return 0;

fail:
	if (dir)
		ops_remove_tree(o, dir);
	free(dir);
	free(out);
	o->unlock(o, lh);
	res->outcome = STORE_FAILED;
	return r < 0 && !res->error.sb_len ? r : 0;
}
