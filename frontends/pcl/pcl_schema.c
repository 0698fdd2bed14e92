/*
 * pcl_schema.c - module kinds and the fields each kind may have.
 *
 * A module's kind follows from its fields: 'recipe' makes a package,
 * 'backend' a stack, 'binary' with 'package' a service, 'hosts' a fleet;
 * anything else is plain data that other modules may reference. Each kind's
 * record is checked against a field table (unknown fields are [E2] with a
 * suggestion, missing required ones [E3], wrong types [E1]); each field's
 * check function then validates the shape of its value ([E6]): names that
 * become file names, paths, unit directives.
 *
 * Cross-module rules come last: package references ([E2] unknown, [E7] not
 * a package), dependency cycles ([E7]), one pname per package ([E15]), and
 * per stack: unique service names, dependsOn targets, dependsOn cycles.
 */
#include <stdlib.h>
#include <string.h>

#include "../../base/path.h"
#include "pcl_schema.h"

/* ---- shapes of strings ------------------------------------------------- */

static bool has_line_break(const char *s)
{
	return strpbrk(s, "\n\r") != NULL;
}

/* A control character other than tab and the line breaks (only DEL can be written raw). */
static bool has_control(const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') || ch == 0x7f)
			return true;
	}
	return false;
}

static bool ends_in_backslash(const char *s)
{
	size_t n = strlen(s);
	return n && s[n - 1] == '\\';
}

static bool all_chars(const char *s, const char *extra)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			  (ch && strchr(extra, ch));
		if (!ok)
			return false;
	}
	return true;
}

static void shape_error(struct sctx *c, const struct pcl_value *v, const char *what, const char *hint)
{
	struct pcl_diag *d = pcl_error(c->p, v->v_loc, PCL_E6, "'%s' %s, got %s", pcl_path_str(c), what,
				       pcl_show(c->p, v->v_str.s));
	if (hint)
		pcl_diag_hint(d, "%s", hint);
}

/* A store-path component: <hash>-<pname>-<version>. */
static bool is_store_word(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= 100 && s[0] != '.' && s[0] != '-' && all_chars(s, "._+-");
}

/* A unix user or group name as systemd-sysusers accepts it. */
static bool is_unix_name(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 32 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

/* ---- field checks ------------------------------------------------------ */

static void ck_str(struct sctx *c, const struct pcl_value *v)
{
	pcl_want_str(c, v);
}

static void ck_bool(struct sctx *c, const struct pcl_value *v)
{
	if (v->v_kind != PCL_V_BOOL)
		pcl_mismatch(c, v, "Bool");
}

/*
 * A Str written into a line of a rendered file (a unit, tmpfiles.d,
 * sysusers.d): one line (break_hint says why), no other control character
 * but tab, and no trailing '\', which systemd reads as a line continuation.
 */
static void ck_rendered(struct sctx *c, const struct pcl_value *v, const char *break_hint)
{
	if (has_line_break(v->v_str.s))
		shape_error(c, v, "must be one line", break_hint);
	else if (has_control(v->v_str.s))
		shape_error(c, v, "must not hold control characters other than tab",
			    "systemd would not read the line as it is written");
	else if (ends_in_backslash(v->v_str.s))
		shape_error(c, v, "must not end in a backslash",
			    "a line ending in '\\' continues on the next one; no rendered value may end in one");
}

static void ck_line(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_str(c, v))
		ck_rendered(c, v, "a newline here would inject a second directive");
}

static void ck_lines(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_list(c, v, "List<Str>"))
		pcl_each_item(c, v, ck_line);
}

static void ck_store_word(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_str(c, v) && !is_store_word(v->v_str.s))
		shape_error(c, v, "must be 1 to 100 letters, digits or '._+-', not starting with '.' or '-'",
			    "it becomes part of a store path");
}

static void ck_recipe(struct sctx *c, const struct pcl_value *v)
{
	static const char *const recipes[] = {"std.shell"};
	if (!pcl_want_str(c, v))
		return;
	if (strcmp(v->v_str.s, "std.shell") == 0)
		return;
	struct pcl_diag *d =
		pcl_error(c->p, v->v_loc, PCL_E6, "unknown recipe %s; supported: std.shell", pcl_show(c->p, v->v_str.s));
	const char *s = pcl_suggest(v->v_str.s, recipes, NELEM(recipes));
	if (s)
		pcl_diag_hint(d, "did you mean '%s'?", s);
}

