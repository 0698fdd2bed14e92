/*
 * journal.c - the LMDB journal (see journal.h).
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
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s;
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
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
	tlv_str(&b, T_PLAN, op->plan);
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
		case T_PLAN: r = field_str(&f[i], &op->plan, e); break;
		case T_STATE: r = field_u64(&f[i], &state, e); break;
		case T_STARTED: r = field_u64(&f[i], &op->started, e); break;
		case T_ENDED: r = field_u64(&f[i], &op->ended, e); break;
		case T_CORRUPT: r = field_str(&f[i], &op->corrupt, e); break;
		default: r = fail(e, -EBADMSG, "unknown op record field %u", f[i].tag);
		}
	}
	/* CORRUPT is never stored; an op set aside may have lost its fields. */
	bool aside = state == JOURNAL_OP_SET_ASIDE;
	unsigned need = 1u << T_ID | 1u << T_STATE;
	if (!aside)
		need |= 1u << T_KIND | 1u << T_SCOPE | 1u << T_STACK | 1u << T_STARTED;
	if (r == 0 && (seen & need) != need)
		r = fail(e, -EBADMSG, "op record lacks required fields");
	if (r == 0 && (state < JOURNAL_OP_RUNNING || state > JOURNAL_OP_FAILED) && !aside)
		r = fail(e, -EBADMSG, "op record has an unknown state %llu", (unsigned long long)state);
	if (r == 0 && op->corrupt && !aside)
		r = fail(e, -EBADMSG, "op record of a %s op carries a corruption note",
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

/*
 * Fills kind, scope, stack, plan and started from the fields of a damaged
 * op record whose framing still holds together, without trusting its
 * envelope or checksum: every string taken is clean text, the rest NULL.
 */
static void salvage_op(const unsigned char *p, size_t len, struct journal_op *op)
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
			      : tag == T_PLAN ? &op->plan : NULL;
		if (slot && !*slot)
			*slot = salvage_str(v, n, tag == T_PLAN);
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

/* The op id of an ops or steps key (its first 8 bytes); 0 if it is shorter. */
static uint64_t key_id(const MDB_val *k)
{
	uint64_t id = 0;
	if (k->mv_size >= 8)
		for (int i = 0; i < 8; i++)
			id = id << 8 | ((const unsigned char *)k->mv_data)[i];
	return id;
}

static uint32_t key_index(const MDB_val *k)
{
	uint32_t index = 0;
	for (int i = 8; i < 12; i++)
		index = index << 8 | ((const unsigned char *)k->mv_data)[i];
	return index;
}

/* ---- the data file, looked at before LMDB maps it --------------------------------
 *
 * LMDB maps data.mdb whole and trusts its meta pages: pages past the end of
 * a truncated file are touched as memory, and the process dies of SIGBUS.
 * So the two meta pages are read first, with plain reads, and the file's
 * size compared with what the current one (the larger txnid) says is used.
 *
 * Their layout (LMDB 0.9 mdb.c: MDB_page, MDB_meta, MDB_db; pgno_t and
 * txnid_t are size_t): page 0 at offset 0, page 1 at offset page size;
 * each a page header, then the meta. The page size is dbs[0].pad.
 *
 *   header: pgno(8) pad(2) flags(2, P_META = 0x08) lower(2) upper(2)
 *   meta:   magic(4, 0xBEEFC0DE) version(4) address(8) mapsize(8)
 *           dbs[2] { pad(4) flags(2) depth(2) branch leaf overflow entries root (8 each) }
 *           last_pg(8) txnid(8)
 */
struct lmdb_page_hdr {
	size_t pgno;
	uint16_t pad, flags, lower, upper;
};

struct lmdb_db {
	uint32_t pad;
	uint16_t flags, depth;
	size_t branch_pages, leaf_pages, overflow_pages, entries, root;
};

struct lmdb_meta {
	uint32_t magic, version;
	void *address;
	size_t mapsize;
	struct lmdb_db dbs[2];
	size_t last_pg;
	size_t txnid;
};

#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_P_META 0x08
#define LMDB_PAGE_MIN 512
#define LMDB_PAGE_MAX 65536

enum meta_read { META_OK, META_SHORT, META_BAD };

/* Reads the meta page at off: META_OK, META_SHORT (the file ends first), META_BAD, or -errno. */
static int read_meta(int fd, off_t off, struct lmdb_meta *m)
{
	unsigned char b[sizeof(struct lmdb_page_hdr) + sizeof(struct lmdb_meta)];
	size_t got = 0;
	while (got < sizeof(b)) {
		ssize_t n = pread(fd, b + got, sizeof(b) - got, off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return META_SHORT;
		got += (size_t)n;
	}
	struct lmdb_page_hdr h;
	memcpy(&h, b, sizeof(h));
	memcpy(m, b + sizeof(h), sizeof(*m));
	return (h.flags & LMDB_P_META) && m->magic == LMDB_MAGIC ? META_OK : META_BAD;
}

static int truncated(struct journal_err *e, const char *path, long long size, const char *why)
{
	return fail(e, -EBADMSG,
		    "journal: %s is truncated: it holds %lld bytes, %s; it cannot be read safely (restore it from a "
		    "backup, or move it away to start a new journal)",
		    path, size, why);
}

/*
 * 0 if path is missing (a new journal) or looks whole, else an error: empty,
 * truncated, or not an LMDB file at all.
 */
static int check_data(const char *path, struct journal_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : fail(e, -errno, "journal: cannot read %s: %s", path, strerror(errno));
	struct stat st;
	struct lmdb_meta m[2];
	int r = 0, k;
	char why[160];
	if (fstat(fd, &st) < 0) {
		r = fail(e, -errno, "journal: cannot read %s: %s", path, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		r = fail(e, -EINVAL, "journal: %s is not a regular file", path);
	} else if (st.st_size == 0) {
		r = fail(e, -ENODATA,
			 "journal: %s is empty: the journal was lost or emptied; punix will not start a new journal "
			 "over it, which would forget any op in flight (move the file away to start a new journal)",
			 path);
	} else if ((k = read_meta(fd, 0, &m[0])) < 0) {
		r = fail(e, k, "journal: cannot read %s: %s", path, strerror(-k));
	} else if (k == META_SHORT) {
		r = truncated(e, path, (long long)st.st_size, "less than its first meta page");
	} else if (k == META_BAD) {
		r = fail(e, -EBADMSG, "journal: %s is not an LMDB database (its first page is not a meta page)", path);
	} else {
		size_t psize = m[0].dbs[0].pad;
		const struct lmdb_meta *cur = &m[0];
		if (psize < LMDB_PAGE_MIN || psize > LMDB_PAGE_MAX || (psize & (psize - 1)))
			r = fail(e, -EBADMSG, "journal: %s has a damaged meta page (page size %zu)", path, psize);
		else if ((k = read_meta(fd, (off_t)psize, &m[1])) < 0)
			r = fail(e, k, "journal: cannot read %s: %s", path, strerror(-k));
		else if (k == META_SHORT)
			r = truncated(e, path, (long long)st.st_size, "less than its two meta pages");
		else if (k == META_BAD)
			r = fail(e, -EBADMSG, "journal: %s has a damaged meta page (page 1)", path);
		else if (m[1].txnid > m[0].txnid)
			cur = &m[1];
		/*
		 * The size is taken after the metas are read: a writer writes its
		 * pages before the meta that names them, so a meta read first is
		 * never newer than the file it is compared with.
		 */
		if (r == 0 && fstat(fd, &st) < 0)
			r = fail(e, -errno, "journal: cannot read %s: %s", path, strerror(errno));
		if (r == 0 && cur->last_pg >= (size_t)INT64_MAX / psize) {
			r = fail(e, -EBADMSG, "journal: %s has a damaged meta page (last page %zu)", path, cur->last_pg);
		} else if (r == 0 && (unsigned long long)st.st_size < (unsigned long long)(cur->last_pg + 1) * psize) {
			snprintf(why, sizeof(why), "but its meta page says it extends to %llu bytes (%zu pages of %zu)",
				 (unsigned long long)(cur->last_pg + 1) * psize, cur->last_pg + 1, psize);
			r = truncated(e, path, (long long)st.st_size, why);
		}
	}
	close(fd);
	return r;
}

/*
 * LMDB keeps byte 0 of lock.mdb write-locked while it creates a data.mdb
 * and writes its meta pages: waits (a bounded while) for any such creation
 * by another process to end, so that it is not mistaken for damage. An
 * open file description lock: closing it releases no lock LMDB holds in
 * this process.
 */
static void wait_for_creation(const char *dir)
{
	char *lp = xasprintf("%s/lock.mdb", dir);
	int fd = open(lp, O_RDONLY | O_CLOEXEC);
	free(lp);
	if (fd < 0)
		return;
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	for (int i = 0; i < 300; i++) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			break;
		if (errno != EAGAIN && errno != EACCES && errno != EINTR)
			break;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	close(fd);
}

/* mkdir -p: the journal's directory mode 0700, missing parents 0755. */
static int make_dirs(const char *dir, struct journal_err *e)
{
	if (!dir[0])
		return fail(e, -EINVAL, "journal: no directory given");
	char *p = strdup(dir);
	if (!p)
		abort();
	int r = 0;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, c ? 0755 : 0700) < 0 && errno != EEXIST) {
			r = fail(e, -errno, "journal: cannot create %s: %s", p, strerror(errno));
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return r;
}

int journal_open(struct journal **jp, const char *dir, struct journal_err *e)
{
	*jp = NULL;
	int r = make_dirs(dir, e);
	if (r < 0)
		return r;
	char *data = xasprintf("%s/data.mdb", dir);
	r = check_data(data, e);
	if (r < 0) {
		wait_for_creation(dir);
		r = check_data(data, e);
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
		r = fail(e, rc > 0 ? -EIO : rc, "journal: cannot open %s: %s", dir, mdb_strerror(rc));
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
		r = lmdb_fail(e, rc, dir);
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
		return fail(e, r, "journal: op %llu is corrupt: %s", (unsigned long long)id, why);
	}
	if (op.state == JOURNAL_OP_SET_ASIDE) {
		mdb_txn_abort(txn);
		journal_op_free(&op);
		return fail(e, -EALREADY, "journal: op %llu was set aside; it is no longer recorded",
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
		r = fail(&e, -EBADMSG, "the record names op %llu", (unsigned long long)op->id);
		journal_op_free(op);
	}
	if (r == 0)
		return 0;
	memset(op, 0, sizeof(*op));
	op->id = id;
	salvage_op(val->mv_data, val->mv_size, op);
	op->state = JOURNAL_OP_CORRUPT;
	op->corrupt = xasprintf("op %llu is corrupt: %s", (unsigned long long)id, e.msg);
	return r;
}

/* Marks a decoded op corrupt for a step record that does not decode. */
static void step_corrupt(struct journal_op *op, uint32_t index, const char *why)
{
	if (op->state == JOURNAL_OP_CORRUPT || op->state == JOURNAL_OP_SET_ASIDE)
		return;
	op->state = JOURNAL_OP_CORRUPT;
	free(op->corrupt);
	op->corrupt = xasprintf("op %llu is corrupt: its step %u record: %s", (unsigned long long)op->id, index, why);
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
		return rc == MDB_NOTFOUND ? fail(e, -ENOENT, "journal: no op %llu", (unsigned long long)id)
					  : lmdb_fail(e, rc, "reading an op");
	if (read_op_record(&val, id, &v->op) < 0 && keep) {
		v->raw = dup_bytes(&val);
		v->rawlen = val.mv_size;
	}
	MDB_cursor *cur;
	rc = mdb_cursor_open(txn, j->steps, &cur);
	if (rc != 0) {
		view_free(v);
		return lmdb_fail(e, rc, "reading steps");
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
			r = fail(&se, -EBADMSG, "the record names step %u", s.index);
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
		return lmdb_fail(e, rc, "reading steps");
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
		return lmdb_fail(e, rc, "begin");
	struct op_view v;
	int r = view_op(j, txn, id, false, &v, e);
	mdb_txn_abort(txn);
	if (r < 0)
		return r;
	if (v.op.state == JOURNAL_OP_CORRUPT && !corrupt_ok) {
		r = fail(e, -EBADMSG, "journal: %s", v.op.corrupt);
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
		return lmdb_fail(e, rc, "begin");
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
		return lmdb_fail(e, rc, "listing ops");
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
			fail(&se, -EBADMSG, "the record names step %u", s.index);
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
		char *k = i == 1 ? xasprintf("%s", name) : xasprintf("%s~%d", name, i);
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
		return lmdb_fail(e, rc, "begin");
	struct op_view v;
	int r = view_op(j, txn, id, true, &v, e);
	if (r < 0) {
		mdb_txn_abort(txn);
		return r;
	}
	switch (v.op.state) {
	case JOURNAL_OP_RUNNING:
	case JOURNAL_OP_CORRUPT: break;
	case JOURNAL_OP_SET_ASIDE: r = fail(e, -EALREADY, "journal: op %llu is already set aside", (unsigned long long)id); break;
	case JOURNAL_OP_DONE:
	case JOURNAL_OP_ABORTED:
	case JOURNAL_OP_FAILED:
		r = fail(e, -EINVAL, "journal: op %llu is %s: a finished op cannot be set aside", (unsigned long long)id,
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
		name = xasprintf("corrupt/%llu", (unsigned long long)id);
		rc = keep_bytes(j, txn, name, v.raw, v.rawlen);
		free(name);
	}
	for (size_t i = 0; i < v.nbad && rc == 0; i++) {
		name = xasprintf("corrupt/%llu/step/%u", (unsigned long long)id, v.bad[i].index);
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
	return rc ? lmdb_fail(e, rc, "setting an op aside") : 0;
}
