/*
 * launchd.c - rendering a stack for launchd (launchd.h): one property list
 * per service, /Library/LaunchDaemons/punix.<Stack>.<name>.plist,
 *
 *   <?xml version="1.0" encoding="UTF-8"?>
 *   <!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
 *   <plist version="1.0">
 *   <dict>
 *   	<key>Label</key>
 *   	<string>punix.<Stack>.<name></string>
 *   	<key>ProgramArguments</key>
 *   	<array>
 *   		<string><package path>/bin/<binary></string>
 *   		<string><arg></string>            each of args
 *   	</array>
 *   	<key>EnvironmentVariables</key>     when it has literal environment entries, sorted
 *   	<dict> <key>K</key> <string>v</string> ... </dict>
 *   	<key>UserName</key> ...             serviceConfig.User, when set
 *   	<key>WorkingDirectory</key> ...     serviceConfig.WorkingDirectory, when set
 *   	<key>RunAtLoad</key> <true/>
 *   	<key>KeepAlive</key> <true/>
 *   </dict>
 *   </plist>
 *
 * Text is XML-escaped (& < > " '). What a property list cannot carry (XML
 * 1.0 has no control characters but tab) and what launchd has no place for
 * here (secrets without an environment file, timers, ordering, tmpfiles,
 * sysusers, provisioning oneshots, other serviceConfig keys) is refused,
 * located. No activator: punix renders launchd's files on any machine, and
 * `launchctl bootstrap` is the operator's ("render now, activate later").
 */
#include "launchd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/utf8.h"
#include "../base/xalloc.h"

void launchd_unit_of(const struct backend_env *env, const char *stack, const char *service, struct sbuf *unit,
		     struct sbuf *path)
{
	(void)env;
	sbuf_reset(unit);
	sbuf_printf(unit, "punix.%s.%s", stack, service);
	sbuf_reset(path);
	sbuf_printf(path, "%s/%s.plist", LAUNCHD_DIR, unit->sb_buf);
}

static void put_xml(struct sbuf *out, const char *s)
{
	for (; *s; s++)
		switch (*s) {
		case '&': sbuf_puts(out, "&amp;"); break;
		case '<': sbuf_puts(out, "&lt;"); break;
		case '>': sbuf_puts(out, "&gt;"); break;
		case '"': sbuf_puts(out, "&quot;"); break;
		case '\'': sbuf_puts(out, "&apos;"); break;
		default: sbuf_putc(out, *s);
		}
}

static void tagged(struct sbuf *out, const char *indent, const char *tag, const char *text)
{
	sbuf_printf(out, "%s<%s>", indent, tag);
	put_xml(out, text);
	sbuf_printf(out, "</%s>\n", tag);
}

static const struct directive *find_directive(const struct service_desc *s, const char *key)
{
	for (size_t i = 0; i < s->nconfig; i++)
		if (strcmp(s->config[i].key, key) == 0)
			return &s->config[i];
	return NULL;
}

void launchd_plist(const struct stack_desc *st, const struct service_desc *s, const char *pkg_path, struct sbuf *out)
{
	sbuf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		       "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
		       "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
		       "<plist version=\"1.0\">\n<dict>\n");
	struct sbuf label = SBUF_INIT, exe = SBUF_INIT;
	sbuf_printf(&label, "punix.%s.%s", st->name, s->name);
	tagged(out, "\t", "key", "Label");
	tagged(out, "\t", "string", label.sb_buf);
	tagged(out, "\t", "key", "ProgramArguments");
	sbuf_puts(out, "\t<array>\n");
	sbuf_printf(&exe, "%s/bin/%s", pkg_path, s->binary);
	tagged(out, "\t\t", "string", exe.sb_buf);
	for (size_t i = 0; i < s->nargs; i++)
		tagged(out, "\t\t", "string", s->args[i]);
	sbuf_puts(out, "\t</array>\n");
	if (s->nenv) {
		tagged(out, "\t", "key", "EnvironmentVariables");
		sbuf_puts(out, "\t<dict>\n");
		for (size_t i = 0; i < s->nenv; i++) {
			tagged(out, "\t\t", "key", s->env[i].key);
			tagged(out, "\t\t", "string", s->env[i].value);
		}
		sbuf_puts(out, "\t</dict>\n");
	}
	const struct directive *user = find_directive(s, "User"), *dir = find_directive(s, "WorkingDirectory");
	if (user) {
		tagged(out, "\t", "key", "UserName");
		tagged(out, "\t", "string", user->s);
	}
	if (dir) {
		tagged(out, "\t", "key", "WorkingDirectory");
		tagged(out, "\t", "string", dir->s);
	}
	sbuf_puts(out, "\t<key>RunAtLoad</key>\n\t<true/>\n\t<key>KeepAlive</key>\n\t<true/>\n</dict>\n</plist>\n");
	sbuf_free(&label);
	sbuf_free(&exe);
}