static void ck_record(struct sctx *c, const struct pcl_value *v)
{
	pcl_want_rec(c, v);
}

static void ck_source_type(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_str(c, v) && strcmp(v->v_str.s, "local") != 0)
		pcl_error(c->p, v->v_loc, PCL_E6, "unknown source type %s; supported: local", pcl_show(c->p, v->v_str.s));
}

static void ck_source_path(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_str(c, v) && (v->v_str.len == 0 || has_line_break(v->v_str.s)))
		shape_error(c, v, "must be a non-empty path on one line", NULL);
}

static const struct fspec source_fields[] = {
	{"path", true, ck_source_path},
	{"type", true, ck_source_type},
};

static void ck_source(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_rec(c, v))
		pcl_check_fields(c, v, source_fields, NELEM(source_fields), NULL);
}

/* Candidates of one kind for a suggestion, or every module when kind < 0. */
static const char *suggest_module(struct pcl_program *p, const char *word, int kind)
{
	const char **names = xmalloc((p->modules.n + 1) * sizeof(*names));
	size_t n = 0;
	for (size_t i = 0; i < p->modules.n; i++)
		if (kind < 0 || (int)p->modules.v[i]->m_kind == kind)
			names[n++] = p->modules.v[i]->m_name;
	const char *s = pcl_suggest(word, names, n);
	free(names);
	return s;
}

/*
 * A reference to a module of kind 'want' by name (a Str); for packages also
 * Pkg.out. Returns the module, or NULL after reporting.
 */
static const struct pcl_module *ref_module(struct sctx *c, const struct pcl_value *v, enum pcl_kind want,
					   int not_code, const char *what)
{
	if (v->v_kind == PCL_V_OUT && want == PCL_KIND_PACKAGE)
		return pcl_program_find(c->p, v->v_out.module);
	if (!pcl_want_str(c, v))
		return NULL;
	const struct pcl_module *m = pcl_program_find(c->p, v->v_str.s);
	if (!m) {
		struct pcl_diag *d = pcl_error(c->p, v->v_loc, PCL_E2, "unknown %s module %s", what, pcl_show(c->p, v->v_str.s));
		const char *s = suggest_module(c->p, v->v_str.s, (int)want);
		if (s)
			pcl_diag_hint(d, "did you mean '%s'?", s);
		return NULL;
	}
	if (m->m_kind != want) {
		pcl_error(c->p, v->v_loc, not_code, "'%s' is %s module, not a %s module", m->m_name,
			  pcl_kind_article(m->m_kind), what);
		return NULL;
	}
	return m;
}

static void ck_pkgref(struct sctx *c, const struct pcl_value *v)
{
	ref_module(c, v, PCL_KIND_PACKAGE, PCL_E7, "package");
}

static void ck_pkgrefs(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_list(c, v, "List<Str>"))
		pcl_each_item(c, v, ck_pkgref);
}

/* ---- packages ------------------------------------------------------------ */

static const struct fspec shell_args_fields[] = {
	{"command", true, ck_str},
};

static const struct fspec package_fields[] = {
	{"deps", false, ck_pkgrefs},
	{"pname", true, ck_store_word},
	{"recipe", true, ck_recipe},
	{"recipeArgs", true, ck_record},
	{"source", false, ck_source},
	{"version", true, ck_store_word},
};

static void check_package(struct sctx *c, const struct pcl_value *v)
{
	pcl_check_fields(c, v, package_fields, NELEM(package_fields), NULL);
	const struct pcl_value *recipe = pcl_value_field(v, "recipe");
	const struct pcl_value *args = pcl_value_field(v, "recipeArgs");
	if (recipe && args && recipe->v_kind == PCL_V_STR && args->v_kind == PCL_V_REC &&
	    strcmp(recipe->v_str.s, "std.shell") == 0) {
		size_t saved = pcl_path_push_field(c, "recipeArgs");
		pcl_check_fields(c, args, shell_args_fields, NELEM(shell_args_fields), NULL);
		pcl_path_pop(c, saved);
	}
}

/* ---- services ------------------------------------------------------------ */

