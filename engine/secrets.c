/*
 * secrets.c - resolving a stack's secrets at plan time. The values stay in
 * memory and reach only the sidecar files (0600, the service's owner).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "../base/strmap.h"
#include "../base/vec.h"
#include "../base/xalloc.h"
#include "build.h"
#include "engine.h"
#include "manifest.h"
#include "ownership.h"
#include "proto.h"
#include "systemd.h"
#include "op_internal.h"
#include "ssh.h"
#include "target.h"

/* NAME's value in env (NAME=VALUE entries, NULL-terminated), or NULL. */
static const char *env_lookup(char *const *env, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			return env[i] + n + 1;
	return NULL;
}

/*
 * Resolves every secret of the stack on this machine: from_env from the
 * environment the engine was given (the CLI's, read once), from_file from the file (one trailing newline
 * stripped). Every one that cannot be had is listed in one [E11] error.
 * The values stay in memory: they reach only the sidecar files.
 */
int resolve_secrets(struct op_ctx *c, const struct stack_desc *st)
{
	struct sbuf missing = SBUF_INIT;
	size_t nmissing = 0;
	VEC(struct secret_value) v = {0};
	for (size_t i = 0; i < st->nservices; i++) {
		const struct service_desc *s = &st->services[i];
		for (size_t k = 0; k < s->nenv; k++) {
			const struct env_desc *e = &s->env[k];
			if (e->kind == ENV_LITERAL)
				continue;
			char *value = NULL;
			size_t len = 0;
			const char *why = NULL;
			char errbuf[128];
			const struct bundle *bd = c->in ? c->in->bundle : NULL;
			if (bd && bd->build) {
				/* --build-on-target: resolved by the deployer, as it would for its own deploy */
				for (size_t j = 0; j < bd->nsecrets && !value; j++)
					if (!strcmp(bd->secrets[j].service, s->name) && !strcmp(bd->secrets[j].key, e->key)) {
						value = xstrdup(bd->secrets[j].value);
						len = strlen(value);
					}
				if (!value)
					why = "not sent by the deployer";
			} else if (e->kind == ENV_FROM_ENV) {
				const char *x = env_lookup(c->e->env, e->value);
				if (x) {
					value = xstrdup(x);
					len = strlen(x);
				} else {
					why = "not set";
				}
			} else {
				int r = c->e->local->read_file(c->e->local, e->value, 1 << 16, &value, &len);
				if (r < 0) {
					snprintf(errbuf, sizeof(errbuf), "%s", r == -EFBIG ? "larger than 64 KiB" : strerror(-r));
					why = errbuf;
					value = NULL;
				} else if (len && value[len - 1] == '\n') {
					value[--len] = '\0';
				}
			}
			/* one line of the sidecar: no NUL, line break or other control
			 * character but tab, valid UTF-8, no trailing backslash; why names
			 * the byte class, never the value */
			if (value && !systemd_value_ok(value, len, &why)) {
				memset(value, 0, len); /* do not leave secret values in freed memory */
				free(value);
				value = NULL;
			}
			if (!value) {
				sbuf_printf(&missing, "\n  %s of service '%s' (%s %s): %s", e->key, s->name,
					    e->kind == ENV_FROM_ENV ? "from_env" : "from_file", e->value, why);
				nmissing++;
				continue;
			}
			struct secret_value sv = {s->name, e->key, value};
			VEC_PUSH(&v, sv);
		}
	}
	c->secrets = v.v;
	c->nsecrets = v.n;
	int r = 0;
	if (nmissing)
		r = op_fail(c, 1, "[E11] stack '%s': %zu secret(s) cannot be resolved:%s", st->name, nmissing,
			    missing.sb_buf);
	sbuf_free(&missing);
	return r;
}

void free_secrets(struct op_ctx *c)
{
	for (size_t i = 0; i < c->nsecrets; i++) {
		/* do not leave secret values in freed memory */
		char *val = (char *)c->secrets[i].value;
		memset(val, 0, strlen(val));
		free(val);
	}
	free(c->secrets);
	c->secrets = NULL;
	c->nsecrets = 0;
}
