/*
 * journal.c - the LMDB journal (see journal.h).
 *
 * Three named databases in one environment:
 *   ops    u64 id (big-endian, so keys sort by id)      -> op record
 *   steps  u64 id, u32 step index (big-endian)          -> step record
 *   meta   "next_id" -> u64, "format" -> u32
 *
 * LMDB serialises writers across processes and makes each committed
 * transaction durable before mdb_txn_commit returns (we never pass
 * MDB_NOSYNC or MDB_NOMETASYNC).
 */
#include "journal.h"

#include <errno.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Room for a great many ops; LMDB reserves address space, not disk. */
#define JOURNAL_MAP_SIZE ((size_t)1 << 30)
#define JOURNAL_FORMAT 1
#define REC_VERSION 1
#define REC_OP 'O'
#define REC_STEP 'S'
/* A record larger than this is not one of ours. */
#define REC_MAX ((size_t)16 << 20)

struct journal {
	MDB_env *env;
	MDB_dbi ops, steps, meta;
	char *dir;
};

static int fail(struct journal_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct journal_err *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
		e->code = code;
	}
	return code;
}

static int lmdb_fail(struct journal_err *e, int rc, const char *what)
{
	return fail(e, rc > 0 ? -EIO : rc, "journal: %s: %s", what, mdb_strerror(rc));
}

/* ---- CRC-32 (the zlib polynomial) ----------------------------------------- */

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
	static uint32_t table[256];
	if (!table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	}
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++)
		c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

/* ---- encoding ---------------------------------------------------------------- */

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		while (cap < b->len + n)
			cap *= 2;
		unsigned char *q = realloc(b->p, cap);
		if (!q)
			abort();
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_u32(struct buf *b, uint32_t v)
{
	unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 24)};
	put(b, x, 4);
}

