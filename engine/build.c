/*
 * build.c - planning and running builds of a program's packages (build.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/strmap.h"
#include "../base/vec.h"
#include "../base/xalloc.h"
#include "build.h"
#include "fetch.h"

typedef VEC(size_t) size_vec;

static bool path_within(const char *path, const char *root)
{
	size_t n = strlen(root);
	if (n == 1 && root[0] == '/')
		return true;
	return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

typedef VEC(struct build_located) located_vec;

__attribute__((format(printf, 3, 4))) static void locate(located_vec *out, struct desc_loc loc, const char *fmt, ...)
{
	struct sbuf sb = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	struct build_located l = {loc, sbuf_detach(&sb, NULL), 0};
	VEC_PUSH(out, l);
}

/* The code of the problem located last, when it is not [E6]. */
static void coded(located_vec *out, int code)
{
	out->v[out->n - 1].code = code;
}

void build_located_free(struct build_located *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i].message);
	free(l);
}

/* Resolves pkg's source directory; a located problem if it is hostile. */
/*
 * url_per_arch: the url and hash of the store's machine (its system is
 * "<arch>-linux": what a build here is for, and what a deploy's target
 * must be, [E14]); 0, or -1 with the error located at the source.
 */
static int pick_arch(located_vec *loc, const struct pkg_desc *pkg, const char *system, const char **url,
		     const char **sha)
{
	size_t alen = strcspn(system, "-");
	for (size_t i = 0; i < pkg->narch_sources; i++)
		if (strlen(pkg->arch_sources[i].arch) == alen && !strncmp(pkg->arch_sources[i].arch, system, alen)) {
			*url = pkg->arch_sources[i].url;
			*sha = pkg->arch_sources[i].sha256;
			return 0;
		}
	struct sbuf have = SBUF_INIT;
	for (size_t i = 0; i < pkg->narch_sources; i++)
		sbuf_printf(&have, "%s%s", i ? ", " : "", pkg->arch_sources[i].arch);
	locate(loc, pkg->source_loc, "url_per_arch source of '%s' has no url for %.*s, the machine it is built for "
				     "(it has: %s)",
	       pkg->module, (int)alen, system, have.sb_buf);
	coded(loc, 14);
	sbuf_free(&have);
	return -1;
}

static int resolve_source(struct punix_ops *o, located_vec *prog, const struct pkg_desc *pkg, const char *tree_root,
			  char **out)
{
	*out = NULL;
	if (!pkg->source_path)
		return 0;
	struct sbuf cand = SBUF_INIT;
	if (pkg->source_path[0] == '/') {
		sbuf_puts(&cand, pkg->source_path);
	} else {
		char *dir = ops_dirname(pkg->source_loc.file);
		sbuf_printf(&cand, "%s/%s", dir, pkg->source_path);
		free(dir);
	}
	char *real = NULL;
	int r = o->realpath(o, cand.sb_buf, &real);
	int bad = 1;
	if (r == -ELOOP) {
		locate(prog, pkg->source_loc, "source path \"%s\" of '%s' is a symlink loop",
				     pkg->source_path, pkg->module);
	} else if (r == -ENOENT || r == -ENOTDIR) {
		locate(prog, pkg->source_loc, "source path \"%s\" of '%s' does not exist (%s)",
				     pkg->source_path, pkg->module, cand.sb_buf);
	} else if (r < 0) {
		locate(prog, pkg->source_loc, "source path \"%s\" of '%s': %s", pkg->source_path,
				     pkg->module, strerror(-r));
	} else if (!path_within(real, tree_root)) {
		locate(prog, pkg->source_loc, "source path \"%s\" of '%s' is outside the program's tree %s (it is %s)",
				     pkg->source_path, pkg->module, tree_root, real);
	} else {
		struct ops_stat st;
		r = o->stat(o, real, 1, &st);
		if (r < 0 || st.type != OPS_FT_DIR)
			locate(prog, pkg->source_loc, "source path \"%s\" of '%s' is not a directory", pkg->source_path,
					     pkg->module);
		else
			bad = 0;
	}
	sbuf_free(&cand);
	if (bad) {
		free(real);
		return 1;
	}
	*out = real;
	return 0;
}

long build_plan_find(const struct build_plan *plan, const char *module)
{
	for (size_t i = 0; i < plan->n; i++)
		if (strcmp(plan->items[i].pkg->module, module) == 0)
			return (long)i;
	return -1;
}

/*
 * Post-order over the dependency graph from the wanted roots, iteratively
 * (a chain of 10^5 packages must not exhaust the stack). The checker has
 * already refused cycles.
 */