static void ck_service_name(struct sctx *c, const struct pcl_value *v)
{
	if (!pcl_want_str(c, v))
		return;
	const char *s = v->v_str.s;
	size_t n = strlen(s);
	bool ok = n >= 1 && n <= 128 && s[0] != '.' && s[0] != '-' && all_chars(s, "_.@-");
	if (ok && n > 8 && strcmp(s + n - 8, ".service") == 0)
		ok = false;
	if (!ok)
		shape_error(c, v, "must be a unit name: 1 to 128 letters, digits or '_.@-', without '.service'",
			    "it becomes <name>.service in the unit directory");
}

static void ck_binary(struct sctx *c, const struct pcl_value *v)
{
	if (!pcl_want_str(c, v))
		return;
	const char *s = v->v_str.s;
	if (!s[0] || !strcmp(s, ".") || !strcmp(s, "..") || !all_chars(s, "._+-"))
		shape_error(c, v, "must name a file in the package's bin/ (letters, digits, '._+-')", NULL);
}

static void ck_env_entry(struct sctx *c, const struct pcl_value *v)
{
	if (v->v_kind == PCL_V_SECRET)
		return;
	if (v->v_kind != PCL_V_STR) {
		pcl_mismatch(c, v, "Str or a secret ({ from_env = \"NAME\" } or { from_file = \"/path\" })");
		return;
	}
	ck_rendered(c, v, NULL);
}

static bool is_env_key(const char *s)
{
	if ((s[0] >= '0' && s[0] <= '9') || !all_chars(s, "_"))
		return false;
	return true;
}

static void ck_environment(struct sctx *c, const struct pcl_value *v)
{
	if (!pcl_want_rec(c, v))
		return;
	for (size_t i = 0; i < v->v_rec.n; i++) {
		const struct pcl_vfield *f = &v->v_rec.fields[i];
		if (!is_env_key(f->f_name)) {
			struct pcl_diag *d = pcl_error(c->p, f->f_loc, PCL_E6,
						       "'%s' is not a valid environment variable name", f->f_name);
			pcl_diag_hint(d, "names are letters, digits and '_', not starting with a digit");
			continue;
		}
		size_t saved = pcl_path_push_field(c, f->f_name);
		ck_env_entry(c, f->f_value);
		pcl_path_pop(c, saved);
	}
}

/* A directive value: Str (one line), Bool or Int. */
static void ck_directive_value(struct sctx *c, const struct pcl_value *v)
{
	if (v->v_kind == PCL_V_BOOL || v->v_kind == PCL_V_INT)
		return;
	if (v->v_kind != PCL_V_STR) {
		pcl_mismatch(c, v, "Str, Bool or Int");
		return;
	}
	ck_rendered(c, v, "each directive renders as one Key=Value line");
}

static bool is_directive_key(const char *s)
{
	return s[0] && !(s[0] >= '0' && s[0] <= '9') && all_chars(s, "");
}

static void check_directives(struct sctx *c, const struct pcl_value *v, const char *const *reserved,
			     const char *const *why)
{
	if (!pcl_want_rec(c, v))
		return;
	for (size_t i = 0; i < v->v_rec.n; i++) {
		const struct pcl_vfield *f = &v->v_rec.fields[i];
		bool bad = false;
		for (size_t r = 0; reserved[r]; r++) {
			if (strcmp(f->f_name, reserved[r]) == 0) {
				struct pcl_diag *d = pcl_error(c->p, f->f_loc, PCL_E6, "'%s' is reserved in '%s'",
							       f->f_name, pcl_path_str(c));
				pcl_diag_hint(d, "%s", why[r]);
				bad = true;
			}
		}
		if (!bad && !is_directive_key(f->f_name)) {
			pcl_error(c->p, f->f_loc, PCL_E6, "'%s' is not a directive name (letters and digits only)",
				  f->f_name);
			bad = true;
		}
		if (bad)
			continue;
		size_t saved = pcl_path_push_field(c, f->f_name);
		ck_directive_value(c, f->f_value);
		pcl_path_pop(c, saved);
	}
}

static void ck_service_config(struct sctx *c, const struct pcl_value *v)
{
	static const char *const reserved[] = {"ExecStart", "Environment", NULL};
	static const char *const why[] = {
		"ExecStart is computed from 'package', 'binary' and 'args'",
		"use the service's 'environment' field, which keeps secrets out of unit files",
	};
	check_directives(c, v, reserved, why);
}

static void ck_timer(struct sctx *c, const struct pcl_value *v)
{
	static const char *const reserved[] = {"Unit", NULL};
	static const char *const why[] = {"a timer <name>.timer always triggers <name>.service"};
	check_directives(c, v, reserved, why);
}

