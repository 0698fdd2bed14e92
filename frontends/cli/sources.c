/*
 * sources.c - turning command-line FILE|DIR arguments into a PCL program.
 *
 * All file access goes through the effect seam (engine/ops.h). The order
 * the user names files in never matters: the set of files is sorted by
 * path, and a file named twice (or reached through two arguments) is read
 * once, judged by device and inode.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/sbuf.h"
#include "../../base/strmap.h"
#include "../../base/vec.h"
#include "../../base/xalloc.h"
#include "../../engine/build.h"
#include "cli.h"

/* Deeper trees than this are almost certainly a mistake (or a loop). */
#define SOURCES_MAX_DEPTH 64

struct source {
	char *path;
	uint64_t dev, ino;
};

typedef VEC(struct source) source_vec;

static bool has_pcl_suffix(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && strcmp(name + n - 4, ".pcl") == 0;
}

static char *join(const char *dir, const char *name)
{
	struct sbuf sb = SBUF_INIT;
	size_t n = strlen(dir);
	sbuf_puts(&sb, dir);
	if (n == 0 || dir[n - 1] != '/')
		sbuf_putc(&sb, '/');
	sbuf_puts(&sb, name);
	return sbuf_detach(&sb, NULL);
}

static int walk(struct cli_ctx *cx, struct punix_ops *ops, const char *dir, int depth, source_vec *out)
{
	if (depth > SOURCES_MAX_DEPTH)
		return cli_fail(cx, EXIT_USAGE, "%s: directories nested more than %d deep", dir, SOURCES_MAX_DEPTH);
	char **names;
	size_t n;
	int r = ops->list_dir(ops, dir, &names, &n);
	if (r < 0)
		return cli_fail(cx, EXIT_USAGE, "%s: %s", dir, strerror(-r));
	int rc = EXIT_OK;
	for (size_t i = 0; i < n && rc == EXIT_OK; i++) {
		if (names[i][0] == '.')
			continue; /* hidden: .git, editor files, punix's own .dry-run */
		char *path = join(dir, names[i]);
		struct ops_stat st;
		r = ops->stat(ops, path, 0, &st);
		if (r < 0) {
			rc = cli_fail(cx, EXIT_USAGE, "%s: %s", path, strerror(-r));
		} else if (st.type == OPS_FT_DIR) {
			rc = walk(cx, ops, path, depth + 1, out);
		} else if (has_pcl_suffix(names[i])) {
			/* a symlink to a file counts; to a directory, it is not followed */
			if (st.type == OPS_FT_LINK)
				r = ops->stat(ops, path, 1, &st);
			if (r == 0 && st.type == OPS_FT_REG) {
				struct source s = {path, st.dev, st.ino};
				VEC_PUSH(out, s);
				continue;
			}
			if (r < 0)
				rc = cli_fail(cx, EXIT_USAGE, "%s: %s", path, strerror(-r));
		}
		free(path);
	}
	ops_free_names(names, n);
	return rc;
}

static int source_cmp(const void *a, const void *b)
{
	return strcmp(((const struct source *)a)->path, ((const struct source *)b)->path);
}

static void free_sources(source_vec *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i].path);
	VEC_FREE(v);
}

static int collect(struct cli_ctx *cx, struct punix_ops *ops, char *const *args, size_t nargs, source_vec *out)
{
	for (size_t i = 0; i < nargs; i++) {
		const char *arg = args[i];
		struct ops_stat st;
		int r = ops->stat(ops, arg, 1, &st);
		if (r < 0)
			return cli_fail(cx, EXIT_USAGE, "%s: %s", arg, strerror(-r));
		if (st.type == OPS_FT_DIR) {
			size_t before = out->n;
			int rc = walk(cx, ops, arg, 0, out);
			if (rc != EXIT_OK)
				return rc;
			if (out->n == before)
				return cli_fail(cx, EXIT_USAGE, "%s: no .pcl files in this directory", arg);
		} else if (st.type == OPS_FT_REG) {
			struct source s = {xstrdup(arg), st.dev, st.ino};
			VEC_PUSH(out, s);
		} else {
			return cli_fail(cx, EXIT_USAGE, "%s: not a regular file or directory", arg);
		}
	}
	return EXIT_OK;
}

