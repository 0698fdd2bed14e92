/*
 * cmd_build.c - `punix build FILE|DIR... [--only M,...] [--dry-run]`.
 *
 * Checks the program, plans every package (or those named by --only, with
 * their dependencies), then realises them in dependency order. One line
 * per package, tab-separated:
 *
 *   ok       MODULE  STORE-PATH
 *   dry-run  MODULE  STORE-PATH
 *   FAIL     MODULE  REASON  LOG-PATH
 *   FAIL     MODULE  not built: dependency DEP failed
 *
 * and last "N packages: A ok, B failed". Exit 0 when all are ok, 1 for an
 * error before any build (the program, a source path), 3 when a build
 * failed.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../engine/build.h"
#include "../../engine/engine.h"
#include "../../engine/fetch.h"
#include "../../engine/vault.h"
#include "cli.h"

#define BUILD_USAGE                                                                                                   \
	"usage: punix build [--only M,...] [--dry-run] [--store-root DIR] [--vault-secrets FILE] [--json] FILE|DIR...\n"

void cmd_build_help(void)
{
	fputs(BUILD_USAGE
	      "\n"
	      "Builds the package modules of the program into the store, each after its\n"
	      "dependencies. A package whose store path is already valid is not rebuilt.\n"
	      "\n"
	      "  --only M,...      build only these package modules (and what they depend on)\n"
	      "  --dry-run         compute and print store paths; build nothing\n"
	      "  --store-root DIR  the store (default: $PUNIX_STORE_DIR, else $PUNIX_HOME/store)\n"
	      "  --vault-secrets FILE\n"
	      "                    where url sources' { from_vault = \"NAME\" } tokens are read: a JSON\n"
	      "                    object of names to strings, mode 0600, yours (docs/pcl.md, \"Secrets\")\n"
	      "  --json            print one JSON object instead of lines (docs/cli.md, \"JSON\")\n"
	      "  -h, --help        show this help\n"
	      "\n"
	      "Output: one tab-separated line per package (ok / dry-run / FAIL), then\n"
	      "'N packages: A ok, B failed'. A FAIL line ends with the build log's path.\n"
	      "Exit status: 0 all built, 1 an error before any build, 2 usage, 3 a build failed.\n",
	      stdout);
}

struct build_out {
	struct cli_ctx *cx;
	bool json;
	size_t ok, failed, dry, n;
	json_t *list;
	struct cli_progress progress; /* on standard error (docs/cli.md, "Progress") */
	struct cli_progress_src src;
};

static const char *state_word(enum build_state s)
{
	switch (s) {
	case BUILD_OK:
	case BUILD_CACHED: return "ok";
	case BUILD_DRY_RUN: return "dry-run";
	case BUILD_FAILED:
	case BUILD_BLOCKED: return "FAIL";
	case BUILD_PENDING: break;
	}
	return "?";
}

/* The item's line on standard output, or its entry in the JSON list. */
static void on_line(struct build_out *o, const struct build_item *it)
{
	if (o->json) {
		json_t *e = json_object();
		json_object_set_new(e, "module", json_string(it->pkg->module));
		json_object_set_new(e, "status", json_string(state_word(it->state)));
		json_object_set_new(e, "path", json_string(it->path));
		if (it->state == BUILD_OK || it->state == BUILD_CACHED)
			json_object_set_new(e, "cached", json_boolean(it->state == BUILD_CACHED));
		if (it->state == BUILD_FAILED) {
			cli_note(o->cx, "%s: %s", it->pkg->module, sbuf_str(&it->result.error));
			json_object_set_new(e, "error", json_string(sbuf_str(&it->result.error)));
			json_object_set_new(e, "log", json_string(it->result.log_path));
		}
		if (it->state == BUILD_BLOCKED)
			json_object_set_new(e, "blocked_by", json_string(it->blocked_by));
		json_array_append_new(o->list, e);
		return;
	}
	switch (it->state) {
	case BUILD_OK:
	case BUILD_CACHED:
	case BUILD_DRY_RUN:
		printf("%s\t%s\t%s\n", state_word(it->state), it->pkg->module, it->path);
		break;
	case BUILD_FAILED:
		printf("FAIL\t%s\t%s\t%s\n", it->pkg->module, sbuf_str(&it->result.error), it->result.log_path);
		break;
	case BUILD_BLOCKED:
		printf("FAIL\t%s\tnot built: dependency %s failed\n", it->pkg->module, it->blocked_by);
		break;
	case BUILD_PENDING:
		break;
	}
	fflush(stdout);
}

static void on_report(void *arg, const struct build_item *it)
{
	struct build_out *o = arg;
	switch (it->state) {
	case BUILD_OK:
	case BUILD_CACHED: o->ok++; break;
	case BUILD_DRY_RUN: o->dry++; break;
	default: o->failed++; break;
	}
	/* the progress line off the terminal before the result line, then again below it */
	cli_progress_clear(&o->progress);
	on_line(o, it);
	cli_progress_count(&o->src, "packages done", o->ok + o->failed + o->dry, o->n, 0);
}

/* A url source's download, on the build's thread: "build: fetching NAME: X of Y" (progress.c). */
static void on_fetching(void *arg, const char *name, uint64_t got, uint64_t total)
{
	struct build_out *o = arg;
	char what[256];
	snprintf(what, sizeof(what), OP_COUNT_FETCHING "%s", name);
	cli_progress_count(&o->src, what, got, total, 0);
}