static void ck_dependson(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_list(c, v, "List<Str>"))
		pcl_each_item(c, v, ck_str);
}

static void ck_args(struct sctx *c, const struct pcl_value *v)
{
	ck_lines(c, v);
}

static const struct fspec service_fields[] = {
	{"args", false, ck_args},
	{"binary", true, ck_binary},
	{"dependsOn", false, ck_dependson},
	{"enable", false, ck_bool},
	{"environment", false, ck_environment},
	{"name", true, ck_service_name},
	{"package", true, ck_pkgref},
	{"serviceConfig", false, ck_service_config},
	{"timer", false, ck_timer},
	{"tmpfiles", false, ck_lines},
};

/* Service modules may omit 'name': it defaults to the module's name. */
static const struct fspec service_module_fields[] = {
	{"args", false, ck_args},
	{"binary", true, ck_binary},
	{"dependsOn", false, ck_dependson},
	{"enable", false, ck_bool},
	{"environment", false, ck_environment},
	{"name", false, ck_service_name},
	{"package", true, ck_pkgref},
	{"serviceConfig", false, ck_service_config},
	{"timer", false, ck_timer},
	{"tmpfiles", false, ck_lines},
};

static void check_service_module(struct sctx *c, const struct pcl_value *v)
{
	pcl_check_fields(c, v, service_module_fields, NELEM(service_module_fields), NULL);
}

/* ---- stacks -------------------------------------------------------------- */

static void ck_backend(struct sctx *c, const struct pcl_value *v)
{
	static const char *const backends[] = {"systemd"};
	if (!pcl_want_str(c, v) || strcmp(v->v_str.s, "systemd") == 0)
		return;
	struct pcl_diag *d =
		pcl_error(c->p, v->v_loc, PCL_E6, "unsupported backend %s; supported: systemd", pcl_show(c->p, v->v_str.s));
	const char *s = pcl_suggest(v->v_str.s, backends, NELEM(backends));
	if (s)
		pcl_diag_hint(d, "did you mean '%s'?", s);
}

static void ck_service_item(struct sctx *c, const struct pcl_value *v)
{
	if (v->v_kind == PCL_V_STR) {
		const struct pcl_module *m = pcl_program_find(c->p, v->v_str.s);
		if (!m) {
			struct pcl_diag *d = pcl_error(c->p, v->v_loc, PCL_E2, "unknown service module %s", pcl_show(c->p, v->v_str.s));
			const char *s = suggest_module(c->p, v->v_str.s, PCL_KIND_SERVICE);
			if (s)
				pcl_diag_hint(d, "did you mean '%s'?", s);
		} else if (m->m_kind != PCL_KIND_SERVICE) {
			struct pcl_diag *d = pcl_error(c->p, v->v_loc, PCL_E6, "'%s' is %s module, not a service module",
						       m->m_name, pcl_kind_article(m->m_kind));
			pcl_diag_hint(d, "a service module has the fields 'binary' and 'package'");
		}
		return;
	}
	if (v->v_kind == PCL_V_REC) {
		pcl_check_fields(c, v, service_fields, NELEM(service_fields), NULL);
		return;
	}
	pcl_mismatch(c, v, "a service record or a service module name");
}

static void ck_services(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_list(c, v, "a list of service records or of service module names"))
		pcl_each_item(c, v, ck_service_item);
}

static void ck_config_path(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_str(c, v) && !path_is_normal_abs(v->v_str.s))
		shape_error(c, v, "must be an absolute path without '.', '..' or empty components",
			    "config files are written at this path on the target");
}

static const struct fspec config_file_fields[] = {
	{"content", true, ck_str},
	{"path", true, ck_config_path},
};

static void ck_config_file(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_rec(c, v))
		pcl_check_fields(c, v, config_file_fields, NELEM(config_file_fields), NULL);
}

static void ck_config_files(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_list(c, v, "List<Rec{content: Str, path: Str}>"))
		pcl_each_item(c, v, ck_config_file);
}

static void ck_unix_name(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_str(c, v) && !is_unix_name(v->v_str.s))
		shape_error(c, v, "must be a unix name: [a-z_][a-z0-9_-]*, at most 32 characters", NULL);
}

