/*
 * journal_read.c - reading ops and their steps, damaged ones included: a
 * record that does not decode is reported (state CORRUPT, with why and what
 * could be salvaged of it), never trusted, never fatal to a listing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal_internal.h"

/* See journal_internal.h. */
int jr_read_op_record(const MDB_val *val, uint64_t id, struct journal_op *op)
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
	op->corrupt =
	    jr_xasprintf("op %llu is corrupt: its step %u record: %s", (unsigned long long)op->id, index, why);
}

static unsigned char *dup_bytes(const MDB_val *v)
{
	unsigned char *p = malloc(v->mv_size ? v->mv_size : 1);
	if (!p)
		abort();
	memcpy(p, v->mv_data, v->mv_size);
	return p;
}

void jr_view_free(struct op_view *v)
{
	journal_op_free(&v->op);
	journal_steps_free(v->steps, v->nsteps);
	free(v->raw);
	for (size_t i = 0; i < v->nbad; i++)
		free(v->bad[i].raw);
	free(v->bad);
	memset(v, 0, sizeof(*v));
}

int jr_view_op(struct journal *j, MDB_txn *txn, uint64_t id, bool keep, struct op_view *v, struct journal_err *e)
{
	memset(v, 0, sizeof(*v));
	unsigned char k[12];
	key_op(k, id);
	MDB_val key = {8, k}, val;
	int rc = mdb_get(txn, j->ops, &key, &val);
	if (rc != 0)
		return rc == MDB_NOTFOUND ? jr_fail(e, -ENOENT, "journal: no op %llu", (unsigned long long)id)
					  : jr_lmdb_fail(e, rc, "reading an op");
	if (jr_read_op_record(&val, id, &v->op) < 0 && keep) {
		v->raw = dup_bytes(&val);
		v->rawlen = val.mv_size;
	}
	MDB_cursor *cur;
	rc = mdb_cursor_open(txn, j->steps, &cur);
	if (rc != 0) {
		jr_view_free(v);
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
		jr_view_free(v);
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
	int rc = jr_rbegin(j, &txn);
	if (rc != 0)
		return jr_lmdb_fail(e, rc, "begin");
	struct op_view v;
	int r = jr_view_op(j, txn, id, false, &v, e);
	jr_rend(j, txn);
	if (r < 0)
		return r;
	if (v.op.state == JOURNAL_OP_CORRUPT && !corrupt_ok) {
		r = jr_fail(e, -EBADMSG, "journal: %s", v.op.corrupt);
		jr_view_free(&v);
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
	int rc = jr_rbegin(j, &txn);
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
			jr_read_op_record(&val, key_id(&key), &(*ops)[(*n)++]);
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
	jr_rend(j, txn);
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

/* Marks op (id) corrupt for an entry of the index of running ops that names no op record. */
static void index_corrupt(struct journal_op *op, uint64_t id, const MDB_val *key)
{
	memset(op, 0, sizeof(*op));
	op->id = id;
	op->state = JOURNAL_OP_CORRUPT;
	if (key->mv_size != 8)
		op->corrupt = jr_xasprintf("op %llu is corrupt: its key in the index of running ops has %zu bytes",
					   (unsigned long long)id, key->mv_size);
	else
		op->corrupt = jr_xasprintf("op %llu is corrupt: it is in the index of running ops but has no record",
					   (unsigned long long)id);
}

/*
 * Reads only the index and, for each op in it, its record and its steps: a
 * few B-tree lookups per running op, however many finished ops the journal
 * holds.
 */
int journal_running_list(struct journal *j, struct journal_op **ops, size_t *n, struct journal_err *e)
{
	*ops = NULL;
	*n = 0;
	MDB_txn *txn;
	int rc = jr_rbegin(j, &txn);
	if (rc != 0)
		return jr_lmdb_fail(e, rc, "begin");
	MDB_cursor *cur = NULL;
	MDB_val key, val;
	size_t cap = 0;
	int r = 0;
	if ((rc = mdb_cursor_open(txn, j->running, &cur)) != 0)
		cur = NULL;
	while (rc == 0 && r == 0 && (rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*ops = realloc(*ops, cap * sizeof(**ops));
			if (!*ops)
				abort();
		}
		struct journal_op *op = &(*ops)[*n];
		uint64_t id = key_id(&key);
		struct op_view v;
		if (key.mv_size != 8) {
			index_corrupt(op, id, &key);
		} else if ((r = jr_view_op(j, txn, id, false, &v, e)) == -ENOENT) {
			index_corrupt(op, id, &key);
			r = 0;
		} else if (r == 0) {
			*op = v.op;
			journal_steps_free(v.steps, v.nsteps);
		} else {
			break;
		}
		(*n)++;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (cur)
		mdb_cursor_close(cur);
	jr_rend(j, txn);
	if (rc != 0 || r < 0) {
		journal_ops_free(*ops, *n);
		*ops = NULL;
		*n = 0;
		return r < 0 ? r : jr_lmdb_fail(e, rc, "listing running ops");
	}
	return 0;
}

/* See journal_internal.h. */
int jr_steps_damaged(MDB_cursor *cur, uint64_t id, bool *bad)
{
	unsigned char k[12];
	key_step(k, id, 0);
	MDB_val key = {12, k}, val;
	int rc;
	*bad = false;
	for (MDB_cursor_op c = MDB_SET_RANGE; (rc = mdb_cursor_get(cur, &key, &val, c)) == 0; c = MDB_NEXT) {
		if (key.mv_size != 12 || memcmp(key.mv_data, k, 8) != 0)
			break;
		struct journal_step s;
		if (journal_decode_step(val.mv_data, val.mv_size, &s, NULL) < 0) {
			*bad = true;
			break;
		}
		*bad = s.index != key_index(&key);
		free(s.name);
		free(s.result);
		if (*bad)
			break;
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}
