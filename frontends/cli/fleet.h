/*
 * fleet.h - what the fleet commands' files share (cmd_fleet.c runs them,
 * fleet_read.c reads hosts and prints the report): a run's hosts.
 */
#ifndef PUNIX_CLI_FLEET_H
#define PUNIX_CLI_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../base/sbuf.h"
#include "../../engine/engine.h"
#include "cli.h"

struct fleet_opts {
	const char *sub, *file;
	long parallel;
	bool fail_fast, activate, enable, dry_run, json, resume;
	const char *on;
	long timeout, confirm_timeout;
	const char *health, *supervisor_conf;
	const char *vault; /* --vault-secrets */
	const char *transport_root, *deployments_root, *unit_dir, *store_root, *state_dir;
	const char *known_hosts, *key, *remote_punix;
	enum target_mode mode;
};

enum host_status { H_PENDING, H_OK, H_FAILED, H_BLOCKED, H_NOT_ATTEMPTED };

extern const char *const status_names[];

struct host {
	const struct fleet_host *h;
	char *name;   /* the report's: the target's host ("local" for this machine) */
	char *where;  /* <user@host_port>: the directory a rebased run uses */
	bool selected;
	enum host_status status;
	char *message; /* the report's text after the arrow */
	long generation, previous;
	double started, secs;
	struct pcl_program *prog;
	struct deploy_input in;
	char *tree;
	char *troot, *url;
	struct fleet_run *run;
	struct sbuf warn; /* activation that did not go well: a warning, the host is deployed */
	const char *phase; /* what it is doing, for the live lines */
	size_t index;      /* among the selected hosts: its step in the fleet run's journal record */
	bool op_recorded;  /* its op id is in that record */
};

struct fleet_run {
	struct cli_ctx *cx; /* the run's output: --json, the error its object reports */
	struct engine *e;
	const struct fleet_opts *o;
	const struct cli_places *pl;
	struct host *hosts;
	size_t n, next, running, failed;
	size_t *order; /* the order hosts start in: declared, or reverse for rollback */
	char *udir, *dep;
	bool stop; /* --fail-fast: a host failed */
	/* live lines on standard error: redrawn in place on a terminal, else one plain line per change */
	bool live, redraw;
	int width;
	size_t nlive; /* lines drawn so far */
	struct engine_fleet *rec; /* the run's own journal record */
};

/* Where the host's op lands: its target, or a directory of this machine standing in for it. */
struct target_spec host_target(struct fleet_run *fr, struct host *h);
/* The host failed (or is blocked): its report text, one line. */
__attribute__((format(printf, 3, 4))) void host_fail(struct host *h, enum host_status st, const char *fmt, ...);
/* fleet status: every selected host read at once; its lines; the exit code. */
int fleet_status(struct fleet_run *fr, int width);
/* The report of apply and rollback, in declared order; the exit code. */
int fleet_print_report(struct fleet_run *fr, int width);

#endif
