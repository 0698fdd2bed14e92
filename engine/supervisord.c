/*
 * supervisord.c - rendering a stack for supervisord (supervisord.h).
 *
 *   ; punix stack <Stack>: service <name>
 *   [program:<name>]
 *   command=<package path>/bin/<binary> <args, quoted for shlex>
 *   autostart=true
 *   autorestart=true
 *   stopasgroup=true
 *   killasgroup=true
 *   environment=KEY="value",...    each literal environment entry, sorted
 *   user=<User>                    serviceConfig.User, when set
 *   directory=<WorkingDirectory>   serviceConfig.WorkingDirectory, when set
 *
 * supervisord reads the file with Python's configparser (';' or '#' after
 * whitespace starts a comment; '%' interpolates) and splits command= with
 * shlex (POSIX) and environment= with shlex (not POSIX: no escapes, the
 * quotes stripped from both ends). So '%' is written '%%', an argument is
 * single-quoted with ';' and '#' escaped outside the quotes, and a value
 * that no quoting carries through is refused, naming where it is.
 */
#include "supervisord.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/path.h"
#include "../base/utf8.h"
#include "../base/xalloc.h"

/* ---- the include directory of a supervisord.conf ------------------------------------------ */

static char *trim(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	return xstrndup(s, n);
}

