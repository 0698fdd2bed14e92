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

/*
 * A directory a store may be made in: it holds nothing but what a store
 * holds (a store made before stores had markers, or one another process is
 * making right now: both write the same marker, atomically).
 */
static int only_store_entries(struct punix_ops *o, const char *root)
{
	static const char *const ours[] = {".meta", ".locks", ".build", ".lock", ".trash"};
	char **names;
	size_t n;
	int r = o->list_dir(o, root, &names, &n);
	if (r < 0)
		return r;
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++) {
		bool known = store_name_valid(names[i]) || !strncmp(names[i], "." STORE_MARKER ".tmp-", sizeof("." STORE_MARKER ".tmp-") - 1);
		for (size_t k = 0; k < sizeof(ours) / sizeof(ours[0]) && !known; k++)
			known = !strcmp(names[i], ours[k]);
		ok = known;
	}
	ops_free_names(names, n);
	return ok;
}

/* Checks (or, with create, writes) the marker that says root is a store. */
static int check_marker(struct store *s, int flags, struct sbuf *err)
{
	struct punix_ops *o = s->ops;
	char *marker = join(s->root, STORE_MARKER), *buf = NULL;
	size_t len;
	int r = o->read_file(o, marker, 4096, &buf, &len);
	if (r == -ENOENT && (flags & STORE_CREATE)) {
		r = only_store_entries(o, s->root);
		if (r > 0) {
			char *text = store_marker_encode(s->root, &len);
			r = ops_write_atomic(o, marker, text, len, 0644);
			free(text);
			if (r < 0)
				sbuf_printf(err, "cannot mark %s as a store: %s: %s", s->real, marker, strerror(-r));
		} else if (r == 0) {
			sbuf_printf(err, "%s is not empty and is not a Punix store (it has no %s); refusing to use it: "
					 "choose another --store-root",
				    s->real, STORE_MARKER);
			r = -ENOTDIR;
		} else {
			sbuf_printf(err, "%s: %s", s->real, strerror(-r));
		}
		free(marker);
		return r < 0 ? r : 0;
	}
	if (r == -ENOENT) {
		sbuf_printf(err, "%s is not a Punix store (it has no %s marker); refusing to touch it", s->real,
			    STORE_MARKER);
		r = -ENOTDIR;
	} else if (r < 0) {
		sbuf_printf(err, "%s/%s: %s", s->real, STORE_MARKER, strerror(-r));
	} else {
		char *dir = NULL;
		struct sbuf why = SBUF_INIT;
		r = store_marker_parse(buf, len, &dir, &why);
		if (r < 0)
			sbuf_printf(err, "%s/%s: %s; refusing to touch the store", s->real, STORE_MARKER, why.sb_buf);
		else if (strcmp(dir, s->root) != 0) {
			sbuf_printf(err, "%s is the store of %s (its marker says so), not of %s: its paths would not "
					 "match; refusing to touch it",
				    s->real, dir, s->root);
			r = -EXDEV;
		}
		free(dir);
		sbuf_free(&why);
	}
	free(buf);
	free(marker);
	return r;
}

/*
 * Makes a new store at once: a directory with its marker is made under a
 * temporary name beside root and renamed into place, so no moment shows a
 * store directory without its marker (a crash leaves only the temporary
 * sibling). If another process made root first, its store is used.
 */
static int create_store(struct punix_ops *o, const char *root)
{
	char *parent = ops_dirname(root), *tmp = ops_tmp_name(root), *marker = join(tmp, STORE_MARKER);
	int r = ops_mkdir_p(o, parent, 0755);
	if (r == 0)
		r = o->mkdir(o, tmp, 0755);
	if (r == 0) {
		size_t len;
		char *text = store_marker_encode(root, &len);
		r = ops_write_atomic(o, marker, text, len, 0644);
		free(text);
		if (r == 0)
			r = o->chmod(o, tmp, 0755); /* exactly, whatever the umask */
		if (r == 0)
			r = o->rename(o, tmp, root);
		if (r == -EEXIST || r == -ENOTEMPTY)
			r = 0; /* made by another process meanwhile */
		if (r == 0)
			r = o->fsync_path(o, parent);
		ops_remove_tree(o, tmp); /* gone after a rename; ours otherwise */
	}
	free(parent);
	free(tmp);
	free(marker);
	return r;
}

/* A directory holding nothing but a marker or a marker's temporary: a store's creation cut short. */
static bool creation_leftover(struct punix_ops *o, const char *dir)
{
	char **names;
	size_t n;
	if (o->list_dir(o, dir, &names, &n) < 0)
		return false;
	bool ours = true;
	for (size_t i = 0; i < n && ours; i++)
		ours = !strcmp(names[i], STORE_MARKER) ||
		       !strncmp(names[i], "." STORE_MARKER ".tmp-", sizeof("." STORE_MARKER ".tmp-") - 1);
	ops_free_names(names, n);
	return ours;
}

