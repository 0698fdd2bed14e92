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
#include "systemd.h"
#include "op_internal.h"
#include "ssh.h"
#include "target.h"

void op_result_free(struct op_result *r)
{
	sbuf_free(&r->error);
	sbuf_free(&r->recovered);
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

const char *dep_root(struct op_ctx *c)
{
	return c->plan.deployments_root;
}

void now_iso(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A crash requested by a test (the engine's crash_at, "<kind>:<step>:<before|after>"). */
void op_maybe_crash(struct op_ctx *c, const char *step, const char *when)
{
	const char *want = c->e->crash_at;
	if (!want || !*want)
		return;
	char here[128];
	snprintf(here, sizeof(here), "%s:%s:%s", c->kind->name, step, when);
	if (strcmp(want, here) == 0)
		fault_crash(c->e->fault);
}

/* The target is this machine itself (not rebased, not over SSH): its store is ours. */
bool target_is_here(struct op_ctx *c)
{
	const char *ssh = c->plan.ssh, *root = c->plan.transport_root;
	return (!ssh || !*ssh) && (!root || !*root);
}

static const struct op_kind *const kinds[] = {&deploy_kind, &rollback_kind, &set_current_kind, &gc_kind,
					       &prune_kind};

const struct op_kind *find_kind(const char *name)
{
	for (size_t i = 0; i < NSTEPS(kinds); i++)
		if (strcmp(kinds[i]->name, name) == 0)
			return kinds[i];
	return NULL;
}

size_t kind_commit(const struct op_kind *k)
{
	for (size_t i = 0; i < k->nsteps; i++)
		if (k->steps[i].commit)
			return i;
	return k->nsteps; /* none: every step is before it, so a failure undoes */
}

/* ---- the runner ------------------------------------------------------------------------ */


/* ---- the journal, in group commits ------------------------------------------------------ */

/*
 * Every journal write of the loop goes into one open batch; the idle
 * handle commits it once per loop iteration, so the records of every op
 * that finished a step in that iteration share one durable commit. A step
 * whose INTENT is in the batch waits (op_when_durable) for that commit
 * before its effect runs.
 */
static void flush_cb(uv_idle_t *h);

static int batch_open(struct op_ctx *c)
{
	struct engine *e = c->e;
	if (e->batch_open)
		return 0;
	struct journal_err je;
	engine_journal_lock(e);
	if (journal_batch_begin(e->journal, &je) < 0) {
		engine_journal_unlock(e);
		return op_fail(c, 3, "%s", je.msg), -EIO;
	}
	e->batch_open = true;
	uv_idle_start(&e->flush, flush_cb);
	return 0;
}

int journal_step(struct op_ctx *c, size_t i, enum journal_step_state s)
{
	struct journal_err je;
	if (fault_journal_tick(c->e->fault) < 0)
		return op_fail(c, 3, "journal %s: %s (injected)", c->e->state_dir, strerror(EIO)), -EIO;
	int r = batch_open(c);
	if (r == 0)
		r = journal_step_write(c->e->journal, c->id, (uint32_t)i, c->kind->steps[i].name, s, NULL, &je);
	if (r < 0 && !c->res->exit)
		op_fail(c, 3, "%s", je.msg);
	return r;
}

int journal_finish(struct op_ctx *c, enum journal_op_state s)
{
	struct journal_err je;
	if (fault_journal_tick(c->e->fault) < 0) {
		if (!c->res->exit)
			op_fail(c, 3, "journal %s: %s (injected)", c->e->state_dir, strerror(EIO));
		return -EIO;
	}
	int r = batch_open(c);
	if (r == 0)
		r = journal_op_finish(c->e->journal, c->id, s, &je);
	if (r == 0)
		c->e->finished = true;
	if (r < 0 && !c->res->exit)
		op_fail(c, 3, "%s", je.msg);
	return r;
}

void op_when_durable(struct op_ctx *c, op_cont_fn after)
{
	struct engine *e = c->e;
	if (!e->batch_open) {
		after(c);
		return;
	}
	c->after = after;
	c->next_waiting = e->waiting;
	e->waiting = c;
}

/* The idle handle: commits the batch, then lets every op waiting on it go on. */
static void flush_cb(uv_idle_t *h)
{
	struct engine *e = h->data;
	uv_idle_stop(h);
	struct op_ctx *w = e->waiting;
	e->waiting = NULL;
	struct journal_err je = {0};
	int r = 0;
	if (e->batch_open) {
		e->batch_open = false;
		r = journal_batch_commit(e->journal, &je);
		if (r == 0 && e->finished) {
			/*
			 * The history stays bounded (journal.h: JOURNAL_COMPACT_AT); the
			 * check is O(1). A compaction that fails changes nothing and is
			 * tried again after the next op: it never fails an op.
			 */
			struct journal_err ce;
			e->finished = journal_compact(e->journal, &ce) < 0;
		}
		engine_journal_unlock(e);
	}
	/* oldest first, as they were written */
	struct op_ctx *rev = NULL;
	while (w) {
		struct op_ctx *n = w->next_waiting;
		w->next_waiting = rev;
		rev = w;
		w = n;
	}
	while (rev) {
		struct op_ctx *n = rev->next_waiting;
		rev->next_waiting = NULL;
		if (r < 0 && !rev->res->exit)
			op_fail(rev, 3, "%s", je.msg[0] ? je.msg : "the journal could not commit");
		op_cont_fn after = rev->after;
		rev->after = NULL;
		after(rev);
		rev = n;
	}
}

/* ---- work off the loop ------------------------------------------------------------------- */

static void work_cb(uv_work_t *w)
{
	struct op_ctx *c = w->data;
	c->work_fn(c);
}

static void after_work_cb(uv_work_t *w, int status)
{
	struct op_ctx *c = w->data;
	if (status < 0 && !c->res->exit)
		op_fail(c, 3, "work of op %llu could not run: %s", (unsigned long long)c->id, uv_strerror(status));
	op_cont_fn after = c->after;
	c->after = NULL;
	after(c);
}

void op_exec(struct op_ctx *c, void (*fn)(struct op_ctx *c), op_cont_fn after)
{
	c->work_fn = fn;
	c->after = after;
	c->work.data = c;
	int r = uv_queue_work(&c->e->loop, &c->work, work_cb, after_work_cb);
	if (r < 0) {
		/* cannot happen with a live loop; run it here rather than lose the op */
		fn(c);
		c->after = NULL;
		after(c);
	}
}

/* ---- steps and undo ---------------------------------------------------------------------- */

static void step_go(struct op_ctx *c);

static void step_work(struct op_ctx *c)
{
	c->rc = c->kind->steps[c->i].run(c);
}

static void step_done(struct op_ctx *c)
{
	const struct step *s = &c->kind->steps[c->i];
	int r = c->rc ? c->rc : c->res->exit;
	if (r == 0 && c->i == 0) {
		/* the plan is what recovery works from: record it before going on */
		unsigned char *bytes;
		size_t len;
		plan_encode(&c->plan, &bytes, &len);
		struct journal_err je;
		if (batch_open(c) < 0 || journal_op_set_plan_bytes(c->e->journal, c->id, bytes, len, &je) < 0)
			r = c->res->exit ? c->res->exit : op_fail(c, 3, "%s", je.msg);
		free(bytes);
	}
	if (r != 0) {
		if (!c->res->exit)
			c->res->exit = 3;
		if (c->i < kind_commit(c->kind)) {
			c->u = (long)c->i;
			op_undo(c);
		} else {
			sbuf_printf(&c->res->error, "\n(the flip happened: 'punix recover' finishes the op)");
			c->on_end(c);
		}
		return;
	}
	if (journal_step(c, c->i, JOURNAL_STEP_DONE) < 0) {
		c->on_end(c);
		return;
	}
	op_maybe_crash(c, s->name, "after");
	c->i++;
	op_steps(c);
}

void op_steps(struct op_ctx *c)
{
	if (c->i == c->kind->nsteps) {
		journal_finish(c, JOURNAL_OP_DONE);
		c->on_end(c);
		return;
	}
	op_maybe_crash(c, c->kind->steps[c->i].name, "before");
	if (journal_step(c, c->i, JOURNAL_STEP_INTENT) < 0) {
		c->on_end(c);
		return;
	}
	/* the INTENT is durable before the step's effect runs */
	op_when_durable(c, step_go);
}

static void step_go(struct op_ctx *c)
{
	if (c->res->exit) { /* the commit of its INTENT failed */
		c->on_end(c);
		return;
	}
	op_exec(c, step_work, step_done);
}

static void undo_work(struct op_ctx *c)
{
	c->rc = c->kind->steps[c->u].undo(c);
}

static void undo_done(struct op_ctx *c)
{
	if (c->rc != 0)
		c->undo_rc = -1; /* the op stays running: every undo is safe to repeat */
	else
		journal_step(c, (size_t)c->u, JOURNAL_STEP_UNDONE);
	c->u--;
	op_undo(c);
}

void op_undo(struct op_ctx *c)
{
	while (c->u >= 0 && !c->kind->steps[c->u].undo) {
		journal_step(c, (size_t)c->u, JOURNAL_STEP_UNDONE);
		c->u--;
	}
	if (c->u >= 0) {
		op_exec(c, undo_work, undo_done);
		return;
	}
	if (c->undo_rc == 0)
		journal_finish(c, JOURNAL_OP_ABORTED);
	else if (!c->parent)
		sbuf_printf(&c->res->error, "\n(undoing it failed too: run 'punix recover')");
	c->on_end(c);
}

/* ---- an op's life ------------------------------------------------------------------------ */

static const struct op_kind *kind_of(enum op_type t)
{
	switch (t) {
	case OP_DEPLOY: return &deploy_kind;
	case OP_ROLLBACK: return &rollback_kind;
	case OP_SET_CURRENT: return &set_current_kind;
	case OP_GC: return &gc_kind;
	case OP_PRUNE: return &prune_kind;
	}
	return NULL;
}

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
	p->activate = t->activate;
	p->enable = t->enable;
	p->store_root = plan_strdup(c->e->store->root);
	if (c->req.type == OP_PRUNE)
		p->keep = c->keep;
	struct journal_op op = {0};
	op.kind = (char *)c->kind->name;
	op.scope = c->scope;
	op.stack = (char *)c->stack;
	struct journal_err je;
	if (fault_journal_tick(c->e->fault) < 0) {
		op_fail(c, 3, "journal %s: %s (injected)", c->e->state_dir, strerror(EIO));
		close_op(c);
		return;
	}
	if (batch_open(c) < 0 || journal_op_begin(c->e->journal, &op, &je) < 0) {
		if (!c->res->exit)
			op_fail(c, 3, "%s", je.msg);
		close_op(c);
		return;
	}
	c->id = op.id;
	c->res->op_id = op.id;
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
	free(c->scope);
	journal_ops_free(c->rops, c->nrops);
	op_result_free(&c->own_res);
	sbuf_free(&c->line);
	free(c);
}

static void closed(struct op_ctx *c)
{
	/* what the op recorded is durable before anyone is told how it ended */
	op_when_durable(c, report_done);
}

static void close_op(struct op_ctx *c)
{
	op_exec(c, close_work, closed);
}

uint64_t engine_submit(struct engine *e, const struct op_request *req, op_done_fn done, void *arg)
{
	struct op_ctx *c = xcalloc(1, sizeof(*c));
	c->e = e;
	c->req = *req;
	c->seq = ++e->submitted;
	c->res = &c->own_res;
	c->lock_h = c->store_h = -1;
	c->done = done;
	c->done_arg = arg;
	c->kind = kind_of(req->type);
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
		c->stack = req->deploy ? req->deploy->stack->name : req->stack;
		c->scope = make_scope(&req->target, c->stack);
	}
	for (struct op_ctx *o = e->running; o && req->wait; o = o->next_running)
		if (!strcmp(o->scope, c->scope))
			c->queued = true;
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
	c->lock_h = c->store_h = -1;
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
