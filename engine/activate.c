/*
 * activate.c - the optional activation step, for any backend: works out
 * which of the generation's services changed and which went, hands them to
 * the backend's activator (backends.h) and reports its results. A unit
 * that fails to start is reported, never undone: the flip stands.
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
#include "backends.h"
#include "systemd.h"
#include "op_internal.h"
#include "ssh.h"
#include "target.h"

/* ---- activation ---------------------------------------------------------------------- */

/* The backend a manifest names ("systemd" when it names none). */
static const char *manifest_backend(json_t *manifest)
{
	const char *b = json_string_value(json_object_get(manifest, "backend"));
	return b ? b : "systemd";
}

/*
 * The units a generation runs, from its services (never from config-file
 * paths), as the backend names them: systemd's <name>.service, or
 * <name>.timer for a timer-activated service (restarting the timer re-arms
 * it; restarting the service would run the job now).
 */
static void gen_units(const struct backend *b, const struct backend_env *env, json_t *manifest, json_t *out)
{
	json_t *svcs = json_object_get(manifest, "services");
	for (size_t i = 0; i < json_array_size(svcs); i++) {
		json_t *s = json_array_get(svcs, i);
		const char *name = json_string_value(json_object_get(s, "name"));
		bool timer = json_is_true(json_object_get(s, "timer"));
		if (!name)
			continue;
		struct sbuf unit = SBUF_INIT, path = SBUF_INIT;
		b->unit(env, name, timer, &unit, &path);
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

/*
 * Each service of the new generation with a provision (systemd only: the
 * other backends refuse one): <name>-provision.service, changed when its
 * file differs from the previous generation's or its service's unit
 * changed (is (re)started).
 */
static void provisions(const struct backend_env *env, json_t *manifest, json_t *old, struct act_set *set)
{
	json_t *svcs = json_object_get(manifest, "services");
	set->provisions = xcalloc(json_array_size(svcs) + 1, sizeof(*set->provisions));
	for (size_t i = 0; i < json_array_size(svcs); i++) {
		json_t *s = json_array_get(svcs, i);
		const char *name = json_string_value(json_object_get(s, "name"));
		if (!name || !json_is_true(json_object_get(s, "provision")))
			continue;
		struct sbuf unit = SBUF_INIT, path = SBUF_INIT;
		sbuf_printf(&unit, "%s-provision.service", name);
		sbuf_printf(&path, "%s/%s", env->unit_dir ? env->unit_dir : "", unit.sb_buf);
		const char *now = file_sha(manifest, path.sb_buf), *before = old ? file_sha(old, path.sb_buf) : NULL;
		bool changed = !now || !before || strcmp(now, before) != 0;
		for (size_t k = 0; k < set->n && !changed; k++)
			changed = !strcmp(set->units[k].service, name) && set->units[k].changed;
		set->provisions[set->nprovisions++] =
			(struct act_unit){sbuf_detach(&unit, NULL), xstrdup(name), sbuf_detach(&path, NULL), changed};
	}
}

static void unit_failed(struct op_ctx *c, const char *unit, const char *why)
{
	sbuf_printf(&c->res->activation, "\u26a0 %s did not (re)start: %s\n", unit, why);
	sbuf_printf(&c->res->failed, "%s%s", c->res->failed_units ? ", " : "", unit);
	c->res->failed_units++;
}

/* One line per result, in the order the activator gave them. */
static void report(struct op_ctx *c, const struct act_results *r)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct act_result *x = &r->v[i];
		switch (x->state) {
		case ACT_STARTED: sbuf_printf(&c->res->activation, "\u2713 (re)started %s (%s)\n", x->unit, x->detail); break;
		case ACT_UNCHANGED: sbuf_printf(&c->res->activation, "\u00b7 %s unchanged, not restarted\n", x->unit); break;
		case ACT_FAILED: unit_failed(c, x->unit, x->detail); break;
		case ACT_STOPPED:
			sbuf_printf(&c->res->activation, "\u2713 stopped %s (no longer in the stack)\n", x->unit);
			break;
		case ACT_STOP_FAILED:
			sbuf_printf(&c->res->activation, "\u26a0 %s could not be stopped: %s\n", x->unit, x->detail);
			break;
		case ACT_NOTE: sbuf_printf(&c->res->activation, "%s\n", x->detail); break;
		case ACT_PROVISIONED: sbuf_printf(&c->res->activation, "\u2713 provisioned %s\n", x->unit); break;
		case ACT_PROVISION_FAILED:
			sbuf_printf(&c->res->activation, "\u26a0 %s failed: %s\n", x->unit, x->detail);
			sbuf_printf(&c->res->failed, "%s%s", c->res->failed_units ? ", " : "", x->unit);
			c->res->failed_units++;
			break;
		}
	}
}

/*
 * After the flip: the backend the new generation names activates its
 * services: those whose file or secrets changed are (re)started, those the
 * previous generation had and this one lacks are stopped. Every failure
 * becomes a reported result, never a failed op: the flip happened and is
 * not undone. A backend without an activator is reported (the CLI exits 1).
 */
