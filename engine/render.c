/*
 * render.c - what every backend's generator shares (backends.h): the
 * stack's config files, the list of files, and the check that no two of
 * them have one path. Pure.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../base/utf8.h"
#include "../base/xalloc.h"
#include "backends.h"

void backend_env_free(struct backend_env *env)
{
	free(env->include_dir);
	free(env->include_suffix);
	env->include_dir = env->include_suffix = NULL;
}

void render_shown(struct sbuf *sb, const char *s)
{
	if (!s) {
		sbuf_puts(sb, "(none)");
		return;
	}
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s);
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = u[i] < 0x80 ? 1 : utf8_decode(u + i, len - i, &cp);
		if (u[i] == '\\') {
			sbuf_puts(sb, "\\\\");
			i++;
		} else if (n == 0 || u[i] < 0x20 || u[i] == 0x7f) {
			sbuf_printf(sb, "\\x%02X", u[i]);
			i++;
		} else {
			sbuf_append(sb, u + i, n);
			i += n;
		}
	}
}

void render_add(struct rendered *r, char *path, struct sbuf *content, uint32_t mode)
{
	r->files = xrealloc(r->files, (r->n + 1) * sizeof(*r->files));
	struct rendered_file *f = &r->files[r->n++];
	memset(f, 0, sizeof(*f));
	f->path = path;
	f->content = sbuf_detach(content, &f->len);
	f->mode = mode;
}

void render_config_files(const struct stack_desc *st, struct rendered *r)
{
	for (size_t i = 0; i < st->nfiles; i++) {
		struct sbuf c = SBUF_INIT;
		sbuf_append(&c, st->files[i].content, st->files[i].len);
		render_add(r, xstrdup(st->files[i].path), &c, 0644);
	}
}

static int file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rendered_file *)a)->path, ((const struct rendered_file *)b)->path);
}

int render_finish(const struct stack_desc *st, struct rendered *r, struct sbuf *err)
{
	if (r->n > 1)
		qsort(r->files, r->n, sizeof(r->files[0]), file_cmp);
	for (size_t i = 1; i < r->n; i++) {
		if (strcmp(r->files[i - 1].path, r->files[i].path) == 0) {
			render_who(err, st, NULL);
			sbuf_puts(err, ": two of its files would be ");
			render_shown(err, r->files[i].path);
			sbuf_puts(err, " (a config file over a generated one)");
			rendered_free(r);
			return -1;
		}
	}
	return 0;
}

void rendered_free(struct rendered *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->files[i].path);
		free(r->files[i].content);
		free(r->files[i].owner);
	}
	free(r->files);
	memset(r, 0, sizeof(*r));
}

void act_add(struct act_results *r, const char *unit, enum act_state state, const char *detail)
{
	r->v = xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
	r->v[r->n++] = (struct act_result){xstrdup(unit ? unit : ""), state, xstrdup(detail ? detail : "")};
}

void act_results_free(struct act_results *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].unit);
		free(r->v[i].detail);
	}
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

bool render_has_secrets(const struct service_desc *s)
{
	for (size_t i = 0; i < s->nenv; i++)
		if (s->env[i].kind != ENV_LITERAL)
			return true;
	return false;
}

char *secrets_sidecar_path(const char *stack, const char *service)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "/etc/punix/secrets/%s/%s.env", stack, service);
	return sbuf_detach(&sb, NULL);
}

void render_secrets_file(const struct stack_desc *st, const struct service_desc *s,
			 const struct secret_value *secrets, size_t nsecrets,
			 void (*line)(struct sbuf *out, const char *key, const char *value), const char *owner,
			 struct rendered *v)
{
	struct sbuf sb = SBUF_INIT;
	for (size_t i = 0; i < s->nenv; i++) {
		if (s->env[i].kind == ENV_LITERAL)
			continue;
		const char *val = "";
		for (size_t k = 0; k < nsecrets; k++)
			if (!strcmp(secrets[k].service, s->name) && !strcmp(secrets[k].key, s->env[i].key))
				val = secrets[k].value;
		line(&sb, s->env[i].key, val);
	}
	render_add(v, secrets_sidecar_path(st->name, s->name), &sb, 0600);
	struct rendered_file *f = &v->files[v->n - 1];
	f->secret = true;
	if (owner)
		f->owner = xstrdup(owner);
}

void render_who(struct sbuf *err, const struct stack_desc *st, const struct service_desc *s)
{
	sbuf_puts(err, "stack '");
	render_shown(err, st->name);
	sbuf_putc(err, '\'');
	if (s) {
		sbuf_puts(err, ": service '");
		render_shown(err, s->name);
		sbuf_putc(err, '\'');
	}
}

void render_refusal(struct sbuf *err, const struct desc_loc *at, const struct stack_desc *st,
		    const struct service_desc *s, const char *backend, const char *fmt, va_list ap)
{
	if (!at || !at->file)
		at = &st->loc;
	if (at->file)
		sbuf_printf(err, "%s:%u:%u: ", at->file, at->line, at->col);
	sbuf_puts(err, "[E6] ");
	render_who(err, st, s);
	sbuf_printf(err, ": backend '%s' ", backend);
	sbuf_vprintf(err, fmt, ap);
}
