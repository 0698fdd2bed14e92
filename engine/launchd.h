/*
 * launchd.h - the launchd backend (docs/services.md, "The launchd
 * backend"): each service a property list in /Library/LaunchDaemons,
 * rendered on any machine; it has no activator ("render now, activate
 * later": loading the jobs is launchctl's, on the Mac).
 */
#ifndef PUNIX_ENGINE_LAUNCHD_H
#define PUNIX_ENGINE_LAUNCHD_H

#include "backends.h"

/* Where launchd reads system daemons from. */
#define LAUNCHD_DIR "/Library/LaunchDaemons"

/* The generator (backends.h): config files, and LAUNCHD_DIR/punix.<Stack>.<name>.plist per service. */
int launchd_generate(const struct stack_desc *st, const struct backend_args *a, struct rendered *out,
		     struct sbuf *err);
/* A service's job label, punix.<stack>.<service>, and its file. */
void launchd_unit_of(const struct backend_env *env, const char *stack, const char *service, struct sbuf *unit,
		     struct sbuf *path);
/* The property list of one service (for tests). */
void launchd_plist(const struct stack_desc *st, const struct service_desc *s, const char *pkg_path, struct sbuf *out);

#endif
