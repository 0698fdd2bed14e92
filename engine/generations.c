/*
 * generations.c - the steps every switching op shares: verify the pins of
 * the generation to go live, flip current to it, and materialise its files
 * (make the live files equal its rendered files, remove what the previous
 * generation had and it lacks).
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

/* Why the manifest of gen could not be read: manifest_read's words, else its path and errno. */
const char *manifest_why(struct op_ctx *c, long gen, int r, struct sbuf *err)
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
int plan_pins_in_store(struct op_ctx *c)
{
	const char *store_root = c->plan.store_root;
	for (size_t i = 0; i < c->plan.npaths; i++) {
		const char *p = c->plan.store_paths[i];
		if (!p || !store_root || !store_path_in(store_root, p))
			return op_fail(c, 1, "op %llu: its plan pins %s, which is not a path of the store %s: the journal "
					     "record is corrupt; nothing was pushed or removed for it",
				       (unsigned long long)c->id, p ? p : "(not a string)", store_root ? store_root : "(none)");
	}
	return 0;
}

int pins_present(struct op_ctx *c, unsigned char **found)
{
	size_t n = c->plan.npaths;
	const char **paths = xcalloc(2 * n + 1, sizeof(*paths));
	char **metas = xcalloc(n + 1, sizeof(*metas));
	for (size_t i = 0; i < n; i++) {
		struct sbuf meta = SBUF_INIT;
		sbuf_printf(&meta, "%s/.meta/%s.json", c->plan.store_root, store_path_name(c->plan.store_paths[i]));
		metas[i] = sbuf_detach(&meta, NULL);
		paths[2 * i] = c->plan.store_paths[i];
		paths[2 * i + 1] = metas[i];
	}
	*found = xcalloc(2 * n + 1, 1);
	int r = c->tops->exists(c->tops, paths, 2 * n, *found);
	for (size_t i = 0; i < n; i++)
		free(metas[i]);
	free(metas);
	free(paths);
	if (r < 0) {
		free(*found);
		*found = NULL;
	}
	return r;
}

/* Every pin of the plan must be on the target, with its registration: asked in one request. */
int step_verify(struct op_ctx *c)
{
	if (plan_pins_in_store(c))
		return c->res->exit;
	struct sbuf missing = SBUF_INIT;
	size_t nmissing = 0;
	unsigned char *found;
	int r = pins_present(c, &found);
	if (r < 0) {
		sbuf_free(&missing);
		return op_fail(c, 3, "verifying the pins of gen-%03ld on the target: %s", c->plan.generation,
			       ops_strerror(r));
	}
	for (size_t i = 0; i < c->plan.npaths; i++)
		if (!found[2 * i] || !found[2 * i + 1]) {
			sbuf_printf(&missing, "\n  %s", c->plan.store_paths[i]);
			nmissing++;
		}
	free(found);
	if (nmissing)
		r = op_fail(c, 1,
			    "[E12] stack '%s' gen-%03ld: pinned store path missing:%s\nThis usually means GC ran with "
			    "the wrong root set. Recover by\nre-realising: punix build <the program's files>",
			    c->stack, c->plan.generation, missing.sb_buf);
	sbuf_free(&missing);
	return r;
}

/* The flip: symlink to a temporary name, rename over current, fsync the directory. */
int step_flip(struct op_ctx *c)
{
	char *dir = stack_dir(dep_root(c), c->stack);
	struct sbuf cur = SBUF_INIT, target = SBUF_INIT;
	sbuf_printf(&cur, "%s/current", dir);
	char *tmp = ops_tmp_name(cur.sb_buf);
	sbuf_printf(&target, "gen-%03ld.json", c->plan.generation);
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

void dirset_add(struct dirset *d, const char *path)
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
int dirset_sync(struct dirset *d, struct punix_ops *o, const char **failed)
{
	size_t bad = 0;
	int r = o->fsync_paths(o, (const char *const *)d->dirs.v, d->dirs.n, &bad);
	if (r < 0 && failed && bad < d->dirs.n)
		*failed = d->dirs.v[bad];
	return r;
}

void dirset_free(struct dirset *d)
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
/*
 * A secrets file its service's user reads itself (supervisord starts the
 * program as user= before /bin/sh reads the file): the directories above
 * it, those punix made under /etc/punix, searchable (0711: entered, not
 * listed); the file stays 0600. systemd reads EnvironmentFile= as root and
 * needs none of this.
 */
static int open_to_owner(struct punix_ops *o, const char *dir)
{
	char *d = xstrdup(dir);
	int r = 0;
	while (r == 0 && strncmp(d, "/etc/punix", 10) == 0 && (d[10] == '\0' || d[10] == '/')) {
		struct ops_stat st;
		r = o->stat(o, d, 0, &st);
		if (r == 0 && st.type == OPS_FT_DIR && (st.mode & 0111) != 0111)
			r = o->chmod(o, d, (st.mode & 07777) | 0111);
		char *up = ops_dirname(d);
		free(d);
		d = up;
	}
	free(d);
	return r;
}

int step_materialise(struct op_ctx *c)
{
	struct punix_ops *o = c->tops;
	const char *dep = dep_root(c);
	long gen = c->plan.generation, prev = c->plan.previous;
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
			r = ops_mkdir_p(o, dir, f->owner ? 0711 : 0700);
			if (r == 0 && f->owner)
				r = open_to_owner(o, dir);
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

void list_gens_text(struct op_ctx *c, struct sbuf *out)
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

/* Fills the plan from the manifest of the generation to flip to. */
int plan_from_manifest(struct op_ctx *c, long gen, long current)
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
	struct op_plan *p = &c->plan;
	p->generation = gen;
	p->previous = current;
	for (size_t i = 0; i < m.npaths; i++)
		plan_list_add(&p->store_paths, &p->npaths, m.store_paths[i]);
	p->config_files = xcalloc(m.nfiles + 1, sizeof(*p->config_files));
	for (size_t i = 0; i < m.nfiles; i++, p->nconfig++)
		p->config_files[i] = (struct plan_file){xstrdup(m.files[i].path), plan_strdup(m.files[i].sha256),
							m.files[i].mode, plan_strdup(m.files[i].owner)};
	p->secret_files = xcalloc(m.nsecret + 1, sizeof(*p->secret_files));
	for (size_t i = 0; i < m.nsecret; i++, p->nsecret++)
		p->secret_files[i] = (struct plan_file){xstrdup(m.secret_files[i].path),
							plan_strdup(m.secret_files[i].sha256), m.secret_files[i].mode,
							plan_strdup(m.secret_files[i].owner)};
	c->res->generation = gen;
	c->res->previous = current;
	manifest_free(&m);
	return 0;
}
