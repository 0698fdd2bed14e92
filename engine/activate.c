/*
 * activate.c - the optional activation step: daemon-reload, restart the
 * units whose files changed, stop the ones that went, enable on request.
 * A unit that fails to start is reported, never undone: the flip stands.
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

/* ---- activation ---------------------------------------------------------------------- */

/*
 * The units a generation runs, from its services (never from config-file
 * paths): <name>.service, or <name>.timer for a timer-activated service
 * (restarting the timer re-arms it; restarting the service would run the
 * job now).
 */
static void gen_units(json_t *manifest, const char *unit_dir, json_t *out)
{
	json_t *svcs = json_object_get(manifest, "services");
	for (size_t i = 0; i < json_array_size(svcs); i++) {
		json_t *s = json_array_get(svcs, i);
		const char *name = json_string_value(json_object_get(s, "name"));
		bool timer = json_is_true(json_object_get(s, "timer"));
		if (!name)
			continue;
		struct sbuf unit = SBUF_INIT, path = SBUF_INIT;
		sbuf_printf(&unit, "%s.%s", name, timer ? "timer" : "service");
		sbuf_printf(&path, "%s/%s", unit_dir, unit.sb_buf);
		json_object_set_new(out, unit.sb_buf, json_pack("{s:s, s:s}", "path", path.sb_buf, "service", name));
		sbuf_free(&unit);
		sbuf_free(&path);
	}
}

/* The sha256 a manifest records for path, or NULL. */
static const char *file_sha(json_t *manifest, const char *path)
{
	json_t *files = json_object_get(manifest, "config_files");
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i);
		if (!strcmp(json_string_value(json_object_get(f, "path")), path))
			return json_string_value(json_object_get(f, "sha256"));
	}
	return NULL;
}

/* Did a service's secrets change between two generations' kept copies? */
static bool sidecar_changed(struct op_ctx *c, long a, long b, const char *service)
{
	const char *dep = dep_root(c);
	char *da = gen_secrets_dir(dep, c->stack, a), *db = gen_secrets_dir(dep, c->stack, b);
	char *side = secrets_sidecar_path(c->stack, service);
	struct sbuf pa = SBUF_INIT, pb = SBUF_INIT;
	sbuf_printf(&pa, "%s%s", da, side);
	sbuf_printf(&pb, "%s%s", db, side);
	char *x = NULL, *y = NULL;
	size_t lx = 0, ly = 0;
	int rx = c->tops->read_file(c->tops, pa.sb_buf, 1 << 20, &x, &lx);
	int ry = c->tops->read_file(c->tops, pb.sb_buf, 1 << 20, &y, &ly);
	bool changed = (rx == 0) != (ry == 0) || (rx == 0 && (lx != ly || memcmp(x, y, lx) != 0));
	if (x)
		memset(x, 0, lx);
	if (y)
		memset(y, 0, ly);
	free(x);
	free(y);
	sbuf_free(&pa);
	sbuf_free(&pb);
	free(da);
	free(db);
	free(side);
	return changed;
}