static void ck_home(struct sctx *c, const struct pcl_value *v)
{
	if (!pcl_want_str(c, v))
		return;
	if (v->v_str.s[0] != '/' || strpbrk(v->v_str.s, " \t\n\r\"'") != NULL)
		shape_error(c, v, "must be an absolute path without whitespace or quotes", NULL);
	else
		ck_rendered(c, v, NULL);
}

static const struct fspec user_fields[] = {
	{"group", false, ck_unix_name},
	{"home", false, ck_home},
	{"name", true, ck_unix_name},
};

static void ck_user(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_rec(c, v))
		pcl_check_fields(c, v, user_fields, NELEM(user_fields), NULL);
}

static void ck_users(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_list(c, v, "a list of user records"))
		pcl_each_item(c, v, ck_user);
}

static void ck_groups(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_list(c, v, "List<Str>"))
		pcl_each_item(c, v, ck_unix_name);
}

static const struct fspec stack_fields[] = {
	{"backend", true, ck_backend},
	{"configFiles", false, ck_config_files},
	{"services", false, ck_services},
	{"storeModules", false, ck_pkgrefs},
	{"systemGroups", false, ck_groups},
	{"systemUsers", false, ck_users},
};

/* ---- fleets -------------------------------------------------------------- */

static void ck_host_name(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_str(c, v) &&
	    !(v->v_str.len && v->v_str.len <= 64 && v->v_str.s[0] != '.' && v->v_str.s[0] != '-' &&
	      all_chars(v->v_str.s, "._-")))
		shape_error(c, v, "must be 1 to 64 letters, digits or '._-'", NULL);
}

/* "local", or ssh://USER@HOST[:PORT] */
static bool is_target(const char *s)
{
	if (strcmp(s, "local") == 0)
		return true;
	if (strncmp(s, "ssh://", 6) != 0)
		return false;
	s += 6;
	const char *at = strchr(s, '@');
	if (!at || at == s)
		return false;
	for (const char *q = s; q < at; q++)
		if (!all_chars((char[]){*q, 0}, "._-"))
			return false;
	const char *host = at + 1;
	const char *colon = strrchr(host, ':');
	size_t hl = colon ? (size_t)(colon - host) : strlen(host);
	if (hl == 0)
		return false;
	for (size_t i = 0; i < hl; i++)
		if (!all_chars((char[]){host[i], 0}, "._-"))
			return false;
	if (colon) {
		const char *port = colon + 1;
		size_t pl = strlen(port);
		if (pl == 0 || pl > 5 || !all_chars(port, "") || atoi(port) < 1 || atoi(port) > 65535)
			return false;
		for (size_t i = 0; i < pl; i++)
			if (port[i] < '0' || port[i] > '9')
				return false;
	}
	return true;
}

static void ck_target(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_str(c, v) && !is_target(v->v_str.s))
		shape_error(c, v, "must be \"local\" or \"ssh://USER@HOST[:PORT]\"", NULL);
}

static void ck_stackref(struct sctx *c, const struct pcl_value *v)
{
	ref_module(c, v, PCL_KIND_STACK, PCL_E6, "stack");
}

static void ck_stackrefs(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_list(c, v, "List<Str>"))
		pcl_each_item(c, v, ck_stackref);
}

static const struct fspec host_fields[] = {
	{"name", true, ck_host_name},
	{"stacks", true, ck_stackrefs},
	{"target", true, ck_target},
};

static void ck_host(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_rec(c, v))
		pcl_check_fields(c, v, host_fields, NELEM(host_fields), NULL);
}

static void ck_hosts(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_list(c, v, "a list of host records"))
		pcl_each_item(c, v, ck_host);
}

static const struct fspec fleet_fields[] = {
	{"hosts", true, ck_hosts},
};

/* ---- uniqueness and cycles ----------------------------------------------- */

/*
 * [E3] for the second and later occurrences of one string among items,
 * where key() extracts it (or NULL to skip the item).
 */
static void check_unique(struct sctx *c, const struct pcl_value *const *items, size_t n,
			 const struct pcl_value *(*key)(const struct pcl_value *), const char *what)
{
	struct strmap seen;
	strmap_init(&seen);
	for (size_t i = 0; i < n; i++) {
		const struct pcl_value *k = key(items[i]);
		if (!k || k->v_kind != PCL_V_STR)
			continue;
		const struct pcl_value *first = strmap_put(&seen, k->v_str.s, (void *)k);
		if (first) {
			struct pcl_diag *d = pcl_error(c->p, k->v_loc, PCL_E3, "%s %s is declared twice in module '%s'",
						       what, pcl_show(c->p, k->v_str.s), c->mod->m_name);
			pcl_diag_note(d, first->v_loc, "first declared here");
		}
	}
	strmap_free(&seen);
}

