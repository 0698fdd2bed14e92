/*
 * op.c - the op runner, the step tables of deploy, rollback and
 * set-current, recovery, and per-stack locks (see engine.h).
 *
 * An op's plan (a JSON object in its journal record) holds everything the
 * steps after it need: where the target is, the generation, its pins and
 * files. So recovery, in another process, can finish or undo an op from the
 * journal alone. Steps before the commit point may keep in-memory state
 * (the build plan, the rendered files) because recovery never re-runs them:
 * it undoes them.
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

void op_result_free(struct op_result *r)
{
	sbuf_free(&r->error);
	sbuf_free(&r->activation);
	sbuf_free(&r->failed);
}

/* ---- helpers --------------------------------------------------------------------- */

int op_fail(struct op_ctx *c, int exit, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sbuf_reset(&c->res->error);
	sbuf_vprintf(&c->res->error, fmt, ap);
	va_end(ap);
	c->res->exit = exit;
	return exit;
}

const char *plan_str(struct op_ctx *c, const char *key)
{
	return json_string_value(json_object_get(c->plan, key));
}

long plan_long(struct op_ctx *c, const char *key)
{
	return (long)json_integer_value(json_object_get(c->plan, key));
}

static const char *dep_root(struct op_ctx *c)
{
	return plan_str(c, "deployments_root");
}

