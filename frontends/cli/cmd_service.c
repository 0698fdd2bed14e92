/*
 * cmd_service.c - `punix service deploy|rollback|set-current|status|verify`.
 *
 * The commands resolve where things are (places, the target), open the
 * journal and the store, and hand the op to the engine; what they print is
 * the contract of docs/cli.md.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../base/path.h"
#include "../../base/vec.h"
#include "../../base/xalloc.h"
#include "../../engine/engine.h"
#include "../../engine/host.h"
#include "../../engine/proto.h"
#include "cli.h"

/* What to say of an op that failed without a reason (none should). */
#define OP_NO_REASON "the operation failed without giving a reason (see punix journal show)"

#define SERVICE_USAGE cli_service_usage

struct svc_opts {
	const char *sub, *stack;
	char **files;
	size_t nfiles;
	bool dry_run, json, activate, enable;
	const char *transport_root, *deployments_root, *unit_dir, *store_root, *state_dir, *supervisor_conf;
	const char *target, *known_hosts, *key;
	enum target_mode mode;
	bool have_mode;
	const char *remote_punix;
	int bundle_fd; /* host mode's target side: the generation bundle arrives here (internal) */
	bool build_on_target;
	long gen;
	long keep;
	bool have_keep;
	const char *adopt[64];
	size_t nadopt;
	long confirm_timeout, wait; /* --confirm-timeout; confirm's --wait */
	const char *health, *confirm_token, *token, *vault;
};

