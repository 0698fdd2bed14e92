/*
 * target.h - where a deploy lands, as an ops table: the local machine, or
 * the local machine with every target path rebased under a root
 * (--transport-root, and --dry-run's scratch directory). Every table can be
 * wrapped by the fault injector the conformance tests drive.
 */
#ifndef PUNIX_ENGINE_TARGET_H
#define PUNIX_ENGINE_TARGET_H

#include <stdbool.h>

#include "../base/ops.h"

struct fault_plan;

/* Paths given to the table are target paths; root is prepended. */
struct punix_ops *ops_rebased(struct punix_ops *base, const char *root);
void ops_rebased_free(struct punix_ops *o);
/* The table a rebased one wraps (NULL if o is not rebased). */
struct punix_ops *ops_rebased_base(struct punix_ops *o);

/*
 * What the fault injector is to do (docs/testing.md; fault.c). The CLI
 * fills it from the environment, once:
 *   PUNIX_FAULT_EIO_AT=N        the Nth effect fails with EIO (1-based)
 *   PUNIX_FAULT_EIO_FOREVER=1   ... and every effect after it too
 *   PUNIX_FAULT_KILL_AT=N       the process is killed (SIGKILL) at the Nth effect
 *   PUNIX_FAULT_LOSSY=1         at a crash, what was not synced is lost
 */
struct fault_config {
	long eio_at, kill_at;
	bool forever, lossy;
};

/*
 * A plan: every table wrapped with it and the journal's commits count in
 * one sequence. NULL (no plan, nothing wrapped) when cfg asks for nothing.
 */
struct fault_plan *fault_plan_new(const struct fault_config *cfg);
/* The effects counted so far (tests size their kill points with it). */
long fault_plan_count(struct fault_plan *fp);
/* Frees the plan (NULL is fine); every table wrapped with it must be freed first. */
void fault_plan_free(struct fault_plan *fp);
/* Wraps base with the plan; base itself when fp is NULL. ops_local() gets the plan's one wrapper. */
struct punix_ops *ops_faulty(struct fault_plan *fp, struct punix_ops *base);
/* The table a fault-injecting one wraps (NULL if o is not one). */
struct punix_ops *ops_faulty_base(struct punix_ops *o);
void ops_faulty_free(struct punix_ops *o);
/* A crash asked for by a test: loses what was not synced (LOSSY), then SIGKILL. fp may be NULL. */
void fault_crash(struct fault_plan *fp) __attribute__((noreturn));
/* Counts a journal commit as an effect: <0 if it is to fail (or dies there). 0 without a plan. */
int fault_journal_tick(struct fault_plan *fp);

#endif
