/*
 * gc.c - garbage collection of the store, and pruning of old generations,
 * as journaled ops (see engine.h, docs/gc.md).
 *
 * gc: plan (find the roots) -> mark (the keep-set: the roots' closure
 * through registered dependencies; the dead: every other registered path)
 * -> **sweep** (under the store's exclusive lock, compute the keep-set
 * again and delete each planned path that is still dead).
 *
 * Roots are every store path pinned by every generation of every stack
 * under the deployments root (not only the current ones), and the pins of
 * every op the journal shows in flight. Builds and deploys hold the store
 * lock shared for as long as they create or pin paths, so the sweep never
 * races them; and because the sweep decides again under the lock, running
 * it twice (recovery rolls it forward) can never delete a path that became
 * live in between.
 *
 * prune: plan (the generations to delete: all but the current one and the
 * newest N) -> **remove** (for each: its manifest first, so it stops being
 * a generation, then its kept files).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/path.h"
#include "../base/strmap.h"
#include "../base/vec.h"
#include "../base/xalloc.h"
#include "manifest.h"
#include "op_internal.h"

typedef VEC(char *) str_vec;

static void str_vec_free(str_vec *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i]);
	VEC_FREE(v);
}

struct roots {
	str_vec paths;
	size_t stacks, generations, inflight, foreign;
};

/*
 * Adds the pins of every generation of every stack under dep, as seen
 * through tops. A manifest that cannot be read, or a current link naming a
 * generation that is not there, stops the collection: its pins cannot be
 * known, so nothing may be deleted. Pins of another store (a deploy made
 * with another --store-root) are not roots of this one; they are counted.
 */
static int stack_roots(struct punix_ops *tops, const char *dep, const char *where, const struct store *s,
		       struct roots *out, struct sbuf *err)
{
	char **names;
	size_t n;
	int r = tops->list_dir(tops, dep, &names, &n);
	if (r < 0) {
		sbuf_printf(err, "%s%s: %s", where, dep, strerror(-r));
		return -1;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		if (names[i][0] == '.')
			continue; /* .dry-run: a scratch target, taken on its own */
		struct sbuf cerr = SBUF_INIT;
		long cur = current_generation(tops, dep, names[i], &cerr);
		long *gens = NULL;
		size_t ng = 0;
		if (cur < 0 || list_generations(tops, dep, names[i], &gens, &ng) < 0) {
			sbuf_printf(err, "%s%s; garbage collection deletes nothing until it is repaired",
				    cur < 0 ? where : "", cur < 0 ? cerr.sb_buf : "cannot list a stack's generations");
			sbuf_free(&cerr);
			r = -1;
			break;
		}
		sbuf_free(&cerr);
		bool cur_found = cur == 0;
		for (size_t g = 0; g < ng; g++)
			cur_found |= gens[g] == cur;
		if (!cur_found) {
			sbuf_printf(err,
				    "%sstack '%s' in %s: current names gen-%03ld, which does not exist; garbage collection "
				    "deletes nothing until it is repaired ('punix service set-current %s N' with a kept "
				    "generation)",
				    where, names[i], dep, cur, names[i]);
			free(gens);
			r = -1;
			break;
		}
		if (ng)
			out->stacks++;
		for (size_t g = 0; g < ng && r == 0; g++) {
			struct manifest m;
			struct sbuf merr = SBUF_INIT;
			r = manifest_read(tops, dep, names[i], gens[g], &m, &merr);
			if (r < 0) {
				/* a manifest we cannot read: we cannot know its pins */
				if (!merr.sb_len) {
					char *mp = gen_manifest_path(dep, names[i], gens[g]);
					sbuf_printf(&merr, "%s: %s", mp, strerror(-r));
					free(mp);
				}
				sbuf_printf(err, "%s%s; garbage collection deletes nothing while a generation's pins are unknown",
					    where, merr.sb_buf);
				sbuf_free(&merr);
				break;
			}
			sbuf_free(&merr);
			out->generations++;
			for (size_t k = 0; k < m.npaths; k++) {
				if (store_path_in(s->root, m.store_paths[k]))
					VEC_PUSH(&out->paths, xstrdup(m.store_paths[k]));
				else
					out->foreign++;
			}
			manifest_free(&m);
		}
		free(gens);
	}
	ops_free_names(names, n);
	return r < 0 ? -1 : 0;
}