static int parse(struct cli_ctx *cx, int argc, char **argv, struct svc_opts *o)
{
	static const struct option longopts[] = {
		{"file", required_argument, NULL, 'f'},
		{"dry-run", no_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"transport-root", required_argument, NULL, 'T'},
		{"deployments-root", required_argument, NULL, 'D'},
		{"unit-dir", required_argument, NULL, 'U'},
		{"supervisor-conf", required_argument, NULL, 'C'},
		{"store-root", required_argument, NULL, 'S'},
		{"state-dir", required_argument, NULL, 'J'},
		{"keep", required_argument, NULL, 'K'},
		{"activate", no_argument, NULL, 'a'},
		{"target", required_argument, NULL, 't'},
		{"known-hosts", required_argument, NULL, 'k'},
		{"key", required_argument, NULL, 'i'},
		{"enable", no_argument, NULL, 'e'},
		{"adopt", required_argument, NULL, 'A'},
		{"mode", required_argument, NULL, 'M'},
		{"remote-punix", required_argument, NULL, 'R'},
		{"bundle-fd", required_argument, NULL, 'B'},
		{"build-on-target", no_argument, NULL, 'b'},
		{"confirm-timeout", required_argument, NULL, 'W'},
		{"health", required_argument, NULL, 'H'},
		{"vault-secrets", required_argument, NULL, 'V'},
		{"confirm-token", required_argument, NULL, 'X'},
		{"wait", required_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	static char *files[64];
	char cmdname[40];
	snprintf(cmdname, sizeof(cmdname), "service %s", o->sub);
	while ((c = cli_getopt(cx, argc, argv, longopts, cmdname)) != -1) {
		switch (c) {
		case 'f':
			if (o->nfiles == 64)
				return cli_fail(cx, EXIT_USAGE, "too many --file options");
			files[o->nfiles++] = optarg;
			break;
		case 'n': o->dry_run = true; break;
		case 'A':
			if (o->nadopt == 64)
				return cli_fail(cx, EXIT_USAGE, "too many --adopt options (64 at most)");
			if (!path_is_normal_abs(optarg))
				return cli_fail(cx, EXIT_USAGE, "--adopt needs an absolute path without '.', '..' or '//', got '%s'",
						optarg);
			o->adopt[o->nadopt++] = optarg;
			break;
		case 'a': o->activate = true; break;
		case 'M':
			if (cli_parse_mode(cx, optarg, &o->mode) != EXIT_OK)
				return EXIT_USAGE;
			o->have_mode = true;
			break;
		case 'R':
			if (optarg[0] != '/')
				return cli_fail(cx, EXIT_USAGE, "--remote-punix needs an absolute path on the target, got '%s'",
						optarg);
			o->remote_punix = optarg;
			break;
		case 'B': {
			char *end;
			long fd = strtol(optarg, &end, 10);
			if (*end || fd < 3 || fd > 1024)
				return cli_fail(cx, EXIT_USAGE, "--bundle-fd needs a descriptor number (3 or more), got '%s'", optarg);
			o->bundle_fd = (int)fd;
			break;
		}
		case 'b': o->build_on_target = true; break;
		case 't': o->target = optarg; break;
		case 'k': o->known_hosts = optarg; break;
		case 'i': o->key = optarg; break;
		case 'e': o->enable = true; break;
		case 'j': o->json = true; break;
		case 'T': o->transport_root = optarg; break;
		case 'D': o->deployments_root = optarg; break;
		case 'U': o->unit_dir = optarg; break;
		case 'C': o->supervisor_conf = optarg; break;
		case 'S': o->store_root = optarg; break;
		case 'J': o->state_dir = optarg; break;
		case 'K': {
			char *end;
			o->keep = strtol(optarg, &end, 10);
			if (*end || o->keep < 0)
				return cli_fail(cx, EXIT_USAGE, "--keep needs a number of generations (0 or more), got '%s'",
						optarg);
			o->have_keep = true;
			break;
		}
		case 'W':
		case 'w': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 86400)
				return cli_fail(cx, EXIT_USAGE, "--%s needs a number of seconds (1 to 86400), got '%s'",
						c == 'W' ? "confirm-timeout" : "wait", optarg);
			*(c == 'W' ? &o->confirm_timeout : &o->wait) = v;
			break;
		}
		case 'H': o->health = optarg; break;
		case 'V': o->vault = optarg; break;
		case 'X': o->confirm_token = optarg; break;
		case 'h': cmd_service_help(); return -1;
		default: return cli_usage(cx, SERVICE_USAGE);
		}
	}
	o->files = files;
	char **rest = argv + optind;
	int nrest = argc - optind;
	bool needs_n = !strcmp(o->sub, "set-current"), confirm = !strcmp(o->sub, "confirm");
	if (nrest != (needs_n || confirm ? 2 : 1))
		return cli_usage(cx, SERVICE_USAGE);
	o->stack = rest[0];
	o->token = confirm ? rest[1] : NULL;
	bool switches = !strcmp(o->sub, "deploy") || !strcmp(o->sub, "rollback") || !strcmp(o->sub, "set-current");
	if ((o->confirm_timeout || o->health || o->confirm_token) && !switches)
		return cli_fail(cx, EXIT_USAGE, "--confirm-timeout, --health and --confirm-token go with deploy, rollback and "
					    "set-current");
	if ((o->health || o->confirm_token) && !o->confirm_timeout)
		return cli_fail(cx, EXIT_USAGE, "--health and --confirm-token go with --confirm-timeout SECS");
	if (o->confirm_timeout && o->dry_run)
		return cli_fail(cx, EXIT_USAGE, "--confirm-timeout does not go with --dry-run (nothing there to keep or revert)");
	if (o->wait && !confirm)
		return cli_fail(cx, EXIT_USAGE, "--wait goes with confirm");
	if (o->vault && (strcmp(o->sub, "deploy") || o->bundle_fd))
		return cli_fail(cx, EXIT_USAGE, "--vault-secrets goes with deploy (its from_vault secrets)");
	if (confirm && o->activate)
		return cli_fail(cx, EXIT_USAGE, "confirm takes no --activate (the op it confirms activated already)");
	if (confirm && o->target && o->mode == MODE_AGENTLESS)
		return cli_fail(cx, EXIT_USAGE, "confirm over SSH is run by the target's punix: not with --mode agentless");
	if (needs_n) {
		/* as status prints it (gen-002) or as a number (2, 002) */
		const char *num = !strncmp(rest[1], "gen-", 4) ? rest[1] + 4 : rest[1];
		char *end;
		o->gen = *num >= '0' && *num <= '9' ? strtol(num, &end, 10) : 0;
		if (o->gen <= 0 || *end)
			return cli_fail(cx, EXIT_USAGE, "set-current: '%s' is not a generation (write it N or gen-NNN, as status shows)",
					rest[1]);
	}
	if (!o->target && (o->known_hosts || o->key || o->have_mode || o->remote_punix))
		return cli_fail(cx, EXIT_USAGE, "--known-hosts, --key, --mode and --remote-punix go with --target");
	if (o->remote_punix && o->mode == MODE_AGENTLESS)
		return cli_fail(cx, EXIT_USAGE, "--remote-punix goes with host mode, not --mode agentless");
	if (o->bundle_fd && (strcmp(o->sub, "deploy") || o->target || o->dry_run))
		return cli_fail(cx, EXIT_USAGE, "--bundle-fd is host mode's own (deploy, without --target or --dry-run)");
	if (o->build_on_target && (strcmp(o->sub, "deploy") || !o->target))
		return cli_fail(cx, EXIT_USAGE, "--build-on-target goes with deploy --target");
	if (o->build_on_target && o->mode == MODE_AGENTLESS)
		return cli_fail(cx, EXIT_USAGE, "--build-on-target needs the target's punix: it does not go with --mode agentless");
	if (o->build_on_target && o->transport_root)
		return cli_fail(cx, EXIT_USAGE, "--build-on-target builds in the target's own store, which --transport-root "
					    "cannot rebase (builds run only where their store really is)");
	if (o->target && o->dry_run)
		return cli_fail(cx, EXIT_USAGE, "--dry-run deploys into a local scratch directory; it does not take --target");
	if (o->enable && !o->activate)
		return cli_fail(cx, EXIT_USAGE, "--enable goes with --activate");
	if ((o->activate) && strcmp(o->sub, "deploy") && strcmp(o->sub, "rollback") && strcmp(o->sub, "set-current"))
		return cli_fail(cx, EXIT_USAGE, "--activate goes with deploy, rollback and set-current");
	if (o->supervisor_conf && strcmp(o->sub, "deploy") && strcmp(o->sub, "rollback") && strcmp(o->sub, "set-current"))
		return cli_fail(cx, EXIT_USAGE, "--supervisor-conf goes with deploy, rollback and set-current");
	if (!strcmp(o->sub, "prune") && !o->have_keep)
		return cli_fail(cx, EXIT_USAGE, "prune needs --keep N (the newest generations to keep besides the current one)");
	if (!strcmp(o->sub, "deploy") && o->nfiles == 0 && !o->bundle_fd)
		return cli_fail(cx, EXIT_USAGE, "deploy needs --file F (the program that defines %s)", o->stack);
	/* A stack name becomes a directory name on the target; deploy takes several, comma-separated. */
	size_t nnames;
	char **names_ = cli_split_commas(o->stack, &nnames);
	if (nnames > 1 && strcmp(o->sub, "deploy")) {
		cli_free_strings(names_, nnames);
		return cli_fail(cx, EXIT_USAGE, "only deploy takes several stacks (STACK,STACK,...); %s takes one", o->sub);
	}
	for (size_t k = 0; k < nnames || k == 0; k++) {
		const char *s = nnames ? names_[k] : "";
		const char *name = s;
		bool ok = s[0] && s[0] != '.' && s[0] != '-' && strlen(s) <= 128;
		for (; *s && ok; s++)
			ok = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
			     *s == '_' || *s == '-';
		if (!ok) {
			int rc = cli_fail(cx, EXIT_USAGE,
					  "'%s' is not a stack name (a module name: letters, digits, '_' and '-')",
					  nnames > 1 ? name : o->stack);
			cli_free_strings(names_, nnames);
			return rc;
		}
		if (!nnames)
			break;
	}
	cli_free_strings(names_, nnames);
	const char *paths[] = {o->transport_root, o->deployments_root, o->unit_dir, o->supervisor_conf};
	const char *names[] = {"--transport-root", "--deployments-root", "--unit-dir", "--supervisor-conf"};
	for (int i = 0; i < 4; i++)
		if (paths[i] && paths[i][0] != '/')
			return cli_fail(cx, EXIT_USAGE, "%s needs an absolute path, got '%s'", names[i], paths[i]);
	return EXIT_OK;
}

