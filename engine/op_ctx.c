/*
 * op_ctx.c - what every step of every op uses of its context: failing with
 * a message, the plan's places, the clock's ISO form, and the kinds' commit
 * points. At the bottom of engine/: it calls nothing else of the engine.
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

void now_iso(struct op_ctx *c, char out[32])
{
	time_t t = (time_t)c->e->local->now(c->e->local);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The target is this machine itself (not rebased, not over SSH): its store is ours. */
bool target_is_here(struct op_ctx *c)
{
	const char *ssh = c->plan.ssh, *root = c->plan.transport_root;
	if (!ssh && !c->parent) {
		/* before the plan is filled (host mode's bootstrap): as submitted */
		ssh = c->req.target.ssh;
		root = c->req.target.transport_root;
	}
	return (!ssh || !*ssh) && (!root || !*root);
}

size_t kind_commit(const struct op_kind *k)
{
	for (size_t i = 0; i < k->nsteps; i++)
		if (k->steps[i].commit)
			return i;
	return k->nsteps; /* none: every step is before it, so a failure undoes */
}