/* The roots of a tree this deployer deployed into (a dry run's, a rebased one). */
static int tree_roots(const char *troot, const char *dep, const struct store *s, struct roots *out, struct sbuf *err)
{
	struct sbuf why = SBUF_INIT, where = SBUF_INIT;
	struct punix_ops *t = ops_beneath(troot, &why);
	int r = 0;
	struct ops_stat st;
	if (t && t->stat(t, dep, 1, &st) == 0) {
		sbuf_printf(&where, "(in the tree %s) ", troot);
		r = stack_roots(t, dep, where.sb_buf, s, out, err);
	}
	if (t)
		ops_beneath_free(t);
	sbuf_free(&why);
	sbuf_free(&where);
	return r;
}

/* Every tree under a transport root this deployer deployed to (op.c records them). */
static int registered_roots(struct engine *e, const char *scratch, const char *own_dep, const struct store *s,
			    struct roots *out, struct sbuf *err)
{
	struct punix_ops *o = e->local;
	struct sbuf dir = SBUF_INIT;
	sbuf_printf(&dir, "%s/targets", e->state_dir);
	char **names;
	size_t n;
	int r = o->list_dir(o, dir.sb_buf, &names, &n);
	if (r == -ENOENT) {
		sbuf_free(&dir);
		return 0;
	}
	if (r < 0) {
		sbuf_printf(err, "%s: %s", dir.sb_buf, strerror(-r));
		sbuf_free(&dir);
		return -1;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		struct sbuf file = SBUF_INIT;
		sbuf_printf(&file, "%s/%s", dir.sb_buf, names[i]);
		char *buf = NULL;
		size_t len;
		json_t *j = NULL;
		const char *troot = NULL, *dep = NULL, *sroot = NULL;
		if (names[i][0] != '.' && o->read_file(o, file.sb_buf, 1 << 16, &buf, &len) == 0)
			j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
		if (j && json_unpack(j, "{s:s, s:s, s:s}", "transport_root", &troot, "deployments_root", &dep,
				     "store_root", &sroot) == 0 &&
		    !strcmp(sroot, s->root) && path_is_normal_abs(troot) && path_is_normal_abs(dep) &&
		    (strcmp(troot, scratch) != 0 || strcmp(dep, own_dep) != 0)) /* the scratch tree: counted */
			r = tree_roots(troot, dep, s, out, err);
		json_decref(j);
		free(buf);
		sbuf_free(&file);
	}
	ops_free_names(names, n);
	sbuf_free(&dir);
	return r;
}

/*
 * The roots of a collection of store s on the target seen through tops:
 * the generations under dep there; for the deployer's own store also its
 * dry run's scratch tree and every rebased tree it deployed into; and the
 * pins of every op the journal shows in flight.
 */
