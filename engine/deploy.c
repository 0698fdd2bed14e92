/*
 * deploy.c - the deploy op: plan (compose, render, resolve secrets, choose
 * the generation), build, stage (push missing store paths, write the
 * manifest and rendered files), then the shared verify, flip, materialise
 * and activate steps.
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
#include "proto.h"
#include "backends.h"
#include "systemd.h"
#include "op_internal.h"
#include "ssh.h"
#include "target.h"

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
 * The half of planning that needs nothing of the target but its
 * architecture (tarch, uname -m, or NULL if unknown): what to build, the
 * secrets, the rendered files. Host mode runs it on the deployer and
 * sends the result as a bundle; the other half runs where the target is.
 */
int deploy_prepare(struct op_ctx *c, const char *tarch)
{
	const struct stack_desc *st = c->in->stack;
	struct sbuf err = SBUF_INIT;
	/* What to build: the stack's storeModules and its services' packages. */
	VEC(const char *) roots = {0};
	for (size_t i = 0; i < st->nstore_modules; i++)
		VEC_PUSH(&roots, st->store_modules[i]);
	for (size_t i = 0; i < st->nservices; i++) {
		VEC_PUSH(&roots, st->services[i].package);
		if (st->services[i].provision)
			VEC_PUSH(&roots, st->services[i].provision->package);
	}
	struct build_located *loc = NULL;
	size_t nloc = 0;
	const char *bad = NULL;
	int r = build_plan_make(&c->bp, c->e->store, c->in->pkgs, c->in->npkgs, c->in->tree_root, roots.v, roots.n,
				&loc, &nloc, &bad, &err);
	VEC_FREE(&roots);
	c->bp.secrets = &c->e->secrets; /* url sources' tokens, resolved when a build fetches */
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
	/* a closure built for another machine is refused before anything is pushed */
	char tsys[96];
	store_system_of(tarch, tsys, sizeof(tsys));
	if (strcmp(tsys, c->e->store->system) != 0) {
		sbuf_free(&err);
		return op_fail(c, 1,
			       "[E14] stack '%s': the target is %s (uname -m: %s) but its packages are built here for "
			       "%s; deploy from a machine of the target's architecture",
			       c->stack, tsys, tarch ? tarch : "unknown", c->e->store->system);
	}
	if (resolve_secrets(c, st) != 0) {
		sbuf_free(&err);
		return 1;
	}
	/* what the backend needs of the target (supervisord: its include directory), read there */
	struct backend_env benv = {0};
	benv.unit_dir = c->plan.unit_dir;
	benv.conf = c->plan.supervisor_conf && *c->plan.supervisor_conf ? c->plan.supervisor_conf : NULL;
	const struct backend *b = backend_find(st->backend);
	/*
	 * In host mode too the deployer renders, so a backend whose files
	 * depend on the target's configuration (supervisord's include
	 * directory) reads it there, through the connection (SFTP): the one
	 * read host mode makes beyond its O(1) round trips, for such stacks only.
	 */
	int pr = b && b->prepare ? b->prepare(c->tops, &benv, &err) : 0;
	const char *troot = c->plan.transport_root;
	if (pr < 0 && troot && *troot && !(c->plan.ssh && *c->plan.ssh)) {
		/* a rebased tree (--dry-run) without the backend's config: this machine's, at its own path */
		struct sbuf err2 = SBUF_INIT;
		pr = b->prepare(c->e->local, &benv, &err2);
		if (pr < 0)
			sbuf_printf(&err, "; nor at its own path here: %s", err2.sb_buf);
		sbuf_free(&err2);
	}
	if (pr < 0) {
		op_fail(c, 1, "stack '%s': %s", c->stack, err.sb_buf);
		sbuf_free(&err);
		backend_env_free(&benv);
		return 1;
	}
	struct backend_args ba = {&benv, plan_pkg_path, &c->bp, c->secrets, c->nsecrets};
	int rr = ownership_state_check(st, &err) < 0 ? -1 : backend_render(st, &ba, &c->rf, &err);
	backend_env_free(&benv);
	if (rr < 0) {
		op_fail(c, 1, "%s", err.sb_buf);
		sbuf_free(&err);
		return 1;
	}
	sbuf_free(&err);
	/* the parts of the plan that do not depend on the target */
	struct op_plan *p = &c->plan;
	char iso[32];
	now_iso(c, iso);
	p->deployed_at = xstrdup(iso);
	char src[65];
	sha256_hex(st->source, st->source_len, src);
	p->source_hash = xstrdup(src);
	for (size_t i = 0; i < c->bp.n; i++)
		plan_list_add(&p->store_paths, &p->npaths, c->bp.items[i].path);
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
		for (size_t k = 0; k < s->nenv; k++) {
			json_t *e = json_pack("{s:s, s:s}", "key", s->env[k].key, "kind", env_kind_name(s->env[k].kind));
			/* a literal by value (store paths in it put in); a secret by the name of where it comes from */
			size_t vlen;
			char *val = s->env[k].kind != ENV_LITERAL ? xstrdup(s->env[k].value)
				    : backend_subst_outs(s->env[k].value, strlen(s->env[k].value), plan_pkg_path, &c->bp, &vlen);
			json_object_set_new(e, s->env[k].kind == ENV_LITERAL ? "value" : "from", json_string(val));
			free(val);
			json_array_append_new(env, e);
		}
		json_object_set_new(json_array_get(svcs, i), "environment", env);
		json_object_set_new(json_array_get(svcs, i), "timer", json_boolean(s->has_timer));
		if (s->provision) /* activation runs <name>-provision.service after the service */
			json_object_set_new(json_array_get(svcs, i), "provision", json_true());
	}
	p->services = json_dumps(svcs, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(svcs);
	return 0;
}

