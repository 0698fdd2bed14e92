/*
 * ownership.c - what a generation may write (ownership.h, docs/deploy.md).
 *
 * A generation owns only what it declares, and declares only what it may
 * own. Before anything is staged, every file a deploy would make live is
 * checked against three rules:
 *
 *   1. it is not punix's own state: nothing in the deployments root, the
 *      store or the journal's directory (as paths on the target);
 *   2. no other stack declares it, in any of its generations (a unit file
 *      is a file like any other, so two stacks never render one unit);
 *   3. if it exists, a generation of this stack wrote it, or the operator
 *      adopted it (--adopt PATH).
 *
 * Adopting keeps the file's original bytes and mode in the stack's
 * directory (adopted/<path>), written before the flip; when the live
 * generation stops declaring the file, materialise puts the original back
 * instead of removing it.
 */
#include "ownership.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../base/strmap.h"
#include "../base/vec.h"
#include "../base/xalloc.h"
#include "manifest.h"

/* path is root itself or below it. */
static bool within(const char *path, const char *root)
{
	size_t n = strlen(root);
	if (n == 1 && root[0] == '/')
		return true;
	return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static char *adopted_copy(const char *dep, const char *stack, const char *path)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s/adopted%s", dep, stack, path);
	return sbuf_detach(&sb, NULL);
}

typedef VEC(char *) str_vec;

/* set[path] = owner for every path a generation of stack declares (keys kept in keys). */
static void declare(struct strmap *set, str_vec *keys, const char *path, char *owner)
{
	if (strmap_get(set, path))
		return;
	char *k = xstrdup(path);
	VEC_PUSH(keys, k);
	strmap_put(set, k, owner);
}

/* Adds every path any generation of stack declares to set (value: the stack's name). */
static int declared_by(struct punix_ops *o, const char *dep, const char *stack, struct strmap *set, str_vec *keys,
		       char *owner, struct sbuf *err)
{
	long *gens;
	size_t n;
	int r = list_generations(o, dep, stack, &gens, &n);
	if (r < 0) {
		sbuf_printf(err, "%s/%s: %s", dep, stack, strerror(-r));
		return r;
	}
	for (size_t g = 0; g < n && r == 0; g++) {
		struct manifest m;
		r = manifest_read(o, dep, stack, gens[g], &m, err);
		if (r < 0)
			break;
		for (size_t i = 0; i < m.nfiles; i++)
			declare(set, keys, m.files[i].path, owner);
		for (size_t i = 0; i < m.nsecret; i++)
			declare(set, keys, m.secret_files[i].path, owner);
		manifest_free(&m);
	}
	free(gens);
	return r;
}

static bool is_adopted(struct punix_ops *o, const char *dep, const char *stack, const char *path)
{
	char *copy = adopted_copy(dep, stack, path);
	struct ops_stat st;
	bool yes = o->stat(o, copy, 0, &st) == 0;
	free(copy);
	return yes;
}

static bool in_list(const char *path, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], path))
			return true;
	return false;
}

/* Which of punix's own places path is in (or above), or -1. */
static int state_place(const struct ownership_scope *sc, const char *path, const char **dir)
{
	const char *state[] = {sc->dep, sc->store_root, sc->state_dir};
	for (int k = 0; k < 3; k++)
		if (state[k] && (within(path, state[k]) || within(state[k], path))) {
			*dir = state[k];
			return k;
		}
	return -1;
}

int ownership_check(const struct ownership_scope *sc, const struct rendered *rf, struct sbuf *err)
{
	struct punix_ops *o = sc->tops;
	struct sbuf bad = SBUF_INIT;
	size_t nbad = 0;
	static const char *const what[] = {"the deployments root", "the store", "the journal's directory"};
	for (size_t i = 0; i < rf->n; i++) {
		const char *dir;
		int k = state_place(sc, rf->files[i].path, &dir);
		if (k >= 0) {
			sbuf_printf(&bad, "\n  %s is in %s (%s): punix's own state", rf->files[i].path, what[k], dir);
			nbad++;
		}
	}
	for (size_t i = 0; i < sc->nadopt; i++) {
		bool declared = false;
		for (size_t k = 0; k < rf->n && !declared; k++)
			declared = !strcmp(rf->files[k].path, sc->adopt[i]);
		if (!declared) {
			sbuf_printf(&bad, "\n  --adopt %s: the stack does not declare that file", sc->adopt[i]);
			nbad++;
		}
	}
	/* every path every generation of every stack declares, by stack */
	struct strmap owners;
	strmap_init(&owners);
	str_vec names = {0}, keys = {0};
	char **stacks = NULL;
	size_t nstacks = 0;
	int r = o->list_dir(o, sc->dep, &stacks, &nstacks);
	if (r == -ENOENT)
		r = 0;
	if (r < 0)
		sbuf_printf(err, "%s: %s", sc->dep, strerror(-r));
	for (size_t s = 0; s < nstacks && r == 0; s++) {
		if (stacks[s][0] == '.')
			continue;
		char *name = xstrdup(stacks[s]);
		VEC_PUSH(&names, name);
		r = declared_by(o, sc->dep, stacks[s], &owners, &keys, name, err);
	}
	ops_free_names(stacks, nstacks);
	for (size_t i = 0; i < rf->n && r == 0; i++) {
		const char *p = rf->files[i].path, *sdir;
		if (state_place(sc, p, &sdir) >= 0)
			continue; /* listed above */
		const char *owner = strmap_get(&owners, p);
		if (owner && strcmp(owner, sc->stack) != 0) {
			sbuf_printf(&bad, "\n  %s belongs to stack '%s'", p, owner);
			nbad++;
			continue;
		}
		if (owner)
			continue; /* written by a generation of this stack */
		struct ops_stat st;
		int sr = o->stat(o, p, 0, &st);
		if (sr == -ENOENT || is_adopted(o, sc->dep, sc->stack, p))
			continue;
		if (sr < 0) {
			sbuf_printf(&bad, "\n  %s: %s", p, ops_strerror(sr));
			nbad++;
		} else if (!in_list(p, sc->adopt, sc->nadopt)) {
			sbuf_printf(&bad, "\n  %s exists and no generation of this stack wrote it (adopt it with --adopt %s)",
				    p, p);
			nbad++;
		} else if (st.type != OPS_FT_REG) {
			sbuf_printf(&bad, "\n  --adopt %s: only a regular file can be adopted (it is a %s)", p,
				    st.type == OPS_FT_DIR ? "directory" : st.type == OPS_FT_LINK ? "symlink" : "special file");
			nbad++;
		}
	}
	if (r == 0 && nbad) {
		sbuf_printf(err, "[E13] stack '%s' may not write %zu file(s):%s", sc->stack, nbad, bad.sb_buf);
		r = -1;
	}
	for (size_t i = 0; i < names.n; i++)
		free(names.v[i]);
	VEC_FREE(&names);
	for (size_t i = 0; i < keys.n; i++)
		free(keys.v[i]);
	VEC_FREE(&keys);
	strmap_free(&owners);
	sbuf_free(&bad);
	return r < 0 ? -1 : 0;
}

