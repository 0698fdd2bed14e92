/*
 * systemd.c - rendering a stack for systemd (see systemd.h).
 *
 *   [Unit]
 *   Description=Punix stack <Stack>: <name>
 *   After=<dep>.service            one per dependsOn, sorted
 *   Requires=<dep>.service
 *
 *   [Service]
 *   ExecStart=<package path>/bin/<binary> <args, quoted for systemd>
 *   Type=simple                    serviceConfig.Type, else simple
 *   Restart=on-failure             serviceConfig.Restart, else on-failure
 *                                  (none for Type=oneshot: systemd forbids it)
 *   <Key>=<value>                  the rest of serviceConfig, sorted by key;
 *                                  Bool as yes/no, Int in decimal
 *   Environment="KEY=value"        each literal environment entry, sorted
 *   EnvironmentFile=<sidecar>      when the service has secrets
 *
 *   [Install]                      not for a timer-activated service
 *   WantedBy=multi-user.target     (default.target for a user unit directory)
 *
 * A service with a timer also gets <name>.timer ([Timer] directives sorted,
 * WantedBy=timers.target). A service with a provision gets
 * <name>-provision.service (systemd_provision_unit): a oneshot after and
 * requiring <name>.service, with no [Install]: activation starts it. Inputs arrive sorted, so permuted PCL renders
 * byte-identical files.
 *
 * Every value is checked before anything is rendered (systemd_value_ok): one
 * that holds a line break or another control character, is not UTF-8, or
 * ends in a backslash would make systemd read a line other than the one
 * written, so the render fails naming the service and the directive.
 */
#include "systemd.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../base/strmap.h"
#include "../base/utf8.h"
#include "../base/vec.h"
#include "../base/xalloc.h"

bool systemd_value_ok(const char *v, size_t len, const char **why)
{
	bool nul = false, brk = false, ctl = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)v[i];
		nul |= ch == 0;
		brk |= ch == '\n' || ch == '\r';
		ctl |= (ch < 0x20 && ch != '\t') || ch == 0x7f;
	}
	const char *w = NULL;
	if (nul)
		w = "holds a NUL byte";
	else if (brk)
		w = "holds a line break";
	else if (ctl)
		w = "holds a control character other than tab";
	else if (!utf8_valid(v, len))
		w = "is not valid UTF-8";
	else if (len && v[len - 1] == '\\')
		w = "ends in a backslash";
	if (why)
		*why = w;
	return w == NULL;
}

/* systemd expands %specifiers everywhere in a unit; a literal % is %%. */
static void put_escaped(struct sbuf *out, const char *s, bool in_quotes)
{
	for (; *s; s++) {
		if (*s == '%')
			sbuf_puts(out, "%%");
		else if (in_quotes && (*s == '"' || *s == '\\'))
			sbuf_printf(out, "\\%c", *s);
		else
			sbuf_putc(out, *s);
	}
}

/* One ExecStart argument: bare when safe, else double-quoted. $ is $$. */
static void put_arg(struct sbuf *out, const char *a)
{
	bool quote = !*a || strpbrk(a, " \t\"'\\;") != NULL;
	struct sbuf tmp = SBUF_INIT;
	for (const char *p = a; *p; p++) {
		if (*p == '$')
			sbuf_puts(&tmp, "$$");
		else
			sbuf_putc(&tmp, *p);
	}
	if (quote)
		sbuf_putc(out, '"');
	put_escaped(out, sbuf_str(&tmp), quote);
	if (quote)
		sbuf_putc(out, '"');
	sbuf_free(&tmp);
}

/*
 * The executable, <pkg_path>/bin/<binary>: double-quoted like an argument
 * when the store path holds whitespace, a quote, '\' or ';' (a store under
 * "/home/A B/"), so systemd does not split or unescape it. '$' is written as
 * it is: systemd expands variables in arguments, not in the executable.
 */
static void put_exec(struct sbuf *out, const char *pkg_path, const char *binary)
{
	struct sbuf path = SBUF_INIT;
	sbuf_printf(&path, "%s/bin/%s", pkg_path, binary);
	bool quote = strpbrk(sbuf_str(&path), " \t\"'\\;") != NULL;
	if (quote)
		sbuf_putc(out, '"');
	put_escaped(out, sbuf_str(&path), quote);
	if (quote)
		sbuf_putc(out, '"');
	sbuf_free(&path);
}