int cli_load_program(struct cli_ctx *cx, struct punix_ops *ops, char *const *args, size_t nargs, struct pcl_program **out,
		     size_t *nfiles)
{
	*out = NULL;
	source_vec srcs = {0};
	int rc = collect(cx, ops, args, nargs, &srcs);
	if (rc != EXIT_OK) {
		free_sources(&srcs);
		return rc;
	}
	if (srcs.n > 1)
		qsort(srcs.v, srcs.n, sizeof(srcs.v[0]), source_cmp);

	/* Drop second sightings of one file (same device and inode). */
	struct strmap seen;
	strmap_init(&seen);
	VEC(char *) keys = {0};
	size_t m = 0;
	for (size_t i = 0; i < srcs.n; i++) {
		struct sbuf key = SBUF_INIT;
		sbuf_printf(&key, "%llu:%llu", (unsigned long long)srcs.v[i].dev, (unsigned long long)srcs.v[i].ino);
		char *k = sbuf_detach(&key, NULL);
		VEC_PUSH(&keys, k);
		if (strmap_put(&seen, k, &srcs.v[i]))
			free(srcs.v[i].path);
		else
			srcs.v[m++] = srcs.v[i];
	}
	srcs.n = m;
	strmap_free(&seen);
	for (size_t i = 0; i < keys.n; i++)
		free(keys.v[i]);
	VEC_FREE(&keys);

	struct pcl_program *p = pcl_program_new();
	for (size_t i = 0; i < srcs.n && rc == EXIT_OK; i++) {
		char *buf = NULL;
		size_t len = 0;
		int r = ops->read_file(ops, srcs.v[i].path, PCL_MAX_SOURCE_BYTES, &buf, &len);
		if (r == -EFBIG) {
			pcl_program_error(p, srcs.v[i].path, PCL_E0, "file is larger than %zu bytes, the limit for a PCL source",
					  (size_t)PCL_MAX_SOURCE_BYTES);
			continue;
		}
		if (r < 0) {
			rc = cli_fail(cx, EXIT_USAGE, "%s: %s", srcs.v[i].path, strerror(-r));
			break;
		}
		pcl_program_add_source(p, srcs.v[i].path, buf, len);
		free(buf);
	}
	if (nfiles)
		*nfiles = srcs.n;
	free_sources(&srcs);
	if (rc != EXIT_OK) {
		pcl_program_free(p);
		return rc;
	}
	*out = p;
	return EXIT_OK;
}

void cli_note_diag(struct cli_ctx *cx, const struct pcl_program *p)
{
	if (pcl_program_ndiags(p) && !cx->error) {
		/* the first, for the JSON object: its code, message and place */
		const struct pcl_diag *d = pcl_program_diag(p, 0);
		cli_note(cx, "[E%d] %s", d->d_code, d->d_message);
		cx->file = d->d_loc.file ? xstrdup(d->d_loc.file) : NULL;
		cx->line = d->d_loc.line;
	}
}

void cli_print_diags(struct cli_ctx *cx, const struct pcl_program *p)
{
	struct sbuf sb = SBUF_INIT;
	size_t n = pcl_program_ndiags(p);
	cli_note_diag(cx, p);
	for (size_t i = 0; i < n; i++)
		pcl_diag_format(pcl_program_diag(p, i), &sb);
	size_t total = pcl_program_error_count(p);
	if (total > n)
		sbuf_printf(&sb, "error: %zu more errors not shown (the first %zu are)\n", total - n, n);
	fwrite(sb.sb_buf ? sb.sb_buf : "", 1, sb.sb_len, stderr);
	sbuf_free(&sb);
}

char *cli_tree_root(struct cli_ctx *cx, struct punix_ops *ops, char *const *args, size_t nargs)
{
	char *root = NULL;
	for (size_t i = 0; i < nargs; i++) {
		char *real;
		int r = ops->realpath(ops, args[i], &real);
		if (r < 0) {
			cli_fail(cx, EXIT_USAGE, "%s: %s", args[i], strerror(-r));
			free(root);
			return NULL;
		}
		struct ops_stat st;
		if (ops->stat(ops, real, 1, &st) == 0 && st.type != OPS_FT_DIR) {
			char *dir = ops_dirname(real);
			free(real);
			real = dir;
		}
		if (!root) {
			root = real;
			continue;
		}
		/* Shorten root to the longest common prefix that ends at a '/'. */
		size_t k = 0, last = 0;
		while (root[k] && root[k] == real[k]) {
			if (root[k] == '/')
				last = k;
			k++;
		}
		if (root[k] == '\0' && (real[k] == '\0' || real[k] == '/'))
			last = k;
		root[last == 0 ? 1 : last] = '\0';
		free(real);
	}
	return root;
}

char **cli_split_commas(const char *s, size_t *n)
{
	VEC(char *) v = {0};
	const char *p = s;
	for (;;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (len)
			VEC_PUSH(&v, xstrndup(p, len));
		if (!c)
			break;
		p = c + 1;
	}
	*n = v.n;
	return v.v;
}

void cli_free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void cli_report_located(struct cli_ctx *cx, struct pcl_program *prog, const struct build_located *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pcl_program_error_at(prog, (struct pcl_loc){l[i].loc.file, l[i].loc.line, l[i].loc.col},
				     l[i].code ? (enum pcl_code)l[i].code : PCL_E6, "%s", l[i].message);
	pcl_program_sort_diags(prog);
	cli_print_diags(cx, prog);
}