/*
 * The state boundary (docs/services.md, "State and rollback"): a
 * StateDirectory (system units: below /var/lib) holds the service's data,
 * which no generation writes, so no rollback can rewrite or remove it.
 * StateDirectory= is a space-separated list; an entry "DIR:LINK" names DIR.
 */
int ownership_state_check(const struct stack_desc *st, struct sbuf *err)
{
	struct sbuf bad = SBUF_INIT;
	size_t nbad = 0;
	for (size_t i = 0; i < st->nservices; i++) {
		const struct service_desc *s = &st->services[i];
		for (size_t k = 0; k < s->nconfig; k++) {
			const struct directive *d = &s->config[k];
			if (strcmp(d->key, "StateDirectory") != 0 || d->kind != DIRECTIVE_STR)
				continue;
			const char *p = d->s;
			while (*p) {
				size_t n = strcspn(p, " \t");
				size_t dn = strcspn(p, ":");
				if (dn > n)
					dn = n;
				if (dn) {
					struct sbuf root = SBUF_INIT;
					sbuf_printf(&root, "/var/lib/%.*s", (int)dn, p);
					for (size_t f = 0; f < st->nfiles; f++)
						if (within(st->files[f].path, sbuf_str(&root))) {
							sbuf_printf(&bad, "\n  %s is a config file inside StateDirectory '%.*s' of service "
									  "'%s': state is the service's, never the generation's",
								    st->files[f].path, (int)dn, p, s->name);
							nbad++;
						}
					sbuf_free(&root);
				}
				p += n;
				p += strspn(p, " \t");
			}
		}
	}
	if (nbad)
		sbuf_printf(err, "[E13] stack '%s' may not write %zu file(s):%s", st->name, nbad, sbuf_str(&bad));
	sbuf_free(&bad);
	return nbad ? -1 : 0;
}

int ownership_keep_originals(struct punix_ops *o, const char *dep, const char *stack, const char *const *adopt,
			     size_t n, struct sbuf *err)
{
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		char *copy = adopted_copy(dep, stack, adopt[i]);
		struct ops_stat st;
		if (o->stat(o, copy, 0, &st) == 0) {
			free(copy);
			continue; /* kept by an earlier (or interrupted) deploy: the original */
		}
		char *buf = NULL, *dir = ops_dirname(copy);
		size_t len;
		r = o->stat(o, adopt[i], 0, &st);
		if (r == -ENOENT) { /* nothing there (yet): nothing to give back later */
			r = 0;
			free(dir);
			free(copy);
			continue;
		}
		if (r == 0 && st.type != OPS_FT_REG)
			r = -EINVAL;
		if (r == 0)
			r = o->read_file(o, adopt[i], 64 << 20, &buf, &len);
		if (r == 0)
			r = ops_mkdir_p(o, dir, 0700);
		if (r == 0)
			r = ops_write_atomic(o, copy, buf, len, st.mode);
		if (r < 0)
			sbuf_printf(err, "adopting %s (keeping its original in %s): %s", adopt[i], copy, strerror(-r));
		free(buf);
		free(dir);
		free(copy);
	}
	return r;
}

int ownership_release(struct punix_ops *o, const char *dep, const char *stack, const char *path, bool *restored)
{
	*restored = false;
	char *copy = adopted_copy(dep, stack, path), *buf = NULL;
	size_t len;
	struct ops_stat st;
	int r = o->stat(o, copy, 0, &st);
	if (r == 0)
		r = o->read_file(o, copy, 64 << 20, &buf, &len);
	if (r == 0) {
		r = ops_write_atomic(o, path, buf, len, st.mode);
		*restored = r == 0;
	}
	free(buf);
	free(copy);
	return r == -ENOENT ? 0 : r;
}