static const struct pcl_value *key_self(const struct pcl_value *v)
{
	return v;
}

static const struct pcl_value *key_name(const struct pcl_value *v)
{
	return v->v_kind == PCL_V_REC ? pcl_value_field(v, "name") : NULL;
}

static const struct pcl_value *key_path(const struct pcl_value *v)
{
	return v->v_kind == PCL_V_REC ? pcl_value_field(v, "path") : NULL;
}

static void unique_in_list(struct sctx *c, const struct pcl_value *rec, const char *field,
			   const struct pcl_value *(*key)(const struct pcl_value *), const char *what)
{
	const struct pcl_value *l = pcl_value_field(rec, field);
	if (l && l->v_kind == PCL_V_LIST)
		check_unique(c, (const struct pcl_value *const *)l->v_list.items, l->v_list.n, key, what);
}

/*
 * A directed graph over n nodes; an edge carries the value that wrote it,
 * so a cycle is reported at the reference that closes it.
 */
struct edge {
	size_t to;
	const struct pcl_value *at;
};

struct graph {
	size_t n;
	const char **names;
	VEC(struct edge) * out;
};

static void graph_init(struct graph *g, size_t n)
{
	g->n = n;
	g->names = xcalloc(n + 1, sizeof(*g->names));
	g->out = xcalloc(n + 1, sizeof(*g->out));
}

static void graph_free(struct graph *g)
{
	for (size_t i = 0; i < g->n; i++)
		VEC_FREE(&g->out[i]);
	free(g->out);
	free(g->names);
}

/* Iterative DFS (chains of 10^5 packages must not exhaust the C stack). */
static void graph_report_cycles(struct pcl_program *p, struct graph *g, const char *what)
{
	enum { WHITE, GREY, BLACK };
	unsigned char *color = xcalloc(g->n + 1, 1);
	size_t *next = xcalloc(g->n + 1, sizeof(*next));
	VEC(size_t) stack = {0};
	for (size_t root = 0; root < g->n; root++) {
		if (color[root] != WHITE)
			continue;
		VEC_PUSH(&stack, root);
		color[root] = GREY;
		while (stack.n) {
			size_t u = stack.v[stack.n - 1];
			if (next[u] == g->out[u].n) {
				color[u] = BLACK;
				stack.n--;
				continue;
			}
			struct edge e = g->out[u].v[next[u]++];
			if (color[e.to] == WHITE) {
				color[e.to] = GREY;
				VEC_PUSH(&stack, e.to);
			} else if (color[e.to] == GREY) {
				struct sbuf chain = SBUF_INIT;
				size_t k = stack.n;
				while (k > 0 && stack.v[k - 1] != e.to)
					k--;
				for (size_t i = k ? k - 1 : 0; i < stack.n; i++)
					sbuf_printf(&chain, "%s -> ", g->names[stack.v[i]]);
				sbuf_puts(&chain, g->names[e.to]);
				pcl_error(p, e.at->v_loc, PCL_E7, "%s cycle: %s", what, sbuf_str(&chain));
				sbuf_free(&chain);
			}
		}
	}
	VEC_FREE(&stack);
	free(next);
	free(color);
}

static size_t module_index(struct pcl_program *p, const char *name)
{
	/* modules are sorted by name: binary search */
	size_t lo = 0, hi = p->modules.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(p->modules.v[mid]->m_name, name);
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (size_t)-1;
}

static void check_package_graph(struct pcl_program *p)
{
	struct graph g;
	graph_init(&g, p->modules.n);
	for (size_t i = 0; i < p->modules.n; i++) {
		const struct pcl_module *m = p->modules.v[i];
		g.names[i] = m->m_name;
		if (m->m_kind != PCL_KIND_PACKAGE)
			continue;
		const struct pcl_value *deps = pcl_value_field(m->m_value, "deps");
		if (!deps || deps->v_kind != PCL_V_LIST)
			continue;
		for (size_t j = 0; j < deps->v_list.n; j++) {
			const struct pcl_value *d = deps->v_list.items[j];
			const char *name = d->v_kind == PCL_V_STR ? d->v_str.s : d->v_kind == PCL_V_OUT ? d->v_out.module : NULL;
			size_t to = name ? module_index(p, name) : (size_t)-1;
			if (to == (size_t)-1 || p->modules.v[to]->m_kind != PCL_KIND_PACKAGE)
				continue;
			struct edge e = {to, d};
			VEC_PUSH(&g.out[i], e);
		}
	}
	graph_report_cycles(p, &g, "dependency");
	graph_free(&g);
}

