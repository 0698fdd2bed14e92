/*
 * host_ops.c - the deployer's side of host mode (docs/hosts.md): choosing
 * the mode when an op reaches another machine, bootstrapping a static
 * punix into the target's store when it has none, and the op kinds whose
 * steps hand the op to the target's punix:
 *
 *   deploy@host: plan (build plan, architecture, secrets, render: here),
 *                build (here), push (which paths the target lacks, asked
 *                once; those sent in one stream), run (the bundle and the
 *                deploy, in one exec on the target, its result read back)
 *   remote:      plan, run (rollback, set-current or prune, on the target)
 *
 * The target's journal and lock are the truth for the target. This
 * journal records the remote op; it has no commit point here (the commit
 * point is the target's flip), so an interrupted one is "undone", and
 * undoing run, in a recovery, reconnects, has the target recover itself
 * and reports what is current there.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/vec.h"
#include "../base/xalloc.h"
#include "backends.h"
#include "engine.h"
#include "host.h"
#include "op_internal.h"
#include "proto.h"
#include "target.h"

bool kind_is_host(const struct op_kind *k)
{
	return k == &host_deploy_kind || k == &host_remote_kind;
}

/*
 * The static build of punix as a path of the local store, added on first
 * use: "<hash>-punix-static-<version>" with bin/punix, its name hashed
 * from the binary's own hash (content-addressed like any path).
 */