/* ---- what a launchd property list cannot be given ------------------------------------------ */

struct lcheck {
	const struct stack_desc *st;
	const struct service_desc *s;
	struct sbuf *err;
	bool bad;
};

__attribute__((format(printf, 2, 3))) static void refuse(struct lcheck *lc, const char *fmt, ...)
{
	if (lc->bad)
		return;
	lc->bad = true;
	va_list ap;
	va_start(ap, fmt);
	render_refusal(lc->err, NULL, lc->st, lc->s, "launchd", fmt, ap);
	va_end(ap);
}

/* Text XML 1.0 carries: UTF-8 without control characters other than tab and line breaks. */
static void text(struct lcheck *lc, const char *v, const char *what)
{
	if (!v) {
		refuse(lc, "cannot write %s: it is missing", what);
		return;
	}
	for (const char *p = v; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if ((ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') || ch == 0x7f) {
			refuse(lc, "cannot write %s: the value holds a control character (XML has none)", what);
			return;
		}
	}
	if (!utf8_valid(v, strlen(v)))
		refuse(lc, "cannot write %s: the value is not valid UTF-8", what);
}

static void check_service(struct lcheck *lc, const struct service_desc *s, const char *pkg_path)
{
	lc->s = s;
	text(lc, s->name, "its name");
	if (!lc->bad && (strchr(s->name, '/') || !strcmp(s->name, ".") || !strcmp(s->name, "..")))
		refuse(lc, "cannot name a property list after '%s'", s->name);
	text(lc, pkg_path, "ProgramArguments (the store path of its package)");
	text(lc, s->binary, "ProgramArguments (binary)");
	for (size_t i = 0; i < s->nargs; i++)
		text(lc, s->args[i], "ProgramArguments (an argument)");
	if (s->ndepends_on)
		refuse(lc, "has no dependsOn: launchd starts jobs without ordering them (use backend 'systemd')");
	if (s->has_timer)
		refuse(lc, "has no timers here (use backend 'systemd')");
	if (s->ntmpfiles)
		refuse(lc, "has no tmpfiles (use backend 'systemd')");
	if (s->provision)
		refuse(lc, "has no oneshot: provision is systemd's (use backend 'systemd')");
	for (size_t i = 0; i < s->nconfig; i++) {
		const struct directive *d = &s->config[i];
		bool known = !strcmp(d->key, "User") || !strcmp(d->key, "WorkingDirectory");
		if (!known || d->kind != DIRECTIVE_STR)
			refuse(lc, "takes serviceConfig.User and serviceConfig.WorkingDirectory (text) only, not serviceConfig.%s",
			       d->key);
		else
			text(lc, d->s, !strcmp(d->key, "User") ? "UserName" : "WorkingDirectory");
	}
	for (size_t i = 0; i < s->nenv; i++) {
		const struct env_desc *e = &s->env[i];
		if (e->kind != ENV_LITERAL) {
			refuse(lc, "cannot pass secrets: environment.%s is %s %s, and a property list is no place for a "
				   "secret (give a literal, or use backend 'systemd')",
			       e->key, e->kind == ENV_FROM_ENV ? "from_env" : "from_file", e->value);
			continue;
		}
		text(lc, e->key, "EnvironmentVariables (a name)");
		text(lc, e->value, "EnvironmentVariables (a value)");
	}
}

int launchd_generate(const struct stack_desc *st, const struct backend_args *a, struct rendered *out,
		     struct sbuf *err)
{
	memset(out, 0, sizeof(*out));
	struct lcheck lc = {st, NULL, err, false};
	if (st->nusers || st->ngroups)
		refuse(&lc, "has no systemUsers or systemGroups (they are systemd's sysusers.d; use backend 'systemd')");
	text(&lc, st->name, "the stack's name");
	for (size_t i = 0; i < st->nservices && !lc.bad; i++)
		check_service(&lc, &st->services[i], a->pkg_path(a->arg, st->services[i].package));
	if (lc.bad)
		return -1;
	struct rendered v = {0};
	render_config_files(st, &v);
	for (size_t i = 0; i < st->nservices; i++) {
		const struct service_desc *s = &st->services[i];
		struct sbuf body = SBUF_INIT, unit = SBUF_INIT, path = SBUF_INIT;
		launchd_plist(st, s, a->pkg_path(a->arg, s->package), &body);
		launchd_unit_of(a->env, st->name, s->name, &unit, &path);
		render_add(&v, sbuf_detach(&path, NULL), &body, 0644);
		sbuf_free(&unit);
	}
	*out = v;
	return render_finish(st, out, err);
}
