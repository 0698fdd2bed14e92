/*
 * store_receive.c - a store path arriving from elsewhere (host mode's push,
 * docs/hosts.md): its entries are written into an unpredictable temporary
 * beside it, then the whole tree is hashed and checked against the
 * registration that came with it, made read-only and durable, renamed into
 * place and registered last, exactly as a build's output is. A tree whose
 * hash differs, an entry that is not a safe relative name, a dependency
 * that is not valid here: refused, the temporary removed, nothing valid
 * changed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../base/xalloc.h"
#include "store.h"
#include "store_internal.h"

void store_recv_init(struct store_recv *rv)
{
	memset(rv, 0, sizeof(*rv));
	rv->lock_h = -1;
	rv->fd = -1;
}

static void drop(struct store_recv *rv)
{
	struct punix_ops *o = rv->s ? rv->s->ops : NULL;
	if (o && rv->fd >= 0)
		o->close(o, rv->fd);
	if (o && rv->tmp)
		ops_remove_tree(o, rv->tmp);
	if (o && rv->lock_h >= 0)
		o->unlock(o, rv->lock_h);
	free(rv->path);
	free(rv->tmp);
	free(rv->cur);
	store_registration_free(&rv->reg);
	sbuf_free(&rv->leaves);
	struct store *s = rv->s;
	store_recv_init(rv);
	rv->s = s;
}

void store_recv_abort(struct store_recv *rv)
{
	drop(rv);
}

int store_recv_begin(struct store *s, const char *path, const char *reg, size_t reg_len, struct store_recv *rv,
		     struct sbuf *err)
{
	store_recv_init(rv);
	rv->s = s;
	const char *name = store_path_in(s->root, path);
	if (!name) {
		sbuf_printf(err, "'%s' is not a path of the store %s", path, s->root);
		return -EINVAL;
	}
	struct sbuf why = SBUF_INIT;
	if (store_registration_parse(reg, reg_len, s->root, name, &rv->reg, &why) < 0) {
		sbuf_printf(err, "the registration sent for %s: %s", path, why.sb_buf);
		sbuf_free(&why);
		return -EBADMSG;
	}
	sbuf_free(&why);
	rv->path = xstrdup(path);
	/* one writer of a name at a time, as builders of it (the store's lock of that name) */
	char *lock = store_lock_path(s, path);
	int r = s->ops->lock(s->ops, lock, 1, 1, &rv->lock_h);
	free(lock);
	if (r < 0) {
		rv->lock_h = -1;
		sbuf_printf(err, "locking %s: %s", path, ops_strerror(r));
		drop(rv);
		return r;
	}
	if (store_is_valid(s, path)) {
		rv->skip = true; /* here already: what follows of it is read and dropped */
		return 1;
	}
	rv->tmp = ops_tmp_name(path);
	return 0;
}

/*
 * Whether rel lies below an entry that is not a directory (a symlink, above
 * all: writing through it would leave the store, since the entries are
 * written beneath the host's root, not the store's).
 */
static bool below_a_leaf(const struct store_recv *rv, const char *rel)
{
	const char *l = sbuf_str(&rv->leaves);
	while (*l) {
		size_t n = strcspn(l, "\n");
		if ((n == 0 && *rel) || (n && !strncmp(rel, l, n) && rel[n] == '/'))
			return true;
		l += n + (l[n] == '\n');
	}
	return false;
}

/* A relative name of safe components: no "", ".", "..", no leading or doubled '/'. */
static bool rel_ok(const char *rel)
{
	if (!*rel)
		return true;
	const char *p = rel;
	for (;;) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!p[n])
			return true;
		p += n + 1;
	}
}

int store_recv_entry(struct store_recv *rv, char kind, const char *rel, const char *link, uint64_t size,
		     struct sbuf *err)
{
	if (rv->skip)
		return 0;
	struct punix_ops *o = rv->s->ops;
	if (rv->left) {
		sbuf_printf(err, "%s: an entry began before the %llu bytes left of %s/%s arrived", rv->path,
			    (unsigned long long)rv->left, rv->path, rv->cur ? rv->cur : "");
		return -EBADMSG;
	}
	if (rv->fd >= 0) {
		int r = o->close(o, rv->fd);
		rv->fd = -1;
		if (r < 0)
			return r;
	}
	if (!rel_ok(rel) || (!*rel) != (rv->nentries == 0)) {
		sbuf_printf(err, "%s: entry '%s' is not a safe name below it (or the tree does not begin with itself)",
			    rv->path, rel);
		return -EBADMSG;
	}
	if (below_a_leaf(rv, rel)) {
		sbuf_printf(err, "%s: entry '%s' is below a file or symlink of the same tree", rv->path, rel);
		return -EBADMSG;
	}
	rv->nentries++;
	if (kind != 'd')
		sbuf_printf(&rv->leaves, "%s\n", rel);
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p, "%s%s%s", rv->tmp, *rel ? "/" : "", rel);
	int r;
	switch (kind) {
	case 'd': r = o->mkdir(o, p.sb_buf, 0755); break;
	case 'l':
		r = link && *link ? o->symlink(o, link, p.sb_buf) : -EBADMSG;
		break;
	case 'f':
	case 'x':
		r = o->open(o, p.sb_buf, OPS_O_WRONLY | OPS_O_CREAT | OPS_O_EXCL | OPS_O_NOFOLLOW,
			    kind == 'x' ? 0555 : 0444, &rv->fd);
		if (r == 0) {
			r = o->fchmod(o, rv->fd, kind == 'x' ? 0555 : 0444);
			rv->left = size;
			free(rv->cur);
			rv->cur = xstrdup(rel);
		}
		break;
	default: r = -EBADMSG;
	}
	if (r < 0)
		sbuf_printf(err, "%s: writing entry '%s' (%c): %s", rv->path, rel, kind, ops_strerror(r));
	sbuf_free(&p);
	return r;
}

