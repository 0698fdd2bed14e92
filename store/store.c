/*
 * store.c - opening the store, registrations (validity), listing,
 * verification, and cleaning up after interrupted builds.
 *
 * A registration is a small JSON file in .meta/, written with a durable
 * atomic write after the output, built in place, is complete, read-only and
 * fsynced. It records the output's tree hash, so `store verify` can tell an
 * intact path from a tampered one.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/vec.h"
#include "../base/xalloc.h"
#include "store.h"
#include "store_internal.h"

static char *join(const char *a, const char *b)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s", a, b);
	return sbuf_detach(&sb, NULL);
}

int store_open(struct store *s, struct punix_ops *ops, const char *root, const char *log_dir, struct sbuf *err)
{
	memset(s, 0, sizeof(*s));
	s->ops = ops;
	int r = ops_mkdir_p(ops, root, 0755);
	if (r < 0) {
		sbuf_printf(err, "cannot create the store at %s: %s", root, strerror(-r));
		return r;
	}
	r = ops->realpath(ops, root, &s->root);
	if (r < 0) {
		sbuf_printf(err, "%s: %s", root, strerror(-r));
		return r;
	}
	s->meta_dir = join(s->root, ".meta");
	s->lock_dir = join(s->root, ".locks");
	s->build_dir = join(s->root, ".build");
	s->log_dir = xstrdup(log_dir);
	const char *dirs[] = {s->meta_dir, s->lock_dir, s->build_dir, s->log_dir};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		r = ops_mkdir_p(ops, dirs[i], 0755);
		if (r < 0) {
			sbuf_printf(err, "cannot create %s: %s", dirs[i], strerror(-r));
			store_close(s);
			return r;
		}
	}
	return 0;
}

void store_close(struct store *s)
{
	free(s->root);
	free(s->meta_dir);
	free(s->lock_dir);
	free(s->build_dir);
	free(s->log_dir);
	memset(s, 0, sizeof(*s));
}

char *store_meta_path(const struct store *s, const char *path)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s.json", s->meta_dir, store_path_name(path));
	return sbuf_detach(&sb, NULL);
}

char *store_lock_path(const struct store *s, const char *path)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s.lock", s->lock_dir, store_path_name(path));
	return sbuf_detach(&sb, NULL);
}

bool store_is_valid(struct store *s, const char *path)
{
	char *meta = store_meta_path(s, path);
	struct ops_stat st;
	bool ok = s->ops->stat(s->ops, meta, 0, &st) == 0 && st.type == OPS_FT_REG &&
		  s->ops->stat(s->ops, path, 0, &st) == 0;
	free(meta);
	return ok;
}

int store_register(struct store *s, const char *path, const unsigned char nar[32], uint64_t bytes,
		   const char *const *deps, size_t ndeps)
{
	char hex[65];
	store_hex(nar, 32, hex);
	json_t *o = json_object();
	json_object_set_new(o, "format", json_integer(1));
	json_object_set_new(o, "path", json_string(path));
	json_object_set_new(o, "nar_sha256", json_string(hex));
	json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
	json_t *d = json_array();
	for (size_t i = 0; i < ndeps; i++)
		json_array_append_new(d, json_string(deps[i]));
	json_object_set_new(o, "deps", d);
	json_object_set_new(o, "registered", json_integer((json_int_t)time(NULL)));
	char *text = json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(2));
	json_decref(o);
	if (!text)
		return -ENOMEM;
	char *meta = store_meta_path(s, path);
	size_t len = strlen(text);
	text[len] = '\n';
	int r = ops_write_atomic(s->ops, meta, text, len + 1, 0644);
	free(meta);
	free(text);
	return r;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_entry *)a)->path, ((const struct store_entry *)b)->path);
}

/* Reads one registration; a malformed one is reported, not trusted. */
static int read_meta(struct store *s, const char *file, struct store_entry *e, struct sbuf *err)
{
	char *buf;
	size_t len;
	int r = s->ops->read_file(s->ops, file, 1 << 20, &buf, &len);
	if (r < 0) {
		sbuf_printf(err, "%s: %s", file, strerror(-r));
		return r;
	}
	json_error_t je;
	json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	free(buf);
	const char *path = NULL, *nar = NULL;
	json_int_t bytes = -1;
	if (!o || json_unpack(o, "{s:s, s:s, s:I}", "path", &path, "nar_sha256", &nar, "bytes", &bytes) != 0 ||
	    strlen(nar) != 64 || bytes < 0) {
		sbuf_printf(err, "%s: not a valid registration%s%s", file, o ? "" : ": ", o ? "" : je.text);
		json_decref(o);
		return -EINVAL;
	}
	e->path = xstrdup(path);
	e->nar_sha256 = xstrdup(nar);
	e->bytes = (uint64_t)bytes;
	json_decref(o);
	return 0;
}

