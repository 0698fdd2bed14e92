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
#include "cli.h"

#define STORE_USAGE                                                          \
	"usage: punix store path [--store-root DIR] FILE|DIR... MODULE\n"     \
	"       punix store info [--store-root DIR] [--json]\n"               \
	"       punix store verify [--store-root DIR] [--json]\n"

void cmd_store_help(void)
{
	fputs(STORE_USAGE
	      "\n"
	      "  path    print the store path package MODULE of the program has (or would have);\n"
	      "          builds nothing\n"
	      "  info    the store's location, how many paths are registered, their total size\n"
	      "  verify  re-hash every registered path against the hash recorded when it was\n"
	      "          built; list each corrupted or missing one (exit 1 if any)\n"
	      "\n"
	      "  --store-root DIR  the store (default: $PUNIX_STORE_DIR, else $PUNIX_HOME/store)\n"
	      "  --json            print one JSON object\n",
	      stdout);
}

static int store_path(struct store *st, char *const *args, size_t nargs)
{
	if (nargs < 2) {
		fputs(STORE_USAGE, stderr);
		return EXIT_USAGE;
	}
	const char *module = args[nargs - 1];
	struct pcl_program *prog;
	int rc = cli_load_program(ops_local(), args, nargs - 1, &prog, NULL);
	if (rc != EXIT_OK)
		return rc;
	if (pcl_program_check(prog)) {
		cli_print_diags(prog);
		pcl_program_free(prog);
		return EXIT_ERROR;
	}
	const struct pcl_module *m = pcl_program_find(prog, module);
	if (!m || m->m_kind != PCL_KIND_PACKAGE) {
		if (!m)
			rc = cli_fail(EXIT_ERROR, "[E2] no module named '%s' in the program", module);
		else
			rc = cli_fail(EXIT_ERROR, "'%s' is a %s module, not a package", module, pcl_kind_name(m->m_kind));
		pcl_program_free(prog);
		return rc;
	}
	char *root = cli_tree_root(ops_local(), args, nargs - 1);
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
		cli_report_located(prog, located, nlocated);
		rc = EXIT_ERROR;
	} else if (r < 0) {
		rc = cli_fail(EXIT_FAILURE_, "%s", sbuf_str(&err));
	} else {
		puts(plan.items[build_plan_find(&plan, module)].path);
		build_plan_free(&plan);
	}
	build_located_free(located, nlocated);
	sbuf_free(&err);
	free(root);
	pcl_program_free(prog);
	return rc;
}

static int store_info(struct store *st, bool json)
{
	struct store_entry *e;
	size_t n;
	struct sbuf err = SBUF_INIT;
	if (store_list(st, &e, &n, &err) < 0) {
		int rc = cli_fail(EXIT_FAILURE_, "%s", sbuf_str(&err));
		sbuf_free(&err);
		return rc;
	}
	uint64_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		bytes += e[i].bytes;
	if (json) {
		json_t *o = json_pack("{s:s, s:I, s:I}", "store", st->root, "paths", (json_int_t)n, "bytes",
				      (json_int_t)bytes);
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
		puts(s);
		free(s);
		json_decref(o);
	} else {
		printf("store: %s\npaths: %zu\nbytes: %" PRIu64 "\n", st->root, n, bytes);
	}
	store_entries_free(e, n);
	sbuf_free(&err);
	return EXIT_OK;
}

static int store_verify(struct store *st, bool json)
{
	struct store_entry *e;
	size_t n;
	struct sbuf err = SBUF_INIT;
	if (store_list(st, &e, &n, &err) < 0) {
		int rc = cli_fail(EXIT_FAILURE_, "%s", sbuf_str(&err));
		sbuf_free(&err);
		return rc;
	}
	size_t corrupted = 0, missing = 0;
	json_t *bad = json_array();
	int rc = EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		int v = store_verify_entry(st, &e[i]);
		if (v < 0) {
			rc = cli_fail(EXIT_FAILURE_, "%s: %s", e[i].path, strerror(-v));
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
		if (json) {
			json_t *o = json_pack("{s:I, s:I, s:I, s:O}", "verified", (json_int_t)n, "corrupted",
					      (json_int_t)corrupted, "missing", (json_int_t)missing, "problems", bad);
			char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
			puts(s);
			free(s);
			json_decref(o);
		} else {
			printf("verified %zu paths: %zu corrupted, %zu missing\n", n, corrupted, missing);
		}
		rc = corrupted || missing ? EXIT_ERROR : EXIT_OK;
	}
	json_decref(bad);
	store_entries_free(e, n);
	sbuf_free(&err);
	return rc;
}

int cmd_store(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"store-root", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	if (argc < 2) {
		fputs(STORE_USAGE, stderr);
		return EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
		cmd_store_help();
		return EXIT_OK;
	}
	if (strcmp(sub, "path") && strcmp(sub, "info") && strcmp(sub, "verify"))
		return cli_fail(EXIT_USAGE, "unknown store command '%s' (path, info, verify)", sub);
	const char *store_root = NULL;
	bool json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': store_root = optarg; break;
		case 'j': json = true; break;
		case 'h': cmd_store_help(); return EXIT_OK;
		default: fputs(STORE_USAGE, stderr); return EXIT_USAGE;
		}
	}
	char *const *rest = argv + 1 + optind;
	size_t nrest = (size_t)(argc - 1 - optind);
	if (strcmp(sub, "path") != 0 && nrest) {
		fputs(STORE_USAGE, stderr);
		return EXIT_USAGE;
	}
	struct cli_places pl;
	cli_places_init(&pl, store_root);
	struct store st;
	int rc = cli_open_store(&st, &pl);
	if (rc == EXIT_OK) {
		if (!strcmp(sub, "path"))
			rc = store_path(&st, rest, nrest);
		else if (!strcmp(sub, "info"))
			rc = store_info(&st, json);
		else
			rc = store_verify(&st, json);
		store_close(&st);
	}
	cli_places_free(&pl);
	return rc;
}