static void put_directive(struct sbuf *out, const struct directive *d)
{
	sbuf_printf(out, "%s=", d->key);
	switch (d->kind) {
	case DIRECTIVE_BOOL: sbuf_puts(out, d->b ? "yes" : "no"); break;
	case DIRECTIVE_INT: sbuf_printf(out, "%" PRId64, d->i); break;
	case DIRECTIVE_STR: put_escaped(out, d->s, false); break;
	}
	sbuf_putc(out, '\n');
}

static void put_env(struct sbuf *out, const char *key, const char *value)
{
	sbuf_puts(out, "Environment=\"");
	put_escaped(out, key, true);
	sbuf_putc(out, '=');
	put_escaped(out, value, true);
	sbuf_puts(out, "\"\n");
}

static const struct directive *find_directive(const struct directive *d, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(d[i].key, key) == 0)
			return &d[i];
	return NULL;
}

static bool user_unit_dir(const char *unit_dir)
{
	return strstr(unit_dir, "/systemd/user") != NULL;
}

void systemd_unit(const struct stack_desc *st, const struct service_desc *s, const char *pkg_path,
		  const char *unit_dir, struct sbuf *out)
{
	sbuf_puts(out, "[Unit]\nDescription=Punix stack ");
	put_escaped(out, st->name, false);
	sbuf_puts(out, ": ");
	put_escaped(out, s->name, false);
	sbuf_putc(out, '\n');
	for (size_t i = 0; i < s->ndepends_on; i++)
		sbuf_printf(out, "After=%s.service\n", s->depends_on[i]);
	for (size_t i = 0; i < s->ndepends_on; i++)
		sbuf_printf(out, "Requires=%s.service\n", s->depends_on[i]);
	sbuf_puts(out, "\n[Service]\nExecStart=");
	put_exec(out, pkg_path, s->binary);
	for (size_t i = 0; i < s->nargs; i++) {
		sbuf_putc(out, ' ');
		put_arg(out, s->args[i]);
	}
	sbuf_putc(out, '\n');
	/* defaults first, the caller's serviceConfig winning */
	const struct directive *type = find_directive(s->config, s->nconfig, "Type");
	const struct directive *restart = find_directive(s->config, s->nconfig, "Restart");
	if (type)
		put_directive(out, type);
	else
		sbuf_puts(out, "Type=simple\n");
	bool oneshot = type && type->kind == DIRECTIVE_STR && strcmp(type->s, "oneshot") == 0;
	if (restart)
		put_directive(out, restart);
	else if (!oneshot)
		sbuf_puts(out, "Restart=on-failure\n");
	for (size_t i = 0; i < s->nconfig; i++)
		if (&s->config[i] != type && &s->config[i] != restart)
			put_directive(out, &s->config[i]);
	for (size_t i = 0; i < s->nenv; i++) {
		if (s->env[i].kind == ENV_LITERAL)
			put_env(out, s->env[i].key, s->env[i].value);
	}
	if (render_has_secrets(s)) {
		char *side = secrets_sidecar_path(st->name, s->name);
		sbuf_printf(out, "EnvironmentFile=%s\n", side);
		free(side);
	}
	if (!s->has_timer)
		sbuf_printf(out, "\n[Install]\nWantedBy=%s\n", user_unit_dir(unit_dir) ? "default.target" : "multi-user.target");
}

/*
 * The serviceConfig keys a provision shares with its service: who it runs
 * as and where its state is (sorted: the output follows this order).
 */
static const char *const provision_keys[] = {
	"DynamicUser", "Group", "StateDirectory", "StateDirectoryMode", "SupplementaryGroups", "User", "WorkingDirectory",
};

