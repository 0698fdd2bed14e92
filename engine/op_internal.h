/*
 * op_internal.h - what the op runner shares with the op kinds defined
 * outside op.c (garbage collection): the context of a running op, the
 * shape of a step table, and the runner's helpers.
 */
#ifndef PUNIX_ENGINE_OP_INTERNAL_H
#define PUNIX_ENGINE_OP_INTERNAL_H

#include <jansson.h>

#include "build.h"
#include "engine.h"
#include "systemd.h"

struct op_ctx {
	struct engine *e;
	struct punix_ops *tops;
	uint64_t id;
	const struct op_kind *kind;
	json_t *plan;
	struct op_result *res;
	/* in memory, for the steps before the commit point of a deploy */
	const struct deploy_input *in;
	struct build_plan bp;
	bool have_bp;
	struct rendered rf;
	long want; /* set-current: the generation asked for */
	struct secret_value *secrets; /* resolved at plan time, in memory only */
	size_t nsecrets;
	const char *stack;
};

struct step {
	const char *name;
	int (*run)(struct op_ctx *c);
	int (*undo)(struct op_ctx *c);
};

struct op_kind {
	const char *name;
	const struct step *steps;
	size_t nsteps;
	size_t commit; /* index of the commit point (flip) */
};


__attribute__((format(printf, 3, 4))) int op_fail(struct op_ctx *c, int exit, const char *fmt, ...);
const char *plan_str(struct op_ctx *c, const char *key);
long plan_long(struct op_ctx *c, const char *key);

/* Runs an op of kind k on the scope's lock, first recovering that scope. */
int op_start(struct engine *e, const struct target_spec *t, const char *kind, const char *stack, const char *scope,
	     struct op_ctx *c, struct op_result *r, int *lock_h);
int op_run(struct op_ctx *c);
void op_end(struct op_ctx *c, int lock_h);

/* The garbage collector's and the pruner's steps (gc.c). */
extern const struct op_kind gc_kind;
extern const struct op_kind prune_kind;

#endif
