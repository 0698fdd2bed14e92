/*
 * proto_fuzz.c - libFuzzer target for the host protocol (engine/proto.h),
 * the bytes a deployer and `punix host serve` read from each other over
 * an SSH channel: whatever the other side (or a shell's login noise) sends
 * must be an error, never a crash.
 *
 * The first byte chooses (modulo 3):
 *   0. a frame's payload: the next byte is its type, the rest its payload,
 *      through proto_decode(). A decoded frame has only the fields its type
 *      takes (an independent table below), in their shape, each at most
 *      once unless it may repeat, every required one, and they tile the
 *      payload exactly (so building the frame again with proto_put gives
 *      the same bytes); proto_get, proto_text and proto_num agree with the
 *      fields for every tag 0..PF_MAX_. A RUN's bundle goes through 1.
 *      A refused frame leaves a message and an empty msg.
 *   1. a generation bundle: the rest through bundle_decode(). A decoded one
 *      has every required string and normal absolute file paths with modes
 *      of at most 07777; bundle_encode() of it decodes to an equal bundle,
 *      whose encoding is the same bytes. A refused one leaves a message and
 *      nothing allocated.
 *   2. a stream: the rest through proto_recv() over an in-memory proto_io
 *      whose reads return 1..7 bytes at a time (the sizes from the first
 *      byte), until the clean end (1) or an error (<0, with a message).
 *      With bit 0 of the first byte / 3 set, the stream ends in a read
 *      error instead of its end. Every frame received is checked as in 0
 *      and sent back with proto_send() through writes of at most 64 bytes:
 *      what was written is exactly the bytes of the frames received.
 * Everything is freed, so a leak is a finding.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "engine/proto.h"

#define CHECK(c)                                                                                                       \
	do {                                                                                                           \
		if (!(c))                                                                                              \
			abort();                                                                                       \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- what each type takes, as proto.h describes it (written apart from proto.c's table) ---- */

enum { T = 1, N, B };       /* text, number, bytes */
enum { REQ = 1, MANY = 2 }; /* flags */

struct spec_field {
	unsigned char tag, shape, flags;
};

struct spec {
	unsigned char type;
	struct spec_field f[8];
};

static const struct spec specs[] = {
	{PM_HELLO,
	 {{PF_MAGIC, T, REQ}, {PF_VERSION, N, REQ}, {PF_MIN, N, REQ}, {PF_PUNIX, T, 0}, {PF_ARCH, T, 0},
	  {PF_STORE, T, 0}, {PF_ROOT, T, 0}}},
	{PM_HAVE, {{PF_PATH, T, MANY}, {PF_BITS, B, 0}}},
	{PM_PATH, {{PF_PATH, T, REQ}, {PF_REG, B, REQ}}},
	{PM_ENTRY, {{PF_KIND, T, REQ}, {PF_REL, T, REQ}, {PF_SIZE, N, 0}, {PF_LINK, T, 0}}},
	{PM_DATA, {{PF_BYTES, B, REQ}}},
	{PM_PUSHED, {{PF_COUNT, N, 0}}},
	{PM_RUN, {{PF_ARG, T, REQ | MANY}, {PF_BUNDLE, B, 0}}},
	{PM_OUT, {{PF_BYTES, B, REQ}}},
	{PM_ERR, {{PF_BYTES, B, REQ}}},
	{PM_EXIT, {{PF_CODE, N, REQ}}},
	{PM_FAIL, {{PF_TEXT, T, REQ}}},
};

static const struct spec *spec_of(unsigned char type)
{
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		if (specs[i].type == type)
			return &specs[i];
	return NULL;
}