static int find_roots(struct engine *e, struct punix_ops *tops, const char *dep, bool own, const struct store *s,
		      struct roots *out, struct sbuf *err)
{
	memset(out, 0, sizeof(*out));
	struct ops_stat st;
	int r = tops->stat(tops, dep, 1, &st);
	if (r < 0 || st.type != OPS_FT_DIR) {
		/* no deployments root is not "no roots": that would delete everything */
		sbuf_printf(err,
			    "the deployments root %s cannot be read: %s; garbage collection needs its generations as roots "
			    "and deletes nothing without them (is --deployments-root right?)",
			    dep, r < 0 ? strerror(-r) : "is not a directory");
		if (r == 0)
			r = -ENOTDIR;
		return -1;
	}
	r = stack_roots(tops, dep, "", s, out, err);
	/* the punix doing the collecting, when it runs from this store (host mode's bootstrap): a root */
	char *self = NULL;
	if (r == 0 && e->local->readlink(e->local, "/proc/self/exe", &self) == 0) {
		const char *real = s->real ? s->real : s->root;
		size_t n = strlen(real);
		if (!strncmp(self, real, n) && self[n] == '/') {
			struct sbuf p = SBUF_INIT;
			sbuf_printf(&p, "%s/%.*s", s->root, (int)strcspn(self + n + 1, "/"), self + n + 1);
			if (store_path_in(s->root, p.sb_buf))
				VEC_PUSH(&out->paths, sbuf_detach(&p, NULL));
			sbuf_free(&p);
		}
		free(self);
	}
	struct sbuf scratch = SBUF_INIT;
	sbuf_printf(&scratch, "%s/.dry-run", dep);
	if (r == 0 && own)
		r = tree_roots(scratch.sb_buf, dep, s, out, err);
	if (r == 0 && own)
		r = registered_roots(e, scratch.sb_buf, dep, s, out, err);
	sbuf_free(&scratch);
	if (r < 0) {
		str_vec_free(&out->paths);
		return -1;
	}
	struct journal_op *ops;
	size_t nops;
	struct journal_err je;
	/* from a worker thread: a read transaction of its own, beside the flush's batch */
	int lr = journal_running_list(e->journal, &ops, &nops, &je);
	if (lr < 0) {
		sbuf_printf(err, "%s", je.msg);
		str_vec_free(&out->paths);
		return -1;
	}
	for (size_t i = 0; i < nops; i++) {
		if (ops[i].state == JOURNAL_OP_CORRUPT) {
			/* an op we cannot read may be in flight: its pins are unknown */
			sbuf_printf(err,
				    "%s; garbage collection deletes nothing while an op's pins cannot be known "
				    "('punix journal show %llu', then 'punix journal set-aside %llu --yes')",
				    ops[i].corrupt ? ops[i].corrupt : "an op record is corrupt", (unsigned long long)ops[i].id,
				    (unsigned long long)ops[i].id);
			journal_ops_free(ops, nops);
			str_vec_free(&out->paths);
			return -1;
		}
		if (ops[i].state != JOURNAL_OP_RUNNING || !ops[i].plan)
			continue;
		struct op_plan plan;
		struct sbuf why = SBUF_INIT;
		size_t plen = ops[i].plan_len ? ops[i].plan_len : strlen(ops[i].plan);
		if (plan_decode(ops[i].plan, plen, &plan, &why) < 0) {
			/* a running op whose pins cannot be read may need anything */
			sbuf_printf(err,
				    "op %llu (running) has a plan that cannot be read (%s): garbage collection deletes "
				    "nothing while an op's pins cannot be known ('punix journal show %llu', then 'punix "
				    "recover' or 'punix journal set-aside %llu --yes')",
				    (unsigned long long)ops[i].id, why.sb_buf, (unsigned long long)ops[i].id,
				    (unsigned long long)ops[i].id);
			sbuf_free(&why);
			journal_ops_free(ops, nops);
			str_vec_free(&out->paths);
			return -1;
		}
		sbuf_free(&why);
		if (plan.npaths)
			out->inflight++;
		for (size_t k = 0; k < plan.npaths; k++) {
			/* a pin of another store (a rebased target's) is not ours to keep */
			if (store_path_in(s->root, plan.store_paths[k]))
				VEC_PUSH(&out->paths, xstrdup(plan.store_paths[k]));
		}
		plan_free(&plan);
	}
	journal_ops_free(ops, nops);
	return 0;
}

/*
 * The keep-set: the roots and everything they depend on, through the
 * index (keys borrowed from roots and ix). Returns its size.
 */
