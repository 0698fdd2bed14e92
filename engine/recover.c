/*
 * recover.c - finishing or undoing interrupted ops from the journal: before
 * the commit point undo what ran, at or after it run the rest; temporaries
 * an interrupted op may have left are swept first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* The op ids the journal shows as running: their push temporaries are in use. */
struct live_ops {
	uint64_t *ids;
	size_t n;
};

struct sweep {
	const char *prefix;          /* entries named <prefix>... are temporaries */
	const struct live_ops *live; /* <prefix><op id>-...: only those of no running op but self */
	uint64_t self;
	int removed;
};

static bool op_live(const struct sweep *sw, const char *rest)
{
	char *end;
	unsigned long long id = strtoull(rest, &end, 10);
	if (end == rest || *end != '-')
		return false; /* not ours to keep: an older punix's, or garbage */
	if (id == sw->self)
		return false;
	for (size_t i = 0; i < sw->live->n; i++)
		if (sw->live->ids[i] == id)
			return true;
	return false;
}

static int sweep_child(struct punix_ops *o, const char *child, const char *name, void *arg)
{
	struct sweep *sw = arg;
	size_t n = strlen(sw->prefix);
	if (strncmp(name, sw->prefix, n) != 0 || (sw->live && op_live(sw, name + n)))
		return 0;
	if (ops_remove_tree(o, child) == 0)
		sw->removed++;
	return 0;
}

/*
 * Removes <dir>/<prefix>... entries: all of them (the caller holds the
 * lock of everything that writes them), or with live only those whose op
 * is not running (a push of another stack's op may be under way).
 */
static void sweep_dir(struct punix_ops *o, const char *dir, const char *prefix, const struct live_ops *live,
		      uint64_t self)
{
	struct sweep sw = {prefix, live, self, 0};
	ops_each_child(o, dir, sweep_child, &sw);
}

/* The temporary files an interrupted write of path may have left (ops_tmp_name). */
static void sweep_beside(struct punix_ops *o, const char *path)
{
	char *dir = ops_dirname(path);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct sbuf prefix = SBUF_INIT;
	sbuf_printf(&prefix, OPS_TMP_PREFIX_FMT, base);
	sweep_dir(o, dir, prefix.sb_buf, NULL, 0);
	sbuf_free(&prefix);
	free(dir);
}

/*
 * What an op interrupted anywhere may leave on the target besides what its
 * undo or redo handles: temporary files of durable writes, a temporary
 * link for the flip, half-pushed store paths. Recovery holds the stack's
 * lock; pushes of ops still running (into a store other stacks share) are
 * left alone.
 */
static void sweep_temps_live(struct op_ctx *c, const struct live_ops *live)
{
	struct punix_ops *o = c->tops;
	char *dir = stack_dir(dep_root(c), c->stack);
	sweep_dir(o, dir, ".current.tmp-", NULL, 0);
	char *m = gen_manifest_path(dep_root(c), c->stack, c->plan.generation);
	sweep_beside(o, m);
	free(m);
	free(dir);
	for (size_t i = 0; i < c->plan.nconfig; i++)
		sweep_beside(o, c->plan.config_files[i].path);
	for (size_t i = 0; i < c->plan.nsecret; i++)
		sweep_beside(o, c->plan.secret_files[i].path);
	const char *store_root = c->plan.store_root;
	if (store_root && *store_root && !target_is_here(c))
		store_sweep_creation(o, store_root);
	for (size_t i = 0; i < c->plan.npaths && store_root; i++) {
		const char *p = c->plan.store_paths[i];
		if (!store_path_in(store_root, p))
			continue; /* a corrupt plan: nothing is swept because of it */
		struct sbuf push = SBUF_INIT, meta = SBUF_INIT;
		sbuf_printf(&push, "%s.push-", store_path_name(p));
		sweep_dir(o, store_root, push.sb_buf, live, c->id);
		sbuf_printf(&meta, "%s/.meta/%s.json", store_root, store_path_name(p));
		sweep_beside(o, meta.sb_buf);
		sbuf_free(&push);
		sbuf_free(&meta);
	}
}

void sweep_temps(struct op_ctx *c)
{
	struct live_ops none = {NULL, 0};
	sweep_temps_live(c, &none);
}

/* ---- one interrupted op ------------------------------------------------------------------ */

