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
#include "vault.h"

/*
 * Resolves every secret of the stack on this machine (secret_resolve,
 * vault.h): from_env from the environment the engine was given (the CLI's,
 * read once), from_file from the file (one trailing newline stripped),
 * from_vault from the --vault-secrets file engine_open read. Every one
 * that cannot be had is listed in one [E11] error, naming where it was to
 * come from, never a value. The values stay in memory: they reach only the
 * sidecar files.
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
			struct sbuf reason = SBUF_INIT;
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
			} else if (secret_resolve(&c->e->secrets, e->kind, e->value, &value, &len, &reason) < 0) {
				why = sbuf_str(&reason);
			}
			/* one line of the sidecar: no NUL, line break or other control
			 * character but tab, valid UTF-8, no trailing backslash; why names
			 * the byte class, never the value */
			if (value && !systemd_value_ok(value, len, &why)) {
				secret_wipe(value, len); /* do not leave secret values in freed memory */
				free(value);
				value = NULL;
			}
			if (!value) {
				sbuf_printf(&missing, "\n  %s of service '%s' (%s %s): %s", e->key, s->name,
					    env_kind_name(e->kind), e->value, why);
				nmissing++;
				sbuf_free(&reason);
				continue;
			}
			sbuf_free(&reason);
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
		secret_wipe(val, strlen(val));
		free(val);
	}
	free(c->secrets);
	c->secrets = NULL;
	c->nsecrets = 0;
}
