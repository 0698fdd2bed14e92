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

int journal_begin(struct op_ctx *c)
{
	struct journal_op op = {0};
	op.kind = (char *)c->kind->name;
	op.scope = c->scope;
	op.stack = (char *)c->stack;
	struct journal_err je;
	if (fault_journal_tick(c->e->fault) < 0)
		return op_fail(c, 3, "journal %s: %s (injected)", c->e->state_dir, strerror(EIO)), -EIO;
	int r = batch_open(c);
	if (r == 0)
		r = journal_op_begin(c->e->journal, &op, &je);
	if (r < 0) {
		if (!c->res->exit)
			op_fail(c, 3, "%s", je.msg);
		return r;
	}
	c->id = op.id;
	c->res->op_id = op.id;
	return 0;
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