/* The value of [include] files (continuation lines joined by a space), or NULL. */
static char *include_files(const char *text, size_t len)
{
	bool in = false, cont = false;
	struct sbuf v = SBUF_INIT;
	bool found = false;
	for (size_t i = 0; i < len;) {
		size_t e = i;
		while (e < len && text[e] != '\n')
			e++;
		const char *l = text + i;
		size_t n = e - i;
		i = e + 1;
		bool indented = n && (l[0] == ' ' || l[0] == '\t');
		char *t = trim(l, n);
		if (!*t || t[0] == ';' || t[0] == '#') {
			cont = cont && *t; /* a blank line ends a value; a comment line is skipped */
			free(t);
			continue;
		}
		if (indented && cont) {
			sbuf_printf(&v, " %s", t);
			free(t);
			continue;
		}
		cont = false;
		if (t[0] == '[') {
			in = strcmp(t, "[include]") == 0;
			free(t);
			continue;
		}
		char *eq = strpbrk(t, "=:");
		if (in && eq) {
			char *k = trim(t, (size_t)(eq - t));
			if (strcmp(k, "files") == 0) {
				char *val = trim(eq + 1, strlen(eq + 1));
				sbuf_reset(&v);
				sbuf_puts(&v, val);
				free(val);
				found = cont = true;
			}
			free(k);
		}
		free(t);
	}
	if (!found) {
		sbuf_free(&v);
		return NULL;
	}
	/* an inline comment: ';' or '#' after whitespace */
	char *s = sbuf_detach(&v, NULL);
	for (char *p = s; *p; p++)
		if ((*p == ';' || *p == '#') && p > s && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	return s;
}

int supervisord_include(const char *conf_path, const char *text, size_t len, char **dir, char **suffix,
			struct sbuf *err)
{
	*dir = *suffix = NULL;
	char *files = include_files(text, len);
	if (!files || !*files) {
		sbuf_printf(err, "%s has no [include] section with a files = line: punix puts each program's file in "
				 "the directory it names",
			    conf_path);
		free(files);
		return -1;
	}
	const char *slash = strrchr(conf_path, '/');
	char *here = slash ? xstrndup(conf_path, (size_t)(slash - conf_path)) : xstrdup(".");
	int rc = -1;
	char *save = NULL; /* strtok_r: prepare runs on the pool, beside other ops' */
	for (char *tok = strtok_r(files, " \t", &save); tok && rc < 0; tok = strtok_r(NULL, " \t", &save)) {
		struct sbuf g = SBUF_INIT;
		if (tok[0] != '/' && strncmp(tok, "%(here)s", 8) != 0)
			sbuf_printf(&g, "%s/", here);
		for (const char *p = tok; *p; p++) {
			if (!strncmp(p, "%(here)s", 8)) {
				sbuf_puts(&g, here);
				p += 7;
			} else
				sbuf_putc(&g, *p);
		}
		const char *gs = sbuf_str(&g), *last = strrchr(gs, '/');
		if (last && last[1] == '*' && strpbrk(gs, "*?[") == last + 1 && !strpbrk(last + 2, "*?[")) {
			char *d = xstrndup(gs, (size_t)(last - gs));
			if (!path_is_normal_abs(d)) {
				/* each program's file is a generation's file: a path as a manifest holds it */
				sbuf_printf(err, "%s: [include] files = %s names a directory that is not an absolute path "
						 "without '.', '..' or '//' (%s)",
					    conf_path, tok, d);
				free(d);
				free(here);
				free(files);
				sbuf_free(&g);
				return -1;
			}
			*dir = d;
			*suffix = xstrdup(last + 2);
			rc = 0;
		}
		sbuf_free(&g);
	}
	if (rc < 0)
		sbuf_printf(err, "%s: [include] files = ... has no glob of the form DIR/*SUFFIX (as /etc/supervisor/conf.d/*.conf) "
				 "for punix to put programs' files in",
			    conf_path);
	free(here);
	free(files);
	return rc;
}

int supervisord_prepare(struct punix_ops *tops, struct backend_env *env, struct sbuf *err)
{
	const char *conf = env->conf ? env->conf : SUPERVISORD_DEFAULT_CONF;
	char *text = NULL;
	size_t len = 0;
	int r = tops->read_file(tops, conf, 1 << 20, &text, &len);
	if (r < 0) {
		sbuf_printf(err, "cannot read --supervisor-conf %s: %s", conf, strerror(-r));
		return -1;
	}
	backend_env_free(env);
	r = supervisord_include(conf, text, len, &env->include_dir, &env->include_suffix, err);
	free(text);
	return r;
}

void supervisord_unit_of(const struct backend_env *env, const char *service, bool timer, struct sbuf *unit,
			 struct sbuf *path)
{
	(void)timer;
	sbuf_puts(unit, service);
	sbuf_printf(path, "%s/%s%s", env->include_dir ? env->include_dir : "", service,
		    env->include_suffix ? env->include_suffix : ".conf");
}

/* ---- rendering ------------------------------------------------------------------------------ */

static void put_pct(struct sbuf *out, const char *s)
{
	for (; *s; s++)
		sbuf_puts(out, *s == '%' ? "%%" : (char[]){*s, 0});
}

/* One word of command=, for shlex (POSIX): bare when safe, else single-quoted, ';' and '#' outside. */
static void put_word(struct sbuf *out, const char *a)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-";
	if (*a && strspn(a, safe) == strlen(a)) {
		put_pct(out, a);
		return;
	}
	bool open = false;
	for (const char *p = a; *p; p++) {
		if (*p == '\'' || *p == ';' || *p == '#') {
			if (open)
				sbuf_putc(out, '\'');
			open = false;
			sbuf_printf(out, "\\%c", *p);
			continue;
		}
		if (!open)
			sbuf_putc(out, '\'');
		open = true;
		sbuf_puts(out, *p == '%' ? "%%" : (char[]){*p, 0});
	}
	if (open || !*a)
		sbuf_puts(out, open ? "'" : "''");
}

static const struct directive *find_directive(const struct service_desc *s, const char *key)
{
	for (size_t i = 0; i < s->nconfig; i++)
		if (strcmp(s->config[i].key, key) == 0)
			return &s->config[i];
	return NULL;
}

/*
 * A service with secrets starts through /bin/sh, which exports the
 * secrets file's KEY='value' lines into the program's environment and
 * then becomes the program: supervisord has no environment file of its
 * own, and its config (mode 0644) never holds a secret.
 */
#define SECRETS_SHIM "set -a; . \"$0\"; set +a; exec \"$@\""

