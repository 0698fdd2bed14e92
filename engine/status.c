/*
 * status.c - reading a stack on a target: its generations, and whether the
 * live files still match the current one (engine.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../base/vec.h"
#include "../base/xalloc.h"
#include "engine.h"
#include "manifest.h"

/* manifest_read says nothing of a manifest that is not there: say which. */
static int read_manifest(struct punix_ops *o, const char *dep, const char *stack, long n, struct manifest *m,
			 struct sbuf *err)
{
	size_t had = err->sb_len;
	int r = manifest_read(o, dep, stack, n, m, err);
	if (r < 0 && err->sb_len == had) {
		char *path = gen_manifest_path(dep, stack, n);
		sbuf_printf(err, "%s: %s (the manifest of gen-%03ld of stack '%s')", path, strerror(-r), n, stack);
		free(path);
	}
	return r;
}

int engine_generations(struct punix_ops *o, const char *dep, const char *stack, struct gen_info **out, size_t *n,
		       long *current, struct sbuf *err)
{
	*out = NULL;
	*n = 0;
	*current = current_generation(o, dep, stack, err);
	if (*current < 0)
		return -1;
	long *gens;
	size_t ng;
	int r = list_generations(o, dep, stack, &gens, &ng);
	if (r < 0) {
		sbuf_printf(err, "%s/%s: %s", dep, stack, strerror(-r));
		return -1;
	}
	struct gen_info *g = xcalloc(ng + 1, sizeof(*g));
	for (size_t i = 0; i < ng; i++) {
		struct manifest m;
		if (read_manifest(o, dep, stack, gens[i], &m, err) < 0) {
			gen_infos_free(g, i);
			free(gens);
			return -1;
		}
		g[i].number = gens[i];
		g[i].deployed_at = xstrdup(m.deployed_at);
		g[i].nfiles = m.nfiles;
		g[i].npaths = m.npaths;
		manifest_free(&m);
	}
	free(gens);
	*out = g;
	*n = ng;
	return 0;
}

void engine_stacks_text(struct punix_ops *o, const char *dep, struct sbuf *out)
{
	char **names;
	size_t n, shown = 0;
	if (o->list_dir(o, dep, &names, &n) < 0) {
		sbuf_printf(out, "no stack has been deployed under %s", dep);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct sbuf cur = SBUF_INIT;
		sbuf_printf(&cur, "%s/%s/current", dep, names[i]);
		struct ops_stat st;
		bool is_stack = names[i][0] != '.' && o->stat(o, cur.sb_buf, 0, &st) == 0;
		sbuf_free(&cur);
		if (is_stack && shown < 20)
			sbuf_printf(out, "%s%s", shown ? ", " : "the stacks there: ", names[i]);
		shown += is_stack;
	}
	if (shown > 20)
		sbuf_printf(out, " and %zu more", shown - 20);
	if (!shown)
		sbuf_printf(out, "no stack has been deployed under %s", dep);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

void gen_infos_free(struct gen_info *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(g[i].deployed_at);
	free(g);
}

int engine_verify(struct punix_ops *o, const char *dep, const char *stack, struct drift **out, size_t *n,
		  long *current, struct sbuf *err)
{
	*out = NULL;
	*n = 0;
	*current = current_generation(o, dep, stack, err);
	if (*current <= 0) {
		if (*current == 0) {
			sbuf_printf(err, "stack '%s' has no current generation under %s (", stack, dep);
			engine_stacks_text(o, dep, err);
			sbuf_puts(err, ")");
		}
		return -1;
	}
	struct manifest m;
	if (read_manifest(o, dep, stack, *current, &m, err) < 0)
		return -1;
	VEC(struct drift) v = {0};
	for (size_t i = 0; i < m.nfiles; i++) {
		const char *what = NULL;
		struct ops_stat st;
		char *buf;
		size_t len;
		if (o->stat(o, m.files[i].path, 0, &st) < 0 || st.type != OPS_FT_REG) {
			what = "missing";
		} else if (o->read_file(o, m.files[i].path, 64 << 20, &buf, &len) < 0) {
			what = "unreadable";
		} else {
			char hex[65];
			sha256_hex(buf, len, hex);
			free(buf);
			if (strcmp(hex, m.files[i].sha256) != 0)
				what = "content differs";
			else if (st.mode != m.files[i].mode)
				what = "mode differs";
		}
		if (what) {
			struct drift d = {xstrdup(m.files[i].path), what};
			VEC_PUSH(&v, d);
		}
	}
	/* secret files have no hash: compare with the generation's kept copy */
	char *kept = gen_secrets_dir(dep, stack, *current);
	for (size_t i = 0; i < m.nsecret; i++) {
		const char *what = NULL;
		struct sbuf src = SBUF_INIT;
		sbuf_printf(&src, "%s%s", kept, m.secret_files[i].path);
		char *a = NULL, *b = NULL;
		size_t la = 0, lb = 0;
		struct ops_stat st;
		if (o->stat(o, m.secret_files[i].path, 0, &st) < 0 || st.type != OPS_FT_REG)
			what = "missing";
		else if (o->read_file(o, m.secret_files[i].path, 1 << 20, &a, &la) < 0)
			what = "unreadable";
		else if (o->read_file(o, src.sb_buf, 1 << 20, &b, &lb) < 0)
			what = "its kept copy is missing";
		else if (la != lb || memcmp(a, b, la) != 0)
			what = "content differs";
		else if (st.mode != 0600)
			what = "mode differs";
		if (a)
			memset(a, 0, la);
		if (b)
			memset(b, 0, lb);
		free(a);
		free(b);
		sbuf_free(&src);
		if (what) {
			struct drift d = {xstrdup(m.secret_files[i].path), what};
			VEC_PUSH(&v, d);
		}
	}
	free(kept);
	manifest_free(&m);
	*out = v.v;
	*n = v.n;
	return 0;
}

void drifts_free(struct drift *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(d[i].path);
	free(d);
}
