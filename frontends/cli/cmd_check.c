/*
 * cmd_check.c - `punix check FILE|DIR...`: type-check a program.
 *
 * Prints "ok" when the program is clean, otherwise every located error on
 * standard error. With --json, one JSON object on standard output instead
 * (same exit codes), for editors and CI annotations.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/sbuf.h"
#include "../../base/utf8.h"
#include "cli.h"

void cmd_check_help(void)
{
	fputs("usage: punix check [--json] FILE|DIR...\n"
	      "\n"
	      "Type-checks the PCL program made of every FILE and every *.pcl under each DIR.\n"
	      "Prints 'ok', or every error as FILE:LINE:COL: error: [E#] MESSAGE.\n"
	      "\n"
	      "  --json      print one JSON object: {\"ok\", \"files\", \"modules\", \"errors\": [...]}\n"
	      "              (and \"exit\" and \"error\", the first error, when not ok)\n"
	      "  -h, --help  show this help\n"
	      "\n"
	      "Exit status: 0 ok, 1 errors found, 2 usage error or a path that is missing or unreadable.\n",
	      stdout);
}


static json_t *loc_json(json_t *o, struct pcl_loc loc)
{
	json_object_set_new(o, "file", cli_json_text(loc.file));
	json_object_set_new(o, "line", json_integer(loc.line));
	json_object_set_new(o, "col", json_integer(loc.col));
	return o;
}

static int print_json(struct cli_ctx *cx, const struct pcl_program *p, size_t nfiles, int rc)
{
	json_t *root = json_object();
	json_t *errs = json_array();
	for (size_t i = 0; i < pcl_program_ndiags(p); i++) {
		const struct pcl_diag *d = pcl_program_diag(p, i);
		json_t *e = loc_json(json_object(), d->d_loc);
		char code[8];
		snprintf(code, sizeof(code), "E%d", d->d_code);
		json_object_set_new(e, "code", json_string(code));
		json_object_set_new(e, "message", cli_json_text(d->d_message));
		if (d->d_hint)
			json_object_set_new(e, "hint", cli_json_text(d->d_hint));
		if (d->d_note) {
			json_t *n = loc_json(json_object(), d->d_note_loc);
			json_object_set_new(n, "message", cli_json_text(d->d_note));
			json_object_set_new(e, "note", n);
		}
		json_array_append_new(errs, e);
	}
	json_object_set_new(root, "files", json_integer((json_int_t)nfiles));
	json_object_set_new(root, "modules", json_integer((json_int_t)pcl_program_nmodules(p)));
	json_object_set_new(root, "error_count", json_integer((json_int_t)pcl_program_error_count(p)));
	json_object_set_new(root, "errors", errs);
	cli_note_diag(cx, p);
	return cli_json_out(cx, root, rc);
}

int cmd_check(struct cli_ctx *cx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = cx->json;
	int c;
	optind = 1;
	while ((c = cli_getopt(cx, argc, argv, longopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': cmd_check_help(); return EXIT_OK;
		default: return cli_usage(cx, "usage: punix check [--json] FILE|DIR...\n");
		}
	}
	if (optind >= argc)
		return cli_usage(cx, "usage: punix check [--json] FILE|DIR...\n");
	struct pcl_program *p;
	size_t nfiles = 0;
	int rc = cli_load_program(cx, ops_local(), argv + optind, (size_t)(argc - optind), &p, &nfiles);
	if (rc != EXIT_OK)
		return rc;
	size_t errors = pcl_program_check(p);
	if (json)
		print_json(cx, p, nfiles, errors ? EXIT_ERROR : EXIT_OK);
	else if (errors)
		cli_print_diags(cx, p);
	else
		puts("ok");
	pcl_program_free(p);
	return errors ? EXIT_ERROR : EXIT_OK;
}
