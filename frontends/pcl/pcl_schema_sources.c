/*
 * pcl_schema_sources.c - a package's `source` (docs/pcl.md, "Sources"):
 * which fields each type takes, and the check of each: local, url (with
 * its token), url_per_arch, git and fixed_output.
 */
#include <stdlib.h>
#include <string.h>

#include "pcl_schema.h"

static bool has_line_break(const char *s)
{
	return strpbrk(s, "\n\r") != NULL;
}

static void ck_source_type(struct sctx *c, const struct pcl_value *v)
{
	static const char *const types[] = {"local", "url", "url_per_arch", "git", "fixed_output"};
	bool known = false;
	for (size_t i = 0; pcl_want_str(c, v) && i < NELEM(types); i++)
		known |= strcmp(v->v_str.s, types[i]) == 0;
	if (v->v_kind == PCL_V_STR && !known)
		pcl_error(c->p, v->v_loc, PCL_E6, "unknown source type %s; supported: local, url, url_per_arch, git, fixed_output",
			  pcl_show(c->p, v->v_str.s));
}

static void ck_source_path(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_str(c, v) && (v->v_str.len == 0 || has_line_break(v->v_str.s)))
		pcl_shape_error(c, v, "must be a non-empty path on one line", NULL);
}

/* http://, https:// or file://, no blank or control character, a path that ends in a name. */
static void ck_source_url(struct sctx *c, const struct pcl_value *v)
{
	if (!pcl_want_str(c, v))
		return;
	const char *s = v->v_str.s;
	bool ok = !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8) || !strncmp(s, "file://", 7);
	for (const char *p = s; *p && ok; p++)
		ok = (unsigned char)*p > 0x20 && *p != 0x7f;
	size_t end = strcspn(s, "?#");
	const char *slash = strchr(strstr(s, "://") ? strstr(s, "://") + 3 : s, '/');
	if (ok && (!slash || (size_t)(slash - s) >= end || s[end - 1] == '/'))
		ok = false;
	if (!ok)
		pcl_shape_error(c, v, "must be an http://, https:// or file:// URL whose path ends in a file name",
			    "the file is put in the build's src/ under its URL's last path component");
}

static void ck_source_hash(struct sctx *c, const struct pcl_value *v)
{
	if (!pcl_want_str(c, v))
		return;
	bool ok = v->v_str.len == 64;
	for (size_t i = 0; i < v->v_str.len && ok; i++)
		ok = (v->v_str.s[i] >= '0' && v->v_str.s[i] <= '9') || (v->v_str.s[i] >= 'a' && v->v_str.s[i] <= 'f');
	if (!ok)
		pcl_shape_error(c, v, "must be a SHA-256 in 64 lower-case hex digits",
			    "sha256sum FILE prints it; punix checks the download against it");
}

static void ck_source_hash_type(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_str(c, v) && strcmp(v->v_str.s, "sha256") != 0)
		pcl_error(c->p, v->v_loc, PCL_E6, "unknown hashType %s; supported: sha256", pcl_show(c->p, v->v_str.s));
}

/* A url source's token: a secret ({ from_env }, { from_file } or { from_vault }), never written in the program. */
static void ck_source_token(struct sctx *c, const struct pcl_value *v)
{
	if (v->v_kind != PCL_V_SECRET)
		pcl_mismatch(c, v,
			     "a secret ({ from_env = \"NAME\" }, { from_file = \"/path\" } or { from_vault = \"NAME\" })");
}

/* A repository git can clone: http://, https:// or file://, no blank or control character. */
static void ck_git_url(struct sctx *c, const struct pcl_value *v)
{
	if (!pcl_want_str(c, v))
		return;
	const char *s = v->v_str.s;
	bool ok = !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8) || !strncmp(s, "file:///", 8);
	for (const char *p = s; *p && ok; p++)
		ok = (unsigned char)*p > 0x20 && *p != 0x7f;
	if (!ok)
		pcl_shape_error(c, v, "must be an http://, https:// or file:/// URL of a git repository", NULL);
}