static void check_pnames(struct pcl_program *p)
{
	struct strmap seen;
	strmap_init(&seen);
	for (size_t i = 0; i < p->modules.n; i++) {
		const struct pcl_module *m = p->modules.v[i];
		if (m->m_kind != PCL_KIND_PACKAGE)
			continue;
		const struct pcl_value *pn = pcl_value_field(m->m_value, "pname");
		if (!pn || pn->v_kind != PCL_V_STR)
			continue;
		const struct pcl_module *first = strmap_put(&seen, pn->v_str.s, (void *)m);
		if (first) {
			const struct pcl_value *fpn = pcl_value_field(first->m_value, "pname");
			struct pcl_diag *d = pcl_error(p, pn->v_loc, PCL_E15,
						       "packages '%s' and '%s' both have pname %s", first->m_name,
						       m->m_name, pcl_show(p, pn->v_str.s));
			pcl_diag_note(d, fpn->v_loc, "'%s' sets it here", first->m_name);
		}
	}
	strmap_free(&seen);
}

/* One service of a stack, inline or from a module, for cross checks. */
struct svc {
	const char *name;
	const struct pcl_value *rec;
	bool enabled;
};

static void check_stack_services(struct sctx *c, const struct pcl_value *stack)
{
	const struct pcl_value *l = pcl_value_field(stack, "services");
	if (!l || l->v_kind != PCL_V_LIST)
		return;
	struct svc *svcs = xcalloc(l->v_list.n + 1, sizeof(*svcs));
	const struct pcl_value **names = xcalloc(l->v_list.n + 1, sizeof(*names));
	size_t n = 0;
	for (size_t i = 0; i < l->v_list.n; i++) {
		const struct pcl_value *it = l->v_list.items[i];
		const struct pcl_value *rec = NULL, *name = NULL;
		const char *sname = NULL;
		if (it->v_kind == PCL_V_REC) {
			rec = it;
			name = pcl_value_field(rec, "name");
			sname = name && name->v_kind == PCL_V_STR ? name->v_str.s : NULL;
		} else if (it->v_kind == PCL_V_STR) {
			const struct pcl_module *m = pcl_program_find(c->p, it->v_str.s);
			if (!m || m->m_kind != PCL_KIND_SERVICE)
				continue;
			rec = m->m_value;
			name = pcl_value_field(rec, "name");
			sname = name && name->v_kind == PCL_V_STR ? name->v_str.s : m->m_name;
			name = it; /* report duplicates where the stack lists the module */
		}
		if (!sname)
			continue;
		const struct pcl_value *en = pcl_value_field(rec, "enable");
		svcs[n].name = sname;
		svcs[n].rec = rec;
		svcs[n].enabled = !(en && en->v_kind == PCL_V_BOOL && !en->v_bool);
		names[n] = name;
		n++;
	}

	struct strmap by;
	strmap_init(&by);
	for (size_t i = 0; i < n; i++) {
		const struct svc *first = strmap_put(&by, svcs[i].name, &svcs[i]);
		if (first) {
			struct pcl_diag *d = pcl_error(c->p, names[i]->v_loc, PCL_E3,
						       "service %s is declared twice in stack '%s'",
						       pcl_show(c->p, svcs[i].name), c->mod->m_name);
			pcl_diag_note(d, names[first - svcs]->v_loc, "first declared here");
		}
	}

	struct graph g;
	graph_init(&g, n);
	const char **cands = xcalloc(n + 1, sizeof(*cands));
	for (size_t i = 0; i < n; i++)
		cands[i] = g.names[i] = svcs[i].name;
	for (size_t i = 0; i < n; i++) {
		const struct pcl_value *deps = pcl_value_field(svcs[i].rec, "dependsOn");
		if (!deps || deps->v_kind != PCL_V_LIST)
			continue;
		for (size_t j = 0; j < deps->v_list.n; j++) {
			const struct pcl_value *d = deps->v_list.items[j];
			if (d->v_kind != PCL_V_STR)
				continue;
			const struct svc *t = strmap_get(&by, d->v_str.s);
			if (!t) {
				struct pcl_diag *e = pcl_error(c->p, d->v_loc, PCL_E2,
							       "service %s depends on %s, which stack '%s' does not have",
							       pcl_show(c->p, svcs[i].name), pcl_show(c->p, d->v_str.s),
							       c->mod->m_name);
				const char *s = pcl_suggest(d->v_str.s, cands, n);
				if (s)
					pcl_diag_hint(e, "did you mean '%s'?", s);
				continue;
			}
			if (!t->enabled && svcs[i].enabled) {
				pcl_error(c->p, d->v_loc, PCL_E6,
					  "service %s depends on %s, which is disabled (enable = false)",
					  pcl_show(c->p, svcs[i].name), pcl_show(c->p, t->name));
				continue;
			}
			struct edge e = {(size_t)(t - svcs), d};
			VEC_PUSH(&g.out[i], e);
		}
	}
	graph_report_cycles(c->p, &g, "dependsOn");
	graph_free(&g);
	free(cands);
	strmap_free(&by);
	free(names);
	free(svcs);
}

