/*
 * journal_codec.c - the journal's records (see journal.h for their layout):
 * encoding, decoding with every check, and salvage of what can still be read
 * of a record that fails them. Pure: no LMDB, no files; the fuzzer's target.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "journal_internal.h"

#define REC_VERSION 1
#define REC_OP 'O'
#define REC_STEP 'S'

int jr_fail(struct journal_err *e, int code, const char *fmt, ...)
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

char *jr_xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s;
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

/* ---- CRC-32: zlib's (the polynomial every zip and PNG file uses) ---------- */

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
	uLong c = crc32(0L, Z_NULL, 0);
	while (n > 0) { /* zlib takes a uInt length */
		uInt k = n > 0x40000000u ? 0x40000000u : (uInt)n;
		c = crc32(c, p, k);
		p += k;
		n -= k;
	}
	return (uint32_t)c;
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

enum { T_ID = 1, T_KIND, T_SCOPE, T_STACK, T_PLAN, T_STATE, T_STARTED, T_ENDED, T_CORRUPT };
#define OP_FIELDS 9
enum { S_INDEX = 1, S_NAME, S_STATE, S_RESULT };

unsigned char *journal_encode_op(const struct journal_op *op, size_t *len)
{
	struct buf b = {0};
	tlv_u64(&b, T_ID, op->id);
	tlv_str(&b, T_KIND, op->kind);
	tlv_str(&b, T_SCOPE, op->scope);
	tlv_str(&b, T_STACK, op->stack);
	if (op->plan)
		tlv(&b, T_PLAN, op->plan, op->plan_len ? op->plan_len : strlen(op->plan));
	tlv_u64(&b, T_STATE, (uint64_t)op->state);
	tlv_u64(&b, T_STARTED, op->started);
	tlv_u64(&b, T_ENDED, op->ended);
	tlv_str(&b, T_CORRUPT, op->corrupt);
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
		return jr_fail(e, -EBADMSG, "record of %zu bytes is truncated or too large", len);
	if (memcmp(p, "PJR", 3) != 0)
		return jr_fail(e, -EBADMSG, "not a punix journal record");
	if (p[3] != REC_VERSION)
		return jr_fail(e, -EBADMSG, "record version %u is not one this punix reads (%u)", p[3], REC_VERSION);
	if (p[4] != type)
		return jr_fail(e, -EBADMSG, "record of type '%c' where '%c' was expected", p[4] >= 32 && p[4] < 127 ? p[4] : '?',
			    type);
	uint32_t n = get_u32(p + 5);
	if ((size_t)n != len - 13)
		return jr_fail(e, -EBADMSG, "record length %u does not match its %zu bytes", n, len);
	if (get_u32(p + len - 4) != crc32_of(p + 3, len - 7))
		return jr_fail(e, -EBADMSG, "record checksum mismatch (corrupted or edited)");
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
			return jr_fail(e, -EBADMSG, "malformed record fields");
		f[k].tag = p[i];
		f[k].n = get_u32(p + i + 1);
		if (f[k].n > len - i - 5)
			return jr_fail(e, -EBADMSG, "record field overruns the record");
		f[k].p = p + i + 5;
		for (size_t j = 0; j < k; j++)
			if (f[j].tag == f[k].tag)
				return jr_fail(e, -EBADMSG, "record field %u repeated", f[k].tag);
		i += 5 + f[k].n;
		k++;
	}
	*nf = k;
	return 0;
}

static int field_str(const struct field *f, char **out, struct journal_err *e)
{
	if (memchr(f->p, '\0', f->n))
		return jr_fail(e, -EBADMSG, "record text field %u holds a NUL byte", f->tag);
	*out = malloc((size_t)f->n + 1);
	if (!*out)
		abort();
	memcpy(*out, f->p, f->n);
	(*out)[f->n] = '\0';
	return 0;
}

/* Any bytes (a plan's), NUL-terminated for convenience. */
static int field_bytes(const struct field *f, char **out, size_t *len)
{
	*out = malloc((size_t)f->n + 1);
	if (!*out)
		abort();
	memcpy(*out, f->p, f->n);
	(*out)[f->n] = '\0';
	*len = f->n;
	return 0;
}

static int field_u64(const struct field *f, uint64_t *out, struct journal_err *e)
{
	if (f->n != 8)
		return jr_fail(e, -EBADMSG, "record number field %u has %u bytes", f->tag, f->n);
	*out = get_u64(f->p);
	return 0;
}