/* A root named on the command line, canonical (base/path.h); NULL after an error. */
static char *canonical_root(struct cli_ctx *cx, const char *what, const char *p, int *rc)
{
	const char *why;
	char *c = path_canonical(p, NULL, &why);
	if (!c)
		*rc = cli_fail(cx, EXIT_USAGE, "%s '%s' cannot be used: %s", what, p, why);
	return c;
}

/* How a command reached its target, for SSH targets: a line, or a JSON member. */
static const char *mode_of(const struct svc_opts *o)
{
	return o->target ? "agentless" : NULL;
}

static int no_generations(struct cli_ctx *cx, const struct svc_opts *o, struct punix_ops *tops, const char *dep)
{
	struct sbuf there = SBUF_INIT;
	engine_stacks_text(tops, dep, &there);
	/* the path as the target has it, and, rebased, where that is here */
	int rc = cli_fail(cx, EXIT_ERROR, "stack '%s' has no generations under %s%s%s%s%s; %s", o->stack, dep,
			  o->transport_root ? " (here " : "", o->transport_root ? o->transport_root : "",
			  o->transport_root ? dep : "", o->transport_root ? ")" : "", there.sb_buf);
	sbuf_free(&there);
	return rc;
}

static void print_status(struct cli_ctx *cx, const struct svc_opts *o, struct punix_ops *tops, const char *dep, int *rc)
{
	struct gen_info *g;
	size_t n;
	long cur;
	struct sbuf err = SBUF_INIT;
	if (engine_generations(tops, dep, o->stack, &g, &n, &cur, &err) < 0) {
		*rc = cli_fail(cx, EXIT_ERROR, "%s", cli_reason(err.sb_buf, "cannot read the stack's generations"));
		sbuf_free(&err);
		return;
	}
	if (o->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_pack("{s:I, s:s, s:b, s:I, s:I}", "generation",
							     (json_int_t)g[i].number, "deployed_at", g[i].deployed_at,
							     "current", g[i].number == cur, "config_files",
							     (json_int_t)g[i].nfiles, "store_paths", (json_int_t)g[i].npaths));
		json_t *obj = json_pack("{s:s, s:I, s:o}", "stack", o->stack, "current", (json_int_t)cur, "generations",
					arr);
		if (mode_of(o))
			json_object_set_new(obj, "mode", json_string(mode_of(o)));
		if (n == 0)
			*rc = no_generations(cx, o, tops, dep);
		cli_json_out(cx, obj, *rc);
	} else if (n == 0) {
		*rc = no_generations(cx, o, tops, dep);
	} else {
		printf("stack %s: current gen-%03ld\n", o->stack, cur);
		for (size_t i = 0; i < n; i++)
			printf("%s gen-%03ld  %s  %zu config file(s), %zu store path(s)\n", g[i].number == cur ? "*" : " ",
			       g[i].number, g[i].deployed_at, g[i].nfiles, g[i].npaths);
	}
	if (!o->json && mode_of(o))
		printf("mode: %s\n", mode_of(o));
	gen_infos_free(g, n);
	sbuf_free(&err);
}