static void rec_next(struct op_ctx *c);

/* On a worker: the recovery's connection to its target is closed. */
static void rec_close_work(struct op_ctx *r)
{
	if (r->tops && r->tlock_h >= 0)
		r->tops->unlock(r->tops, r->tlock_h);
	r->tlock_h = -1;
	if (r->tops)
		engine_target_ops_free(r->tops);
	r->tops = NULL;
}

static void rec_free_now(struct op_ctx *r)
{
	struct op_ctx *c = r->parent;
	free(r->reverted);
	plan_free(&r->plan);
	journal_steps_free(r->rsteps, r->nrsteps);
	journal_op_free(&r->rop);
	free(r->live);
	sbuf_free(&r->line);
	sbuf_free(&r->host_report);
	op_result_free(&r->own_res);
	free(r);
	c->ri++;
	rec_next(c);
}

/* Frees a recovery once what it queued in the journal is durable (the queue points at it). */
static void rec_freed(struct op_ctx *r)
{
	op_when_durable(r, rec_free_now);
}

/* A recovery context for the op c->rops[c->ri]; its lines go to c. */
static void rec_end(struct op_ctx *r)
{
	struct op_ctx *c = r->parent;
	long gen = r->plan.generation, prev = r->plan.previous;
	const struct journal_op *op = &r->rop;
	bool store_op = r->kind == &gc_kind || r->kind == &prune_kind;
	if (r->kind == &fleet_kind) {
		sbuf_printf(&r->line, "op %llu (%s): ", (unsigned long long)op->id, op->kind);
		fleet_report(&r->plan, &r->line);
	} else if (r->host_report.sb_len) {
		sbuf_printf(&r->line, "op %llu (%s %s): %s", (unsigned long long)op->id, op->kind, op->stack,
			    r->host_report.sb_buf);
	} else if (kind_is_host(r->kind)) {
		sbuf_printf(&r->line, "op %llu (%s %s): interrupted before the target was asked to run it; nothing "
				      "changed there", (unsigned long long)op->id, op->kind, op->stack);
	} else if (r->committed && r->reverted) {
		sbuf_printf(&r->line, "op %llu (%s %s): reverted to gen-%03ld: %s", (unsigned long long)op->id, op->kind,
			    op->stack, prev, r->reverted);
	} else if (r->committed) {
		if (r->res->exit == 0 && store_op)
			sbuf_printf(&r->line, "op %llu (%s %s): rolled forward; its %s finished", (unsigned long long)op->id,
				    op->kind, op->stack, r->kind->steps[kind_commit(r->kind)].name);
		else if (r->res->exit == 0)
			sbuf_printf(&r->line, "op %llu (%s %s): rolled forward; current is gen-%03ld",
				    (unsigned long long)op->id, op->kind, op->stack, gen);
		else
			sbuf_printf(&r->line, "op %llu (%s %s): rolling forward failed: %s", (unsigned long long)op->id,
				    op->kind, op->stack, r->res->error.sb_len ? r->res->error.sb_buf : "no reason was given");
	} else if (r->undo_rc < 0) {
		sbuf_printf(&r->line, "op %llu (%s %s): undoing it failed; it stays in the journal for the next recover",
			    (unsigned long long)op->id, op->kind, op->stack);
	} else if (store_op) {
		sbuf_printf(&r->line, "op %llu (%s %s): stopped before deleting anything; nothing to undo",
			    (unsigned long long)op->id, op->kind, op->stack);
	} else if (prev > 0) {
		sbuf_printf(&r->line, "op %llu (%s %s): undone before the flip; gen-%03ld stays current",
			    (unsigned long long)op->id, op->kind, op->stack, prev);
	} else {
		sbuf_printf(&r->line, "op %llu (%s %s): undone before the flip; nothing was live",
			    (unsigned long long)op->id, op->kind, op->stack);
	}
	bool failed = r->committed ? r->res->exit != 0 : r->undo_rc < 0;
	/* the op keeps running in the journal after a failure: the next recover tries again */
	if (failed && !c->res->exit) {
		c->res->exit = 3;
		sbuf_printf(&c->res->error, "%s", r->line.sb_buf);
	}
	if (c->report)
		c->report(c->report_arg, r->line.sb_buf);
	else
		sbuf_printf(&c->res->recovered, "%s\n", r->line.sb_buf);
	if (failed && c->recover_rc)
		*c->recover_rc = -1;
	op_exec(r, rec_close_work, rec_freed);
}