static const struct spec_field *spec_field_of(const struct spec *s, unsigned char tag)
{
	for (size_t i = 0; i < 8 && s->f[i].tag; i++)
		if (s->f[i].tag == tag)
			return &s->f[i];
	return NULL;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- the bundle ---------------------------------------------------------------------- */

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_bundle(const struct bundle *b)
{
	CHECK(b->stack && b->request && b->deployed_at && b->source_hash && b->services);
	CHECK(!b->npaths == !b->store_paths);
	for (size_t i = 0; i < b->npaths; i++)
		CHECK(b->store_paths[i] != NULL);
	CHECK(!b->nfiles == !b->files);
	for (size_t i = 0; i < b->nfiles; i++) {
		const struct bundle_file *f = &b->files[i];
		CHECK(f->path && f->path[0] == '/' && !strstr(f->path, "/../") && !strstr(f->path, "//"));
		CHECK(f->mode <= 07777);
		CHECK(f->content != NULL && f->content[f->len] == '\0');
	}
}

static bool same_bundle(const struct bundle *a, const struct bundle *b)
{
	if (!same_str(a->stack, b->stack) || !same_str(a->request, b->request) ||
	    !same_str(a->deployed_at, b->deployed_at) || !same_str(a->source_hash, b->source_hash) ||
	    !same_str(a->services, b->services) || a->npaths != b->npaths || a->nfiles != b->nfiles)
		return false;
	for (size_t i = 0; i < a->npaths; i++)
		if (!same_str(a->store_paths[i], b->store_paths[i]))
			return false;
	for (size_t i = 0; i < a->nfiles; i++) {
		const struct bundle_file *x = &a->files[i], *y = &b->files[i];
		if (!same_str(x->path, y->path) || x->mode != y->mode || x->secret != y->secret ||
		    !same_str(x->owner, y->owner) || x->len != y->len || memcmp(x->content, y->content, x->len) != 0)
			return false;
	}
	return true;
}

static void fuzz_bundle(const unsigned char *p, size_t n)
{
	struct bundle a, b;
	struct sbuf err = SBUF_INIT;
	int r = bundle_decode(p, n, &a, &err);
	if (r < 0) {
		CHECK(r == -EBADMSG && err.sb_len > 0);
		CHECK(!a.stack && !a.request && !a.deployed_at && !a.source_hash && !a.services);
		CHECK(!a.store_paths && !a.npaths && !a.files && !a.nfiles);
		sbuf_free(&err);
		return;
	}
	CHECK(err.sb_len == 0);
	check_bundle(&a);
	struct sbuf e1 = SBUF_INIT, e2 = SBUF_INIT;
	bundle_encode(&a, &e1);
	CHECK(bundle_decode(e1.sb_buf, e1.sb_len, &b, &err) == 0);
	CHECK(same_bundle(&a, &b));
	bundle_encode(&b, &e2);
	CHECK(e1.sb_len == e2.sb_len && memcmp(e1.sb_buf, e2.sb_buf, e1.sb_len) == 0);
	sbuf_free(&e1);
	sbuf_free(&e2);
	bundle_free(&b);
	bundle_free(&a);
	sbuf_free(&err);
}

/* ---- a frame --------------------------------------------------------------------------- */

/* A decoded frame of len bytes of payload at p, checked against the table and the getters. */
static void check_msg(const struct proto_msg *m, unsigned char type, const unsigned char *p, size_t len)
{
	const struct spec *s = spec_of(type);
	CHECK(s != NULL && m->type == type && proto_type_name(type) != NULL);
	CHECK(!m->nf == !m->f);
	unsigned count[PF_MAX_ + 1] = {0};
	size_t at = 0;
	for (size_t i = 0; i < m->nf; i++) {
		const struct proto_field *f = &m->f[i];
		const struct spec_field *sf = spec_field_of(s, f->tag);
		CHECK(sf != NULL && f->tag < PF_MAX_);
		/* inside the payload, and right after the previous field's header */
		CHECK(f->v >= p && f->n <= len && (size_t)(f->v - p) <= len - f->n);
		CHECK((size_t)(f->v - p) == at + 5 && p[at] == f->tag && le32(p + at + 1) == f->n);
		at += 5 + f->n;
		if (sf->shape == N)
			CHECK(f->n == 8);
		if (sf->shape == T)
			CHECK(memchr(f->v, '\0', f->n) == NULL);
		count[f->tag]++;
		CHECK(count[f->tag] == 1 || (sf->flags & MANY));
	}
	CHECK(at == len);
	for (size_t i = 0; i < 8 && s->f[i].tag; i++)
		CHECK(!(s->f[i].flags & REQ) || count[s->f[i].tag] > 0);

	for (unsigned tag = 0; tag <= PF_MAX_; tag++) {
		const struct proto_field *first = NULL;
		for (size_t i = 0; i < m->nf && !first; i++)
			if (m->f[i].tag == tag)
				first = &m->f[i];
		const struct proto_field *g = proto_get(m, (unsigned char)tag);
		CHECK(g == first);
		char *t = proto_text(m, (unsigned char)tag);
		CHECK(!t == !first);
		if (t) {
			size_t tl = strlen(t);
			CHECK(tl <= first->n && memcmp(t, first->v, tl) == 0);
			CHECK(tl == first->n || first->v[tl] == '\0');
			free(t);
		}
		uint64_t x = 0;
		bool ok = proto_num(m, (unsigned char)tag, &x);
		CHECK(ok == (first && first->n == 8));
		if (ok) {
			uint64_t y = 0;
			for (int i = 0; i < 8; i++)
				y |= (uint64_t)first->v[i] << (8 * i);
			CHECK(x == y);
		}
	}
}

/* The frame built again from m: type, length, then each field with proto_put. */
static void frame_of(const struct proto_msg *m, struct proto_frame *fr)
{
	proto_begin(fr, m->type);
	for (size_t i = 0; i < m->nf; i++)
		proto_put(fr, m->f[i].tag, m->f[i].v, m->f[i].n);
}

static void fuzz_frame(unsigned char type, const unsigned char *p, size_t n)
{
	struct proto_msg m;
	struct sbuf err = SBUF_INIT;
	int r = proto_decode(type, p, n, &m, &err);
	if (r < 0) {
		CHECK(r == -EBADMSG && err.sb_len > 0);
		CHECK(m.f == NULL && m.nf == 0 && m.type == 0);
		sbuf_free(&err);
		return;
	}
	CHECK(r == 0 && err.sb_len == 0);
	check_msg(&m, type, p, n);
	struct proto_frame fr;
	struct sbuf out = SBUF_INIT;
	frame_of(&m, &fr);
	proto_end(&fr, &out);
	CHECK(out.sb_len == 5 + n && (unsigned char)out.sb_buf[0] == type);
	CHECK(le32((const unsigned char *)out.sb_buf + 1) == n && memcmp(out.sb_buf + 5, p, n) == 0);
	sbuf_free(&out);
	const struct proto_field *bundle = type == PM_RUN ? proto_get(&m, PF_BUNDLE) : NULL;
	if (bundle)
		fuzz_bundle(bundle->v, bundle->n);
	proto_msg_free(&m);
	sbuf_free(&err);
}

/* ---- a stream ----------------------------------------------------------------------------- */

struct stream {
	const unsigned char *p;
	size_t n, at;
	uint32_t rnd;     /* chooses the sizes of the reads and writes */
	bool fail_at_end; /* a read error where the stream would end */
	struct sbuf written;
};

static uint32_t next_rnd(struct stream *s)
{
	s->rnd = s->rnd * 1103515245u + 12345u;
	return s->rnd >> 16;
}

static ssize_t stream_read(void *ctx, void *buf, size_t n)
{
	struct stream *s = ctx;
	CHECK(n > 0);
	if (s->at == s->n)
		return s->fail_at_end ? -EIO : 0;
	size_t k = 1 + next_rnd(s) % 7;
	if (k > n)
		k = n;
	if (k > s->n - s->at)
		k = s->n - s->at;
	memcpy(buf, s->p + s->at, k);
	s->at += k;
	return (ssize_t)k;
}

static ssize_t stream_write(void *ctx, const void *buf, size_t n)
{
	struct stream *s = ctx;
	CHECK(n > 0);
	size_t k = 1 + next_rnd(s) % 64;
	if (k > n)
		k = n;
	sbuf_append(&s->written, buf, k);
	return (ssize_t)k;
}

static void fuzz_stream(unsigned seed, const unsigned char *p, size_t n)
{
	struct stream s = {p, n, 0, seed, (seed & 1) != 0, SBUF_INIT};
	struct proto_io io;
	proto_io_init(&io, stream_read, stream_write, &s);
	struct sbuf payload = SBUF_INIT, err = SBUF_INIT;
	size_t frames = 0, consumed = 0;
	int r;
	for (;;) {
		struct proto_msg m;
		r = proto_recv(&io, &payload, &m, &err);
		if (r != 0) {
			CHECK(m.f == NULL && m.nf == 0);
			break;
		}
		CHECK(err.sb_len == 0);
		const unsigned char *pl = (const unsigned char *)payload.sb_buf;
		CHECK(consumed + 5 + payload.sb_len <= n);
		CHECK(p[consumed] == m.type && le32(p + consumed + 1) == payload.sb_len);
		CHECK(payload.sb_len == 0 || memcmp(pl, p + consumed + 5, payload.sb_len) == 0);
		check_msg(&m, m.type, pl, payload.sb_len);
		consumed += 5 + payload.sb_len;
		frames++;
		struct proto_frame fr;
		frame_of(&m, &fr);
		CHECK(proto_send(&io, &fr) == 0);
		proto_msg_free(&m);
	}
	if (r == 1) {
		/* the clean end: after the last frame, with nothing left over */
		CHECK(err.sb_len == 0 && !s.fail_at_end && consumed == n && s.at == n);
	} else {
		CHECK(r < 0 && err.sb_len > 0);
		CHECK(r != -EIO || s.fail_at_end);
	}
	CHECK(io.frames_in >= frames && io.frames_out == frames && io.bytes_in == s.at);
	CHECK(proto_flush(&io) == 0);
	CHECK(io.bytes_out == consumed && s.written.sb_len == consumed);
	CHECK(consumed == 0 || memcmp(s.written.sb_buf, p, consumed) == 0);
	proto_io_free(&io);
	sbuf_free(&s.written);
	sbuf_free(&payload);
	sbuf_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	/* an exact-size copy, so ASan sees any read past the end */
	size_t n = size - 1;
	unsigned char *p = malloc(n ? n : 1);
	memcpy(p, data + 1, n);
	switch (data[0] % 3) {
	case 0:
		if (n > 0)
			fuzz_frame(p[0], p + 1, n - 1);
		break;
	case 1: fuzz_bundle(p, n); break;
	default: fuzz_stream(data[0] / 3u, p, n); break;
	}
	free(p);
	return 0;
}
