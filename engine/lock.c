/*
 * lock.c - per-stack locks (one lock file per canonical target identity
 * and stack, under the state directory), the store's shared lock held by
 * every op, and the record of rebased trees the deployer's GC reads.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "../base/strmap.h"
#include "../base/vec.h"
#include "../base/xalloc.h"
#include "build.h"
#include "engine.h"
#include "manifest.h"
#include "ownership.h"
#include "systemd.h"
#include "op_internal.h"
#include "ssh.h"
#include "target.h"

/* ---- locks ------------------------------------------------------------------------ */

static char *lock_path(struct engine *e, const char *scope)
{
	char hex[65];
	sha256_hex(scope, strlen(scope), hex);
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/locks/%.20s.lock", e->state_dir, hex);
	return sbuf_detach(&sb, NULL);
}

/*
 * Who holds a lock, from its file's first line. The holder writes it just
 * after it took the lock: an empty file is given a moment (up to 100 ms).
 */
static char *read_holder(struct punix_ops *o, const char *path)
{
	char *holder = NULL;
	size_t len;
	for (int tries = 0; tries < 20 && (!holder || !*holder); tries++) {
		free(holder);
		holder = NULL;
		if (o->read_file(o, path, 4096, &holder, &len) == 0)
			holder[strcspn(holder, "\n")] = '\0';
		if (!holder || !*holder)
			usleep(5000);
	}
	return holder;
}

/* Takes the stack's lock without waiting; on conflict says who holds it. */
int lock_scope(struct engine *e, const char *scope, const char *what, int *h, struct sbuf *err)
{
	struct punix_ops *o = e->local;
	char *path = lock_path(e, scope);
	char *dir = ops_dirname(path);
	ops_mkdir_p(o, dir, 0700);
	free(dir);
	int r = o->lock(o, path, 1, 0, h);
	if (r == -EWOULDBLOCK) {
		char *holder = read_holder(o, path);
		sbuf_printf(err, "%s is busy: %s", what, holder && *holder ? holder : "another punix holds it");
		free(holder);
	} else if (r < 0) {
		sbuf_printf(err, "cannot lock %s (%s): %s", what, path, strerror(-r));
	} else {
		/* Who holds it, for the next one to be told. */
		char host[256] = "?";
		if (gethostname(host, sizeof(host) - 1) < 0)
			snprintf(host, sizeof(host), "?");
		struct sbuf who = SBUF_INIT;
		sbuf_printf(&who, "held by pid %ld on %s (%s)\n", (long)getpid(), host, what);
		ssize_t w = 0;
		int fh;
		if (o->open(o, path, OPS_O_WRONLY | OPS_O_TRUNC, 0644, &fh) == 0) {
			w = o->write(o, fh, who.sb_buf, who.sb_len);
			o->close(o, fh);
		}
		(void)w;
		sbuf_free(&who);
	}
	free(path);
	return r;
}

/*
 * The stack's lock on the target itself, <deployments root>/.locks/<stack>.lock,
 * taken through the target's table (flock beneath a local root; a session
 * holding flock(1) over SSH), so that deployers with journals of their own
 * cannot interleave on one target. Its file says who holds it.
 */
