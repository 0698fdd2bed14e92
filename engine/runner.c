/*
 * runner.c - the op runner: starting an op on its stack's lock, running its
 * step table with INTENT before and DONE after each step, undoing what ran
 * when a step before the commit point fails (see engine.h).
 *
 * An op's plan (plan.h, recorded in its journal record) holds everything the
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
#include "proto.h"
#include "systemd.h"
#include "op_internal.h"
#include "ssh.h"
#include "target.h"

/* ---- an op's life ------------------------------------------------------------------------ */

/* Deploys, rollbacks and set-currents hold the store lock shared: what they pin is not collected under them. */
static bool holds_store_shared(const struct op_ctx *c)
{
	return !c->recover_only && (c->req.type == OP_DEPLOY || c->req.type == OP_ROLLBACK ||
				    c->req.type == OP_SET_CURRENT);
}

/* On a worker: the locks, the record of a rebased tree, the target's table. */
static void open_work(struct op_ctx *c)
{
	struct engine *e = c->e;
	if (holds_store_shared(c)) {
		int rc = store_lock(e->store, false, &c->store_h);
		if (rc < 0) {
			c->store_h = -1;
			op_fail(c, 3, "cannot lock the store %s: %s", e->store->root, strerror(-rc));
			return;
		}
	}
	struct sbuf what = SBUF_INIT;
	if (c->req.type == OP_GC && !c->recover_only)
		sbuf_printf(&what, "the store");
	else
		sbuf_printf(&what, "stack '%s'", c->stack);
	int rc = lock_scope(e, c->scope, what.sb_buf, &c->lock_h, &c->res->error);
	sbuf_free(&what);
	if (rc < 0) {
		c->lock_h = -1;
		c->res->exit = rc == -EWOULDBLOCK ? 4 : 3;
		return;
	}
	if (c->recover_only)
		return;
	struct sbuf terr = SBUF_INIT;
	if (c->req.type != OP_GC && remember_tree(e, &c->req.target, &terr) < 0) {
		op_fail(c, 3, "%s", terr.sb_buf);
		sbuf_free(&terr);
		return;
	}
	c->tops = engine_target_ops(e, &c->req.target, &terr);
	if (!c->tops)
		op_fail(c, 3, "%s", terr.sb_buf);
	sbuf_free(&terr);
	/* host mode: the target's punix takes the stack's lock there itself */
	int hm = c->tops && c->req.type != OP_GC ? host_choose(c) : 0;
	if (hm < 0)
		return;
	if (c->tops && hm == 0 && c->req.target.confirm_timeout > 0 && c->req.target.ssh && c->req.target.ssh[0] &&
	    c->req.type != OP_GC && c->req.type != OP_PRUNE) {
		/* nothing of ours runs there to flip back by itself */
		op_fail(c, 2,
			"--confirm-timeout needs host mode: the target must flip back by itself, and in agentless mode "
			"nothing of punix runs there (install punix on the target, or leave out --confirm-timeout)");
		return;
	}
	if (c->tops && c->req.type != OP_GC && hm == 0) {
		struct sbuf lerr = SBUF_INIT;
		int lr = lock_target(c->tops, c->req.target.deployments_root, c->stack, &c->tlock_h, &lerr);
		if (lr < 0) {
			c->tlock_h = -1;
			op_fail(c, lr == -EWOULDBLOCK ? 4 : 3, "%s", lerr.sb_buf);
		}
		sbuf_free(&lerr);
	}
}

static void begin(struct op_ctx *c);
static void close_op(struct op_ctx *c);

static void opened(struct op_ctx *c)
{
	if (c->res->exit) {
		if (c->recover_only && c->report) {
			/* busy: another punix holds the stack, and finishes what it finds */
			struct sbuf line = SBUF_INIT;
			sbuf_printf(&line, "%s: left alone: %s", c->line.sb_buf, c->res->error.sb_buf);
			c->report(c->report_arg, line.sb_buf);
			sbuf_free(&line);
		}
		close_op(c);
		return;
	}
	/* an op interrupted on this stack is finished or undone first */
	recover_scope(c, begin);
}