/* Runs systemctl ARGS... on the target; first line of its output in why. */
static int systemctl(struct op_ctx *c, bool user, const char *a1, const char *a2, char *why, size_t nwhy)
{
	static const char *const candidates[] = {"/usr/bin/systemctl", "/bin/systemctl"};
	const char *bin = candidates[0];
	struct ops_stat st;
	for (size_t i = 0; i < 2; i++)
		if (c->tops->stat(c->tops, candidates[i], 1, &st) == 0) {
			bin = candidates[i];
			break;
		}
	const char *argv[6];
	size_t k = 0;
	argv[k++] = bin;
	if (user)
		argv[k++] = "--user";
	argv[k++] = a1;
	if (a2)
		argv[k++] = a2;
	argv[k] = NULL;
	struct sbuf log = SBUF_INIT;
	sbuf_printf(&log, "%s/activate-%llu.log", c->e->state_dir, (unsigned long long)c->id);
	c->e->local->unlink(c->e->local, log.sb_buf);
	const char *env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
	struct ops_cmd cmd = {argv, env, NULL, log.sb_buf, 0};
	int status = 0;
	int r = c->tops->run(c->tops, &cmd, &status);
	why[0] = '\0';
	char *out = NULL;
	size_t len;
	if (c->e->local->read_file(c->e->local, log.sb_buf, 1 << 16, &out, &len) == 0) {
		snprintf(why, nwhy, "%.*s", (int)strcspn(out, "\n"), out);
		free(out);
	}
	c->e->local->unlink(c->e->local, log.sb_buf);
	sbuf_free(&log);
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

static void unit_failed(struct op_ctx *c, const char *unit, const char *why)
{
	sbuf_printf(&c->res->activation, "\u26a0 %s did not (re)start: %s\n", unit, why);
	sbuf_printf(&c->res->failed, "%s%s", c->res->failed_units ? ", " : "", unit);
	c->res->failed_units++;
}

/*
 * After the flip: reload the manager, restart the units whose unit file or
 * secrets changed, stop those the new generation no longer has, and with
 * enable, enable them for boot. Every failure becomes a reported result,
 * never a failed op: the flip happened and is not undone.
 */
int step_activate(struct op_ctx *c)
{
	if (!c->plan.activate)
		return 0;
	sbuf_reset(&c->res->activation);
	sbuf_reset(&c->res->failed);
	c->res->failed_units = 0;
	const char *troot = c->plan.transport_root;
	if (troot && *troot) {
		sbuf_puts(&c->res->activation, "activation skipped: the target is a rebased tree, with no systemd\n");
		return 0;
	}
	const char *dep = dep_root(c), *unit_dir = c->plan.unit_dir ? c->plan.unit_dir : "";
	bool user = strstr(unit_dir, "/systemd/user") != NULL, enable = c->plan.enable;
	long gen = c->plan.generation, prev = c->plan.previous;
	struct manifest m, old = {0};
	struct sbuf err = SBUF_INIT;
	int mr = manifest_read(c->tops, dep, c->stack, gen, &m, &err);
	if (mr < 0) {
		sbuf_printf(&c->res->activation, "activation skipped: %s\n", manifest_why(c, gen, mr, &err));
		sbuf_free(&err);
		return 0;
	}
	bool have_old = prev > 0 && prev != gen && manifest_read(c->tops, dep, c->stack, prev, &old, &err) == 0;
	json_t *units = json_object(), *old_units = json_object();
	gen_units(m.root, unit_dir, units);
	if (have_old)
		gen_units(old.root, unit_dir, old_units);
	char why[512];
	if (systemctl(c, user, "daemon-reload", NULL, why, sizeof(why)) < 0) {
		/* nothing can start without the new unit files */
		const char *u;
		json_t *v;
		json_object_foreach(units, u, v)
			unit_failed(c, u, why);
		goto out;
	}
	const char *u;
	json_t *v;
	json_object_foreach(old_units, u, v)
	{
		if (json_object_get(units, u))
			continue;
		if (systemctl(c, user, "stop", u, why, sizeof(why)) < 0)
			sbuf_printf(&c->res->activation, "\u26a0 %s could not be stopped: %s\n", u, why);
		else
			sbuf_printf(&c->res->activation, "\u2713 stopped %s (no longer in the stack)\n", u);
		systemctl(c, user, "disable", u, why, sizeof(why));
	}
	json_object_foreach(units, u, v)
	{
		const char *path = json_string_value(json_object_get(v, "path"));
		const char *service = json_string_value(json_object_get(v, "service"));
		const char *now = file_sha(m.root, path), *before = have_old ? file_sha(old.root, path) : NULL;
		bool changed = !have_old || !before || !now || strcmp(now, before) != 0 ||
			       sidecar_changed(c, gen, prev, service);
		if (enable && systemctl(c, user, "enable", u, why, sizeof(why)) < 0) {
			unit_failed(c, u, why);
			continue;
		}
		if (!changed) {
			sbuf_printf(&c->res->activation, "\u00b7 %s unchanged, not restarted\n", u);
			continue;
		}
		if (systemctl(c, user, "restart", u, why, sizeof(why)) < 0) {
			unit_failed(c, u, why);
			continue;
		}
		sbuf_printf(&c->res->activation, "\u2713 (re)started %s (%s)\n", u,
			    enable ? "enabled for boot" : "not enabled for boot");
	}
out:
	json_decref(units);
	json_decref(old_units);
	manifest_free(&m);
	if (have_old)
		manifest_free(&old);
	sbuf_free(&err);
	return 0;
}
