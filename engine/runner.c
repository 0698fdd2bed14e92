/*
 * runner.c - the op runner: starting an op on its stack's lock, running its
 * step table with INTENT before and DONE after each step, undoing what ran
 * when a step before the commit point fails (see engine.h).
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

const char *dep_root(struct op_ctx *c)
{
	return plan_str(c, "deployments_root");
}

void now_iso(char out[32])
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

/* The target is this machine itself (not rebased, not over SSH): its store is ours. */
bool target_is_here(struct op_ctx *c)
{
	const char *ssh = plan_str(c, "ssh"), *root = plan_str(c, "transport_root");
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

int journal_step(struct op_ctx *c, size_t i, enum journal_step_state s)
{
	struct journal_err je;
	if (fault_journal_tick() < 0)
		return op_fail(c, 3, "journal %s: %s (injected)", c->e->state_dir, strerror(EIO)), -EIO;
	int r = journal_step_write(c->e->journal, c->id, (uint32_t)i, c->kind->steps[i].name, s, NULL, &je);
	if (r < 0)
		op_fail(c, 3, "%s", je.msg);
	return r;
}

int journal_finish(struct op_ctx *c, enum journal_op_state s)
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
int undo_from(struct op_ctx *c, long upto)
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
		if (q->i < kind_commit(c->kind)) {
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

int run_steps(struct op_ctx *c, size_t from)
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