static void order_packages(const struct pkg_desc *pk, size_t n, struct strmap *index, const bool *wanted,
			   size_vec *order)
{
	unsigned char *seen = xcalloc(n + 1, 1);
	VEC(size_t) stack = {0};
	VEC(size_t) next = {0};
	for (size_t root = 0; root < n; root++) {
		if (!wanted[root] || seen[root])
			continue;
		VEC_PUSH(&stack, root);
		VEC_PUSH(&next, 0);
		seen[root] = 1;
		while (stack.n) {
			size_t u = stack.v[stack.n - 1];
			size_t *k = &next.v[next.n - 1];
			if (*k == pk[u].ndeps) {
				VEC_PUSH(order, u);
				stack.n--;
				next.n--;
				continue;
			}
			size_t *dv = strmap_get(index, pk[u].deps[(*k)++]);
			if (dv && !seen[*dv]) {
				seen[*dv] = 1;
				VEC_PUSH(&stack, *dv);
				VEC_PUSH(&next, 0);
			}
		}
	}
	VEC_FREE(&stack);
	VEC_FREE(&next);
	free(seen);
}

int build_plan_make(struct build_plan *plan, struct store *s, const struct pkg_desc *pk, size_t n,
		    const char *tree_root, const char *const *only, size_t nonly, struct build_located **located,
		    size_t *nlocated, const char **bad, struct sbuf *err)
{
	memset(plan, 0, sizeof(*plan));
	located_vec loc = {0};
	struct strmap index;
	strmap_init(&index);
	size_t *idx = xcalloc(n + 1, sizeof(*idx));
	for (size_t i = 0; i < n; i++) {
		idx[i] = i;
		strmap_put(&index, pk[i].module, &idx[i]);
	}
	bool *wanted = xcalloc(n + 1, sizeof(*wanted));
	int rc = 0;
	for (size_t i = 0; i < nonly; i++) {
		size_t *j = strmap_get(&index, only[i]);
		if (!j) {
			*bad = only[i];
			rc = -ENOENT;
			goto out;
		}
		wanted[*j] = true;
	}
	if (nonly == 0)
		for (size_t i = 0; i < n; i++)
			wanted[i] = true;

	size_vec order = {0};
	order_packages(pk, n, &index, wanted, &order);
	plan->items = xcalloc(order.n + 1, sizeof(*plan->items));
	plan->n = order.n;
	/* position in the plan of each package, to find dependencies' paths */
	long *pos = xcalloc(n + 1, sizeof(*pos));
	for (size_t i = 0; i < order.n; i++)
		pos[order.v[i]] = (long)i;

	for (size_t i = 0; i < order.n; i++) {
		struct build_item *it = &plan->items[i];
		it->pkg = &pk[order.v[i]];
		if (resolve_source(s->ops, &loc, it->pkg, tree_root, &it->source_dir))
			continue;
		/* a url source's file: its own, or (url_per_arch) this store's machine's */
		const char *url = it->pkg->source_url, *sha = it->pkg->source_sha256;
		if (it->pkg->narch_sources && pick_arch(&loc, it->pkg, s->system, &url, &sha) < 0)
			continue;
		if (url && !(it->source_name = store_url_file_name(url))) {
			locate(&loc, it->pkg->source_loc,
			       "source url \"%s\" of '%s' does not end in a file name (its last path component names "
			       "the file in the build's src/; no %%-escapes)",
			       url, it->pkg->module);
			continue;
		}
		if (loc.n)
			continue; /* paths are meaningless once a source is wrong */
		it->dep_paths = xcalloc(it->pkg->ndeps + 1, sizeof(*it->dep_paths));
		for (size_t d = 0; d < it->pkg->ndeps; d++) {
			size_t *j = strmap_get(&index, it->pkg->deps[d]);
			it->dep_paths[d] = plan->items[pos[*j]].path;
		}
		/* store paths sort as their names do; the root is common to all */
		for (size_t a = 1; a < it->pkg->ndeps; a++)
			for (size_t b = a; b > 0 && strcmp(it->dep_paths[b - 1], it->dep_paths[b]) > 0; b--) {
				const char *t = it->dep_paths[b];
				it->dep_paths[b] = it->dep_paths[b - 1];
				it->dep_paths[b - 1] = t;
			}
		struct store_drv *d = &it->drv;
		d->pname = it->pkg->pname;
		d->version = it->pkg->version;
		d->recipe = it->pkg->recipe;
		d->args = it->pkg->args;
		d->args_len = it->pkg->args_len;
		d->command = it->pkg->command;
		d->source_dir = it->source_dir;
		unsigned char declared[32];
		if (sha)
			for (size_t b = 0; b < 32; b++) {
				unsigned hi, lo;
				sscanf(sha + 2 * b, "%1x%1x", &hi, &lo);
				declared[b] = (unsigned char)(hi << 4 | lo);
			}
		d->module = it->pkg->module;
		if (url) {
			d->source_url = url;
			d->source_name = it->source_name;
			d->fetch = fetch_transfer;
			d->unpack = fetch_archive_read;
			memcpy(d->source_hash, declared, 32);
		} else if (it->pkg->source_git_url) {
			d->git_url = it->pkg->source_git_url;
			d->git_tag = it->pkg->source_git_tag;
			memcpy(d->source_hash, declared, 32);
		}
		d->system = s->system;
		d->deps = it->dep_paths;
		d->ndeps = it->pkg->ndeps;
		if (it->source_dir) {
			int r = store_hash_tree(s->ops, it->source_dir, d->source_hash, NULL);
			if (r < 0) {
				sbuf_printf(err, "cannot read the source of '%s' (%s): %s", it->pkg->module, it->source_dir,
					    strerror(-r));
				rc = r;
				break;
			}
			if (it->pkg->source_fixed && memcmp(d->source_hash, declared, 32) != 0) {
				char got[65];
				store_hex(d->source_hash, 32, got);
				locate(&loc, it->pkg->source_loc,
				       "fixed_output source \"%s\" of '%s' has tree hash %s, not the declared %s",
				       it->pkg->source_path, it->pkg->module, got, it->pkg->source_sha256);
				coded(&loc, 13);
				continue;
			}
		}
		it->path = store_drv_path(s, d);
	}
	free(pos);
	VEC_FREE(&order);
	if (rc == 0 && loc.n)
		rc = 1;
out:
	*located = loc.v;
	*nlocated = loc.n;
	free(wanted);
	free(idx);
	strmap_free(&index);
	if (rc != 0)
		build_plan_free(plan);
	return rc;
}

