/*
 * cli.h - what the punix subcommands share: exit codes, program loading,
 * and the small conventions of output.
 */
#ifndef PUNIX_CLI_H
#define PUNIX_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "../../base/ops.h"
#include "../pcl/pcl.h"

/* Exit codes; docs/cli.md lists them and scripts depend on them. */
enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,    /* a located or coded error */
	EXIT_USAGE = 2,    /* bad arguments; a path that is missing or unreadable */
	EXIT_FAILURE_ = 3, /* a build or transport failure */
	EXIT_LOCKED = 4,   /* another op holds the stack or the store */
};

#define PUNIX_VERSION "0.1.0"

struct cli_cmd {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
	void (*help)(void);
};

/* "error: ..." on standard error; returns code for `return cli_fail(...)`. */
__attribute__((format(printf, 2, 3))) int cli_fail(int code, const char *fmt, ...);

/*
 * Expands FILE|DIR arguments into one program: directories contribute every
 * *.pcl below them (hidden entries and symlinked directories skipped), each
 * file once however often named, in path order. Reading happens through
 * ops. On a missing, unreadable or empty input, prints the error and
 * returns EXIT_USAGE with *out NULL; otherwise returns EXIT_OK with the
 * program parsed (not yet checked).
 */
int cli_load_program(struct punix_ops *ops, char *const *args, size_t nargs, struct pcl_program **out,
		     size_t *nfiles);

/* Prints every diagnostic to standard error, and a line for the dropped. */
void cli_print_diags(const struct pcl_program *p);

int cmd_check(int argc, char **argv);
void cmd_check_help(void);

#endif
