/*
 * target.h - where a deploy lands, as an ops table: the local machine, or
 * the local machine with every target path rebased under a root
 * (--transport-root, and --dry-run's scratch directory). Every table can be
 * wrapped by the fault injector the conformance tests drive.
 */
#ifndef PUNIX_ENGINE_TARGET_H
#define PUNIX_ENGINE_TARGET_H

#include "../base/ops.h"

/* Paths given to the table are target paths; root is prepended. */
struct punix_ops *ops_rebased(struct punix_ops *base, const char *root);
void ops_rebased_free(struct punix_ops *o);
/* The table a rebased one wraps (NULL if o is not rebased). */
struct punix_ops *ops_rebased_base(struct punix_ops *o);

/*
 * Wraps base to inject faults, configured from the environment
 * (docs/testing.md; fault.c):
 *   PUNIX_FAULT_EIO_AT=N        the Nth effect fails with EIO (1-based)
 *   PUNIX_FAULT_EIO_FOREVER=1   ... and every effect after it too
 *   PUNIX_FAULT_KILL_AT=N       the process is killed (SIGKILL) at the Nth effect
 *   PUNIX_FAULT_LOSSY=1         at a crash, what was not synced is lost
 * Every wrapped table and the journal's commits count in one sequence.
 * Returns base itself when none is set.
 */
struct punix_ops *ops_faulty(struct punix_ops *base);
/* The table a fault-injecting one wraps (NULL if o is not one). */
struct punix_ops *ops_faulty_base(struct punix_ops *o);
void ops_faulty_free(struct punix_ops *o);
/* A crash asked for by a test: loses what was not synced (LOSSY), then SIGKILL. */
void fault_crash(void) __attribute__((noreturn));
/* Counts a journal commit as an effect: <0 if it is to fail (or dies there). */
int fault_journal_tick(void);

#endif
