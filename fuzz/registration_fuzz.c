/*
 * registration_fuzz.c - libFuzzer target over the store's on-disk formats
 * (store/store_format.c): store_registration_parse(), the registration of a
 * store path (.meta/<name>.json), and store_marker_parse(), the store's
 * marker (.punix-store).
 *
 * The first byte of the input chooses: even, the rest is the registration
 * of /s/store/<NAME>; odd, the rest is a marker. An accepted registration
 * must have a 64-hex nar_sha256 and only dependencies of the form
 * /s/store/<a store name>, and writing it again (as store_register does)
 * must parse back to the same thing. An accepted marker must name an
 * absolute directory without a line break, and store_marker_encode() of it
 * must parse back to it. A rejection leaves a message and nothing
 * allocated. Everything is freed, so a leak is a finding.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/sbuf.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                                  \
	do {                                                                                                      \
		if (!(c))                                                                                         \
			abort();                                                                                  \
	} while (0)

#define STORE_DIR "/s/store"
#define NAME "0123456789abcdfghijklmnpqrsvwxyz-hello-1.0"

/* The registration's bytes as store_register writes them. */
static char *registration_encode(const struct store_registration *g)
{
	json_t *o = json_object();
	json_object_set_new(o, "format", json_integer(1));
	json_object_set_new(o, "path", json_string(STORE_DIR "/" NAME));
	json_object_set_new(o, "nar_sha256", json_string(g->nar_sha256));
	json_object_set_new(o, "bytes", json_integer((json_int_t)g->bytes));
	json_t *d = json_array();
	for (size_t i = 0; i < g->ndeps; i++)
		json_array_append_new(d, json_string(g->deps[i]));
	json_object_set_new(o, "deps", d);
	json_object_set_new(o, "registered", json_integer(0));
	char *text = json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(2));
	json_decref(o);
	CHECK(text);
	return text;
}

static void registration(const char *buf, size_t len)
{
	struct store_registration g;
	struct sbuf err = SBUF_INIT;
	int r = store_registration_parse(buf, len, STORE_DIR, NAME, &g, &err);
	if (r == 0) {
		CHECK(err.sb_len == 0);
		CHECK(g.nar_sha256 && strlen(g.nar_sha256) == 64 &&
		      strspn(g.nar_sha256, "0123456789abcdef") == 64);
		CHECK(g.bytes <= (uint64_t)INT64_MAX);
		CHECK(g.ndeps == 0 || g.deps);
		for (size_t i = 0; i < g.ndeps; i++) {
			CHECK(g.deps[i] && strncmp(g.deps[i], STORE_DIR "/", strlen(STORE_DIR) + 1) == 0);
			CHECK(store_name_valid(g.deps[i] + strlen(STORE_DIR) + 1));
		}
		char *text = registration_encode(&g);
		struct store_registration back;
		CHECK(store_registration_parse(text, strlen(text), STORE_DIR, NAME, &back, &err) == 0);
		CHECK(strcmp(back.nar_sha256, g.nar_sha256) == 0 && back.bytes == g.bytes && back.ndeps == g.ndeps);
		for (size_t i = 0; i < g.ndeps; i++)
			CHECK(strcmp(back.deps[i], g.deps[i]) == 0);
		store_registration_free(&back);
		free(text);
		store_registration_free(&g);
	} else {
		CHECK(r < 0 && err.sb_len > 0);
		CHECK(!g.nar_sha256 && !g.deps && g.ndeps == 0);
	}
	sbuf_free(&err);
}

static void marker(const char *buf, size_t len)
{
	char *dir = NULL;
	struct sbuf err = SBUF_INIT;
	int r = store_marker_parse(buf, len, &dir, &err);
	if (r == 0) {
		CHECK(err.sb_len == 0);
		CHECK(dir && dir[0] == '/' && !strpbrk(dir, "\n\r"));
		size_t elen;
		char *text = store_marker_encode(dir, &elen);
		CHECK(elen == strlen(text));
		char *back = NULL;
		CHECK(store_marker_parse(text, elen, &back, &err) == 0);
		CHECK(strcmp(back, dir) == 0);
		free(back);
		free(text);
		free(dir);
	} else {
		CHECK(r < 0 && err.sb_len > 0 && !dir);
	}
	sbuf_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	/* An exact-size copy of the rest, so ASan sees any read past the end. */
	size_t len = size - 1;
	char *buf = malloc(len ? len : 1);
	memcpy(buf, data + 1, len);
	if (data[0] & 1)
		marker(buf, len);
	else
		registration(buf, len);
	free(buf);
	return 0;
}