static void check_stack(struct sctx *c, const struct pcl_value *v)
{
	pcl_check_fields(c, v, stack_fields, NELEM(stack_fields), NULL);
	unique_in_list(c, v, "configFiles", key_path, "config file");
	unique_in_list(c, v, "systemUsers", key_name, "system user");
	unique_in_list(c, v, "systemGroups", key_self, "system group");
	check_stack_services(c, v);
}

static void check_fleet(struct sctx *c, const struct pcl_value *v)
{
	pcl_check_fields(c, v, fleet_fields, NELEM(fleet_fields), NULL);
	unique_in_list(c, v, "hosts", key_name, "host");
}

/* ---- kinds ----------------------------------------------------------------- */

static enum pcl_kind classify(struct pcl_program *p, const struct pcl_module *m)
{
	const struct pcl_value *v = m->m_value;
	if (!v || v->v_kind != PCL_V_REC)
		return PCL_KIND_DATA;
	struct {
		enum pcl_kind k;
		const char *why;
		bool has;
	} kinds[] = {
		{PCL_KIND_PACKAGE, "'recipe'", pcl_value_field(v, "recipe") != NULL},
		{PCL_KIND_STACK, "'backend'", pcl_value_field(v, "backend") != NULL},
		{PCL_KIND_SERVICE, "'binary' and 'package'",
		 pcl_value_field(v, "binary") && pcl_value_field(v, "package")},
		{PCL_KIND_FLEET, "'hosts'", pcl_value_field(v, "hosts") != NULL},
	};
	int found = -1;
	for (int i = 0; i < (int)NELEM(kinds); i++) {
		if (!kinds[i].has)
			continue;
		if (found >= 0) {
			pcl_error(p, m->m_loc, PCL_E6, "module '%s' has the fields of %s module (%s) and of %s module (%s)",
				  m->m_name, pcl_kind_article(kinds[found].k), kinds[found].why,
				  pcl_kind_article(kinds[i].k), kinds[i].why);
			return PCL_KIND_DATA;
		}
		found = i;
	}
	return found < 0 ? PCL_KIND_DATA : kinds[found].k;
}

void pcl_schema_check(struct pcl_program *p)
{
	for (size_t i = 0; i < p->modules.n; i++) {
		struct pcl_module *m = (struct pcl_module *)p->modules.v[i];
		m->m_kind = classify(p, m);
	}
	struct sctx c = {0};
	c.p = p;
	for (size_t i = 0; i < p->modules.n; i++) {
		c.mod = p->modules.v[i];
		const struct pcl_value *v = c.mod->m_value;
		sbuf_reset(&c.path);
		switch (c.mod->m_kind) {
		case PCL_KIND_PACKAGE: check_package(&c, v); break;
		case PCL_KIND_STACK: check_stack(&c, v); break;
		case PCL_KIND_SERVICE: check_service_module(&c, v); break;
		case PCL_KIND_FLEET: check_fleet(&c, v); break;
		case PCL_KIND_DATA: break;
		}
	}
	sbuf_free(&c.path);
	check_package_graph(p);
	check_pnames(p);
}