/* The op could not be recovered: its line says why, and the scope stops there. */
static void rec_fail(struct op_ctx *r)
{
	struct op_ctx *c = r->parent;
	if (!c->res->exit) {
		c->res->exit = 3;
		sbuf_printf(&c->res->error, "%s", r->line.sb_buf);
	}
	if (c->report)
		c->report(c->report_arg, r->line.sb_buf);
	if (c->recover_rc)
		*c->recover_rc = -1;
	sbuf_reset(&r->line);
	rec_freed(r);
}

/* On a worker: reach the target and sweep what the op may have left half-made. */
static void rec_prepare_work(struct op_ctx *r)
{
	struct target_spec t = {0};
	t.ssh = r->plan.ssh;
	t.known_hosts = r->plan.known_hosts;
	t.key = r->plan.key;
	t.transport_root = r->plan.transport_root;
	t.deployments_root = r->plan.deployments_root;
	t.unit_dir = r->plan.unit_dir;
	t.supervisor_conf = r->plan.supervisor_conf;
	struct sbuf terr = SBUF_INIT;
	r->tops = engine_target_ops(r->e, &t, &terr);
	if (!r->tops) {
		sbuf_printf(&r->line, "op %llu (%s %s): cannot reach its target yet: %s", (unsigned long long)r->rop.id,
			    r->rop.kind, r->rop.stack, terr.sb_len ? terr.sb_buf : "no reason was given");
		sbuf_free(&terr);
		return;
	}
	sbuf_free(&terr);
	if (kind_is_host(r->kind) || r->kind == &fleet_kind)
		return; /* the target's punix holds its own locks and cleans up after itself; a fleet run touches no target */
	if (r->parent->recover_only) {
		/* punix recover: the stack's lock on the target too (an op's own recovery holds it already) */
		struct sbuf lerr = SBUF_INIT;
		if (lock_target(r->tops, r->plan.deployments_root, r->stack, &r->tlock_h, &lerr) < 0) {
			r->tlock_h = -1;
			sbuf_printf(&r->line, "op %llu (%s %s): left alone: %s", (unsigned long long)r->rop.id, r->rop.kind,
				    r->rop.stack, lerr.sb_buf);
			sbuf_free(&lerr);
			engine_target_ops_free(r->tops);
			r->tops = NULL;
			return;
		}
		sbuf_free(&lerr);
	}
	struct live_ops live = {r->live, r->nlive};
	sweep_temps_live(r, &live);
	/* here, off the loop: whether an op that waited for a confirmation is kept (its decision file) */
	size_t last = r->kind->nsteps - 1;
	r->not_kept = r->committed && r->plan.confirm_timeout && !strcmp(r->kind->steps[last].name, "confirm") &&
		      !confirm_kept(r);
}

static void rec_prepared(struct op_ctx *r)
{
	if (!r->tops) {
		rec_fail(r);
		return;
	}
	r->on_end = rec_end;
	if (r->committed) {
		size_t from = kind_commit(r->kind);
		for (size_t i = 0; i < r->nrsteps; i++)
			if (r->rsteps[i].index >= from && r->rsteps[i].state == JOURNAL_STEP_DONE)
				from = r->rsteps[i].index + 1;
		/*
		 * An op waiting for a confirmation that was not given is flipped
		 * back by its confirm step: its own generation is not made live
		 * again, nor its services restarted, on the way there.
		 */
		if (r->not_kept && from < r->kind->nsteps - 1)
			from = r->kind->nsteps - 1;
		r->i = from;
		op_steps(r);
	} else {
		r->u = r->last;
		op_undo(r);
	}
}