static void print_verify(struct cli_ctx *cx, const struct svc_opts *o, struct punix_ops *tops, const char *dep, int *rc)
{
	struct drift *d;
	size_t n;
	long cur;
	struct sbuf err = SBUF_INIT;
	if (engine_verify(tops, dep, o->stack, &d, &n, &cur, &err) < 0) {
		*rc = cli_fail(cx, EXIT_ERROR, "%s", cli_reason(err.sb_buf, "cannot read the stack's current generation"));
		sbuf_free(&err);
		return;
	}
	if (o->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_pack("{s:s, s:s}", "path", d[i].path, "problem", d[i].what));
		json_t *obj = json_pack("{s:s, s:I, s:o}", "stack", o->stack, "current", (json_int_t)cur, "drift", arr);
		if (mode_of(o))
			json_object_set_new(obj, "mode", json_string(mode_of(o)));
		if (n)
			cli_note(cx, "stack %s gen-%03ld: %zu file(s) drifted", o->stack, cur, n);
		cli_json_out(cx, obj, n ? EXIT_ERROR : EXIT_OK);
	} else {
		for (size_t i = 0; i < n; i++)
			printf("drift: %s: %s\n", d[i].path, d[i].what);
		printf("stack %s gen-%03ld: %zu file(s) drifted\n", o->stack, cur, n);
		if (mode_of(o))
			printf("mode: %s\n", mode_of(o));
	}
	*rc = n ? EXIT_ERROR : EXIT_OK;
	drifts_free(d, n);
	sbuf_free(&err);
}

/* {"op", "stack", "generation", "previous", ...}; cli_json_out adds "ok", and "exit" and "error" */
static json_t *op_json(const char *stack, const struct op_result *r, const char *scratch, bool files)
{
	json_t *o = json_object();
	json_object_set_new(o, "stack", json_string(stack));
	json_object_set_new(o, "op", json_integer((json_int_t)r->op_id));
	if (r->mode && strcmp(r->mode, "local")) {
		json_object_set_new(o, "mode", json_string(r->mode));
		if (!strcmp(r->mode, "host")) {
			json_object_set_new(o, "target_punix", json_string(r->target_punix));
			json_object_set_new(o, "round_trips", json_integer(r->round_trips));
			json_object_set_new(o, "bootstrapped", json_boolean(r->bootstrapped));
		}
	}
	if (r->exit == 0) {
		json_object_set_new(o, "generation", json_integer(r->generation));
		json_object_set_new(o, "previous", json_integer(r->previous));
		if (files) {
			json_object_set_new(o, "config_files", json_integer((json_int_t)r->nfiles));
			json_object_set_new(o, "store_paths", json_integer((json_int_t)r->npaths));
		}
		if (scratch) {
			struct sbuf sb = SBUF_INIT;
			sbuf_printf(&sb, "%s/", scratch);
			json_object_set_new(o, "scratch", json_string(sb.sb_buf));
			sbuf_free(&sb);
		}
		if (r->activation.sb_len) {
			json_object_set_new(o, "activation", json_string(sbuf_str(&r->activation)));
			json_object_set_new(o, "failed_units", json_integer((json_int_t)r->failed_units));
			if (r->failed_units)
				json_object_set_new(o, "failed", json_string(sbuf_str(&r->failed)));
		}
		if (r->no_activator)
			json_object_set_new(o, "no_activator", json_string(r->no_activator));
		if (r->confirmed > 0)
			json_object_set_new(o, "confirmed", json_true());
	}
	return o;
}