static void begin(struct op_ctx *c)
{
	if (c->res->exit || c->recover_only) {
		if (c->res->exit && !c->recover_only) {
			struct sbuf why = SBUF_INIT;
			sbuf_printf(&why, "recovering an interrupted op on stack '%s' failed: %s", c->stack,
				    c->res->error.sb_buf);
			sbuf_reset(&c->res->error);
			sbuf_puts(&c->res->error, why.sb_buf);
			sbuf_free(&why);
		}
		close_op(c);
		return;
	}
	const struct target_spec *t = &c->req.target;
	struct op_plan *p = &c->plan;
	/* "" for what is not set, as recovery reads it back */
	p->ssh = xstrdup(t->ssh ? t->ssh : "");
	p->known_hosts = xstrdup(t->known_hosts ? t->known_hosts : "");
	p->key = xstrdup(t->key ? t->key : "");
	p->stack = xstrdup(c->stack);
	p->transport_root = xstrdup(t->transport_root ? t->transport_root : "");
	p->deployments_root = xstrdup(t->deployments_root ? t->deployments_root : "");
	p->unit_dir = xstrdup(t->unit_dir ? t->unit_dir : "");
	p->supervisor_conf = plan_strdup(t->supervisor_conf);
	p->activate = t->activate;
	p->enable = t->enable;
	p->store_root = plan_strdup(c->e->store->root);
	p->remote_punix = plan_strdup(t->remote_punix);
	if (t->confirm_timeout > 0 && c->req.type != OP_PRUNE && c->req.type != OP_GC) {
		p->confirm_timeout = t->confirm_timeout;
		p->health = plan_strdup(t->health);
		/* the target's punix waits for the token its deployer sent; a deployer sends its own */
		p->confirm_needed = t->confirm_token || kind_is_host(c->kind);
		p->confirm_token = t->confirm_token ? xstrdup(t->confirm_token) : confirm_new_token();
	}
	if (c->req.type == OP_PRUNE)
		p->keep = c->keep;
	if (journal_begin(c) < 0) {
		close_op(c);
		return;
	}
	c->i = 0;
	c->on_end = close_op;
	op_steps(c);
}

/* On a worker: what the op holds is let go (an SSH connection is closed here). */
static void close_work(struct op_ctx *c)
{
	if (c->have_bp)
		build_plan_free(&c->bp);
	c->have_bp = false;
	rendered_free(&c->rf);
	free_secrets(c);
	gc_state_drop(c);
	host_drop(c);
	if (c->tops && c->tlock_h >= 0)
		c->tops->unlock(c->tops, c->tlock_h);
	c->tlock_h = -1;
	if (c->tops)
		engine_target_ops_free(c->tops);
	c->tops = NULL;
	if (c->lock_h >= 0)
		c->e->local->unlock(c->e->local, c->lock_h);
	c->lock_h = -1;
	if (c->store_h >= 0)
		store_unlock(c->e->store, c->store_h);
	c->store_h = -1;
}

static void open_work(struct op_ctx *c);
static void opened(struct op_ctx *c);

static void report_done(struct op_ctx *c)
{
	struct engine *e = c->e;
	for (struct op_ctx **p = &e->running; *p; p = &(*p)->next_running)
		if (*p == c) {
			*p = c->next_running;
			break;
		}
	e->inflight--;
	/* the oldest op waiting for this scope goes next (the registry is newest first) */
	struct op_ctx *next = NULL;
	for (struct op_ctx *o = e->running; o; o = o->next_running)
		if (o->queued && !strcmp(o->scope, c->scope))
			next = o;
	if (next) {
		next->queued = false;
		op_exec(next, open_work, opened);
	}
	if (c->done)
		c->done(c->done_arg, c->res);
	plan_free(&c->plan);
	free(c->reverted);
	sbuf_free(&c->host_report);
	free(c->scope);
	journal_ops_free(c->rops, c->nrops);
	op_result_free(&c->own_res);
	sbuf_free(&c->line);
	free(c);
}