static size_t closure(const struct store_index *ix, const str_vec *roots, struct strmap *keep)
{
	VEC(const char *) todo = {0};
	size_t n = 0;
	for (size_t i = 0; i < roots->n; i++)
		VEC_PUSH(&todo, roots->v[i]);
	while (todo.n) {
		const char *p = todo.v[--todo.n];
		if (strmap_put(keep, p, (void *)p))
			continue; /* in it already */
		n++;
		const struct store_index_entry *en = store_index_get(ix, p);
		for (size_t k = 0; en && k < en->ndeps; k++)
			VEC_PUSH(&todo, en->deps[k]);
	}
	VEC_FREE(&todo);
	return n;
}

/*
 * Roots, keep-set and dead of store s, decided on the index ix (one read of
 * each registration). out's strings are its own.
 */
static int scan_roots_and_dead(struct engine *e, struct punix_ops *tops, const char *dep, bool own, struct store *s,
			       const struct store_index *ix, struct gc_scan *out, struct sbuf *err)
{
	memset(out, 0, sizeof(*out));
	struct roots roots;
	if (find_roots(e, tops, dep, own, s, &roots, err) < 0)
		return -1;
	struct strmap keep;
	strmap_init(&keep);
	out->keep = closure(ix, &roots.paths, &keep);
	str_vec dead = {0};
	for (size_t i = 0; i < ix->n; i++) {
		if (strmap_get(&keep, ix->v[i].path))
			continue;
		VEC_PUSH(&dead, xstrdup(ix->v[i].path));
		out->dead_bytes += ix->v[i].bytes;
	}
	strmap_free(&keep);
	out->stacks = roots.stacks;
	out->generations = roots.generations;
	out->inflight = roots.inflight;
	out->foreign = roots.foreign;
	out->roots = (const char **)roots.paths.v;
	out->nroots = roots.paths.n;
	out->dead = (const char **)dead.v;
	out->ndead = dead.n;
	out->scanned = true;
	return 0;
}

/* The index of s, then the scan on it. */
static int scan_store(struct engine *e, struct punix_ops *tops, const char *dep, bool own, struct store *s,
		      struct gc_scan *out, struct sbuf *err)
{
	struct store_index ix;
	memset(out, 0, sizeof(*out));
	if (store_index_read(s, &ix, err) < 0)
		return -1;
	int r = scan_roots_and_dead(e, tops, dep, own, s, &ix, out, err);
	store_index_free(&ix);
	return r;
}

/*
 * The store a collection works on: the deployer's own, or the copy of it
 * under a target's transport root, opened through that target's table
 * (logical directory: the deployer's; real one: under the root). A
 * directory there that is not a store is refused.
 */
static int target_store(struct engine *e, struct punix_ops *tops, const char *troot, struct store *tmp,
			struct store **out, struct sbuf *err)
{
	if (!troot || !*troot) {
		*out = e->store;
		return 0;
	}
	struct sbuf real = SBUF_INIT;
	sbuf_printf(&real, "%s%s", troot, e->store->root);
	int r = store_open(tmp, tops, e->store->root, real.sb_buf, NULL, 0, err);
	sbuf_free(&real);
	if (r < 0)
		return -1;
	*out = tmp;
	return 0;
}

int engine_gc_scan(struct engine *e, const struct gc_target *g, struct gc_scan *out, struct sbuf *err)
{
	memset(out, 0, sizeof(*out));
	bool own = !g->transport_root || !*g->transport_root;
	struct sbuf why = SBUF_INIT;
	struct punix_ops *tops = ops_beneath(own ? "/" : g->transport_root, &why);
	if (!tops) {
		sbuf_printf(err, "the target's root %s", why.sb_buf);
		sbuf_free(&why);
		return -1;
	}
	sbuf_free(&why);
	struct store tmp, *s;
	int r = target_store(e, tops, g->transport_root, &tmp, &s, err);
	if (r == 0) {
		r = scan_store(e, tops, g->deployments_root, own, s, out, err);
		if (s == &tmp)
			store_close(&tmp);
	}
	ops_beneath_free(tops);
	return r;
}

