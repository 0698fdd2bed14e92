/*
 * cmd_service_host.c - the parts of `punix service` that are host mode's
 * (docs/hosts.md): reading the generation bundle a deployer hands the
 * target's punix, and status and verify answered by the target's punix.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../engine/engine.h"
#include "../../engine/host.h"
#include "cli.h"

int cli_read_bundle(struct cli_ctx *cx, int fd, struct bundle *b)
{
	struct sbuf raw = SBUF_INIT;
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sbuf_free(&raw);
			return cli_fail(cx, EXIT_FAILURE_, "reading the bundle from descriptor %d: %s", fd, strerror(errno));
		}
		if (n == 0)
			break;
		sbuf_append(&raw, buf, (size_t)n);
		if (raw.sb_len > (256u << 20)) {
			sbuf_free(&raw);
			return cli_fail(cx, EXIT_FAILURE_, "the bundle from the deployer exceeds 256 MiB");
		}
	}
	memset(buf, 0, sizeof(buf));
	close(fd);
	struct sbuf err = SBUF_INIT;
	int rc = EXIT_OK;
	if (bundle_decode(raw.sb_buf ? raw.sb_buf : "", raw.sb_len, b, &err) < 0)
		rc = cli_fail(cx, EXIT_FAILURE_, "the bundle from the deployer: %s", err.sb_buf);
	if (raw.sb_buf)
		memset(raw.sb_buf, 0, raw.sb_cap); /* secret values were in it */
	sbuf_free(&raw);
	sbuf_free(&err);
	return rc;
}

struct relay {
	struct sbuf out;
	bool keep; /* collect standard output (to add the mode to its JSON) instead of printing it */
};

static void relay_out(void *arg, const char *buf, size_t n)
{
	struct relay *rl = arg;
	if (rl->keep)
		sbuf_append(&rl->out, buf, n);
	else
		fwrite(buf, 1, n, stdout);
}

static void relay_err(void *arg, const char *buf, size_t n)
{
	(void)arg;
	fwrite(buf, 1, n, stderr);
}

int cli_remote_run(struct cli_ctx *cx, const char *const *argv, size_t n, const struct target_spec *t,
		   const char *store_root, const char *static_punix, int *rc)
{
	bool json = cx->json;
	struct sbuf err = SBUF_INIT;
	struct punix_ops *tops = engine_target_ops(NULL, t, &err);
	if (!tops) {
		*rc = cli_fail(cx, EXIT_FAILURE_, "%s", cli_reason(err.sb_buf, "cannot reach the target"));
		sbuf_free(&err);
		return 1;
	}
	/* on its PATH, or the static punix a deploy bootstrapped into its store */
	struct sbuf x = SBUF_INIT;
	char *sp = static_punix && !t->remote_punix ? host_static_path(static_punix, store_root, NULL, NULL, &x) : NULL;
	char *boot = NULL;
	if (sp) {
		sbuf_reset(&x);
		sbuf_printf(&x, "%s%s/bin/punix", t->transport_root ? t->transport_root : "", sp);
		boot = sbuf_detach(&x, NULL);
	}
	sbuf_free(&x);
	free(sp);
	char *line = host_line(t->remote_punix, t->transport_root, boot);
	free(boot);
	struct host_conn h;
	int r = host_connect(tops, line, store_root, t->transport_root, &h, &err);
	free(line);
	if (r == 1 && t->mode == MODE_AUTO) {
		engine_target_ops_free(tops);
		sbuf_free(&err);
		return 0;
	}
	if (r != 0) {
		*rc = r == -EPROTO ? cli_fail(cx, EXIT_ERROR, "%s", err.sb_buf)
				   : cli_fail(cx, EXIT_FAILURE_, "[E17] host mode: no punix can run on the target: %s",
					      cli_reason(err.sb_buf, "no reason was given"));
		engine_target_ops_free(tops);
		sbuf_free(&err);
		return 1;
	}
	struct relay rl = {SBUF_INIT, json};
	int code = 0;
	fflush(stdout);
	r = host_run(&h, argv, n, NULL, relay_out, relay_err, &rl, &code, &err);
	if (r < 0) {
		*rc = cli_fail(cx, EXIT_FAILURE_, "the target's punix: %s", err.sb_buf);
	} else {
		*rc = code;
		json_t *j = json ? json_loadb(sbuf_str(&rl.out), rl.out.sb_len, 0, NULL) : NULL;
		if (j && json_is_object(j)) {
			/* its one object, ours now: with "mode"; its error (an older punix's is a string) */
			json_object_set_new(j, "mode", json_string("host"));
			json_object_set_new(j, "target_punix", json_string(h.punix));
			json_t *e = json_object_get(j, "error");
			const char *msg = json_is_object(e) ? json_string_value(json_object_get(e, "message"))
							     : json_string_value(e);
			const char *ec = json_is_object(e) ? json_string_value(json_object_get(e, "code")) : NULL;
			if (code && msg)
				cli_note(cx, "%s%s%s%s", ec ? "[" : "", ec ? ec : "", ec ? "] " : "", msg);
			else if (code)
				cli_note(cx, "the target's punix failed (exit %d)", code);
			cli_json_out(cx, json_incref(j), code);
		} else if (json) {
			/* not one object: what it said goes to standard error, and the failure object says so */
			fputs(sbuf_str(&rl.out), stderr);
			*rc = cli_fail(cx, code ? code : EXIT_FAILURE_,
				       "the target's punix (%s) did not answer with one JSON object (exit %d)", h.punix, code);
		} else if (code == EXIT_OK || code == EXIT_ERROR) {
			printf("mode: host (the target's punix %s)\n", h.punix);
		}
		if (j)
			json_decref(j);
	}
	host_close(&h, NULL);
	sbuf_free(&rl.out);
	sbuf_free(&err);
	engine_target_ops_free(tops);
	return 1;
}