static void let_go(struct op_ctx *c)
{
	op_exec(c, close_work, report_done);
}

/*
 * What the op recorded is durable before it lets go of its stack (the next
 * op there would take a record still queued for one interrupted) and
 * before anyone is told how it ended.
 */
static void close_op(struct op_ctx *c)
{
	op_when_durable(c, let_go);
}

uint64_t engine_submit(struct engine *e, const struct op_request *req, op_done_fn done, void *arg)
{
	struct op_ctx *c = xcalloc(1, sizeof(*c));
	c->e = e;
	c->req = *req;
	c->seq = ++e->submitted;
	c->res = &c->own_res;
	c->lock_h = c->store_h = c->tlock_h = -1;
	c->done = done;
	c->done_arg = arg;
	c->kind = kind_of(req->type);
	c->started = (int64_t)uv_now(&e->loop); /* the loop's monotonic clock, in ms */
	c->in = req->deploy;
	c->want = req->generation;
	c->keep = req->keep;
	if (req->type == OP_GC) {
		/* one collection of one store at a time, wherever it is */
		struct sbuf scope = SBUF_INIT;
		sbuf_printf(&scope, "store|%s%s", req->gc.transport_root ? req->gc.transport_root : "", e->store->root);
		c->scope = sbuf_detach(&scope, NULL);
		c->stack = "(store)";
		c->req.target.transport_root = req->gc.transport_root;
		c->req.target.deployments_root = req->gc.deployments_root;
	} else {
		c->stack = !req->deploy ? req->stack : req->deploy->bundle ? req->deploy->bundle->stack : req->deploy->stack->name;
		c->scope = make_scope(&req->target, c->stack);
	}
	for (struct op_ctx *o = e->running; o && req->wait; o = o->next_running)
		if (!strcmp(o->scope, c->scope))
			c->queued = true;
	c->ex = engine_executor(e, req->type == OP_GC ? NULL : req->target.ssh);
	struct sbuf serr = SBUF_INIT;
	if (req->type != OP_GC && engine_need_ssh(e, req->target.ssh, &serr) < 0)
		op_fail(c, 3, "%s", serr.sb_buf);
	sbuf_free(&serr);
	c->next_running = e->running;
	e->running = c;
	e->inflight++;
	if (!c->queued)
		op_exec(c, open_work, opened);
	return c->seq;
}

/* Starts engine_recover's work on one scope: lock it, recover it, let it go. */
void op_submit_recovery(struct engine *e, const struct journal_op *first, void (*report)(void *arg, const char *line),
			void *arg, int *rc)
{
	const char *scope = first->scope, *stack = first->stack;
	struct op_ctx *c = xcalloc(1, sizeof(*c));
	c->e = e;
	c->seq = ++e->submitted;
	c->res = &c->own_res;
	c->lock_h = c->store_h = c->tlock_h = -1;
	c->recover_only = true;
	c->scope = xstrdup(scope);
	c->stack = stack;
	c->report = report;
	c->report_arg = arg;
	c->recover_rc = rc;
	sbuf_printf(&c->line, "op %llu (%s %s)", (unsigned long long)first->id, first->kind, stack);
	c->next_running = e->running;
	e->running = c;
	e->inflight++;
	op_exec(c, open_work, opened);
}

int engine_run(struct engine *e)
{
	/* every op in flight keeps a work request or the idle handle active */
	uv_run(&e->loop, UV_RUN_DEFAULT);
	return e->inflight ? -EDEADLK : 0;
}

static void copy_result(void *arg, struct op_result *r)
{
	struct op_result *out = arg;
	*out = *r;
	/* the buffers move to the caller */
	memset(r, 0, sizeof(*r));
}

int engine_run_one(struct engine *e, const struct op_request *req, struct op_result *r)
{
	memset(r, 0, sizeof(*r));
	engine_submit(e, req, copy_result, r);
	engine_run(e);
	return r->exit;
}

