/*
 * systemd.h - the systemd backend's generator: a stack's services become
 * unit files. Pure: it renders bytes and touches nothing.
 */
#ifndef PUNIX_ENGINE_SYSTEMD_H
#define PUNIX_ENGINE_SYSTEMD_H

#include <stdint.h>

#include "../base/sbuf.h"
#include "desc.h"

struct rendered_file {
	char *path;    /* absolute, on the target */
	char *content;
	size_t len;
	uint32_t mode;
};

struct rendered {
	struct rendered_file *files; /* sorted by path */
	size_t n;
};

/* The store path of a package module, from the caller's build plan. */
typedef const char *(*pkg_path_fn)(void *arg, const char *module);

/*
 * Renders every file of a generation of st: its config files (mode 0644)
 * and one <unit_dir>/<name>.service per service. Returns 0, or -1 with err
 * set (a config file colliding with a unit, a secret, an unknown backend).
 */
int backend_render(const struct stack_desc *st, const char *unit_dir, pkg_path_fn pkg_path, void *arg,
		   struct rendered *out, struct sbuf *err);
void rendered_free(struct rendered *r);

/* The unit text for one service (for tests and golden files). */
void systemd_unit(const struct stack_desc *st, const struct service_desc *s, const char *pkg_path, struct sbuf *out);

#endif
