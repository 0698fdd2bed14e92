/*
 * supervisord_activate.c - the supervisord backend's activator
 * (backends.h), through supervisord's own control, supervisorctl -c CONF:
 * reread, then update (adds, removes and restarts the programs whose
 * sections changed), then restart for a changed program update left alone,
 * then status for each (re)started one until it leaves STARTING. A program
 * that is not RUNNING is a failed result, never undone: the flip stands.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "../base/xalloc.h"
#include "supervisord.h"

struct ctl {
	struct op_ctx *c;
	const char *bin, *conf;
};

/* supervisorctl -c CONF A1 [A2]; its output in out. 0, or -1 with why (its first line, else how it ended). */
static int ctl(struct ctl *x, const char *a1, const char *a2, struct sbuf *out, char *why, size_t nwhy)
{
	const char *argv[] = {x->bin, "-c", x->conf, a1, a2, NULL};
	int status = 0;
	sbuf_reset(out);
	int r = act_run(x->c, argv, &status, out);
	why[0] = '\0';
	if (r < 0) {
		snprintf(why, nwhy, "cannot run %s %s: %s", x->bin, a1, strerror(-r));
		return -1;
	}
	const char *o = sbuf_str(out);
	/* supervisorctl says "NAME: ERROR (...)" or "error: ..." and, for some commands, still exits 0 */
	bool said_error = strstr(o, "ERROR") || !strncmp(o, "error:", 6) || strstr(o, "\nerror:");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || said_error) {
		snprintf(why, nwhy, "%.*s", (int)strcspn(o, "\n"), o);
		if (!why[0])
			snprintf(why, nwhy, "supervisorctl %s exited with status %d", a1,
				 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		return -1;
	}
	return 0;
}

/* Whether update's output has the line "NAME: <what>". */
static bool said(const char *out, const char *name, const char *what)
{
	size_t n = strlen(name);
	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, name, n) && l[n] == ':' && !strncmp(l + n + 1, " ", 1) &&
		    !strncmp(l + n + 2, what, strlen(what)))
			return true;
	return false;
}

/*
 * The program's state from `status NAME` ("RUNNING", "BACKOFF", ...), and
 * the rest of its line in rest. Waits while it is STARTING (or not yet
 * started after update), up to 10 s.
 */
static void state_of(struct ctl *x, const char *name, char *state, size_t nstate, char *rest, size_t nrest)
{
	struct sbuf out = SBUF_INIT;
	char why[512];
	for (int tries = 0;; tries++) {
		int r = ctl(x, "status", name, &out, why, sizeof(why));
		const char *o = sbuf_str(&out);
		size_t n = strlen(name);
		state[0] = rest[0] = '\0';
		if (!strncmp(o, name, n) && (o[n] == ' ' || o[n] == '\t')) {
			const char *p = o + n + strspn(o + n, " \t");
			size_t k = strcspn(p, " \t\n");
			snprintf(state, nstate, "%.*s", (int)k, p);
			p += k;
			p += strspn(p, " \t");
			snprintf(rest, nrest, "%.*s", (int)strcspn(p, "\n"), p);
		} else {
			snprintf(state, nstate, "UNKNOWN");
			snprintf(rest, nrest, "%s", r < 0 && why[0] ? why : "supervisorctl status said nothing of it");
		}
		bool waiting = !strcmp(state, "STARTING") || (!strcmp(state, "STOPPED") && tries < 10);
		if (!waiting || tries >= 50)
			break;
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	sbuf_free(&out);
}

void supervisord_activate(struct op_ctx *c, const struct backend_env *env, const struct act_set *set,
			  struct act_results *out)
{
	static const char *const candidates[] = {"/usr/bin/supervisorctl", "/usr/local/bin/supervisorctl",
						 "/bin/supervisorctl"};
	struct ctl x = {c, act_which(c, candidates, 3), env->conf ? env->conf : SUPERVISORD_DEFAULT_CONF};
	struct sbuf o = SBUF_INIT, upd = SBUF_INIT;
	char why[512];
	if (ctl(&x, "reread", NULL, &o, why, sizeof(why)) < 0 || ctl(&x, "update", NULL, &upd, why, sizeof(why)) < 0) {
		/* nothing can start before supervisord has read the new files */
		for (size_t i = 0; i < set->ngone; i++)
			act_add(out, set->gone[i], ACT_STOP_FAILED, why);
		for (size_t i = 0; i < set->n; i++)
			act_add(out, set->units[i].unit, ACT_FAILED, why);
		goto done;
	}
	const char *u = sbuf_str(&upd);
	for (size_t i = 0; i < set->ngone; i++) {
		/* update removed it, or it is still there */
		char state[64], rest[512];
		state_of(&x, set->gone[i], state, sizeof(state), rest, sizeof(rest));
		if (!strcmp(state, "UNKNOWN"))
			act_add(out, set->gone[i], ACT_STOPPED, NULL);
		else {
			char w[640];
			snprintf(w, sizeof(w), "supervisord still has it, %s", state);
			act_add(out, set->gone[i], ACT_STOP_FAILED, w);
		}
	}
	for (size_t i = 0; i < set->n; i++) {
		const char *name = set->units[i].unit;
		if (!set->units[i].changed) {
			act_add(out, name, ACT_UNCHANGED, NULL);
			continue;
		}
		bool done_by_update = said(u, name, "added process group") || said(u, name, "updated process group");
		if (!done_by_update && ctl(&x, "restart", name, &o, why, sizeof(why)) < 0) {
			act_add(out, name, ACT_FAILED, why);
			continue;
		}
		char state[64], rest[512];
		state_of(&x, name, state, sizeof(state), rest, sizeof(rest));
		if (strcmp(state, "RUNNING") != 0) {
			char w[640];
			snprintf(w, sizeof(w), "%s%s%s", state, rest[0] ? " " : "", rest);
			act_add(out, name, ACT_FAILED, w);
			continue;
		}
		act_add(out, name, ACT_STARTED, "RUNNING under supervisord");
	}
done:
	sbuf_free(&o);
	sbuf_free(&upd);
}