int store_recv_data(struct store_recv *rv, const void *buf, size_t n, struct sbuf *err)
{
	if (rv->skip)
		return 0;
	if (rv->fd < 0 || n > rv->left) {
		sbuf_printf(err, "%s: %zu bytes arrived where no file expects them", rv->path, n);
		return -EBADMSG;
	}
	struct punix_ops *o = rv->s->ops;
	const char *p = buf;
	while (n) {
		ssize_t w = o->write(o, rv->fd, p, n);
		if (w <= 0) {
			sbuf_printf(err, "%s: writing %s: %s", rv->path, rv->cur, ops_strerror(w < 0 ? (int)w : -EIO));
			return w < 0 ? (int)w : -EIO;
		}
		p += w;
		n -= (size_t)w;
		rv->left -= (uint64_t)w;
	}
	return 0;
}

static int dirs_read_only(struct punix_ops *o, const char *path);

static int ro_child(struct punix_ops *o, const char *child, const char *name, void *arg)
{
	(void)name;
	(void)arg;
	return dirs_read_only(o, child);
}

static int dirs_read_only(struct punix_ops *o, const char *path)
{
	struct ops_stat st;
	int r = o->stat(o, path, 0, &st);
	if (r < 0 || st.type != OPS_FT_DIR)
		return r;
	r = ops_each_child(o, path, ro_child, NULL);
	return r < 0 ? r : o->chmod(o, path, 0555);
}

int store_recv_commit(struct store_recv *rv, struct sbuf *err)
{
	if (rv->skip) {
		drop(rv);
		return 1;
	}
	struct store *s = rv->s;
	struct punix_ops *o = s->ops;
	int r = 0;
	if (rv->left) {
		sbuf_printf(err, "%s: %s ended %llu bytes short", rv->path, rv->cur, (unsigned long long)rv->left);
		r = -EBADMSG;
	}
	if (r == 0 && rv->nentries == 0) {
		sbuf_printf(err, "%s: no entries arrived", rv->path);
		r = -EBADMSG;
	}
	if (r == 0 && rv->fd >= 0) {
		r = o->close(o, rv->fd);
		rv->fd = -1;
	}
	for (size_t i = 0; r == 0 && i < rv->reg.ndeps; i++)
		if (strcmp(rv->reg.deps[i], rv->path) != 0 && !store_is_valid(s, rv->reg.deps[i])) {
			sbuf_printf(err, "%s depends on %s, which is not valid here (send it first)", rv->path,
				    rv->reg.deps[i]);
			r = -EBADMSG;
		}
	unsigned char nar[32];
	uint64_t bytes = 0;
	if (r == 0)
		r = store_hash_tree(o, rv->tmp, nar, &bytes);
	if (r == 0) {
		char hex[65];
		store_hex(nar, 32, hex);
		if (strcmp(hex, rv->reg.nar_sha256) != 0 || bytes != rv->reg.bytes) {
			sbuf_printf(err, "%s: what arrived hashes to %s (%llu bytes), not the registered %s (%llu bytes)",
				    rv->path, hex, (unsigned long long)bytes, rv->reg.nar_sha256,
				    (unsigned long long)rv->reg.bytes);
			r = -EBADMSG;
		}
	}
	if (r == 0)
		r = dirs_read_only(o, rv->tmp);
	if (r == 0)
		r = ops_fsync_tree(o, rv->tmp);
	/* an unregistered leftover of the same name is not valid: it goes */
	if (r == 0)
		r = ops_remove_tree(o, rv->path);
	if (r == 0)
		r = o->rename(o, rv->tmp, rv->path);
	if (r == 0) {
		free(rv->tmp);
		rv->tmp = NULL;
		r = o->fsync_path(o, s->root);
	}
	if (r == 0)
		r = store_register(s, rv->path, nar, bytes, (const char *const *)rv->reg.deps, rv->reg.ndeps);
	if (r < 0 && !err->sb_len)
		sbuf_printf(err, "%s: %s", rv->path, ops_strerror(r));
	drop(rv);
	return r < 0 ? r : 0;
}

int store_add_tree(struct store *s, const char *tmp, const char *path, struct sbuf *err)
{
	struct punix_ops *o = s->ops;
	if (!store_path_in(s->root, path)) {
		sbuf_printf(err, "'%s' is not a path of the store %s", path, s->root);
		return -EINVAL;
	}
	char *lock = store_lock_path(s, path);
	int h = -1, r = o->lock(o, lock, 1, 1, &h);
	free(lock);
	if (r < 0) {
		sbuf_printf(err, "locking %s: %s", path, ops_strerror(r));
		return r;
	}
	if (store_is_valid(s, path)) {
		ops_remove_tree(o, tmp);
		o->unlock(o, h);
		return 1;
	}
	unsigned char nar[32];
	uint64_t bytes = 0;
	r = store_hash_tree(o, tmp, nar, &bytes);
	if (r == 0)
		r = dirs_read_only(o, tmp);
	if (r == 0)
		r = ops_fsync_tree(o, tmp);
	if (r == 0)
		r = ops_remove_tree(o, path);
	if (r == 0)
		r = o->rename(o, tmp, path);
	if (r == 0)
		r = o->fsync_path(o, s->root);
	if (r == 0)
		r = store_register(s, path, nar, bytes, NULL, 0);
	if (r < 0) {
		sbuf_printf(err, "adding %s to the store: %s", path, ops_strerror(r));
		ops_remove_tree(o, tmp);
	}
	o->unlock(o, h);
	return r < 0 ? r : 0;
}