void systemd_provision_unit(const struct stack_desc *st, const struct service_desc *s, const char *pkg_path,
			    struct sbuf *out)
{
	const struct provision_desc *pr = s->provision;
	sbuf_puts(out, "[Unit]\nDescription=Punix stack ");
	put_escaped(out, st->name, false);
	sbuf_puts(out, ": ");
	put_escaped(out, s->name, false);
	sbuf_printf(out, " (provision)\nAfter=%s.service\nRequires=%s.service\n", s->name, s->name);
	sbuf_puts(out, "\n[Service]\nType=oneshot\nRemainAfterExit=no\nExecStart=");
	put_exec(out, pkg_path, pr->binary);
	for (size_t i = 0; i < pr->nargs; i++) {
		sbuf_putc(out, ' ');
		put_arg(out, pr->args[i]);
	}
	sbuf_putc(out, '\n');
	const struct directive *dyn = find_directive(s->config, s->nconfig, "DynamicUser");
	for (size_t k = 0; k < sizeof(provision_keys) / sizeof(provision_keys[0]); k++) {
		const struct directive *d = find_directive(s->config, s->nconfig, provision_keys[k]);
		if (d)
			put_directive(out, d);
		else if (!strcmp(provision_keys[k], "User") && dyn && dyn->kind == DIRECTIVE_BOOL && dyn->b)
			/* the service's dynamic user is named after it: the provision runs as that one */
			sbuf_printf(out, "User=%s\n", s->name);
	}
	/* the service's literal environment, the provision's winning on a key both set; sorted by key */
	size_t i = 0, k = 0;
	while (i < s->nenv || k < pr->nenv) {
		if (i < s->nenv && s->env[i].kind != ENV_LITERAL) {
			i++;
			continue;
		}
		int cmp = i == s->nenv ? 1 : k == pr->nenv ? -1 : strcmp(s->env[i].key, pr->env[k].key);
		if (cmp < 0) {
			put_env(out, s->env[i].key, s->env[i].value);
			i++;
		} else {
			put_env(out, pr->env[k].key, pr->env[k].value);
			i += cmp == 0;
			k++;
		}
	}
	if (render_has_secrets(s)) {
		char *side = secrets_sidecar_path(st->name, s->name);
		sbuf_printf(out, "EnvironmentFile=%s\n", side);
		free(side);
	}
}

void systemd_timer(const struct stack_desc *st, const struct service_desc *s, struct sbuf *out)
{
	sbuf_puts(out, "[Unit]\nDescription=Punix stack ");
	put_escaped(out, st->name, false);
	sbuf_puts(out, ": ");
	put_escaped(out, s->name, false);
	sbuf_puts(out, " (timer)\n\n[Timer]\n");
	for (size_t i = 0; i < s->ntimer; i++)
		put_directive(out, &s->timer[i]);
	sbuf_puts(out, "\n[Install]\nWantedBy=timers.target\n");
}

static int cstr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Per-service tmpfiles lines, stack-wide, deduplicated and sorted. */
static void render_tmpfiles(const struct stack_desc *st, struct rendered *v)
{
	VEC(const char *) lines = {0};
	for (size_t i = 0; i < st->nservices; i++)
		for (size_t k = 0; k < st->services[i].ntmpfiles; k++)
			VEC_PUSH(&lines, st->services[i].tmpfiles[k]);
	if (lines.n) {
		qsort(lines.v, lines.n, sizeof(lines.v[0]), cstr_cmp);
		struct sbuf sb = SBUF_INIT, path = SBUF_INIT;
		sbuf_printf(&sb, "# punix stack %s: tmpfiles.d rules of its services\n", st->name);
		for (size_t i = 0; i < lines.n; i++)
			if (i == 0 || strcmp(lines.v[i - 1], lines.v[i]) != 0)
				sbuf_printf(&sb, "%s\n", lines.v[i]);
		sbuf_printf(&path, "/etc/tmpfiles.d/punix-%s.conf", st->name);
		render_add(v, sbuf_detach(&path, NULL), &sb, 0644);
	}
	VEC_FREE(&lines);
}

/* systemUsers and systemGroups; every group a user names is declared too. */
static void render_sysusers(const struct stack_desc *st, struct rendered *v)
{
	if (!st->nusers && !st->ngroups)
		return;
	VEC(const char *) groups = {0};
	for (size_t i = 0; i < st->ngroups; i++)
		VEC_PUSH(&groups, st->groups[i]);
	for (size_t i = 0; i < st->nusers; i++)
		if (st->users[i].group)
			VEC_PUSH(&groups, st->users[i].group);
	if (groups.n)
		qsort(groups.v, groups.n, sizeof(groups.v[0]), cstr_cmp);
	struct sbuf sb = SBUF_INIT, path = SBUF_INIT;
	sbuf_printf(&sb, "# punix stack %s: system users and groups\n", st->name);
	for (size_t i = 0; i < groups.n; i++)
		if (i == 0 || strcmp(groups.v[i - 1], groups.v[i]) != 0)
			sbuf_printf(&sb, "g %s -\n", groups.v[i]);
	for (size_t i = 0; i < st->nusers; i++) {
		const struct user_desc *u = &st->users[i];
		sbuf_printf(&sb, "u %s %s%s \"punix user %s\"", u->name, u->group ? "-:" : "-", u->group ? u->group : "",
			    u->name);
		if (u->home)
			sbuf_printf(&sb, " %s", u->home);
		sbuf_putc(&sb, '\n');
	}
	sbuf_printf(&path, "/etc/sysusers.d/punix-%s.conf", st->name);
	render_add(v, sbuf_detach(&path, NULL), &sb, 0644);
	VEC_FREE(&groups);
}

