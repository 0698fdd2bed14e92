/*
 * journal.c - the LMDB journal (see journal.h): the environment, writes,
 * reads and setting an op aside. The records are in journal_codec.c, the
 * look at data.mdb before it is mapped in journal_meta.c.
 *
 * Three named databases in one environment:
 *   ops    u64 id (big-endian, so keys sort by id)      -> op record
 *   steps  u64 id, u32 step index (big-endian)          -> step record
 *   meta   "next_id" -> u64, "format" -> u32, and the original bytes of
 *          damaged records of ops set aside: "corrupt/<id>" (op record),
 *          "corrupt/<id>/step/<index>" (step record), "~2"... if taken
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
#define JOURNAL_FORMAT 1

int jr_lmdb_fail(struct journal_err *e, int rc, const char *what)
{
	return jr_fail(e, rc > 0 ? -EIO : rc, "journal: %s: %s", what, mdb_strerror(rc));
}

/* ---- the environment --------------------------------------------------------- */

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
		rc = mdb_env_set_maxdbs(j->env, 4);
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
	if (rc == 0)
		rc = mdb_dbi_open(txn, "ops", MDB_CREATE, &j->ops);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "steps", MDB_CREATE, &j->steps);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &j->meta);
	if (rc == 0) {
		MDB_val k = {6, "format"}, v;
		rc = mdb_get(txn, j->meta, &k, &v);
		if (rc == MDB_NOTFOUND) {
			uint32_t fmt = JOURNAL_FORMAT;
			v.mv_size = sizeof(fmt);
			v.mv_data = &fmt;
			rc = mdb_put(txn, j->meta, &k, &v, 0);
		} else if (rc == 0) {
			uint32_t fmt;
			if (v.mv_size != sizeof(fmt)) {
				mdb_txn_abort(txn);
				journal_close(j);
				return jr_fail(e, -EBADMSG, "journal: %s is not a punix journal", dir);
			}
			memcpy(&fmt, v.mv_data, sizeof(fmt));
			if (fmt != JOURNAL_FORMAT) {
				mdb_txn_abort(txn);
				journal_close(j);
				return jr_fail(e, -EBADMSG, "journal: %s has format %u; this punix reads format %u", dir, fmt,
					    JOURNAL_FORMAT);
			}
		}
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
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
	if (j->env)
		mdb_env_close(j->env);
	free(j->dir);
	free(j);
}

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

int journal_op_begin(struct journal *j, struct journal_op *op, struct journal_err *e)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(j->env, NULL, 0, &txn);
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
out:
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	return rc ? jr_lmdb_fail(e, rc, "recording an op") : 0;
}

/* Read-modify-write of one op record in one transaction. */
static int update_op(struct journal *j, uint64_t id, const char *plan, int state, struct journal_err *e)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(j->env, NULL, 0, &txn);
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
		op.plan = strdup(plan);
	}
	if (state) {
		op.state = (enum journal_op_state)state;
		op.ended = (uint64_t)time(NULL);
	}
	rc = put_op(txn, j, &op);
	journal_op_free(&op);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	return rc ? jr_lmdb_fail(e, rc, "updating an op") : 0;
}

int journal_op_set_plan(struct journal *j, uint64_t id, const char *plan, struct journal_err *e)
{
	return update_op(j, id, plan, 0, e);
}

