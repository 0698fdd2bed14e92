/*
 * cmd_store.c - `punix store path|info|verify`: looking at the store.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/build.h"
#include "../../base/path.h"
#include "../../engine/engine.h"
#include "cli.h"

#define STORE_USAGE                                                                              \
	"usage: punix store path [--store-root DIR] [--json] FILE|DIR... MODULE\n"                         \
	"       punix store info [--store-root DIR] [--json]\n"                                   \
	"       punix store verify [--store-root DIR] [--json]\n"                                 \
	"       punix store gc [--dry-run] [--print-roots] [--print-dead] [--json] [--store-root DIR]\n" \
	"                      [--deployments-root DIR] [--state-dir DIR] [--transport-root DIR]\n" \
	"                      [--target ssh://[USER@]HOST[:PORT] [--known-hosts F] [--key F] [--remote-punix P]]\n"

void cmd_store_help(void)
{
	fputs(STORE_USAGE
	      "\n"
	      "  path    print the store path package MODULE of the program has (or would have);\n"
	      "          builds nothing\n"
	      "  info    the store's location, how many paths are registered, their total size\n"
	      "  verify  re-hash every registered path against the hash recorded when it was\n"
	      "          built; list each corrupted or missing one (exit 1 if any)\n"
	      "  gc      delete every path that no generation of any stack, and no op in\n"
	      "          flight, pins (directly or through dependencies)\n"
	      "\n"
	      "  --store-root DIR  the store (default: $PUNIX_STORE_DIR, else $PUNIX_HOME/store)\n"
	      "  --json            print one JSON object\n"
	      "  --dry-run         [gc] say what would be deleted; delete nothing\n"
	      "  --print-roots     [gc] print every root (a pinned path)\n"
	      "  --print-dead      [gc] print every path that is (or would be) deleted\n"
	      "  --deployments-root DIR  [gc] where generations live (default $PUNIX_HOME/deployments)\n"
	      "  --state-dir DIR   [gc] the journal (default $PUNIX_STATE_DIR, else $PUNIX_HOME/journal)\n"
	      "  --transport-root DIR  [gc] collect the copy of the store under DIR (a target\n"
	      "                    deployed with --transport-root DIR), with the generations under\n"
	      "                    DIR as its roots; without it, the deployer's own store, with\n"
	      "                    every generation it deployed (dry runs and rebased trees too)\n"
	      "  --target URL      [gc] collect the target's store, on the target, by its punix (host\n"
	      "                    mode, docs/hosts.md), under its journal; with --transport-root, the\n"
	      "                    copy under DIR there. --known-hosts, --key and --remote-punix as for\n"
	      "                    'punix service'\n",
	      stdout);
}

static int store_path(struct cli_ctx *cx, struct store *st, char *const *args, size_t nargs)
{
	if (nargs < 2)
		return cli_usage(cx, STORE_USAGE);
	const char *module = args[nargs - 1];
	struct pcl_program *prog;
	int rc = cli_load_program(cx, ops_local(), args, nargs - 1, &prog, NULL);
	if (rc != EXIT_OK)
		return rc;
	if (pcl_program_check(prog)) {
		cli_print_diags(cx, prog);
		pcl_program_free(prog);
		return EXIT_ERROR;
	}
	const struct pcl_module *m = pcl_program_find(prog, module);
	if (!m || m->m_kind != PCL_KIND_PACKAGE) {
		if (!m)
			rc = cli_fail(cx, EXIT_ERROR, "[E2] no module named '%s' in the program", module);
		else
			rc = cli_fail(cx, EXIT_ERROR, "'%s' is a %s module, not a package", module, pcl_kind_name(m->m_kind));
		pcl_program_free(prog);
		return rc;
	}
	char *root = cli_tree_root(cx, ops_local(), args, nargs - 1);
	if (!root) {
		pcl_program_free(prog);
		return EXIT_USAGE;
	}
	const struct pkg_desc *pkgs;
	size_t npkgs = pcl_program_packages(prog, &pkgs);
	struct build_plan plan;
	struct build_located *located = NULL;
	size_t nlocated = 0;
	const char *bad = NULL;
	struct sbuf err = SBUF_INIT;
	int r = build_plan_make(&plan, st, pkgs, npkgs, root, &module, 1, &located, &nlocated, &bad, &err);
	if (r == 1) {
		cli_report_located(cx, prog, located, nlocated);
		rc = EXIT_ERROR;
	} else if (r < 0) {
		rc = cli_fail(cx, EXIT_FAILURE_, "%s", sbuf_str(&err));
	} else {
		const char *path = plan.items[build_plan_find(&plan, module)].path;
		if (cx->json)
			cli_json_out(cx, json_pack("{s:s, s:s}", "module", module, "path", path), EXIT_OK);
		else
			puts(path);
		build_plan_free(&plan);
	}
	build_located_free(located, nlocated);
	sbuf_free(&err);
	free(root);
	pcl_program_free(prog);
	return rc;
}

static void human(uint64_t b, char out[32])
{
	const char *unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, 32, "%llu bytes", (unsigned long long)b);
	else
		snprintf(out, 32, "%.1f %s", v, unit[u]);
}

#define GC_NO_REASON "the collection failed without giving a reason (see punix journal show)"

struct gc_opts {
	bool dry, roots, dead, json;
	const char *dep, *state, *troot;
	const char *target, *known_hosts, *key, *remote_punix;
};

/* gc --target: the target's punix collects its own store (host mode); its output relayed. */
static int remote_gc(struct cli_ctx *cx, const struct cli_places *pl, const struct gc_opts *o, const char *udir)
{
	struct target_spec t = {
		.ssh = o->target,
		.known_hosts = o->known_hosts,
		.key = o->key,
		.transport_root = o->troot,
		.deployments_root = pl->deployments,
		.unit_dir = udir,
		.ssh_defaults = &pl->ssh,
		.mode = MODE_HOST,
		.remote_punix = o->remote_punix,
	};
	const char *argv[16];
	size_t n = 0;
	argv[n++] = "store";
	argv[n++] = "gc";
	argv[n++] = "--store-root";
	argv[n++] = pl->store;
	argv[n++] = "--deployments-root";
	argv[n++] = pl->deployments;
	if (o->troot) {
		argv[n++] = "--transport-root";
		argv[n++] = o->troot;
	}
	if (o->dry)
		argv[n++] = "--dry-run";
	if (o->roots)
		argv[n++] = "--print-roots";
	if (o->dead)
		argv[n++] = "--print-dead";
	if (o->json)
		argv[n++] = "--json";
	int rc = EXIT_OK;
	cli_remote_run(cx, argv, n, &t, pl->store, pl->static_punix, &rc);
	return rc;
}