/* KEY="value", with \ and " escaped: EnvironmentFile='s syntax. */
static void sidecar_line(struct sbuf *sb, const char *key, const char *val)
{
	sbuf_printf(sb, "%s=\"", key);
	for (const char *p = val; *p; p++) {
		if (*p == '"' || *p == '\\')
			sbuf_putc(sb, '\\');
		sbuf_putc(sb, *p);
	}
	sbuf_puts(sb, "\"\n");
}

static void render_sidecar(const struct stack_desc *st, const struct service_desc *s,
			   const struct secret_value *secrets, size_t nsecrets, struct rendered *v)
{
	const struct directive *user = find_directive(s->config, s->nconfig, "User");
	render_secrets_file(st, s, secrets, nsecrets, sidecar_line,
			    user && user->kind == DIRECTIVE_STR ? user->s : NULL, v);
}

/* ---- values that cannot be rendered ------------------------------------ */

/* The first value of a stack that cannot be rendered, reported in err. */
struct vcheck {
	const struct stack_desc *st;
	const struct service_desc *s; /* NULL for the stack's own files */
	struct sbuf *err;
	bool bad;
};

/*
 * Reports v (NULL: missing) unless systemd_value_ok takes it; what names
 * the directive it would be written into. Names in what are checked before
 * they are used there, so a message is always one line. Never quotes v.
 */
__attribute__((format(printf, 3, 4))) static bool refused(struct vcheck *vc, const char *v, const char *what, ...)
{
	const char *why = "is missing";
	if (vc->bad || (v && systemd_value_ok(v, strlen(v), &why)))
		return vc->bad;
	render_who(vc->err, vc->st, vc->s);
	sbuf_puts(vc->err, ": cannot render ");
	va_list ap;
	va_start(ap, what);
	sbuf_vprintf(vc->err, what, ap);
	va_end(ap);
	sbuf_printf(vc->err, ": the value %s", why);
	vc->bad = true;
	return true;
}

static void check_directives(struct vcheck *vc, const struct directive *d, size_t n, const char *field,
			     const char *where)
{
	for (size_t i = 0; i < n; i++) {
		if (refused(vc, d[i].key, "a directive name in %s", field))
			return;
		if (d[i].kind == DIRECTIVE_STR && refused(vc, d[i].s, "%s=%s (%s.%s)", d[i].key, where, field, d[i].key))
			return;
	}
}

static void check_service(struct vcheck *vc, const struct service_desc *s, pkg_path_fn pkg_path, void *arg,
			  const struct secret_value *secrets, size_t nsecrets)
{
	vc->s = s;
	refused(vc, s->name, "its name (Description=, the unit file's name)");
	for (size_t i = 0; i < s->ndepends_on; i++)
		refused(vc, s->depends_on[i], "After= and Requires= (dependsOn[%zu])", i);
	if (!refused(vc, s->package, "ExecStart= (its package's name)"))
		refused(vc, pkg_path(arg, s->package), "ExecStart= (the store path of package '%s')", s->package);
	refused(vc, s->binary, "ExecStart= (binary)");
	for (size_t i = 0; i < s->nargs; i++)
		refused(vc, s->args[i], "ExecStart= (args[%zu])", i);
	check_directives(vc, s->config, s->nconfig, "serviceConfig", "");
	for (size_t i = 0; i < s->nenv && !vc->bad; i++) {
		const struct env_desc *e = &s->env[i];
		if (refused(vc, e->key, "an environment variable's name"))
			break;
		if (e->kind == ENV_LITERAL) {
			refused(vc, e->value, "Environment= (environment.%s)", e->key);
			continue;
		}
		for (size_t k = 0; k < nsecrets; k++)
			if (!strcmp(secrets[k].service, s->name) && !strcmp(secrets[k].key, e->key))
				refused(vc, secrets[k].value, "EnvironmentFile= (the secret %s)", e->key);
	}
	check_directives(vc, s->timer, s->ntimer, "timer", " of its timer");
	for (size_t i = 0; i < s->ntmpfiles; i++)
		refused(vc, s->tmpfiles[i], "a tmpfiles.d line (tmpfiles[%zu])", i);
	const struct provision_desc *pr = s->provision;
	if (!pr)
		return;
	if (!refused(vc, pr->package, "ExecStart= of its provision (its package's name)"))
		refused(vc, pkg_path(arg, pr->package), "ExecStart= of its provision (the store path of package '%s')",
			pr->package);
	refused(vc, pr->binary, "ExecStart= of its provision (provision.binary)");
	for (size_t i = 0; i < pr->nargs; i++)
		refused(vc, pr->args[i], "ExecStart= of its provision (provision.args[%zu])", i);
	for (size_t i = 0; i < pr->nenv && !vc->bad; i++)
		if (!refused(vc, pr->env[i].key, "an environment variable's name of its provision"))
			refused(vc, pr->env[i].value, "Environment= of its provision (provision.environment.%s)",
				pr->env[i].key);
}