int journal_op_finish(struct journal *j, uint64_t id, enum journal_op_state state, struct journal_err *e)
{
	return update_op(j, id, NULL, (int)state, e);
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
	int rc = mdb_txn_begin(j->env, NULL, 0, &txn);
	if (rc == 0) {
		rc = mdb_put(txn, j->steps, &key, &val, 0);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	free(rec);
	return rc ? jr_lmdb_fail(e, rc, "recording a step") : 0;
}


/* ---- reading ops, damaged ones included ---------------------------------------- */

/*
 * Decodes the record found under op id's key into op. If it does not
 * decode (or names another op), op is instead what could be salvaged of it,
 * with state CORRUPT and op->corrupt saying why; returns -EBADMSG then.
 */
static int read_op_record(const MDB_val *val, uint64_t id, struct journal_op *op)
{
	struct journal_err e;
	int r = journal_decode_op(val->mv_data, val->mv_size, op, &e);
	if (r == 0 && op->id != id) {
		r = jr_fail(&e, -EBADMSG, "the record names op %llu", (unsigned long long)op->id);
		journal_op_free(op);
	}
	if (r == 0)
		return 0;
	memset(op, 0, sizeof(*op));
	op->id = id;
	jr_salvage_op(val->mv_data, val->mv_size, op);
	op->state = JOURNAL_OP_CORRUPT;
	op->corrupt = jr_xasprintf("op %llu is corrupt: %s", (unsigned long long)id, e.msg);
	return r;
}

/* Marks a decoded op corrupt for a step record that does not decode. */
static void step_corrupt(struct journal_op *op, uint32_t index, const char *why)
{
	if (op->state == JOURNAL_OP_CORRUPT || op->state == JOURNAL_OP_SET_ASIDE)
		return;
	op->state = JOURNAL_OP_CORRUPT;
	free(op->corrupt);
	op->corrupt = jr_xasprintf("op %llu is corrupt: its step %u record: %s", (unsigned long long)op->id, index, why);
}

static unsigned char *dup_bytes(const MDB_val *v)
{
	unsigned char *p = malloc(v->mv_size ? v->mv_size : 1);
	if (!p)
		abort();
	memcpy(p, v->mv_data, v->mv_size);
	return p;
}

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

static void view_free(struct op_view *v)
{
	journal_op_free(&v->op);
	journal_steps_free(v->steps, v->nsteps);
	free(v->raw);
	for (size_t i = 0; i < v->nbad; i++)
		free(v->bad[i].raw);
	free(v->bad);
	memset(v, 0, sizeof(*v));
}

static int view_op(struct journal *j, MDB_txn *txn, uint64_t id, bool keep, struct op_view *v, struct journal_err *e)
{
	memset(v, 0, sizeof(*v));
	unsigned char k[12];
	key_op(k, id);
	MDB_val key = {8, k}, val;
	int rc = mdb_get(txn, j->ops, &key, &val);
	if (rc != 0)
		return rc == MDB_NOTFOUND ? jr_fail(e, -ENOENT, "journal: no op %llu", (unsigned long long)id)
					  : jr_lmdb_fail(e, rc, "reading an op");
	if (read_op_record(&val, id, &v->op) < 0 && keep) {
		v->raw = dup_bytes(&val);
		v->rawlen = val.mv_size;
	}
	MDB_cursor *cur;
	rc = mdb_cursor_open(txn, j->steps, &cur);
	if (rc != 0) {
		view_free(v);
		return jr_lmdb_fail(e, rc, "reading steps");
	}
	key_step(k, id, 0);
	key.mv_size = 12;
	key.mv_data = k;
	size_t cap = 0, badcap = 0;
	for (MDB_cursor_op c = MDB_SET_RANGE; (rc = mdb_cursor_get(cur, &key, &val, c)) == 0; c = MDB_NEXT) {
		if (key.mv_size != 12 || memcmp(key.mv_data, k, 8) != 0)
			break;
		uint32_t index = key_index(&key);
		struct journal_step s;
		struct journal_err se;
		int r = journal_decode_step(val.mv_data, val.mv_size, &s, &se);
		if (r == 0 && s.index != index) {
			r = jr_fail(&se, -EBADMSG, "the record names step %u", s.index);
			free(s.name);
			free(s.result);
		}
		if (r < 0) {
			step_corrupt(&v->op, index, se.msg);
			if (keep) {
				if (v->nbad == badcap) {
					badcap = badcap ? badcap * 2 : 4;
					v->bad = realloc(v->bad, badcap * sizeof(*v->bad));
					if (!v->bad)
						abort();
				}
				v->bad[v->nbad++] = (struct bad_step){index, dup_bytes(&val), val.mv_size};
			}
			continue;
		}
		if (v->nsteps == cap) {
			cap = cap ? cap * 2 : 16;
			v->steps = realloc(v->steps, cap * sizeof(*v->steps));
			if (!v->steps)
				abort();
		}
		v->steps[v->nsteps++] = s;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		view_free(v);
		return jr_lmdb_fail(e, rc, "reading steps");
	}
	return 0;
}

static int get_op(struct journal *j, uint64_t id, bool corrupt_ok, struct journal_op *op, struct journal_step **steps,
		  size_t *nsteps, struct journal_err *e)
{
	memset(op, 0, sizeof(*op));
	if (steps) {
		*steps = NULL;
		*nsteps = 0;
	}
	MDB_txn *txn;
	int rc = mdb_txn_begin(j->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return jr_lmdb_fail(e, rc, "begin");
	struct op_view v;
	int r = view_op(j, txn, id, false, &v, e);
	mdb_txn_abort(txn);
	if (r < 0)
		return r;
	if (v.op.state == JOURNAL_OP_CORRUPT && !corrupt_ok) {
		r = jr_fail(e, -EBADMSG, "journal: %s", v.op.corrupt);
		view_free(&v);
		return r;
	}
	*op = v.op;
	if (steps) {
		*steps = v.steps;
		*nsteps = v.nsteps;
	} else {
		journal_steps_free(v.steps, v.nsteps);
	}
	return 0;
}

int journal_op_get(struct journal *j, uint64_t id, struct journal_op *op, struct journal_step **steps,
		   size_t *nsteps, struct journal_err *e)
{
	return get_op(j, id, false, op, steps, nsteps, e);
}

int journal_op_inspect(struct journal *j, uint64_t id, struct journal_op *op, struct journal_step **steps,
		       size_t *nsteps, struct journal_err *e)
{
	return get_op(j, id, true, op, steps, nsteps, e);
}

static int list_step_damage(MDB_cursor *cur, struct journal_op *ops, size_t n);

int journal_op_list(struct journal *j, struct journal_op **ops, size_t *n, struct journal_err *e)
{
	*ops = NULL;
	*n = 0;
	MDB_txn *txn;
	int rc = mdb_txn_begin(j->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return jr_lmdb_fail(e, rc, "begin");
	MDB_cursor *cur;
	MDB_val key, val;
	size_t cap = 0;
	rc = mdb_cursor_open(txn, j->ops, &cur);
	if (rc == 0) {
		while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
			if (*n == cap) {
				cap = cap ? cap * 2 : 16;
				*ops = realloc(*ops, cap * sizeof(**ops));
				if (!*ops)
					abort();
			}
			read_op_record(&val, key_id(&key), &(*ops)[(*n)++]);
		}
		if (rc == MDB_NOTFOUND)
			rc = 0;
		mdb_cursor_close(cur);
	}
	/* A step record that does not decode makes its op corrupt. */
	if (rc == 0 && (rc = mdb_cursor_open(txn, j->steps, &cur)) == 0) {
		rc = list_step_damage(cur, *ops, *n);
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	if (rc != 0) {
		journal_ops_free(*ops, *n);
		*ops = NULL;
		*n = 0;
		return jr_lmdb_fail(e, rc, "listing ops");
	}
	return 0;
}

/* Marks the ops (sorted by id) whose step records do not decode; 0 or an LMDB error. */
static int list_step_damage(MDB_cursor *cur, struct journal_op *ops, size_t n)
{
	MDB_val key, val;
	size_t at = 0;
	int rc;
	while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
		if (key.mv_size != 12)
			continue;
		struct journal_step s;
		struct journal_err se;
		uint32_t index = key_index(&key);
		int r = journal_decode_step(val.mv_data, val.mv_size, &s, &se);
		if (r == 0) {
			bool other = s.index != index;
			free(s.name);
			free(s.result);
			if (!other)
				continue;
			jr_fail(&se, -EBADMSG, "the record names step %u", s.index);
		}
		/* steps come in op order, as the ops do */
		uint64_t id = key_id(&key);
		if (at >= n || ops[at].id > id)
			at = 0;
		while (at < n && ops[at].id < id)
			at++;
		if (at < n && ops[at].id == id)
			step_corrupt(&ops[at], index, se.msg);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
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
	int rc = mdb_txn_begin(j->env, NULL, 0, &txn);
	if (rc != 0)
		return jr_lmdb_fail(e, rc, "begin");
	struct op_view v;
	int r = view_op(j, txn, id, true, &v, e);
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
		view_free(&v);
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
	view_free(&v);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	return rc ? jr_lmdb_fail(e, rc, "setting an op aside") : 0;
}
