/*
 * supervisord.h - the supervisord backend (docs/services.md, "The
 * supervisord backend"): each service a [program:NAME] section in
 * <include dir>/NAME<suffix>, the include directory read from the
 * [include] files glob of --supervisor-conf; activated through
 * supervisorctl (reread, update, restart, status).
 */
#ifndef PUNIX_ENGINE_SUPERVISORD_H
#define PUNIX_ENGINE_SUPERVISORD_H

#include "backends.h"

/* The default --supervisor-conf (Debian's). */
#define SUPERVISORD_DEFAULT_CONF "/etc/supervisor/supervisord.conf"

/*
 * From a supervisord.conf's text (conf_path: where it is, for a relative
 * glob and %(here)s), the directory and suffix of its [include] files
 * glob: the first of its globs of the form DIR/ *SUFFIX (no other wildcard).
 * 0, or -1 with err set. Pure.
 */
int supervisord_include(const char *conf_path, const char *text, size_t len, char **dir, char **suffix,
			struct sbuf *err);

/* The generator (backends.h): config files, and <dir>/<service><suffix> per service. */
int supervisord_generate(const struct stack_desc *st, const struct backend_args *a, struct rendered *out,
			 struct sbuf *err);
/* Reads env->conf (or the default) on the target: env->include_dir and include_suffix. */
int supervisord_prepare(struct punix_ops *tops, struct backend_env *env, struct sbuf *err);
/* A service's program is its name; its file <include dir>/<name><suffix>. */
void supervisord_unit_of(const struct backend_env *env, const char *service, bool timer, struct sbuf *unit,
			 struct sbuf *path);
/* The program text of one service (for tests). */
void supervisord_program(const struct stack_desc *st, const struct service_desc *s, const char *pkg_path,
			 struct sbuf *out);
/* The activator (supervisord_activate.c). */
void supervisord_activate(struct op_ctx *c, const struct backend_env *env, const struct act_set *set,
			  struct act_results *out);

#endif
