/*
 * cmd_journal.c - `punix journal show [OP]`: the ops in the journal, or one
 * op's steps with their state.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../journal/journal.h"
#include "cli.h"

#define JOURNAL_USAGE "usage: punix journal show [OP] [--json] [--state-dir DIR]\n"

void cmd_journal_help(void)
{
	fputs(JOURNAL_USAGE
	      "\n"
	      "Without OP: one line per op (id, state, kind, stack, start time).\n"
	      "With OP: its plan and each step with its state (intent, done, undone).\n"
	      "\n"
	      "  --json           one JSON object: {\"ops\": [...]} or one op with its \"steps\"\n"
	      "  --state-dir DIR  the journal (default $PUNIX_STATE_DIR, else $PUNIX_HOME/journal)\n",
	      stdout);
}

static void when(uint64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *op_json(const struct journal_op *op)
{
	char t[32];
	when(op->started, t);
	return json_pack("{s:I, s:s, s:s, s:s, s:s}", "id", (json_int_t)op->id, "state", journal_op_state_name(op->state),
			 "kind", op->kind, "stack", op->stack, "started", t);
}

static void print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	puts(s);
	free(s);
	json_decref(o);
}

int cmd_journal(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"state-dir", required_argument, NULL, 'J'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		cmd_journal_help();
		return EXIT_OK;
	}
	if (argc < 2 || strcmp(argv[1], "show") != 0) {
		fputs(JOURNAL_USAGE, stderr);
		return EXIT_USAGE;
	}
	const char *state = NULL;
	bool json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'J': state = optarg; break;
		case 'j': json = true; break;
		case 'h': cmd_journal_help(); return EXIT_OK;
		default: fputs(JOURNAL_USAGE, stderr); return EXIT_USAGE;
		}
	}
	int nrest = argc - 1 - optind;
	if (nrest > 1) {
		fputs(JOURNAL_USAGE, stderr);
		return EXIT_USAGE;
	}
	uint64_t id = 0;
	if (nrest == 1) {
		char *end;
		id = strtoull(argv[1 + optind], &end, 10);
		if (*end || id == 0)
			return cli_fail(EXIT_USAGE, "'%s' is not an op number", argv[1 + optind]);
	}
	struct cli_places pl;
	struct journal *j;
	struct journal_err je = {0};
	int rc = cli_places_init(&pl, NULL);
	if (rc == EXIT_OK)
		rc = cli_places_set(&pl, NULL, state);
	if (rc != EXIT_OK) {
		cli_places_free(&pl);
		return rc;
	}
	if (journal_open(&j, pl.state, &je) < 0) {
		rc = je.msg[0] ? cli_fail(EXIT_FAILURE_, "%s", je.msg)
			       : cli_fail(EXIT_FAILURE_, "journal: cannot open %s", pl.state);
		cli_places_free(&pl);
		return rc;
	}
	char t[32];
	if (id == 0) {
		struct journal_op *ops;
		size_t n;
		if (journal_op_list(j, &ops, &n, &je) < 0) {
			rc = cli_fail(EXIT_ERROR, "%s", cli_reason(je.msg, "journal: cannot read it"));
		} else if (json) {
			json_t *arr = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(arr, op_json(&ops[i]));
			print_json(json_pack("{s:o}", "ops", arr));
			journal_ops_free(ops, n);
		} else {
			for (size_t i = 0; i < n; i++) {
				when(ops[i].started, t);
				printf("%llu\t%s\t%s\t%s\t%s\n", (unsigned long long)ops[i].id,
				       journal_op_state_name(ops[i].state), ops[i].kind, ops[i].stack, t);
			}
			if (n == 0)
				puts("the journal is empty");
			journal_ops_free(ops, n);
		}
	} else {
		struct journal_op op;
		struct journal_step *steps;
		size_t n;
		if (journal_op_get(j, id, &op, &steps, &n, &je) < 0) {
			rc = cli_fail(EXIT_ERROR, "%s", cli_reason(je.msg, "journal: cannot read it"));
		} else if (json) {
			json_t *o = op_json(&op);
			json_t *arr = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(arr, json_pack("{s:I, s:s, s:s}", "index", (json_int_t)steps[i].index,
								     "name", steps[i].name, "state",
								     journal_step_state_name(steps[i].state)));
			json_object_set_new(o, "steps", arr);
			json_error_t je2;
			json_t *plan = op.plan ? json_loads(op.plan, 0, &je2) : NULL;
			json_object_set_new(o, "plan", plan ? plan : json_null());
			print_json(o);
			journal_steps_free(steps, n);
			journal_op_free(&op);
		} else {
			when(op.started, t);
			printf("op %llu: %s %s, %s, started %s\n", (unsigned long long)op.id, op.kind, op.stack,
			       journal_op_state_name(op.state), t);
			printf("plan: %s\n", op.plan ? op.plan : "(none recorded)");
			for (size_t i = 0; i < n; i++)
				printf("  step %u %-12s %s\n", steps[i].index, steps[i].name,
				       journal_step_state_name(steps[i].state));
			journal_steps_free(steps, n);
			journal_op_free(&op);
		}
	}
	journal_close(j);
	cli_places_free(&pl);
	return rc;
}
