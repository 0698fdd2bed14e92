/*
 * journal.c - the LMDB journal (see journal.h): the environment, its format,
 * batches, writes and setting an op aside. Reading ops is in
 * journal_read.c, retention in journal_prune.c, the records in
 * journal_codec.c, the look at data.mdb before it is mapped in
 * journal_meta.c.
 *
 * Four named databases in one environment:
 *   ops     u64 id (big-endian, so keys sort by id)      -> op record
 *   steps   u64 id, u32 step index (big-endian)          -> step record
 *   running u64 id, as in ops                            -> empty
 *           the index of unfinished ops (format 2): every op whose stored
 *           state is not finished, written in the transaction that writes
 *           that state, so that recovery reads what is running, not the
 *           history
 *   meta    "next_id" -> u64, "format" -> u32, and the original bytes of
 *           damaged records of ops set aside: "corrupt/<id>" (op record),
 *           "corrupt/<id>/step/<index>" (step record), "~2"... if taken
 *
 * LMDB serialises writers across processes and makes each committed
 * transaction durable before mdb_txn_commit returns (we never pass
 * MDB_NOSYNC or MDB_NOMETASYNC).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal_internal.h"

/* Room for a great many ops; LMDB reserves address space, not disk. */
#define JOURNAL_MAP_SIZE ((size_t)1 << 30)
/* JOURNAL_FORMAT, the layout of the databases, is in journal.h. */


/* ---- the environment --------------------------------------------------------- */

/*
 * Fills the index of running ops from the ops themselves: every op that
 * journal_op_list lists as running or corrupt (its record is RUNNING, or it
 * or one of its step records does not decode). Once, in the transaction that
 * bumps a journal of format 1 (which had no index) to this format; one pass
 * over the ops and steps, nothing kept in memory.
 */
static int build_running(struct journal *j, MDB_txn *txn)
{
	MDB_cursor *oc = NULL, *sc = NULL;
	int rc = mdb_drop(txn, j->running, 0);
	if (rc == 0)
		rc = mdb_cursor_open(txn, j->ops, &oc);
	if (rc == 0)
		rc = mdb_cursor_open(txn, j->steps, &sc);
	MDB_val key, val, none = {0, ""};
	while (rc == 0 && (rc = mdb_cursor_get(oc, &key, &val, MDB_NEXT)) == 0) {
		uint64_t id = key_id(&key);
		struct journal_op op;
		bool in = jr_read_op_record(&val, id, &op) < 0 || op.state == JOURNAL_OP_RUNNING;
		journal_op_free(&op);
		if (!in)
			rc = jr_steps_damaged(sc, id, &in);
		if (rc == 0 && in) {
			unsigned char k[8];
			key_op(k, id);
			MDB_val rk = {8, k};
			rc = mdb_put(txn, j->running, &rk, &none, 0);
		}
	}
	if (oc)
		mdb_cursor_close(oc);
	if (sc)
		mdb_cursor_close(sc);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * Checks the journal's format and brings it to this one (see journal.h):
 * creates a new journal's databases, builds the index of a format 1
 * journal. 0, an LMDB error (> 0 or < 0 from LMDB), or -EBADMSG with e set.
 */
static int open_format(struct journal *j, MDB_txn *txn, const char *dir, struct journal_err *e)
{
	int rc = mdb_dbi_open(txn, "ops", MDB_CREATE, &j->ops);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "steps", MDB_CREATE, &j->steps);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &j->meta);
	if (rc != 0)
		return rc;
	MDB_val k = {6, "format"}, v;
	uint32_t fmt = 0;
	rc = mdb_get(txn, j->meta, &k, &v);
	if (rc == 0) {
		if (v.mv_size != sizeof(fmt))
			return jr_fail(e, -EBADMSG, "journal: %s is not a punix journal", dir);
		memcpy(&fmt, v.mv_data, sizeof(fmt));
		if (fmt > JOURNAL_FORMAT)
			return jr_fail(e, -EBADMSG,
				       "journal: %s has format %u; this punix reads format %u (a newer punix wrote it: "
				       "use that punix, which knows what this one would not keep up to date)",
				       dir, fmt, JOURNAL_FORMAT);
		if (fmt < 1)
			return jr_fail(e, -EBADMSG, "journal: %s has format %u; this punix reads format %u", dir, fmt,
				       JOURNAL_FORMAT);
	} else if (rc != MDB_NOTFOUND) {
		return rc;
	}
	/* A current journal without its index (dropped by hand) has it rebuilt, as a format 1 one. */
	bool build = fmt != JOURNAL_FORMAT;
	rc = mdb_dbi_open(txn, "running", build ? MDB_CREATE : 0, &j->running);
	if (rc == MDB_NOTFOUND) {
		build = true;
		rc = mdb_dbi_open(txn, "running", MDB_CREATE, &j->running);
	}
	if (rc == 0 && build)
		rc = build_running(j, txn);
	if (rc == 0 && fmt != JOURNAL_FORMAT) {
		fmt = JOURNAL_FORMAT;
		v.mv_size = sizeof(fmt);
		v.mv_data = &fmt;
		rc = mdb_put(txn, j->meta, &k, &v, 0);
	}
	return rc;
}

