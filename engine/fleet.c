/*
 * fleet.c - a fleet run as an op of its own in the journal (engine.h:
 * engine_fleet_begin). Its plan names the fleet's file and, for each host,
 * the host's op once it started and how it ended; step i is host i
 * (INTENT when it starts, DONE when it is deployed, UNDONE when it failed).
 * The hosts' own ops are ordinary ops, recovered on their own; recovering
 * the fleet op only reports, per host, what became of it: finished (never
 * deployed again), interrupted (its own op is finished or undone by
 * recovery), or never started (abandoned: applying the fleet again
 * deploys it).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/xalloc.h"
#include "engine.h"
#include "op_internal.h"

#define FLEET_MAX_HOSTS 1024

/* One step per host, all alike: the journal records each host's progress by its index. */
static const struct step fleet_steps[FLEET_MAX_HOSTS] = {
#define H1 {"host", NULL, NULL, false}
#define H4 H1, H1, H1, H1
#define H16 H4, H4, H4, H4
#define H64 H16, H16, H16, H16
#define H256 H64, H64, H64, H64
	H256, H256, H256, H256,
#undef H1
#undef H4
#undef H16
#undef H64
#undef H256
};

const struct op_kind fleet_kind = {"fleet", fleet_steps, FLEET_MAX_HOSTS};

struct engine_fleet {
	struct op_ctx c;
	json_t *doc;   /* the plan's fleet record */
	size_t n;
	bool ended;
};

static void set_plan(struct engine_fleet *f)
{
	free(f->c.plan.fleet);
	f->c.plan.fleet = json_dumps(f->doc, JSON_COMPACT | JSON_SORT_KEYS);
	journal_plan(&f->c);
}

struct engine_fleet *engine_fleet_begin(struct engine *e, const char *file, const struct engine_fleet_host *hosts,
					size_t n, struct sbuf *err)
{
	if (n > FLEET_MAX_HOSTS) {
		sbuf_printf(err, "a fleet has at most %d hosts; %s has %zu", FLEET_MAX_HOSTS, file, n);
		return NULL;
	}
	struct engine_fleet *f = xcalloc(1, sizeof(*f));
	struct op_ctx *c = &f->c;
	c->e = e;
	c->kind = &fleet_kind;
	c->stack = "(fleet)";
	c->res = &c->own_res;
	c->lock_h = c->store_h = c->tlock_h = -1;
	struct sbuf scope = SBUF_INIT, what = SBUF_INIT;
	sbuf_printf(&scope, "fleet|%s", file);
	sbuf_printf(&what, "fleet %s", file);
	c->scope = sbuf_detach(&scope, NULL);
	/* one run of a fleet at a time: a second exits 4 naming the first */
	if (lock_scope(e, c->scope, what.sb_buf, &c->lock_h, err) < 0) {
		sbuf_free(&what);
		free(c->scope);
		free(f);
		return NULL;
	}
	sbuf_free(&what);
	f->n = n;
	f->doc = json_pack("{s:s, s:[]}", "file", file, "hosts");
	json_t *arr = json_object_get(f->doc, "hosts");
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "host", hosts[i].name, "stack", hosts[i].stack,
						     "target", hosts[i].target, "status", "pending"));
	c->plan.stack = xstrdup(c->stack);
	e->inflight++;
	journal_begin(c);
	set_plan(f);
	return f;
}

void engine_fleet_host(struct engine_fleet *f, size_t i, uint64_t op_id, const char *status)
{
	if (!f || i >= f->n)
		return;
	json_t *h = json_array_get(json_object_get(f->doc, "hosts"), i);
	json_object_set_new(h, "status", json_string(status));
	if (op_id)
		json_object_set_new(h, "op", json_integer((json_int_t)op_id));
	set_plan(f);
	enum journal_step_state s = !strcmp(status, "running") ? JOURNAL_STEP_INTENT
				    : !strcmp(status, "ok")	 ? JOURNAL_STEP_DONE
								 : JOURNAL_STEP_UNDONE;
	journal_step(&f->c, i, s);
}

static void fleet_free(struct op_ctx *c)
{
	struct engine_fleet *f = (struct engine_fleet *)c;
	if (c->lock_h >= 0)
		c->e->local->unlock(c->e->local, c->lock_h);
	c->e->inflight--;
	json_decref(f->doc);
	plan_free(&c->plan);
	free(c->scope);
	op_result_free(&c->own_res);
	free(f);
}