/* For an SSH target: how the op reached it. */
static void print_mode(const struct op_result *r)
{
	if (!r->mode || !strcmp(r->mode, "local"))
		return;
	if (!strcmp(r->mode, "host"))
		printf("mode: host (the target's punix %s%s; %u round trip(s))\n", r->target_punix,
		       r->bootstrapped ? ", bootstrapped into its store" : "", r->round_trips);
	else
		printf("mode: %s\n", r->mode);
}

/*
 * What activation did, after the op's own line; units that did not
 * (re)start make the command fail (exit 1) without undoing the flip.
 */
static int report_activation(struct cli_ctx *cx, const char *stack, const char *done, const struct op_result *r,
			     bool json)
{
	if (!json) { /* with --json the lines are the object's "activation" */
		fputs(sbuf_str(&r->activation), stdout);
		fflush(stdout);
	}
	if (r->no_activator)
		return cli_fail(cx, EXIT_ERROR,
				"stack %s is %s (current \u2192 gen-%03ld) but backend '%s' has no activator: its files are "
				"rendered; activate them yourself \u2014 this was NOT rolled back",
				stack, done, r->generation, r->no_activator);
	if (!r->failed_units)
		return EXIT_OK;
	return cli_fail(cx, EXIT_ERROR,
			"stack %s is %s (current \u2192 gen-%03ld) but %zu unit(s) did not (re)start: %s \u2014 "
			"investigate and re-activate; this was NOT rolled back",
			stack, done, r->generation, r->failed_units, sbuf_str(&r->failed));
}

/*
 * One deploy's result as the CLI reports it; its exit code after
 * activation. With --json its object goes into *j (printed by the caller).
 */
static int report_deploy(struct cli_ctx *cx, const char *stack, struct op_result *r, const char *scratch, json_t **j,
			 bool several)
{
	cli_print_recovered(r);
	if (j) {
		*j = op_json(stack, r, scratch, true);
		if (r->exit)
			cli_fail(cx, r->exit, "%s%s%s%s", several ? "stack " : "", several ? stack : "", several ? ": " : "",
				 cli_reason(r->error.sb_buf, OP_NO_REASON));
	} else if (r->exit == 0) {
		printf("deployed: stack %s \u2192 gen-%03ld (%zu config file(s), %zu store path(s) pinned)\n", stack,
		       r->generation, r->nfiles, r->npaths);
		if (scratch)
			printf("scratch: %s/\n", scratch);
		print_mode(r);
	} else {
		cli_fail(cx, r->exit, "%s%s%s%s", several ? "stack " : "", several ? stack : "", several ? ": " : "",
			 cli_reason(r->error.sb_buf, OP_NO_REASON));
	}
	int rc = r->exit;
	if (rc == 0) /* the same exit code with --json or without */
		rc = report_activation(cx, stack, "deployed", r, j != NULL);
	if (r->exit == 0 && r->confirmed > 0 && !j)
		printf("confirmed: stack %s stays at gen-%03ld\n", stack, r->generation);
	return rc;
}

struct deploy_slot {
	struct deploy_input in;
	struct op_result r;
	bool done;
	struct cli_progress_src src; /* its progress, "deploy STACK: STEP..." */
	char label[160];
};

static void deploy_done(void *arg, struct op_result *r)
{
	struct deploy_slot *d = arg;
	d->r = *r;
	memset(r, 0, sizeof(*r)); /* the buffers are the slot's now */
	d->done = true;
}

/*
 * Deploys STACK, or every stack of STACK,STACK,...: all submitted to the
 * one engine at once, each its own op on its own lock; reported in the
 * order named, and the exit code is the worst of theirs.
 */
