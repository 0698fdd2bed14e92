/*
 * store_format.c - the bytes of the store that come back from disk: the
 * store's marker and its registrations. Pure functions (no effects), so the
 * fuzzers can call them on any bytes.
 *
 * Everything read here is treated as hostile. A registration names its path
 * as <store dir>/<name>; a registration whose path is anywhere else, whose
 * name is not a store name, or whose dependencies lie outside the store, is
 * corrupt: the store names paths by their name within itself, and never
 * deletes, verifies or pushes a path because a file says where it is.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../base/xalloc.h"
#include "store.h"

/* Nix's base32 alphabet (no e, o, u, t), as store_base32 writes it. */
static const char base32_chars[] = "0123456789abcdfghijklmnpqrsvwxyz";

bool store_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n < STORE_HASH_CHARS + 2 || n > 255 || name[STORE_HASH_CHARS] != '-')
		return false;
	for (size_t i = 0; i < STORE_HASH_CHARS; i++)
		if (!name[i] || !strchr(base32_chars, name[i]))
			return false;
	/* the rest: what PCL allows in names and versions, never a separator */
	for (size_t i = STORE_HASH_CHARS + 1; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '.' || c == '_' || c == '+'))
			return false;
	}
	return true;
}

const char *store_path_in(const char *store_dir, const char *path)
{
	size_t n = strlen(store_dir);
	if (strncmp(path, store_dir, n) != 0 || path[n] != '/')
		return NULL;
	const char *name = path + n + 1;
	return store_name_valid(name) ? name : NULL;
}

char *store_marker_encode(const char *store_dir, size_t *len)
{
	json_t *o = json_pack("{s:i, s:s}", "punix_store", STORE_FORMAT, "store_dir", store_dir);
	char *text = json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(2));
	json_decref(o);
	size_t l = strlen(text);
	text = xrealloc(text, l + 2);
	text[l] = '\n';
	text[l + 1] = '\0';
	*len = l + 1;
	return text;
}

int store_marker_parse(const char *buf, size_t len, char **store_dir, struct sbuf *err)
{
	json_error_t je;
	json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	json_int_t format = 0;
	const char *dir = NULL;
	size_t dlen = 0;
	int r = 0;
	if (!o || json_unpack(o, "{s:I, s:s%}", "punix_store", &format, "store_dir", &dir, &dlen) != 0) {
		sbuf_printf(err, "not a store marker");
		r = -EBADMSG;
	} else if (format != STORE_FORMAT) {
		sbuf_printf(err, "a store of format %lld, and this punix knows format %d", (long long)format,
			    STORE_FORMAT);
		r = -EPROTO;
	} else if (dir[0] != '/' || strlen(dir) != dlen || strpbrk(dir, "\n\r")) {
		sbuf_printf(err, "the marker's store_dir is not an absolute path");
		r = -EBADMSG;
	} else {
		*store_dir = xstrdup(dir);
	}
	json_decref(o);
	return r;
}

void store_registration_free(struct store_registration *g)
{
	free(g->nar_sha256);
	for (size_t i = 0; i < g->ndeps; i++)
		free(g->deps[i]);
	free(g->deps);
	memset(g, 0, sizeof(*g));
}

int store_registration_parse(const char *buf, size_t len, const char *store_dir, const char *name,
			     struct store_registration *g, struct sbuf *err)
{
	memset(g, 0, sizeof(*g));
	json_error_t je;
	json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	const char *path = NULL, *nar = NULL, *why = NULL;
	json_int_t bytes = -1;
	json_t *deps = NULL;
	if (!o) {
		sbuf_printf(err, "not a valid registration: %s", je.text);
		return -EBADMSG;
	}
	if (json_unpack(o, "{s:s, s:s, s:I, s:o}", "path", &path, "nar_sha256", &nar, "bytes", &bytes, "deps",
			&deps) != 0)
		why = "path, nar_sha256, bytes or deps is missing or has the wrong type";
	else if (strlen(nar) != 64 || strspn(nar, "0123456789abcdef") != 64)
		why = "nar_sha256 is not 64 hex digits";
	else if (bytes < 0)
		why = "bytes is negative";
	else if (!json_is_array(deps))
		why = "deps is not a list";
	if (why) {
		sbuf_printf(err, "not a valid registration: %s", why);
		json_decref(o);
		return -EBADMSG;
	}
	const char *in = store_path_in(store_dir, path);
	if (!in || strcmp(in, name) != 0) {
		sbuf_printf(err, "corrupt registration: it names %.200s, which is not %s/%s", path, store_dir, name);
		json_decref(o);
		return -EBADMSG;
	}
	g->ndeps = json_array_size(deps);
	g->deps = xcalloc(g->ndeps + 1, sizeof(*g->deps));
	for (size_t i = 0; i < g->ndeps; i++) {
		const char *d = json_string_value(json_array_get(deps, i));
		if (!d || !store_path_in(store_dir, d)) {
			sbuf_printf(err, "corrupt registration: dependency %.200s is not a path of the store %s",
				    d ? d : "(not a string)", store_dir);
			g->ndeps = i;
			store_registration_free(g);
			json_decref(o);
			return -EBADMSG;
		}
		g->deps[i] = xstrdup(d);
	}
	g->nar_sha256 = xstrdup(nar);
	g->bytes = (uint64_t)bytes;
	json_decref(o);
	return 0;
}