void supervisord_program(const struct stack_desc *st, const struct service_desc *s, const char *pkg_path,
			 struct sbuf *out)
{
	sbuf_printf(out, "; punix stack %s: service %s\n[program:%s]\ncommand=", st->name, s->name, s->name);
	if (render_has_secrets(s)) {
		char *side = secrets_sidecar_path(st->name, s->name);
		put_word(out, "/bin/sh");
		sbuf_puts(out, " -c ");
		put_word(out, SECRETS_SHIM);
		sbuf_putc(out, ' ');
		put_word(out, side);
		sbuf_putc(out, ' ');
		free(side);
	}
	struct sbuf exe = SBUF_INIT;
	sbuf_printf(&exe, "%s/bin/%s", pkg_path, s->binary);
	put_word(out, sbuf_str(&exe));
	sbuf_free(&exe);
	for (size_t i = 0; i < s->nargs; i++) {
		sbuf_putc(out, ' ');
		put_word(out, s->args[i]);
	}
	sbuf_puts(out, "\nautostart=true\nautorestart=true\nstopasgroup=true\nkillasgroup=true\n");
	bool any = false;
	for (size_t i = 0; i < s->nenv; i++) {
		if (s->env[i].kind != ENV_LITERAL)
			continue;
		const char *v = s->env[i].value;
		char q = strchr(v, '"') ? '\'' : '"';
		sbuf_printf(out, "%s%s=%c", any ? "," : "environment=", s->env[i].key, q);
		put_pct(out, v);
		sbuf_putc(out, q);
		any = true;
	}
	if (any)
		sbuf_putc(out, '\n');
	const struct directive *user = find_directive(s, "User"), *dir = find_directive(s, "WorkingDirectory");
	if (user && user->kind == DIRECTIVE_STR) {
		sbuf_puts(out, "user=");
		put_pct(out, user->s);
		sbuf_putc(out, '\n');
	}
	if (dir && dir->kind == DIRECTIVE_STR) {
		sbuf_puts(out, "directory=");
		put_pct(out, dir->s);
		sbuf_putc(out, '\n');
	}
}

/* ---- what supervisord cannot be given ---------------------------------------------------------- */

struct scheck {
	const struct stack_desc *st;
	const struct service_desc *s;
	struct sbuf *err;
	bool bad;
	const struct desc_loc *at; /* where to locate the refusal, else the stack */
};

__attribute__((format(printf, 2, 3))) static void refuse(struct scheck *sc, const char *fmt, ...)
{
	if (sc->bad)
		return;
	sc->bad = true;
	va_list ap;
	va_start(ap, fmt);
	render_refusal(sc->err, sc->at, sc->st, sc->s, "supervisord", fmt, ap);
	va_end(ap);
}

/* Why v cannot be a value of a supervisord program line, or NULL. */
static const char *bad_value(const char *v)
{
	if (!v)
		return "is missing";
	for (const char *p = v; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '\n' || ch == '\r')
			return "holds a line break";
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return "holds a control character other than tab";
		if ((ch == ';' || ch == '#') && p > v && (p[-1] == ' ' || p[-1] == '\t'))
			return "holds ';' or '#' after whitespace (supervisord reads a comment there)";
	}
	if (!utf8_valid(v, strlen(v)))
		return "is not valid UTF-8";
	return NULL;
}

static void value(struct scheck *sc, const char *v, const char *what)
{
	const char *why = bad_value(v);
	if (why)
		refuse(sc, "cannot write %s: the value %s", what, why);
}

/* An argument is quoted, so only what breaks the line matters. */
static void word(struct scheck *sc, const char *v, const char *what)
{
	const char *why = bad_value(v);
	if (why && strncmp(why, "holds ';'", 9) != 0)
		refuse(sc, "cannot write %s: the value %s", what, why);
}

