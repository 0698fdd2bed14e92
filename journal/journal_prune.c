/*
 * journal_prune.c - retention: the oldest finished ops are deleted so that
 * the journal's history, and every scan of it, stays bounded (see journal.h).
 *
 * Pruning first finds, reading from the newest op backwards, the newest op
 * that is not kept; then deletes, from the oldest op forwards, every
 * finished and whole op up to it, in write transactions of at most
 * PRUNE_CHUNK ops: one huge transaction would hold LMDB's write lock for
 * its whole length and could run into LMDB's limit of dirty pages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal_internal.h"

/* At most this many ops are looked at, and so deleted, per write transaction. */
#define PRUNE_CHUNK 1000

/* Where the next chunk starts: a key of the ops table (LMDB's keys are at most 511 bytes). */
struct resume {
	unsigned char k[512];
	size_t n;
};

/*
 * Whether the op under key/val may be pruned: its key is an op id, its
 * record decodes, names it and is finished, and every one of its step
 * records decodes (a corrupt op stays until it is set aside). *state is its
 * state then. 0 or an LMDB error.
 */
static int prunable(MDB_cursor *sc, const MDB_val *key, const MDB_val *val, bool *yes, enum journal_op_state *state)
{
	*yes = false;
	if (key->mv_size != 8)
		return 0;
	uint64_t id = key_id(key);
	struct journal_op op;
	bool fin = jr_read_op_record(val, id, &op) == 0 && jr_finished(op.state);
	*state = op.state;
	journal_op_free(&op);
	if (!fin)
		return 0;
	bool bad;
	int rc = jr_steps_damaged(sc, id, &bad);
	*yes = rc == 0 && !bad;
	return rc;
}

/*
 * The id of the newest op to delete: the newest prunable op once keep
 * prunable ops newer than it are passed. *none if there are no more than
 * keep. Reads only the newest ops, from the end.
 */
static int prune_bound(struct journal *j, size_t keep, uint64_t *bound, bool *none)
{
	*none = true;
	MDB_txn *txn;
	int rc = mdb_txn_begin(j->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return rc;
	MDB_cursor *oc = NULL, *sc = NULL;
	if ((rc = mdb_cursor_open(txn, j->ops, &oc)) != 0)
		oc = NULL;
	else if ((rc = mdb_cursor_open(txn, j->steps, &sc)) != 0)
		sc = NULL;
	size_t kept = 0;
	MDB_val key, val;
	for (MDB_cursor_op c = MDB_LAST; rc == 0 && (rc = mdb_cursor_get(oc, &key, &val, c)) == 0; c = MDB_PREV) {
		bool yes;
		enum journal_op_state st;
		rc = prunable(sc, &key, &val, &yes, &st);
		if (rc != 0 || !yes)
			continue;
		if (kept == keep) {
			*bound = key_id(&key);
			*none = false;
			break;
		}
		kept++;
	}
	if (sc)
		mdb_cursor_close(sc);
	if (oc)
		mdb_cursor_close(oc);
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Deletes every key of dbi that starts with the n bytes of prefix. */
static int del_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t n)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0)
		return rc;
	for (;;) {
		/* sought afresh after each delete, rather than trusting where a delete leaves the cursor */
		MDB_val key = {n, (void *)prefix}, val;
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
		if (rc != 0 || key.mv_size < n || memcmp(key.mv_data, prefix, n) != 0)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * The bytes kept of op id's damaged records when it was set aside (meta:
 * "corrupt/<id>", "corrupt/<id>~N", "corrupt/<id>/step/<index>[~N]"); not
 * "corrupt/<id>0...", another op's.
 */
static int del_kept(struct journal *j, MDB_txn *txn, uint64_t id)
{
	char *name = jr_xasprintf("corrupt/%llu", (unsigned long long)id);
	size_t n = strlen(name);
	MDB_val key = {n, name};
	int rc = mdb_del(txn, j->meta, &key, NULL);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	char *more = jr_xasprintf("%s/", name);
	if (rc == 0)
		rc = del_prefix(txn, j->meta, more, n + 1);
	more[n] = '~';
	if (rc == 0)
		rc = del_prefix(txn, j->meta, more, n + 1);
	free(more);
	free(name);
	return rc;
}