void gc_scan_free(struct gc_scan *s)
{
	for (size_t i = 0; i < s->nroots; i++)
		free((char *)s->roots[i]);
	free(s->roots);
	for (size_t i = 0; i < s->ndead; i++)
		free((char *)s->dead[i]);
	free(s->dead);
	memset(s, 0, sizeof(*s));
}

/* ---- the gc op ---------------------------------------------------------------------- */

/*
 * What the plan hands the sweep in memory, when both run in one process:
 * the store, held exclusively since before the plan's scan, and what the
 * dead it decided on weigh. A recovery's sweep has none and decides again.
 */
struct gc_state {
	struct store tmp, *s;
	int lock_h;
	uint64_t dead_bytes;
};

/* The op's store, opened and locked exclusively (waiting for builds and deploys to let go). */
static int lock_store(struct op_ctx *c, struct gc_state *st)
{
	struct sbuf err = SBUF_INIT;
	st->lock_h = -1;
	if (target_store(c->e, c->tops, c->plan.transport_root, &st->tmp, &st->s, &err) < 0) {
		op_fail(c, 1, "%s", err.sb_buf);
		sbuf_free(&err);
		return -1;
	}
	sbuf_free(&err);
	int r = store_lock(st->s, true, &st->lock_h);
	if (r < 0) {
		st->lock_h = -1;
		op_fail(c, 3, "cannot lock the store %s: %s", st->s->real, strerror(-r));
		if (st->s == &st->tmp)
			store_close(&st->tmp);
		return -1;
	}
	return 0;
}

static void unlock_store(struct gc_state *st)
{
	if (st->lock_h >= 0)
		store_unlock(st->s, st->lock_h);
	st->lock_h = -1;
	if (st->s == &st->tmp)
		store_close(&st->tmp);
	st->s = NULL;
}

void gc_state_drop(struct op_ctx *c)
{
	if (!c->gc)
		return;
	unlock_store(c->gc);
	free(c->gc);
	c->gc = NULL;
}

/* The scan of the op's target, of its store (locked). */
static int op_scan(struct op_ctx *c, struct store *s, struct store_index *ix, struct gc_scan *out)
{
	const char *troot = c->plan.transport_root;
	struct sbuf err = SBUF_INIT;
	int r = store_index_read(s, ix, &err);
	if (r == 0) {
		r = scan_roots_and_dead(c->e, c->tops, c->plan.deployments_root, !troot || !*troot, s, ix, out, &err);
		if (r < 0)
			store_index_free(ix);
	}
	if (r < 0)
		op_fail(c, 1, "%s", err.sb_buf);
	sbuf_free(&err);
	return r < 0 ? -1 : 0;
}

/*
 * The store is locked exclusively first and stays locked until the sweep
 * has ended: builds and deploys, which hold it shared while they register
 * or pin paths, wait. So what the plan decides on its one scan is what the
 * sweep would decide under the lock.
 */
static int gc_plan(struct op_ctx *c)
{
	struct gc_state *st = xcalloc(1, sizeof(*st));
	if (lock_store(c, st) < 0) {
		free(st);
		return 1;
	}
	c->gc = st;
	struct store_index ix;
	struct gc_scan scan;
	if (op_scan(c, st->s, &ix, &scan) < 0) {
		gc_state_drop(c);
		return 1;
	}
	store_index_free(&ix);
	c->plan.roots = (long)scan.nroots;
	c->plan.keep_set = (long)scan.keep;
	c->plan.dead = xcalloc(scan.ndead + 1, sizeof(*c->plan.dead));
	for (size_t i = 0; i < scan.ndead; i++)
		c->plan.dead[i] = xstrdup(scan.dead[i]);
	c->plan.ndead = scan.ndead;
	st->dead_bytes = scan.dead_bytes;
	c->res->npaths = scan.keep;
	struct gc_scan *report = c->req.type == OP_GC ? c->req.gc.scan : NULL;
	if (report) {
		gc_scan_free(report);
		*report = scan; /* the caller's now */
	} else {
		gc_scan_free(&scan);
	}
	return 0;
}

