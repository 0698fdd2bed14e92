/*
 * plan_fuzz.c - libFuzzer target for an op's plan (engine/plan.h), the
 * bytes recovery reads back from the journal to finish or undo an op.
 *
 * Any input: plan_decode returns 0 or -EBADMSG with a message, never
 * crashes, reads past the end or leaks. A plan that decodes encodes again
 * to bytes that decode to the same plan, and encoding that is stable (a
 * JSON plan of an older punix becomes a binary one once, then stays).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/plan.h"

#define CHECK(c)                  \
	do {                      \
		if (!(c))         \
			abort();  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so ASan sees any read past the end */
	unsigned char *p = malloc(size ? size : 1);
	memcpy(p, data, size);
	struct op_plan a;
	struct sbuf err = SBUF_INIT;
	int r = plan_decode(p, size, &a, &err);
	if (r < 0) {
		CHECK(r == -EBADMSG && err.sb_len > 0);
		CHECK(!a.stack && !a.store_paths && !a.config_files && !a.prune);
	} else {
		unsigned char *e1, *e2;
		size_t n1, n2;
		plan_encode(&a, &e1, &n1);
		struct op_plan b;
		CHECK(plan_decode(e1, n1, &b, &err) == 0);
		plan_encode(&b, &e2, &n2);
		CHECK(n1 == n2 && memcmp(e1, e2, n1) == 0);
		CHECK(a.npaths == b.npaths && a.nconfig == b.nconfig && a.nsecret == b.nsecret && a.nprune == b.nprune);
		CHECK(a.generation == b.generation && a.previous == b.previous);
		char *json = plan_to_json(&b);
		CHECK(json != NULL);
		free(json);
		free(e1);
		free(e2);
		plan_free(&b);
		plan_free(&a);
	}
	sbuf_free(&err);
	free(p);
	return 0;
}
