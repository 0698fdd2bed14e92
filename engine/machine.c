/*
 * machine.c - the step machine every op and every recovery runs on: work
 * off the loop (op_exec), the journal written in group commits
 * (journal_step, journal_finish, op_when_durable), steps forward with
 * INTENT made durable before each effect (op_steps), and undo newest first
 * (op_undo). Below runner.c and recover.c, which both drive it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "../base/xalloc.h"
#include "engine.h"
#include "op_internal.h"
#include "target.h"

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

/* ---- the journal, in group commits off the loop ------------------------------------------ */

/*
 * The loop never writes the journal itself: each record an op writes is
 * queued (journal_begin, journal_step, journal_plan, journal_finish), and
 * once per loop iteration the idle handle hands every queued record to one
 * flush, a work item that writes them all in one LMDB transaction and
 * commits it with one fdatasync; then compacts the history if an op
 * finished. So the records of every op that finished a step in that
 * iteration share one durable commit, and the loop does not wait on the
 * disk. One flush at a time: records queued meanwhile go in the next. A
 * step whose INTENT is queued waits (op_when_durable) for the flush that
 * holds it before its effect runs. Each record is written in a nested
 * transaction: one that fails fails only its op.
 */
enum jrec_kind { JR_BEGIN, JR_STEP, JR_PLAN, JR_FINISH };

struct jrec {
	struct jrec *next;
	struct op_ctx *c;
	enum jrec_kind kind;
	uint32_t index;
	enum journal_step_state sstate;
	enum journal_op_state ostate;
	unsigned char *plan;
	size_t plan_len;
	int rc;
	struct journal_err err;
};

struct jqueue {
	struct jrec *head, **tail;
};

static void flush_cb(uv_idle_t *h);

static int enqueue(struct op_ctx *c, struct jrec *r)
{
	struct engine *e = c->e;
	if (fault_journal_tick(e->fault) < 0) {
		free(r->plan);
		free(r);
		if (!c->res->exit)
			op_fail(c, 3, "journal %s: %s (injected)", e->state_dir, strerror(EIO));
		return -EIO;
	}
	r->c = c;
	r->next = NULL;
	*e->jtail = r;
	e->jtail = &r->next;
	if (e->on_pool || e->inflight > 1)
		uv_idle_start(&e->flush, flush_cb);
	/* else one op runs here alone: its records wait for the first step that needs them durable */
	return 0;
}

int journal_begin(struct op_ctx *c)
{
	struct jrec *r = xcalloc(1, sizeof(*r));
	r->kind = JR_BEGIN;
	return enqueue(c, r);
}

int journal_step(struct op_ctx *c, size_t i, enum journal_step_state s)
{
	struct jrec *r = xcalloc(1, sizeof(*r));
	r->kind = JR_STEP;
	r->index = (uint32_t)i;
	r->sstate = s;
	return enqueue(c, r);
}

int journal_plan(struct op_ctx *c)
{
	struct jrec *r = xcalloc(1, sizeof(*r));
	r->kind = JR_PLAN;
	plan_encode(&c->plan, &r->plan, &r->plan_len);
	return enqueue(c, r);
}

int journal_finish(struct op_ctx *c, enum journal_op_state s)
{
	struct jrec *r = xcalloc(1, sizeof(*r));
	r->kind = JR_FINISH;
	r->ostate = s;
	return enqueue(c, r);
}

/* On the flush's worker: one record, in the batch. */
static void write_rec(struct journal *j, struct jrec *r)
{
	struct op_ctx *c = r->c;
	switch (r->kind) {
	case JR_BEGIN: {
		struct journal_op op = {0};
		op.kind = (char *)c->kind->name;
		op.scope = c->scope;
		op.stack = (char *)c->stack;
		r->rc = journal_op_begin(j, &op, &r->err);
		if (r->rc == 0)
			c->id = op.id; /* the op waits for this flush before it reads its id */
		break;
	}
	case JR_STEP:
		r->rc = journal_step_write(j, c->id, r->index, c->kind->steps[r->index].name, r->sstate, NULL, &r->err);
		break;
	case JR_PLAN: r->rc = journal_op_set_plan_bytes(j, c->id, r->plan, r->plan_len, &r->err); break;
	case JR_FINISH: r->rc = journal_op_finish(j, c->id, r->ostate, &r->err); break;
	}
}