static int gc_mark(struct op_ctx *c)
{
	(void)c; /* the plan holds the candidates; the sweep deletes them */
	return 0;
}

/*
 * A recovery's sweep, in another process: the lock was let go when the op
 * died, so it decides again under the lock, on one scan of its own. A
 * planned path is deleted if it is still dead, or if it is no longer
 * registered (the interrupted sweep had begun on it: what is left of it).
 */
static int recovery_doomed(struct op_ctx *c, struct gc_state *st, const char ***doomed, size_t *n)
{
	struct store_index ix;
	struct gc_scan scan;
	if (op_scan(c, st->s, &ix, &scan) < 0)
		return -1;
	struct strmap still_dead;
	strmap_init(&still_dead);
	for (size_t i = 0; i < scan.ndead; i++)
		strmap_put(&still_dead, scan.dead[i], (void *)scan.dead[i]);
	*doomed = xcalloc(c->plan.ndead + 1, sizeof(**doomed));
	*n = 0;
	for (size_t i = 0; i < c->plan.ndead; i++) {
		const char *p = c->plan.dead[i];
		const struct store_index_entry *en = store_index_get(&ix, p);
		if (en && !strmap_get(&still_dead, p))
			continue; /* pinned since the plan: keep it */
		st->dead_bytes += en ? en->bytes : 0;
		(*doomed)[(*n)++] = p;
	}
	strmap_free(&still_dead);
	gc_scan_free(&scan);
	store_index_free(&ix);
	return 0;
}

static int gc_sweep(struct op_ctx *c)
{
	struct gc_state *st = c->gc;
	const char **doomed = NULL;
	size_t ndoomed = 0;
	if (!st) {
		st = c->gc = xcalloc(1, sizeof(*st));
		if (lock_store(c, st) < 0) {
			free(st);
			c->gc = NULL;
			return 1;
		}
		if (recovery_doomed(c, st, &doomed, &ndoomed) < 0) {
			gc_state_drop(c);
			return 1;
		}
	} else {
		/* locked since before the plan's scan: nothing could pin or register a path since */
		doomed = xcalloc(c->plan.ndead + 1, sizeof(*doomed));
		for (size_t i = 0; i < c->plan.ndead; i++)
			doomed[i] = c->plan.dead[i];
		ndoomed = c->plan.ndead;
	}
	struct store *s = st->s;
	size_t removed = 0;
	/*
	 * All at once: one sync of the registrations. Only when someone
	 * watches, in about twenty slices, each its own sync (each path's
	 * registration still goes before its tree), to say how far it got.
	 */
	size_t slice = ndoomed;
	if (c->req.count && !c->parent && ndoomed > 256)
		slice = ndoomed / 20 > 64 ? ndoomed / 20 : 64;
	if (ndoomed)
		op_count(c, "paths deleted", 0, ndoomed, 0);
	int r = 0;
	for (size_t at = 0; at < ndoomed && r == 0; at += slice) {
		size_t k = ndoomed - at < slice ? ndoomed - at : slice, got = 0;
		r = store_delete_many(s, doomed + at, k, &got);
		removed += got;
		if (r == 0)
			op_count(c, "paths deleted", removed, ndoomed, 0);
	}
	if (r < 0)
		op_fail(c, 3, "deleting dead paths of the store %s: %s", s->real, strerror(-r));
	free(doomed);
	if (r == 0) {
		r = store_empty_trash(s);
		if (r < 0)
			op_fail(c, 3, "emptying the trash of the store %s: %s", s->real, strerror(-r));
	}
	c->res->generation = (long)removed;
	c->res->nfiles = (size_t)st->dead_bytes;
	gc_state_drop(c);
	return r < 0 ? 3 : 0;
}

