/*
 * systemd.h - the systemd backend's generator: a stack's services become
 * unit files. Pure: it renders bytes and touches nothing.
 */
#ifndef PUNIX_ENGINE_SYSTEMD_H
#define PUNIX_ENGINE_SYSTEMD_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/sbuf.h"
#include "desc.h"

struct rendered_file {
	char *path;    /* absolute, on the target */
	char *content;
	size_t len;
	uint32_t mode;
	bool secret;   /* holds secret values: never hashed, kept apart, mode 0600 */
	char *owner;   /* a user to own it (secret files), or NULL */
};

/* The resolved value of one secret environment variable of one service. */
struct secret_value {
	const char *service;
	const char *key;
	const char *value;
};

struct rendered {
	struct rendered_file *files; /* sorted by path */
	size_t n;
};

/* The store path of a package module, from the caller's build plan. */
typedef const char *(*pkg_path_fn)(void *arg, const char *module);

/*
 * Whether v[0..len) can be written as a value in a line of a rendered file
 * (a unit, a tmpfiles.d or sysusers.d line, a KEY="value" line of a secrets
 * sidecar): no NUL byte, no line break, no other control character (0x00 to
 * 0x1f, 0x7f) but tab, valid UTF-8 (systemd refuses an environment file
 * that is not), and no trailing backslash (a unit file line ending in one
 * continues on the next). Returns true, or false with *why (when why is not
 * NULL) naming the class of byte that is wrong, never quoting the value:
 * "holds a NUL byte", "holds a line break", "holds a control character
 * other than tab", "is not valid UTF-8" or "ends in a backslash".
 */
bool systemd_value_ok(const char *v, size_t len, const char **why);

/*
 * Renders every file of a generation of st: its config files (mode 0644),
 * <unit_dir>/<name>.service per service (and <name>.timer for a timer),
 * /etc/tmpfiles.d/punix-<stack>.conf and /etc/sysusers.d/punix-<stack>.conf
 * when there is anything to put in them, and for a service with secrets
 * its EnvironmentFile sidecar (mode 0600, marked secret) with the values in
 * secrets. Returns 0, or -1 with err set (two files at one path, an unknown
 * backend, or a value that systemd_value_ok refuses: the message names the
 * stack, the service and the directive, never a secret's value).
 */
int backend_render(const struct stack_desc *st, const char *unit_dir, pkg_path_fn pkg_path, void *arg,
		   const struct secret_value *secrets, size_t nsecrets, struct rendered *out, struct sbuf *err);

/*
 * s[0..len) with each store path left open (DESC_OUT_OPEN module
 * DESC_OUT_CLOSE, desc.h) replaced by pkg_path(arg, module); malloc'd,
 * its length in *outlen. backend_render does this to a stack's args,
 * environment literals and config files before checking and rendering.
 */
char *backend_subst_outs(const char *s, size_t len, pkg_path_fn pkg_path, void *arg, size_t *outlen);

/* Where a service's secrets sidecar lives on the target. */
char *secrets_sidecar_path(const char *stack, const char *service);
void rendered_free(struct rendered *r);

/* The unit text for one service (for tests and golden files). */
void systemd_unit(const struct stack_desc *st, const struct service_desc *s, const char *pkg_path,
		  const char *unit_dir, struct sbuf *out);
void systemd_timer(const struct stack_desc *st, const struct service_desc *s, struct sbuf *out);

#endif