int journal_open(struct journal **jp, const char *dir, struct journal_err *e)
{
	*jp = NULL;
	int r = jr_make_dirs(dir, e);
	if (r < 0)
		return r;
	char *data = jr_xasprintf("%s/data.mdb", dir);
	r = jr_check_data(data, e);
	if (r < 0) {
		jr_wait_for_creation(dir);
		r = jr_check_data(data, e);
	}
	free(data);
	if (r < 0)
		return r;
	struct journal *j = calloc(1, sizeof(*j));
	if (!j)
		abort();
	j->dir = strdup(dir);
	int rc = mdb_env_create(&j->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(j->env, 8);
	if (rc == 0)
		rc = mdb_env_set_mapsize(j->env, JOURNAL_MAP_SIZE);
	if (rc == 0)
		rc = mdb_env_open(j->env, dir, 0, 0600);
	if (rc != 0) {
		r = jr_fail(e, rc > 0 ? -EIO : rc, "journal: cannot open %s: %s", dir, mdb_strerror(rc));
		journal_close(j);
		return r;
	}
	MDB_txn *txn;
	rc = mdb_txn_begin(j->env, NULL, 0, &txn);
	if (rc == 0) {
		rc = open_format(j, txn, dir, e);
		if (rc == -EBADMSG) {
			mdb_txn_abort(txn);
			journal_close(j);
			return rc;
		}
		rc = jr_commit(j, txn, rc);
	}
	if (rc != 0) {
		r = jr_lmdb_fail(e, rc, dir);
		journal_close(j);
		return r;
	}
	*jp = j;
	return 0;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	journal_batch_abort(j);
	if (j->env)
		mdb_env_close(j->env);
	free(j->dir);
	free(j);
}

/* ---- transactions and batches ------------------------------------------------- */

int journal_batch_begin(struct journal *j, struct journal_err *e)
{
	if (j->batch)
		return jr_fail(e, -EBUSY, "journal: %s: a batch is already open", j->dir);
	MDB_txn *b;
	int rc = mdb_txn_begin(j->env, NULL, 0, &b);
	if (rc != 0)
		return jr_lmdb_fail(e, rc, "beginning a batch");
	j->batch_owner = (unsigned long)pthread_self();
	j->batch = b;
	return 0;
}

int journal_batch_commit(struct journal *j, struct journal_err *e)
{
	if (!j->batch)
		return jr_fail(e, -EINVAL, "journal: %s: no batch is open", j->dir);
	MDB_txn *txn = j->batch;
	int rc = jr_commit(j, txn, 0);
	j->batch = NULL;
	return rc ? jr_lmdb_fail(e, rc, "committing a batch (none of its writes was recorded)") : 0;
}

void journal_batch_abort(struct journal *j)
{
	if (j && j->batch) {
		mdb_txn_abort(j->batch);
		j->batch = NULL;
	}
}

uint64_t journal_commit_count(const struct journal *j)
{
	return j->commits;
}

/* ---- writes --------------------------------------------------------------------- */

static int put_op(MDB_txn *txn, struct journal *j, const struct journal_op *op)
{
	unsigned char k[8];
	key_op(k, op->id);
	size_t len;
	unsigned char *rec = journal_encode_op(op, &len);
	MDB_val key = {8, k}, val = {len, rec};
	int rc = mdb_put(txn, j->ops, &key, &val, 0);
	free(rec);
	return rc;
}

/*
 * Puts op id in the index of running ops (running), or takes it out: in the
 * transaction that writes the op's state, so the two never disagree.
 */
static int index_running(struct journal *j, MDB_txn *txn, uint64_t id, bool running)
{
	unsigned char k[8];
	key_op(k, id);
	MDB_val key = {8, k}, none = {0, ""};
	if (running)
		return mdb_put(txn, j->running, &key, &none, 0);
	int rc = mdb_del(txn, j->running, &key, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

bool jr_finished(enum journal_op_state s)
{
	return s == JOURNAL_OP_DONE || s == JOURNAL_OP_ABORTED || s == JOURNAL_OP_FAILED || s == JOURNAL_OP_SET_ASIDE;
}

int journal_op_begin(struct journal *j, struct journal_op *op, struct journal_err *e)
{
	MDB_txn *txn;
	int rc = jr_wbegin(j, &txn);
	if (rc != 0)
		return jr_lmdb_fail(e, rc, "begin");
	MDB_val k = {7, "next_id"}, v;
	uint64_t id = 1;
	rc = mdb_get(txn, j->meta, &k, &v);
	if (rc == 0 && v.mv_size == sizeof(id))
		memcpy(&id, v.mv_data, sizeof(id));
	else if (rc != MDB_NOTFOUND && rc != 0)
		goto out;
	op->id = id;
	op->state = JOURNAL_OP_RUNNING;
	op->started = (uint64_t)time(NULL);
	id++;
	v.mv_size = sizeof(id);
	v.mv_data = &id;
	rc = mdb_put(txn, j->meta, &k, &v, 0);
	if (rc == 0)
		rc = put_op(txn, j, op);
	if (rc == 0)
		rc = index_running(j, txn, op->id, true);
out:
	rc = jr_commit(j, txn, rc);
	return rc ? jr_lmdb_fail(e, rc, "recording an op") : 0;
}

/* Read-modify-write of one op record in one transaction. */
static int update_op(struct journal *j, uint64_t id, const char *plan, size_t plan_len, int state,
		     struct journal_err *e)
{
	MDB_txn *txn;
	int rc = jr_wbegin(j, &txn);
	if (rc != 0)
		return jr_lmdb_fail(e, rc, "begin");
	unsigned char k[8];
	key_op(k, id);
	MDB_val key = {8, k}, val;
	rc = mdb_get(txn, j->ops, &key, &val);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc == MDB_NOTFOUND ? jr_fail(e, -ENOENT, "journal: no op %llu", (unsigned long long)id)
					  : jr_lmdb_fail(e, rc, "reading an op");
	}
	struct journal_op op;
	int r = journal_decode_op(val.mv_data, val.mv_size, &op, e);
	if (r < 0) {
		mdb_txn_abort(txn);
		char why[400];
		snprintf(why, sizeof(why), "%.399s", e->msg);
		return jr_fail(e, r, "journal: op %llu is corrupt: %s", (unsigned long long)id, why);
	}
	if (op.state == JOURNAL_OP_SET_ASIDE) {
		mdb_txn_abort(txn);
		journal_op_free(&op);
		return jr_fail(e, -EALREADY, "journal: op %llu was set aside; it is no longer recorded",
			    (unsigned long long)id);
	}
	if (plan) {
		free(op.plan);
		op.plan = malloc(plan_len + 1);
		if (!op.plan)
			abort();
		memcpy(op.plan, plan, plan_len);
		op.plan[plan_len] = '\0';
		op.plan_len = plan_len;
	}
	if (state) {
		op.state = (enum journal_op_state)state;
		op.ended = (uint64_t)time(NULL);
	}
	rc = put_op(txn, j, &op);
	if (rc == 0 && state)
		rc = index_running(j, txn, id, !jr_finished(op.state));
	journal_op_free(&op);
	rc = jr_commit(j, txn, rc);
	return rc ? jr_lmdb_fail(e, rc, "updating an op") : 0;
}

int journal_op_set_plan(struct journal *j, uint64_t id, const char *plan, struct journal_err *e)
{
	return update_op(j, id, plan, strlen(plan), 0, e);
}

int journal_op_set_plan_bytes(struct journal *j, uint64_t id, const void *plan, size_t len, struct journal_err *e)
{
	return update_op(j, id, plan, len, 0, e);
}

int journal_op_finish(struct journal *j, uint64_t id, enum journal_op_state state, struct journal_err *e)
{
	return update_op(j, id, NULL, 0, (int)state, e);
}

int journal_step_write(struct journal *j, uint64_t id, uint32_t index, const char *name,
		       enum journal_step_state state, const char *result, struct journal_err *e)
{
	struct journal_step s = {index, (char *)name, state, (char *)result};
	size_t len;
	unsigned char *rec = journal_encode_step(&s, &len);
	unsigned char k[12];
	key_step(k, id, index);
	MDB_val key = {12, k}, val = {len, rec};
	MDB_txn *txn;
	int rc = jr_wbegin(j, &txn);
	if (rc == 0)
		rc = jr_commit(j, txn, mdb_put(txn, j->steps, &key, &val, 0));
	free(rec);
	return rc ? jr_lmdb_fail(e, rc, "recording a step") : 0;
}

/* ---- setting an op aside ------------------------------------------------------- */

/* Puts bytes under key in the meta table, or under key~2, key~3, ... if it is taken. */
static int keep_bytes(struct journal *j, MDB_txn *txn, const char *name, const unsigned char *p, size_t len)
{
	int rc = MDB_KEYEXIST;
	for (int i = 1; i < 1000 && rc == MDB_KEYEXIST; i++) {
		char *k = i == 1 ? jr_xasprintf("%s", name) : jr_xasprintf("%s~%d", name, i);
		MDB_val key = {strlen(k), k}, val = {len, (void *)p};
		rc = mdb_put(txn, j->meta, &key, &val, MDB_NOOVERWRITE);
		free(k);
	}
	return rc;
}

int journal_op_set_aside(struct journal *j, uint64_t id, struct journal_err *e)
{
	MDB_txn *txn;
	int rc = jr_wbegin(j, &txn);
	if (rc != 0)
		return jr_lmdb_fail(e, rc, "begin");
	struct op_view v;
	int r = jr_view_op(j, txn, id, true, &v, e);
	if (r < 0) {
		mdb_txn_abort(txn);
		return r;
	}
	switch (v.op.state) {
	case JOURNAL_OP_RUNNING:
	case JOURNAL_OP_CORRUPT: break;
	case JOURNAL_OP_SET_ASIDE: r = jr_fail(e, -EALREADY, "journal: op %llu is already set aside", (unsigned long long)id); break;
	case JOURNAL_OP_DONE:
	case JOURNAL_OP_ABORTED:
	case JOURNAL_OP_FAILED:
		r = jr_fail(e, -EINVAL, "journal: op %llu is %s: a finished op cannot be set aside", (unsigned long long)id,
			 journal_op_state_name(v.op.state));
		break;
	}
	if (r < 0) {
		jr_view_free(&v);
		mdb_txn_abort(txn);
		return r;
	}
	char *name;
	if (v.raw) {
		name = jr_xasprintf("corrupt/%llu", (unsigned long long)id);
		rc = keep_bytes(j, txn, name, v.raw, v.rawlen);
		free(name);
	}
	for (size_t i = 0; i < v.nbad && rc == 0; i++) {
		name = jr_xasprintf("corrupt/%llu/step/%u", (unsigned long long)id, v.bad[i].index);
		rc = keep_bytes(j, txn, name, v.bad[i].raw, v.bad[i].len);
		free(name);
		unsigned char k[12];
		key_step(k, id, v.bad[i].index);
		MDB_val key = {12, k};
		if (rc == 0)
			rc = mdb_del(txn, j->steps, &key, NULL);
	}
	if (rc == 0) {
		v.op.state = JOURNAL_OP_SET_ASIDE;
		v.op.ended = (uint64_t)time(NULL);
		rc = put_op(txn, j, &v.op);
	}
	if (rc == 0)
		rc = index_running(j, txn, id, false);
	jr_view_free(&v);
	rc = jr_commit(j, txn, rc);
	return rc ? jr_lmdb_fail(e, rc, "setting an op aside") : 0;
}
