/*
 * cmd_host.c - `punix host serve`: the target's side of host mode
 * (docs/hosts.md). A deployer starts it over SSH; it speaks the host
 * protocol on standard input and output and is not meant for people.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../engine/host.h"
#include "cli.h"

void cmd_host_help(void)
{
	fputs("usage: punix host serve\n"
	      "\n"
	      "  serve   speak the host protocol on standard input and output: what a deployer\n"
	      "          runs on this machine over SSH to deploy to it in host mode (docs/hosts.md).\n"
	      "          It answers which store paths are here, receives the missing ones\n"
	      "          (checked against their hashes), and runs the op under this machine's\n"
	      "          own journal and locks.\n",
	      stdout);
}

int cmd_host(struct cli_ctx *cx, int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		cmd_host_help();
		return EXIT_OK;
	}
	if (argc != 2 || strcmp(argv[1], "serve") != 0)
		return cli_fail(cx, EXIT_USAGE, "usage: punix host serve (see 'punix host --help')");
	if (isatty(0) || isatty(1))
		return cli_fail(cx, EXIT_USAGE, "'punix host serve' speaks a binary protocol to a deployer; it is not "
					    "for a terminal (see docs/hosts.md)");
	extern char **environ;
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return cli_fail(cx, EXIT_FAILURE_, "cannot find this punix (/proc/self/exe)");
	self[n] = '\0';
	struct host_serve_config cfg = {
		.in = 0,
		.out = 1,
		.self = self,
		.punix_version = PUNIX_VERSION,
		.env = environ,
	};
	return host_serve(&cfg);
}