int engine_deploy(struct engine *e, const struct target_spec *t, const struct deploy_input *in, struct op_result *r)
{
	struct op_request q = {.type = OP_DEPLOY, .target = *t, .deploy = in};
	return engine_run_one(e, &q, r);
}

int engine_rollback(struct engine *e, const struct target_spec *t, const char *stack, struct op_result *r)
{
	struct op_request q = {.type = OP_ROLLBACK, .target = *t, .stack = stack};
	return engine_run_one(e, &q, r);
}

int engine_set_current(struct engine *e, const struct target_spec *t, const char *stack, long gen,
		       struct op_result *r)
{
	struct op_request q = {.type = OP_SET_CURRENT, .target = *t, .stack = stack, .generation = gen};
	return engine_run_one(e, &q, r);
}

int engine_gc(struct engine *e, const struct gc_target *g, struct op_result *r)
{
	struct op_request q = {.type = OP_GC, .gc = *g};
	return engine_run_one(e, &q, r);
}

int engine_prune(struct engine *e, const struct target_spec *t, const char *stack, long keep, struct op_result *r)
{
	struct op_request q = {.type = OP_PRUNE, .target = *t, .stack = stack, .keep = keep};
	return engine_run_one(e, &q, r);
}

/* ---- punix recover ----------------------------------------------------------------------- */

/* engine_recover_counted's: each op's line, then how many of the ops have one. */
struct counted {
	void (*report)(void *arg, const char *line);
	void (*count)(void *arg, const char *what, uint64_t done, uint64_t total, uint64_t bytes);
	void *arg;
	uint64_t done, total;
};

static void counted_line(void *arg, const char *line)
{
	struct counted *k = arg;
	k->report(k->arg, line);
	if (k->done < k->total)
		k->done++;
	k->count(k->arg, "ops recovered", k->done, k->total, 0);
}

int engine_recover(struct engine *e, bool list_only, void (*report)(void *arg, const char *line), void *arg,
		   struct sbuf *err)
{
	return engine_recover_counted(e, list_only, report, NULL, arg, err);
}

int engine_recover_counted(struct engine *e, bool list_only, void (*report)(void *arg, const char *line),
			   void (*count)(void *arg, const char *what, uint64_t done, uint64_t total, uint64_t bytes),
			   void *arg, struct sbuf *err)
{
	struct journal_op *ops;
	size_t n;
	struct journal_err je;
	if (journal_running_list(e->journal, &ops, &n, &je) < 0) {
		sbuf_printf(err, "%s", je.msg);
		return -1;
	}
	int rc = 0;
	size_t ncorrupt = 0;
	struct strmap seen = {0};
	struct counted k = {report, count, arg, 0, 0};
	for (size_t i = 0; i < n && count && !list_only; i++)
		k.total += ops[i].state == JOURNAL_OP_RUNNING;
	/* the ops' recoveries report through k, which counts them */
	void (*rep)(void *arg, const char *line) = report;
	void *rarg = arg;
	if (k.total) {
		count(arg, "ops recovered", 0, k.total, 0);
		rep = counted_line;
		rarg = &k;
	}
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
		if (list_only) {
			struct sbuf line = SBUF_INIT;
			sbuf_printf(&line, "op %llu (%s %s) was interrupted", (unsigned long long)ops[i].id, ops[i].kind,
				    ops[i].stack);
			report(arg, line.sb_buf);
			sbuf_free(&line);
			continue;
		}
		/* each scope once: its recovery takes its ops in order */
		if (strmap_get(&seen, ops[i].scope))
			continue;
		strmap_put(&seen, ops[i].scope, &seen);
		op_submit_recovery(e, &ops[i], rep, rarg, &rc);
	}
	engine_run(e);
	strmap_free(&seen);
	journal_ops_free(ops, n);
	if (ncorrupt && !list_only) {
		sbuf_printf(err, "%zu op(s) in the journal are corrupt and were left alone (above)", ncorrupt);
		rc = -1;
	}
	return rc;
}