static const struct step gc_steps[] = {
	{"plan", gc_plan, NULL, false},
	{"mark", gc_mark, NULL, false},
	{"sweep", gc_sweep, NULL, true}, /* the commit point: deleting */
};

const struct op_kind gc_kind = {"gc", gc_steps, NSTEPS(gc_steps)};


/* ---- the prune op -------------------------------------------------------------------- */

static int prune_plan(struct op_ctx *c)
{
	const char *dep = c->plan.deployments_root;
	struct sbuf err = SBUF_INIT;
	long current = current_generation(c->tops, dep, c->stack, &err);
	if (current < 0) {
		op_fail(c, 1, "%s", err.sb_buf);
		sbuf_free(&err);
		return 1;
	}
	sbuf_free(&err);
	long *gens;
	size_t n;
	if (list_generations(c->tops, dep, c->stack, &gens, &n) < 0)
		return op_fail(c, 3, "cannot list the generations of stack '%s'", c->stack);
	long keep = c->plan.keep;
	bool cur_found = false;
	for (size_t i = 0; i < n; i++)
		cur_found |= gens[i] == current;
	if (!cur_found) {
		/* deleting by age with no live generation to anchor it could delete them all */
		free(gens);
		if (current == 0)
			return op_fail(c, 1, "stack '%s' has no current generation; prune deletes nothing", c->stack);
		return op_fail(c, 1,
			       "stack '%s': current names gen-%03ld, which does not exist; prune deletes nothing until "
			       "it is repaired ('punix service set-current %s N' with a kept generation)",
			       c->stack, current, c->stack);
	}
	/* the newest `keep` generations stay, and the current one whatever its age */
	c->plan.prune = xcalloc(n + 1, sizeof(*c->plan.prune));
	for (size_t i = 0; i + (size_t)keep < n; i++)
		if (gens[i] != current)
			c->plan.prune[c->plan.nprune++] = gens[i];
	free(gens);
	c->plan.generation = current;
	c->res->generation = current;
	return 0;
}

static int prune_remove(struct op_ctx *c)
{
	const char *dep = c->plan.deployments_root;
	struct sbuf err = SBUF_INIT;
	long current = current_generation(c->tops, dep, c->stack, &err);
	sbuf_free(&err);
	int r = 0;
	size_t removed = 0;
	for (size_t i = 0; i < c->plan.nprune && r == 0; i++) {
		long g = c->plan.prune[i];
		if (g == current)
			continue; /* never the live one */
		char *m = gen_manifest_path(dep, c->stack, g), *f = gen_files_dir(dep, c->stack, g);
		char *s = gen_secrets_dir(dep, c->stack, g);
		r = c->tops->unlink(c->tops, m);
		if (r == -ENOENT)
			r = 0;
		if (r == 0) {
			char *dir = stack_dir(dep, c->stack);
			r = c->tops->fsync_path(c->tops, dir);
			free(dir);
		}
		if (r == 0)
			r = ops_remove_tree(c->tops, f);
		if (r == 0)
			r = ops_remove_tree(c->tops, s);
		if (r < 0)
			op_fail(c, 3, "pruning gen-%03ld of %s/%s: %s", g, dep, c->stack, strerror(-r));
		else
			removed++;
		free(m);
		free(f);
		free(s);
	}
	c->res->npaths = removed;
	return r < 0 ? 3 : 0;
}

static const struct step prune_steps[] = {
	{"plan", prune_plan, NULL, false},
	{"remove", prune_remove, NULL, true}, /* the commit point: deleting */
};

const struct op_kind prune_kind = {"prune", prune_steps, NSTEPS(prune_steps)};

