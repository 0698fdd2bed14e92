/*
 * manifest_fuzz.c - libFuzzer target over manifest_parse(), the validation
 * of a generation manifest (gen-NNN.json) read back from a target.
 *
 * The input is the file's bytes; it is read as generation 1 of the stack
 * "S" at /d/S/gen-001.json. A manifest that is accepted must keep the
 * promises the engine relies on: its generation and stack are the ones
 * asked for; every store path is absolute and normal and its last component
 * is a store name; every config file has an absolute normal path, a 64-hex
 * sha256 and a mode of at most 07777; every secret file has an absolute
 * normal path, mode 0600 and no hash. A rejected one leaves a message that
 * names the file, and nothing allocated. Everything is freed, so a leak is
 * a finding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/path.h"
#include "base/sbuf.h"
#include "engine/manifest.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                                  \
	do {                                                                                                      \
		if (!(c))                                                                                         \
			abort();                                                                                  \
	} while (0)

#define PATH "/d/S/gen-001.json"

static int is_hex64(const char *s)
{
	return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so ASan sees any read past the end. */
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	struct manifest m;
	struct sbuf err = SBUF_INIT;
	int r = manifest_parse(buf, size, PATH, "S", 1, &m, &err);
	if (r == 0) {
		CHECK(err.sb_len == 0);
		CHECK(m.root && m.generation == 1 && m.stack && strcmp(m.stack, "S") == 0 && m.deployed_at);
		for (size_t i = 0; i < m.npaths; i++) {
			const char *p = m.store_paths[i];
			CHECK(p && p[0] == '/' && path_is_normal_abs(p));
			CHECK(store_name_valid(strrchr(p, '/') + 1));
		}
		for (size_t i = 0; i < m.nfiles; i++) {
			const struct manifest_file *f = &m.files[i];
			CHECK(f->path && path_is_normal_abs(f->path));
			CHECK(is_hex64(f->sha256));
			CHECK(f->mode <= 07777);
		}
		for (size_t i = 0; i < m.nsecret; i++) {
			const struct manifest_file *f = &m.secret_files[i];
			CHECK(f->path && path_is_normal_abs(f->path));
			CHECK(!f->sha256 && f->mode == 0600);
		}
		manifest_free(&m);
	} else {
		CHECK(r < 0);
		CHECK(err.sb_len > 0 && strncmp(err.sb_buf, PATH ": ", strlen(PATH) + 2) == 0);
		CHECK(!m.root && !m.store_paths && !m.files && !m.secret_files);
	}
	sbuf_free(&err);
	free(buf);
	return 0;
}