static void put_u64(struct buf *b, uint64_t v)
{
	put_u32(b, (uint32_t)v);
	put_u32(b, (uint32_t)(v >> 32));
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void tlv(struct buf *b, unsigned char tag, const void *p, size_t n)
{
	put(b, &tag, 1);
	put_u32(b, (uint32_t)n);
	put(b, p, n);
}

static void tlv_str(struct buf *b, unsigned char tag, const char *s)
{
	if (s)
		tlv(b, tag, s, strlen(s));
}

static void tlv_u64(struct buf *b, unsigned char tag, uint64_t v)
{
	struct buf t = {0};
	put_u64(&t, v);
	tlv(b, tag, t.p, t.len);
	free(t.p);
}

static unsigned char *seal(unsigned char type, struct buf *payload, size_t *len)
{
	struct buf r = {0};
	put(&r, "PJR", 3);
	unsigned char hdr[2] = {REC_VERSION, type};
	put(&r, hdr, 2);
	put_u32(&r, (uint32_t)payload->len);
	put(&r, payload->p, payload->len);
	put_u32(&r, crc32_of(r.p + 3, r.len - 3));
	free(payload->p);
	*len = r.len;
	return r.p;
}

enum { T_ID = 1, T_KIND, T_SCOPE, T_STACK, T_PLAN, T_STATE, T_STARTED, T_ENDED };
enum { S_INDEX = 1, S_NAME, S_STATE, S_RESULT };

unsigned char *journal_encode_op(const struct journal_op *op, size_t *len)
{
	struct buf b = {0};
	tlv_u64(&b, T_ID, op->id);
	tlv_str(&b, T_KIND, op->kind);
	tlv_str(&b, T_SCOPE, op->scope);
	tlv_str(&b, T_STACK, op->stack);
	tlv_str(&b, T_PLAN, op->plan);
	tlv_u64(&b, T_STATE, (uint64_t)op->state);
	tlv_u64(&b, T_STARTED, op->started);
	tlv_u64(&b, T_ENDED, op->ended);
	return seal(REC_OP, &b, len);
}

unsigned char *journal_encode_step(const struct journal_step *s, size_t *len)
{
	struct buf b = {0};
	tlv_u64(&b, S_INDEX, s->index);
	tlv_str(&b, S_NAME, s->name);
	tlv_u64(&b, S_STATE, (uint64_t)s->state);
	tlv_str(&b, S_RESULT, s->result);
	return seal(REC_STEP, &b, len);
}

/* Checks the envelope; on success *payload and *plen frame the fields. */
static int unseal(const unsigned char *p, size_t len, unsigned char type, const unsigned char **payload,
		  size_t *plen, struct journal_err *e)
{
	if (len < 13 || len > REC_MAX)
		return fail(e, -EBADMSG, "record of %zu bytes is truncated or too large", len);
	if (memcmp(p, "PJR", 3) != 0)
		return fail(e, -EBADMSG, "not a punix journal record");
	if (p[3] != REC_VERSION)
		return fail(e, -EBADMSG, "record version %u is not one this punix reads (%u)", p[3], REC_VERSION);
	if (p[4] != type)
		return fail(e, -EBADMSG, "record of type '%c' where '%c' was expected", p[4] >= 32 && p[4] < 127 ? p[4] : '?',
			    type);
	uint32_t n = get_u32(p + 5);
	if ((size_t)n != len - 13)
		return fail(e, -EBADMSG, "record length %u does not match its %zu bytes", n, len);
	if (get_u32(p + len - 4) != crc32_of(p + 3, len - 7))
		return fail(e, -EBADMSG, "record checksum mismatch (corrupted or edited)");
	*payload = p + 9;
	*plen = n;
	return 0;
}

struct field {
	unsigned char tag;
	const unsigned char *p;
	uint32_t n;
};

/* Splits a payload into at most max fields; every tag at most once. */
static int fields(const unsigned char *p, size_t len, struct field *f, size_t max, size_t *nf, struct journal_err *e)
{
	size_t i = 0, k = 0;
	while (i < len) {
		if (len - i < 5 || k == max)
			return fail(e, -EBADMSG, "malformed record fields");
		f[k].tag = p[i];
		f[k].n = get_u32(p + i + 1);
		if (f[k].n > len - i - 5)
			return fail(e, -EBADMSG, "record field overruns the record");
		f[k].p = p + i + 5;
		for (size_t j = 0; j < k; j++)
			if (f[j].tag == f[k].tag)
				return fail(e, -EBADMSG, "record field %u repeated", f[k].tag);
		i += 5 + f[k].n;
		k++;
	}
	*nf = k;
	return 0;
}

static int field_str(const struct field *f, char **out, struct journal_err *e)
{
	if (memchr(f->p, '\0', f->n))
		return fail(e, -EBADMSG, "record text field %u holds a NUL byte", f->tag);
	*out = malloc((size_t)f->n + 1);
	if (!*out)
		abort();
	memcpy(*out, f->p, f->n);
	(*out)[f->n] = '\0';
	return 0;
}

static int field_u64(const struct field *f, uint64_t *out, struct journal_err *e)
{
	if (f->n != 8)
		return fail(e, -EBADMSG, "record number field %u has %u bytes", f->tag, f->n);
	*out = get_u64(f->p);
	return 0;
}

int journal_decode_op(const unsigned char *p, size_t len, struct journal_op *op, struct journal_err *e)
{
	memset(op, 0, sizeof(*op));
	const unsigned char *pl;
	size_t plen = 0, nf = 0;
	struct field f[8];
	int r = unseal(p, len, REC_OP, &pl, &plen, e);
	if (r == 0)
		r = fields(pl, plen, f, 8, &nf, e);
	if (r < 0)
		return r;
	unsigned seen = 0;
	uint64_t state = 0;
	for (size_t i = 0; i < nf && r == 0; i++) {
		seen |= f[i].tag < 32 ? 1u << f[i].tag : 0; /* a larger tag is unknown: refused below */
		switch (f[i].tag) {
		case T_ID: r = field_u64(&f[i], &op->id, e); break;
		case T_KIND: r = field_str(&f[i], &op->kind, e); break;
		case T_SCOPE: r = field_str(&f[i], &op->scope, e); break;
		case T_STACK: r = field_str(&f[i], &op->stack, e); break;
		case T_PLAN: r = field_str(&f[i], &op->plan, e); break;
		case T_STATE: r = field_u64(&f[i], &state, e); break;
		case T_STARTED: r = field_u64(&f[i], &op->started, e); break;
		case T_ENDED: r = field_u64(&f[i], &op->ended, e); break;
		default: r = fail(e, -EBADMSG, "unknown op record field %u", f[i].tag);
		}
	}
	unsigned need = 1u << T_ID | 1u << T_KIND | 1u << T_SCOPE | 1u << T_STACK | 1u << T_STATE | 1u << T_STARTED;
	if (r == 0 && (seen & need) != need)
		r = fail(e, -EBADMSG, "op record lacks required fields");
	if (r == 0 && (state < JOURNAL_OP_RUNNING || state > JOURNAL_OP_FAILED))
		r = fail(e, -EBADMSG, "op record has an unknown state %llu", (unsigned long long)state);
	op->state = (enum journal_op_state)state;
	if (r < 0)
		journal_op_free(op);
	return r;
}

int journal_decode_step(const unsigned char *p, size_t len, struct journal_step *s, struct journal_err *e)
{
	memset(s, 0, sizeof(*s));
	const unsigned char *pl;
	size_t plen = 0, nf = 0;
	struct field f[4];
	int r = unseal(p, len, REC_STEP, &pl, &plen, e);
	if (r == 0)
		r = fields(pl, plen, f, 4, &nf, e);
	if (r < 0)
		return r;
	unsigned seen = 0;
	uint64_t index = 0, state = 0;
	for (size_t i = 0; i < nf && r == 0; i++) {
		seen |= f[i].tag < 32 ? 1u << f[i].tag : 0; /* a larger tag is unknown: refused below */
		switch (f[i].tag) {
		case S_INDEX: r = field_u64(&f[i], &index, e); break;
		case S_NAME: r = field_str(&f[i], &s->name, e); break;
		case S_STATE: r = field_u64(&f[i], &state, e); break;
		case S_RESULT: r = field_str(&f[i], &s->result, e); break;
		default: r = fail(e, -EBADMSG, "unknown step record field %u", f[i].tag);
		}
	}
	unsigned need = 1u << S_INDEX | 1u << S_NAME | 1u << S_STATE;
	if (r == 0 && (seen & need) != need)
		r = fail(e, -EBADMSG, "step record lacks required fields");
	if (r == 0 && (state < JOURNAL_STEP_INTENT || state > JOURNAL_STEP_UNDONE || index > 1000))
		r = fail(e, -EBADMSG, "step record has an unknown state or index");
	s->index = (uint32_t)index;
	s->state = (enum journal_step_state)state;
	if (r < 0) {
		free(s->name);
		free(s->result);
		memset(s, 0, sizeof(*s));
	}
	return r;
}

void journal_op_free(struct journal_op *op)
{
	free(op->kind);
	free(op->scope);
	free(op->stack);
	free(op->plan);
	memset(op, 0, sizeof(*op));
}

void journal_ops_free(struct journal_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++)
		journal_op_free(&ops[i]);
	free(ops);
}

