/*
 * store_gc.c - what garbage collection needs of the store: one index of
 * every registration, read once, and deleting many paths at once.
 *
 * The index is one listing of .meta/ and one read of each registration:
 * everything a collection decides on (what each path depends on, its size)
 * comes from it, so no registration is read twice in one op.
 *
 * Deleting: every registration first, then one sync of their directory
 * (from then on the paths are merely unregistered, which never looks valid
 * and which recovery removes), then the trees, by descriptors relative to
 * the store's directory (ops.h: remove_children), each in place.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../base/vec.h"
#include "../base/xalloc.h"
#include "store.h"
#include "store_internal.h"

static int index_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_index_entry *)a)->path, ((const struct store_index_entry *)b)->path);
}

int store_index_read(struct store *s, struct store_index *ix, struct sbuf *err)
{
	memset(ix, 0, sizeof(*ix));
	strmap_init(&ix->by_path);
	char **names;
	size_t nn;
	int r = store_list_or_empty(s, s->meta_dir, &names, &nn);
	if (r < 0) {
		sbuf_printf(err, "%s: %s", s->meta_dir, strerror(-r));
		return r;
	}
	VEC(struct store_index_entry) v = {0};
	VEC_RESERVE(&v, nn + 1);
	for (size_t i = 0; i < nn && r == 0; i++) {
		size_t l = strlen(names[i]);
		if (names[i][0] == '.' || l < 6 || strcmp(names[i] + l - 5, ".json") != 0)
			continue; /* temporary files of interrupted registrations */
		names[i][l - 5] = '\0';
		if (!store_name_valid(names[i])) {
			sbuf_printf(err, "%s/%s.json: not the registration of a store path (bad name); the store is corrupt",
				    s->meta_dir, names[i]);
			r = -EBADMSG;
			break;
		}
		struct store_registration g;
		r = store_read_registration(s, names[i], &g, err);
		if (r < 0)
			break;
		struct sbuf p = SBUF_INIT;
		sbuf_printf(&p, "%s/%s", s->root, names[i]);
		struct store_index_entry e = {sbuf_detach(&p, NULL), g.bytes, g.deps, g.ndeps};
		g.deps = NULL;
		g.ndeps = 0;
		store_registration_free(&g);
		VEC_PUSH(&v, e);
	}
	ops_free_names(names, nn);
	ix->v = v.v;
	ix->n = v.n;
	if (r < 0) {
		store_index_free(ix);
		return r;
	}
	if (ix->n > 1)
		qsort(ix->v, ix->n, sizeof(ix->v[0]), index_entry_cmp);
	for (size_t i = 0; i < ix->n; i++)
		strmap_put(&ix->by_path, ix->v[i].path, &ix->v[i]);
	return 0;
}

const struct store_index_entry *store_index_get(const struct store_index *ix, const char *path)
{
	return strmap_get(&ix->by_path, path);
}

void store_index_free(struct store_index *ix)
{
	for (size_t i = 0; i < ix->n; i++) {
		free(ix->v[i].path);
		for (size_t k = 0; k < ix->v[i].ndeps; k++)
			free(ix->v[i].deps[k]);
		free(ix->v[i].deps);
	}
	free(ix->v);
	strmap_free(&ix->by_path);
	memset(ix, 0, sizeof(*ix));
}

int store_delete_many(struct store *s, const char *const *paths, size_t n, size_t *done)
{
	*done = 0;
	if (!n)
		return 0;
	/* Only paths of this store, by their name in it: never where a caller says. */
	const char **names = xcalloc(n, sizeof(*names));
	for (size_t i = 0; i < n; i++) {
		names[i] = store_path_in(s->root, paths[i]);
		if (!names[i]) {
			free(names);
			return -EXDEV;
		}
	}
	/* 1: every registration, then one sync: from here the paths are merely unregistered */
	int r = 0;
	struct sbuf meta = SBUF_INIT;
	for (size_t i = 0; i < n && r == 0; i++) {
		sbuf_reset(&meta);
		sbuf_printf(&meta, "%s/%s.json", s->meta_dir, names[i]);
		r = s->ops->unlink(s->ops, meta.sb_buf);
		if (r == -ENOENT)
			r = 0;
	}
	sbuf_free(&meta);
	if (r == 0)
		r = s->ops->fsync_path(s->ops, s->meta_dir);
	/* 2: the trees, in place; a crash here leaves only unregistered paths, which recovery removes */
	if (r == 0)
		r = ops_remove_children(s->ops, s->root, names, n);
	if (r == 0)
		*done = n;
	free(names);
	return r;
}

int store_empty_trash(struct store *s)
{
	struct sbuf trash = SBUF_INIT;
	sbuf_printf(&trash, "%s/.trash", s->root);
	int r = ops_remove_tree(s->ops, trash.sb_buf);
	sbuf_free(&trash);
	return r;
}
