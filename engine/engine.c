/*
 * engine.c - the engine object (engine.h): built in one place, from a
 * config the CLI (or a test) fills once; and the ops tables it works
 * through: a target's (this machine beneath its root, or an SSH
 * connection) and the local machine's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../base/sbuf.h"
#include "../base/xalloc.h"
#include "engine.h"
#include "op_internal.h"
#include "ssh.h"
#include "target.h"

struct engine *engine_open(const struct engine_config *cfg, struct sbuf *err)
{
	struct engine *e = xcalloc(1, sizeof(*e));
	e->store = cfg->store;
	e->fault = cfg->fault;
	e->local = ops_faulty(cfg->fault, ops_local());
	e->state_dir = xstrdup(cfg->state_dir);
	e->crash_at = cfg->crash_at && *cfg->crash_at ? xstrdup(cfg->crash_at) : NULL;
	e->env = cfg->env;
	e->ssh.home = cfg->ssh.home ? xstrdup(cfg->ssh.home) : NULL;
	e->ssh.agent_sock = cfg->ssh.agent_sock ? xstrdup(cfg->ssh.agent_sock) : NULL;
	e->ssh.local_user = cfg->ssh.local_user ? xstrdup(cfg->ssh.local_user) : NULL;
	e->per_host = cfg->per_host ? cfg->per_host : 2;
	e->local_workers = cfg->local_workers;
	int r = uv_loop_init(&e->loop);
	if (r < 0) {
		sbuf_printf(err, "cannot start the event loop: %s", uv_strerror(r));
		goto fail_loop;
	}
	uv_idle_init(&e->loop, &e->flush);
	e->flush.data = e;
	e->jtail = &e->jhead;
	/* the journal's directory is made through the seam, like every other effect */
	r = ops_mkdir_p(e->local, e->state_dir, 0700);
	if (r < 0) {
		sbuf_printf(err, "journal: cannot make %s: %s", e->state_dir, ops_strerror(r));
		goto fail;
	}
	struct journal_err je = {0};
	if (journal_open(&e->journal, e->state_dir, &je) < 0) {
		sbuf_printf(err, "%s", je.msg[0] ? je.msg : "journal: cannot open it");
		goto fail;
	}
	if (ssh_library_init() < 0) {
		sbuf_puts(err, "cannot initialise libssh2");
		journal_close(e->journal);
		goto fail;
	}
	return e;
fail:
	uv_close((uv_handle_t *)&e->flush, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	uv_loop_close(&e->loop);
fail_loop:
	free((char *)e->ssh.home);
	free((char *)e->ssh.agent_sock);
	free((char *)e->ssh.local_user);
	free(e->state_dir);
	free(e->crash_at);
	free(e);
	return NULL;
}

void engine_close(struct engine *e)
{
	if (!e)
		return;
	uv_run(&e->loop, UV_RUN_DEFAULT); /* what is still submitted runs to its end, its records flushed */
	uv_close((uv_handle_t *)&e->flush, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	uv_loop_close(&e->loop);
	journal_close(e->journal);
	ssh_library_exit();
	for (struct executor *x = e->executors, *n; x; x = n) {
		n = x->next;
		free(x->key);
		free(x);
	}
	free((char *)e->ssh.home);
	free((char *)e->ssh.agent_sock);
	free((char *)e->ssh.local_user);
	free(e->state_dir);
	free(e->crash_at);
	free(e);
}

struct store *engine_store(struct engine *e)
{
	return e->store;
}

struct punix_ops *engine_local(struct engine *e)
{
	return e->local;
}

static char *in_home(const char *home, const char *rel)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s", strcmp(home, "/") ? home : "", rel);
	return sbuf_detach(&sb, NULL);
}

/*
 * Who to log in as, where, and with what, as OpenSSH would decide it: the
 * URL, then the defaults (the local user, port 22,
 * ~/.ssh/known_hosts; the agent, then ~/.ssh/id_ed25519, id_ecdsa,
 * id_rsa). --key means that key alone; --known-hosts that file.
 */
static int ssh_resolve(struct engine *e, const struct target_spec *t, struct ssh_target *st, struct sbuf *err)
{
	static const struct ssh_defaults none = {NULL, NULL, NULL};
	const struct ssh_defaults *d = t->ssh_defaults ? t->ssh_defaults : e ? &e->ssh : &none;
	if (ssh_parse_url(t->ssh, st) < 0) {
		sbuf_printf(err, "'%s' is not a target: ssh://[USER@]HOST[:PORT]", t->ssh);
		return -1;
	}
	st->local = e ? e->local : ops_local();
	st->timeout_ms = 30000;
	if (!st->user)
		st->user = xstrdup(d->local_user && *d->local_user ? d->local_user : "root");
	if (!st->port)
		st->port = 22;
	if (t->known_hosts && *t->known_hosts) {
		free(st->known_hosts);
		st->known_hosts = xstrdup(t->known_hosts);
	} else if (!st->known_hosts && d->home) {
		st->known_hosts = in_home(d->home, ".ssh/known_hosts");
	} else if (!st->known_hosts) {
		sbuf_printf(err, "no known_hosts file for %s@%s:%d: give --known-hosts FILE (host keys are never trusted "
				 "on first use)", st->user, st->host, st->port);
		ssh_target_free(st);
		return -1;
	}
	if (t->key && *t->key) {
		for (size_t i = 0; i < st->nkeys; i++)
			free(st->keys[i]);
		st->nkeys = 0;
		plan_list_add(&st->keys, &st->nkeys, t->key);
		return 0;
	}
	if (d->agent_sock && *d->agent_sock)
		st->agent_sock = xstrdup(d->agent_sock);
	if (d->home) {
		static const char *const defaults[] = {".ssh/id_ed25519", ".ssh/id_ecdsa", ".ssh/id_rsa"};
		for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
			char *k = in_home(d->home, defaults[i]);
			plan_list_add(&st->keys, &st->nkeys, k);
			free(k);
		}
	}
	return 0;
}

struct punix_ops *engine_target_ops(struct engine *e, const struct target_spec *t, struct sbuf *err)
{
	struct punix_ops *base;
	if (t->ssh && t->ssh[0]) {
		struct ssh_target st;
		if (ssh_resolve(e, t, &st, err) < 0)
			return NULL;
		base = ops_ssh_connect(&st, err);
		ssh_target_free(&st);
		if (!base)
			return NULL;
		if (t->transport_root && t->transport_root[0])
			return ops_rebased(base, t->transport_root);
		return base;
	}
	/* This machine: every path beneath the transport root, or beneath "/". */
	const char *root = t->transport_root && t->transport_root[0] ? t->transport_root : "/";
	struct sbuf why = SBUF_INIT;
	base = ops_beneath(root, &why);
	if (!base) {
		sbuf_printf(err, "the target's root %s cannot be used: %s", root, why.sb_buf);
		sbuf_free(&why);
		return NULL;
	}
	sbuf_free(&why);
	return ops_faulty(e ? e->fault : NULL, base);
}

void engine_target_ops_free(struct punix_ops *o)
{
	struct punix_ops *f = ops_faulty_base(o);
	if (f) {
		ops_faulty_free(o);
		o = f;
	}
	if (ops_is_beneath(o)) {
		ops_beneath_free(o);
		return;
	}
	struct punix_ops *base = ops_rebased_base(o);
	ops_rebased_free(o);
	ops_ssh_close(base ? base : o);
}