static int deploy(struct cli_ctx *cx, struct engine *e, const struct svc_opts *o, const struct target_spec *t, const char *scratch)
{
	struct pcl_program *prog;
	/* --bundle-fd with --file: a deployer's --build-on-target; the bundle has the secrets' values */
	struct bundle b = {0};
	bool have_b = false;
	if (o->bundle_fd) {
		int brc = cli_read_bundle(cx, o->bundle_fd, &b);
		if (brc != EXIT_OK)
			return brc;
		have_b = true;
		if (!b.build || strcmp(b.stack, o->stack) != 0) {
			bundle_free(&b);
			return cli_fail(cx, EXIT_FAILURE_, "the bundle from the deployer is not a build-on-target bundle for '%s'",
					o->stack);
		}
	}
	int rc = cli_load_program(cx, ops_local(), o->files, o->nfiles, &prog, NULL);
	if (rc != EXIT_OK) {
		if (have_b)
			bundle_free(&b);
		return rc;
	}
	if (pcl_program_check(prog)) {
		cli_print_diags(cx, prog);
		pcl_program_free(prog);
		return EXIT_ERROR;
	}
	size_t n;
	char **names = cli_split_commas(o->stack, &n);
	struct deploy_slot *slots = xcalloc(n ? n : 1, sizeof(*slots));
	char *root = NULL;
	for (size_t i = 0; i < n && rc == EXIT_OK; i++) {
		const struct stack_desc *st = pcl_program_stack(prog, names[i]);
		if (!st) {
			const struct pcl_module *m = pcl_program_find(prog, names[i]);
			rc = m ? cli_fail(cx, EXIT_ERROR, "[E2] '%s' is a %s module, not a stack", names[i],
					  pcl_kind_name(m->m_kind))
			       : cli_fail(cx, EXIT_ERROR, "[E2] the program has no stack module '%s'", names[i]);
			break;
		}
		for (size_t k = 0; k < i; k++)
			if (!strcmp(names[k], names[i]))
				rc = cli_fail(cx, EXIT_USAGE, "stack '%s' is named twice", names[i]);
		slots[i].in = (struct deploy_input){st, NULL, 0, NULL, o->adopt, o->nadopt};
		slots[i].in.bundle = have_b ? &b : NULL;
		slots[i].in.build_on_target = o->build_on_target;
	}
	if (rc == EXIT_OK && n == 0)
		rc = cli_fail(cx, EXIT_USAGE, "no stack named");
	if (rc == EXIT_OK) {
		root = cli_tree_root(cx, ops_local(), o->files, o->nfiles);
		if (!root)
			rc = EXIT_USAGE;
	}
	/* the program's files as real paths below root: what --build-on-target names on the target */
	VEC(char *) abs = {0};
	for (size_t i = 0; rc == EXIT_OK && i < o->nfiles; i++) {
		char *rp = NULL;
		if (ops_local()->realpath(ops_local(), o->files[i], &rp) < 0)
			rc = cli_fail(cx, EXIT_USAGE, "%s: %s", o->files[i], strerror(errno));
		else
			VEC_PUSH(&abs, rp);
	}
	if (rc == EXIT_OK) {
		/* on standard error while the ops run; never on the target's side of host mode (--bundle-fd) */
		struct cli_progress pg;
		cli_progress_init(&pg, o->json);
		pg.on = pg.on && !o->bundle_fd;
		for (size_t i = 0; i < n; i++) {
			slots[i].in.tree_root = root;
			slots[i].in.files = (const char *const *)abs.v;
			slots[i].in.nfiles = abs.n;
			slots[i].in.npkgs = pcl_program_packages(prog, &slots[i].in.pkgs);
			snprintf(slots[i].label, sizeof(slots[i].label), "deploy %s", names[i]);
			cli_progress_source(&slots[i].src, &pg, slots[i].label);
			struct op_request q = {.type = OP_DEPLOY, .target = *t, .deploy = &slots[i].in,
					       .progress = pg.on ? cli_progress_step : NULL,
					       .count = pg.on ? cli_progress_count : NULL, .progress_arg = &slots[i].src};
			engine_submit(e, &q, deploy_done, &slots[i]);
		}
		engine_run(e);
		cli_progress_end(&pg);
		/* with --json one object: the stack's, or {"stacks": [theirs]} for several */
		json_t *all = o->json && n > 1 ? json_array() : NULL, *one = NULL;
		for (size_t i = 0; i < n; i++) {
			int r = report_deploy(cx, names[i], &slots[i].r, scratch, o->json ? &one : NULL, n > 1);
			if (all) {
				json_object_set_new(one, "ok", json_boolean(r == 0));
				json_array_append_new(all, one);
			}
			if (r > rc)
				rc = r;
			op_result_free(&slots[i].r);
		}
		if (o->json)
			cli_json_out(cx, all ? json_pack("{s:o}", "stacks", all) : one, rc);
	}
	for (size_t i = 0; i < abs.n; i++)
		free(abs.v[i]);
	VEC_FREE(&abs);
	if (have_b)
		bundle_free(&b);
	free(slots);
	cli_free_strings(names, n);
	free(root);
	pcl_program_free(prog);
	return rc;
}