int store_sweep_creation(struct punix_ops *o, const char *root)
{
	char *parent = ops_dirname(root);
	const char *base = strrchr(root, '/') ? strrchr(root, '/') + 1 : root;
	struct sbuf prefix = SBUF_INIT;
	sbuf_printf(&prefix, OPS_TMP_PREFIX_FMT, base);
	char **names;
	size_t n;
	int r = o->list_dir(o, parent, &names, &n);
	if (r == -ENOENT)
		r = 0, n = 0, names = NULL;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (strncmp(names[i], prefix.sb_buf, prefix.sb_len) != 0 ||
		    strlen(names[i]) != prefix.sb_len + OPS_TMP_SUFFIX_LEN)
			continue;
		char *dir = join(parent, names[i]);
		if (creation_leftover(o, dir))
			r = ops_remove_tree(o, dir);
		free(dir);
	}
	ops_free_names(names, n);
	sbuf_free(&prefix);
	free(parent);
	return r;
}

/* What builds into this store are for: the machine its table reaches. */
static void set_system(struct store *s)
{
	char arch[64] = "";
	if (s->ops->arch(s->ops, arch, sizeof(arch)) < 0)
		arch[0] = '\0';
	store_system_of(arch, s->system, sizeof(s->system));
}

int store_open(struct store *s, struct punix_ops *ops, const char *root, const char *real_hint,
	       const char *log_dir, int flags, struct sbuf *err)
{
	memset(s, 0, sizeof(*s));
	s->ops = ops;
	set_system(s);
	int r;
	struct ops_stat st;
	if ((flags & STORE_CREATE) && ops->stat(ops, root, 0, &st) == -ENOENT) {
		r = create_store(ops, root);
		if (r < 0) {
			sbuf_printf(err, "cannot create the store at %s: %s", real_hint ? real_hint : root,
				    strerror(-r));
			return r;
		}
	}
	/* The local store's root is resolved once: a symlinked --store-root names
	 * its target. Through a rebased table, root is already canonical. */
	r = ops->realpath(ops, root, &s->root);
	if (r == -ENOTSUP)
		s->root = xstrdup(root), r = 0;
	if (r < 0) {
		if (r == -ENOENT)
			sbuf_printf(err, "there is no store at %s (nothing was built there)", real_hint ? real_hint : root);
		else
			sbuf_printf(err, "%s: %s", real_hint ? real_hint : root, strerror(-r));
		return r;
	}
	s->real = xstrdup(real_hint ? real_hint : s->root);
	r = ops->stat(ops, s->root, 0, &st);
	if (r == 0 && st.type != OPS_FT_DIR)
		r = -ENOTDIR;
	if (r < 0) {
		sbuf_printf(err, "%s: %s", s->real, strerror(-r));
		store_close(s);
		return r;
	}
	r = check_marker(s, flags, err);
	if (r < 0) {
		store_close(s);
		return r;
	}
	s->meta_dir = join(s->root, ".meta");
	s->lock_dir = join(s->root, ".locks");
	s->build_dir = join(s->root, ".build");
	s->log_dir = log_dir ? xstrdup(log_dir) : NULL;
	const char *dirs[] = {s->meta_dir, s->lock_dir, s->build_dir, s->log_dir};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && (flags & STORE_CREATE); i++) {
		r = dirs[i] ? ops_mkdir_p(ops, dirs[i], 0755) : 0;
		if (r < 0) {
			sbuf_printf(err, "cannot create %s: %s", dirs[i], strerror(-r));
			store_close(s);
			return r;
		}
	}
	return 0;
}

void store_view(struct store *s, struct punix_ops *ops, const char *root)
{
	memset(s, 0, sizeof(*s));
	s->ops = ops;
	set_system(s);
	s->root = xstrdup(root);
	s->real = xstrdup(root);
	s->meta_dir = join(root, ".meta");
	s->lock_dir = join(root, ".locks");
	s->build_dir = join(root, ".build");
}

