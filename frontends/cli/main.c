/*
 * main.c - the punix program: dispatch to a subcommand.
 *
 * Each subcommand lives in its own cmd_*.c with its own usage text; this
 * file only knows their names. A command is listed here once it works.
 */
#include <stdio.h>
#include <string.h>

#include "../../engine/proto.h"
#include "cli.h"

static const struct cli_cmd commands[] = {
	{"check", "type-check PCL files and directories", cmd_check, cmd_check_help},
	{"build", "build package modules into the store", cmd_build, cmd_build_help},
	{"store", "the store: path, info, verify, gc", cmd_store, cmd_store_help},
	{"service", "deploy, roll back, inspect, prune a stack", cmd_service, cmd_service_help},
	{"fleet", "apply, roll back or read a fleet of hosts at once", cmd_fleet, cmd_fleet_help},
	{"recover", "finish or undo interrupted ops; clean up builds", cmd_recover, cmd_recover_help},
	{"journal", "show, set aside or prune the ops in the journal", cmd_journal, cmd_journal_help},
	{"host", "the target's side of host mode (run by a deployer over SSH)", cmd_host, cmd_host_help},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fputs("usage: punix COMMAND [ARGS...]\n"
	      "       punix help COMMAND | punix COMMAND --help\n"
	      "       punix --version\n"
	      "\n"
	      "Commands:\n",
	      f);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fputs("\nDocumentation: docs/ in the source tree (start with docs/cli.md).\n", f);
}

static const struct cli_cmd *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* An unknown command: the nearest one, if it is near enough to be a typo. */
static int unknown(struct cli_ctx *cx, const char *cmd)
{
	const char *names[NCOMMANDS];
	for (size_t i = 0; i < NCOMMANDS; i++)
		names[i] = commands[i].name;
	const char *near = cli_nearest(cmd, names, NCOMMANDS);
	if (near)
		return cli_fail(cx, EXIT_USAGE, "unknown command '%s' (did you mean '%s'?)", cmd, near);
	return cli_fail(cx, EXIT_USAGE, "unknown command '%s' (see 'punix --help')", cmd);
}

/*
 * --json among the arguments, before any "--": the run answers in JSON,
 * failures too, even one found before the command's own parsing reaches
 * the option (an unknown option ahead of it).
 */
static bool wants_json(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return false;
		if (!strcmp(argv[i], "--json"))
			return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	struct cli_ctx cx = {.json = wants_json(argc, argv)};
	int rc;
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		/* what a journal and another punix must agree with (journal.h, proto.h) */
		printf("punix %s (journal format %d, host protocol %d..%d)\n", PUNIX_VERSION, JOURNAL_FORMAT,
		       PROTO_VERSION_MIN, PROTO_VERSION);
		return EXIT_OK;
	}
	if (!strcmp(cmd, "help")) {
		if (argc < 3) {
			usage(stdout);
			return EXIT_OK;
		}
		const struct cli_cmd *c = find(argv[2]);
		if (!c) {
			rc = unknown(&cx, argv[2]);
			cli_ctx_end(&cx, rc);
			return rc;
		}
		c->help();
		return EXIT_OK;
	}
	const struct cli_cmd *c = find(cmd);
	rc = c ? c->run(&cx, argc - 1, argv + 1) : unknown(&cx, cmd);
	cli_ctx_end(&cx, rc);
	return rc;
}
