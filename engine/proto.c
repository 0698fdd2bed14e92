/*
 * proto.c - the host protocol's frames, their decoder, the buffered stream
 * they travel on, and the generation bundle (proto.h). The decoders are
 * pure; the stream does I/O only through the functions it is given.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/xalloc.h"
#include "proto.h"

enum shape { TEXT = 1, NUM, BYTES };
enum { ONCE = 0, MANY = 1, REQUIRED = 2 };

struct rule {
	unsigned char tag;
	unsigned char shape;
	unsigned char flags;
};

struct schema {
	unsigned char type;
	const char *name;
	struct rule rules[8];
};

static const struct schema schemas[] = {
	{PM_HELLO, "HELLO",
	 {{PF_MAGIC, TEXT, REQUIRED}, {PF_VERSION, NUM, REQUIRED}, {PF_MIN, NUM, REQUIRED}, {PF_PUNIX, TEXT, 0},
	  {PF_ARCH, TEXT, 0}, {PF_STORE, TEXT, 0}, {PF_ROOT, TEXT, 0}}},
	{PM_HAVE, "HAVE", {{PF_PATH, TEXT, MANY}, {PF_BITS, BYTES, 0}}},
	{PM_PATH, "PATH", {{PF_PATH, TEXT, REQUIRED}, {PF_REG, BYTES, REQUIRED}}},
	{PM_ENTRY, "ENTRY",
	 {{PF_KIND, TEXT, REQUIRED}, {PF_REL, TEXT, REQUIRED}, {PF_SIZE, NUM, 0}, {PF_LINK, TEXT, 0}}},
	{PM_DATA, "DATA", {{PF_BYTES, BYTES, REQUIRED}}},
	{PM_PUSHED, "PUSHED", {{PF_COUNT, NUM, 0}}},
	{PM_RUN, "RUN", {{PF_ARG, TEXT, MANY | REQUIRED}, {PF_BUNDLE, BYTES, 0}}},
	{PM_OUT, "OUT", {{PF_BYTES, BYTES, REQUIRED}}},
	{PM_ERR, "ERR", {{PF_BYTES, BYTES, REQUIRED}}},
	{PM_EXIT, "EXIT", {{PF_CODE, NUM, REQUIRED}}},
	{PM_FAIL, "FAIL", {{PF_TEXT, TEXT, REQUIRED}}},
};

static const struct schema *schema_of(unsigned char type)
{
	for (size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++)
		if (schemas[i].type == type)
			return &schemas[i];
	return NULL;
}

const char *proto_type_name(unsigned char type)
{
	const struct schema *s = schema_of(type);
	return s ? s->name : NULL;
}

__attribute__((format(printf, 2, 3))) static int bad(struct sbuf *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sbuf_vprintf(err, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int proto_decode(unsigned char type, const void *payload, size_t len, struct proto_msg *m, struct sbuf *err)
{
	memset(m, 0, sizeof(*m));
	const struct schema *s = schema_of(type);
	if (!s)
		return bad(err, "a frame of unknown type %u", type);
	const unsigned char *p = payload;
	size_t at = 0, cap = 0;
	unsigned seen[PF_MAX_] = {0};
	while (at < len) {
		if (len - at < 5) {
			proto_msg_free(m);
			return bad(err, "%s: a field header is cut short at byte %zu", s->name, at);
		}
		unsigned char tag = p[at];
		size_t n = le32(p + at + 1);
		if (n > len - at - 5) {
			proto_msg_free(m);
			return bad(err, "%s: field %u claims %zu bytes past the end", s->name, tag, n);
		}
		const struct rule *r = NULL;
		for (size_t i = 0; i < sizeof(s->rules) / sizeof(s->rules[0]) && s->rules[i].tag; i++)
			if (s->rules[i].tag == tag)
				r = &s->rules[i];
		const char *why = NULL;
		if (!r)
			why = "is not a field of this message";
		else if (seen[tag] && !(r->flags & MANY))
			why = "appears twice";
		else if (r->shape == NUM && n != 8)
			why = "is a number but does not have 8 bytes";
		else if (r->shape == TEXT && memchr(p + at + 5, '\0', n))
			why = "is text but holds a NUL byte";
		else if (m->nf == PROTO_MAX_FIELDS)
			why = "is one field too many";
		if (why) {
			proto_msg_free(m);
			return bad(err, "%s: field %u %s", s->name, tag, why);
		}
		seen[tag]++;
		if (m->nf == cap) {
			cap = cap ? 2 * cap : 8;
			m->f = xrealloc(m->f, cap * sizeof(*m->f));
		}
		m->f[m->nf++] = (struct proto_field){tag, p + at + 5, n};
		at += 5 + n;
	}
	for (size_t i = 0; i < sizeof(s->rules) / sizeof(s->rules[0]) && s->rules[i].tag; i++)
		if ((s->rules[i].flags & REQUIRED) && !seen[s->rules[i].tag]) {
			proto_msg_free(m);
			return bad(err, "%s: field %u is missing", s->name, s->rules[i].tag);
		}
	m->type = type;
	return 0;
}

void proto_msg_free(struct proto_msg *m)
{
	free(m->f);
	memset(m, 0, sizeof(*m));
}

const struct proto_field *proto_get(const struct proto_msg *m, unsigned char tag)
{
	for (size_t i = 0; i < m->nf; i++)
		if (m->f[i].tag == tag)
			return &m->f[i];
	return NULL;
}

char *proto_text(const struct proto_msg *m, unsigned char tag)
{
	const struct proto_field *f = proto_get(m, tag);
	return f ? xstrndup((const char *)f->v, f->n) : NULL;
}

bool proto_num(const struct proto_msg *m, unsigned char tag, uint64_t *out)
{
	const struct proto_field *f = proto_get(m, tag);
	if (!f || f->n != 8)
		return false;
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x |= (uint64_t)f->v[i] << (8 * i);
	*out = x;
	return true;
}

/* ---- building frames ------------------------------------------------------------- */

