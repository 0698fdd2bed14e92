/*
 * journal_fuzz.c - libFuzzer target over the journal's record decoders,
 * journal_decode_op() and journal_decode_step(): the bytes LMDB hands back
 * are treated as hostile (docs: journal/journal.h).
 *
 * Every input is decoded twice by both decoders:
 *   1. as it is, which exercises the envelope (magic, version, type,
 *      length, CRC-32);
 *   2. resealed: a copy whose length field and CRC are recomputed, so that
 *      mutations of the payload reach the field parser instead of dying on
 *      the checksum.
 *
 * A record that decodes must survive a round trip: encoding what was
 * decoded and decoding that again gives equal fields, the re-encoding is a
 * fixed point, and it has the same length as the input (an op record may
 * lack its optional "ended" field, which the encoder always writes: 13
 * bytes more). Everything is freed, so a leak is a finding.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed invariant: abort, which libFuzzer and the replay report. */
#define CHECK(c)                                                                                                  \
	do {                                                                                                      \
		if (!(c))                                                                                         \
			abort();                                                                                  \
	} while (0)

/* Two optional strings are equal: both NULL, or both with the same bytes. */
static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* CRC-32 (IEEE, as zlib), the journal's checksum. */
static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xFFFFFFFFu;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void op_round_trip(const struct journal_op *op, size_t in_len)
{
	/* An op set aside by `journal set-aside` may have lost any field but
	 * its id and state, and carries the corruption note. */
	bool aside = op->state == JOURNAL_OP_SET_ASIDE;
	CHECK(aside || (op->kind && op->scope && op->stack && !op->corrupt));
	CHECK(aside || (op->state >= JOURNAL_OP_RUNNING && op->state <= JOURNAL_OP_FAILED));
	size_t len;
	unsigned char *rec = journal_encode_op(op, &len);
	/* The encoder always writes STARTED and ENDED (13 bytes each). */
	CHECK(len >= in_len && (len - in_len) % 13 == 0 && len - in_len <= 26);
	struct journal_op back;
	struct journal_err e;
	CHECK(journal_decode_op(rec, len, &back, &e) == 0);
	CHECK(back.id == op->id && back.state == op->state && back.started == op->started &&
	      back.ended == op->ended);
	CHECK(same_str(back.kind, op->kind) && same_str(back.scope, op->scope) && same_str(back.stack, op->stack) &&
	      same_str(back.corrupt, op->corrupt));
	CHECK(back.plan_len == op->plan_len && (!op->plan_len || memcmp(back.plan, op->plan, op->plan_len) == 0));
	size_t len2;
	unsigned char *rec2 = journal_encode_op(&back, &len2);
	CHECK(len2 == len && memcmp(rec2, rec, len) == 0);
	free(rec2);
	free(rec);
	journal_op_free(&back);
}

static void step_round_trip(const struct journal_step *s, size_t in_len)
{
	CHECK(s->name);
	CHECK(s->state >= JOURNAL_STEP_INTENT && s->state <= JOURNAL_STEP_UNDONE && s->index <= 1000);
	size_t len;
	unsigned char *rec = journal_encode_step(s, &len);
	CHECK(len == in_len);
	struct journal_step back;
	struct journal_err e;
	CHECK(journal_decode_step(rec, len, &back, &e) == 0);
	CHECK(back.index == s->index && back.state == s->state);
	CHECK(same_str(back.name, s->name) && same_str(back.result, s->result));
	size_t len2;
	unsigned char *rec2 = journal_encode_step(&back, &len2);
	CHECK(len2 == len && memcmp(rec2, rec, len) == 0);
	free(rec2);
	free(rec);
	free(back.name);
	free(back.result);
}

static void decode_both(const unsigned char *p, size_t len)
{
	struct journal_err e;
	struct journal_op op;
	int r = journal_decode_op(p, len, &op, &e);
	if (r == 0) {
		op_round_trip(&op, len);
		journal_op_free(&op);
	} else {
		CHECK(r < 0 && e.msg[0]);
		CHECK(!op.kind && !op.scope && !op.stack && !op.plan);
	}
	struct journal_step s;
	r = journal_decode_step(p, len, &s, &e);
	if (r == 0) {
		step_round_trip(&s, len);
		free(s.name);
		free(s.result);
	} else {
		CHECK(r < 0 && e.msg[0]);
		CHECK(!s.name && !s.result);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so ASan sees any read past the end. */
	unsigned char *p = malloc(size ? size : 1);
	memcpy(p, data, size);
	decode_both(p, size);
	if (size >= 13 && size <= ((size_t)1 << 20)) {
		put_u32(p + 5, (uint32_t)(size - 13));
		put_u32(p + size - 4, crc32_ieee(p + 3, size - 7));
		decode_both(p, size);
	}
	free(p);
	return 0;
}