/* What a scan found, as JSON (without the op's outcome). */
static json_t *scan_json(const struct cli_places *pl, const struct gc_opts *o, const struct gc_scan *scan)
{
	json_t *out_j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "deployments", pl->deployments, "stacks",
				  (json_int_t)scan->stacks, "generations", (json_int_t)scan->generations, "in_flight",
				  (json_int_t)scan->inflight, "keep", (json_int_t)scan->keep, "dead", (json_int_t)scan->ndead,
				  "dead_bytes", (json_int_t)scan->dead_bytes, "dry_run", o->dry);
	if (o->roots) {
		json_t *a = json_array();
		for (size_t i = 0; i < scan->nroots; i++)
			json_array_append_new(a, json_string(scan->roots[i]));
		json_object_set_new(out_j, "roots", a);
	}
	if (o->dead) {
		json_t *a = json_array();
		for (size_t i = 0; i < scan->ndead; i++)
			json_array_append_new(a, json_string(scan->dead[i]));
		json_object_set_new(out_j, "dead_paths", a);
	}
	return out_j;
}

static void scan_text(const struct cli_places *pl, const struct gc_opts *o, const struct gc_scan *scan)
{
	printf("scanning: %s%s: %zu stack(s), %zu generation(s); journal: %zu op(s) in flight\n",
	       o->troot ? o->troot : "", pl->deployments, scan->stacks, scan->generations, scan->inflight);
	if (scan->foreign)
		printf("note: %zu pin(s) name paths of another store; they are not roots of this one\n", scan->foreign);
	if (o->roots)
		for (size_t i = 0; i < scan->nroots; i++)
			printf("root: %s\n", scan->roots[i]);
	printf("keep-set: %zu path(s)\n", scan->keep);
	if (o->dead)
		for (size_t i = 0; i < scan->ndead; i++)
			printf("dead: %s\n", scan->dead[i]);
}

/*
 * A dry run scans; a collection is one op, whose plan's scan (the only one:
 * each registration is read once) is what is printed.
 */