static void flush_work(uv_work_t *w)
{
	struct engine *e = w->data;
	struct journal_err je = {0};
	e->jflush_rc = journal_batch_begin(e->journal, &je);
	bool finished = false;
	for (struct jrec *r = e->jflight; r && e->jflush_rc == 0; r = r->next) {
		write_rec(e->journal, r);
		finished |= r->kind == JR_FINISH && r->rc == 0;
	}
	if (e->jflush_rc == 0)
		e->jflush_rc = journal_batch_commit(e->journal, &je);
	else
		journal_batch_abort(e->journal);
	if (e->jflush_rc < 0)
		e->jflush_err = je;
	if (e->jflush_rc == 0 && (finished || e->compact_due)) {
		/*
		 * The history stays bounded (journal.h: JOURNAL_COMPACT_AT); the
		 * check is O(1). A compaction that fails changes nothing and is
		 * tried again after the next flush: it never fails an op.
		 */
		struct journal_err ce;
		e->compact_due = journal_compact(e->journal, &ce) < 0;
	}
}

static void flush_cb(uv_idle_t *h);
static void flush_done_pool(uv_work_t *w, int status);

static void flush_done(uv_work_t *w, int status)
{
	struct engine *e = w->data;
	int rc = status < 0 ? -EIO : e->jflush_rc;
	for (struct jrec *r = e->jflight, *n; r; r = n) {
		n = r->next;
		struct op_ctx *c = r->c;
		if (rc < 0 && !c->res->exit)
			op_fail(c, 3, "%s", e->jflush_err.msg[0] ? e->jflush_err.msg : "the journal could not commit");
		else if (r->rc < 0 && !c->res->exit)
			op_fail(c, 3, "%s", r->err.msg);
		if (r->kind == JR_BEGIN && rc == 0 && r->rc == 0)
			c->res->op_id = c->id;
		free(r->plan);
		free(r);
	}
	e->jflight = NULL;
	e->jbusy = false;
	/* every op that waited for this flush goes on, oldest first */
	struct op_ctx *rev = NULL, *w2 = e->waiting_flight;
	e->waiting_flight = NULL;
	while (w2) {
		struct op_ctx *n = w2->next_waiting;
		w2->next_waiting = rev;
		rev = w2;
		w2 = n;
	}
	if (e->jhead)
		uv_idle_start(&e->flush, flush_cb); /* the next flush, on the next iteration */
	while (rev) {
		struct op_ctx *n = rev->next_waiting;
		rev->next_waiting = NULL;
		op_cont_fn after = rev->after;
		rev->after = NULL;
		after(rev);
		rev = n;
	}
}

static void start_flush(struct engine *e)
{
	if (e->jbusy || !e->jhead)
		return;
	e->jbusy = true;
	e->jflight = e->jhead;
	e->jhead = NULL;
	e->jtail = &e->jhead;
	/* those waiting for the queued records now wait for this flush */
	struct op_ctx **end = &e->waiting_flight;
	while (*end)
		end = &(*end)->next_waiting;
	*end = e->waiting_next;
	e->waiting_next = NULL;
	e->jflush_rc = 0;
	memset(&e->jflush_err, 0, sizeof(e->jflush_err));
	e->jwork.data = e;
	if (!e->on_pool && e->inflight <= 1) {
		/* one op and nothing else under way: the commit is what it waits for, so here */
		flush_work(&e->jwork);
		flush_done(&e->jwork, 0);
		return;
	}
	e->on_pool++;
	if (uv_queue_work(&e->loop, &e->jwork, flush_work, flush_done_pool) < 0) {
		e->on_pool--;
		flush_work(&e->jwork); /* cannot happen with a live loop; never lose records */
		flush_done(&e->jwork, 0);
	}
}