static void now_iso(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A crash requested by a test: PUNIX_CRASH_AT=<kind>:<step>:<before|after>. */
static void maybe_crash(const char *kind, const char *step, const char *when)
{
	const char *want = getenv("PUNIX_CRASH_AT");
	if (!want || !*want)
		return;
	char here[128];
	snprintf(here, sizeof(here), "%s:%s:%s", kind, step, when);
	if (strcmp(want, here) == 0)
		fault_crash();
}

struct punix_ops *engine_target_ops(const struct target_spec *t, struct sbuf *err)
{
	struct punix_ops *base;
	if (t->ssh && t->ssh[0]) {
		struct ssh_target st;
		if (ssh_parse_url(t->ssh, &st) < 0) {
			sbuf_printf(err, "'%s' is not a target: ssh://USER@HOST[:PORT]", t->ssh);
			return NULL;
		}
		st.known_hosts = t->known_hosts;
		st.key = t->key;
		base = ops_ssh_connect(&st, err);
		ssh_target_free(&st);
		if (!base)
			return NULL;
		if (t->transport_root && t->transport_root[0])
			return ops_rebased(base, t->transport_root);
		return base;
	}
	/* This machine: every path beneath the transport root, or beneath "/". */
	const char *root = t->transport_root && t->transport_root[0] ? t->transport_root : "/";
	struct sbuf why = SBUF_INIT;
	base = ops_beneath(root, &why);
	if (!base) {
		sbuf_printf(err, "the target's root %s cannot be used: %s", root, why.sb_buf);
		sbuf_free(&why);
		return NULL;
	}
	sbuf_free(&why);
	return ops_faulty(base);
}

struct punix_ops *engine_store_ops(void)
{
	return ops_faulty(ops_local());
}

void engine_target_ops_free(struct punix_ops *o)
{
	struct punix_ops *f = ops_faulty_base(o);
	if (f) {
		ops_faulty_free(o);
		o = f;
	}
	if (ops_is_beneath(o)) {
		ops_beneath_free(o);
		return;
	}
	struct punix_ops *base = ops_rebased_base(o);
	ops_rebased_free(o);
	ops_ssh_close(base ? base : o);
}

/* The target is this machine itself (not rebased, not over SSH): its store is ours. */
static bool target_is_here(struct op_ctx *c)
{
	const char *ssh = plan_str(c, "ssh"), *root = plan_str(c, "transport_root");
	return (!ssh || !*ssh) && (!root || !*root);
}

/* ---- locks ------------------------------------------------------------------------ */

static char *lock_path(struct engine *e, const char *scope)
{
	char hex[65];
	sha256_hex(scope, strlen(scope), hex);
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/locks/%.20s.lock", e->state_dir, hex);
	return sbuf_detach(&sb, NULL);
}

/* Takes the stack's lock without waiting; on conflict says who holds it. */
static int lock_scope(struct engine *e, const char *scope, const char *what, int *h, struct sbuf *err)
{
	struct punix_ops *o = e->local;
	char *path = lock_path(e, scope);
	char *dir = ops_dirname(path);
	ops_mkdir_p(o, dir, 0700);
	free(dir);
	int r = o->lock(o, path, 1, 0, h);
	if (r == -EWOULDBLOCK) {
		char *holder = NULL;
		size_t len;
		if (o->read_file(o, path, 4096, &holder, &len) == 0)
			holder[strcspn(holder, "\n")] = '\0';
		sbuf_printf(err, "%s is busy: %s", what, holder && *holder ? holder : "another punix holds it");
		free(holder);
	} else if (r < 0) {
		sbuf_printf(err, "cannot lock %s (%s): %s", what, path, strerror(-r));
	} else {
		/* Who holds it, for the next one to be told. */
		struct sbuf who = SBUF_INIT;
		sbuf_printf(&who, "held by pid %ld (%s)\n", (long)getpid(), what);
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

static char *make_scope(const struct target_spec *t, const char *stack)
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
static int remember_tree(struct engine *e, const struct target_spec *t, struct sbuf *err)
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

/* Why the manifest of gen could not be read: manifest_read's words, else its path and errno. */
static const char *manifest_why(struct op_ctx *c, long gen, int r, struct sbuf *err)
{
	if (!err->sb_len) {
		char *path = gen_manifest_path(dep_root(c), c->stack, gen);
		sbuf_printf(err, "%s: %s", path, strerror(-r));
		free(path);
	}
	return err->sb_buf;
}

/* ---- common steps ------------------------------------------------------------------ */

/*
 * Every pin of the plan is a path of the store the plan names: a plan read
 * back from the journal that says otherwise is corrupt, and nothing is
 * pushed, checked or swept because of it.
 */
static int plan_pins_in_store(struct op_ctx *c)
{
	json_t *pins = json_object_get(c->plan, "store_paths");
	const char *store_root = plan_str(c, "store_root");
	for (size_t i = 0; i < json_array_size(pins); i++) {
		const char *p = json_string_value(json_array_get(pins, i));
		if (!p || !store_root || !store_path_in(store_root, p))
			return op_fail(c, 1, "op %llu: its plan pins %s, which is not a path of the store %s: the journal "
					     "record is corrupt; nothing was pushed or removed for it",
				       (unsigned long long)c->id, p ? p : "(not a string)", store_root ? store_root : "(none)");
	}
	return 0;
}

/* Every pin of the plan must be on the target, with its registration. */
static int step_verify(struct op_ctx *c)
{
	if (plan_pins_in_store(c))
		return c->res->exit;
	json_t *pins = json_object_get(c->plan, "store_paths");
	const char *store_root = plan_str(c, "store_root");
	struct sbuf missing = SBUF_INIT;
	size_t nmissing = 0;
	for (size_t i = 0; i < json_array_size(pins); i++) {
		const char *p = json_string_value(json_array_get(pins, i));
		struct ops_stat st;
		struct sbuf meta = SBUF_INIT;
		sbuf_printf(&meta, "%s/.meta/%s.json", store_root, store_path_name(p));
		if (c->tops->stat(c->tops, p, 0, &st) < 0 || c->tops->stat(c->tops, meta.sb_buf, 0, &st) < 0) {
			sbuf_printf(&missing, "\n  %s", p);
			nmissing++;
		}
		sbuf_free(&meta);
	}
	int r = 0;
	if (nmissing)
		r = op_fail(c, 1,
			    "[E12] stack '%s' gen-%03ld: pinned store path missing:%s\nThis usually means GC ran with "
			    "the wrong root set. Recover by\nre-realising: punix build <the program's files>",
			    c->stack, plan_long(c, "generation"), missing.sb_buf);
	sbuf_free(&missing);
	return r;
}

/* The flip: symlink to a temporary name, rename over current, fsync the directory. */
static int step_flip(struct op_ctx *c)
{
	char *dir = stack_dir(dep_root(c), c->stack);
	struct sbuf cur = SBUF_INIT, target = SBUF_INIT;
	sbuf_printf(&cur, "%s/current", dir);
	char *tmp = ops_tmp_name(cur.sb_buf);
	sbuf_printf(&target, "gen-%03ld.json", plan_long(c, "generation"));
	struct punix_ops *o = c->tops;
	int r = o->symlink(o, target.sb_buf, tmp);
	if (r == 0)
		r = o->rename(o, tmp, cur.sb_buf);
	if (r == 0)
		r = o->fsync_path(o, dir);
	if (r < 0) {
		o->unlink(o, tmp);
		op_fail(c, 3, "flipping %s to %s: %s", cur.sb_buf, target.sb_buf, ops_strerror(r));
	}
	free(tmp);
	sbuf_free(&cur);
	sbuf_free(&target);
	free(dir);
	return r < 0 ? 3 : 0;
}

/* Directories written into without a sync yet; each is synced once. */
struct dirset {
	struct strmap seen;
	VEC(char *) dirs;
};

static void dirset_add(struct dirset *d, const char *path)
{
	char *dir = ops_dirname(path);
	if (strmap_get(&d->seen, dir)) {
		free(dir);
		return;
	}
	strmap_put(&d->seen, dir, dir);
	VEC_PUSH(&d->dirs, dir);
}

/* Syncs each directory once; on failure *failed names the directory. */
static int dirset_sync(struct dirset *d, struct punix_ops *o, const char **failed)
{
	int r = 0;
	for (size_t i = 0; i < d->dirs.n && r == 0; i++) {
		r = o->fsync_path(o, d->dirs.v[i]);
		if (r < 0 && failed)
			*failed = d->dirs.v[i];
	}
	return r;
}

static void dirset_free(struct dirset *d)
{
	for (size_t i = 0; i < d->dirs.n; i++)
		free(d->dirs.v[i]);
	VEC_FREE(&d->dirs);
	strmap_free(&d->seen);
}

static bool same_file(struct punix_ops *o, const char *path, const char *content, size_t len, uint32_t mode)
{
	struct ops_stat st;
	if (o->stat(o, path, 0, &st) < 0 || st.type != OPS_FT_REG || st.mode != mode || st.size != len)
		return false;
	char *buf;
	size_t n;
	if (o->read_file(o, path, len + 1, &buf, &n) < 0)
		return false;
	bool same = n == len && memcmp(buf, content, len) == 0;
	free(buf);
	return same;
}

/* Removes the live files of the previous generation that the new one lacks. */
static int remove_dropped(struct op_ctx *c, const struct manifest_file *old, size_t nold,
			  const struct manifest_file *new, size_t nnew)
{
	struct dirset touched = {0};
	int rc = 0;
	for (size_t i = 0; i < nold; i++) {
		bool kept = false;
		for (size_t k = 0; k < nnew && !kept; k++)
			kept = strcmp(old[i].path, new[k].path) == 0;
		if (kept)
			continue;
		bool restored;
		int r = ownership_release(c->tops, dep_root(c), c->stack, old[i].path, &restored);
		if (r < 0) {
			op_fail(c, 3, "materialise: giving %s back its adopted original: %s", old[i].path, ops_strerror(r));
			rc = r;
			break;
		}
		if (restored)
			continue;
		r = c->tops->unlink(c->tops, old[i].path);
		if (r < 0 && r != -ENOENT) {
			op_fail(c, 3, "materialise: removing %s: %s", old[i].path, ops_strerror(r));
			rc = r;
			break;
		}
		dirset_add(&touched, old[i].path);
	}
	/* a removal is done when its directory says so */
	if (rc == 0) {
		const char *bad = "?";
		rc = dirset_sync(&touched, c->tops, &bad);
		if (rc < 0)
			op_fail(c, 3, "materialise: syncing %s after removing files: %s", bad, strerror(-rc));
	}
	dirset_free(&touched);
	return rc;
}

/*
 * Makes the live files equal the generation's, and removes the files the
 * previous generation had that this one lacks. Idempotent.
 */
static int step_materialise(struct op_ctx *c)
{
	struct punix_ops *o = c->tops;
	const char *dep = dep_root(c);
	long gen = plan_long(c, "generation"), prev = plan_long(c, "previous");
	struct manifest m, old = {0};
	struct sbuf err = SBUF_INIT;
	int r = manifest_read(o, dep, c->stack, gen, &m, &err);
	if (r < 0) {
		op_fail(c, 3, "materialise: %s", manifest_why(c, gen, r, &err));
		sbuf_free(&err);
		return 3;
	}
	/* The previous generation says which live files to remove; if it cannot
	 * be read now, fail, so that recovery tries again (a pruned one, gone for
	 * good, leaves nothing to remove). */
	bool have_old = false;
	if (prev > 0 && prev != gen) {
		int ro = manifest_read(o, dep, c->stack, prev, &old, &err);
		if (ro == -EBADMSG) {
			/* a corrupt generation must not trap the stack on it: going away from
			 * it works; the files only it declared cannot be known, and stay */
			sbuf_printf(&c->res->activation, "\u26a0 %s; files only it declared were not removed\n", err.sb_buf);
			sbuf_reset(&err);
			ro = -ENOENT;
		}
		if (ro < 0 && ro != -ENOENT) {
			op_fail(c, 3, "materialise: %s", manifest_why(c, prev, ro, &err));
			manifest_free(&m);
			sbuf_free(&err);
			return 3;
		}
		have_old = ro == 0;
	}
	char *files = gen_files_dir(dep, c->stack, gen);
	struct dirset written = {0};
	for (size_t i = 0; i < m.nfiles && r == 0; i++) {
		struct sbuf src = SBUF_INIT;
		sbuf_printf(&src, "%s%s", files, m.files[i].path);
		char *buf;
		size_t len;
		r = o->read_file(o, src.sb_buf, 64 << 20, &buf, &len);
		if (r == 0) {
			char hex[65];
			sha256_hex(buf, len, hex);
			if (strcmp(hex, m.files[i].sha256) != 0) {
				op_fail(c, 3, "materialise: %s does not match its manifest", src.sb_buf);
				r = -EBADMSG;
			} else if (!same_file(o, m.files[i].path, buf, len, m.files[i].mode)) {
				char *dir = ops_dirname(m.files[i].path);
				r = ops_mkdir_p(o, dir, 0755);
				if (r == 0)
					r = ops_write_atomic_nodirsync(o, m.files[i].path, buf, len, m.files[i].mode);
				if (r == 0)
					dirset_add(&written, m.files[i].path);
				free(dir);
			}
			free(buf);
		}
		if (r < 0 && !c->res->error.sb_len)
			op_fail(c, 3, "materialise %s: %s", m.files[i].path, ops_strerror(r));
		sbuf_free(&src);
	}
	char *kept_dir = gen_secrets_dir(dep, c->stack, gen);
	for (size_t i = 0; i < m.nsecret && r == 0; i++) {
		const struct manifest_file *f = &m.secret_files[i];
		struct sbuf src = SBUF_INIT;
		sbuf_printf(&src, "%s%s", kept_dir, f->path);
		char *buf = NULL;
		size_t len = 0;
		r = o->read_file(o, src.sb_buf, 1 << 20, &buf, &len);
		if (r < 0)
			buf = NULL;
		if (r == 0 && !same_file(o, f->path, buf, len, 0600)) {
			char *dir = ops_dirname(f->path);
			r = ops_mkdir_p(o, dir, 0700);
			if (r == 0)
				r = ops_write_atomic_nodirsync(o, f->path, buf, len, 0600);
			if (r == 0)
				dirset_add(&written, f->path);
			/* owned by the service's user when this machine has it; else root's
			 * 0600, which systemd still reads (PID 1 reads EnvironmentFile=) */
			if (r == 0 && f->owner)
				o->chown_user(o, f->path, f->owner);
			free(dir);
		}
		if (buf)
			memset(buf, 0, len); /* do not leave secret values in freed memory */
		free(buf);
		if (r < 0)
			op_fail(c, 3, "materialise %s: %s", f->path, ops_strerror(r));
		sbuf_free(&src);
	}
	free(kept_dir);
	if (r == 0) {
		const char *bad = "?";
		r = dirset_sync(&written, o, &bad);
		if (r < 0)
			op_fail(c, 3, "materialise: syncing %s: %s", bad, ops_strerror(r));
	}
	dirset_free(&written);
	if (have_old && r == 0)
		r = remove_dropped(c, old.files, old.nfiles, m.files, m.nfiles);
	if (have_old && r == 0)
		r = remove_dropped(c, old.secret_files, old.nsecret, m.secret_files, m.nsecret);
	c->res->nfiles = m.nfiles + m.nsecret;
	c->res->npaths = m.npaths;
	free(files);
	manifest_free(&m);
	if (have_old)
		manifest_free(&old);
	sbuf_free(&err);
	return r < 0 ? 3 : 0;
}

/* ---- deploy ----------------------------------------------------------------------- */

static const char *plan_pkg_path(void *arg, const char *module)
{
	struct build_plan *bp = arg;
	long i = build_plan_find(bp, module);
	return i >= 0 ? bp->items[i].path : "/nonexistent";
}

/* The next generation number: past every one present and the current one. */
static long next_generation(struct op_ctx *c, long current)
{
	long *gens;
	size_t n;
	long next = current + 1;
	if (list_generations(c->tops, dep_root(c), c->stack, &gens, &n) == 0) {
		if (n && gens[n - 1] >= next)
			next = gens[n - 1] + 1;
		free(gens);
	}
	return next;
}

/*
 * Resolves every secret of the stack on this machine: from_env from the
 * environment punix runs in, from_file from the file (one trailing newline
 * stripped). Every one that cannot be had is listed in one [E11] error.
 * The values stay in memory: they reach only the sidecar files.
 */
static int resolve_secrets(struct op_ctx *c, const struct stack_desc *st)
{
	struct sbuf missing = SBUF_INIT;
	size_t nmissing = 0;
	VEC(struct secret_value) v = {0};
	for (size_t i = 0; i < st->nservices; i++) {
		const struct service_desc *s = &st->services[i];
		for (size_t k = 0; k < s->nenv; k++) {
			const struct env_desc *e = &s->env[k];
			if (e->kind == ENV_LITERAL)
				continue;
			char *value = NULL;
			size_t len = 0;
			const char *why = NULL;
			char errbuf[128];
			if (e->kind == ENV_FROM_ENV) {
				const char *x = getenv(e->value);
				if (x) {
					value = xstrdup(x);
					len = strlen(x);
				} else {
					why = "not set";
				}
			} else {
				int r = c->e->local->read_file(c->e->local, e->value, 1 << 16, &value, &len);
				if (r < 0) {
					snprintf(errbuf, sizeof(errbuf), "%s", r == -EFBIG ? "larger than 64 KiB" : strerror(-r));
					why = errbuf;
					value = NULL;
				} else if (len && value[len - 1] == '\n') {
					value[--len] = '\0';
				}
			}
			/* one line of the sidecar: no NUL, line break or other control
			 * character but tab, valid UTF-8, no trailing backslash; why names
			 * the byte class, never the value */
			if (value && !systemd_value_ok(value, len, &why)) {
				memset(value, 0, len); /* do not leave secret values in freed memory */
				free(value);
				value = NULL;
			}
			if (!value) {
				sbuf_printf(&missing, "\n  %s of service '%s' (%s %s): %s", e->key, s->name,
					    e->kind == ENV_FROM_ENV ? "from_env" : "from_file", e->value, why);
				nmissing++;
				continue;
			}
			struct secret_value sv = {s->name, e->key, value};
			VEC_PUSH(&v, sv);
		}
	}
	c->secrets = v.v;
	c->nsecrets = v.n;
	int r = 0;
	if (nmissing)
		r = op_fail(c, 1, "[E11] stack '%s': %zu secret(s) cannot be resolved:%s", st->name, nmissing,
			    missing.sb_buf);
	sbuf_free(&missing);
	return r;
}

static void free_secrets(struct op_ctx *c)
{
	for (size_t i = 0; i < c->nsecrets; i++) {
		/* do not leave secret values in freed memory */
		char *val = (char *)c->secrets[i].value;
		memset(val, 0, strlen(val));
		free(val);
	}
	free(c->secrets);
	c->secrets = NULL;
	c->nsecrets = 0;
}

static int deploy_plan(struct op_ctx *c)
{
	const struct stack_desc *st = c->in->stack;
	struct sbuf err = SBUF_INIT;
	long current = current_generation(c->tops, dep_root(c), c->stack, &err);
	if (current < 0) {
		op_fail(c, 1, "%s", err.sb_buf);
		sbuf_free(&err);
		return 1;
	}
	/* What to build: the stack's storeModules and its services' packages. */
	VEC(const char *) roots = {0};
	for (size_t i = 0; i < st->nstore_modules; i++)
		VEC_PUSH(&roots, st->store_modules[i]);
	for (size_t i = 0; i < st->nservices; i++)
		VEC_PUSH(&roots, st->services[i].package);
	struct build_located *loc = NULL;
	size_t nloc = 0;
	const char *bad = NULL;
	int r = build_plan_make(&c->bp, c->e->store, c->in->pkgs, c->in->npkgs, c->in->tree_root, roots.v, roots.n,
				&loc, &nloc, &bad, &err);
	VEC_FREE(&roots);
	if (r == 1) {
		op_fail(c, 1, "%s:%u:%u: [E6] %s", loc[0].loc.file, loc[0].loc.line, loc[0].loc.col, loc[0].message);
		build_located_free(loc, nloc);
		sbuf_free(&err);
		return 1;
	}
	build_located_free(loc, nloc);
	if (r < 0) {
		op_fail(c, r == -ENOENT ? 1 : 3, "%s", r == -ENOENT ? "a service names an unknown package" : err.sb_buf);
		sbuf_free(&err);
		return c->res->exit;
	}
	c->have_bp = true;
	if (resolve_secrets(c, st) != 0) {
		sbuf_free(&err);
		return 1;
	}
	if (backend_render(st, plan_str(c, "unit_dir"), plan_pkg_path, &c->bp, c->secrets, c->nsecrets, &c->rf,
			   &err) < 0) {
		op_fail(c, 1, "%s", err.sb_buf);
		sbuf_free(&err);
		return 1;
	}
	struct ownership_scope own = {
		.tops = c->tops,
		.dep = dep_root(c),
		.store_root = c->e->store->root,
		.state_dir = target_is_here(c) ? c->e->state_dir : NULL,
		.stack = c->stack,
		.adopt = c->in->adopt,
		.nadopt = c->in->nadopt,
	};
	if (ownership_check(&own, &c->rf, &err) < 0) {
		op_fail(c, err.sb_len && err.sb_buf[0] == '[' ? 1 : 3, "%s", err.sb_buf);
		sbuf_free(&err);
		return c->res->exit;
	}
	json_t *adopt = json_array();
	for (size_t i = 0; i < c->in->nadopt; i++)
		json_array_append_new(adopt, json_string(c->in->adopt[i]));
	json_object_set_new(c->plan, "adopt", adopt);
	sbuf_free(&err);

	long gen = next_generation(c, current);
	json_object_set_new(c->plan, "generation", json_integer(gen));
	json_object_set_new(c->plan, "previous", json_integer(current));
	char iso[32];
	now_iso(iso);
	json_object_set_new(c->plan, "deployed_at", json_string(iso));
	char src[65];
	sha256_hex(st->source, st->source_len, src);
	json_object_set_new(c->plan, "source_hash", json_string(src));
	json_t *pins = json_array();
	for (size_t i = 0; i < c->bp.n; i++)
		json_array_append_new(pins, json_string(c->bp.items[i].path));
	json_object_set_new(c->plan, "store_paths", pins);
	json_t *files = json_array(), *secret = json_array();
	for (size_t i = 0; i < c->rf.n; i++) {
		const struct rendered_file *f = &c->rf.files[i];
		if (f->secret) {
			/* by path only: a secret's content is never hashed or recorded */
			json_t *e = json_pack("{s:s, s:s}", "path", f->path, "mode", "0600");
			if (f->owner)
				json_object_set_new(e, "owner", json_string(f->owner));
			json_array_append_new(secret, e);
			continue;
		}
		char hex[65], mode[8];
		sha256_hex(f->content, f->len, hex);
		snprintf(mode, sizeof(mode), "%04o", f->mode);
		json_array_append_new(files, json_pack("{s:s, s:s, s:s}", "path", f->path, "sha256", hex, "mode", mode));
	}
	json_object_set_new(c->plan, "config_files", files);
	json_object_set_new(c->plan, "secret_files", secret);
	json_t *svcs = json_array();
	for (size_t i = 0; i < st->nservices; i++) {
		const struct service_desc *s = &st->services[i];
		json_array_append_new(svcs, json_pack("{s:s, s:s, s:s, s:s}", "name", s->name, "unit", "", "package",
						      plan_pkg_path(&c->bp, s->package), "binary", s->binary));
		struct sbuf unit = SBUF_INIT;
		sbuf_printf(&unit, "%s.service", s->name);
		json_object_set_new(json_array_get(svcs, i), "unit", json_string(unit.sb_buf));
		sbuf_free(&unit);
		json_t *env = json_array();
		static const char *const kinds[] = {"literal", "from_env", "from_file"};
		for (size_t k = 0; k < s->nenv; k++) {
			json_t *e = json_pack("{s:s, s:s}", "key", s->env[k].key, "kind", kinds[s->env[k].kind]);
			/* a literal by value; a secret by the name of where it comes from */
			json_object_set_new(e, s->env[k].kind == ENV_LITERAL ? "value" : "from",
					    json_string(s->env[k].value));
			json_array_append_new(env, e);
		}
		json_object_set_new(json_array_get(svcs, i), "environment", env);
		json_object_set_new(json_array_get(svcs, i), "timer", json_boolean(s->has_timer));
	}
	json_object_set_new(c->plan, "services", svcs);
	c->res->generation = gen;
	c->res->previous = current;
	return 0;
}

static int deploy_build(struct op_ctx *c)
{
	build_plan_run(&c->bp, c->e->store, false, NULL, NULL, NULL);
	for (size_t i = 0; i < c->bp.n; i++) {
		const struct build_item *it = &c->bp.items[i];
		if (it->state == BUILD_FAILED)
			return op_fail(c, 3, "building %s failed: %s (log: %s)", it->pkg->module,
				       sbuf_str(&it->result.error), it->result.log_path);
		if (it->state == BUILD_BLOCKED)
			return op_fail(c, 3, "building %s failed: its dependency %s failed", it->pkg->module,
				       it->blocked_by);
	}
	return 0;
}

/*
 * Copies a store path and then its registration to a rebased target, unless
 * both are there. The tree lands under a temporary name and is renamed into
 * place, and the registration is written last, as in the store itself.
 */
static int push_path(struct op_ctx *c, const char *path)
{
	struct punix_ops *o = c->tops, *local = c->e->local;
	if (target_is_here(c))
		return 0; /* the local machine is the target: the path is already there */
	struct sbuf meta = SBUF_INIT, tmp = SBUF_INIT;
	sbuf_printf(&meta, "%s/%s.json", c->e->store->meta_dir, store_path_name(path));
	sbuf_printf(&tmp, "%s.push-%ld", path, (long)getpid());
	struct ops_stat st;
	int r = 0;
	if (o->stat(o, meta.sb_buf, 0, &st) == 0 && o->stat(o, path, 0, &st) == 0)
		goto out;
	char *parent = ops_dirname(path), *mparent = ops_dirname(meta.sb_buf);
	r = ops_mkdir_p(o, parent, 0755);
	if (r == 0)
		r = ops_mkdir_p(o, mparent, 0755);
	free(parent);
	free(mparent);
	if (r == 0)
		r = ops_remove_tree(o, tmp.sb_buf);
	if (r == 0)
		r = ops_remove_tree(o, path);
	if (r == 0)
		r = ops_copy_tree_to(local, path, o, tmp.sb_buf);
	if (r == 0)
		r = ops_fsync_tree(o, tmp.sb_buf);
	if (r == 0)
		r = o->rename(o, tmp.sb_buf, path);
	/* the path durably in place before the registration that makes it valid */
	if (r == 0) {
		char *store_dir = ops_dirname(path);
		r = o->fsync_path(o, store_dir);
		free(store_dir);
	}
	char *buf = NULL;
	size_t len;
	if (r == 0)
		r = local->read_file(local, meta.sb_buf, 1 << 20, &buf, &len);
	if (r == 0)
		r = ops_write_atomic(o, meta.sb_buf, buf, len, 0644);
	free(buf);
	if (r < 0)
		ops_remove_tree(o, tmp.sb_buf);
out:
	sbuf_free(&meta);
	sbuf_free(&tmp);
	return r;
}

static int write_manifest(struct op_ctx *c, long gen)
{
	json_t *m = json_object();
	json_object_set_new(m, "format", json_integer(1));
	json_object_set_new(m, "generation", json_integer(gen));
	json_object_set_new(m, "stack", json_string(c->stack));
	json_object_set_new(m, "backend", json_string("systemd"));
	const char *keys[] = {"deployed_at", "source_hash", "store_paths", "services", "config_files", "secret_files"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		json_object_set(m, keys[i], json_object_get(c->plan, keys[i]));
	char *text = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(m);
	char *path = gen_manifest_path(dep_root(c), c->stack, gen);
	size_t len = strlen(text);
	text[len] = '\n';
	int r = ops_write_atomic(c->tops, path, text, len + 1, 0644);
	free(text);
	free(path);
	return r;
}

/* Pushes pins, writes the generation's files, then its manifest (last). */
static int deploy_stage(struct op_ctx *c)
{
	struct punix_ops *o = c->tops;
	long gen = plan_long(c, "generation");
	char *files = gen_files_dir(dep_root(c), c->stack, gen);
	json_t *pins = json_object_get(c->plan, "store_paths");
	int r = 0;
	if (plan_pins_in_store(c)) {
		free(files);
		return c->res->exit;
	}
	if (!target_is_here(c) && json_array_size(pins)) {
		/* the target's copy of the store is a store: its marker first */
		struct store ts;
		struct sbuf err = SBUF_INIT;
		r = store_open(&ts, o, c->e->store->root, NULL, NULL, STORE_CREATE, &err);
		if (r < 0)
			op_fail(c, 3, "the target's store: %s", err.sb_buf);
		else
			store_close(&ts);
		sbuf_free(&err);
	}
	for (size_t i = 0; i < json_array_size(pins) && r == 0; i++) {
		r = push_path(c, json_string_value(json_array_get(pins, i)));
		if (r < 0)
			op_fail(c, 3, "pushing %s to the target: %s", json_string_value(json_array_get(pins, i)),
				strerror(-r));
	}
	char *sdir = stack_dir(dep_root(c), c->stack);
	if (r == 0)
		r = ops_mkdir_p(o, sdir, 0755);
	free(sdir);
	json_t *adopt = json_object_get(c->plan, "adopt");
	VEC(const char *) keep = {0};
	for (size_t i = 0; i < json_array_size(adopt); i++)
		if (json_string_value(json_array_get(adopt, i)))
			VEC_PUSH(&keep, json_string_value(json_array_get(adopt, i)));
	if (r == 0) {
		struct sbuf err = SBUF_INIT;
		r = ownership_keep_originals(o, dep_root(c), c->stack, keep.v, keep.n, &err);
		if (r < 0)
			op_fail(c, 3, "%s", err.sb_buf);
		sbuf_free(&err);
	}
	VEC_FREE(&keep);
	if (r == 0)
		r = ops_remove_tree(o, files);
	struct dirset written = {0};
	for (size_t i = 0; i < c->rf.n && r == 0; i++) {
		if (c->rf.files[i].secret)
			continue;
		struct sbuf dst = SBUF_INIT;
		sbuf_printf(&dst, "%s%s", files, c->rf.files[i].path);
		char *dir = ops_dirname(dst.sb_buf);
		r = ops_mkdir_p(o, dir, 0755);
		if (r == 0)
			r = ops_write_atomic_nodirsync(o, dst.sb_buf, c->rf.files[i].content, c->rf.files[i].len,
						       c->rf.files[i].mode);
		if (r == 0)
			dirset_add(&written, dst.sb_buf);
		free(dir);
		sbuf_free(&dst);
	}
	/* secret files, kept apart: a 0700 directory, 0600 files */
	char *secrets = gen_secrets_dir(dep_root(c), c->stack, gen);
	if (r == 0)
		r = ops_remove_tree(o, secrets);
	for (size_t i = 0; i < c->rf.n && r == 0; i++) {
		if (!c->rf.files[i].secret)
			continue;
		struct sbuf dst = SBUF_INIT;
		sbuf_printf(&dst, "%s%s", secrets, c->rf.files[i].path);
		char *dir = ops_dirname(dst.sb_buf);
		r = ops_mkdir_p(o, dir, 0700);
		if (r == 0)
			r = o->chmod(o, secrets, 0700);
		if (r == 0)
			r = ops_write_atomic_nodirsync(o, dst.sb_buf, c->rf.files[i].content, c->rf.files[i].len, 0600);
		if (r == 0)
			dirset_add(&written, dst.sb_buf);
		free(dir);
		sbuf_free(&dst);
	}
	free(secrets);
	/* every file durable before the manifest that names them */
	const char *bad = NULL;
	if (r == 0)
		r = dirset_sync(&written, o, &bad);
	if (r < 0 && bad && !c->res->error.sb_len)
		op_fail(c, 3, "staging gen-%03ld: syncing %s: %s", gen, bad, ops_strerror(r));
	dirset_free(&written);
	if (r == 0)
		r = write_manifest(c, gen);
	if (r < 0 && !c->res->error.sb_len)
		op_fail(c, 3, "staging gen-%03ld in %s/%s: %s", gen, dep_root(c), c->stack, ops_strerror(r));
	free(files);
	return r < 0 ? 3 : 0;
}

/* Before the flip nothing points at the staged generation: remove it. */
static int deploy_unstage(struct op_ctx *c)
{
	long gen = plan_long(c, "generation");
	if (gen <= 0)
		return 0;
	struct sbuf err = SBUF_INIT;
	long cur = current_generation(c->tops, dep_root(c), c->stack, &err);
	sbuf_free(&err);
	if (cur == gen)
		return 0; /* cannot happen before the flip; never remove the live one */
	char *m = gen_manifest_path(dep_root(c), c->stack, gen), *f = gen_files_dir(dep_root(c), c->stack, gen);
	char *sec = gen_secrets_dir(dep_root(c), c->stack, gen);
	int r = c->tops->unlink(c->tops, m);
	if (r == -ENOENT)
		r = 0;
	if (r == 0)
		r = ops_remove_tree(c->tops, f);
	if (r == 0)
		r = ops_remove_tree(c->tops, sec);
	free(m);
	free(f);
	free(sec);
	return r < 0 ? 3 : 0;
}

/* ---- activation ---------------------------------------------------------------------- */

/*
 * The units a generation runs, from its services (never from config-file
 * paths): <name>.service, or <name>.timer for a timer-activated service
 * (restarting the timer re-arms it; restarting the service would run the
 * job now).
 */
static void gen_units(json_t *manifest, const char *unit_dir, json_t *out)
{
	json_t *svcs = json_object_get(manifest, "services");
	for (size_t i = 0; i < json_array_size(svcs); i++) {
		json_t *s = json_array_get(svcs, i);
		const char *name = json_string_value(json_object_get(s, "name"));
		bool timer = json_is_true(json_object_get(s, "timer"));
		if (!name)
			continue;
		struct sbuf unit = SBUF_INIT, path = SBUF_INIT;
		sbuf_printf(&unit, "%s.%s", name, timer ? "timer" : "service");
		sbuf_printf(&path, "%s/%s", unit_dir, unit.sb_buf);
		json_object_set_new(out, unit.sb_buf, json_pack("{s:s, s:s}", "path", path.sb_buf, "service", name));
		sbuf_free(&unit);
		sbuf_free(&path);
	}
}

/* The sha256 a manifest records for path, or NULL. */
static const char *file_sha(json_t *manifest, const char *path)
{
	json_t *files = json_object_get(manifest, "config_files");
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i);
		if (!strcmp(json_string_value(json_object_get(f, "path")), path))
			return json_string_value(json_object_get(f, "sha256"));
	}
	return NULL;
}

/* Did a service's secrets change between two generations' kept copies? */
static bool sidecar_changed(struct op_ctx *c, long a, long b, const char *service)
{
	const char *dep = dep_root(c);
	char *da = gen_secrets_dir(dep, c->stack, a), *db = gen_secrets_dir(dep, c->stack, b);
	char *side = secrets_sidecar_path(c->stack, service);
	struct sbuf pa = SBUF_INIT, pb = SBUF_INIT;
	sbuf_printf(&pa, "%s%s", da, side);
	sbuf_printf(&pb, "%s%s", db, side);
	char *x = NULL, *y = NULL;
	size_t lx = 0, ly = 0;
	int rx = c->tops->read_file(c->tops, pa.sb_buf, 1 << 20, &x, &lx);
	int ry = c->tops->read_file(c->tops, pb.sb_buf, 1 << 20, &y, &ly);
	bool changed = (rx == 0) != (ry == 0) || (rx == 0 && (lx != ly || memcmp(x, y, lx) != 0));
	if (x)
		memset(x, 0, lx);
	if (y)
		memset(y, 0, ly);
	free(x);
	free(y);
	sbuf_free(&pa);
	sbuf_free(&pb);
	free(da);
	free(db);
	free(side);
	return changed;
}

/* Runs systemctl ARGS... on the target; first line of its output in why. */
static int systemctl(struct op_ctx *c, bool user, const char *a1, const char *a2, char *why, size_t nwhy)
{
	static const char *const candidates[] = {"/usr/bin/systemctl", "/bin/systemctl"};
	const char *bin = candidates[0];
	struct ops_stat st;
	for (size_t i = 0; i < 2; i++)
		if (c->tops->stat(c->tops, candidates[i], 1, &st) == 0) {
			bin = candidates[i];
			break;
		}
	const char *argv[6];
	size_t k = 0;
	argv[k++] = bin;
	if (user)
		argv[k++] = "--user";
	argv[k++] = a1;
	if (a2)
		argv[k++] = a2;
	argv[k] = NULL;
	struct sbuf log = SBUF_INIT;
	sbuf_printf(&log, "%s/activate-%ld.log", c->e->state_dir, (long)getpid());
	c->e->local->unlink(c->e->local, log.sb_buf);
	const char *env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
	struct ops_cmd cmd = {argv, env, NULL, log.sb_buf, 0};
	int status = 0;
	int r = c->tops->run(c->tops, &cmd, &status);
	why[0] = '\0';
	char *out = NULL;
	size_t len;
	if (c->e->local->read_file(c->e->local, log.sb_buf, 1 << 16, &out, &len) == 0) {
		snprintf(why, nwhy, "%.*s", (int)strcspn(out, "\n"), out);
		free(out);
	}
	c->e->local->unlink(c->e->local, log.sb_buf);
	sbuf_free(&log);
	if (r < 0) {
		if (!why[0])
			snprintf(why, nwhy, "cannot run %s %s: %s", bin, a1, strerror(-r));
		return r;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (!why[0])
			snprintf(why, nwhy, "systemctl %s exited with status %d", a1,
				 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		return -1;
	}
	return 0;
}

static void unit_failed(struct op_ctx *c, const char *unit, const char *why)
{
	sbuf_printf(&c->res->activation, "\u26a0 %s did not (re)start: %s\n", unit, why);
	sbuf_printf(&c->res->failed, "%s%s", c->res->failed_units ? ", " : "", unit);
	c->res->failed_units++;
}

/*
 * After the flip: reload the manager, restart the units whose unit file or
 * secrets changed, stop those the new generation no longer has, and with
 * enable, enable them for boot. Every failure becomes a reported result,
 * never a failed op: the flip happened and is not undone.
 */
static int step_activate(struct op_ctx *c)
{
	if (!json_is_true(json_object_get(c->plan, "activate")))
		return 0;
	sbuf_reset(&c->res->activation);
	sbuf_reset(&c->res->failed);
	c->res->failed_units = 0;
	const char *troot = plan_str(c, "transport_root");
	if (troot && *troot) {
		sbuf_puts(&c->res->activation, "activation skipped: the target is a rebased tree, with no systemd\n");
		return 0;
	}
	const char *dep = dep_root(c), *unit_dir = plan_str(c, "unit_dir");
	bool user = strstr(unit_dir, "/systemd/user") != NULL, enable = json_is_true(json_object_get(c->plan, "enable"));
	long gen = plan_long(c, "generation"), prev = plan_long(c, "previous");
	struct manifest m, old = {0};
	struct sbuf err = SBUF_INIT;
	int mr = manifest_read(c->tops, dep, c->stack, gen, &m, &err);
	if (mr < 0) {
		sbuf_printf(&c->res->activation, "activation skipped: %s\n", manifest_why(c, gen, mr, &err));
		sbuf_free(&err);
		return 0;
	}
	bool have_old = prev > 0 && prev != gen && manifest_read(c->tops, dep, c->stack, prev, &old, &err) == 0;
	json_t *units = json_object(), *old_units = json_object();
	gen_units(m.root, unit_dir, units);
	if (have_old)
		gen_units(old.root, unit_dir, old_units);
	char why[512];
	if (systemctl(c, user, "daemon-reload", NULL, why, sizeof(why)) < 0) {
		/* nothing can start without the new unit files */
		const char *u;
		json_t *v;
		json_object_foreach(units, u, v)
			unit_failed(c, u, why);
		goto out;
	}
	const char *u;
	json_t *v;
	json_object_foreach(old_units, u, v)
	{
		if (json_object_get(units, u))
			continue;
		if (systemctl(c, user, "stop", u, why, sizeof(why)) < 0)
			sbuf_printf(&c->res->activation, "\u26a0 %s could not be stopped: %s\n", u, why);
		else
			sbuf_printf(&c->res->activation, "\u2713 stopped %s (no longer in the stack)\n", u);
		systemctl(c, user, "disable", u, why, sizeof(why));
	}
	json_object_foreach(units, u, v)
	{
		const char *path = json_string_value(json_object_get(v, "path"));
		const char *service = json_string_value(json_object_get(v, "service"));
		const char *now = file_sha(m.root, path), *before = have_old ? file_sha(old.root, path) : NULL;
		bool changed = !have_old || !before || !now || strcmp(now, before) != 0 ||
			       sidecar_changed(c, gen, prev, service);
		if (enable && systemctl(c, user, "enable", u, why, sizeof(why)) < 0) {
			unit_failed(c, u, why);
			continue;
		}
		if (!changed) {
			sbuf_printf(&c->res->activation, "\u00b7 %s unchanged, not restarted\n", u);
			continue;
		}
		if (systemctl(c, user, "restart", u, why, sizeof(why)) < 0) {
			unit_failed(c, u, why);
			continue;
		}
		sbuf_printf(&c->res->activation, "\u2713 (re)started %s (%s)\n", u,
			    enable ? "enabled for boot" : "not enabled for boot");
	}
out:
	json_decref(units);
	json_decref(old_units);
	manifest_free(&m);
	if (have_old)
		manifest_free(&old);
	sbuf_free(&err);
	return 0;
}

/* ---- rollback and set-current ------------------------------------------------------ */

/* Fills the plan from the manifest of the generation to flip to. */
static int plan_from_manifest(struct op_ctx *c, long gen, long current)
{
	struct manifest m;
	struct sbuf err = SBUF_INIT;
	int r = manifest_read(c->tops, dep_root(c), c->stack, gen, &m, &err);
	if (r < 0) {
		char *path = gen_manifest_path(dep_root(c), c->stack, gen);
		if (err.sb_len)
			op_fail(c, 1, "[E12] %s", err.sb_buf);
		else
			op_fail(c, 1, "[E12] stack '%s': gen-%03ld has no manifest (%s: %s)", c->stack, gen, path,
				strerror(-r));
		free(path);
		sbuf_free(&err);
		return 1;
	}
	sbuf_free(&err);
	json_object_set_new(c->plan, "generation", json_integer(gen));
	json_object_set_new(c->plan, "previous", json_integer(current));
	json_object_set(c->plan, "store_paths", json_object_get(m.root, "store_paths"));
	json_object_set(c->plan, "config_files", json_object_get(m.root, "config_files"));
	json_t *secret = json_object_get(m.root, "secret_files");
	json_object_set_new(c->plan, "secret_files", secret ? json_incref(secret) : json_array());
	c->res->generation = gen;
	c->res->previous = current;
	manifest_free(&m);
	return 0;
}

static void list_gens_text(struct op_ctx *c, struct sbuf *out)
{
	long *gens;
	size_t n;
	if (list_generations(c->tops, dep_root(c), c->stack, &gens, &n) < 0 || n == 0) {
		sbuf_puts(out, "none");
		return;
	}
	for (size_t i = 0; i < n; i++)
		sbuf_printf(out, "%sgen-%03ld", i ? ", " : "", gens[i]);
	free(gens);
}

static int rollback_plan(struct op_ctx *c)
{
	struct sbuf err = SBUF_INIT;
	long current = current_generation(c->tops, dep_root(c), c->stack, &err);
	if (current < 0) {
		op_fail(c, 1, "%s", err.sb_buf);
		sbuf_free(&err);
		return 1;
	}
	sbuf_free(&err);
	if (current == 0)
		return op_fail(c, 1, "[E12] stack '%s' has no current generation on this target", c->stack);
	long *gens, prev = 0;
	size_t n;
	if (list_generations(c->tops, dep_root(c), c->stack, &gens, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			if (gens[i] < current)
				prev = gens[i];
		free(gens);
	}
	if (prev == 0)
		return op_fail(c, 1, "[E12] stack '%s': no previous generation (current is gen-%03ld)", c->stack,
			       current);
	return plan_from_manifest(c, prev, current);
}

static int set_current_plan(struct op_ctx *c)
{
	struct sbuf err = SBUF_INIT;
	long current = current_generation(c->tops, dep_root(c), c->stack, &err);
	if (current < 0) {
		op_fail(c, 1, "%s", err.sb_buf);
		sbuf_free(&err);
		return 1;
	}
	char *m = gen_manifest_path(dep_root(c), c->stack, c->want);
	struct ops_stat st;
	bool exists = c->want > 0 && c->tops->stat(c->tops, m, 0, &st) == 0;
	free(m);
	if (!exists) {
		struct sbuf have = SBUF_INIT;
		list_gens_text(c, &have);
		op_fail(c, 1, "[E12] stack '%s' has no generation %ld (it has: %s)", c->stack, c->want, have.sb_buf);
		sbuf_free(&have);
		sbuf_free(&err);
		return 1;
	}
	sbuf_free(&err);
	return plan_from_manifest(c, c->want, current);
}

/* ---- the tables ---------------------------------------------------------------------- */

static const struct step deploy_steps[] = {
	{"plan", deploy_plan, NULL},     {"build", deploy_build, NULL},		{"stage", deploy_stage, deploy_unstage},
	{"verify", step_verify, NULL},   {"flip", step_flip, NULL},		{"materialise", step_materialise, NULL},
	{"activate", step_activate, NULL},
};

static const struct step rollback_steps[] = {
	{"plan", rollback_plan, NULL},
	{"verify", step_verify, NULL},
	{"flip", step_flip, NULL},
	{"materialise", step_materialise, NULL},
	{"activate", step_activate, NULL},
};

static const struct step set_current_steps[] = {
	{"plan", set_current_plan, NULL},
	{"verify", step_verify, NULL},
	{"flip", step_flip, NULL},
	{"materialise", step_materialise, NULL},
	{"activate", step_activate, NULL},
};

#define NSTEPS(t) (sizeof(t) / sizeof((t)[0]))

/* The commit point of each is its flip. */
static const struct op_kind kinds[] = {
	{"deploy", deploy_steps, NSTEPS(deploy_steps), 4},
	{"rollback", rollback_steps, NSTEPS(rollback_steps), 2},
	{"set-current", set_current_steps, NSTEPS(set_current_steps), 2},
};

static const struct op_kind *find_kind(const char *name)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	if (strcmp(gc_kind.name, name) == 0)
		return &gc_kind;
	if (strcmp(prune_kind.name, name) == 0)
		return &prune_kind;
	return NULL;
}

/* ---- the runner ------------------------------------------------------------------------ */

static int journal_step(struct op_ctx *c, size_t i, enum journal_step_state s)
{
	struct journal_err je;
	if (fault_journal_tick() < 0)
		return op_fail(c, 3, "journal %s: %s (injected)", c->e->state_dir, strerror(EIO)), -EIO;
	int r = journal_step_write(c->e->journal, c->id, (uint32_t)i, c->kind->steps[i].name, s, NULL, &je);
	if (r < 0)
		op_fail(c, 3, "%s", je.msg);
	return r;
}

static int journal_finish(struct op_ctx *c, enum journal_op_state s)
{
	struct journal_err je;
	if (fault_journal_tick() < 0) {
		if (!c->res->exit)
			op_fail(c, 3, "journal %s: %s (injected)", c->e->state_dir, strerror(EIO));
		return -EIO;
	}
	int r = journal_op_finish(c->e->journal, c->id, s, &je);
	if (r < 0 && !c->res->exit)
		op_fail(c, 3, "%s", je.msg);
	return r;
}

/*
 * Undoes steps [0, upto] that ran or may have run, newest first. Returns
 * -1 if an undo failed: the op must then stay running, for recovery to
 * undo it again (every undo is safe to repeat).
 */
static int undo_from(struct op_ctx *c, long upto)
{
	int rc = 0;
	for (long i = upto; i >= 0; i--) {
		const struct step *s = &c->kind->steps[i];
		if (s->undo && s->undo(c) != 0) {
			rc = -1;
			continue;
		}
		journal_step(c, (size_t)i, JOURNAL_STEP_UNDONE);
	}
	return rc;
}

static bool pid_alive(const char *s)
{
	long pid = strtol(s, NULL, 10);
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

struct sweep {
	const char *prefix; /* entries named <prefix>... are temporaries */
	bool by_pid;        /* <prefix><pid>: only those whose process is gone */
	int removed;
};

static int sweep_child(struct punix_ops *o, const char *child, const char *name, void *arg)
{
	struct sweep *sw = arg;
	size_t n = strlen(sw->prefix);
	if (strncmp(name, sw->prefix, n) != 0 || (sw->by_pid && pid_alive(name + n)))
		return 0;
	if (ops_remove_tree(o, child) == 0)
		sw->removed++;
	return 0;
}

/*
 * Removes <dir>/<prefix>... entries: all of them (the caller holds the
 * lock of everything that writes them), or with by_pid only
 * <prefix><pid> ones whose process is gone.
 */
static void sweep_dir(struct punix_ops *o, const char *dir, const char *prefix, bool by_pid)
{
	struct sweep sw = {prefix, by_pid, 0};
	ops_each_child(o, dir, sweep_child, &sw);
}

/* The temporary files an interrupted write of path may have left (ops_tmp_name). */
static void sweep_beside(struct punix_ops *o, const char *path)
{
	char *dir = ops_dirname(path);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct sbuf prefix = SBUF_INIT;
	sbuf_printf(&prefix, OPS_TMP_PREFIX_FMT, base);
	sweep_dir(o, dir, prefix.sb_buf, false);
	sbuf_free(&prefix);
	free(dir);
}

/*
 * What an op interrupted anywhere may leave on the target besides what its
 * undo or redo handles: temporary files of durable writes, a temporary
 * link for the flip, half-pushed store paths. Recovery holds the stack's
 * lock; temporaries of processes still alive are left alone.
 */
static void sweep_temps(struct op_ctx *c)
{
	struct punix_ops *o = c->tops;
	char *dir = stack_dir(dep_root(c), c->stack);
	sweep_dir(o, dir, ".current.tmp-", false);
	char *m = gen_manifest_path(dep_root(c), c->stack, plan_long(c, "generation"));
	sweep_beside(o, m);
	free(m);
	free(dir);
	const char *lists[] = {"config_files", "secret_files"};
	for (size_t l = 0; l < 2; l++) {
		json_t *files = json_object_get(c->plan, lists[l]);
		for (size_t i = 0; i < json_array_size(files); i++)
			sweep_beside(o, json_string_value(json_object_get(json_array_get(files, i), "path")));
	}
	json_t *pins = json_object_get(c->plan, "store_paths");
	const char *store_root = plan_str(c, "store_root");
	if (store_root && *store_root && !target_is_here(c))
		store_sweep_creation(o, store_root);
	for (size_t i = 0; i < json_array_size(pins) && store_root; i++) {
		const char *p = json_string_value(json_array_get(pins, i));
		if (!p || !store_path_in(store_root, p))
			continue; /* a corrupt plan: nothing is swept because of it */
		struct sbuf push = SBUF_INIT, meta = SBUF_INIT;
		sbuf_printf(&push, "%s.push-", store_path_name(p));
		sweep_dir(o, store_root, push.sb_buf, true);
		sbuf_printf(&meta, "%s/.meta/%s.json", store_root, store_path_name(p));
		sweep_beside(o, meta.sb_buf);
		sbuf_free(&push);
		sbuf_free(&meta);
	}
}

/*
 * Runs steps [from, n) on a libuv loop. Each step's work runs off the loop
 * thread (uv_queue_work); the journal records around it are written on the
 * loop thread, one at a time, which is what LMDB's single writer wants and
 * what lets a fleet run many ops on one loop. A failure before the commit
 * point undoes what ran and aborts the op; after it, the op stays running
 * for recovery to finish.
 */
struct step_req {
	uv_work_t work;
	struct op_ctx *c;
	size_t i;
	int rc;
};

static void step_work(uv_work_t *w)
{
	struct step_req *q = w->data;
	q->rc = q->c->kind->steps[q->i].run(q->c);
}

static void step_start(uv_loop_t *loop, struct step_req *q);

static void step_after(uv_work_t *w, int status)
{
	struct step_req *q = w->data;
	struct op_ctx *c = q->c;
	const struct step *s = &c->kind->steps[q->i];
	int r = status < 0 ? op_fail(c, 3, "step %s could not run: %s", s->name, uv_strerror(status)) : q->rc;
	if (r == 0 && q->i == 0) {
		/* the plan is what recovery works from: record it before going on */
		char *text = json_dumps(c->plan, JSON_COMPACT | JSON_SORT_KEYS);
		struct journal_err je;
		if (journal_op_set_plan(c->e->journal, c->id, text, &je) < 0)
			r = op_fail(c, 3, "%s", je.msg);
		free(text);
	}
	if (r != 0) {
		if (q->i < c->kind->commit) {
			if (undo_from(c, (long)q->i) == 0)
				journal_finish(c, JOURNAL_OP_ABORTED);
			else
				sbuf_printf(&c->res->error, "\n(undoing it failed too: run 'punix recover')");
		} else {
			sbuf_printf(&c->res->error, "\n(the flip happened: 'punix recover' finishes the op)");
		}
		if (!c->res->exit)
			c->res->exit = 3;
		return;
	}
	if (journal_step(c, q->i, JOURNAL_STEP_DONE) < 0)
		return;
	maybe_crash(c->kind->name, s->name, "after");
	q->i++;
	step_start(w->loop, q);
}

static void step_start(uv_loop_t *loop, struct step_req *q)
{
	struct op_ctx *c = q->c;
	if (q->i == c->kind->nsteps) {
		journal_finish(c, JOURNAL_OP_DONE);
		return;
	}
	maybe_crash(c->kind->name, c->kind->steps[q->i].name, "before");
	if (journal_step(c, q->i, JOURNAL_STEP_INTENT) < 0)
		return;
	q->work.data = q;
	int r = uv_queue_work(loop, &q->work, step_work, step_after);
	if (r < 0)
		op_fail(c, 3, "cannot schedule step %s: %s", c->kind->steps[q->i].name, uv_strerror(r));
}

static int run_steps(struct op_ctx *c, size_t from)
{
	uv_loop_t loop;
	int r = uv_loop_init(&loop);
	if (r < 0)
		return op_fail(c, 3, "cannot start the event loop: %s", uv_strerror(r));
	struct step_req q = {.c = c, .i = from};
	step_start(&loop, &q);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return c->res->exit;
}

/* Finishes or undoes one interrupted op from its journal record. */
static int recover_op(struct engine *e, const struct journal_op *op, const struct journal_step *steps, size_t n,
		      struct sbuf *line)
{
	struct op_ctx c = {0};
	struct op_result res = {0};
	c.e = e;
	c.id = op->id;
	c.res = &res;
	c.stack = op->stack;
	c.kind = find_kind(op->kind);
	if (!c.kind) {
		sbuf_printf(line, "op %llu: unknown kind '%s'; left as it is", (unsigned long long)op->id, op->kind);
		return 1;
	}
	json_error_t je;
	c.plan = op->plan ? json_loads(op->plan, JSON_REJECT_DUPLICATES, &je) : NULL;
	long last = -1;
	bool committed = false;
	for (size_t i = 0; i < n; i++) {
		if (steps[i].index >= c.kind->nsteps)
			continue;
		if ((long)steps[i].index > last)
			last = (long)steps[i].index;
		if (steps[i].index >= c.kind->commit && steps[i].state != JOURNAL_STEP_UNDONE)
			committed = true;
	}
	struct journal_err jerr;
	if (!c.plan) {
		/* interrupted while planning: nothing on the target was touched */
		journal_op_finish(e->journal, op->id, JOURNAL_OP_ABORTED, &jerr);
		sbuf_printf(line, "op %llu (%s %s): interrupted while planning; nothing to undo",
			    (unsigned long long)op->id, op->kind, op->stack);
		return 0;
	}
	struct target_spec t = {0};
	t.ssh = plan_str(&c, "ssh");
	t.known_hosts = plan_str(&c, "known_hosts");
	t.key = plan_str(&c, "key");
	t.transport_root = plan_str(&c, "transport_root");
	t.deployments_root = plan_str(&c, "deployments_root");
	t.unit_dir = plan_str(&c, "unit_dir");
	struct sbuf terr = SBUF_INIT;
	c.tops = engine_target_ops(&t, &terr);
	if (!c.tops) {
		sbuf_printf(line, "op %llu (%s %s): cannot reach its target yet: %s", (unsigned long long)op->id,
			    op->kind, op->stack, terr.sb_len ? terr.sb_buf : "no reason was given");
		sbuf_free(&terr);
		json_decref(c.plan);
		op_result_free(&res);
		return 1;
	}
	sbuf_free(&terr);
	long gen = plan_long(&c, "generation"), prev = plan_long(&c, "previous");
	int rc = 0;
	sweep_temps(&c);
	if (committed) {
		size_t from = c.kind->commit;
		for (size_t i = 0; i < n; i++)
			if (steps[i].index >= from && steps[i].state == JOURNAL_STEP_DONE && steps[i].index + 1 > from)
				from = steps[i].index + 1;
		rc = run_steps(&c, from);
		if (rc == 0 && (c.kind == &gc_kind || c.kind == &prune_kind))
			sbuf_printf(line, "op %llu (%s %s): rolled forward; its %s finished", (unsigned long long)op->id,
				    op->kind, op->stack, c.kind->steps[c.kind->commit].name);
		else if (rc == 0)
			sbuf_printf(line, "op %llu (%s %s): rolled forward; current is gen-%03ld",
				    (unsigned long long)op->id, op->kind, op->stack, gen);
		else
			sbuf_printf(line, "op %llu (%s %s): rolling forward failed: %s", (unsigned long long)op->id,
				    op->kind, op->stack, res.error.sb_len ? res.error.sb_buf : "no reason was given");
	} else if (undo_from(&c, last) < 0) {
		rc = 1;
		sbuf_printf(line, "op %llu (%s %s): undoing it failed; it stays in the journal for the next recover",
			    (unsigned long long)op->id, op->kind, op->stack);
	} else {
		journal_finish(&c, JOURNAL_OP_ABORTED);
		if (c.kind == &gc_kind || c.kind == &prune_kind)
			sbuf_printf(line, "op %llu (%s %s): stopped before deleting anything; nothing to undo",
				    (unsigned long long)op->id, op->kind, op->stack);
		else if (prev > 0)
			sbuf_printf(line, "op %llu (%s %s): undone before the flip; gen-%03ld stays current",
				    (unsigned long long)op->id, op->kind, op->stack, prev);
		else
			sbuf_printf(line, "op %llu (%s %s): undone before the flip; nothing was live",
				    (unsigned long long)op->id, op->kind, op->stack);
	}
	engine_target_ops_free(c.tops);
	json_decref(c.plan);
	op_result_free(&res);
	return rc;
}

/* Recovers the running ops of one scope (whose lock the caller holds). */
static int recover_scope(struct engine *e, const char *scope, struct sbuf *report)
{
	struct journal_op *ops;
	size_t n;
	struct journal_err je;
	if (journal_op_list(e->journal, &ops, &n, &je) < 0) {
		sbuf_printf(report, "%s", je.msg);
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (ops[i].state != JOURNAL_OP_RUNNING || strcmp(ops[i].scope, scope) != 0)
			continue;
		struct journal_op op;
		struct journal_step *steps;
		size_t ns;
		if (journal_op_get(e->journal, ops[i].id, &op, &steps, &ns, &je) < 0) {
			sbuf_printf(report, "%s\n", je.msg);
			rc = -1;
			break;
		}
		struct sbuf line = SBUF_INIT;
		rc = recover_op(e, &op, steps, ns, &line) ? -1 : 0;
		sbuf_printf(report, "%s\n", line.sb_buf);
		sbuf_free(&line);
		journal_steps_free(steps, ns);
		journal_op_free(&op);
	}
	journal_ops_free(ops, n);
	return rc;
}

int op_start(struct engine *e, const struct target_spec *t, const char *kind, const char *stack, const char *scope_in,
	     struct op_ctx *c, struct op_result *r, int *lock_h)
{
	memset(r, 0, sizeof(*r));
	c->e = e;
	c->res = r;
	c->stack = stack;
	c->kind = find_kind(kind);
	char *scope = scope_in ? xstrdup(scope_in) : make_scope(t, stack);
	struct sbuf what = SBUF_INIT;
	if (scope_in)
		sbuf_printf(&what, "the store");
	else
		sbuf_printf(&what, "stack '%s'", stack);
	int rc = lock_scope(e, scope, what.sb_buf, lock_h, &r->error);
	sbuf_free(&what);
	if (rc < 0) {
		r->exit = rc == -EWOULDBLOCK ? 4 : 3;
		free(scope);
		return r->exit;
	}
	/* An op interrupted on this stack is finished or undone first. */
	struct sbuf rep = SBUF_INIT;
	if (recover_scope(e, scope, &rep) < 0) {
		sbuf_printf(&r->error, "recovering an interrupted op on stack '%s' failed: %s", stack, rep.sb_buf);
		r->exit = 3;
	} else if (rep.sb_len) {
		fputs(rep.sb_buf, stderr);
	}
	sbuf_free(&rep);
	if (r->exit) {
		free(scope);
		return r->exit;
	}
	struct sbuf terr = SBUF_INIT;
	if (!scope_in && remember_tree(e, t, &terr) < 0) {
		sbuf_printf(&r->error, "%s", terr.sb_buf);
		r->exit = 3;
		sbuf_free(&terr);
		free(scope);
		return r->exit;
	}
	c->tops = engine_target_ops(t, &terr);
	if (!c->tops) {
		sbuf_printf(&r->error, "%s", terr.sb_buf);
		r->exit = 3;
		sbuf_free(&terr);
		free(scope);
		return r->exit;
	}
	sbuf_free(&terr);
	c->plan = json_object();
	json_object_set_new(c->plan, "ssh", json_string(t->ssh ? t->ssh : ""));
	json_object_set_new(c->plan, "known_hosts", json_string(t->known_hosts ? t->known_hosts : ""));
	json_object_set_new(c->plan, "key", json_string(t->key ? t->key : ""));
	json_object_set_new(c->plan, "stack", json_string(stack));
	json_object_set_new(c->plan, "transport_root", json_string(t->transport_root ? t->transport_root : ""));
	json_object_set_new(c->plan, "deployments_root", json_string(t->deployments_root));
	json_object_set_new(c->plan, "unit_dir", json_string(t->unit_dir));
	json_object_set_new(c->plan, "activate", json_boolean(t->activate));
	json_object_set_new(c->plan, "enable", json_boolean(t->enable));
	json_object_set_new(c->plan, "store_root", json_string(e->store->root));
	struct journal_op op = {0};
	op.kind = (char *)kind;
	op.scope = scope;
	op.stack = (char *)stack;
	struct journal_err je;
	if (journal_op_begin(e->journal, &op, &je) < 0) {
		sbuf_printf(&r->error, "%s", je.msg);
		r->exit = 3;
	}
	c->id = op.id;
	r->op_id = op.id;
	free(scope);
	return r->exit;
}

int op_run(struct op_ctx *c)
{
	return run_steps(c, 0);
}

void op_end(struct op_ctx *c, int lock_h)
{
	if (c->have_bp)
		build_plan_free(&c->bp);
	rendered_free(&c->rf);
	free_secrets(c);
	json_decref(c->plan);
	engine_target_ops_free(c->tops);
	c->e->local->unlock(c->e->local, lock_h);
}

/*
 * Deploys, rollbacks and set-currents hold the store lock shared from start
 * to end: the paths they build and pin cannot be collected under them.
 */
static int store_shared(struct engine *e, struct op_result *r)
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

int engine_deploy(struct engine *e, const struct target_spec *t, const struct deploy_input *in, struct op_result *r)
{
	struct op_ctx c = {0};
	int h = -1, sh = store_shared(e, r);
	if (sh < 0)
		return r->exit;
	if (op_start(e, t, "deploy", in->stack->name, NULL, &c, r, &h) == 0) {
		c.in = in;
		run_steps(&c, 0);
	}
	if (h >= 0)
		op_end(&c, h);
	store_unlock(e->store, sh);
	return r->exit;
}

int engine_rollback(struct engine *e, const struct target_spec *t, const char *stack, struct op_result *r)
{
	struct op_ctx c = {0};
	int h = -1, sh = store_shared(e, r);
	if (sh < 0)
		return r->exit;
	if (op_start(e, t, "rollback", stack, NULL, &c, r, &h) == 0)
		run_steps(&c, 0);
	if (h >= 0)
		op_end(&c, h);
	store_unlock(e->store, sh);
	return r->exit;
}

int engine_set_current(struct engine *e, const struct target_spec *t, const char *stack, long gen,
		       struct op_result *r)
{
	struct op_ctx c = {0};
	int h = -1, sh = store_shared(e, r);
	if (sh < 0)
		return r->exit;
	c.want = gen;
	if (op_start(e, t, "set-current", stack, NULL, &c, r, &h) == 0)
		run_steps(&c, 0);
	if (h >= 0)
		op_end(&c, h);
	store_unlock(e->store, sh);
	return r->exit;
}

int engine_recover(struct engine *e, bool list_only, void (*report)(void *arg, const char *line), void *arg,
		   struct sbuf *err)
{
	struct journal_op *ops;
	size_t n;
	struct journal_err je;
	if (journal_op_list(e->journal, &ops, &n, &je) < 0) {
		sbuf_printf(err, "%s", je.msg);
		return -1;
	}
	int rc = 0;
	size_t ncorrupt = 0;
	for (size_t i = 0; i < n; i++) {
		if (ops[i].state == JOURNAL_OP_CORRUPT) {
			/* only this op stops: its scope cannot be trusted, the others go on */
			struct sbuf line = SBUF_INIT;
			sbuf_printf(&line,
				    "%s; left alone (see it with 'punix journal show %llu'; once what it did is "
				    "checked, 'punix journal set-aside %llu --yes')",
				    ops[i].corrupt ? ops[i].corrupt : "an op record is corrupt", (unsigned long long)ops[i].id,
				    (unsigned long long)ops[i].id);
			report(arg, line.sb_buf);
			sbuf_free(&line);
			ncorrupt++;
			continue;
		}
		if (ops[i].state != JOURNAL_OP_RUNNING)
			continue;
		struct sbuf line = SBUF_INIT;
		if (list_only) {
			sbuf_printf(&line, "op %llu (%s %s) was interrupted", (unsigned long long)ops[i].id, ops[i].kind,
				    ops[i].stack);
			report(arg, line.sb_buf);
			sbuf_free(&line);
			continue;
		}
		int h;
		struct sbuf what = SBUF_INIT, lerr = SBUF_INIT;
		sbuf_printf(&what, "stack '%s'", ops[i].stack);
		int lr = lock_scope(e, ops[i].scope, what.sb_buf, &h, &lerr);
		if (lr == 0) {
			struct sbuf rep = SBUF_INIT;
			if (recover_scope(e, ops[i].scope, &rep) < 0)
				rc = -1;
			if (rep.sb_len) {
				rep.sb_buf[rep.sb_len - 1] = '\0';
				report(arg, rep.sb_buf);
			}
			sbuf_free(&rep);
			e->local->unlock(e->local, h);
		} else {
			sbuf_printf(&line, "op %llu (%s %s): left alone: %s", (unsigned long long)ops[i].id, ops[i].kind,
				    ops[i].stack, lerr.sb_buf);
			report(arg, line.sb_buf);
		}
		sbuf_free(&what);
		sbuf_free(&lerr);
		sbuf_free(&line);
	}
	journal_ops_free(ops, n);
	if (ncorrupt && !list_only) {
		sbuf_printf(err, "%zu op(s) in the journal are corrupt and were left alone (above)", ncorrupt);
		rc = -1;
	}
	return rc;
}