void journal_steps_free(struct journal_step *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].name);
		free(s[i].result);
	}
	free(s);
}

const char *journal_op_state_name(enum journal_op_state s)
{
	switch (s) {
	case JOURNAL_OP_RUNNING: return "running";
	case JOURNAL_OP_DONE: return "done";
	case JOURNAL_OP_ABORTED: return "aborted";
	case JOURNAL_OP_FAILED: return "failed";
	}
	return "?";
}

const char *journal_step_state_name(enum journal_step_state s)
{
	switch (s) {
	case JOURNAL_STEP_INTENT: return "intent";
	case JOURNAL_STEP_DONE: return "done";
	case JOURNAL_STEP_UNDONE: return "undone";
	}
	return "?";
}

/* ---- the environment --------------------------------------------------------- */

static void key_op(unsigned char k[8], uint64_t id)
{
	for (int i = 0; i < 8; i++)
		k[i] = (unsigned char)(id >> (56 - 8 * i));
}

static void key_step(unsigned char k[12], uint64_t id, uint32_t index)
{
	key_op(k, id);
	for (int i = 0; i < 4; i++)
		k[8 + i] = (unsigned char)(index >> (24 - 8 * i));
}

int journal_open(struct journal **jp, const char *dir, struct journal_err *e)
{
	*jp = NULL;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return fail(e, -errno, "journal: cannot create %s: %s", dir, strerror(errno));
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
		int r = fail(e, rc > 0 ? -EIO : rc, "journal: cannot open %s: %s", dir, mdb_strerror(rc));
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
				return fail(e, -EBADMSG, "journal: %s is not a punix journal", dir);
			}
			memcpy(&fmt, v.mv_data, sizeof(fmt));
			if (fmt != JOURNAL_FORMAT) {
				mdb_txn_abort(txn);
				journal_close(j);
				return fail(e, -EBADMSG, "journal: %s has format %u; this punix reads format %u", dir, fmt,
					    JOURNAL_FORMAT);
			}
		}
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (rc != 0) {
		int r = lmdb_fail(e, rc, dir);
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
		return lmdb_fail(e, rc, "begin");
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
	return rc ? lmdb_fail(e, rc, "recording an op") : 0;
}

/* Read-modify-write of one op record in one transaction. */
static int update_op(struct journal *j, uint64_t id, const char *plan, int state, struct journal_err *e)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(j->env, NULL, 0, &txn);
	if (rc != 0)
		return lmdb_fail(e, rc, "begin");
	unsigned char k[8];
	key_op(k, id);
	MDB_val key = {8, k}, val;
	rc = mdb_get(txn, j->ops, &key, &val);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc == MDB_NOTFOUND ? fail(e, -ENOENT, "journal: no op %llu", (unsigned long long)id)
					  : lmdb_fail(e, rc, "reading an op");
	}
	struct journal_op op;
	int r = journal_decode_op(val.mv_data, val.mv_size, &op, e);
	if (r < 0) {
		mdb_txn_abort(txn);
		char why[400];
		snprintf(why, sizeof(why), "%.399s", e->msg);
		return fail(e, r, "journal: op %llu: %s", (unsigned long long)id, why);
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
	return rc ? lmdb_fail(e, rc, "updating an op") : 0;
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
	return rc ? lmdb_fail(e, rc, "recording a step") : 0;
}

