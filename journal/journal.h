/*
 * journal.h - the write-ahead journal of operations, in LMDB.
 *
 * An op (a deploy, a rollback, ...) is a record; each of its steps is a
 * record written with INTENT before the step runs and DONE (or UNDONE)
 * after. Every write is its own durable LMDB transaction (no MDB_NOSYNC),
 * so after a crash the journal says exactly which steps may have run;
 * unless it is made inside a batch (journal_batch_begin), which makes all
 * of its writes durable at once, with one commit.
 *
 * Unfinished ops are also kept in an index, written in the same transaction
 * as the op's state, so that recovery and each new op read what is running
 * (journal_running_list) at a cost that does not grow with the history.
 * The history itself is bounded by journal_prune and journal_compact.
 *
 * Records are binary and versioned, and carry a CRC-32: a record that is
 * truncated, foreign or edited is reported as corrupt, naming the op,
 * never trusted and never a crash.
 *
 *   record := "PJR" version(1) type(1) length(4, LE) payload crc32(4, LE)
 *   payload := { tag(1) length(4, LE) bytes }
 *
 * The databases' layout has a format number, in the journal's meta table:
 *   1  ops, steps and meta.
 *   2  adds "running", the index of unfinished ops. journal_open bumps a
 *      format 1 journal to 2 once, in one transaction: it builds the index
 *      by scanning every op (an op goes in if its record is RUNNING, or if
 *      it or one of its step records does not decode: what journal_op_list
 *      lists as running or corrupt). A punix of format 1 refuses a format 2
 *      journal ("has format 2; this punix reads format 1"), since it would
 *      not keep the index up to date; upgrade punix while no punix runs (a
 *      format 1 punix that already had the journal open when it was bumped
 *      would still write without the index).
 *   3  an op's plan field may hold any bytes (the engine's binary plan,
 *      engine/plan.h), where format 2 held JSON text. Bumped on open like
 *      2 (the index is rebuilt once on the way); a format 2 punix refuses
 *      the journal rather than take a binary plan for a corrupt record.
 * A journal of a format newer than this code's is refused by journal_open
 * (-EBADMSG, "has format N; this punix reads format 3 (a newer punix wrote
 * it: ...)"), never changed.
 *
 * A struct journal is used from one thread at a time; a batch, from the
 * thread that began it (LMDB binds a write transaction to its thread).
 *
 * The journal includes nothing else of punix's.
 */
#ifndef PUNIX_JOURNAL_H
#define PUNIX_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct journal;

/*
 * The layout of the databases, the format number above: what journal_open
 * writes, and the newest it reads. `punix --version` prints it.
 */
#define JOURNAL_FORMAT 3

/*
 * Retention (journal_compact): when more than JOURNAL_COMPACT_AT finished
 * ops (done, aborted, failed, set aside) are stored, prune to the newest
 * JOURNAL_KEEP_FINISHED of them. Also the default of `punix journal prune`.
 */
#define JOURNAL_KEEP_FINISHED 1000
#define JOURNAL_COMPACT_AT 10000

enum journal_op_state {
	JOURNAL_OP_RUNNING = 1,   /* started, not finished: recovery's business */
	JOURNAL_OP_DONE = 2,      /* finished (rolled forward, if it was recovered) */
	JOURNAL_OP_ABORTED = 3,   /* undone before its commit point (or flipped back by its confirm step) */
	JOURNAL_OP_FAILED = 4,    /* failed after its commit point, then rolled forward */
	/*
	 * Never stored: what journal_op_list reports for an op whose record, or
	 * one of whose step records, does not decode. Nothing about it can be
	 * trusted; it is not recovered and stays so until it is set aside.
	 */
	JOURNAL_OP_CORRUPT = 5,
	/*
	 * Set aside by hand (`punix journal set-aside`): a running or corrupt op
	 * that is never recovered again and never blocks anything.
	 */
	JOURNAL_OP_SET_ASIDE = 6,
};

enum journal_step_state {
	JOURNAL_STEP_INTENT = 1,
	JOURNAL_STEP_DONE = 2,
	JOURNAL_STEP_UNDONE = 3,
};