/* Every value that reaches a rendered line; 0, or -1 with err set. */
static int check_stack(const struct stack_desc *st, pkg_path_fn pkg_path, void *arg,
		       const struct secret_value *secrets, size_t nsecrets, struct sbuf *err)
{
	struct vcheck vc = {st, NULL, err, false};
	refused(&vc, st->name, "its name (Description=, file names)");
	for (size_t i = 0; i < st->nservices && !vc.bad; i++)
		check_service(&vc, &st->services[i], pkg_path, arg, secrets, nsecrets);
	vc.s = NULL;
	for (size_t i = 0; i < st->nusers && !vc.bad; i++) {
		const struct user_desc *u = &st->users[i];
		if (refused(&vc, u->name, "a system user's name (sysusers.d)"))
			break;
		if (u->group)
			refused(&vc, u->group, "the group of system user '%s' (sysusers.d)", u->name);
		if (u->home)
			refused(&vc, u->home, "the home of system user '%s' (sysusers.d)", u->name);
	}
	for (size_t i = 0; i < st->ngroups; i++)
		refused(&vc, st->groups[i], "a system group's name (sysusers.d)");
	return vc.bad ? -1 : 0;
}

void systemd_unit_of(const struct backend_env *env, const char *service, bool timer, struct sbuf *unit,
		     struct sbuf *path)
{
	sbuf_printf(unit, "%s.%s", service, timer ? "timer" : "service");
	sbuf_printf(path, "%s/%s", env->unit_dir ? env->unit_dir : "", sbuf_str(unit));
}

int systemd_generate(const struct stack_desc *st, const struct backend_args *a, struct rendered *out,
		     struct sbuf *err)
{
	memset(out, 0, sizeof(*out));
	const char *unit_dir = a->env->unit_dir ? a->env->unit_dir : "";
	pkg_path_fn pkg_path = a->pkg_path;
	void *arg = a->arg;
	const struct secret_value *secrets = a->secrets;
	size_t nsecrets = a->nsecrets;
	if (check_stack(st, pkg_path, arg, secrets, nsecrets, err) < 0)
		return -1;
	struct rendered v = {0};
	render_config_files(st, &v);
	for (size_t i = 0; i < st->nservices; i++) {
		const struct service_desc *s = &st->services[i];
		struct sbuf unit = SBUF_INIT, path = SBUF_INIT;
		systemd_unit(st, s, pkg_path(arg, s->package), unit_dir, &unit);
		sbuf_printf(&path, "%s/%s.service", unit_dir, s->name);
		render_add(&v, sbuf_detach(&path, NULL), &unit, 0644);
		if (s->has_timer) {
			struct sbuf timer = SBUF_INIT;
			systemd_timer(st, s, &timer);
			sbuf_printf(&path, "%s/%s.timer", unit_dir, s->name);
			render_add(&v, sbuf_detach(&path, NULL), &timer, 0644);
		}
		if (s->provision) {
			struct sbuf prov = SBUF_INIT;
			systemd_provision_unit(st, s, pkg_path(arg, s->provision->package), &prov);
			sbuf_printf(&path, "%s/%s-provision.service", unit_dir, s->name);
			render_add(&v, sbuf_detach(&path, NULL), &prov, 0644);
		}
		if (render_has_secrets(s))
			render_sidecar(st, s, secrets, nsecrets, &v);
	}
	render_tmpfiles(st, &v);
	render_sysusers(st, &v);
	*out = v;
	return render_finish(st, out, err);
}