/* Host mode's target side: the deploy the deployer prepared, its bundle read from o->bundle_fd. */
static int deploy_bundle(struct cli_ctx *cx, struct engine *e, const struct svc_opts *o, const struct target_spec *t)
{
	struct bundle b;
	int rc = cli_read_bundle(cx, o->bundle_fd, &b);
	if (rc != EXIT_OK)
		return rc;
	if (strcmp(b.stack, o->stack) != 0) {
		rc = cli_fail(cx, EXIT_FAILURE_, "the bundle from the deployer is for stack '%s', not '%s'", b.stack, o->stack);
	} else {
		struct deploy_input in = {.adopt = o->adopt, .nadopt = o->nadopt, .bundle = &b};
		struct op_result r;
		engine_deploy(e, t, &in, &r);
		json_t *j = NULL;
		rc = report_deploy(cx, o->stack, &r, NULL, o->json ? &j : NULL, false);
		if (j)
			cli_json_out(cx, j, rc);
		op_result_free(&r);
	}
	bundle_free(&b);
	return rc;
}

int cmd_service(struct cli_ctx *cx, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(cx, SERVICE_USAGE);
	struct svc_opts o = {.json = cx->json};
	o.sub = argv[1];
	if (!strcmp(o.sub, "-h") || !strcmp(o.sub, "--help")) {
		cmd_service_help();
		return EXIT_OK;
	}
	const char *subs[] = {"deploy", "rollback", "set-current", "status", "verify", "prune", "confirm"};
	bool known = false;
	for (size_t i = 0; i < 7; i++)
		known |= !strcmp(o.sub, subs[i]);
	if (!known) {
		const char *near = cli_nearest(o.sub, subs, 7);
		if (near)
			return cli_fail(cx, EXIT_USAGE, "unknown service command '%s' (did you mean '%s'?)", o.sub, near);
		return cli_fail(cx, EXIT_USAGE,
				"unknown service command '%s' (deploy, rollback, set-current, status, verify, prune, confirm)",
				o.sub);
	}
	int rc = parse(cx, argc - 1, argv + 1, &o);
	if (rc != EXIT_OK)
		return rc < 0 ? EXIT_OK : rc;

	struct cli_places pl;
	char *dep = NULL, *scratch = NULL, *troot = NULL, *udir = NULL, *sconf = NULL;
	rc = cli_places_init(cx, &pl, o.store_root);
	if (rc == EXIT_OK)
		rc = cli_places_set(cx, &pl, o.deployments_root, o.state_dir);
	if (rc == EXIT_OK)
		rc = cli_places_vault(cx, &pl, o.vault);
	if (rc == EXIT_OK)
		dep = xstrdup(pl.deployments);
	if (rc == EXIT_OK && o.transport_root)
		troot = canonical_root(cx, "--transport-root", o.transport_root, &rc);
	if (rc == EXIT_OK)
		udir = canonical_root(cx, "--unit-dir", o.unit_dir ? o.unit_dir : "/etc/systemd/system", &rc);
	if (rc == EXIT_OK && o.supervisor_conf)
		sconf = canonical_root(cx, "--supervisor-conf", o.supervisor_conf, &rc);
	if (rc != EXIT_OK)
		goto out;
	if (troot && !strcmp(troot, "/")) {
		free(troot); /* rebased under / is not rebased: one target, one lock */
		troot = NULL;
	}
	struct target_spec t = {
		.ssh = o.target,
		.known_hosts = o.known_hosts,
		.key = o.key,
		.transport_root = troot,
		.deployments_root = dep,
		.unit_dir = udir,
		.supervisor_conf = sconf,
		.activate = o.activate,
		.enable = o.enable,
		.ssh_defaults = &pl.ssh,
		.mode = o.mode,
		.remote_punix = o.remote_punix,
		.confirm_timeout = o.confirm_timeout,
		.health = o.health,
		.confirm_token = o.confirm_token,
		.confirm_waiting = o.confirm_token ? cli_confirm_waiting : NULL,
	};
	if (o.dry_run) {
		struct sbuf sb = SBUF_INIT;
		sbuf_printf(&sb, "%s/.dry-run", dep);
		scratch = sbuf_detach(&sb, NULL);
		t.transport_root = scratch;
	}
	if ((!strcmp(o.sub, "status") || !strcmp(o.sub, "verify")) && o.target && o.mode != MODE_AGENTLESS &&
	    cli_remote_read(cx, o.sub, o.stack, &t, pl.store, pl.static_punix, &rc))
		goto out;
	if (!strcmp(o.sub, "confirm")) {
		rc = cli_service_confirm(cx, o.stack, o.token, &t, dep, o.wait ? o.wait : 10, pl.store, pl.static_punix);
		goto out;
	}
	if (!strcmp(o.sub, "status") || !strcmp(o.sub, "verify")) {
		struct sbuf terr = SBUF_INIT;
		struct punix_ops *tops = engine_target_ops(NULL, &t, &terr); /* reads only: no engine, no journal */
		if (!tops) {
			rc = cli_fail(cx, EXIT_FAILURE_, "%s", cli_reason(terr.sb_buf, "cannot reach the target"));
			sbuf_free(&terr);
			goto out;
		}
		sbuf_free(&terr);
		if (!strcmp(o.sub, "status"))
			print_status(cx, &o, tops, dep, &rc);
		else
			print_verify(cx, &o, tops, dep, &rc);
		engine_target_ops_free(tops);
		goto out;
	}

	/* a deploy makes its target's root; nothing else creates one */
	const char *mkroot = scratch ? scratch : !strcmp(o.sub, "deploy") && !o.target ? troot : NULL;
	if (mkroot) {
		int r = ops_mkdir_p(ops_local(), mkroot, 0755);
		if (r < 0) {
			rc = cli_fail(cx, EXIT_FAILURE_, "cannot create the target's root %s: %s", mkroot, strerror(-r));
			goto out;
		}
	}
	struct store st;
	rc = cli_open_store(cx, &st, &pl, STORE_CREATE);
	if (rc != EXIT_OK)
		goto out;
	struct engine *e = cli_engine(cx, &pl, &st);
	if (!e) {
		rc = cli_engine_exit(cx, &pl);
		store_close(&st);
		goto out;
	}
	if (!strcmp(o.sub, "deploy")) {
		rc = o.bundle_fd && !o.nfiles ? deploy_bundle(cx, e, &o, &t) : deploy(cx, e, &o, &t, scratch);
	} else if (!strcmp(o.sub, "prune")) {
		struct op_result r;
		engine_prune(e, &t, o.stack, o.keep, &r);
		cli_print_recovered(&r);
		if (r.exit)
			cli_fail(cx, r.exit, "%s", cli_reason(r.error.sb_buf, OP_NO_REASON));
		if (o.json)
			cli_json_out(cx, json_pack("{s:s, s:I, s:I}", "stack", o.stack, "deleted", (json_int_t)r.npaths,
						   "current", (json_int_t)r.generation), r.exit);
		else if (r.exit == 0) {
			printf("pruned: stack %s: %zu generation(s) deleted; current is gen-%03ld\n", o.stack, r.npaths,
			       r.generation);
			print_mode(&r);
		}
		rc = r.exit;
		op_result_free(&r);
	} else {
		struct op_result r;
		if (!strcmp(o.sub, "rollback"))
			engine_rollback(e, &t, o.stack, &r);
		else
			engine_set_current(e, &t, o.stack, o.gen, &r);
		cli_print_recovered(&r);
		if (r.exit)
			cli_fail(cx, r.exit, "%s", cli_reason(r.error.sb_buf, OP_NO_REASON));
		const char *done = strcmp(o.sub, "rollback") ? "switched" : "rolled back";
		if (r.exit == 0 && !o.json) {
			printf("%s: stack %s \u2192 gen-%03ld (was gen-%03ld)\n",
			       strcmp(o.sub, "rollback") ? "current" : "rolled back", o.stack, r.generation, r.previous);
			print_mode(&r);
		}
		/* the same exit code with --json or without; the activation lines are the object's */
		rc = r.exit ? r.exit : report_activation(cx, o.stack, done, &r, o.json);
		if (r.exit == 0 && r.confirmed > 0 && !o.json)
			printf("confirmed: stack %s stays at gen-%03ld\n", o.stack, r.generation);
		if (o.json)
			cli_json_out(cx, op_json(o.stack, &r, NULL, false), rc);
		op_result_free(&r);
	}
	engine_close(e);
	store_close(&st);
out:
	free(scratch);
	free(dep);
	free(troot);
	free(udir);
	free(sconf);
	cli_places_free(&pl);
	return rc;
}