int journal_decode_op(const unsigned char *p, size_t len, struct journal_op *op, struct journal_err *e)
{
	memset(op, 0, sizeof(*op));
	const unsigned char *pl;
	size_t plen = 0, nf = 0;
	struct field f[OP_FIELDS];
	int r = unseal(p, len, REC_OP, &pl, &plen, e);
	if (r == 0)
		r = fields(pl, plen, f, OP_FIELDS, &nf, e);
	if (r < 0)
		return r;
	unsigned seen = 0;
	uint64_t state = 0;
	for (size_t i = 0; i < nf && r == 0; i++) {
		if (f[i].tag < 32)
			seen |= 1u << f[i].tag;
		switch (f[i].tag) {
		case T_ID: r = field_u64(&f[i], &op->id, e); break;
		case T_KIND: r = field_str(&f[i], &op->kind, e); break;
		case T_SCOPE: r = field_str(&f[i], &op->scope, e); break;
		case T_STACK: r = field_str(&f[i], &op->stack, e); break;
		case T_PLAN: r = field_bytes(&f[i], &op->plan, &op->plan_len); break;
		case T_STATE: r = field_u64(&f[i], &state, e); break;
		case T_STARTED: r = field_u64(&f[i], &op->started, e); break;
		case T_ENDED: r = field_u64(&f[i], &op->ended, e); break;
		case T_CORRUPT: r = field_str(&f[i], &op->corrupt, e); break;
		default: r = jr_fail(e, -EBADMSG, "unknown op record field %u", f[i].tag);
		}
	}
	/* CORRUPT is never stored; an op set aside may have lost its fields. */
	bool aside = state == JOURNAL_OP_SET_ASIDE;
	unsigned need = 1u << T_ID | 1u << T_STATE;
	if (!aside)
		need |= 1u << T_KIND | 1u << T_SCOPE | 1u << T_STACK | 1u << T_STARTED;
	if (r == 0 && (seen & need) != need)
		r = jr_fail(e, -EBADMSG, "op record lacks required fields");
	if (r == 0 && (state < JOURNAL_OP_RUNNING || state > JOURNAL_OP_FAILED) && !aside)
		r = jr_fail(e, -EBADMSG, "op record has an unknown state %llu", (unsigned long long)state);
	if (r == 0 && op->corrupt && !aside)
		r = jr_fail(e, -EBADMSG, "op record of a %s op carries a corruption note",
			 journal_op_state_name((enum journal_op_state)state));
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
		if (f[i].tag < 32)
			seen |= 1u << f[i].tag;
		switch (f[i].tag) {
		case S_INDEX: r = field_u64(&f[i], &index, e); break;
		case S_NAME: r = field_str(&f[i], &s->name, e); break;
		case S_STATE: r = field_u64(&f[i], &state, e); break;
		case S_RESULT: r = field_str(&f[i], &s->result, e); break;
		default: r = jr_fail(e, -EBADMSG, "unknown step record field %u", f[i].tag);
		}
	}
	unsigned need = 1u << S_INDEX | 1u << S_NAME | 1u << S_STATE;
	if (r == 0 && (seen & need) != need)
		r = jr_fail(e, -EBADMSG, "step record lacks required fields");
	if (r == 0 && (state < JOURNAL_STEP_INTENT || state > JOURNAL_STEP_UNDONE || index > 1000))
		r = jr_fail(e, -EBADMSG, "step record has an unknown state or index");
	s->index = (uint32_t)index;
	s->state = (enum journal_step_state)state;
	if (r < 0) {
		free(s->name);
		free(s->result);
		memset(s, 0, sizeof(*s));
	}
	return r;
}

/* ---- salvage: what can still be read of a record that fails its checks --------- */

/*
 * Printable UTF-8 (no NUL, no C0 control but, when ws, tab and newline, no
 * DEL, no overlong forms or surrogates): what a salvaged string must be to
 * be handed to a caller at all.
 */
static bool clean_text(const unsigned char *p, size_t n, bool ws)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		if (c < 0x80) {
			if ((c < 0x20 && !(ws && (c == '\t' || c == '\n'))) || c == 0x7f)
				return false;
			i++;
			continue;
		}
		size_t k;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i - 1 < k)
			return false;
		for (size_t m = 1; m <= k; m++) {
			if ((p[i + m] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + m] & 0x3f);
		}
		if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += k + 1;
	}
	return true;
}

static char *salvage_str(const unsigned char *p, size_t n, bool ws)
{
	if (!clean_text(p, n, ws))
		return NULL;
	char *s = malloc(n + 1);
	if (!s)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* See journal_internal.h. */
void jr_salvage_op(const unsigned char *p, size_t len, struct journal_op *op)
{
	if (len < 9 || len > REC_MAX)
		return;
	size_t end = len >= 13 ? len - 4 : len;
	uint32_t declared = get_u32(p + 5);
	if (declared <= end - 9)
		end = 9 + (size_t)declared;
	for (size_t i = 9; end - i >= 5;) {
		unsigned char tag = p[i];
		uint32_t n = get_u32(p + i + 1);
		if (n > end - i - 5)
			break;
		const unsigned char *v = p + i + 5;
		char **slot = tag == T_KIND ? &op->kind : tag == T_SCOPE ? &op->scope : tag == T_STACK ? &op->stack
			      : NULL;
		if (slot && !*slot)
			*slot = salvage_str(v, n, false);
		else if (tag == T_PLAN && !op->plan)
			field_bytes(&(struct field){tag, v, n}, &op->plan, &op->plan_len);
		else if (tag == T_STARTED && n == 8 && !op->started)
			op->started = get_u64(v);
		i += 5 + (size_t)n;
	}
}

void journal_op_free(struct journal_op *op)
{
	free(op->kind);
	free(op->scope);
	free(op->stack);
	free(op->plan);
	free(op->corrupt);
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
	case JOURNAL_OP_CORRUPT: return "corrupt";
	case JOURNAL_OP_SET_ASIDE: return "set-aside";
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
