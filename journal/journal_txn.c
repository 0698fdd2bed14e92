/*
 * journal_txn.c - the journal's transactions (journal_internal.h): a write
 * transaction is a child of the open batch, if any, so that nothing is
 * durable before the batch is; a read sees the batch's writes. Below both
 * journal.c and journal_read.c, which use these and nothing of each other's
 * beyond them.
 */
#include <errno.h>
#include <stdbool.h>

#include "journal_internal.h"

int jr_lmdb_fail(struct journal_err *e, int rc, const char *what)
{
	return jr_fail(e, rc > 0 ? -EIO : rc, "journal: %s: %s", what, mdb_strerror(rc));
}

MDB_txn *jr_my_batch(struct journal *j)
{
	MDB_txn *b = j->batch;
	return b && j->batch_owner == (unsigned long)pthread_self() ? b : NULL;
}

int jr_wbegin(struct journal *j, MDB_txn **txn)
{
	return mdb_txn_begin(j->env, jr_my_batch(j), 0, txn);
}

int jr_commit(struct journal *j, MDB_txn *txn, int rc)
{
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	/* A child of the batch commits into it: nothing is durable until the batch is. */
	MDB_txn *b = jr_my_batch(j);
	bool top = !b || txn == b;
	rc = mdb_txn_commit(txn);
	if (rc == 0 && top)
		j->commits++;
	return rc;
}

int jr_rbegin(struct journal *j, MDB_txn **txn)
{
	MDB_txn *b = jr_my_batch(j);
	if (b) {
		*txn = b;
		return 0;
	}
	return mdb_txn_begin(j->env, NULL, MDB_RDONLY, txn);
}

void jr_rend(struct journal *j, MDB_txn *txn)
{
	if (txn != jr_my_batch(j))
		mdb_txn_abort(txn);
}
