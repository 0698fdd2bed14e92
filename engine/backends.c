/*
 * backends.c - the registry of service backends (backends.h). To add one:
 * an entry here (its name also in base/backend_names.h, in the same
 * order: a unit test holds them equal), a generator, and, if the backend
 * can start what it renders, a unit function and an activator.
 */
#include <string.h>

#include "../base/sbuf.h"
#include "backends.h"
#include "supervisord.h"
#include "systemd.h"

static const struct backend backends[] = {
	{"systemd", systemd_generate, NULL, systemd_unit_of, systemd_activate},
	{"supervisord", supervisord_generate, supervisord_prepare, supervisord_unit_of, supervisord_activate},
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

int backend_render(const struct stack_desc *st, const struct backend_args *a, struct rendered *out,
		   struct sbuf *err)
{
	memset(out, 0, sizeof(*out));
	const struct backend *b = backend_find(st->backend);
	if (!b) {
		sbuf_puts(err, "stack '");
		render_shown(err, st->name);
		sbuf_puts(err, "': unsupported backend \"");
		render_shown(err, st->backend);
		sbuf_puts(err, "\"; supported: ");
		for (size_t i = 0; backend_at(i); i++)
			sbuf_printf(err, "%s%s", i ? ", " : "", backend_at(i)->name);
		return -1;
	}
	return b->generate(st, a, out, err);
}
