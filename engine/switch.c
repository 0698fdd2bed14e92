/*
 * switch.c - rollback and set-current: plan from the manifest of the
 * generation to go live, then the shared verify, flip, materialise and
 * activate steps.
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

/* ---- rollback and set-current ------------------------------------------------------ */

static int rollback_plan(struct op_ctx *c)
{
	struct sbuf err = SBUF_INIT;
	long current = current_generation(c->tops, dep_root(c), c->stack, &err);
	if (current < 0) {
		op_fail(c, 1, "%s", err.sb_buf);
		sbuf_free(&err);
		return 1;
	}
	sbuf_free(&err);
	if (current == 0) {
		struct sbuf there = SBUF_INIT;
		engine_stacks_text(c->tops, dep_root(c), &there);
		op_fail(c, 1, "[E12] stack '%s' has no current generation on this target (%s)", c->stack, there.sb_buf);
		sbuf_free(&there);
		return 1;
	}
	long *gens, prev = 0;
	size_t n;
	if (list_generations(c->tops, dep_root(c), c->stack, &gens, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			if (gens[i] < current)
				prev = gens[i];
		free(gens);
	}
	if (prev == 0)
		return op_fail(c, 1, "[E12] stack '%s': no previous generation (current is gen-%03ld)", c->stack,
			       current);
	return plan_from_manifest(c, prev, current);
}

static int set_current_plan(struct op_ctx *c)
{
	struct sbuf err = SBUF_INIT;
	long current = current_generation(c->tops, dep_root(c), c->stack, &err);
	if (current < 0) {
		op_fail(c, 1, "%s", err.sb_buf);
		sbuf_free(&err);
		return 1;
	}
	char *m = gen_manifest_path(dep_root(c), c->stack, c->want);
	struct ops_stat st;
	bool exists = c->want > 0 && c->tops->stat(c->tops, m, 0, &st) == 0;
	free(m);
	if (!exists) {
		struct sbuf have = SBUF_INIT;
		list_gens_text(c, &have);
		op_fail(c, 1, "[E12] stack '%s' has no generation %ld (it has: %s)", c->stack, c->want, have.sb_buf);
		sbuf_free(&have);
		sbuf_free(&err);
		return 1;
	}
	sbuf_free(&err);
	if (current == 0 && confirm_refused(c))
		return 1;
	return plan_from_manifest(c, c->want, current);
}

static const struct step rollback_steps[] = {
	{"plan", rollback_plan, NULL, false},
	{"verify", step_verify, NULL, false},
	{"flip", step_flip, NULL, true}, /* the commit point */
	{"materialise", step_materialise, NULL, false},
	{"activate", step_activate, NULL, false},
	{"confirm", step_confirm, NULL, false},
};

const struct op_kind rollback_kind = {"rollback", rollback_steps, NSTEPS(rollback_steps)};

static const struct step set_current_steps[] = {
	{"plan", set_current_plan, NULL, false},
	{"verify", step_verify, NULL, false},
	{"flip", step_flip, NULL, true}, /* the commit point */
	{"materialise", step_materialise, NULL, false},
	{"activate", step_activate, NULL, false},
	{"confirm", step_confirm, NULL, false},
};

const struct op_kind set_current_kind = {"set-current", set_current_steps, NSTEPS(set_current_steps)};