/* Deletes op id: its record, its steps, its index entry if any, the bytes kept if it was set aside. */
static int delete_op(struct journal *j, MDB_txn *txn, uint64_t id, enum journal_op_state state)
{
	unsigned char k[8];
	key_op(k, id);
	MDB_val key = {8, k};
	int rc = mdb_del(txn, j->ops, &key, NULL);
	if (rc == 0) {
		/* a finished op is not in the index, unless a punix of format 1 finished it after the bump */
		rc = mdb_del(txn, j->running, &key, NULL);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (rc == 0)
		rc = del_prefix(txn, j->steps, k, 8);
	if (rc == 0 && state == JOURNAL_OP_SET_ASIDE)
		rc = del_kept(j, txn, id);
	return rc;
}

/*
 * One write transaction: looks at up to PRUNE_CHUNK ops from the key at
 * *from on, none past op bound, and deletes those that may be pruned
 * (adding them to *removed once committed). *more says whether there are
 * ops left to look at, *from then where they start.
 */
static int prune_chunk(struct journal *j, struct resume *from, uint64_t bound, size_t *removed, bool *more)
{
	*more = false;
	MDB_txn *txn;
	int rc = jr_wbegin(j, &txn);
	if (rc != 0)
		return rc;
	uint64_t ids[PRUNE_CHUNK];
	enum journal_op_state states[PRUNE_CHUNK];
	size_t n = 0, looked = 0;
	MDB_cursor *oc = NULL, *sc = NULL;
	if ((rc = mdb_cursor_open(txn, j->ops, &oc)) != 0)
		oc = NULL;
	else if ((rc = mdb_cursor_open(txn, j->steps, &sc)) != 0)
		sc = NULL;
	MDB_val key = {from->n, from->k}, val;
	for (MDB_cursor_op c = MDB_SET_RANGE; rc == 0 && (rc = mdb_cursor_get(oc, &key, &val, c)) == 0; c = MDB_NEXT) {
		if (key.mv_size == 8 && key_id(&key) > bound)
			break;
		if (looked == PRUNE_CHUNK) {
			/* resumed at this very key: a key that is not an op id cannot send the walk back */
			from->n = key.mv_size < sizeof(from->k) ? key.mv_size : sizeof(from->k);
			memcpy(from->k, key.mv_data, from->n);
			*more = true;
			break;
		}
		looked++;
		bool yes;
		enum journal_op_state st;
		rc = prunable(sc, &key, &val, &yes, &st);
		if (rc == 0 && yes) {
			ids[n] = key_id(&key);
			states[n++] = st;
		}
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (sc)
		mdb_cursor_close(sc);
	if (oc)
		mdb_cursor_close(oc);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = delete_op(j, txn, ids[i], states[i]);
	rc = jr_commit(j, txn, rc);
	if (rc == 0)
		*removed += n;
	return rc;
}

int journal_prune(struct journal *j, size_t keep, size_t *removed, struct journal_err *e)
{
	*removed = 0;
	if (j->batch)
		return jr_fail(e, -EBUSY, "journal: %s/data.mdb: a batch is open; commit or abort it before pruning",
			       j->dir);
	uint64_t bound = 0;
	bool none;
	int rc = prune_bound(j, keep, &bound, &none);
	struct resume from = {{0}, 8};
	bool more = !none;
	while (rc == 0 && more)
		rc = prune_chunk(j, &from, bound, removed, &more);
	if (rc != 0) {
		char *what = jr_xasprintf("pruning %s/data.mdb (%zu op(s) removed before the error stay removed)",
					  j->dir, *removed);
		int r = jr_lmdb_fail(e, rc, what);
		free(what);
		return r;
	}
	return 0;
}

int journal_finished_count(struct journal *j, size_t *n, struct journal_err *e)
{
	*n = 0;
	MDB_txn *txn;
	int rc = jr_rbegin(j, &txn);
	if (rc != 0)
		return jr_lmdb_fail(e, rc, "begin");
	MDB_stat ops, running;
	rc = mdb_stat(txn, j->ops, &ops);
	if (rc == 0)
		rc = mdb_stat(txn, j->running, &running);
	jr_rend(j, txn);
	if (rc != 0)
		return jr_lmdb_fail(e, rc, "counting ops");
	/* an index entry without its record (damage) would make this negative */
	*n = ops.ms_entries > running.ms_entries ? ops.ms_entries - running.ms_entries : 0;
	return 0;
}

int journal_compact(struct journal *j, struct journal_err *e)
{
	if (j->batch)
		return jr_fail(e, -EBUSY, "journal: %s/data.mdb: a batch is open; commit or abort it before compacting",
			       j->dir);
	size_t n, removed;
	int r = journal_finished_count(j, &n, e);
	if (r == 0 && n > JOURNAL_COMPACT_AT)
		r = journal_prune(j, JOURNAL_KEEP_FINISHED, &removed, e);
	return r;
}