int step_activate(struct op_ctx *c)
{
	if (!c->plan.activate)
		return 0;
	sbuf_reset(&c->res->activation);
	sbuf_reset(&c->res->failed);
	c->res->failed_units = 0;
	c->res->no_activator = NULL;
	const char *troot = c->plan.transport_root;
	const char *dep = dep_root(c);
	long gen = c->plan.generation, prev = c->plan.previous;
	struct manifest m, old = {0};
	struct sbuf err = SBUF_INIT;
	int mr = manifest_read(c->tops, dep, c->stack, gen, &m, &err);
	if (mr < 0) {
		if (troot && *troot)
			sbuf_puts(&c->res->activation, "activation skipped: the target is a rebased tree, with no systemd\n");
		else
			sbuf_printf(&c->res->activation, "activation skipped: %s\n", manifest_why(c, gen, mr, &err));
		sbuf_free(&err);
		return 0;
	}
	const char *bname = manifest_backend(m.root);
	const struct backend *b = backend_find(bname);
	if (!b || !b->activate) {
		/* the registry's name outlives the manifest; an unknown one is said as "unknown" */
		c->res->no_activator = b ? b->name : "unknown";
		manifest_free(&m);
		sbuf_free(&err);
		return 0;
	}
	if (troot && *troot) {
		sbuf_printf(&c->res->activation, "activation skipped: the target is a rebased tree, with no %s\n", b->name);
		manifest_free(&m);
		sbuf_free(&err);
		return 0;
	}
	struct backend_env env = {0};
	env.unit_dir = c->plan.unit_dir ? c->plan.unit_dir : "";
	env.conf = c->plan.supervisor_conf && *c->plan.supervisor_conf ? c->plan.supervisor_conf : NULL;
	env.enable = c->plan.enable;
	bool have_old = prev > 0 && prev != gen && manifest_read(c->tops, dep, c->stack, prev, &old, &err) == 0;
	bool same_backend = have_old && strcmp(manifest_backend(old.root), b->name) == 0;
	struct act_results res = {0};
	struct act_set set = {0};
	json_t *units = json_object(), *old_units = json_object();
	if (b->prepare && b->prepare(c->tops, &env, &err) < 0) {
		/* nothing can be started without what the backend needs of the target */
		json_t *svcs = json_object_get(m.root, "services");
		for (size_t i = 0; i < json_array_size(svcs); i++) {
			const char *name = json_string_value(json_object_get(json_array_get(svcs, i), "name"));
			if (name)
				act_add(&res, name, ACT_FAILED, err.sb_buf);
		}
		goto out;
	}
	gen_units(b, &env, m.root, units);
	if (same_backend)
		gen_units(b, &env, old.root, old_units);
	else if (have_old) {
		struct sbuf note = SBUF_INIT;
		sbuf_printf(&note, "\u26a0 gen-%03ld ran under backend '%s': its services were not stopped", prev,
			    manifest_backend(old.root));
		act_add(&res, NULL, ACT_NOTE, note.sb_buf);
		sbuf_free(&note);
	}
	const char *u;
	json_t *v;
	set.gone = xcalloc(json_object_size(old_units) + 1, sizeof(*set.gone));
	json_object_foreach(old_units, u, v)
		if (!json_object_get(units, u))
			set.gone[set.ngone++] = xstrdup(u);
	set.units = xcalloc(json_object_size(units) + 1, sizeof(*set.units));
	json_object_foreach(units, u, v)
	{
		const char *path = json_string_value(json_object_get(v, "path"));
		const char *service = json_string_value(json_object_get(v, "service"));
		const char *now = file_sha(m.root, path), *before = have_old ? file_sha(old.root, path) : NULL;
		bool changed = !have_old || !before || !now || strcmp(now, before) != 0 ||
			       sidecar_changed(c, gen, prev, service);
		set.units[set.n++] = (struct act_unit){xstrdup(u), xstrdup(service), xstrdup(path), changed};
	}
	provisions(&env, m.root, have_old ? old.root : NULL, &set);
	b->activate(c, &env, &set, &res);
out:
	report(c, &res);
	act_results_free(&res);
	for (size_t i = 0; i < set.n; i++) {
		free(set.units[i].unit);
		free(set.units[i].service);
		free(set.units[i].path);
	}
	free(set.units);
	for (size_t i = 0; i < set.nprovisions; i++) {
		free(set.provisions[i].unit);
		free(set.provisions[i].service);
		free(set.provisions[i].path);
	}
	free(set.provisions);
	for (size_t i = 0; i < set.ngone; i++)
		free(set.gone[i]);
	free(set.gone);
	backend_env_free(&env);
	json_decref(units);
	json_decref(old_units);
	manifest_free(&m);
	if (have_old)
		manifest_free(&old);
	sbuf_free(&err);
	return 0;
}
