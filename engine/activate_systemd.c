/*
 * activate_systemd.c - the systemd backend's activator (backends.h):
 * daemon-reload, stop the units that went, restart the ones whose files
 * changed, enable on request, then start each <name>-provision.service
 * whose file or whose service changed (a oneshot: `systemctl start` waits
 * for it to exit). A unit that fails to start is a result,
 * never undone: the flip stands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "backends.h"
#include "systemd.h"

/* Runs systemctl ARGS... on the target; first line of its output in why. */
static int systemctl(struct op_ctx *c, bool user, const char *a1, const char *a2, char *why, size_t nwhy)
{
	static const char *const candidates[] = {"/usr/bin/systemctl", "/bin/systemctl"};
	const char *bin = act_which(c, candidates, 2);
	const char *argv[6];
	size_t k = 0;
	argv[k++] = bin;
	if (user)
		argv[k++] = "--user";
	argv[k++] = a1;
	if (a2)
		argv[k++] = a2;
	argv[k] = NULL;
	struct sbuf out = SBUF_INIT;
	int status = 0;
	int r = act_run(c, argv, &status, &out);
	const char *o = sbuf_str(&out);
	snprintf(why, nwhy, "%.*s", (int)strcspn(o, "\n"), o);
	sbuf_free(&out);
	if (r < 0) {
		if (!why[0])
			snprintf(why, nwhy, "cannot run %s %s: %s", bin, a1, strerror(-r));
		return r;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (!why[0])
			snprintf(why, nwhy, "systemctl %s exited with status %d", a1,
				 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		return -1;
	}
	return 0;
}

void systemd_activate(struct op_ctx *c, const struct backend_env *env, const struct act_set *set,
		      struct act_results *out)
{
	const char *unit_dir = env->unit_dir ? env->unit_dir : "";
	bool user = strstr(unit_dir, "/systemd/user") != NULL, enable = env->enable;
	char why[512];
	if (systemctl(c, user, "daemon-reload", NULL, why, sizeof(why)) < 0) {
		/* nothing can start without the new unit files */
		for (size_t i = 0; i < set->n; i++)
			act_add(out, set->units[i].unit, ACT_FAILED, why);
		for (size_t i = 0; i < set->nprovisions; i++)
			act_add(out, set->provisions[i].unit, ACT_PROVISION_FAILED, why);
		return;
	}
	bool *failed = calloc(set->n + 1, sizeof(*failed));
	for (size_t i = 0; i < set->ngone; i++) {
		const char *u = set->gone[i];
		if (systemctl(c, user, "stop", u, why, sizeof(why)) < 0)
			act_add(out, u, ACT_STOP_FAILED, why);
		else
			act_add(out, u, ACT_STOPPED, NULL);
		systemctl(c, user, "disable", u, why, sizeof(why));
	}
	for (size_t i = 0; i < set->n; i++) {
		const char *u = set->units[i].unit;
		if (enable && systemctl(c, user, "enable", u, why, sizeof(why)) < 0) {
			act_add(out, u, ACT_FAILED, why);
			failed[i] = true;
			continue;
		}
		if (!set->units[i].changed) {
			act_add(out, u, ACT_UNCHANGED, NULL);
			continue;
		}
		if (systemctl(c, user, "restart", u, why, sizeof(why)) < 0) {
			act_add(out, u, ACT_FAILED, why);
			failed[i] = true;
			continue;
		}
		act_add(out, u, ACT_STARTED, enable ? "enabled for boot" : "not enabled for boot");
	}
	/* provisions last, each after its service is up; never enabled: they have no [Install] */
	for (size_t i = 0; i < set->nprovisions; i++) {
		const struct act_unit *p = &set->provisions[i];
		const char *svc_unit = NULL;
		bool svc_failed = false;
		for (size_t k = 0; k < set->n; k++)
			if (!strcmp(set->units[k].service, p->service)) {
				svc_unit = set->units[k].unit;
				svc_failed = failed[k];
			}
		if (svc_failed) {
			snprintf(why, sizeof(why), "not run: %s did not (re)start", svc_unit);
			act_add(out, p->unit, ACT_PROVISION_FAILED, why);
		} else if (!p->changed) {
			snprintf(why, sizeof(why), "\u00b7 %s unchanged (and %s too), not run", p->unit,
				 svc_unit ? svc_unit : p->service);
			act_add(out, NULL, ACT_NOTE, why);
		} else if (systemctl(c, user, "start", p->unit, why, sizeof(why)) < 0) {
			act_add(out, p->unit, ACT_PROVISION_FAILED, why);
		} else {
			act_add(out, p->service, ACT_PROVISIONED, NULL);
		}
	}
	free(failed);
}
