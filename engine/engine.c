/*
 * engine.c - the ops tables the engine works through: a target's (this
 * machine beneath its root, or an SSH connection) and the store's.
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
#include "systemd.h"
#include "op_internal.h"
#include "ssh.h"
#include "target.h"

struct punix_ops *engine_target_ops(const struct target_spec *t, struct sbuf *err)
{
	struct punix_ops *base;
	if (t->ssh && t->ssh[0]) {
		struct ssh_target st;
		if (ssh_parse_url(t->ssh, &st) < 0) {
			sbuf_printf(err, "'%s' is not a target: ssh://USER@HOST[:PORT]", t->ssh);
			return NULL;
		}
		st.known_hosts = t->known_hosts;
		st.key = t->key;
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
	return ops_faulty(base);
}

struct punix_ops *engine_store_ops(void)
{
	return ops_faulty(ops_local());
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
