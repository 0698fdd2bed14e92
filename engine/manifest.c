/*
 * manifest.c - see manifest.h.
 */
#include "manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/path.h"
#include "../base/vec.h"
#include "../base/xalloc.h"
#include "../store/store.h"

char *stack_dir(const char *dep, const char *stack)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s", dep, stack);
	return sbuf_detach(&sb, NULL);
}

char *gen_manifest_path(const char *dep, const char *stack, long n)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s/gen-%03ld.json", dep, stack, n);
	return sbuf_detach(&sb, NULL);
}

char *gen_files_dir(const char *dep, const char *stack, long n)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s/gen-%03ld.files", dep, stack, n);
	return sbuf_detach(&sb, NULL);
}

char *gen_secrets_dir(const char *dep, const char *stack, long n)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s/gen-%03ld.secrets", dep, stack, n);
	return sbuf_detach(&sb, NULL);
}

void sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char h[32];
	store_sha256(p, n, h);
	store_hex(h, 32, out);
}

/* "gen-NNN.json" (three or more digits) -> NNN, or -1. */
static long parse_gen_name(const char *name)
{
	if (strncmp(name, "gen-", 4) != 0)
		return -1;
	const char *p = name + 4;
	size_t digits = strspn(p, "0123456789");
	if (digits < 3 || digits > 9 || strcmp(p + digits, ".json") != 0)
		return -1;
	long n = strtol(p, NULL, 10);
	return n > 0 ? n : -1;
}

