/*
 * backend_run.c - running an activator's commands on the target, through
 * its ops table (backends.h).
 */
#include <stdlib.h>

#include "backends.h"
#include "engine.h"
#include "op_internal.h"

const char *act_which(struct op_ctx *c, const char *const *candidates, size_t n)
{
	struct ops_stat st;
	for (size_t i = 0; i < n; i++)
		if (c->tops->stat(c->tops, candidates[i], 1, &st) == 0)
			return candidates[i];
	return candidates[0];
}

int act_run(struct op_ctx *c, const char *const *argv, int *status, struct sbuf *out)
{
	struct sbuf log = SBUF_INIT;
	sbuf_printf(&log, "%s/activate-%llu.log", c->e->state_dir, (unsigned long long)c->id);
	c->e->local->unlink(c->e->local, log.sb_buf);
	static const char *const env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
	struct ops_cmd cmd = {argv, env, NULL, log.sb_buf, 0, 0, 0, 0};
	*status = 0;
	int r = c->tops->run(c->tops, &cmd, status);
	char *text = NULL;
	size_t len;
	if (out && c->e->local->read_file(c->e->local, log.sb_buf, 1 << 16, &text, &len) == 0) {
		sbuf_append(out, text, len);
		free(text);
	}
	c->e->local->unlink(c->e->local, log.sb_buf);
	sbuf_free(&log);
	return r;
}