extern char **environ;

int cmd_build(struct cli_ctx *cx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"only", required_argument, NULL, 'o'},     {"dry-run", no_argument, NULL, 'n'},
		{"store-root", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
		{"vault-secrets", required_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *only_arg = NULL, *store_root = NULL, *vault_arg = NULL;
	bool dry = false;
	struct build_out out = {.cx = cx, .json = cx->json};
	int c;
	optind = 1;
	while ((c = cli_getopt(cx, argc, argv, longopts, NULL)) != -1) {
		switch (c) {
		case 'o': only_arg = optarg; break;
		case 'n': dry = true; break;
		case 's': store_root = optarg; break;
		case 'V': vault_arg = optarg; break;
		case 'j': out.json = true; break;
		case 'h': cmd_build_help(); return EXIT_OK;
		default: return cli_usage(cx, BUILD_USAGE);
		}
	}
	if (optind >= argc)
		return cli_usage(cx, BUILD_USAGE);
	char *const *args = argv + optind;
	size_t nargs = (size_t)(argc - optind);
	struct pcl_program *prog;
	int rc = cli_load_program(cx, ops_local(), args, nargs, &prog, NULL);
	if (rc != EXIT_OK)
		return rc;
	if (pcl_program_check(prog)) {
		cli_print_diags(cx, prog);
		pcl_program_free(prog);
		return EXIT_ERROR;
	}
	char *root = cli_tree_root(cx, ops_local(), args, nargs);
	struct cli_places pl;
	struct store st;
	struct vault vault = {0};
	if ((rc = cli_places_init(cx, &pl, store_root)) != EXIT_OK || !root ||
	    (rc = cli_places_vault(cx, &pl, vault_arg)) != EXIT_OK || (rc = cli_read_vault(cx, &pl, &vault)) != EXIT_OK ||
	    (rc = cli_open_store(cx, &st, &pl, dry ? CLI_STORE_MAY_BE_ABSENT : STORE_CREATE)) != EXIT_OK) {
		vault_free(&vault);
		free(root);
		cli_places_free(&pl);
		pcl_program_free(prog);
		return root ? rc : EXIT_USAGE;
	}

	size_t nonly = 0;
	char **only = only_arg ? cli_split_commas(only_arg, &nonly) : NULL;
	const struct pkg_desc *pkgs;
	size_t npkgs = pcl_program_packages(prog, &pkgs);
	struct build_plan plan;
	struct build_located *located = NULL;
	size_t nlocated = 0;
	const char *bad = NULL;
	struct sbuf err = SBUF_INIT;
	int r = build_plan_make(&plan, &st, pkgs, npkgs, root, (const char *const *)only, nonly, &located, &nlocated,
				&bad, &err);
	if (r == 1) {
		cli_report_located(cx, prog, located, nlocated);
		rc = EXIT_ERROR;
	} else if (r == -ENOENT && bad) {
		rc = cli_fail(cx, EXIT_USAGE, "--only: no package module named '%s'", bad);
	} else if (r < 0) {
		rc = cli_fail(cx, EXIT_FAILURE_, "%s", sbuf_str(&err));
	} else if (fetch_settings_from_env(environ, &plan.fetch, &err) < 0) {
		rc = cli_fail(cx, EXIT_USAGE, "%s", sbuf_str(&err));
		build_plan_free(&plan);
	} else {
		/* url sources' tokens: read only by a build that fetches (docs/building.md) */
		struct secret_sources secrets = {environ, pl.vault ? &vault : NULL, ops_local()};
		plan.secrets = &secrets;
		if (out.json)
			out.list = json_array();
		/* a dry run builds nothing: nothing to show progress of */
		cli_progress_init(&out.progress, out.json || dry);
		if (dry)
			out.progress.on = false;
		cli_progress_source(&out.src, &out.progress, "build");
		if (out.progress.on) {
			plan.fetch.progress = on_fetching;
			plan.fetch.progress_arg = &out;
		}
		out.n = plan.n;
		cli_progress_count(&out.src, "packages done", 0, plan.n, 0);
		build_plan_run(&plan, &st, dry, NULL, on_report, &out);
		cli_progress_end(&out.progress);
		rc = out.failed ? EXIT_FAILURE_ : EXIT_OK;
		if (out.json) {
			json_t *o = json_object();
			json_object_set_new(o, "packages", out.list);
			json_object_set_new(o, "built", json_integer((json_int_t)out.ok));
			json_object_set_new(o, "failed", json_integer((json_int_t)out.failed));
			json_object_set_new(o, "dry_run", json_boolean(dry));
			cli_json_out(cx, o, rc);
		} else {
			printf("%zu packages: %zu ok, %zu failed%s\n", plan.n, out.ok, out.failed,
			       dry ? " (dry run: nothing built)" : "");
		}
		build_plan_free(&plan);
	}
	build_located_free(located, nlocated);
	sbuf_free(&err);
	cli_free_strings(only, nonly);
	store_close(&st);
	vault_free(&vault);
	cli_places_free(&pl);
	free(root);
	pcl_program_free(prog);
	return rc;
}
