/*
 * op_internal.h - what the op runner shares with the op kinds defined
 * outside op.c (garbage collection): the context of a running op, the
 * shape of a step table, and the runner's helpers.
 */
#ifndef PUNIX_ENGINE_OP_INTERNAL_H
#define PUNIX_ENGINE_OP_INTERNAL_H

#include <jansson.h>

#include "../base/strmap.h"
#include "../base/vec.h"

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
	bool commit; /* the commit point: a failure before it undoes, at or after it rolls forward */
};

struct op_kind {
	const char *name;
	const struct step *steps;
	size_t nsteps;
};


__attribute__((format(printf, 3, 4))) int op_fail(struct op_ctx *c, int exit, const char *fmt, ...);
const char *plan_str(struct op_ctx *c, const char *key);
long plan_long(struct op_ctx *c, const char *key);

/* Runs an op of kind k on the scope's lock, first recovering that scope. */
int op_start(struct engine *e, const struct target_spec *t, const char *kind, const char *stack, const char *scope,
	     struct op_ctx *c, struct op_result *r, int *lock_h);
int op_run(struct op_ctx *c);
void op_end(struct op_ctx *c, int lock_h);

/* ---- the runner (runner.c) ---- */

/* The deployments root the op works in (its plan's). */
const char *dep_root(struct op_ctx *c);
/* Now, as 2026-12-03T07:00:00Z. */
void now_iso(char out[32]);
/* The target is this machine itself (not rebased, not over SSH): its store is ours. */
bool target_is_here(struct op_ctx *c);
const struct op_kind *find_kind(const char *name);
/* The index of the kind's commit point (the step marked commit). */
size_t kind_commit(const struct op_kind *k);
int journal_step(struct op_ctx *c, size_t i, enum journal_step_state s);
int journal_finish(struct op_ctx *c, enum journal_op_state s);
/* Undoes steps [0, upto], newest first; -1 if an undo failed (the op stays running). */
int undo_from(struct op_ctx *c, long upto);
/* Runs steps [from, n); the op's exit code. */
int run_steps(struct op_ctx *c, size_t from);

/* ---- locks (lock.c) ---- */

/* Takes the scope's lock without waiting; -EWOULDBLOCK with err naming who holds it. */
int lock_scope(struct engine *e, const char *scope, const char *what, int *h, struct sbuf *err);
/* The lock key of a stack on a target: its canonical identity. */
char *make_scope(const struct target_spec *t, const char *stack);
/* Records a rebased tree the deployer's own GC must take roots from. */
int remember_tree(struct engine *e, const struct target_spec *t, struct sbuf *err);
/* Takes the store's lock shared for an op's whole life; the handle, or -1 with r filled. */
int store_shared(struct engine *e, struct op_result *r);

/* ---- steps every switching op shares (generations.c) ---- */

/* Directories written into without a sync yet; each is synced once. */
struct dirset {
	struct strmap seen;
	VEC(char *) dirs;
};
void dirset_add(struct dirset *d, const char *path);
/* Syncs each directory once; on failure *failed names the directory. */
int dirset_sync(struct dirset *d, struct punix_ops *o, const char **failed);
void dirset_free(struct dirset *d);

const char *manifest_why(struct op_ctx *c, long gen, int r, struct sbuf *err);
int plan_pins_in_store(struct op_ctx *c);
void list_gens_text(struct op_ctx *c, struct sbuf *out);
int step_verify(struct op_ctx *c);
int step_flip(struct op_ctx *c);
int step_materialise(struct op_ctx *c);

/* ---- activation (activate.c) and secrets (secrets.c) ---- */

int step_activate(struct op_ctx *c);
/* Resolves the stack's secrets into c->secrets; [E11] naming every one missing. */
int resolve_secrets(struct op_ctx *c, const struct stack_desc *st);
void free_secrets(struct op_ctx *c);

/* ---- recovery (recover.c) ---- */

/* Removes the temporaries an interrupted op may have left on its target. */
void sweep_temps(struct op_ctx *c);
/* Recovers the running ops of one scope (whose lock the caller holds). */
int recover_scope(struct engine *e, const char *scope, struct sbuf *report);

/* ---- the kinds ---- */

extern const struct op_kind deploy_kind;      /* deploy.c */
extern const struct op_kind rollback_kind;    /* switch.c */
extern const struct op_kind set_current_kind; /* switch.c */
extern const struct op_kind gc_kind;          /* gc.c */
extern const struct op_kind prune_kind;       /* gc.c */

#define NSTEPS(t) (sizeof(t) / sizeof((t)[0]))

#endif