int lock_target(struct punix_ops *tops, const char *dep, const char *stack, int *h, struct sbuf *err)
{
	struct sbuf dir = SBUF_INIT, path = SBUF_INIT;
	sbuf_printf(&dir, "%s/.locks", strcmp(dep, "/") ? dep : "");
	sbuf_printf(&path, "%s/%s.lock", dir.sb_buf, stack);
	int r = ops_mkdir_p(tops, dir.sb_buf, 0755);
	if (r == 0)
		r = tops->lock(tops, path.sb_buf, 1, 0, h);
	if (r == -EWOULDBLOCK) {
		char *holder = read_holder(tops, path.sb_buf);
		sbuf_printf(err, "stack '%s' is busy on the target: %s", stack,
			    holder && *holder ? holder : "another punix holds it");
		free(holder);
	} else if (r == -ENOTSUP) {
		sbuf_printf(err, "cannot lock stack '%s' on the target (%s): the host has no flock(1) (util-linux)", stack,
			    path.sb_buf);
	} else if (r < 0) {
		sbuf_printf(err, "cannot lock stack '%s' on the target (%s): %s", stack, path.sb_buf, ops_strerror(r));
	} else {
		/* who holds it, for the next one to be told: this machine and process */
		char host[256] = "?";
		if (gethostname(host, sizeof(host) - 1) < 0)
			snprintf(host, sizeof(host), "?");
		struct sbuf who = SBUF_INIT;
		sbuf_printf(&who, "held by pid %ld on %s (stack '%s')\n", (long)getpid(), host, stack);
		int fh;
		if (tops->open(tops, path.sb_buf, OPS_O_WRONLY | OPS_O_TRUNC | OPS_O_NOFOLLOW, 0644, &fh) == 0) {
			ssize_t w = tops->write(tops, fh, who.sb_buf, who.sb_len);
			(void)w; /* the text is for people; the lock is what counts */
			tops->close(tops, fh);
		}
		sbuf_free(&who);
	}
	sbuf_free(&dir);
	sbuf_free(&path);
	return r;
}

char *make_scope(const struct target_spec *t, const char *stack)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s|%s%s|%s|%s", t->ssh && *t->ssh ? t->ssh : "local",
		    t->transport_root && *t->transport_root ? "root:" : "",
		    t->transport_root && *t->transport_root ? t->transport_root : "", t->deployments_root, stack);
	return sbuf_detach(&sb, NULL);
}

/*
 * Remembers a tree under a transport root on this machine that ops deploy
 * into, so that collecting the deployer's store keeps what the generations
 * there pin (gc.c: registered_roots). One small file per tree, written
 * once; a tree that is gone later is skipped.
 */
int remember_tree(struct engine *e, const struct target_spec *t, struct sbuf *err)
{
	if ((t->ssh && *t->ssh) || !t->transport_root || !*t->transport_root)
		return 0;
	struct punix_ops *o = e->local;
	struct sbuf key = SBUF_INIT, path = SBUF_INIT;
	sbuf_printf(&key, "%s|%s|%s", t->transport_root, t->deployments_root, e->store->root);
	char hex[65];
	sha256_hex(key.sb_buf, key.sb_len, hex);
	sbuf_printf(&path, "%s/targets/%.20s.json", e->state_dir, hex);
	struct ops_stat st;
	int r = 0;
	if (o->stat(o, path.sb_buf, 0, &st) < 0) {
		char *dir = ops_dirname(path.sb_buf);
		r = ops_mkdir_p(o, dir, 0700);
		free(dir);
		json_t *j = json_pack("{s:s, s:s, s:s}", "transport_root", t->transport_root, "deployments_root",
				      t->deployments_root, "store_root", e->store->root);
		char *text = json_dumps(j, JSON_SORT_KEYS);
		json_decref(j);
		if (r == 0)
			r = ops_write_atomic(o, path.sb_buf, text, strlen(text), 0600);
		free(text);
		if (r < 0)
			sbuf_printf(err, "cannot record the target tree in %s: %s", path.sb_buf, strerror(-r));
	}
	sbuf_free(&key);
	sbuf_free(&path);
	return r;
}

/*
 * Deploys, rollbacks and set-currents hold the store lock shared from start
 * to end: the paths they build and pin cannot be collected under them.
 */
int store_shared(struct engine *e, struct op_result *r)
{
	int h, rc = store_lock(e->store, false, &h);
	if (rc < 0) {
		memset(r, 0, sizeof(*r));
		sbuf_printf(&r->error, "cannot lock the store %s: %s", e->store->root, strerror(-rc));
		r->exit = 3;
		return -1;
	}
	return h;
}
