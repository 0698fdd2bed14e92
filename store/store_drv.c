/*
 * store_drv.c - canonical derivations and the store paths they name.
 *
 * The encoding is a fixed sequence of "key len:value\n" records: no key is
 * optional (an absent source is an empty value), dependencies come sorted,
 * so the same inputs always give the same bytes, whatever order the PCL
 * was written in. The module's own name is deliberately not an input:
 * renaming a module must not rebuild anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "../base/xalloc.h"
#include "store.h"

static void put(struct sbuf *out, const char *key, const char *val, size_t len)
{
	sbuf_printf(out, "%s %zu:", key, len);
	sbuf_append(out, val, len);
	sbuf_putc(out, '\n');
}

static void puts_(struct sbuf *out, const char *key, const char *val)
{
	put(out, key, val ? val : "", val ? strlen(val) : 0);
}

void store_drv_encode(const struct store_drv *d, struct sbuf *out)
{
	char hex[65] = "";
	struct sbuf src = SBUF_INIT;
	if (d->source_dir || d->source_url || d->git_url)
		store_hex(d->source_hash, 32, hex);
	/*
	 * a url source: "url sha256:<declared hash> <file name>", never the
	 * URL; " unpacked" after an archive's name (src/ holds its contents)
	 */
	if (d->source_url)
		sbuf_printf(&src, "url sha256:%s %s%s", hex, d->source_name,
			    unpack_format_of(d->source_name) != UNPACK_NONE ? " unpacked" : "");
	else
		sbuf_puts(&src, hex);
	sbuf_puts(out, "punix-derivation 1\n");
	puts_(out, "builder", STORE_SHELL_BUILDER);
	puts_(out, "recipe", d->recipe);
	puts_(out, "pname", d->pname);
	puts_(out, "version", d->version);
	put(out, "args", d->args, d->args_len);
	put(out, "source", sbuf_str(&src), src.sb_len);
	sbuf_free(&src);
	puts_(out, "system", d->system);
	sbuf_printf(out, "deps %zu\n", d->ndeps);
	for (size_t i = 0; i < d->ndeps; i++)
		puts_(out, "dep", d->deps[i]);
}

char *store_drv_path(const struct store *s, const struct store_drv *d)
{
	struct sbuf enc = SBUF_INIT, path = SBUF_INIT;
	store_drv_encode(d, &enc);
	unsigned char h[32];
	store_sha256(enc.sb_buf, enc.sb_len, h);
	char b32[STORE_HASH_CHARS + 1];
	store_base32(h, b32);
	sbuf_printf(&path, "%s/%s-%s-%s", s->root, b32, d->pname, d->version);
	sbuf_free(&enc);
	return sbuf_detach(&path, NULL);
}

void store_system_of(const char *arch, char *out, size_t n)
{
	snprintf(out, n, "%s-linux", arch && *arch ? arch : "unknown");
}

const char *store_path_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}
