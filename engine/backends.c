/*
 * backends.c - the registry of service backends (backends.h). To add one:
 * an entry here (its name also in base/backend_names.h, in the same
 * order: a unit test holds them equal), a generator, and, if the backend
 * can start what it renders, a unit function and an activator.
 */
#include <stdlib.h>
#include <string.h>

#include "../base/sbuf.h"
#include "../base/vec.h"
#include "../base/xalloc.h"
#include "backends.h"
#include "launchd.h"
#include "supervisord.h"
#include "systemd.h"

static const struct backend backends[] = {
	{"systemd", systemd_generate, NULL, systemd_unit_of, systemd_activate},
	{"supervisord", supervisord_generate, supervisord_prepare, supervisord_unit_of, supervisord_activate},
	/* no activator: rendered anywhere, loaded on the Mac by launchctl */
	{"launchd", launchd_generate, NULL, NULL, NULL},
};

const struct backend *backend_at(size_t i)
{
	return i < sizeof(backends) / sizeof(backends[0]) ? &backends[i] : NULL;
}

const struct backend *backend_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i].name, name) == 0)
			return &backends[i];
	return NULL;
}

char *backend_subst_outs(const char *s, size_t len, pkg_path_fn pkg_path, void *arg, size_t *outlen)
{
	struct sbuf sb = SBUF_INIT;
	const char *end = s + len, *o, *c;
	while ((o = memchr(s, DESC_OUT_OPEN, (size_t)(end - s))) && (c = memchr(o, DESC_OUT_CLOSE, (size_t)(end - o)))) {
		sbuf_append(&sb, s, (size_t)(o - s));
		char *module = xstrndup(o + 1, (size_t)(c - o - 1));
		sbuf_puts(&sb, pkg_path(arg, module));
		free(module);
		s = c + 1;
	}
	sbuf_append(&sb, s, (size_t)(end - s));
	return sbuf_detach(&sb, outlen);
}

/* A copy of a stack whose strings hold store paths where its desc left them open. */
struct resolved_stack {
	struct stack_desc st;
	VEC(void *) owned; /* what the copy allocated */
};

static const char *resolve_str(struct resolved_stack *r, const char *s, size_t len, size_t *outlen,
			       pkg_path_fn pkg_path, void *arg)
{
	if (!memchr(s, DESC_OUT_OPEN, len)) {
		*outlen = len;
		return s;
	}
	char *x = backend_subst_outs(s, len, pkg_path, arg, outlen);
	VEC_PUSH(&r->owned, x);
	return x;
}

static void *owned_copy(struct resolved_stack *r, const void *v, size_t size)
{
	void *x = xmalloc(size ? size : 1);
	if (size)
		memcpy(x, v, size);
	VEC_PUSH(&r->owned, x);
	return x;
}

static void resolve_stack(struct resolved_stack *r, const struct stack_desc *st, pkg_path_fn pkg_path, void *arg)
{
	size_t len;
	r->st = *st;
	struct service_desc *svcs = owned_copy(r, st->services, st->nservices * sizeof(*svcs));
	for (size_t i = 0; i < st->nservices; i++) {
		struct service_desc *s = &svcs[i];
		const char **args = owned_copy(r, s->args, s->nargs * sizeof(*args));
		for (size_t k = 0; k < s->nargs; k++)
			args[k] = resolve_str(r, args[k], strlen(args[k]), &len, pkg_path, arg);
		s->args = args;
		struct env_desc *env = owned_copy(r, s->env, s->nenv * sizeof(*env));
		for (size_t k = 0; k < s->nenv; k++)
			if (env[k].kind == ENV_LITERAL)
				env[k].value = resolve_str(r, env[k].value, strlen(env[k].value), &len, pkg_path, arg);
		s->env = env;
		if (s->provision) {
			struct provision_desc *pr = owned_copy(r, s->provision, sizeof(*pr));
			const char **pargs = owned_copy(r, pr->args, pr->nargs * sizeof(*pargs));
			for (size_t k = 0; k < pr->nargs; k++)
				pargs[k] = resolve_str(r, pargs[k], strlen(pargs[k]), &len, pkg_path, arg);
			pr->args = pargs;
			struct env_desc *penv = owned_copy(r, pr->env, pr->nenv * sizeof(*penv));
			for (size_t k = 0; k < pr->nenv; k++)
				penv[k].value = resolve_str(r, penv[k].value, strlen(penv[k].value), &len, pkg_path, arg);
			pr->env = penv;
			s->provision = pr;
		}
	}
	r->st.services = svcs;
	struct file_desc *files = owned_copy(r, st->files, st->nfiles * sizeof(*files));
	for (size_t i = 0; i < st->nfiles; i++)
		files[i].content = resolve_str(r, files[i].content, files[i].len, &files[i].len, pkg_path, arg);
	r->st.files = files;
}

static int render_with(const struct stack_desc *st, const struct backend_args *a, struct rendered *out,
		       struct sbuf *err);

/*
 * Every backend renders a stack whose strings hold store paths: a
 * "${Pkg.out}" the program composed is left open by the front end
 * (desc.h) until the packages are built, and closed here, once, for all.
 */
int backend_render(const struct stack_desc *st, const struct backend_args *a, struct rendered *out,
		   struct sbuf *err)
{
	struct resolved_stack r = {0};
	resolve_stack(&r, st, a->pkg_path, a->arg);
	int rc = render_with(&r.st, a, out, err);
	for (size_t i = 0; i < r.owned.n; i++)
		free(r.owned.v[i]);
	VEC_FREE(&r.owned);
	return rc;
}

static int render_with(const struct stack_desc *st, const struct backend_args *a, struct rendered *out,
		       struct sbuf *err)
{
	memset(out, 0, sizeof(*out));
	const struct backend *b = backend_find(st->backend);
	if (!b) {
		render_who(err, st, NULL);
		sbuf_puts(err, ": unsupported backend \"");
		render_shown(err, st->backend);
		sbuf_puts(err, "\"; supported: ");
		for (size_t i = 0; backend_at(i); i++)
			sbuf_printf(err, "%s%s", i ? ", " : "", backend_at(i)->name);
		return -1;
	}
	return b->generate(st, a, out, err);
}