/* The generation's files in the plan: config files by content hash, secrets by path only. */
static void plan_files(struct op_ctx *c)
{
	struct op_plan *p = &c->plan;
	p->config_files = xcalloc(c->rf.n + 1, sizeof(*p->config_files));
	p->secret_files = xcalloc(c->rf.n + 1, sizeof(*p->secret_files));
	for (size_t i = 0; i < c->rf.n; i++) {
		const struct rendered_file *f = &c->rf.files[i];
		if (f->secret) {
			/* by path only: a secret's content is never hashed or recorded */
			p->secret_files[p->nsecret++] = (struct plan_file){xstrdup(f->path), NULL, 0600, plan_strdup(f->owner)};
			continue;
		}
		char hex[65];
		sha256_hex(f->content, f->len, hex);
		p->config_files[p->nconfig++] = (struct plan_file){xstrdup(f->path), xstrdup(hex), f->mode, NULL};
	}
}

/* What a bundle (host mode: prepared by the deployer) says, as deploy_prepare would have made it. */
static int take_bundle(struct op_ctx *c)
{
	const struct bundle *b = c->in->bundle;
	struct op_plan *p = &c->plan;
	p->deployed_at = xstrdup(b->deployed_at);
	p->source_hash = xstrdup(b->source_hash);
	p->services = xstrdup(b->services);
	for (size_t i = 0; i < b->npaths; i++) {
		if (!store_path_in(c->e->store->root, b->store_paths[i]))
			return op_fail(c, 3, "the bundle pins %s, which is not a path of the store %s", b->store_paths[i],
				       c->e->store->root);
		plan_list_add(&p->store_paths, &p->npaths, b->store_paths[i]);
	}
	c->rf.files = xcalloc(b->nfiles + 1, sizeof(*c->rf.files));
	for (size_t i = 0; i < b->nfiles; i++) {
		const struct bundle_file *f = &b->files[i];
		struct rendered_file *o = &c->rf.files[c->rf.n++];
		o->path = xstrdup(f->path);
		o->content = xmalloc(f->len + 1);
		memcpy(o->content, f->content, f->len);
		o->content[f->len] = '\0';
		o->len = f->len;
		o->mode = f->secret ? 0600 : f->mode;
		o->secret = f->secret;
		o->owner = plan_strdup(f->owner);
	}
	return 0;
}

