/*
 * backends.h - the registry of service backends (docs/services.md, "The
 * backend registry"): a static const table, name -> generator and optional
 * activator.
 *
 * A generator renders a stack into files (path, content, mode); it is pure:
 * what it needs of the target (the systemd unit directory, supervisord's
 * include directory) is handed to it in a backend_env. An activator runs
 * after the flip: it is given the services of the new generation (each with
 * whether its files changed) and the names of those the previous one had
 * and this one lacks, and returns one result per name. A backend without an
 * activator renders and deploys; asking for --activate then fails (exit 1)
 * after the flip, which stands.
 */
#ifndef PUNIX_ENGINE_BACKENDS_H
#define PUNIX_ENGINE_BACKENDS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/ops.h"
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

/* What a backend knows of the target, from the op's plan and (prepare) the target itself. */
struct backend_env {
	const char *unit_dir;  /* systemd: --unit-dir */
	const char *conf;      /* supervisord: --supervisor-conf (NULL: the default) */
	char *include_dir;     /* supervisord: the directory of conf's [include] files glob (prepare) */
	char *include_suffix;  /* and what follows its '*' (".conf"): a program's file is <dir>/<name><suffix> */
	bool enable;           /* --enable */
};
void backend_env_free(struct backend_env *env);

struct backend_args {
	const struct backend_env *env;
	pkg_path_fn pkg_path;
	void *arg;
	const struct secret_value *secrets;
	size_t nsecrets;
};

/* ---- activation ------------------------------------------------------------------------ */

struct act_unit {
	char *unit;    /* what the backend acts on: "web.service", or supervisord's program "web" */
	char *service; /* the stack's service */
	char *path;    /* the file that defines it */
	bool changed;  /* its file or its secrets differ from the previous generation's (or there is none) */
};

struct act_set {
	struct act_unit *units; /* the new generation's, in its services' order */
	size_t n;
	char **gone;            /* units of the previous generation the new one lacks */
	size_t ngone;
	/*
	 * systemd: each service's <name>-provision.service, run after the
	 * services; changed: its file changed, or its service's unit did.
	 */
	struct act_unit *provisions;
	size_t nprovisions;
};

enum act_state {
	ACT_STARTED,     /* detail: a note, e.g. "not enabled for boot" */
	ACT_UNCHANGED,
	ACT_FAILED,      /* detail: why */
	ACT_STOPPED,
	ACT_STOP_FAILED, /* detail: why */
	ACT_NOTE,        /* detail: a line of its own, not about one unit */
	ACT_PROVISIONED, /* unit: the service whose provision ran */
	ACT_PROVISION_FAILED, /* unit: <name>-provision.service; detail: why */
};

struct act_result {
	char *unit;
	enum act_state state;
	char *detail;
};

struct act_results {
	struct act_result *v;
	size_t n;
};

void act_add(struct act_results *r, const char *unit, enum act_state state, const char *detail);
void act_results_free(struct act_results *r);

struct op_ctx;

struct backend {
	const char *name;
	/* Renders every file of a generation of st; 0, or -1 with err set. */
	int (*generate)(const struct stack_desc *st, const struct backend_args *a, struct rendered *out,
			struct sbuf *err);
	/* Fills what the backend needs of the target into env (NULL: nothing); 0, or -1 with err set. */
	int (*prepare)(struct punix_ops *tops, struct backend_env *env, struct sbuf *err);
	/* Activation's name for a service, and the path of the file that defines it. */
	void (*unit)(const struct backend_env *env, const char *service, bool timer, struct sbuf *unit,
		     struct sbuf *path);
	/* After the flip: applies set, one result per unit (NULL: no activator). Never undoes anything. */
	void (*activate)(struct op_ctx *c, const struct backend_env *env, const struct act_set *set,
			 struct act_results *out);
};

/* The registry: entry i (NULL past the end), and by name (NULL if unknown). */
const struct backend *backend_at(size_t i);
const struct backend *backend_find(const char *name);

/*
 * Renders st with the backend it names: 0, or -1 with err set (an unknown
 * backend: "stack 'S': unsupported backend "X"; supported: systemd,
 * supervisord", or what the generator refuses).
 */
int backend_render(const struct stack_desc *st, const struct backend_args *a, struct rendered *out,
		   struct sbuf *err);

/* ---- helpers for generators (render.c) --------------------------------------------------- */

void rendered_free(struct rendered *r);
/* s in a message, kept on one line: control bytes, '\' and bytes that are not UTF-8 escaped. */
void render_shown(struct sbuf *sb, const char *s);
/* Appends a file (path and content taken over). */
void render_add(struct rendered *r, char *path, struct sbuf *content, uint32_t mode);
/* The stack's configFiles, mode 0644. */
void render_config_files(const struct stack_desc *st, struct rendered *r);
/* "stack 'S'" and, with s, ": service 'N'", each name shown on one line (render_shown). */
void render_who(struct sbuf *err, const struct stack_desc *st, const struct service_desc *s);
/*
 * A generator's refusal: "FILE:L:C: [E6] stack 'S': service 'N': backend
 * 'B' " (located at at, else at the stack), then fmt with ap.
 */
void render_refusal(struct sbuf *err, const struct desc_loc *at, const struct stack_desc *st,
		    const struct service_desc *s, const char *backend, const char *fmt, va_list ap);
/* Whether the service has secret environment entries (from_env, from_file, from_vault). */
bool render_has_secrets(const struct service_desc *s);
/* Where a service's secrets file (its sidecar) lives on the target, whatever its backend. */
char *secrets_sidecar_path(const char *stack, const char *service);
/*
 * Appends the service's secrets file: each secret entry written by line()
 * in the backend's syntax, at secrets_sidecar_path, mode 0600, marked
 * secret (kept apart, never hashed), owned by owner (NULL: root).
 */
void render_secrets_file(const struct stack_desc *st, const struct service_desc *s,
			 const struct secret_value *secrets, size_t nsecrets,
			 void (*line)(struct sbuf *out, const char *key, const char *value), const char *owner,
			 struct rendered *v);
/* Sorts r by path; -1 with err set (and r freed) when two files have one path. */
int render_finish(const struct stack_desc *st, struct rendered *r, struct sbuf *err);

/* ---- helpers for activators (backend_run.c) ----------------------------------------------- */

/*
 * Runs argv on the target (through its ops table, PATH and LC_ALL=C set),
 * its output (stdout and stderr) in out when out is not NULL. Returns the
 * run's result (<0: could not run) with *status the wait status.
 */
int act_run(struct op_ctx *c, const char *const *argv, int *status, struct sbuf *out);
/* The first of the candidates that exists on the target, else the first. */
const char *act_which(struct op_ctx *c, const char *const *candidates, size_t n);

#endif
