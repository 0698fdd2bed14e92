/*
 * recover.c - finishing or undoing interrupted ops from the journal: before
 * the commit point undo what ran, at or after it run the rest; temporaries
 * an interrupted op may have left are swept first.
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
void sweep_temps(struct op_ctx *c)
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
		if (steps[i].index >= kind_commit(c.kind) && steps[i].state != JOURNAL_STEP_UNDONE)
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
		size_t from = kind_commit(c.kind);
		for (size_t i = 0; i < n; i++)
			if (steps[i].index >= from && steps[i].state == JOURNAL_STEP_DONE && steps[i].index + 1 > from)
				from = steps[i].index + 1;
		rc = run_steps(&c, from);
		if (rc == 0 && (c.kind == &gc_kind || c.kind == &prune_kind))
			sbuf_printf(line, "op %llu (%s %s): rolled forward; its %s finished", (unsigned long long)op->id,
				    op->kind, op->stack, c.kind->steps[kind_commit(c.kind)].name);
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
int recover_scope(struct engine *e, const char *scope, struct sbuf *report)
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
