/*
 * host_confirm.c - the deployer's side of confirm-or-revert in host mode
 * (docs/deploy.md, "Confirm or revert"): the arguments that ask the
 * target's punix to wait, and the confirmation given over a new connection
 * once it waits. Also the static punix as a store path and where a
 * bootstrapped one is on a target, which both this and host_ops.c need.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/xalloc.h"
#include "../store/store.h"
#include "engine.h"
#include "host.h"
#include "op_internal.h"
#include "target.h"

/* ---- the static punix, as a store path ---------------------------------------------------- */

/*
 * The static build of punix as a path of the local store, added on first
 * use: "<hash>-punix-static-<version>" with bin/punix, its name hashed
 * from the binary's own hash (content-addressed like any path).
 */
char *host_static_path(const char *static_punix, const char *store_root, char **bin, size_t *len, struct sbuf *err)
{
	struct punix_ops *o = ops_local();
	char *buf = NULL;
	size_t n = 0;
	int r = o->read_file(o, static_punix, 256u << 20, &buf, &n);
	if (r < 0) {
		sbuf_printf(err, "reading the static punix %s: %s", static_punix, ops_strerror(r));
		return NULL;
	}
	char arch[64] = "", sys[96];
	o->arch(o, arch, sizeof(arch));
	store_system_of(arch, sys, sizeof(sys));
	unsigned char h[32];
	struct sbuf id = SBUF_INIT;
	sbuf_printf(&id, "punix-static\n%s\n", sys);
	store_sha256(buf, n, h);
	sbuf_append(&id, h, 32);
	store_sha256(id.sb_buf, id.sb_len, h);
	sbuf_free(&id);
	char b32[STORE_HASH_CHARS + 1];
	store_base32(h, b32);
	struct sbuf path = SBUF_INIT;
	sbuf_printf(&path, "%s/%s-punix-static-%s", store_root, b32, PUNIX_VERSION_TEXT);
	if (bin) {
		*bin = buf;
		*len = n;
	} else {
		free(buf);
	}
	return sbuf_detach(&path, NULL);
}

/* The transport root: the request's, or a recovery's plan's ("" when none). */
static const char *troot_of(struct op_ctx *c)
{
	const char *t = c->parent ? c->plan.transport_root : c->req.target.transport_root;
	return t && *t ? t : NULL;
}

/* Where a bootstrapped punix would be on the target, if this deployer has one to push. */
char *host_bootstrap_exe(struct op_ctx *c)
{
	if (!c->e->static_punix)
		return NULL;
	struct sbuf err = SBUF_INIT;
	/* named by the binary's hash (it is added here and pushed only when the target lacks it) */
	char *path = host_static_path(c->e->static_punix, c->e->store->root, NULL, NULL, &err);
	sbuf_free(&err);
	if (!path)
		return NULL;
	struct sbuf x = SBUF_INIT;
	const char *tr = troot_of(c);
	sbuf_printf(&x, "%s%s/bin/punix", tr ? tr : "", path);
	free(path);
	return sbuf_detach(&x, NULL);
}

/* --confirm-timeout and the rest, for the target's deploy, rollback or set-current. */
void host_confirm_args(struct op_ctx *c, const char **a, size_t *n, char secs[24])
{
	const struct op_plan *p = &c->plan;
	if (!p->confirm_timeout)
		return;
	snprintf(secs, 24, "%ld", p->confirm_timeout);
	a[(*n)++] = "--confirm-timeout";
	a[(*n)++] = secs;
	a[(*n)++] = "--confirm-token";
	a[(*n)++] = p->confirm_token;
	if (p->health) {
		a[(*n)++] = "--health";
		a[(*n)++] = p->health;
	}
}

static void collect(void *arg, const char *buf, size_t n)
{
	sbuf_append(arg, buf, n);
}

static void collect_err(void *arg, const char *buf, size_t n)
{
	(void)arg;
	(void)buf;
	(void)n; /* the same error is in the JSON object on standard output */
}

/* The message of the target's --json failure object, or what it said. */
static const char *confirm_refusal(struct sbuf *out)
{
	json_t *j = json_loadb(sbuf_str(out), out->sb_len, 0, NULL);
	json_t *e = j ? json_object_get(j, "error") : NULL;
	const char *m = json_is_object(e) ? json_string_value(json_object_get(e, "message")) : NULL;
	if (m) {
		struct sbuf copy = SBUF_INIT;
		sbuf_puts(&copy, m);
		sbuf_reset(out);
		sbuf_puts(out, copy.sb_buf);
		sbuf_free(&copy);
	}
	if (j)
		json_decref(j);
	return sbuf_str(out);
}

/*
 * Over a new connection (a new SSH session: the deploy may have cut the
 * one it ran on, or only new ones), `punix service confirm` on the target.
 * On a worker, while the first connection waits for the op's end.
 */
void host_give_confirmation(struct op_ctx *c, struct sbuf *why)
{
	const struct op_plan *p = &c->plan;
	/* a test's deployer dying as the target waits for it: the confirmation never comes */
	op_maybe_crash(c, "run", "confirming");
	struct sbuf err = SBUF_INIT;
	struct punix_ops *o = engine_target_ops(c->e, &c->req.target, &err);
	if (!o) {
		sbuf_printf(why, "the deployer could not open a new connection to confirm: %s", err.sb_buf);
		sbuf_free(&err);
		return;
	}
	char *boot = p->remote_punix ? NULL : host_bootstrap_exe(c);
	char *line = host_line(p->remote_punix, p->transport_root, boot);
	struct host_conn h;
	int r = host_connect(o, line, p->store_root, p->transport_root, &h, &err);
	free(line);
	free(boot);
	if (r != 0) {
		sbuf_printf(why, "the deployer could not start the target's punix over a new connection to confirm: %s",
			    err.sb_buf);
	} else {
		const char *argv[16];
		size_t n = 0;
		argv[n++] = "service";
		argv[n++] = "confirm";
		argv[n++] = c->stack;
		argv[n++] = p->confirm_token;
		if (p->transport_root && *p->transport_root) {
			argv[n++] = "--transport-root";
			argv[n++] = p->transport_root;
		}
		argv[n++] = "--deployments-root";
		argv[n++] = p->deployments_root;
		argv[n++] = "--json";
		struct sbuf out = SBUF_INIT, said = SBUF_INIT;
		int code = 0;
		r = host_run(&h, argv, n, NULL, collect, collect_err, &out, &code, &err);
		(void)said;
		if (r < 0)
			sbuf_printf(why, "the confirmation over a new connection broke: %s", err.sb_buf);
		else if (code != 0)
			sbuf_printf(why, "the target refused the confirmation: %s", confirm_refusal(&out));
		host_close(&h, NULL);
		sbuf_free(&out);
		sbuf_free(&said);
	}
	sbuf_free(&err);
	engine_target_ops_free(o);
}