static void flush_done_pool(uv_work_t *w, int status)
{
	struct engine *e = w->data;
	e->on_pool--;
	flush_done(w, status);
}

/* The idle handle: once per loop iteration, what was queued goes to the disk. */
static void flush_cb(uv_idle_t *h)
{
	struct engine *e = h->data;
	uv_idle_stop(h);
	start_flush(e);
}

void op_when_durable(struct op_ctx *c, op_cont_fn after)
{
	struct engine *e = c->e;
	if (!e->jhead && !e->jbusy) {
		after(c);
		return;
	}
	c->after = after;
	/* queued records go in the next flush; with none queued, the one under way holds this op's */
	struct op_ctx **list = e->jhead ? &e->waiting_next : &e->waiting_flight;
	c->next_waiting = *list;
	*list = c;
	if (e->jhead)
		uv_idle_start(&e->flush, flush_cb);
}

/* What is queued and was never waited for (engine_close: nothing is lost). */
void journal_flush_rest(struct engine *e)
{
	if (e->jhead && !e->jbusy) {
		start_flush(e);
		uv_run(&e->loop, UV_RUN_DEFAULT);
	}
}

/* ---- work off the loop, through each host's executor ---------------------------------------- */

/*
 * Every target host has an executor: at most `limit` work items of the
 * ops on that host are on libuv's pool at once, the rest wait in order. So
 * a slow or hung SSH host holds at most its share of the pool's threads,
 * and ops on other hosts (this machine included) go on.
 */
struct executor *engine_executor(struct engine *e, const char *host)
{
	const char *key = host && *host ? host : "local";
	for (struct executor *x = e->executors; x; x = x->next)
		if (!strcmp(x->key, key))
			return x;
	struct executor *x = xcalloc(1, sizeof(*x));
	x->key = xstrdup(key);
	x->limit = strcmp(key, "local") ? e->per_host : e->local_workers; /* 0: the pool's own bound */
	x->qtail = &x->qhead;
	x->next = e->executors;
	e->executors = x;
	return x;
}

static void work_cb(uv_work_t *w)
{
	struct op_ctx *c = w->data;
	c->work_fn(c);
}

static void dispatch(struct op_ctx *c);

static void after_work_cb(uv_work_t *w, int status)
{
	struct op_ctx *c = w->data;
	struct executor *x = c->ex;
	if (x) {
		x->inflight--;
		if (x->qhead) {
			struct op_ctx *n = x->qhead;
			x->qhead = n->next_queued;
			if (!x->qhead)
				x->qtail = &x->qhead;
			n->next_queued = NULL;
			dispatch(n);
		}
	}
	if (status < 0 && !c->res->exit)
		op_fail(c, 3, "work of op %llu could not run: %s", (unsigned long long)c->id, uv_strerror(status));
	op_cont_fn after = c->after;
	c->after = NULL;
	after(c);
}

/*
 * Work runs on the loop thread, from an idle handle (so always after the
 * caller returns), when it is the engine's only op, on this machine, and
 * nothing is on the pool: there is nothing to run beside it, and libuv's
 * pool (its threads) is never started for one local command.
 */
static bool run_here(const struct op_ctx *c)
{
	const struct engine *e = c->e;
	return !e->on_pool && e->inflight <= 1 && (!c->ex || !strcmp(c->ex->key, "local"));
}

static void here_cb(uv_idle_t *h)
{
	struct engine *e = h->data;
	struct op_ctx *c = e->hhead;
	if (!c) {
		uv_idle_stop(h);
		return;
	}
	e->hhead = c->next_queued;
	if (!e->hhead) {
		e->htail = &e->hhead;
		uv_idle_stop(h);
	}
	c->next_queued = NULL;
	c->work_fn(c);
	after_work_cb(&c->work, 0);
}

static void pool_done(uv_work_t *w, int status)
{
	struct op_ctx *c = w->data;
	c->e->on_pool--;
	after_work_cb(w, status);
}