int cli_remote_read(struct cli_ctx *cx, const char *sub, const char *stack, const struct target_spec *t,
		    const char *store_root, const char *static_punix, int *rc)
{
	const char *argv[16];
	size_t n = 0;
	argv[n++] = "service";
	argv[n++] = sub;
	argv[n++] = stack;
	if (t->transport_root) {
		argv[n++] = "--transport-root";
		argv[n++] = t->transport_root;
	}
	argv[n++] = "--deployments-root";
	argv[n++] = t->deployments_root;
	argv[n++] = "--unit-dir";
	argv[n++] = t->unit_dir;
	if (cx->json)
		argv[n++] = "--json";
	return cli_remote_run(cx, argv, n, t, store_root, static_punix, rc);
}

/* The marker a deployer looks for on the target's standard error (engine/host_ops.c: CONFIRM_MARK). */
void cli_confirm_waiting(const char *stack)
{
	(void)stack;
	fputs("@punix-awaiting-confirmation\n", stderr);
	fflush(stderr);
}

int cli_service_confirm(struct cli_ctx *cx, const char *stack, const char *token, const struct target_spec *t,
			const char *dep, long wait_s, const char *store_root, const char *static_punix)
{
	bool json = cx->json;
	if (t->ssh && t->ssh[0]) {
		/* by the target's punix, as a deployer gives it */
		char secs[24];
		snprintf(secs, sizeof(secs), "%ld", wait_s);
		const char *argv[16];
		size_t n = 0;
		argv[n++] = "service";
		argv[n++] = "confirm";
		argv[n++] = stack;
		argv[n++] = token;
		if (t->transport_root) {
			argv[n++] = "--transport-root";
			argv[n++] = t->transport_root;
		}
		argv[n++] = "--deployments-root";
		argv[n++] = dep;
		argv[n++] = "--wait";
		argv[n++] = secs;
		if (json)
			argv[n++] = "--json";
		int rc = EXIT_OK;
		if (!cli_remote_run(cx, argv, n, t, store_root, static_punix, &rc))
			rc = cli_fail(cx, EXIT_FAILURE_,
				      "[E17] host mode: no punix can run on the target to confirm there (install punix there, "
				      "or name it with --remote-punix)");
		return rc;
	}
	struct sbuf err = SBUF_INIT, msg = SBUF_INIT;
	struct punix_ops *tops = engine_target_ops(NULL, t, &err); /* the decision file only: no engine, no journal */
	if (!tops) {
		int rc = cli_fail(cx, EXIT_FAILURE_, "%s", cli_reason(err.sb_buf, "cannot reach the target"));
		sbuf_free(&err);
		return rc;
	}
	sbuf_free(&err);
	int r = engine_confirm(tops, dep, stack, token, wait_s, &msg);
	engine_target_ops_free(tops);
	int rc = r == 0 ? EXIT_OK : r == 1 ? EXIT_ERROR : EXIT_FAILURE_;
	if (rc != EXIT_OK)
		cli_fail(cx, rc, "%s", msg.sb_buf);
	else if (!json)
		printf("%s\n", msg.sb_buf);
	if (json)
		cli_json_out(cx, json_pack("{s:s, s:b}", "stack", stack, "confirmed", rc == EXIT_OK), rc);
	sbuf_free(&msg);
	return rc;
}