static int static_store_path(struct engine *e, char **out, struct sbuf *err)
{
	struct punix_ops *o = e->local;
	char *bin = NULL;
	size_t len = 0;
	char *p = host_static_path(e->static_punix, e->store->root, &bin, &len, err);
	if (!p)
		return -EIO;
	int r = 0;
	if (!store_is_valid(e->store, p)) {
		char *tmp = ops_tmp_name(p);
		struct sbuf binpath = SBUF_INIT;
		sbuf_printf(&binpath, "%s/bin", tmp);
		r = o->mkdir(o, tmp, 0755);
		if (r == 0)
			r = o->mkdir(o, binpath.sb_buf, 0755);
		sbuf_puts(&binpath, "/punix");
		if (r == 0)
			r = ops_write_atomic_nodirsync(o, binpath.sb_buf, bin, len, 0555);
		if (r < 0) {
			sbuf_printf(err, "adding the static punix to the store: %s", ops_strerror(r));
			ops_remove_tree(o, tmp);
		} else {
			r = store_add_tree(e->store, tmp, p, err);
		}
		sbuf_free(&binpath);
		free(tmp);
	}
	free(bin);
	if (r < 0) {
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

/* Pushes the static punix into the target's store, agentless; its executable's path there. */
static int bootstrap(struct op_ctx *c, char **exe, struct sbuf *err)
{
	struct engine *e = c->e;
	char arch[64] = "", tsys[96];
	if (c->tops->arch(c->tops, arch, sizeof(arch)) < 0 || (store_system_of(arch, tsys, sizeof(tsys)),
								 strcmp(tsys, e->store->system) != 0)) {
		sbuf_printf(err, "the target is %s and the static punix here is built for %s", arch[0] ? arch : "unknown",
			    e->store->system);
		return -ENOEXEC;
	}
	char *path = NULL;
	int r = static_store_path(e, &path, err);
	if (r < 0)
		return r;
	struct store ts;
	r = store_open(&ts, c->tops, e->store->root, NULL, NULL, STORE_CREATE, err);
	if (r == 0) {
		store_close(&ts);
		r = push_store_path(c, path);
		if (r < 0)
			sbuf_printf(err, "pushing %s to the target: %s", path, ops_strerror(r));
	}
	if (r == 0) {
		struct sbuf x = SBUF_INIT;
		const char *tr = c->req.target.transport_root;
		sbuf_printf(&x, "%s%s/bin/punix", tr ? tr : "", path);
		*exe = sbuf_detach(&x, NULL);
	}
	free(path);
	return r;
}

/* ---- choosing the mode --------------------------------------------------------------------- */

int host_choose(struct op_ctx *c)
{
	const struct target_spec *t = &c->req.target;
	c->res->mode = t->ssh && *t->ssh ? "agentless" : "local";
	if (!t->ssh || !*t->ssh || t->mode == MODE_AGENTLESS || c->recover_only)
		return 0;
	if (c->req.type != OP_DEPLOY && c->req.type != OP_ROLLBACK && c->req.type != OP_SET_CURRENT &&
	    c->req.type != OP_PRUNE)
		return 0;
	char *boot = t->remote_punix ? NULL : host_bootstrap_exe(c);
	char *line = host_line(t->remote_punix, t->transport_root, boot);
	c->host = xcalloc(1, sizeof(*c->host));
	struct sbuf err = SBUF_INIT;
	int r = host_connect(c->tops, line, c->e->store->root, t->transport_root, c->host, &err);
	if (r == 1 && !t->remote_punix && c->e->static_punix) {
		/* no punix there: push the static one into its store (once), then start that */
		sbuf_reset(&err);
		char *exe = NULL;
		r = bootstrap(c, &exe, &err);
		if (r == 0) {
			free(line);
			line = host_line(NULL, t->transport_root, exe);
			r = host_connect(c->tops, line, c->e->store->root, t->transport_root, c->host, &err);
			c->res->bootstrapped = true;
		}
		free(exe);
		if (r != 0 && t->mode == MODE_AUTO && r != -EPROTO)
			r = 1;
	}
	free(line);
	free(boot);
	bool bot = c->req.type == OP_DEPLOY && c->in->build_on_target;
	if (r == 1 && bot)
		r = -ENOEXEC; /* building on the target needs its punix: no agentless fallback */
	if (r == 0) {
		c->kind = c->req.type == OP_DEPLOY && !bot ? &host_deploy_kind : &host_remote_kind;
		c->res->mode = "host";
		snprintf(c->res->target_punix, sizeof(c->res->target_punix), "%s", c->host->punix);
		sbuf_free(&err);
		return 1;
	}
	free(c->host);
	c->host = NULL;
	if (r == 1 && t->mode == MODE_AUTO) {
		sbuf_free(&err);
		return 0; /* nothing of ours runs there: agentless */
	}
	if (r == -EPROTO)
		op_fail(c, 1, "%s", err.sb_buf);
	else
		op_fail(c, 3, "[E17] host mode: no punix can run on the target: %s (install punix there, name it with "
			      "--remote-punix, or use --mode agentless)",
			err.sb_len ? err.sb_buf : "no reason was given");
	sbuf_free(&err);
	return -1;
}

void host_drop(struct op_ctx *c)
{
	if (!c->host)
		return;
	c->res->round_trips = c->host->waits;
	host_close(c->host, NULL);
	free(c->host);
	c->host = NULL;
}

/* ---- the steps --------------------------------------------------------------------------- */

static void plan_adopt(struct op_ctx *c)
{
	for (size_t i = 0; i < c->in->nadopt; i++)
		plan_list_add(&c->plan.adopt, &c->plan.nadopt, c->in->adopt[i]);
}

static int host_plan(struct op_ctx *c)
{
	plan_adopt(c);
	return deploy_prepare(c, c->host->arch);
}

struct pushing {
	struct op_ctx *c;
	size_t total;
};

static void pushed_some(void *arg, size_t done, uint64_t bytes)
{
	struct pushing *p = arg;
	op_count(p->c, "paths pushed", done, p->total, bytes);
}

static int host_push_missing(struct op_ctx *c)
{
	struct op_plan *p = &c->plan;
	if (!p->npaths)
		return 0;
	unsigned char *bits = xcalloc(p->npaths, 1);
	struct sbuf err = SBUF_INIT;
	int r = host_have(c->host, (const char *const *)p->store_paths, p->npaths, bits, &err);
	VEC(const char *) missing = {0};
	for (size_t i = 0; r == 0 && i < p->npaths; i++)
		if (!bits[i])
			VEC_PUSH(&missing, p->store_paths[i]);
	struct pushing pu = {c, missing.n};
	struct host_push_tick tick = {pushed_some, &pu};
	if (r == 0 && missing.n) {
		op_count(c, "paths pushed", 0, missing.n, 0);
		r = host_push(c->host, c->e->store, missing.v, missing.n, &tick, &err);
	}
	if (r < 0)
		op_fail(c, 3, "pushing the closure to the target: %s", err.sb_buf);
	VEC_FREE(&missing);
	free(bits);
	sbuf_free(&err);
	return r < 0 ? 3 : 0;
}

static void to_sbuf(void *arg, const char *buf, size_t n)
{
	sbuf_append(arg, buf, n);
}

struct run_out {
	struct sbuf out, err;
	struct op_ctx *c;         /* confirm-or-revert: the op whose target may ask for its confirmation */
	bool confirm_sent;
	struct sbuf confirm_err;  /* why the confirmation could not be given */
};

/* What the target's punix says on its standard error once it waits (frontends/cli: cli_confirm_waiting). */
#define CONFIRM_MARK "@punix-awaiting-confirmation\n"

static void out_cb(void *arg, const char *buf, size_t n)
{
	to_sbuf(&((struct run_out *)arg)->out, buf, n);
}

static void err_cb(void *arg, const char *buf, size_t n)
{
	struct run_out *ro = arg;
	to_sbuf(&ro->err, buf, n);
	char *m = ro->c && !ro->confirm_sent ? strstr(sbuf_str(&ro->err), CONFIRM_MARK) : NULL;
	if (m) {
		/* the target waits: the confirmation goes over a new connection, proof the deploy did not cut us off */
		size_t at = (size_t)(m - ro->err.sb_buf), k = strlen(CONFIRM_MARK);
		memmove(m, m + k, ro->err.sb_len - at - k + 1);
		ro->err.sb_len -= k;
		ro->confirm_sent = true;
		host_give_confirmation(ro->c, &ro->confirm_err);
	}
}

/* The target's places, as its punix takes them on its command line. */
static void target_args(struct op_ctx *c, const char ***args, size_t *n, bool store)
{
	const struct op_plan *p = &c->plan;
	const char **a = *args;
	size_t k = *n;
	if (p->transport_root && *p->transport_root) {
		a[k++] = "--transport-root";
		a[k++] = p->transport_root;
	}
	a[k++] = "--deployments-root";
	a[k++] = p->deployments_root;
	a[k++] = "--unit-dir";
	a[k++] = p->unit_dir;
	if (p->supervisor_conf && *p->supervisor_conf) {
		a[k++] = "--supervisor-conf";
		a[k++] = p->supervisor_conf;
	}
	if (store) {
		a[k++] = "--store-root";
		a[k++] = p->store_root;
	}
	a[k++] = "--json";
	if (p->activate)
		a[k++] = "--activate";
	if (p->enable)
		a[k++] = "--enable";
	*n = k;
}

/* Reads the target's JSON answer into the op's result. */
static int take_answer(struct op_ctx *c, int code, struct run_out *ro)
{
	json_error_t je;
	json_t *j = json_loadb(sbuf_str(&ro->out), ro->out.sb_len, 0, &je);
	/* what the target's punix said on standard error: lines about ops it recovered first, or the error */
	const char *e = sbuf_str(&ro->err);
	/*
	 * Done, or done but what activation started did not all come up: the
	 * target's punix then exits 1 with the op's object (the flip stands),
	 * as this command will.
	 */
	json_int_t fu0 = 0;
	bool activation_failed = code == 1 && j && json_object_get(j, "generation") &&
				 ((json_unpack(j, "{s:I}", "failed_units", &fu0) == 0 && fu0 > 0) ||
				  json_is_string(json_object_get(j, "no_activator")));
	if ((code == 0 && j && json_is_true(json_object_get(j, "ok"))) || activation_failed) {
		json_int_t g = 0, pv = 0, nf = 0, np = 0, fu = 0;
		json_unpack(j, "{s?I, s?I, s?I, s?I, s?I}", "generation", &g, "previous", &pv, "config_files", &nf,
			    "store_paths", &np, "failed_units", &fu);
		json_int_t del = -1, cur = -1;
		json_unpack(j, "{s?I, s?I}", "deleted", &del, "current", &cur);
		c->res->generation = cur >= 0 ? (long)cur : (long)g;
		c->res->previous = (long)pv;
		c->res->nfiles = (size_t)nf;
		c->res->npaths = del >= 0 ? (size_t)del : (size_t)np;
		c->res->failed_units = (size_t)fu;
		const char *act = json_string_value(json_object_get(j, "activation"));
		if (act)
			sbuf_puts(&c->res->activation, act);
		const char *na = json_string_value(json_object_get(j, "no_activator"));
		if (na) { /* the registry's own name (static), as activate.c sets it */
			const struct backend *b = backend_find(na);
			c->res->no_activator = b ? b->name : "unknown";
		}
		if (json_is_true(json_object_get(j, "confirmed")))
			c->res->confirmed = 1;
		const char *fl = json_string_value(json_object_get(j, "failed"));
		if (fl)
			sbuf_puts(&c->res->failed, fl);
		if (*e)
			sbuf_puts(&c->res->recovered, e);
		json_decref(j);
		return 0;
	}
	/* the target's --json failure object: "error": {"code", "message", ...} (a string from an older punix) */
	json_t *ej = j ? json_object_get(j, "error") : NULL;
	const char *why = json_is_object(ej) ? json_string_value(json_object_get(ej, "message")) : json_string_value(ej);
	const char *ecode = json_is_object(ej) ? json_string_value(json_object_get(ej, "code")) : NULL;
	struct sbuf msg = SBUF_INIT;
	if (why) {
		if (ecode && why[0] != '[')
			sbuf_printf(&msg, "[%s] ", ecode);
		sbuf_puts(&msg, why);
	} else if (code > 128 && code < 160) {
		sbuf_printf(&msg,
			    "the target's punix was killed (signal %d) in the middle of the op; the target's journal has it",
			    code - 128);
		c->remote_lost = true;
	} else {
		/* its last "error: " line, or all it said */
		const char *l = strstr(e, "error: ");
		sbuf_puts(&msg, l ? l + 7 : *e ? e : "it failed without saying why");
		while (msg.sb_len && msg.sb_buf[msg.sb_len - 1] == '\n')
			msg.sb_buf[--msg.sb_len] = '\0';
	}
	/* the target's exit code when it is one of ours, else a failure there */
	if (code < 1 || code > 4)
		code = 3;
	if (ecode && !strcmp(ecode, "E18"))
		c->res->confirmed = -1; /* reverted there */
	op_fail(c, code, "%s (on the target, by its punix %s)", msg.sb_buf, c->host->punix);
	sbuf_free(&msg);
	if (j)
		json_decref(j);
	return c->res->exit;
}

static int run_on_target(struct op_ctx *c, const char **args, size_t nargs, const struct sbuf *bundle)
{
	struct run_out ro = {SBUF_INIT, SBUF_INIT, c, false, SBUF_INIT};
	struct sbuf err = SBUF_INIT;
	int code = 0;
	int r = host_run(c->host, args, nargs, bundle, out_cb, err_cb, &ro, &code, &err);
	int rc;
	if (r < 0) {
		/* the connection broke: what the target did, its own journal knows (undoing run asks it) */
		rc = op_fail(c, 3, "the target's punix: %s", err.sb_buf);
		c->remote_lost = true;
	} else {
		c->remote_ran = true;
		rc = take_answer(c, code, &ro);
	}
	if (rc && ro.confirm_err.sb_len)
		sbuf_printf(&c->res->error, " (%s)", ro.confirm_err.sb_buf);
	sbuf_free(&ro.confirm_err);
	sbuf_free(&ro.out);
	sbuf_free(&ro.err);
	sbuf_free(&err);
	return rc;
}

static int host_run_deploy(struct op_ctx *c)
{
	const struct op_plan *p = &c->plan;
	struct bundle b = {0};
	b.stack = (char *)c->stack;
	char req[96];
	snprintf(req, sizeof(req), "op-%llu", (unsigned long long)c->id);
	b.request = req;
	b.deployed_at = p->deployed_at;
	b.source_hash = p->source_hash;
	b.services = p->services;
	b.store_paths = p->store_paths;
	b.npaths = p->npaths;
	b.files = xcalloc(c->rf.n + 1, sizeof(*b.files));
	for (size_t i = 0; i < c->rf.n; i++) {
		const struct rendered_file *f = &c->rf.files[i];
		b.files[b.nfiles++] = (struct bundle_file){f->path, f->mode, f->secret, f->owner,
							   (unsigned char *)f->content, f->len};
	}
	struct sbuf enc = SBUF_INIT;
	bundle_encode(&b, &enc);
	free(b.files);
	const char *argv[48];
	const char **a = argv;
	size_t n = 0;
	argv[n++] = "service";
	argv[n++] = "deploy";
	argv[n++] = c->stack;
	target_args(c, &a, &n, true);
	char secs[24];
	host_confirm_args(c, argv, &n, secs);
	for (size_t i = 0; i < p->nadopt && n + 2 < sizeof(argv) / sizeof(argv[0]); i++) {
		argv[n++] = "--adopt";
		argv[n++] = p->adopt[i];
	}
	int rc = run_on_target(c, argv, n, &enc);
	/* secret values were in it */
	if (enc.sb_buf)
		memset(enc.sb_buf, 0, enc.sb_cap);
	sbuf_free(&enc);
	return rc;
}

/* --build-on-target's run: the target's punix builds and deploys the program sent. */
static int host_run_build(struct op_ctx *c)
{
	const struct op_plan *p = &c->plan;
	const char *prog = p->store_paths[0];
	struct bundle b = {0};
	b.build = true;
	b.stack = (char *)c->stack;
	char req[96];
	snprintf(req, sizeof(req), "op-%llu", (unsigned long long)c->id);
	b.request = req;
	b.secrets = xcalloc(c->nsecrets + 1, sizeof(*b.secrets));
	for (size_t i = 0; i < c->nsecrets; i++)
		b.secrets[b.nsecrets++] = (struct bundle_secret){(char *)c->secrets[i].service,
								 (char *)c->secrets[i].key, (char *)c->secrets[i].value};
	struct sbuf enc = SBUF_INIT;
	bundle_encode(&b, &enc);
	free(b.secrets);
	VEC(char *) owned = {0};
	VEC(const char *) argv = {0};
	VEC_PUSH(&argv, "service");
	VEC_PUSH(&argv, "deploy");
	VEC_PUSH(&argv, c->stack);
	size_t tl = strlen(c->in->tree_root);
	for (size_t i = 0; i < c->in->nfiles; i++) {
		const char *f = c->in->files[i];
		struct sbuf x = SBUF_INIT;
		sbuf_printf(&x, "%s%s", prog, strlen(f) > tl ? f + tl : "");
		VEC_PUSH(&owned, sbuf_detach(&x, NULL));
		VEC_PUSH(&argv, "--file");
		VEC_PUSH(&argv, owned.v[owned.n - 1]);
	}
	const char *rest[24];
	const char **a = rest;
	size_t n = 0;
	target_args(c, &a, &n, false);
	char secs[24];
	host_confirm_args(c, rest, &n, secs);
	for (size_t i = 0; i < n; i++)
		VEC_PUSH(&argv, rest[i]);
	for (size_t i = 0; i < p->nadopt; i++) {
		VEC_PUSH(&argv, "--adopt");
		VEC_PUSH(&argv, p->adopt[i]);
	}
	int rc = run_on_target(c, argv.v, argv.n, &enc);
	if (enc.sb_buf)
		memset(enc.sb_buf, 0, enc.sb_cap);
	sbuf_free(&enc);
	for (size_t i = 0; i < owned.n; i++)
		free(owned.v[i]);
	VEC_FREE(&owned);
	VEC_FREE(&argv);
	return rc;
}

static int host_run_remote(struct op_ctx *c)
{
	if (c->req.type == OP_DEPLOY)
		return host_run_build(c);
	const char *argv[32];
	const char **a = argv;
	size_t n = 0;
	char num[32];
	argv[n++] = "service";
	switch (c->req.type) {
	case OP_ROLLBACK: argv[n++] = "rollback"; break;
	case OP_SET_CURRENT: argv[n++] = "set-current"; break;
	default: argv[n++] = "prune"; break;
	}
	argv[n++] = c->stack;
	if (c->req.type == OP_SET_CURRENT) {
		snprintf(num, sizeof(num), "%ld", c->want);
		argv[n++] = num;
	}
	if (c->req.type == OP_PRUNE) {
		snprintf(num, sizeof(num), "%ld", c->keep);
		argv[n++] = "--keep";
		argv[n++] = num;
	}
	target_args(c, &a, &n, true);
	char secs[24];
	if (c->req.type != OP_PRUNE)
		host_confirm_args(c, argv, &n, secs);
	if (c->req.type == OP_PRUNE) {
		/* prune takes no --activate; nor --unit-dir's effects, but it accepts them */
		for (size_t i = 0; i < n; i++)
			if (!strcmp(argv[i], "--activate") || !strcmp(argv[i], "--enable"))
				argv[i] = "--json";
	}
	return run_on_target(c, argv, n, NULL);
}

/*
 * --build-on-target's plan: the program's whole tree becomes a store path
 * here ("<hash>-program", named by its hash), pushed to the target like any
 * path; the secrets are resolved here, as for any deploy from here.
 */
static int host_remote_plan(struct op_ctx *c)
{
	if (c->req.type != OP_DEPLOY)
		return 0;
	plan_adopt(c);
	struct engine *e = c->e;
	struct punix_ops *o = e->local;
	if (resolve_secrets(c, c->in->stack) != 0)
		return 1;
	struct sbuf at = SBUF_INIT, err = SBUF_INIT;
	sbuf_printf(&at, "%s/punix-program", e->store->root);
	char *tmp = ops_tmp_name(at.sb_buf);
	/* the temporary is ours while we hold this lock: recovery removes it only when nobody does */
	char *lock = store_lock_path(e->store, at.sb_buf);
	int lh = -1;
	int r = o->lock(o, lock, 1, 1, &lh);
	free(lock);
	sbuf_free(&at);
	unsigned char h[32];
	if (r == 0)
		r = ops_copy_tree(o, c->in->tree_root, tmp);
	if (r == 0)
		r = store_hash_tree(o, tmp, h, NULL);
	char *path = NULL;
	if (r == 0) {
		char b32[STORE_HASH_CHARS + 1];
		store_base32(h, b32);
		struct sbuf p = SBUF_INIT;
		sbuf_printf(&p, "%s/%s-program", e->store->root, b32);
		path = sbuf_detach(&p, NULL);
		r = store_add_tree(e->store, tmp, path, &err);
		if (r == 1)
			r = 0;
	}
	if (r < 0) {
		ops_remove_tree(o, tmp);
		op_fail(c, 3, "packing the program under %s to send it: %s", c->in->tree_root,
			err.sb_len ? err.sb_buf : ops_strerror(r));
	}
	if (lh >= 0)
		o->unlock(o, lh);
	free(tmp);
	sbuf_free(&err);
	if (r < 0) {
		free(path);
		return 3;
	}
	plan_list_add(&c->plan.store_paths, &c->plan.npaths, path);
	free(path);
	return host_push_missing(c);
}

/*
 * Undoing run: in the op itself, nothing when the target said how it
 * ended. When the target's punix died or the connection broke mid-op, and
 * in a recovery: the target recovers itself, and says what is current
 * there. If it cannot be reached, the undo fails and the op stays running
 * in this journal, for 'punix recover' to ask again.
 */
static int host_run_undo(struct op_ctx *c)
{
	if (!c->parent && !c->remote_lost)
		return 0;
	struct sbuf err = SBUF_INIT, *rep = &c->host_report;
	struct host_conn h;
	const struct op_plan *p = &c->plan;
	int rc = 0;
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		/* the op's --remote-punix (its plan has it), else on its PATH, or bootstrapped */
		char *boot = p->remote_punix ? NULL : host_bootstrap_exe(c);
		char *line = host_line(p->remote_punix, p->transport_root, boot);
		int r = host_connect(c->tops, line, p->store_root, p->transport_root, &h, &err);
		free(line);
		free(boot);
		if (r != 0) {
			sbuf_printf(rep, "the target cannot be asked what became of it: %s", err.sb_buf);
			rc = -1;
			break;
		}
		const char *argv[24];
		const char **a = argv;
		size_t n = 0;
		if (pass == 0) {
			argv[n++] = "recover";
			argv[n++] = "--store-root";
			argv[n++] = p->store_root;
		} else {
			argv[n++] = "service";
			argv[n++] = "status";
			argv[n++] = c->stack;
			target_args(c, &a, &n, true);
			n -= p->activate + p->enable; /* status takes neither */
		}
		struct run_out ro = {SBUF_INIT, SBUF_INIT, NULL, false, SBUF_INIT};
		int code = 0;
		r = host_run(&h, argv, n, NULL, out_cb, err_cb, &ro, &code, &err);
		host_close(&h, NULL);
		if (r < 0 || (code != 0 && pass == 0)) {
			sbuf_printf(rep, "the target's recovery failed: %s%s", r < 0 ? err.sb_buf : "",
				    r < 0 ? "" : sbuf_str(&ro.err));
			rc = -1;
		} else if (pass == 0) {
			/* its lines, on one of ours */
			struct sbuf said = SBUF_INIT;
			for (const char *s = sbuf_str(&ro.out); *s;) {
				size_t k = strcspn(s, "\n");
				if (k)
					sbuf_printf(&said, "%s%.*s", said.sb_len ? "; " : "", (int)k, s);
				s += k + (s[k] == '\n');
			}
			sbuf_printf(rep, "the target's own recovery: %s", said.sb_len ? said.sb_buf : "nothing was left running");
			sbuf_free(&said);
		} else {
			json_t *j = json_loadb(sbuf_str(&ro.out), ro.out.sb_len, 0, NULL);
			json_int_t cur = 0;
			if (j && json_unpack(j, "{s:I}", "current", &cur) == 0)
				sbuf_printf(rep, "; current there is gen-%03lld", (long long)cur);
			if (j)
				json_decref(j);
		}
		sbuf_free(&ro.out);
		sbuf_free(&ro.err);
	}
	sbuf_free(&err);
	if (!c->parent)
		sbuf_printf(&c->res->error, "\n%s", rep->sb_buf);
	return rc < 0 ? 3 : 0;
}

static const struct step host_deploy_steps[] = {
	{"plan", host_plan, NULL, false},
	{"build", deploy_build, NULL, false},
	{"push", host_push_missing, NULL, false},
	{"run", host_run_deploy, host_run_undo, false},
};

const struct op_kind host_deploy_kind = {"deploy@host", host_deploy_steps, NSTEPS(host_deploy_steps)};

static const struct step host_remote_steps[] = {
	{"plan", host_remote_plan, NULL, false},
	{"run", host_run_remote, host_run_undo, false},
};

const struct op_kind host_remote_kind = {"remote", host_remote_steps, NSTEPS(host_remote_steps)};