int store_list(struct store *s, struct store_entry **out, size_t *n, struct sbuf *err)
{
	char **names;
	size_t nn;
	int r = s->ops->list_dir(s->ops, s->meta_dir, &names, &nn);
	if (r < 0) {
		sbuf_printf(err, "%s: %s", s->meta_dir, strerror(-r));
		return r;
	}
	VEC(struct store_entry) v = {0};
	for (size_t i = 0; i < nn; i++) {
		size_t l = strlen(names[i]);
		if (names[i][0] == '.' || l < 6 || strcmp(names[i] + l - 5, ".json") != 0)
			continue; /* temporary files of interrupted registrations */
		char *file = join(s->meta_dir, names[i]);
		struct store_entry e = {0};
		r = read_meta(s, file, &e, err);
		free(file);
		if (r < 0) {
			ops_free_names(names, nn);
			store_entries_free(v.v, v.n);
			return r;
		}
		VEC_PUSH(&v, e);
	}
	ops_free_names(names, nn);
	if (v.n > 1)
		qsort(v.v, v.n, sizeof(v.v[0]), entry_cmp);
	*out = v.v;
	*n = v.n;
	return 0;
}

void store_entries_free(struct store_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].path);
		free(e[i].nar_sha256);
	}
	free(e);
}

int store_verify_entry(struct store *s, const struct store_entry *e)
{
	struct ops_stat st;
	if (s->ops->stat(s->ops, e->path, 0, &st) == -ENOENT)
		return 2;
	unsigned char h[32];
	uint64_t bytes;
	int r = store_hash_tree(s->ops, e->path, h, &bytes);
	if (r == -ENOENT)
		return 2;
	if (r < 0)
		return r;
	char hex[65];
	store_hex(h, 32, hex);
	return strcmp(hex, e->nar_sha256) == 0 ? 0 : 1;
}

/* Takes the derivation lock of name without waiting; -EWOULDBLOCK if busy. */
static int try_lock_name(struct store *s, const char *name, int *h)
{
	char *lock = store_lock_path(s, name);
	int r = s->ops->lock(s->ops, lock, 1, 0, h);
	free(lock);
	return r;
}