static void check_service(struct scheck *sc, const struct service_desc *s, const char *pkg_path)
{
	sc->s = s;
	value(sc, s->name, "its name ([program:NAME])");
	if (!sc->bad && (strchr(s->name, ':') || strchr(s->name, ']') || strchr(s->name, ' ')))
		refuse(sc, "cannot name a program '%s' (no ':', ']' or space)", s->name);
	word(sc, pkg_path, "command= (the store path of its package)");
	word(sc, s->binary, "command= (binary)");
	for (size_t i = 0; i < s->nargs; i++) {
		char what[64];
		snprintf(what, sizeof(what), "command= (args[%zu])", i);
		word(sc, s->args[i], what);
	}
	if (s->ndepends_on)
		refuse(sc, "has no dependsOn: supervisord starts programs without ordering them (use backend 'systemd')");
	if (s->has_timer)
		refuse(sc, "has no timers (use backend 'systemd')");
	if (s->ntmpfiles)
		refuse(sc, "has no tmpfiles (use backend 'systemd')");
	if (s->provision) {
		sc->at = &s->provision->loc;
		refuse(sc, "has no oneshot: provision is systemd's (use backend 'systemd')");
		sc->at = NULL;
	}
	for (size_t i = 0; i < s->nconfig; i++) {
		const struct directive *d = &s->config[i];
		bool known = !strcmp(d->key, "User") || !strcmp(d->key, "WorkingDirectory");
		if (!known || d->kind != DIRECTIVE_STR)
			refuse(sc, "takes serviceConfig.User and serviceConfig.WorkingDirectory (text) only, not serviceConfig.%s",
			       d->key);
		else
			value(sc, d->s, !strcmp(d->key, "User") ? "user= (serviceConfig.User)"
							 : "directory= (serviceConfig.WorkingDirectory)");
	}
	for (size_t i = 0; i < s->nenv; i++) {
		const struct env_desc *e = &s->env[i];
		if (e->kind != ENV_LITERAL)
			continue; /* in the secrets file, single-quoted: any one-line value ([E11] refuses others) */
		char what[160];
		snprintf(what, sizeof(what), "environment= (environment.%.100s)", e->key);
		value(sc, e->value, what);
		size_t n = strlen(e->value);
		if (!sc->bad && (strchr(e->value, '"') && strchr(e->value, '\'')))
			refuse(sc, "cannot write %s: the value holds both kinds of quote", what);
		else if (!sc->bad && n && strchr("'\"", e->value[0]) && strchr("'\"", e->value[n - 1]))
			refuse(sc, "cannot write %s: the value starts and ends with a quote (supervisord strips them)", what);
		else if (!sc->bad && n && (strchr("'\"", e->value[0]) || strchr("'\"", e->value[n - 1])))
			refuse(sc, "cannot write %s: the value starts or ends with a quote (supervisord strips it)", what);
	}
}

/* KEY='value' for /bin/sh, ' written '\'' (a secret is one line, [E11]). */
static void shell_line(struct sbuf *sb, const char *key, const char *val)
{
	sbuf_printf(sb, "%s='", key);
	for (const char *p = val; *p; p++)
		sbuf_puts(sb, *p == '\'' ? "'\\''" : (char[]){*p, 0});
	sbuf_puts(sb, "'\n");
}

int supervisord_generate(const struct stack_desc *st, const struct backend_args *a, struct rendered *out,
			 struct sbuf *err)
{
	memset(out, 0, sizeof(*out));
	struct scheck sc = {st, NULL, err, false, NULL};
	if (st->nusers || st->ngroups)
		refuse(&sc, "has no systemUsers or systemGroups (they are systemd's sysusers.d; use backend 'systemd')");
	for (size_t i = 0; i < st->nservices && !sc.bad; i++)
		check_service(&sc, &st->services[i], a->pkg_path(a->arg, st->services[i].package));
	if (sc.bad)
		return -1;
	const struct backend_env *env = a->env;
	struct rendered v = {0};
	render_config_files(st, &v);
	for (size_t i = 0; i < st->nservices; i++) {
		const struct service_desc *s = &st->services[i];
		struct sbuf text = SBUF_INIT, unit = SBUF_INIT, path = SBUF_INIT;
		supervisord_program(st, s, a->pkg_path(a->arg, s->package), &text);
		supervisord_unit_of(env, s->name, false, &unit, &path);
		render_add(&v, sbuf_detach(&path, NULL), &text, 0644);
		sbuf_free(&unit);
		if (render_has_secrets(s)) {
			const struct directive *user = find_directive(s, "User");
			render_secrets_file(st, s, a->secrets, a->nsecrets, shell_line,
					    user && user->kind == DIRECTIVE_STR ? user->s : NULL, &v);
		}
	}
	*out = v;
	return render_finish(st, out, err);
}
