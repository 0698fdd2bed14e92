/*
 * ownership.h - which files a stack's generations may write, and adopting
 * files that exist before punix manages them (docs/deploy.md, "Ownership").
 */
#ifndef PUNIX_ENGINE_OWNERSHIP_H
#define PUNIX_ENGINE_OWNERSHIP_H

#include <stdbool.h>

#include "../base/ops.h"
#include "../base/sbuf.h"
#include "systemd.h"

struct ownership_scope {
	struct punix_ops *tops; /* the target */
	const char *dep;        /* its deployments root */
	const char *store_root; /* the store's logical directory */
	const char *state_dir;  /* the journal's directory, or NULL on a rebased or remote target */
	const char *stack;
	const char *const *adopt; /* --adopt paths */
	size_t nadopt;
};

/* 0, or -1 with an [E13] error in err listing every file the stack may not write. */
int ownership_check(const struct ownership_scope *sc, const struct rendered *rf, struct sbuf *err);

/*
 * 0, or -1 with an [E13] error in err listing every config file of st that
 * lies inside a StateDirectory of one of its services (/var/lib/<dir>).
 */
int ownership_state_check(const struct stack_desc *st, struct sbuf *err);

/* Keeps the original bytes and mode of every adopted file (once); before the flip. */
int ownership_keep_originals(struct punix_ops *o, const char *dep, const char *stack, const char *const *adopt,
			     size_t n, struct sbuf *err);

/*
 * A file the live generation no longer declares: if it was adopted, its
 * original comes back (*restored = true); otherwise nothing happens here and
 * the caller removes it.
 */
int ownership_release(struct punix_ops *o, const char *dep, const char *stack, const char *path, bool *restored);

#endif