int store_clean_leftovers(struct store *s, bool dry, void (*report)(void *arg, const char *what, const char *path),
			  void *arg)
{
	char **names;
	size_t n;
	/* Build directories: "<name>-<random>"; their derivation lock tells if live. */
	int r = s->ops->list_dir(s->ops, s->build_dir, &names, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		char *dash = strrchr(names[i], '-');
		char *name = dash ? xstrndup(names[i], (size_t)(dash - names[i])) : xstrdup(names[i]);
		int h;
		if (try_lock_name(s, name, &h) == 0) {
			char *dir = join(s->build_dir, names[i]);
			r = dry ? 0 : ops_remove_tree(s->ops, dir);
			if (r == 0 && report)
				report(arg, "interrupted build", dir);
			free(dir);
			s->ops->unlock(s->ops, h);
		}
		free(name);
	}
	ops_free_names(names, n);
	if (r < 0)
		return r;

	/*
	 * Outputs whose registration never got written: a build killed while
	 * its command wrote the path, or before it was registered.
	 */
	r = s->ops->list_dir(s->ops, s->root, &names, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		if (names[i][0] == '.')
			continue;
		char *path = join(s->root, names[i]);
		int h;
		if (!store_is_valid(s, path) && try_lock_name(s, names[i], &h) == 0) {
			if (!store_is_valid(s, path)) {
				r = dry ? 0 : ops_remove_tree(s->ops, path);
				if (r == 0 && report)
					report(arg, "unregistered path", path);
			}
			s->ops->unlock(s->ops, h);
		}
		free(path);
	}
	ops_free_names(names, n);
	if (r < 0)
		return r;

	/* Temporary files of registrations cut short. */
	r = s->ops->list_dir(s->ops, s->meta_dir, &names, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		const char *tmp = strstr(names[i], ".json.tmp-");
		if (names[i][0] != '.' || !tmp)
			continue;
		/* ".<name>.json.tmp-<pid>": skip it while <name> is being built */
		char *name = xstrndup(names[i] + 1, (size_t)(tmp - names[i] - 1));
		int h;
		if (try_lock_name(s, name, &h) == 0) {
			char *file = join(s->meta_dir, names[i]);
			r = dry ? 0 : s->ops->unlink(s->ops, file);
			if (r == -ENOENT)
				r = 0;
			else if (r == 0 && report)
				report(arg, "temporary registration", file);
			free(file);
			s->ops->unlock(s->ops, h);
		}
		free(name);
	}
	ops_free_names(names, n);
	return r;
}

int store_lock(struct store *s, bool exclusive, int *h)
{
	char *path = join(s->root, ".lock");
	int r = s->ops->lock(s->ops, path, exclusive, 1, h);
	free(path);
	return r;
}

void store_unlock(struct store *s, int h)
{
	s->ops->unlock(s->ops, h);
}

int store_path_deps(struct store *s, const char *path, char ***deps, size_t *n)
{
	*deps = NULL;
	*n = 0;
	char *meta = store_meta_path(s, path), *buf;
	size_t len;
	int r = s->ops->read_file(s->ops, meta, 1 << 20, &buf, &len);
	free(meta);
	if (r < 0)
		return r;
	json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	json_t *d = json_object_get(o, "deps");
	if (!o || !json_is_array(d)) {
		json_decref(o);
		return -EBADMSG;
	}
	char **v = xcalloc(json_array_size(d) + 1, sizeof(*v));
	for (size_t i = 0; i < json_array_size(d); i++) {
		const char *x = json_string_value(json_array_get(d, i));
		if (!x) {
			for (size_t k = 0; k < i; k++)
				free(v[k]);
			free(v);
			json_decref(o);
			return -EBADMSG;
		}
		v[i] = xstrdup(x);
	}
	*n = json_array_size(d);
	*deps = v;
	json_decref(o);
	return 0;
}

int store_delete_many(struct store *s, const char *const *paths, size_t n, size_t *done)
{
	*done = 0;
	/* 1: every registration, then one sync: from here the paths are merely unregistered */
	for (size_t i = 0; i < n; i++) {
		char *meta = store_meta_path(s, paths[i]);
		int r = s->ops->unlink(s->ops, meta);
		free(meta);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	int r = n ? s->ops->fsync_path(s->ops, s->meta_dir) : 0;
	if (r < 0)
		return r;
	/* 2: out of sight into the trash, then gone; a crash here leaves only what recovery removes */
	char *trash = join(s->root, ".trash");
	r = ops_mkdir_p(s->ops, trash, 0700);
	for (size_t i = 0; i < n && r == 0; i++) {
		struct sbuf to = SBUF_INIT;
		sbuf_printf(&to, "%s/%s", trash, store_path_name(paths[i]));
		r = ops_remove_tree(s->ops, to.sb_buf);
		if (r == 0) {
			r = s->ops->rename(s->ops, paths[i], to.sb_buf);
			if (r == -ENOENT)
				r = 0;
		}
		sbuf_free(&to);
		if (r == 0)
			(*done)++;
	}
	if (r == 0)
		r = ops_remove_tree(s->ops, trash);
	free(trash);
	return r;
}

int store_empty_trash(struct store *s)
{
	char *trash = join(s->root, ".trash");
	int r = ops_remove_tree(s->ops, trash);
	free(trash);
	return r;
}
