/*
 * fleet_read.c - what the fleet commands read and print (docs/fleet.md):
 * `fleet status`, every host read at once (a thread each), and the report
 * of apply and rollback.
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/xalloc.h"
#include "../../engine/engine.h"
#include "../../engine/host.h"
#include "../../engine/ssh.h"
#include "fleet.h"

const char *const status_names[] = {"pending", "ok", "failed", "blocked", "not-attempted"};

/* ---- status: every host read at once ----------------------------------------------------- */

struct reader {
	struct fleet_run *fr;
	struct host *h;
	pthread_t th;
	long current;
	size_t ngens;
	bool running;
	const char *mode;
	struct sbuf err;
};

static void *read_host(void *arg)
{
	struct reader *rd = arg;
	struct target_spec t = host_target(rd->fr, rd->h);
	rd->mode = t.ssh ? "agentless" : t.transport_root ? "rebased" : "local";
	struct punix_ops *tops = engine_target_ops(NULL, &t, &rd->err);
	if (!tops)
		return NULL;
	struct gen_info *g = NULL;
	if (engine_generations(tops, t.deployments_root, rd->h->h->stack, &g, &rd->ngens, &rd->current, &rd->err) == 0)
		gen_infos_free(g, rd->ngens);
	/* an op running there holds the stack's lock on the target */
	struct sbuf path = SBUF_INIT, lerr = SBUF_INIT;
	int lh = -1;
	sbuf_printf(&path, "%s/.locks/%s.lock", t.deployments_root, rd->h->h->stack);
	struct ops_stat st;
	if (!rd->err.sb_len && tops->stat(tops, path.sb_buf, 0, &st) == 0 && tops->lock(tops, path.sb_buf, 1, 0, &lh) == -EWOULDBLOCK)
		rd->running = true;
	if (lh >= 0)
		tops->unlock(tops, lh);
	/* host mode where a punix answers: the mode the next op would use */
	if (t.ssh && t.mode != MODE_AGENTLESS && tops->stream_open) {
		char *line = host_line(t.remote_punix, t.transport_root, NULL);
		struct host_conn hc;
		if (host_connect(tops, line, rd->fr->pl->store, t.transport_root, &hc, &lerr) == 0) {
			rd->mode = "host";
			host_close(&hc, NULL);
		}
		free(line);
	}
	sbuf_free(&path);
	sbuf_free(&lerr);
	engine_target_ops_free(tops);
	return NULL;
}

int fleet_status(struct fleet_run *fr, int width)
{
	struct reader *rd = xcalloc(fr->n + 1, sizeof(*rd));
	/* libssh2's (and OpenSSL's) global state, set up once before the threads use it */
	bool ssh = ssh_library_init(NULL) == 0;
	for (size_t i = 0; i < fr->n; i++) {
		rd[i].fr = fr;
		rd[i].h = &fr->hosts[i];
		if (fr->hosts[i].selected && fr->hosts[i].status == H_PENDING &&
		    pthread_create(&rd[i].th, NULL, read_host, &rd[i]) != 0)
			read_host(&rd[i]);
	}
	int rc = EXIT_OK;
	json_t *arr = json_array();
	for (size_t i = 0; i < fr->n; i++) {
		struct host *h = &fr->hosts[i];
		if (!h->selected)
			continue;
		if (h->status == H_PENDING && rd[i].th)
			pthread_join(rd[i].th, NULL);
		if (h->status == H_PENDING)
			h->status = rd[i].err.sb_len ? H_FAILED : H_OK;
		if (rd[i].err.sb_len)
			host_fail(h, H_FAILED, "%s", rd[i].err.sb_buf);
		if (h->status != H_OK) {
			rc = EXIT_ERROR;
			cli_note(fr->cx, "host %s: %s", h->name, h->message);
		}
		if (fr->o->json) {
			json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "host", h->name, "stack", h->h->stack, "target",
					      h->h->target, "status", status_names[h->status]);
			if (h->h->machine)
				json_object_set_new(o, "machine", json_string(h->h->machine));
			if (h->status == H_OK) {
				json_object_set_new(o, "current", json_integer(rd[i].current));
				json_object_set_new(o, "generations", json_integer((json_int_t)rd[i].ngens));
				json_object_set_new(o, "mode", json_string(rd[i].mode));
				json_object_set_new(o, "op_running", json_boolean(rd[i].running));
			} else {
				json_object_set_new(o, "error", json_string(h->message));
			}
			json_array_append_new(arr, o);
		} else if (h->status == H_OK) {
			printf("host %-*s → %s: ", width, h->name, h->h->stack);
			if (rd[i].current > 0)
				printf("current gen-%03ld", rd[i].current);
			else
				printf("no generation");
			printf(" (%s)%s\n", rd[i].mode, rd[i].running ? "; an op is running there" : "");
		} else {
			printf("host %-*s → FAILED: %s\n", width, h->name, h->message);
		}
		sbuf_free(&rd[i].err);
	}
	if (fr->o->json) {
		cli_json_out(fr->cx, json_pack("{s:o}", "hosts", arr), rc);
	} else {
		json_decref(arr);
	}
	free(rd);
	if (ssh)
		ssh_library_exit();
	return rc;
}

/* ---- the report ---------------------------------------------------------------------------- */

int fleet_print_report(struct fleet_run *fr, int width)
{
	int rc = EXIT_OK;
	json_t *arr = json_array();
	for (size_t i = 0; i < fr->n; i++) {
		struct host *h = &fr->hosts[i];
		if (!h->selected)
			continue;
		if (h->status == H_PENDING) {
			h->status = H_NOT_ATTEMPTED;
			h->message = xstrdup("not attempted (--fail-fast: another host failed first)");
		}
		if (h->status != H_OK) {
			rc = EXIT_ERROR;
			cli_note(fr->cx, "host %s: %s", h->name, h->message);
		}
		if (fr->o->json) {
			json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "host", h->name, "stack", h->h->stack, "target",
					      h->h->target, "status", status_names[h->status]);
			if (h->h->machine)
				json_object_set_new(o, "machine", json_string(h->h->machine));
			if (h->status == H_OK) {
				json_object_set_new(o, "generation", json_integer(h->generation));
				json_object_set_new(o, "previous", json_integer(h->previous));
				if (h->warn.sb_len)
					json_object_set_new(o, "warning", json_string(h->warn.sb_buf));
			} else {
				json_object_set_new(o, "error", json_string(h->message));
			}
			json_object_set_new(o, "seconds", json_real(h->secs));
			json_array_append_new(arr, o);
			continue;
		}
		const char *label = h->status == H_OK		? ""
				    : h->status == H_FAILED	? "FAILED: "
				    : h->status == H_BLOCKED	? "BLOCKED: "
								: "";
		printf("host %-*s → %s%s\n", width, h->name, label, h->message);
	}
	if (fr->o->json) {
		cli_json_out(fr->cx, json_pack("{s:s, s:o}", "op", fr->o->sub, "hosts", arr), rc);
	} else {
		json_decref(arr);
	}
	return rc;
}