static void dispatch(struct op_ctx *c)
{
	struct engine *e = c->e;
	if (c->ex)
		c->ex->inflight++;
	c->work.data = c;
	if (run_here(c)) {
		c->next_queued = NULL;
		*e->htail = c;
		e->htail = &c->next_queued;
		uv_idle_start(&e->here, here_cb);
		return;
	}
	e->on_pool++;
	int r = uv_queue_work(&e->loop, &c->work, work_cb, pool_done);
	if (r < 0) {
		/* cannot happen with a live loop; run it here rather than lose the op */
		e->on_pool--;
		c->work_fn(c);
		after_work_cb(&c->work, 0);
	}
}

void op_exec(struct op_ctx *c, void (*fn)(struct op_ctx *c), op_cont_fn after)
{
	c->work_fn = fn;
	c->after = after;
	struct executor *x = c->ex;
	if (x && x->limit && x->inflight >= x->limit) {
		*x->qtail = c;
		x->qtail = &c->next_queued;
		return;
	}
	dispatch(c);
}

/* ---- steps and undo ---------------------------------------------------------------------- */

static void step_go(struct op_ctx *c);

/*
 * Whether a step's INTENT must be durable before its effect runs
 * (docs/design.md, "The minimum number of syncs"). Recovery needs to know
 * of two kinds of step: one with an undo before the commit point (what it
 * did is undone), and the commit point itself (at or after it, the op is
 * rolled forward). Any other step either has no effect recovery must
 * handle (planning, checking; a build or a push only adds store paths,
 * which nothing pins until the commit and GC may take back), or comes
 * after the commit point, where recovery re-runs every step from the
 * commit point on whatever the journal holds, each being safe to run
 * twice. Their records are written all the same, in the next group
 * commit, and the op's end waits for them.
 */
static bool intent_first(const struct op_kind *k, size_t i)
{
	const struct step *s = &k->steps[i];
	return s->undo || s->commit;
}

static void step_work(struct op_ctx *c)
{
	c->rc = c->kind->steps[c->i].run(c);
}

static void step_done(struct op_ctx *c)
{
	const struct step *s = &c->kind->steps[c->i];
	if (c->reverted) {
		/* flipped back by its confirm step: the op's effect is undone, and it ends so */
		journal_step(c, c->i, JOURNAL_STEP_UNDONE);
		journal_finish(c, JOURNAL_OP_ABORTED);
		c->on_end(c);
		return;
	}
	int r = c->rc ? c->rc : c->res->exit;
	if (r == 0 && c->i == 0 && journal_plan(c) < 0)
		/* the plan is what recovery works from: recorded before going on */
		r = c->res->exit;
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
	if (c->req.timeout > 0 && !c->parent && c->i > 0 && c->i < kind_commit(c->kind) &&
	    (int64_t)uv_now(&c->e->loop) - c->started >= (int64_t)c->req.timeout * 1000) {
		/* out of time before the commit point: undone, the previous generation stays */
		op_fail(c, 3, "timed out after %ld s (before its %s step); undone, nothing changed", c->req.timeout,
			c->kind->steps[c->i].name);
		c->u = (long)c->i - 1;
		op_undo(c);
		return;
	}
	op_maybe_crash(c, c->kind->steps[c->i].name, "before");
	/* confirm without --confirm-timeout does nothing: not worth a progress line */
	bool idle = !strcmp(c->kind->steps[c->i].name, "confirm") && !c->plan.confirm_timeout;
	if (c->req.progress && !c->parent && !idle)
		c->req.progress(c->req.progress_arg, c->kind->steps[c->i].name, c->id);
	if (journal_step(c, c->i, JOURNAL_STEP_INTENT) < 0) {
		c->on_end(c);
		return;
	}
	if (intent_first(c->kind, c->i))
		op_when_durable(c, step_go); /* the INTENT is durable before the step's effect runs */
	else
		step_go(c); /* its records go in the next commit, while it runs */
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