static int store_gc(struct cli_ctx *cx, struct store *st, const struct cli_places *pl, const struct gc_opts *o)
{
	struct engine *e = cli_engine(cx, pl, st);
	if (!e)
		return EXIT_FAILURE_;
	struct gc_scan scan = {0};
	struct gc_target g = {o->troot, pl->deployments, NULL};
	struct sbuf err = SBUF_INIT;
	int rc = EXIT_OK;
	char h[32];
	if (o->dry) {
		if (engine_gc_scan(e, &g, &scan, &err) < 0) {
			rc = cli_fail(cx, EXIT_ERROR, "%s", err.sb_buf);
		} else if (o->json) {
			cli_json_out(cx, scan_json(pl, o, &scan), EXIT_OK);
		} else {
			scan_text(pl, o, &scan);
			human(scan.dead_bytes, h);
			printf("would remove: %zu paths, freeing %s (dry run)\n", scan.ndead, h);
		}
		gc_scan_free(&scan);
		sbuf_free(&err);
		engine_close(e);
		return rc;
	}
	g.scan = &scan;
	struct op_result r;
	/* its steps and the paths deleted, on standard error (docs/cli.md, "Progress") */
	struct cli_progress pg;
	struct cli_progress_src src;
	cli_progress_init(&pg, o->json);
	cli_progress_source(&src, &pg, "store gc");
	/* only when shown: a sweep that is counted deletes in slices (engine/gc.c) */
	struct op_request q = {.type = OP_GC, .gc = g, .progress = pg.on ? cli_progress_step : NULL,
			       .count = pg.on ? cli_progress_count : NULL, .progress_arg = &src};
	engine_run_one(e, &q, &r);
	cli_progress_end(&pg);
	cli_print_recovered(&r);
	if (r.exit)
		cli_fail(cx, r.exit, "%s", cli_reason(r.error.sb_buf, GC_NO_REASON));
	if (o->json) {
		if (scan.scanned || r.exit == 0) {
			json_t *out_j = scan_json(pl, o, &scan);
			json_object_set_new(out_j, "removed", json_integer(r.exit == 0 ? r.generation : 0));
			json_object_set_new(out_j, "freed_bytes", json_integer(r.exit == 0 ? (json_int_t)r.nfiles : 0));
			cli_json_out(cx, out_j, r.exit);
		}
	} else {
		if (scan.scanned)
			scan_text(pl, o, &scan);
		if (r.exit == 0) {
			human((uint64_t)r.nfiles, h);
			printf("removed: %ld paths, freed %s\n", r.generation, h);
		}
	}
	rc = r.exit;
	op_result_free(&r);
	gc_scan_free(&scan);
	sbuf_free(&err);
	engine_close(e);
	return rc;
}

static int store_info(struct cli_ctx *cx, struct store *st, bool json)
{
	struct store_entry *e;
	size_t n;
	struct sbuf err = SBUF_INIT;
	if (store_list(st, &e, &n, &err) < 0) {
		int rc = cli_fail(cx, EXIT_FAILURE_, "%s", sbuf_str(&err));
		sbuf_free(&err);
		return rc;
	}
	uint64_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		bytes += e[i].bytes;
	if (json) {
		cli_json_out(cx, json_pack("{s:s, s:I, s:I}", "store", st->root, "paths", (json_int_t)n, "bytes",
					   (json_int_t)bytes), EXIT_OK);
	} else {
		printf("store: %s\npaths: %zu\nbytes: %" PRIu64 "\n", st->root, n, bytes);
	}
	store_entries_free(e, n);
	sbuf_free(&err);
	return EXIT_OK;
}

static int store_verify(struct cli_ctx *cx, struct store *st, bool json)
{
	struct store_entry *e;
	size_t n;
	struct sbuf err = SBUF_INIT;
	if (store_list(st, &e, &n, &err) < 0) {
		int rc = cli_fail(cx, EXIT_FAILURE_, "%s", sbuf_str(&err));
		sbuf_free(&err);
		return rc;
	}
	size_t corrupted = 0, missing = 0;
	json_t *bad = json_array();
	int rc = EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		int v = store_verify_entry(st, &e[i]);
		if (v < 0) {
			rc = cli_fail(cx, EXIT_FAILURE_, "%s: %s", e[i].path, strerror(-v));
			break;
		}
		if (v == 0)
			continue;
		const char *what = v == 1 ? "corrupted" : "missing";
		corrupted += v == 1;
		missing += v == 2;
		if (json)
			json_array_append_new(bad, json_pack("{s:s, s:s}", "path", e[i].path, "problem", what));
		else
			printf("%s: %s\n", what, e[i].path);
	}
	if (rc == EXIT_OK) {
		rc = corrupted || missing ? EXIT_ERROR : EXIT_OK;
		if (rc)
			cli_note(cx, "%zu of %zu store path(s) corrupted or missing", corrupted + missing, n);
		if (json)
			cli_json_out(cx, json_pack("{s:I, s:I, s:I, s:O}", "verified", (json_int_t)n, "corrupted",
						   (json_int_t)corrupted, "missing", (json_int_t)missing, "problems", bad),
				     rc);
		else
			printf("verified %zu paths: %zu corrupted, %zu missing\n", n, corrupted, missing);
	}
	json_decref(bad);
	store_entries_free(e, n);
	sbuf_free(&err);
	return rc;
}

