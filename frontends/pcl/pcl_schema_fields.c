/*
 * pcl_schema_fields.c - the fields each module kind may have, and the check
 * of each field's value.
 *
 * Each kind's record is checked against a field table (unknown fields are
 * [E2] with a suggestion, missing required ones [E3], wrong types [E1]);
 * each field's check function then validates the shape of its value ([E6]):
 * names that become file names, paths, unit directives. A field naming a
 * module (a package's deps, a service's package, a host's stacks) must name
 * one of the right kind ([E2] unknown, [E7] or [E6] another kind).
 *
 * The tables and the checks stay together because they refer to each other:
 * a table lists checks, and the check of a nested record (a source, a
 * service, a host) checks against the next table. Only each kind's
 * top-level table is exported, for pcl_schema.c.
 */
#include <stdlib.h>
#include <string.h>

#include "../../base/backend_names.h"
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
		if (ch == PCL_OUT_OPEN || ch == PCL_OUT_CLOSE)
			continue; /* around a store path: only a composed string holds them */
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
		pcl_shape_error(c, v, "must be one line", break_hint);
	else if (has_control(v->v_str.s))
		pcl_shape_error(c, v, "must not hold control characters other than tab",
			    "systemd would not read the line as it is written");
	else if (ends_in_backslash(v->v_str.s))
		pcl_shape_error(c, v, "must not end in a backslash",
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
		pcl_shape_error(c, v, "must be 1 to 100 letters, digits or '._+-', not starting with '.' or '-'",
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
	{"source", false, pcl_check_source},
	{"version", true, ck_store_word},
};

const struct ftable pcl_shell_args_fields = {shell_args_fields, NELEM(shell_args_fields)};
const struct ftable pcl_package_fields = {package_fields, NELEM(package_fields)};

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
		pcl_shape_error(c, v, "must be a unit name: 1 to 128 letters, digits or '_.@-', without '.service'",
			    "it becomes <name>.service in the unit directory");
}

static void ck_binary(struct sctx *c, const struct pcl_value *v)
{
	if (!pcl_want_str(c, v))
		return;
	const char *s = v->v_str.s;
	if (!s[0] || !strcmp(s, ".") || !strcmp(s, "..") || !all_chars(s, "._+-"))
		pcl_shape_error(c, v, "must name a file in the package's bin/ (letters, digits, '._+-')", NULL);
}

static void ck_env_entry(struct sctx *c, const struct pcl_value *v)
{
	if (v->v_kind == PCL_V_SECRET || v->v_kind == PCL_V_OUT)
		return;
	if (v->v_kind != PCL_V_STR && v->v_kind != PCL_V_FMT) {
		pcl_mismatch(c, v, "Str or a secret ({ from_env = \"NAME\" }, { from_file = \"/path\" } or "
				   "{ from_vault = \"NAME\" })");
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

static void check_environment(struct sctx *c, const struct pcl_value *v, check_fn entry)
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
		entry(c, f->f_value);
		pcl_path_pop(c, saved);
	}
}

static void ck_environment(struct sctx *c, const struct pcl_value *v)
{
	check_environment(c, v, ck_env_entry);
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

static void ck_arg(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_str_or_out(c, v))
		ck_rendered(c, v, "a newline here would inject a second directive");
}

static void ck_args(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_list(c, v, "List<Str>"))
		pcl_each_item(c, v, ck_arg);
}

static void ck_content(struct sctx *c, const struct pcl_value *v)
{
	pcl_want_str_or_out(c, v);
}

/* A provision's environment is literal: the service's secrets reach it through the service's EnvironmentFile=. */
static void ck_literal_env_entry(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_str_or_out(c, v))
		ck_rendered(c, v, NULL);
}

static void ck_provision_env(struct sctx *c, const struct pcl_value *v)
{
	check_environment(c, v, ck_literal_env_entry);
}

static const struct fspec provision_fields[] = {
	{"args", false, ck_args},
	{"binary", true, ck_binary},
	{"environment", false, ck_provision_env},
	{"package", false, ck_pkgref},
};

static void ck_provision(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_rec(c, v))
		pcl_check_fields(c, v, provision_fields, NELEM(provision_fields), NULL);
}