static bool is_hex64(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

int manifest_read(struct punix_ops *o, const char *dep, const char *stack, long n, struct manifest *m,
		  struct sbuf *err)
{
	memset(m, 0, sizeof(*m));
	char *path = gen_manifest_path(dep, stack, n);
	char *buf;
	size_t len;
	int r = o->read_file(o, path, 64 << 20, &buf, &len);
	if (r < 0) {
		if (r != -ENOENT)
			sbuf_printf(err, "%s: %s", path, strerror(-r));
		free(path);
		return r;
	}
	r = manifest_parse(buf, len, path, stack, n, m, err);
	free(buf);
	free(path);
	return r;
}

int manifest_parse(const char *buf, size_t len, const char *path, const char *stack, long n, struct manifest *m,
		   struct sbuf *err)
{
	memset(m, 0, sizeof(*m));
	int r = 0;
	json_error_t je;
	m->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	const char *why = NULL;
	json_t *paths = NULL, *files = NULL;
	json_int_t gen = 0, format = 0;
	if (!m->root) {
		sbuf_printf(err, "%s: not a valid manifest: %s (line %d)", path, je.text, je.line);
		r = -EBADMSG;
		goto out;
	}
	if (json_unpack(m->root, "{s:I, s:I, s:s, s:s, s:o, s:o}", "format", &format, "generation", &gen, "stack",
			&m->stack, "deployed_at", &m->deployed_at, "store_paths", &paths, "config_files", &files) != 0)
		why = "a required field is missing or has the wrong type";
	else if (format != 1)
		why = "unknown manifest format";
	else if (gen != n)
		why = "its generation number does not match its file name";
	else if (strcmp(m->stack, stack) != 0)
		why = "it belongs to another stack";
	else if (!json_is_array(paths) || !json_is_array(files))
		why = "store_paths and config_files must be lists";
	if (!why) {
		m->generation = n;
		m->npaths = json_array_size(paths);
		m->store_paths = xcalloc(m->npaths + 1, sizeof(*m->store_paths));
		for (size_t i = 0; i < m->npaths && !why; i++) {
			m->store_paths[i] = json_string_value(json_array_get(paths, i));
			if (!m->store_paths[i] || !path_is_normal_abs(m->store_paths[i]))
				why = "a store path is not an absolute path";
			else if (!store_name_valid(strrchr(m->store_paths[i], '/') + 1))
				why = "a store path's name is not a store name";
		}
		m->nfiles = json_array_size(files);
		m->files = xcalloc(m->nfiles + 1, sizeof(*m->files));
		for (size_t i = 0; i < m->nfiles && !why; i++) {
			const char *mode = NULL;
			if (json_unpack(json_array_get(files, i), "{s:s, s:s, s:s}", "path", &m->files[i].path, "sha256",
					&m->files[i].sha256, "mode", &mode) != 0)
				why = "a config file entry lacks path, sha256 or mode";
			else if (!path_is_normal_abs(m->files[i].path))
				why = "a config file path is not absolute and normal";
			else if (!is_hex64(m->files[i].sha256))
				why = "a config file's sha256 is not 64 hex digits";
			else if (strlen(mode) != 4 || strspn(mode, "01234567") != 4)
				why = "a config file's mode is not four octal digits";
			else
				m->files[i].mode = (uint32_t)strtoul(mode, NULL, 8);
		}
	}
	json_t *secret = json_object_get(m->root, "secret_files");
	if (!why && secret && !json_is_array(secret))
		why = "secret_files must be a list";
	if (!why) {
		m->nsecret = json_array_size(secret);
		m->secret_files = xcalloc(m->nsecret + 1, sizeof(*m->secret_files));
		for (size_t i = 0; i < m->nsecret && !why; i++) {
			const char *mode = NULL;
			json_t *e = json_array_get(secret, i);
			if (json_unpack(e, "{s:s, s:s}", "path", &m->secret_files[i].path, "mode", &mode) != 0)
				why = "a secret file entry lacks path or mode";
			else if (!path_is_normal_abs(m->secret_files[i].path))
				why = "a secret file path is not absolute and normal";
			else if (strcmp(mode, "0600") != 0)
				why = "a secret file's mode is not 0600";
			else if (json_object_get(e, "sha256"))
				why = "a secret file must not carry a hash";
			m->secret_files[i].mode = 0600;
			m->secret_files[i].owner = json_string_value(json_object_get(e, "owner"));
		}
	}
	if (why) {
		sbuf_printf(err, "%s: not a valid manifest: %s", path, why);
		r = -EBADMSG;
	}
out:
	if (r < 0)
		manifest_free(m);
	return r;
}

void manifest_free(struct manifest *m)
{
	json_decref(m->root);
	free(m->store_paths);
	free(m->files);
	free(m->secret_files);
	memset(m, 0, sizeof(*m));
}

long current_generation(struct punix_ops *o, const char *dep, const char *stack, struct sbuf *err)
{
	char *dir = stack_dir(dep, stack);
	struct sbuf cur = SBUF_INIT;
	sbuf_printf(&cur, "%s/current", dir);
	char *target;
	int r = o->readlink(o, cur.sb_buf, &target);
	long n = 0;
	if (r == -ENOENT) {
		n = 0;
	} else if (r < 0) {
		sbuf_printf(err, "%s: %s (it should be a symlink to a generation's manifest)", cur.sb_buf, strerror(-r));
		n = -1;
	} else {
		n = parse_gen_name(target);
		if (n < 0)
			sbuf_printf(err, "%s names \"%s\", which is not a generation (gen-NNN.json)", cur.sb_buf, target);
		free(target);
	}
	sbuf_free(&cur);
	free(dir);
	return n;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return x < y ? -1 : x > y;
}

int list_generations(struct punix_ops *o, const char *dep, const char *stack, long **gens, size_t *n)
{
	*gens = NULL;
	*n = 0;
	char *dir = stack_dir(dep, stack);
	char **names;
	size_t nn;
	int r = o->list_dir(o, dir, &names, &nn);
	free(dir);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	VEC(long) v = {0};
	for (size_t i = 0; i < nn; i++) {
		long g = parse_gen_name(names[i]);
		if (g > 0)
			VEC_PUSH(&v, g);
	}
	ops_free_names(names, nn);
	if (v.n > 1)
		qsort(v.v, v.n, sizeof(long), cmp_long);
	*gens = v.v;
	*n = v.n;
	return 0;
}