/* Starts recovering c->rops[c->ri] (loop thread). */
static void rec_start(struct op_ctx *c, const struct journal_op *op)
{
	struct engine *e = c->e;
	struct op_ctx *r = xcalloc(1, sizeof(*r));
	r->e = e;
	r->parent = c;
	r->res = &r->own_res;
	r->lock_h = r->store_h = r->tlock_h = -1;
	r->id = op->id;
	struct journal_err je;
	if (journal_op_get(e->journal, op->id, &r->rop, &r->rsteps, &r->nrsteps, &je) < 0) {
		sbuf_printf(&r->line, "%s", je.msg);
		goto fail;
	}
	r->stack = r->rop.stack;
	r->kind = find_kind(r->rop.kind);
	if (!r->kind) {
		sbuf_printf(&r->line, "op %llu: unknown kind '%s'; left as it is", (unsigned long long)op->id, r->rop.kind);
		goto fail;
	}
	if (r->rop.plan) {
		/* a plan that does not decode is never taken for none: the op stays for a person to look at */
		struct sbuf perr = SBUF_INIT;
		size_t plen = r->rop.plan_len ? r->rop.plan_len : strlen(r->rop.plan);
		if (plan_decode(r->rop.plan, plen, &r->plan, &perr) < 0) {
			sbuf_printf(&r->line,
				    "op %llu (%s %s): its plan cannot be read (%s); left alone (see it with 'punix "
				    "journal show %llu'; once what it did is checked, 'punix journal set-aside %llu --yes')",
				    (unsigned long long)op->id, r->rop.kind, r->rop.stack, perr.sb_buf,
				    (unsigned long long)op->id, (unsigned long long)op->id);
			sbuf_free(&perr);
			goto fail;
		}
		sbuf_free(&perr);
		r->have_plan = true;
	}
	r->last = -1;
	for (size_t i = 0; i < r->nrsteps; i++) {
		if (r->rsteps[i].index >= r->kind->nsteps)
			continue;
		if ((long)r->rsteps[i].index > r->last)
			r->last = (long)r->rsteps[i].index;
		if (r->rsteps[i].index >= kind_commit(r->kind) && r->rsteps[i].state != JOURNAL_STEP_UNDONE)
			r->committed = true;
	}
	if (!r->have_plan) {
		/* interrupted while planning: nothing on the target was touched */
		journal_finish(r, JOURNAL_OP_ABORTED);
		sbuf_printf(&r->line, "op %llu (%s %s): interrupted while planning; nothing to undo",
			    (unsigned long long)op->id, r->rop.kind, r->rop.stack);
		if (c->report)
			c->report(c->report_arg, r->line.sb_buf);
		else
			sbuf_printf(&c->res->recovered, "%s\n", r->line.sb_buf);
		rec_freed(r);
		return;
	}
	/* the ops running now, whose pushes are left alone (all of the journal's, not only this scope's) */
	struct journal_op *all;
	size_t nall;
	uint64_t *ids = NULL;
	size_t nids = 0;
	if (journal_running_list(e->journal, &all, &nall, &je) == 0) {
		ids = xcalloc(nall + 1, sizeof(*ids));
		for (size_t i = 0; i < nall; i++)
			if (all[i].state == JOURNAL_OP_RUNNING && all[i].id != op->id)
				ids[nids++] = all[i].id;
		journal_ops_free(all, nall);
	}
	r->live = ids;
	r->nlive = nids;
	r->ex = engine_executor(e, r->plan.ssh);
	struct sbuf serr = SBUF_INIT;
	if (engine_need_ssh(e, r->plan.ssh, &serr) < 0) {
		sbuf_printf(&r->line, "op %llu (%s %s): %s", (unsigned long long)op->id, r->rop.kind, r->rop.stack,
			    serr.sb_buf);
		sbuf_free(&serr);
		goto fail;
	}
	sbuf_free(&serr);
	op_exec(r, rec_prepare_work, rec_prepared);
	return;
fail:
	rec_fail(r);
}

static void rec_next(struct op_ctx *c)
{
	/* one failure stops the scope: its later ops may depend on the earlier */
	while (c->ri < c->nrops && !c->res->exit) {
		const struct journal_op *op = &c->rops[c->ri];
		if (op->state == JOURNAL_OP_RUNNING && op->scope && strcmp(op->scope, c->scope) == 0) {
			rec_start(c, op);
			return;
		}
		c->ri++;
	}
	op_cont_fn next = c->after_recovery;
	c->after_recovery = NULL;
	next(c);
}

void recover_scope(struct op_ctx *c, op_cont_fn next)
{
	struct journal_err je;
	c->after_recovery = next;
	if (journal_running_list(c->e->journal, &c->rops, &c->nrops, &je) < 0) {
		op_fail(c, 3, "%s", je.msg);
		c->rops = NULL;
		c->nrops = 0;
	}
	c->ri = 0;
	rec_next(c);
}