/* A tag git takes as one argument: not empty, no leading '-', no blank, control character or "..". */
static void ck_git_tag(struct sctx *c, const struct pcl_value *v)
{
	if (!pcl_want_str(c, v))
		return;
	const char *s = v->v_str.s;
	bool ok = *s && *s != '-' && !strstr(s, "..") && strlen(s) <= 255;
	for (const char *p = s; *p && ok; p++)
		ok = (unsigned char)*p > 0x20 && *p != 0x7f && !strchr("~^:?*[\\", *p);
	if (!ok)
		pcl_shape_error(c, v, "must be a git tag name (no leading '-', no blank, '..', '~', '^', ':', '?', '*', '[' or '\\')",
			    NULL);
}

static const struct fspec git_source_fields[] = {
	{"hash", true, ck_source_hash},
	{"tag", true, ck_git_tag},
	{"type", true, ck_source_type},
	{"url", true, ck_git_url},
};

static const struct fspec fixed_source_fields[] = {
	{"hash", true, ck_source_hash},
	{"path", true, ck_source_path},
	{"type", true, ck_source_type},
};

static const struct fspec source_fields[] = {
	{"path", true, ck_source_path},
	{"type", true, ck_source_type},
};

static const struct fspec url_source_fields[] = {
	{"hash", true, ck_source_hash},
	{"hashType", false, ck_source_hash_type},
	{"token", false, ck_source_token},
	{"type", true, ck_source_type},
	{"url", true, ck_source_url},
};

/* The machine names url_per_arch knows, as `uname -m` prints them. */
static const char *const arches[] = {"aarch64", "armv6l", "armv7l",  "i686",   "loongarch64",
				     "mips64",  "ppc64le", "riscv64", "s390x", "x86_64"};

static const struct fspec arch_url_fields[] = {
	{"hash", true, ck_source_hash},
	{"url", true, ck_source_url},
};

/* url_per_arch's urls: { ARCH = { url, hash }, ... }, at least one, each ARCH a machine `uname -m` names. */
static void ck_arch_urls(struct sctx *c, const struct pcl_value *v)
{
	if (!pcl_want_rec(c, v))
		return;
	if (v->v_rec.n == 0)
		pcl_error(c->p, v->v_loc, PCL_E6, "'%s' needs at least one architecture ({ x86_64 = { url, hash } })",
			  pcl_path_str(c));
	for (size_t i = 0; i < v->v_rec.n; i++) {
		const struct pcl_vfield *f = &v->v_rec.fields[i];
		bool known = false;
		for (size_t k = 0; k < NELEM(arches) && !known; k++)
			known = strcmp(f->f_name, arches[k]) == 0;
		if (!known) {
			struct pcl_diag *d = pcl_error(c->p, f->f_loc, PCL_E6, "'%s' is not a machine architecture punix knows",
						       f->f_name);
			pcl_diag_hint(d, "as `uname -m` names them: aarch64, armv6l, armv7l, i686, loongarch64, mips64, "
					 "ppc64le, riscv64, s390x, x86_64");
			continue;
		}
		size_t saved = pcl_path_push_field(c, f->f_name);
		if (pcl_want_rec(c, f->f_value))
			pcl_check_fields(c, f->f_value, arch_url_fields, NELEM(arch_url_fields), NULL);
		pcl_path_pop(c, saved);
	}
}

static const struct fspec arch_source_fields[] = {
	{"token", false, ck_source_token},
	{"type", true, ck_source_type},
	{"urls", true, ck_arch_urls},
};

/* The fields a source may have depend on its type: local unless it says url, git or fixed_output. */
void pcl_check_source(struct sctx *c, const struct pcl_value *v)
{
	if (!pcl_want_rec(c, v))
		return;
	const struct pcl_value *t = pcl_value_field(v, "type");
	const char *ty = t && t->v_kind == PCL_V_STR ? t->v_str.s : "";
	if (strcmp(ty, "url") == 0)
		pcl_check_fields(c, v, url_source_fields, NELEM(url_source_fields), NULL);
	else if (strcmp(ty, "url_per_arch") == 0)
		pcl_check_fields(c, v, arch_source_fields, NELEM(arch_source_fields), NULL);
	else if (strcmp(ty, "git") == 0)
		pcl_check_fields(c, v, git_source_fields, NELEM(git_source_fields), NULL);
	else if (strcmp(ty, "fixed_output") == 0)
		pcl_check_fields(c, v, fixed_source_fields, NELEM(fixed_source_fields), NULL);
	else
		pcl_check_fields(c, v, source_fields, NELEM(source_fields), NULL);
}

