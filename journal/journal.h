/*
 * journal.h - the write-ahead journal of operations, in LMDB.
 *
 * An op (a deploy, a rollback, ...) is a record; each of its steps is a
 * record written with INTENT before the step runs and DONE (or UNDONE)
 * after. Every write is its own durable LMDB transaction (no MDB_NOSYNC),
 * so after a crash the journal says exactly which steps may have run.
 *
 * Records are binary and versioned, and carry a CRC-32: a record that is
 * truncated, foreign or edited is reported as corrupt, naming the op,
 * never trusted and never a crash.
 *
 *   record := "PJR" version(1) type(1) length(4, LE) payload crc32(4, LE)
 *   payload := { tag(1) length(4, LE) bytes }
 *
 * The journal includes nothing else of punix's.
 */
#ifndef PUNIX_JOURNAL_H
#define PUNIX_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct journal;

enum journal_op_state {
	JOURNAL_OP_RUNNING = 1,   /* started, not finished: recovery's business */
	JOURNAL_OP_DONE = 2,      /* finished (rolled forward, if it was recovered) */
	JOURNAL_OP_ABORTED = 3,   /* undone before its commit point */
	JOURNAL_OP_FAILED = 4,    /* failed after its commit point, then rolled forward */
};

enum journal_step_state {
	JOURNAL_STEP_INTENT = 1,
	JOURNAL_STEP_DONE = 2,
	JOURNAL_STEP_UNDONE = 3,
};

struct journal_op {
	uint64_t id;
	char *kind;    /* "deploy", "rollback", "set-current" */
	char *scope;   /* what it locks: "<target>|<deployments root>|<stack>" */
	char *stack;
	char *plan;    /* the op's parameters and plan (JSON text) */
	enum journal_op_state state;
	uint64_t started; /* unix seconds */
	uint64_t ended;
};

struct journal_step {
	uint32_t index;
	char *name;
	enum journal_step_state state;
	char *result; /* may be NULL */
};

/* A journal error: a negative errno-style code and a message. */
struct journal_err {
	int code;
	char msg[512];
};

int journal_open(struct journal **j, const char *dir, struct journal_err *e);
void journal_close(struct journal *j);

/* Records a new RUNNING op; assigns op->id. */
int journal_op_begin(struct journal *j, struct journal_op *op, struct journal_err *e);
int journal_op_set_plan(struct journal *j, uint64_t id, const char *plan, struct journal_err *e);
int journal_op_finish(struct journal *j, uint64_t id, enum journal_op_state state, struct journal_err *e);
int journal_step_write(struct journal *j, uint64_t id, uint32_t index, const char *name,
		       enum journal_step_state state, const char *result, struct journal_err *e);

/* One op and its steps (sorted by index); free with journal_op_free. */
int journal_op_get(struct journal *j, uint64_t id, struct journal_op *op, struct journal_step **steps,
		   size_t *nsteps, struct journal_err *e);
/* Every op, oldest first (no steps). */
int journal_op_list(struct journal *j, struct journal_op **ops, size_t *n, struct journal_err *e);

void journal_op_free(struct journal_op *op);
void journal_ops_free(struct journal_op *ops, size_t n);
void journal_steps_free(struct journal_step *s, size_t n);

const char *journal_op_state_name(enum journal_op_state s);
const char *journal_step_state_name(enum journal_step_state s);

/* ---- the encoding, exposed for tests and the fuzzer ----------------------- */

/* Encodes an op record; malloc'd. */
unsigned char *journal_encode_op(const struct journal_op *op, size_t *len);
/* Decodes and validates; 0, or -EBADMSG with e->msg saying why. */
int journal_decode_op(const unsigned char *p, size_t len, struct journal_op *op, struct journal_err *e);
unsigned char *journal_encode_step(const struct journal_step *s, size_t *len);
int journal_decode_step(const unsigned char *p, size_t len, struct journal_step *s, struct journal_err *e);

#endif