static void put_header(struct sbuf *b, unsigned char tag, size_t n)
{
	unsigned char h[5] = {tag, (unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
			      (unsigned char)(n >> 24)};
	sbuf_append(b, h, 5);
}

void proto_begin(struct proto_frame *fr, unsigned char type)
{
	sbuf_init(&fr->b);
	put_header(&fr->b, type, 0); /* the length is filled in by proto_end */
}

void proto_put(struct proto_frame *fr, unsigned char tag, const void *v, size_t n)
{
	put_header(&fr->b, tag, n);
	sbuf_append(&fr->b, v, n);
}

void proto_put_text(struct proto_frame *fr, unsigned char tag, const char *s)
{
	if (s)
		proto_put(fr, tag, s, strlen(s));
}

void proto_put_num(struct proto_frame *fr, unsigned char tag, uint64_t v)
{
	unsigned char x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (unsigned char)(v >> (8 * i));
	proto_put(fr, tag, x, 8);
}

void proto_end(struct proto_frame *fr, struct sbuf *out)
{
	size_t n = fr->b.sb_len - 5;
	unsigned char *h = (unsigned char *)fr->b.sb_buf;
	h[1] = (unsigned char)n;
	h[2] = (unsigned char)(n >> 8);
	h[3] = (unsigned char)(n >> 16);
	h[4] = (unsigned char)(n >> 24);
	sbuf_append(out, fr->b.sb_buf, fr->b.sb_len);
	sbuf_free(&fr->b);
}

/* ---- the stream ---------------------------------------------------------------------- */

void proto_io_init(struct proto_io *io, ssize_t (*rd)(void *, void *, size_t),
		   ssize_t (*wr)(void *, const void *, size_t), void *ctx)
{
	memset(io, 0, sizeof(*io));
	io->read = rd;
	io->write = wr;
	io->ctx = ctx;
}

/* What went over the stream may have held secret values (a bundle): wiped before it is let go. */
static void wipe(struct sbuf *b)
{
	if (b->sb_buf)
		memset(b->sb_buf, 0, b->sb_cap);
}

void proto_io_free(struct proto_io *io)
{
	wipe(&io->out);
	sbuf_free(&io->out);
	if (io->in)
		memset(io->in, 0, io->in_cap);
	free(io->in);
	io->in = NULL;
}

int proto_flush(struct proto_io *io)
{
	size_t at = 0;
	while (at < io->out.sb_len) {
		ssize_t w = io->write(io->ctx, io->out.sb_buf + at, io->out.sb_len - at);
		if (w < 0) {
			sbuf_reset(&io->out);
			return (int)w;
		}
		if (w == 0) {
			sbuf_reset(&io->out);
			return -EPIPE;
		}
		at += (size_t)w;
	}
	io->bytes_out += at;
	wipe(&io->out);
	sbuf_reset(&io->out);
	return 0;
}

int proto_send(struct proto_io *io, struct proto_frame *fr)
{
	if (fr->b.sb_len - 5 > PROTO_MAX_FRAME) {
		sbuf_free(&fr->b);
		return -EMSGSIZE;
	}
	proto_end(fr, &io->out);
	io->frames_out++;
	return io->out.sb_len >= (256u << 10) ? proto_flush(io) : 0;
}

/* Makes n bytes available at io->in + io->in_at; 1 if the stream ended first (got says how many). */
static int fill(struct proto_io *io, size_t n, size_t *got)
{
	if (io->in_len - io->in_at >= n)
		return 0;
	if (io->in_at) {
		memmove(io->in, io->in + io->in_at, io->in_len - io->in_at);
		io->in_len -= io->in_at;
		io->in_at = 0;
	}
	if (io->in_cap < n) {
		io->in_cap = n < 65536 ? 65536 : n;
		io->in = xrealloc(io->in, io->in_cap);
	}
	while (io->in_len < n) {
		ssize_t r = io->read(io->ctx, io->in + io->in_len, io->in_cap - io->in_len);
		if (r < 0)
			return (int)r;
		if (r == 0) {
			*got = io->in_len;
			return 1;
		}
		io->in_len += (size_t)r;
		io->bytes_in += (size_t)r;
	}
	return 0;
}

/* What arrived where a frame should have: shown as text, so a shell's complaint reads as one. */
static void not_a_frame(struct proto_io *io, size_t n, struct sbuf *err)
{
	size_t k = n < 300 ? n : 300;
	sbuf_puts(err, "the other side sent something that is not a frame of the host protocol: '");
	for (size_t i = 0; i < k; i++) {
		unsigned char ch = io->in[io->in_at + i];
		if (ch == '\n' && i + 1 == k)
			break;
		if (ch >= 0x20 && ch < 0x7f)
			sbuf_putc(err, (char)ch);
		else if (ch == '\n')
			sbuf_puts(err, " / ");
		else
			sbuf_printf(err, "\\x%02x", ch);
	}
	sbuf_putc(err, '\'');
}

int proto_recv(struct proto_io *io, struct sbuf *payload, struct proto_msg *m, struct sbuf *err)
{
	memset(m, 0, sizeof(*m));
	size_t got = 0;
	int r = fill(io, 5, &got);
	if (r < 0) {
		sbuf_printf(err, "reading from the other side: %s", strerror(-r));
		return r;
	}
	if (r == 1) {
		if (got == 0)
			return 1;
		not_a_frame(io, got, err);
		return -EBADMSG;
	}
	const unsigned char *h = io->in + io->in_at;
	size_t n = le32(h + 1);
	if (!proto_type_name(h[0]) || n > PROTO_MAX_FRAME) {
		/* text, most likely: show what there is of it */
		size_t avail = io->in_len - io->in_at;
		if (avail < 300) {
			size_t more = 0;
			if (fill(io, 300, &more) == 1)
				avail = more;
			else
				avail = io->in_len - io->in_at;
		}
		not_a_frame(io, avail, err);
		return -EBADMSG;
	}
	unsigned char type = h[0];
	r = fill(io, 5 + n, &got);
	if (r != 0) {
		sbuf_printf(err, "the stream ended inside a %s frame (%zu of %zu bytes)", proto_type_name(type),
			    got > 5 ? got - 5 : 0, n);
		return r < 0 ? r : -EBADMSG;
	}
	sbuf_reset(payload);
	sbuf_append(payload, io->in + io->in_at + 5, n);
	io->in_at += 5 + n;
	io->frames_in++;
	return proto_decode(type, payload->sb_buf, payload->sb_len, m, err);
}

/* ---- the bundle -------------------------------------------------------------------------- */

enum {
	B_STACK = 1, B_REQUEST, B_DEPLOYED_AT, B_SOURCE_HASH, B_SERVICES, B_STORE_PATH, B_FILE, B_BUILD, B_SECRET,
};
enum { BS_SERVICE = 1, BS_KEY, BS_VALUE };
enum { BF_PATH = 1, BF_MODE, BF_SECRET, BF_OWNER, BF_CONTENT };

static void put_field(struct sbuf *b, unsigned char tag, const void *v, size_t n)
{
	put_header(b, tag, n);
	sbuf_append(b, v, n);
}

static void put_str(struct sbuf *b, unsigned char tag, const char *s)
{
	if (s)
		put_field(b, tag, s, strlen(s));
}

static void put_u64(struct sbuf *b, unsigned char tag, uint64_t v)
{
	unsigned char x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (unsigned char)(v >> (8 * i));
	put_field(b, tag, x, 8);
}

void bundle_encode(const struct bundle *b, struct sbuf *out)
{
	sbuf_append(out, "PBN", 3);
	unsigned char v = BUNDLE_VERSION;
	sbuf_append(out, &v, 1);
	put_str(out, B_STACK, b->stack);
	put_str(out, B_REQUEST, b->request);
	if (b->build)
		put_u64(out, B_BUILD, 1);
	for (size_t i = 0; i < b->nsecrets; i++) {
		struct sbuf in = SBUF_INIT;
		put_str(&in, BS_SERVICE, b->secrets[i].service);
		put_str(&in, BS_KEY, b->secrets[i].key);
		put_str(&in, BS_VALUE, b->secrets[i].value);
		put_field(out, B_SECRET, in.sb_buf, in.sb_len);
		if (in.sb_buf)
			memset(in.sb_buf, 0, in.sb_cap);
		sbuf_free(&in);
	}
	put_str(out, B_DEPLOYED_AT, b->deployed_at);
	put_str(out, B_SOURCE_HASH, b->source_hash);
	put_str(out, B_SERVICES, b->services);
	for (size_t i = 0; i < b->npaths; i++)
		put_str(out, B_STORE_PATH, b->store_paths[i]);
	for (size_t i = 0; i < b->nfiles; i++) {
		const struct bundle_file *f = &b->files[i];
		struct sbuf in = SBUF_INIT;
		put_str(&in, BF_PATH, f->path);
		put_u64(&in, BF_MODE, f->mode);
		put_u64(&in, BF_SECRET, f->secret);
		put_str(&in, BF_OWNER, f->owner);
		put_field(&in, BF_CONTENT, f->content ? (const void *)f->content : "", f->len);
		put_field(out, B_FILE, in.sb_buf, in.sb_len);
		/* a secret's bytes were in it: wipe before letting go */
		if (in.sb_buf)
			memset(in.sb_buf, 0, in.sb_cap);
		sbuf_free(&in);
	}
}

struct rd {
	const unsigned char *p;
	size_t n, at;
};

static int next(struct rd *r, unsigned char *tag, const unsigned char **v, size_t *n, struct sbuf *err)
{
	if (r->at == r->n)
		return 1;
	if (r->n - r->at < 5)
		return bad(err, "bundle: a field header is cut short at byte %zu", r->at);
	size_t len = le32(r->p + r->at + 1);
	if (len > r->n - r->at - 5)
		return bad(err, "bundle: field %u claims %zu bytes past the end", r->p[r->at], len);
	*tag = r->p[r->at];
	*v = r->p + r->at + 5;
	*n = len;
	r->at += 5 + len;
	return 0;
}

static int get_str(unsigned char tag, const unsigned char *v, size_t n, char **out, struct sbuf *err)
{
	if (memchr(v, '\0', n))
		return bad(err, "bundle: text field %u holds a NUL byte", tag);
	if (*out)
		return bad(err, "bundle: field %u appears twice", tag);
	*out = xstrndup((const char *)v, n);
	return 0;
}

static int get_u64(unsigned char tag, const unsigned char *v, size_t n, uint64_t *out, struct sbuf *err)
{
	if (n != 8)
		return bad(err, "bundle: number field %u has %zu bytes, not 8", tag, n);
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x |= (uint64_t)v[i] << (8 * i);
	*out = x;
	return 0;
}

static void file_free(struct bundle_file *f)
{
	free(f->path);
	free(f->owner);
	if (f->content)
		memset(f->content, 0, f->len);
	free(f->content);
	memset(f, 0, sizeof(*f));
}

static int get_file(const unsigned char *v, size_t n, struct bundle_file *f, struct sbuf *err)
{
	struct rd r = {v, n, 0};
	memset(f, 0, sizeof(*f));
	unsigned char t = 0;
	const unsigned char *fv = NULL;
	size_t fn = 0;
	bool have_mode = false, have_content = false;
	int rc;
	while ((rc = next(&r, &t, &fv, &fn, err)) == 0) {
		uint64_t x = 0;
		switch (t) {
		case BF_PATH: rc = get_str(t, fv, fn, &f->path, err); break;
		case BF_OWNER: rc = get_str(t, fv, fn, &f->owner, err); break;
		case BF_MODE:
			rc = get_u64(t, fv, fn, &x, err);
			if (rc == 0 && x > 07777)
				rc = bad(err, "bundle: a file's mode %llu is not a mode", (unsigned long long)x);
			f->mode = (uint32_t)x;
			have_mode = true;
			break;
		case BF_SECRET:
			rc = get_u64(t, fv, fn, &x, err);
			f->secret = x != 0;
			break;
		case BF_CONTENT:
			if (have_content) {
				rc = bad(err, "bundle: a file's content appears twice");
				break;
			}
			f->content = xmalloc(fn + 1);
			memcpy(f->content, fv, fn);
			f->content[fn] = 0;
			f->len = fn;
			have_content = true;
			break;
		default: rc = bad(err, "bundle: unknown field %u in a file", t);
		}
		if (rc < 0)
			break;
	}
	if (rc == 1 && (!f->path || !have_mode || !have_content))
		rc = bad(err, "bundle: a file lacks its path, mode or content");
	if (rc == 1 && (f->path[0] != '/' || strstr(f->path, "/../") || strstr(f->path, "//")))
		rc = bad(err, "bundle: a file's path '%s' is not a normal absolute path", f->path);
	if (rc < 0) {
		file_free(f);
		return rc;
	}
	return 0;
}

static void secret_free(struct bundle_secret *s)
{
	free(s->service);
	free(s->key);
	if (s->value)
		memset(s->value, 0, strlen(s->value));
	free(s->value);
	memset(s, 0, sizeof(*s));
}

static int get_secret(const unsigned char *v, size_t n, struct bundle_secret *s, struct sbuf *err)
{
	struct rd r = {v, n, 0};
	memset(s, 0, sizeof(*s));
	unsigned char t = 0;
	const unsigned char *fv = NULL;
	size_t fn = 0;
	int rc;
	while ((rc = next(&r, &t, &fv, &fn, err)) == 0) {
		switch (t) {
		case BS_SERVICE: rc = get_str(t, fv, fn, &s->service, err); break;
		case BS_KEY: rc = get_str(t, fv, fn, &s->key, err); break;
		case BS_VALUE: rc = get_str(t, fv, fn, &s->value, err); break;
		default: rc = bad(err, "bundle: unknown field %u in a secret", t);
		}
		if (rc < 0)
			break;
	}
	if (rc == 1 && (!s->service || !s->key || !s->value))
		rc = bad(err, "bundle: a secret lacks its service, key or value");
	if (rc < 0) {
		secret_free(s);
		return rc;
	}
	return 0;
}

int bundle_decode(const void *buf, size_t len, struct bundle *b, struct sbuf *err)
{
	memset(b, 0, sizeof(*b));
	const unsigned char *p = buf;
	if (len < 4 || memcmp(p, "PBN", 3) != 0)
		return bad(err, "bundle: not a generation bundle (no PBN header)");
	if (p[3] != BUNDLE_VERSION)
		return bad(err, "bundle: version %u is not one this punix reads (%u)", p[3], BUNDLE_VERSION);
	struct rd r = {p, len, 4};
	unsigned char t = 0;
	const unsigned char *v = NULL;
	size_t n = 0;
	int rc;
	while ((rc = next(&r, &t, &v, &n, err)) == 0) {
		char *s = NULL;
		switch (t) {
		case B_STACK: rc = get_str(t, v, n, &b->stack, err); break;
		case B_REQUEST: rc = get_str(t, v, n, &b->request, err); break;
		case B_DEPLOYED_AT: rc = get_str(t, v, n, &b->deployed_at, err); break;
		case B_SOURCE_HASH: rc = get_str(t, v, n, &b->source_hash, err); break;
		case B_SERVICES: rc = get_str(t, v, n, &b->services, err); break;
		case B_STORE_PATH:
			rc = get_str(t, v, n, &s, err);
			if (rc == 0) {
				b->store_paths = xrealloc(b->store_paths, (b->npaths + 1) * sizeof(char *));
				b->store_paths[b->npaths++] = s;
			}
			break;
		case B_BUILD: {
			uint64_t x = 0;
			rc = get_u64(t, v, n, &x, err);
			b->build = x != 0;
			break;
		}
		case B_SECRET: {
			struct bundle_secret sc;
			rc = get_secret(v, n, &sc, err);
			if (rc == 0) {
				b->secrets = xrealloc(b->secrets, (b->nsecrets + 1) * sizeof(*b->secrets));
				b->secrets[b->nsecrets++] = sc;
			}
			break;
		}
		case B_FILE: {
			struct bundle_file f;
			rc = get_file(v, n, &f, err);
			if (rc == 0) {
				b->files = xrealloc(b->files, (b->nfiles + 1) * sizeof(*b->files));
				b->files[b->nfiles++] = f;
			}
			break;
		}
		default: rc = bad(err, "bundle: unknown field %u", t);
		}
		if (rc < 0)
			break;
	}
	if (rc == 1 && (!b->stack || !b->request))
		rc = bad(err, "bundle: the stack or the request is missing");
	if (rc == 1 && !b->build && (!b->deployed_at || !b->source_hash || !b->services))
		rc = bad(err, "bundle: deployed_at, source_hash or services is missing");
	if (rc == 1 && b->build && (b->npaths || b->nfiles || b->deployed_at || b->source_hash || b->services))
		rc = bad(err, "bundle: a build-on-target bundle carries no generation (only the stack and secrets)");
	if (rc < 0) {
		bundle_free(b);
		return rc;
	}
	return 0;
}

void bundle_free(struct bundle *b)
{
	free(b->stack);
	free(b->request);
	free(b->deployed_at);
	free(b->source_hash);
	free(b->services);
	for (size_t i = 0; i < b->npaths; i++)
		free(b->store_paths[i]);
	free(b->store_paths);
	for (size_t i = 0; i < b->nfiles; i++)
		file_free(&b->files[i]);
	free(b->files);
	for (size_t i = 0; i < b->nsecrets; i++)
		secret_free(&b->secrets[i]);
	free(b->secrets);
	memset(b, 0, sizeof(*b));
}