int cmd_store(struct cli_ctx *cx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"store-root", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"dry-run", no_argument, NULL, 'n'},
		{"print-roots", no_argument, NULL, 'R'},
		{"print-dead", no_argument, NULL, 'X'},
		{"deployments-root", required_argument, NULL, 'D'},
		{"state-dir", required_argument, NULL, 'J'},
		{"transport-root", required_argument, NULL, 'T'},
		{"target", required_argument, NULL, 't'},
		{"known-hosts", required_argument, NULL, 'k'},
		{"key", required_argument, NULL, 'i'},
		{"remote-punix", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct gc_opts gco = {0};
	if (argc < 2)
		return cli_usage(cx, STORE_USAGE);
	const char *sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
		cmd_store_help();
		return EXIT_OK;
	}
	if (strcmp(sub, "path") && strcmp(sub, "info") && strcmp(sub, "verify") && strcmp(sub, "gc")) {
		static const char *const subs[] = {"path", "info", "verify", "gc"};
		const char *near = cli_nearest(sub, subs, 4);
		if (near)
			return cli_fail(cx, EXIT_USAGE, "unknown store command '%s' (did you mean '%s'?)", sub, near);
		return cli_fail(cx, EXIT_USAGE, "unknown store command '%s' (path, info, verify, gc)", sub);
	}
	const char *store_root = NULL;
	bool json = gco.json = cx->json;
	int c;
	optind = 1;
	char name[32];
	snprintf(name, sizeof(name), "store %s", sub);
	while ((c = cli_getopt(cx, argc - 1, argv + 1, longopts, name)) != -1) {
		switch (c) {
		case 's': store_root = optarg; break;
		case 'j': json = gco.json = true; break;
		case 'n': gco.dry = true; break;
		case 'R': gco.roots = true; break;
		case 'X': gco.dead = true; break;
		case 'D': gco.dep = optarg; break;
		case 'J': gco.state = optarg; break;
		case 'T': gco.troot = optarg; break;
		case 't': gco.target = optarg; break;
		case 'k': gco.known_hosts = optarg; break;
		case 'i': gco.key = optarg; break;
		case 'P': gco.remote_punix = optarg; break;
		case 'h': cmd_store_help(); return EXIT_OK;
		default: return cli_usage(cx, STORE_USAGE);
		}
	}
	char *const *rest = argv + 1 + optind;
	size_t nrest = (size_t)(argc - 1 - optind);
	if (strcmp(sub, "path") != 0 && nrest)
		return cli_usage(cx, STORE_USAGE);
	bool gc = !strcmp(sub, "gc");
	if (!gc && (gco.dry || gco.roots || gco.dead || gco.dep || gco.state || gco.troot || gco.target))
		return cli_usage(cx, STORE_USAGE);
	if (!gco.target && (gco.known_hosts || gco.key || gco.remote_punix))
		return cli_fail(cx, EXIT_USAGE, "--known-hosts, --key and --remote-punix go with --target");
	if (gco.target && gco.state)
		return cli_fail(cx, EXIT_USAGE, "--state-dir is this machine's; the target's punix keeps its own journal");
	if (gco.remote_punix && gco.remote_punix[0] != '/')
		return cli_fail(cx, EXIT_USAGE, "--remote-punix needs an absolute path on the target, got '%s'", gco.remote_punix);
	if (gco.dep && gco.dep[0] != '/')
		return cli_fail(cx, EXIT_USAGE, "--deployments-root needs an absolute path, got '%s'", gco.dep);
	struct cli_places pl;
	struct store st;
	int rc = cli_places_init(cx, &pl, store_root);
	if (rc == EXIT_OK)
		rc = cli_places_set(cx, &pl, gco.dep, gco.state);
	char *troot = NULL;
	if (rc == EXIT_OK && gco.troot) {
		const char *why;
		troot = path_canonical(gco.troot, NULL, &why);
		if (!troot)
			rc = cli_fail(cx, EXIT_USAGE, "--transport-root '%s' cannot be used: %s", gco.troot, why);
		else if (!strcmp(troot, "/"))
			free(troot), troot = NULL;
		gco.troot = troot;
	}
	if (rc == EXIT_OK && gco.target) {
		rc = remote_gc(cx, &pl, &gco, "/etc/systemd/system");
		free(troot);
		cli_places_free(&pl);
		return rc;
	}
	/* nothing here creates a store; gc and verify refuse what is not one
	 * (gc of a target needs only the deployer's store's name) */
	if (rc == EXIT_OK)
		rc = cli_open_store(cx, &st, &pl,
				    (gc && !troot) || !strcmp(sub, "verify") ? 0 : CLI_STORE_MAY_BE_ABSENT);
	if (rc == EXIT_OK) {
		if (gc)
			rc = store_gc(cx, &st, &pl, &gco);
		else if (!strcmp(sub, "path"))
			rc = store_path(cx, &st, rest, nrest);
		else if (!strcmp(sub, "info"))
			rc = store_info(cx, &st, json);
		else
			rc = store_verify(cx, &st, json);
		store_close(&st);
	}
	free(troot);
	cli_places_free(&pl);
	return rc;
}