void engine_fleet_end(struct engine_fleet *f)
{
	if (!f)
		return;
	journal_finish(&f->c, JOURNAL_OP_DONE);
	/* the record durable before the lock goes and the memory it points at */
	op_when_durable(&f->c, fleet_free);
}

/* A recovery's line about an interrupted fleet run, from its plan. */
void fleet_report(const struct op_plan *p, struct sbuf *line)
{
	json_t *doc = p->fleet ? json_loads(p->fleet, 0, NULL) : NULL;
	json_t *hosts = doc ? json_object_get(doc, "hosts") : NULL;
	if (!hosts) {
		sbuf_puts(line, "a fleet run interrupted before it recorded its hosts; nothing to do");
		json_decref(doc);
		return;
	}
	size_t done = 0, running = 0, never = 0, failed = 0;
	struct sbuf parts = SBUF_INIT;
	for (size_t i = 0; i < json_array_size(hosts); i++) {
		json_t *h = json_array_get(hosts, i);
		const char *st = json_string_value(json_object_get(h, "status"));
		const char *name = json_string_value(json_object_get(h, "host"));
		json_int_t op = json_integer_value(json_object_get(h, "op"));
		if (!st || !name)
			continue;
		if (!strcmp(st, "ok")) {
			done++;
			continue;
		}
		if (!strcmp(st, "running")) {
			running++;
			sbuf_printf(&parts, "; %s was running (its op %lld is recovered on its own)", name, (long long)op);
		} else if (!strcmp(st, "pending")) {
			never++;
			sbuf_printf(&parts, "; %s never started: abandoned", name);
		} else {
			failed++;
		}
	}
	sbuf_printf(line, "fleet run of %s: %zu host(s) finished (not deployed again), %zu failed, %zu interrupted, %zu "
			  "never started%s%s",
		    json_string_value(json_object_get(doc, "file")), done, failed, running, never, sbuf_str(&parts),
		    never ? " (punix fleet apply --resume deploys only them)" : "");
	sbuf_free(&parts);
	json_decref(doc);
}

int engine_fleet_finished(struct engine *e, const char *file, char ***done, size_t *n, uint64_t *run, struct sbuf *err)
{
	*done = NULL;
	*n = 0;
	*run = 0;
	struct journal_op *ops;
	size_t nops;
	struct journal_err je;
	if (journal_op_list(e->journal, &ops, &nops, &je) < 0) {
		sbuf_printf(err, "%s", je.msg);
		return -1;
	}
	struct sbuf scope = SBUF_INIT;
	sbuf_printf(&scope, "fleet|%s", file);
	const struct journal_op *last = NULL;
	for (size_t i = 0; i < nops; i++)
		if (ops[i].kind && ops[i].scope && !strcmp(ops[i].kind, "fleet") && !strcmp(ops[i].scope, scope.sb_buf) &&
		    ops[i].plan && ops[i].state != JOURNAL_OP_CORRUPT)
			last = &ops[i];
	sbuf_free(&scope);
	int rc = 0;
	if (last) {
		struct op_plan p = {0};
		struct sbuf perr = SBUF_INIT;
		size_t len = last->plan_len ? last->plan_len : strlen(last->plan);
		json_t *doc = NULL;
		if (plan_decode(last->plan, len, &p, &perr) < 0 || !p.fleet || !(doc = json_loads(p.fleet, 0, NULL))) {
			sbuf_printf(err, "the last run of %s (op %llu) cannot be read: %s", file, (unsigned long long)last->id,
				    perr.sb_len ? perr.sb_buf : "no hosts recorded");
			rc = -1;
		} else {
			*run = last->id;
			json_t *hosts = json_object_get(doc, "hosts");
			for (size_t i = 0; i < json_array_size(hosts); i++) {
				json_t *h = json_array_get(hosts, i);
				const char *st = json_string_value(json_object_get(h, "status"));
				if (!st || strcmp(st, "ok"))
					continue;
				struct sbuf k = SBUF_INIT;
				sbuf_printf(&k, "%s\t%s\t%s", json_string_value(json_object_get(h, "host")),
					    json_string_value(json_object_get(h, "stack")),
					    json_string_value(json_object_get(h, "target")));
				*done = xrealloc(*done, (*n + 1) * sizeof(char *));
				(*done)[(*n)++] = sbuf_detach(&k, NULL);
			}
		}
		if (doc)
			json_decref(doc);
		plan_free(&p);
		sbuf_free(&perr);
	}
	journal_ops_free(ops, nops);
	return rc;
}