static int deploy_plan(struct op_ctx *c)
{
	struct sbuf err = SBUF_INIT;
	long current = current_generation(c->tops, dep_root(c), c->stack, &err);
	if (current < 0) {
		op_fail(c, 1, "%s", err.sb_buf);
		sbuf_free(&err);
		return 1;
	}
	if (current == 0 && confirm_refused(c)) {
		sbuf_free(&err);
		return 1;
	}
	int r;
	if (c->in->bundle && !c->in->bundle->build) {
		r = take_bundle(c);
	} else {
		char tarch[64] = "";
		int ar = c->tops->arch(c->tops, tarch, sizeof(tarch));
		r = deploy_prepare(c, ar == 0 ? tarch : NULL);
	}
	if (r) {
		sbuf_free(&err);
		return r;
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
	struct op_plan *p = &c->plan;
	for (size_t i = 0; i < c->in->nadopt; i++)
		plan_list_add(&p->adopt, &p->nadopt, c->in->adopt[i]);
	sbuf_free(&err);
	plan_files(c);
	long gen = next_generation(c, current);
	p->generation = gen;
	p->previous = current;
	c->res->generation = gen;
	c->res->previous = current;
	return 0;
}

struct built {
	struct op_ctx *c;
	uint64_t done;
};

/* A url source's download, on the build's thread: told as the op's count (engine.h: OP_COUNT_FETCHING). */
static void fetching(void *arg, const char *name, uint64_t got, uint64_t total)
{
	char what[256];
	snprintf(what, sizeof(what), OP_COUNT_FETCHING "%s", name);
	op_count(arg, what, got, total, 0);
}

static void built_one(void *arg, const struct build_item *it)
{
	(void)it;
	struct built *b = arg;
	op_count(b->c, "packages done", ++b->done, b->c->bp.n, 0);
}

int deploy_build(struct op_ctx *c)
{
	if (c->in->bundle && !c->in->bundle->build)
		return 0; /* built by the deployer, its closure pushed before the op began */
	struct built b = {c, 0};
	c->bp.fetch = c->e->fetch;
	c->bp.fetch.progress = fetching;
	c->bp.fetch.progress_arg = c;
	op_count(c, "packages done", 0, c->bp.n, 0);
	build_plan_run(&c->bp, c->e->store, false, NULL, built_one, &b);
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
int push_store_path(struct op_ctx *c, const char *path)
{
	struct punix_ops *o = c->tops, *local = c->e->local;
	if (target_is_here(c))
		return 0; /* the local machine is the target: the path is already there */
	struct sbuf meta = SBUF_INIT, tmp = SBUF_INIT;
	sbuf_printf(&meta, "%s/%s.json", c->e->store->meta_dir, store_path_name(path));
	/* whose push it is (recovery keeps the pushes of running ops), unpredictable */
	char rnd[OPS_TMP_SUFFIX_LEN + 1];
	ops_tmp_suffix(rnd);
	sbuf_printf(&tmp, "%s.push-%llu-%s", path, (unsigned long long)c->id, rnd);
	struct ops_stat st;
	int r = 0, lh = -1;
	/*
	 * Ops on other stacks push into the same store at once: one push of a
	 * path at a time (the store's lock of that name, as its builders use;
	 * an SSH target has no locks, and its pushes rely on the checks).
	 */
	struct sbuf lock = SBUF_INIT;
	sbuf_printf(&lock, "%s/.locks/%s.lock", c->e->store->root, store_path_name(path));
	char *ldir = ops_dirname(lock.sb_buf);
	if (ops_mkdir_p(o, ldir, 0755) == 0 && o->lock(o, lock.sb_buf, 1, 1, &lh) < 0)
		lh = -1;
	free(ldir);
	sbuf_free(&lock);
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
	if (lh >= 0)
		o->unlock(o, lh);
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
	/* a bundle (host mode) carries no stack: only systemd stacks are deployed that way */
	const char *backend = c->in && c->in->stack && c->in->stack->backend ? c->in->stack->backend : "systemd";
	json_object_set_new(m, "backend", json_string(backend));
	const struct op_plan *p = &c->plan;
	json_object_set_new(m, "deployed_at", json_string(p->deployed_at));
	json_object_set_new(m, "source_hash", json_string(p->source_hash));
	json_object_set_new(m, "store_paths", plan_texts_json(p->store_paths, p->npaths));
	json_t *svcs = p->services ? json_loads(p->services, 0, NULL) : NULL;
	json_object_set_new(m, "services", svcs ? svcs : json_array());
	json_object_set_new(m, "config_files", plan_files_json(p->config_files, p->nconfig));
	json_object_set_new(m, "secret_files", plan_files_json(p->secret_files, p->nsecret));
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

/*
 * mkdir -p inside a generation's trees without a sync each: the parent of
 * every directory made joins the set synced once before the manifest is
 * written, except the stack's directory, which the manifest's own write
 * syncs (a crash before that leaves the stage step undone, and recovery
 * removes what it made).
 */
static int mkdir_staged(struct punix_ops *o, const char *path, uint32_t mode, const char *sdir, struct dirset *d)
{
	struct ops_stat st;
	if (o->stat(o, path, 1, &st) == 0)
		return st.type == OPS_FT_DIR ? 0 : -ENOTDIR;
	char *parent = ops_dirname(path);
	int r = strcmp(parent, path) && strcmp(parent, "/") ? mkdir_staged(o, parent, mode, sdir, d) : 0;
	if (r == 0) {
		r = o->mkdir(o, path, mode);
		if (r == -EEXIST)
			r = 0;
		else if (r == 0 && strcmp(parent, sdir) != 0)
			dirset_add(d, path);
	}
	free(parent);
	return r;
}

/* Pushes pins, writes the generation's files, then its manifest (last). */
static int deploy_stage(struct op_ctx *c)
{
	struct punix_ops *o = c->tops;
	long gen = c->plan.generation;
	char *files = gen_files_dir(dep_root(c), c->stack, gen);
	int r = 0;
	if (plan_pins_in_store(c)) {
		free(files);
		return c->res->exit;
	}
	if (!target_is_here(c) && c->plan.npaths && !c->in->bundle) {
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
	/* what is there already, asked in one request; only the rest is pushed */
	unsigned char *found = NULL;
	if (r == 0 && !target_is_here(c) && c->plan.npaths && !c->in->bundle) {
		r = pins_present(c, &found);
		if (r < 0)
			op_fail(c, 3, "asking the target which store paths it has: %s", ops_strerror(r));
	}
	uint64_t topush = 0, pushed = 0;
	for (size_t i = 0; i < c->plan.npaths && !c->in->bundle && !target_is_here(c); i++)
		topush += !(found && found[2 * i] && found[2 * i + 1]);
	if (r == 0 && topush)
		op_count(c, "paths pushed", 0, topush, 0);
	for (size_t i = 0; i < c->plan.npaths && r == 0 && !c->in->bundle; i++) {
		if (found && found[2 * i] && found[2 * i + 1])
			continue;
		r = push_store_path(c, c->plan.store_paths[i]);
		if (r < 0)
			op_fail(c, 3, "pushing %s to the target: %s", c->plan.store_paths[i], strerror(-r));
		else if (topush)
			op_count(c, "paths pushed", ++pushed, topush, 0);
	}
	free(found);
	char *sdir = stack_dir(dep_root(c), c->stack);
	if (r == 0)
		r = ops_mkdir_p(o, sdir, 0755);
	if (r == 0) {
		struct sbuf err = SBUF_INIT;
		r = ownership_keep_originals(o, dep_root(c), c->stack, (const char *const *)c->plan.adopt, c->plan.nadopt,
					     &err);
		if (r < 0)
			op_fail(c, 3, "%s", err.sb_buf);
		sbuf_free(&err);
	}
	if (r == 0)
		r = ops_remove_tree(o, files);
	struct dirset written = {0};
	for (size_t i = 0; i < c->rf.n && r == 0; i++) {
		if (c->rf.files[i].secret)
			continue;
		struct sbuf dst = SBUF_INIT;
		sbuf_printf(&dst, "%s%s", files, c->rf.files[i].path);
		char *dir = ops_dirname(dst.sb_buf);
		r = mkdir_staged(o, dir, 0755, sdir, &written);
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
		r = mkdir_staged(o, dir, 0700, sdir, &written);
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
	free(sdir);
	return r < 0 ? 3 : 0;
}

/* Before the flip nothing points at the staged generation: remove it. */
static int deploy_unstage(struct op_ctx *c)
{
	long gen = c->plan.generation;
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

/* ---- the tables ---------------------------------------------------------------------- */

static const struct step deploy_steps[] = {
	{"plan", deploy_plan, NULL, false},
	{"build", deploy_build, NULL, false},
	{"stage", deploy_stage, deploy_unstage, false},
	{"verify", step_verify, NULL, false},
	{"flip", step_flip, NULL, true}, /* the commit point */
	{"materialise", step_materialise, NULL, false},
	{"activate", step_activate, NULL, false},
	{"confirm", step_confirm, NULL, false},
};

const struct op_kind deploy_kind = {"deploy", deploy_steps, NSTEPS(deploy_steps)};
