/*
 * journal_internal.h - what the journal's source files share; not part of
 * its interface (journal.h is).
 *
 *   journal_codec.c  the records: encoding, decoding, salvage (pure: no LMDB)
 *   journal_meta.c   the directory and data.mdb, looked at before LMDB maps it
 *   journal.c        the environment: open, batches, writes, set-aside
 *   journal_read.c   reading ops, damaged ones included
 *   journal_prune.c  retention: prune and compact
 *   journal_txn.c    transactions within and outside a batch
 *
 * Calls go down this list's reverse: prune and journal.c use read, read
 * and journal.c use txn, everything uses codec; no two files call each
 * other (scripts/layering checks it).
 */
#ifndef PUNIX_JOURNAL_INTERNAL_H
#define PUNIX_JOURNAL_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

#include "journal.h"

/* A record larger than this is not one of ours. */
#define REC_MAX ((size_t)16 << 20)

struct journal {
	MDB_env *env;
	MDB_dbi ops, steps, meta, running;
	char *dir;
	/*
	 * The open batch's write transaction (journal_batch_begin), or NULL.
	 * Every write while it is open is a child transaction of it, so that
	 * each call stays all or nothing inside the batch.
	 */
	MDB_txn *_Atomic batch;
	/*
	 * The thread that began the batch: only its reads and writes go into
	 * the batch; another thread's read is a transaction of its own (it sees
	 * what is committed), another's write waits for LMDB's writer lock.
	 */
	_Atomic unsigned long batch_owner;
	/* Write transactions committed durably (journal_commit_count). */
	uint64_t commits;
};

/* Sets e (if any) to code and the message; returns code. */
int jr_fail(struct journal_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A malloc'd formatted string; aborts when memory runs out. */
char *jr_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An LMDB error rc while doing what: -EIO for LMDB's own codes, else rc. */
int jr_lmdb_fail(struct journal_err *e, int rc, const char *what);

/*
 * Fills kind, scope, stack, plan and started from the fields of a damaged
 * op record whose framing still holds together, without trusting its
 * envelope or checksum: every string taken is clean text, the rest NULL.
 */
void jr_salvage_op(const unsigned char *p, size_t len, struct journal_op *op);

/* mkdir -p: the journal's directory mode 0700, missing parents 0755. */
int jr_make_dirs(const char *dir, struct journal_err *e);
/*
 * 0 if path is missing (a new journal) or looks whole, else an error: empty,
 * truncated, or not an LMDB file at all.
 */
int jr_check_data(const char *path, struct journal_err *e);
/* Waits (a bounded while) for another process creating dir's data.mdb. */
void jr_wait_for_creation(const char *dir);

/* ---- transactions (journal.c) -------------------------------------------------- */

/* A write transaction: a child of the open batch, else one of its own. */
/* The open batch if this thread began it, else NULL. */
MDB_txn *jr_my_batch(struct journal *j);
int jr_wbegin(struct journal *j, MDB_txn **txn);
/*
 * Ends a write transaction: commits it if rc is 0 (counting a commit that is
 * durable: not a batch's child's), else aborts it. Returns rc or the
 * commit's error.
 */
int jr_commit(struct journal *j, MDB_txn *txn, int rc);
/* A transaction to read in: the open batch's (which sees its writes), else a read-only one. */
int jr_rbegin(struct journal *j, MDB_txn **txn);
void jr_rend(struct journal *j, MDB_txn *txn);

/*
 * (journal_read.c) Decodes the record found under op id's key into op. If it does not
 * decode (or names another op), op is instead what could be salvaged of it,
 * with state CORRUPT and op->corrupt saying why; returns -EBADMSG then.
 */
int jr_read_op_record(const MDB_val *val, uint64_t id, struct journal_op *op);
struct bad_step {
	uint32_t index;
	unsigned char *raw;
	size_t len;
};

/* One op as found: decoded, or salvaged and CORRUPT; its steps that decode. */
struct op_view {
	struct journal_op op;
	struct journal_step *steps;
	size_t nsteps;
	unsigned char *raw; /* with keep: the op record's bytes, if it does not decode */
	size_t rawlen;
	struct bad_step *bad; /* with keep: the step records that do not decode */
	size_t nbad;
};

/*
 * Reads op id and its steps in txn into v (free with jr_view_free). A
 * record that does not decode makes v->op CORRUPT (a step's is left out of
 * v->steps); with keep, the bytes of each such record are kept in v.
 * -ENOENT if there is no such op; an LMDB error with e set.
 */
int jr_view_op(struct journal *j, MDB_txn *txn, uint64_t id, bool keep, struct op_view *v, struct journal_err *e);
void jr_view_free(struct op_view *v);
/*
 * Walks op id's step records with cur (of the steps table), from the first:
 * sets *bad if one does not decode or names another step. 0 or an LMDB error.
 */
int jr_steps_damaged(MDB_cursor *cur, uint64_t id, bool *bad);
/* Whether an op in state s is finished: out of the index, never recovered, prunable. */
bool jr_finished(enum journal_op_state s);

/* ---- keys ---------------------------------------------------------------------- */

static inline void key_op(unsigned char k[8], uint64_t id)
{
	for (int i = 0; i < 8; i++)
		k[i] = (unsigned char)(id >> (56 - 8 * i));
}

static inline void key_step(unsigned char k[12], uint64_t id, uint32_t index)
{
	key_op(k, id);
	for (int i = 0; i < 4; i++)
		k[8 + i] = (unsigned char)(index >> (24 - 8 * i));
}

/* The op id of an ops, steps or running key (its first 8 bytes); 0 if it is shorter. */
static inline uint64_t key_id(const MDB_val *k)
{
	uint64_t id = 0;
	if (k->mv_size >= 8)
		for (int i = 0; i < 8; i++)
			id = id << 8 | ((const unsigned char *)k->mv_data)[i];
	return id;
}

static inline uint32_t key_index(const MDB_val *k)
{
	uint32_t index = 0;
	for (int i = 8; i < 12; i++)
		index = index << 8 | ((const unsigned char *)k->mv_data)[i];
	return index;
}

#endif