void build_plan_free(struct build_plan *plan)
{
	for (size_t i = 0; i < plan->n; i++) {
		struct build_item *it = &plan->items[i];
		free(it->source_dir);
		free(it->source_name);
		free(it->dep_paths);
		free(it->path);
		store_result_free(&it->result);
	}
	free(plan->items);
	memset(plan, 0, sizeof(*plan));
}

/*
 * The header of it's url source's token, made when the file is fetched:
 * "Authorization: Bearer <token>", the token resolved from the plan's
 * secrets. A token that cannot be had, or cannot go in a header, is why
 * naming where it was to come from, never its value.
 */
static int token_header(void *arg, char **line, struct sbuf *why)
{
	const struct build_item *it = arg;
	const struct pkg_desc *pkg = it->pkg;
	char *value = NULL;
	size_t len = 0;
	struct sbuf reason = SBUF_INIT;
	int r = secret_resolve(it->secrets, pkg->source_token_kind, pkg->source_token, &value, &len, &reason);
	if (r == 0 && len == 0) {
		sbuf_puts(&reason, "it is empty");
		r = -1;
	}
	for (size_t i = 0; r == 0 && i < len; i++)
		if ((unsigned char)value[i] <= 0x20 || (unsigned char)value[i] >= 0x7f) {
			sbuf_puts(&reason, "it holds a byte that cannot go in an HTTP header (a token is visible ASCII, "
					   "no blank)");
			r = -1;
		}
	if (r < 0) {
		sbuf_printf(why, "%s %s: %s", env_kind_name(pkg->source_token_kind), pkg->source_token,
			    sbuf_str(&reason));
	} else {
		static const char prefix[] = "Authorization: Bearer ";
		*line = xmalloc(sizeof(prefix) + len);
		memcpy(*line, prefix, sizeof(prefix) - 1);
		memcpy(*line + sizeof(prefix) - 1, value, len + 1);
	}
	secret_wipe(value, len);
	free(value);
	sbuf_free(&reason);
	return r;
}

void build_plan_run(struct build_plan *plan, struct store *s, bool dry_run,
		    void (*progress)(void *arg, const struct build_item *it, size_t i, size_t n),
		    void (*report)(void *arg, const struct build_item *it), void *arg)
{
	/* no garbage collection while paths are being made */
	int h = -1;
	if (!dry_run && store_lock(s, false, &h) < 0)
		h = -1;
	for (size_t i = 0; i < plan->n; i++) {
		struct build_item *it = &plan->items[i];
		for (size_t d = 0; d < it->pkg->ndeps && !it->blocked_by; d++) {
			long j = build_plan_find(plan, it->pkg->deps[d]);
			if (j >= 0 && (plan->items[j].state == BUILD_FAILED || plan->items[j].state == BUILD_BLOCKED))
				it->blocked_by = plan->items[j].pkg->module;
		}
		if (it->blocked_by) {
			it->state = BUILD_BLOCKED;
		} else if (dry_run) {
			it->state = BUILD_DRY_RUN;
		} else {
			if (progress)
				progress(arg, it, i, plan->n);
			if (it->drv.source_url && it->pkg->source_token) {
				it->secrets = plan->secrets;
				it->token = (struct fetch_header){token_header, it};
				it->drv.header = &it->token;
			}
			it->drv.fetch_set = &plan->fetch;
			int r = store_realise(s, &it->drv, it->path, &it->result);
			if ((r < 0 || it->result.outcome == STORE_FAILED) && !it->result.error.sb_len)
				sbuf_printf(&it->result.error, "cannot build %s: %s", it->path,
					    r < 0 ? strerror(-r) : "the store gave no reason");
			it->state = it->result.outcome == STORE_BUILT    ? BUILD_OK
				    : it->result.outcome == STORE_CACHED ? BUILD_CACHED
									 : BUILD_FAILED;
		}
		if (report)
			report(arg, it);
	}
	if (h >= 0)
		store_unlock(s, h);
}