/*
 * Which strings are set. RUNNING, DONE, ABORTED, FAILED: kind, scope and
 * stack always, from a record that passed every check; plan may be NULL.
 * CORRUPT: each of kind, scope, stack and plan may be NULL; one that is set
 * was salvaged from the damaged record's framing, holds only printable
 * UTF-8 (plan may also hold tabs and newlines), and is UNVERIFIED (it may
 * itself be damaged) unless the op record was intact and only one of its
 * step records is corrupt. A caller that acts on ops by scope must not act
 * on a CORRUPT op's scope. SET_ASIDE: each of kind, scope, stack and plan
 * may be NULL (an op set aside while its record was corrupt keeps only what
 * could be salvaged, unverified). Every string that is set is
 * NUL-terminated and owned by the op (journal_op_free).
 */
struct journal_op {
	uint64_t id;
	char *kind;    /* "deploy", "rollback", "set-current" */
	char *scope;   /* what it locks: "<target>|<deployments root>|<stack>" */
	char *stack;
	/*
	 * The op's plan: bytes whose meaning is the engine's (engine/plan.h: a
	 * versioned binary encoding; JSON text from punix before it), NUL-
	 * terminated for convenience; plan_len of them (0 with plan set: text,
	 * strlen(plan)).
	 */
	char *plan;
	size_t plan_len;
	enum journal_op_state state;
	uint64_t started; /* unix seconds; 0 if unknown (CORRUPT, SET_ASIDE) */
	uint64_t ended;
	/*
	 * CORRUPT: why, naming the op ("op 3 is corrupt: record checksum
	 * mismatch ..."). SET_ASIDE: the same message if the op was corrupt
	 * when it was set aside, else NULL. NULL for every other state.
	 */
	char *corrupt;
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

/*
 * Opens the journal in dir, creating dir (and its parents) and a fresh
 * journal if there is no dir/data.mdb. Before LMDB maps the file, its two
 * meta pages are read: a data.mdb of 0 bytes is an error (-ENODATA, "is
 * empty"), never silently a new journal; one shorter than its meta pages
 * say it extends is an error (-EBADMSG, "is truncated") instead of a
 * SIGBUS when the missing pages would be touched.
 */
int journal_open(struct journal **j, const char *dir, struct journal_err *e);
/* Closes j; a batch still open is aborted (none of its writes is recorded). */
void journal_close(struct journal *j);

/*
 * Group commit. Between journal_batch_begin and journal_batch_commit, every
 * write (journal_op_begin, journal_op_set_plan, journal_op_finish,
 * journal_step_write, journal_op_set_aside) goes into one LMDB write
 * transaction, and journal_batch_commit makes them all durable with one
 * commit (one fdatasync) instead of one each. Until then none of them is
 * durable: a crash, journal_batch_abort or journal_close loses them all. So
 * batch only writes that may be lost together (e.g. a step's INTENT must
 * not be batched with running the step).
 *
 * Inside a batch each write call is still all or nothing (a nested
 * transaction): one that fails leaves the batch as it was, and the caller
 * chooses to commit the rest or abort. Reads (journal_op_get,
 * journal_op_inspect, journal_op_list, journal_running_list,
 * journal_finished_count) read in the batch's transaction and so see its
 * writes. journal_prune and journal_compact are refused (-EBUSY) while a
 * batch is open. The batch holds LMDB's write lock: every other writer, in
 * any process, waits until it is committed or aborted, so keep it short.
 * Use a batch from one thread only, the one that began it.
 *
 * journal_batch_begin: -EBUSY if a batch is already open.
 * journal_batch_commit: -EINVAL if none is open; on an LMDB error the batch
 * is gone and none of its writes was recorded.
 */
int journal_batch_begin(struct journal *j, struct journal_err *e);
int journal_batch_commit(struct journal *j, struct journal_err *e);
void journal_batch_abort(struct journal *j);
/*
 * For tests and benchmarks: how many write transactions j has committed
 * durably (a batch counts once, its writes not at all).
 */
uint64_t journal_commit_count(const struct journal *j);

/* Records a new RUNNING op, in the index of unfinished ops too; assigns op->id. */
int journal_op_begin(struct journal *j, struct journal_op *op, struct journal_err *e);
int journal_op_set_plan(struct journal *j, uint64_t id, const char *plan, struct journal_err *e);
/* The plan as len bytes (any bytes: NUL included). */
int journal_op_set_plan_bytes(struct journal *j, uint64_t id, const void *plan, size_t len, struct journal_err *e);
/* Sets the op's state (done, aborted, failed) and ends it, taking it out of the index in the same transaction. */
int journal_op_finish(struct journal *j, uint64_t id, enum journal_op_state state, struct journal_err *e);
int journal_step_write(struct journal *j, uint64_t id, uint32_t index, const char *name,
		       enum journal_step_state state, const char *result, struct journal_err *e);

/*
 * One op and its steps (sorted by index); free with journal_op_free. An op
 * whose record or one of whose step records does not decode: -EBADMSG,
 * e->msg "journal: op N is corrupt: ...".
 */
int journal_op_get(struct journal *j, uint64_t id, struct journal_op *op, struct journal_step **steps,
		   size_t *nsteps, struct journal_err *e);
/*
 * Like journal_op_get, but a corrupt op is returned too (0, state CORRUPT,
 * op->corrupt saying why, what could be salvaged of its fields, and the
 * steps that do decode): for showing a damaged op to a person.
 */
int journal_op_inspect(struct journal *j, uint64_t id, struct journal_op *op, struct journal_step **steps,
		       size_t *nsteps, struct journal_err *e);
/*
 * Every op, oldest first (no steps). An op whose record, or one of whose
 * step records, does not decode is listed with state JOURNAL_OP_CORRUPT,
 * its id (from its key) and op->corrupt; the listing itself fails only
 * when LMDB does.
 */
int journal_op_list(struct journal *j, struct journal_op **ops, size_t *n, struct journal_err *e);
/*
 * Like journal_op_list, but only the ops in the index of unfinished ops,
 * oldest first: every RUNNING op, and every op that was corrupt when the
 * index was built (see the format above) or whose entry names no record
 * (listed CORRUPT, "op N is corrupt: it is in the index of running ops but
 * has no record"). What recovery and a new op need to read; its cost grows
 * with the number of these ops, not with the number of finished ones. An
 * op whose record is damaged after it finished is not in the index:
 * journal_op_list still shows it.
 */
int journal_running_list(struct journal *j, struct journal_op **ops, size_t *n, struct journal_err *e);
/*
 * Sets a RUNNING or CORRUPT op aside (state SET_ASIDE, ended now): it is
 * never recovered and blocks nothing. For a corrupt op, the op record is
 * rewritten as a valid record from what could be salvaged, with op->corrupt
 * kept; the original bytes of every corrupt record of the op are kept in
 * the meta table, under "corrupt/<id>" (the op record) and
 * "corrupt/<id>/step/<index>" (a step record; removed from the steps), with
 * "~2", "~3", ... appended should the key be taken. Errors: -ENOENT (no
 * such op), -EINVAL (the op is finished: done, aborted or failed),
 * -EALREADY (already set aside). An op set aside stays so:
 * journal_op_set_plan and journal_op_finish on it fail with -EALREADY (so
 * never set aside an op whose punix is still running).
 */
int journal_op_set_aside(struct journal *j, uint64_t id, struct journal_err *e);

/*
 * Deletes the oldest finished ops (done, aborted, failed, set aside), each
 * with all its step records, keeping the newest keep of them; *removed says
 * how many went. Never a running op, nor a corrupt one (its record or one of
 * its step records does not decode): those stay, and are not counted among
 * the kept. For an op set aside, the original bytes of its damaged records
 * kept under "corrupt/<id>..." in the meta table go with it: they only
 * explained an op that is no longer there.
 *
 * Works in transactions of at most 1,000 ops each, so that memory and
 * LMDB's dirty pages stay bounded however much there is to delete: on an
 * error, the ops removed by the transactions already committed stay removed
 * (*removed counts them) and running it again carries on. Pages freed are
 * reused by later writes; data.mdb does not shrink. -EBUSY during a batch.
 */
int journal_prune(struct journal *j, size_t keep, size_t *removed, struct journal_err *e);
/*
 * Retention by threshold: if more than JOURNAL_COMPACT_AT finished ops are
 * stored, journal_prune(j, JOURNAL_KEEP_FINISHED). The check is O(1) (two
 * LMDB entry counts), so it can follow every op. 0 or an error of
 * journal_prune.
 */
int journal_compact(struct journal *j, struct journal_err *e);
/*
 * The number of finished ops stored, in O(1): the ops that are not in the
 * index of unfinished ops (so an op damaged after it finished counts too).
 */
int journal_finished_count(struct journal *j, size_t *n, struct journal_err *e);

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
