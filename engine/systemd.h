/*
 * systemd.h - the systemd backend's generator: a stack's services become
 * unit files. Pure: it renders bytes and touches nothing.
 */
#ifndef PUNIX_ENGINE_SYSTEMD_H
#define PUNIX_ENGINE_SYSTEMD_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/sbuf.h"
#include "backends.h"
#include "desc.h"

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
 * The systemd backend's generator (backends.h): every file of a generation
 * of st: its config files (mode 0644), <unit_dir>/<name>.service per
 * service (and <name>.timer for a timer), /etc/tmpfiles.d/punix-<stack>.conf
 * and /etc/sysusers.d/punix-<stack>.conf when there is anything to put in
 * them, and for a service with secrets its EnvironmentFile sidecar (mode
 * 0600, marked secret) with the values in a->secrets. Returns 0, or -1 with
 * err set (two files at one path, or a value that systemd_value_ok refuses:
 * the message names the stack, the service and the directive, never a
 * secret's value).
 */
int systemd_generate(const struct stack_desc *st, const struct backend_args *a, struct rendered *out,
		     struct sbuf *err);
/* Activation's unit for a service: <name>.service, or <name>.timer for a timer, in the unit directory. */
void systemd_unit_of(const struct backend_env *env, const char *service, bool timer, struct sbuf *unit,
		     struct sbuf *path);
/* The systemd activator (activate_systemd.c): daemon-reload, stop what went, (enable,) restart what changed. */
void systemd_activate(struct op_ctx *c, const struct backend_env *env, const struct act_set *set,
		      struct act_results *out);

/*
 * s[0..len) with each store path left open (DESC_OUT_OPEN module
 * DESC_OUT_CLOSE, desc.h) replaced by pkg_path(arg, module); malloc'd,
 * its length in *outlen. backend_render does this to a stack's args,
 * environment literals and config files before checking and rendering.
 */
char *backend_subst_outs(const char *s, size_t len, pkg_path_fn pkg_path, void *arg, size_t *outlen);

/* The unit text for one service (for tests and golden files). */
void systemd_unit(const struct stack_desc *st, const struct service_desc *s, const char *pkg_path,
		  const char *unit_dir, struct sbuf *out);
void systemd_timer(const struct stack_desc *st, const struct service_desc *s, struct sbuf *out);
/* <name>-provision.service of a service with a provision; pkg_path is the provision's package's. */
void systemd_provision_unit(const struct stack_desc *st, const struct service_desc *s, const char *pkg_path,
			    struct sbuf *out);

#endif