void store_close(struct store *s)
{
	free(s->root);
	free(s->real);
	free(s->meta_dir);
	free(s->lock_dir);
	free(s->build_dir);
	free(s->log_dir);
	free(s->cache_dir);
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
	if (!store_path_in(s->root, path))
		return false;
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
	json_object_set_new(o, "registered", json_integer((json_int_t)s->ops->now(s->ops)));
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

/*
 * Reads and validates the registration of the path named name; a malformed
 * one, or one that names a path outside this store, is reported, never
 * trusted.
 */
int store_read_registration(struct store *s, const char *name, struct store_registration *g, struct sbuf *err)
{
	struct sbuf file = SBUF_INIT;
	sbuf_printf(&file, "%s/%s.json", s->meta_dir, name);
	char *buf;
	size_t len;
	int r = s->ops->read_file(s->ops, file.sb_buf, 1 << 20, &buf, &len);
	if (r < 0) {
		sbuf_printf(err, "%s: %s", file.sb_buf, strerror(-r));
		sbuf_free(&file);
		return r;
	}
	struct sbuf why = SBUF_INIT;
	r = store_registration_parse(buf, len, s->root, name, g, &why);
	free(buf);
	if (r < 0)
		sbuf_printf(err, "%s: %s", file.sb_buf, why.sb_buf);
	sbuf_free(&why);
	sbuf_free(&file);
	return r;
}

/* A store directory not made yet (a store whose creation was cut short) lists as empty. */
int store_list_or_empty(struct store *s, const char *dir, char ***names, size_t *n)
{
	int r = s->ops->list_dir(s->ops, dir, names, n);
	if (r == -ENOENT) {
		*names = NULL;
		*n = 0;
		return 0;
	}
	return r;
}

int store_list(struct store *s, struct store_entry **out, size_t *n, struct sbuf *err)
{
	char **names;
	size_t nn;
	int r = store_list_or_empty(s, s->meta_dir, &names, &nn);
	if (r < 0) {
		sbuf_printf(err, "%s: %s", s->meta_dir, strerror(-r));
		return r;
	}
	VEC(struct store_entry) v = {0};
	for (size_t i = 0; i < nn; i++) {
		size_t l = strlen(names[i]);
		if (names[i][0] == '.' || l < 6 || strcmp(names[i] + l - 5, ".json") != 0)
			continue; /* temporary files of interrupted registrations */
		char *name = xstrndup(names[i], l - 5);
		struct store_registration g;
		struct store_entry e = {0};
		if (!store_name_valid(name)) {
			sbuf_printf(err, "%s/%s: not the registration of a store path (bad name); the store is corrupt",
				    s->meta_dir, names[i]);
			r = -EBADMSG;
		} else {
			r = store_read_registration(s, name, &g, err);
		}
		if (r < 0) {
			free(name);
			ops_free_names(names, nn);
			store_entries_free(v.v, v.n);
			return r;
		}
		e.path = join(s->root, name);
		e.nar_sha256 = g.nar_sha256;
		g.nar_sha256 = NULL;
		e.bytes = g.bytes;
		store_registration_free(&g);
		free(name);
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
	if (!dry) {
		int sr = store_sweep_creation(s->ops, s->root);
		if (sr < 0)
			return sr;
	}
	char **names;
	size_t n;
	/* Build directories: "<name>-<random>"; their derivation lock tells if live. */
	int r = store_list_or_empty(s, s->build_dir, &names, &n);
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
		if (!store_name_valid(names[i]))
			continue; /* the marker, .meta, .locks, or nothing of ours: never removed */
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
	/*
	 * Trees that were arriving (host mode's push, store_receive.c) or being
	 * added (store_add_tree's callers) when they were cut short:
	 * ".<name>.tmp-<random>", written under the lock of <name>.
	 */
	for (size_t i = 0; i < n && r >= 0; i++) {
		const char *tmp = strstr(names[i], ".tmp-");
		if (names[i][0] != '.' || !tmp || tmp == names[i])
			continue;
		char *name = xstrndup(names[i] + 1, (size_t)(tmp - names[i] - 1));
		int h;
		if ((store_name_valid(name) || !strcmp(name, "punix-program")) && try_lock_name(s, name, &h) == 0) {
			char *path = join(s->root, names[i]);
			r = dry ? 0 : ops_remove_tree(s->ops, path);
			if (r == 0 && report)
				report(arg, "interrupted transfer", path);
			free(path);
			s->ops->unlock(s->ops, h);
		}
		free(name);
	}
	ops_free_names(names, n);
	if (r < 0)
		return r;

	/* Temporary files of build logs cut short: ".<name>.log.tmp-<random>" */
	r = s->log_dir ? s->ops->list_dir(s->ops, s->log_dir, &names, &n) : -ENOENT;
	if (r == -ENOENT)
		r = 0, n = 0, names = NULL;
	for (size_t i = 0; i < n && r >= 0; i++) {
		const char *tmp = strstr(names[i], ".log.tmp-");
		if (names[i][0] != '.' || !tmp)
			continue;
		char *name = xstrndup(names[i] + 1, (size_t)(tmp - names[i] - 1));
		int h;
		if (store_name_valid(name) && try_lock_name(s, name, &h) == 0) {
			char *file = join(s->log_dir, names[i]);
			r = dry ? 0 : s->ops->unlink(s->ops, file);
			if (r == -ENOENT)
				r = 0;
			else if (r == 0 && report)
				report(arg, "temporary build log", file);
			free(file);
			s->ops->unlock(s->ops, h);
		}
		free(name);
	}
	ops_free_names(names, n);
	if (r < 0)
		return r;

	/* Temporary files of registrations cut short. */
	r = store_list_or_empty(s, s->meta_dir, &names, &n);
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
	const char *name = store_path_in(s->root, path);
	if (!name)
		return -EXDEV;
	struct store_registration g;
	struct sbuf err = SBUF_INIT;
	int r = store_read_registration(s, name, &g, &err);
	sbuf_free(&err);
	if (r < 0)
		return r;
	*deps = g.deps;
	*n = g.ndeps;
	g.deps = NULL;
	g.ndeps = 0;
	store_registration_free(&g);
	return 0;
}
