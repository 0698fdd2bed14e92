/*
 * engine.c - the engine object (engine.h): built in one place, from a
 * config the CLI (or a test) fills once; and the ops tables it works
 * through: a target's (this machine beneath its root, or an SSH
 * connection) and the local machine's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "../base/sbuf.h"
#include "../base/xalloc.h"
#include "engine.h"
#include "fetch.h"
#include "op_internal.h"
#include "ssh.h"
#include "target.h"

struct engine *engine_open(const struct engine_config *cfg, struct sbuf *err)
{
	struct engine *e = xcalloc(1, sizeof(*e));
	e->store = cfg->store;
	e->fault = cfg->fault;
	e->local = ops_faulty(cfg->fault, ops_local());
	/* read once, before anything else: a vault the CLI was given that cannot be used stops the command */
	if (cfg->vault_path && vault_open(e->local, cfg->vault_path, (int64_t)geteuid(), &e->vault, err) < 0) {
		free(e);
		return NULL;
	}
	/* the same for the settings of downloads: a variable with a value that cannot be meant stops it */
	if (fetch_settings_from_env(cfg->env, &e->fetch, err) < 0) {
		vault_free(&e->vault);
		free(e);
		return NULL;
	}
	e->state_dir = xstrdup(cfg->state_dir);
	e->crash_at = cfg->crash_at && *cfg->crash_at ? xstrdup(cfg->crash_at) : NULL;
	e->env = cfg->env;
	e->secrets = (struct secret_sources){e->env, cfg->vault_path ? &e->vault : NULL, e->local};
	e->ssh.home = cfg->ssh.home ? xstrdup(cfg->ssh.home) : NULL;
	e->ssh.agent_sock = cfg->ssh.agent_sock ? xstrdup(cfg->ssh.agent_sock) : NULL;
	e->ssh.local_user = cfg->ssh.local_user ? xstrdup(cfg->ssh.local_user) : NULL;
	e->per_host = cfg->per_host ? cfg->per_host : 2;
	e->local_workers = cfg->local_workers;
	e->static_punix = cfg->static_punix ? xstrdup(cfg->static_punix) : NULL;
	int r = uv_loop_init(&e->loop);
	if (r < 0) {
		sbuf_printf(err, "cannot start the event loop: %s", uv_strerror(r));
		goto fail_loop;
	}
	uv_idle_init(&e->loop, &e->flush);
	e->flush.data = e;
	e->jtail = &e->jhead;
	uv_idle_init(&e->loop, &e->here);
	e->here.data = e;
	e->htail = &e->hhead;
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
	return e;
fail:
	uv_close((uv_handle_t *)&e->flush, NULL);
	uv_close((uv_handle_t *)&e->here, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	uv_loop_close(&e->loop);
fail_loop:
	free((char *)e->ssh.home);
	free((char *)e->ssh.agent_sock);
	free((char *)e->ssh.local_user);
	free(e->state_dir);
	free(e->crash_at);
	free(e->static_punix);
	vault_free(&e->vault);
	free(e);
	return NULL;
}

void engine_close(struct engine *e)
{
	if (!e)
		return;
	uv_run(&e->loop, UV_RUN_DEFAULT); /* what is still submitted runs to its end, its records flushed */
	journal_flush_rest(e);
	uv_close((uv_handle_t *)&e->flush, NULL);
	uv_close((uv_handle_t *)&e->here, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	uv_loop_close(&e->loop);
	journal_close(e->journal);
	if (e->ssh_ready)
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
	free(e->static_punix);
	vault_free(&e->vault);
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

/*
 * libssh2 (and with it OpenSSL) is initialised only for an engine that has
 * an op over SSH: on the loop thread, before that op's first work item, so
 * never by two threads at once. A local op never pays for it.
 */
int engine_need_ssh(struct engine *e, const char *ssh, struct sbuf *err)
{
	if (!ssh || !*ssh || e->ssh_ready)
		return 0;
	if (ssh_library_init(err) < 0)
		return -EIO;
	e->ssh_ready = true;
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