int journal_op_get(struct journal *j, uint64_t id, struct journal_op *op, struct journal_step **steps,
		   size_t *nsteps, struct journal_err *e)
{
	memset(op, 0, sizeof(*op));
	MDB_txn *txn;
	int rc = mdb_txn_begin(j->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return lmdb_fail(e, rc, "begin");
	unsigned char k[12];
	key_op(k, id);
	MDB_val key = {8, k}, val;
	rc = mdb_get(txn, j->ops, &key, &val);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc == MDB_NOTFOUND ? fail(e, -ENOENT, "journal: no op %llu", (unsigned long long)id)
					  : lmdb_fail(e, rc, "reading an op");
	}
	int r = journal_decode_op(val.mv_data, val.mv_size, op, e);
	if (r == 0 && op->id != id)
		r = fail(e, -EBADMSG, "record names op %llu", (unsigned long long)op->id);
	if (r < 0) {
		mdb_txn_abort(txn);
		char why[400];
		snprintf(why, sizeof(why), "%.399s", e->msg);
		journal_op_free(op);
		return fail(e, r, "journal: op %llu is corrupt: %s", (unsigned long long)id, why);
	}
	if (steps) {
		*steps = NULL;
		*nsteps = 0;
		size_t cap = 0;
		MDB_cursor *cur;
		rc = mdb_cursor_open(txn, j->steps, &cur);
		key_step(k, id, 0);
		key.mv_size = 12;
		key.mv_data = k;
		int op_c = MDB_SET_RANGE;
		while (rc == 0 && (rc = mdb_cursor_get(cur, &key, &val, op_c)) == 0) {
			op_c = MDB_NEXT;
			if (key.mv_size != 12 || memcmp(key.mv_data, k, 8) != 0)
				break;
			struct journal_step s;
			r = journal_decode_step(val.mv_data, val.mv_size, &s, e);
			if (r < 0) {
				char why[400];
				snprintf(why, sizeof(why), "%.399s", e->msg);
				fail(e, r, "journal: a step of op %llu is corrupt: %s", (unsigned long long)id, why);
				break;
			}
			if (*nsteps == cap) {
				cap = cap ? cap * 2 : 16;
				*steps = realloc(*steps, cap * sizeof(**steps));
			}
			(*steps)[(*nsteps)++] = s;
		}
		if (rc == MDB_NOTFOUND)
			rc = 0;
		mdb_cursor_close(cur);
		if (r < 0 || rc != 0) {
			journal_steps_free(*steps, *nsteps);
			*steps = NULL;
			*nsteps = 0;
			journal_op_free(op);
			mdb_txn_abort(txn);
			return r < 0 ? r : lmdb_fail(e, rc, "reading steps");
		}
	}
	mdb_txn_abort(txn);
	return 0;
}

int journal_op_list(struct journal *j, struct journal_op **ops, size_t *n, struct journal_err *e)
{
	*ops = NULL;
	*n = 0;
	MDB_txn *txn;
	int rc = mdb_txn_begin(j->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return lmdb_fail(e, rc, "begin");
	MDB_cursor *cur;
	rc = mdb_cursor_open(txn, j->ops, &cur);
	MDB_val key, val;
	size_t cap = 0;
	int r = 0;
	while (rc == 0 && (rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
		struct journal_op op;
		uint64_t kid = 0;
		if (key.mv_size == 8)
			for (int i = 0; i < 8; i++)
				kid = kid << 8 | ((unsigned char *)key.mv_data)[i];
		r = journal_decode_op(val.mv_data, val.mv_size, &op, e);
		if (r < 0) {
			char why[400];
			snprintf(why, sizeof(why), "%.399s", e->msg);
			fail(e, r, "journal: op %llu is corrupt: %s", (unsigned long long)kid, why);
			break;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*ops = realloc(*ops, cap * sizeof(**ops));
		}
		(*ops)[(*n)++] = op;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (r < 0 || rc != 0) {
		journal_ops_free(*ops, *n);
		*ops = NULL;
		*n = 0;
		return r < 0 ? r : lmdb_fail(e, rc, "listing ops");
	}
	return 0;
}