/* A provision runs after its service is (re)started: a service that runs and exits, or never runs, has none. */
void pcl_check_service_rules(struct sctx *c, const struct pcl_value *rec)
{
	const struct pcl_value *prov = pcl_value_field(rec, "provision");
	if (!prov || prov->v_kind != PCL_V_REC)
		return;
	const struct pcl_value *en = pcl_value_field(rec, "enable");
	if (pcl_value_field(rec, "timer")) {
		struct pcl_diag *d = pcl_error(c->p, prov->v_loc, PCL_E6, "a service with a 'timer' cannot have a 'provision'");
		pcl_diag_hint(d, "a provision runs once its service is up; a timer's service runs and exits (run the "
				 "step in the timer's job itself)");
	} else if (en && en->v_kind == PCL_V_BOOL && !en->v_bool) {
		struct pcl_diag *d = pcl_error(c->p, prov->v_loc, PCL_E6,
					       "a disabled service (enable = false) cannot have a 'provision'");
		pcl_diag_hint(d, "a provision runs once its service is (re)started, and a disabled one never is");
	}
}

static const struct fspec service_fields[] = {
	{"args", false, ck_args},
	{"binary", true, ck_binary},
	{"dependsOn", false, ck_dependson},
	{"enable", false, ck_bool},
	{"environment", false, ck_environment},
	{"name", true, ck_service_name},
	{"package", true, ck_pkgref},
	{"provision", false, ck_provision},
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
	{"provision", false, ck_provision},
	{"serviceConfig", false, ck_service_config},
	{"timer", false, ck_timer},
	{"tmpfiles", false, ck_lines},
};

const struct ftable pcl_service_module_fields = {service_module_fields, NELEM(service_module_fields)};

/* ---- stacks -------------------------------------------------------------- */

static void ck_backend(struct sctx *c, const struct pcl_value *v)
{
	static const char *const backends[] = {PUNIX_BACKEND_NAMES};
	if (!pcl_want_str(c, v))
		return;
	for (size_t i = 0; i < NELEM(backends); i++)
		if (strcmp(v->v_str.s, backends[i]) == 0)
			return;
	struct pcl_diag *d = pcl_error(c->p, v->v_loc, PCL_E6, "unsupported backend %s; supported: " PUNIX_BACKENDS_SUPPORTED,
				       pcl_show(c->p, v->v_str.s));
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
		pcl_check_service_rules(c, v);
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
		pcl_shape_error(c, v, "must be an absolute path without '.', '..' or empty components",
			    "config files are written at this path on the target");
}

static const struct fspec config_file_fields[] = {
	{"content", true, ck_content},
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
		pcl_shape_error(c, v, "must be a unix name: [a-z_][a-z0-9_-]*, at most 32 characters", NULL);
}

static void ck_home(struct sctx *c, const struct pcl_value *v)
{
	if (!pcl_want_str(c, v))
		return;
	if (v->v_str.s[0] != '/' || strpbrk(v->v_str.s, " \t\n\r\"'") != NULL)
		pcl_shape_error(c, v, "must be an absolute path without whitespace or quotes", NULL);
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

const struct ftable pcl_stack_fields = {stack_fields, NELEM(stack_fields)};

/* ---- fleets -------------------------------------------------------------- */

static void ck_host_name(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_str(c, v) &&
	    !(v->v_str.len && v->v_str.len <= 64 && v->v_str.s[0] != '.' && v->v_str.s[0] != '-' &&
	      all_chars(v->v_str.s, "._-")))
		pcl_shape_error(c, v, "must be 1 to 64 letters, digits or '._-'", NULL);
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
		pcl_shape_error(c, v, "must be \"local\" or \"ssh://USER@HOST[:PORT]\"", NULL);
}

/* A host's program file: relative, resolved below the fleet's directory at apply time. */
static void ck_host_file(struct sctx *c, const struct pcl_value *v)
{
	if (pcl_want_str(c, v) && (!v->v_str.len || memchr(v->v_str.s, '\0', v->v_str.len)))
		pcl_shape_error(c, v, "must name a file (relative to the fleet's file)", NULL);
}

/* The stack's module name in the host's own program (another program: not a reference here). */
static void ck_host_stack(struct sctx *c, const struct pcl_value *v)
{
	if (!pcl_want_str(c, v))
		return;
	const char *s = v->v_str.s;
	bool ok = v->v_str.len && v->v_str.len <= 128 && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')) &&
		  all_chars(s, "_-");
	if (!ok)
		pcl_shape_error(c, v, "must be a module name (a letter, then letters, digits, '_' or '-')", NULL);
}

static const struct fspec host_fields[] = {
	{"file", true, ck_host_file},
	{"machine", false, ck_host_name},
	{"stack", true, ck_host_stack},
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

const struct ftable pcl_fleet_fields = {fleet_fields, NELEM(fleet_fields)};
