/*
 * cmd_journal.c - `punix journal show [OP]`: the ops in the journal, or one
 * op's steps with their state; `punix journal set-aside OP`: a running or
 * corrupt op is never recovered again and blocks nothing; `punix journal
 * prune [--keep N]`: the oldest finished ops are deleted.
 *
 * A corrupt op is listed (state "corrupt", with why) among the others, and
 * `show` then exits 1 after listing everything, naming it on standard error.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../base/sbuf.h"
#include "../../base/utf8.h"
#include "../../engine/plan.h"
#include "../../journal/journal.h"
#include "cli.h"

#define JOURNAL_USAGE                                                                                                  \
	"usage: punix journal show [OP] [--json] [--state-dir DIR]\n"                                                  \
	"       punix journal set-aside OP [--yes] [--state-dir DIR]\n"                                                \
	"       punix journal prune [--keep N] [--state-dir DIR]\n"

void cmd_journal_help(void)
{
	fputs(JOURNAL_USAGE
	      "\n"
	      "show without OP: one line per op (id, state, kind, stack, start time; a corrupt\n"
	      "op: id, \"corrupt\", what could be read of kind, stack and start, and why).\n"
	      "show OP: its kind, stack, scope, plan and each step with its state (intent,\n"
	      "done, undone); for a corrupt op, what can still be read of it and why.\n"
	      "Exit 1 if the journal holds a corrupt op (after showing everything).\n"
	      "\n"
	      "set-aside OP: shows a running or corrupt op, then, with --yes, sets it aside:\n"
	      "it is never recovered again and blocks nothing; whatever it did or half did\n"
	      "stays as it is. Finished ops (done, aborted, failed) cannot be set aside.\n"
	      "Never set aside an op whose punix is still running.\n"
	      "\n"
	      "prune: deletes the oldest finished ops (done, aborted, failed, set aside) and\n"
	      "their steps, keeping the newest N; never a running or corrupt op. Prints how\n"
	      "many it removed.\n"
	      "\n"
	      "  --json           show: one JSON object: {\"ops\": [...]} or one op with its \"steps\"\n"
	      "  --yes            set-aside: do it (without it: show the op and exit 2)\n"
	      "  --keep N         prune: the finished ops kept (default 1000)\n"
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
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer((json_int_t)op->id));
	json_object_set_new(o, "state", json_string(journal_op_state_name(op->state)));
	json_object_set_new(o, "kind", cli_json_text(op->kind));
	json_object_set_new(o, "stack", cli_json_text(op->stack));
	json_object_set_new(o, "started", op->started ? json_string(t) : json_null());
	if (op->corrupt)
		json_object_set_new(o, "corrupt", cli_json_text(op->corrupt));
	return o;
}

static const char *or_unknown(const char *s)
{
	return s ? s : "?";
}

/*
 * The op's plan as JSON text (engine/plan.h decodes the binary plan, and
 * the JSON plans of punix before it); NULL if none was recorded. A plan
 * that does not decode is shown as why, never as its bytes.
 */
static char *plan_text(const struct journal_op *op)
{
	if (!op->plan)
		return NULL;
	struct op_plan p;
	struct sbuf err = SBUF_INIT;
	size_t len = op->plan_len ? op->plan_len : strlen(op->plan);
	char *text;
	if (plan_decode(op->plan, len, &p, &err) == 0) {
		text = plan_to_json(&p);
		plan_free(&p);
	} else {
		sbuf_printf(&err, " (%zu bytes)", len);
		json_t *o = json_pack("{s:s}", "unreadable", err.sb_buf);
		text = json_dumps(o, JSON_COMPACT);
		json_decref(o);
	}
	sbuf_free(&err);
	return text;
}

/* One op as `show OP` prints it (set-aside prints the same before asking). */
static void print_op(const struct journal_op *op, const struct journal_step *steps, size_t n)
{
	char t[32] = "?";
	if (op->started)
		when(op->started, t);
	bool damaged = op->state == JOURNAL_OP_CORRUPT;
	printf("op %llu: %s %s, %s, started %s\n", (unsigned long long)op->id, or_unknown(op->kind),
	       or_unknown(op->stack), journal_op_state_name(op->state), t);
	printf("scope: %s\n", or_unknown(op->scope));
	char *plan = plan_text(op);
	printf("plan: %s\n", plan ? plan : damaged || op->corrupt ? "?" : "(none recorded)");
	free(plan);
	for (size_t i = 0; i < n; i++)
		printf("  step %u %-12s %s\n", steps[i].index, steps[i].name, journal_step_state_name(steps[i].state));
	if (damaged)
		printf("corrupt: %s\n"
		       "(read from a damaged journal: what is shown may be wrong or incomplete; '?' could not be read)\n",
		       op->corrupt);
	else if (op->corrupt)
		printf("set aside while corrupt: %s\n", op->corrupt);
}

/* The standard error line for a corrupt op; returns EXIT_ERROR. */
static int report_corrupt(struct cli_ctx *cx, const struct journal_op *op, bool shown)
{
	unsigned long long id = op->id;
	if (shown)
		return cli_fail(cx, EXIT_ERROR, "journal: %s (`punix journal set-aside %llu` sets it aside)", op->corrupt, id);
	return cli_fail(cx, EXIT_ERROR,
			"journal: %s (`punix journal show %llu` shows what can be read of it; "
			"`punix journal set-aside %llu` sets it aside)",
			op->corrupt, id, id);
}

static int show_all(struct cli_ctx *cx, struct journal *j, bool json)
{
	struct journal_op *ops;
	size_t n;
	struct journal_err je;
	if (journal_op_list(j, &ops, &n, &je) < 0)
		return cli_fail(cx, EXIT_ERROR, "%s", je.msg);
	json_t *out = NULL; /* printed once the exit code is known */
	if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, op_json(&ops[i]));
		out = json_pack("{s:o}", "ops", arr);
	} else {
		char t[32];
		for (size_t i = 0; i < n; i++) {
			const struct journal_op *op = &ops[i];
			if (op->started)
				when(op->started, t);
			else
				strcpy(t, "-");
			printf("%llu\t%s\t%s\t%s\t%s", (unsigned long long)op->id, journal_op_state_name(op->state),
			       op->kind ? op->kind : "-", op->stack ? op->stack : "-", t);
			if (op->state == JOURNAL_OP_CORRUPT)
				printf("\t%s", op->corrupt);
			putchar('\n');
		}
		if (n == 0)
			puts("the journal is empty");
	}
	fflush(stdout);
	int rc = EXIT_OK;
	for (size_t i = 0; i < n; i++)
		if (ops[i].state == JOURNAL_OP_CORRUPT)
			rc = report_corrupt(cx, &ops[i], false);
	if (out)
		cli_json_out(cx, out, rc);
	journal_ops_free(ops, n);
	return rc;
}

static int show_one(struct cli_ctx *cx, struct journal *j, uint64_t id, bool json)
{
	struct journal_op op;
	struct journal_step *steps;
	size_t n;
	struct journal_err je;
	if (journal_op_inspect(j, id, &op, &steps, &n, &je) < 0)
		return cli_fail(cx, EXIT_ERROR, "%s", je.msg);
	if (json) {
		json_t *o = op_json(&op);
		json_object_set_new(o, "scope", cli_json_text(op.scope));
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++) {
			json_t *s = json_object();
			json_object_set_new(s, "index", json_integer(steps[i].index));
			json_object_set_new(s, "name", cli_json_text(steps[i].name));
			json_object_set_new(s, "state", json_string(journal_step_state_name(steps[i].state)));
			json_array_append_new(arr, s);
		}
		json_object_set_new(o, "steps", arr);
		char *ptext = plan_text(&op);
		json_t *plan = ptext ? json_loads(ptext, 0, NULL) : NULL;
		free(ptext);
		json_object_set_new(o, "plan", plan ? plan : json_null());
		cli_json_out(cx, o, op.state == JOURNAL_OP_CORRUPT ? report_corrupt(cx, &op, true) : EXIT_OK);
	} else {
		print_op(&op, steps, n);
	}
	fflush(stdout);
	int rc = op.state != JOURNAL_OP_CORRUPT ? EXIT_OK : json ? EXIT_ERROR : report_corrupt(cx, &op, true);
	journal_steps_free(steps, n);
	journal_op_free(&op);
	return rc;
}

static int set_aside(struct cli_ctx *cx, struct journal *j, uint64_t id, bool yes)
{
	struct journal_op op;
	struct journal_step *steps;
	size_t n;
	struct journal_err je;
	if (journal_op_inspect(j, id, &op, &steps, &n, &je) < 0)
		return cli_fail(cx, EXIT_ERROR, "%s", je.msg);
	int rc = EXIT_OK;
	switch (op.state) {
	case JOURNAL_OP_DONE:
	case JOURNAL_OP_ABORTED:
	case JOURNAL_OP_FAILED:
		rc = cli_fail(cx, EXIT_ERROR, "journal: op %llu is %s: a finished op cannot be set aside",
			      (unsigned long long)id, journal_op_state_name(op.state));
		break;
	case JOURNAL_OP_SET_ASIDE:
		rc = cli_fail(cx, EXIT_ERROR, "journal: op %llu is already set aside", (unsigned long long)id);
		break;
	case JOURNAL_OP_RUNNING:
	case JOURNAL_OP_CORRUPT:
		print_op(&op, steps, n);
		printf("Set aside, op %llu is never recovered again and blocks nothing: whatever it did or half "
		       "did stays as it is.\n",
		       (unsigned long long)id);
		fflush(stdout);
		if (!yes) {
			rc = cli_fail(cx, EXIT_USAGE, "add --yes to set op %llu aside", (unsigned long long)id);
		} else if (journal_op_set_aside(j, id, &je) < 0) {
			rc = cli_fail(cx, EXIT_ERROR, "%s", je.msg);
		} else {
			printf("set aside: op %llu%s\n", (unsigned long long)id,
			       op.state == JOURNAL_OP_CORRUPT ? " (its damaged records are kept in the journal)" : "");
		}
		break;
	}
	journal_steps_free(steps, n);
	journal_op_free(&op);
	return rc;
}

static int prune(struct cli_ctx *cx, struct journal *j, const char *state, size_t keep)
{
	size_t removed;
	struct journal_err je;
	if (journal_prune(j, keep, &removed, &je) < 0)
		return cli_fail(cx, EXIT_ERROR, "%s; run `punix journal prune` again once that is fixed", je.msg);
	printf("pruned %s/data.mdb: removed %zu finished op(s), keeping the newest %zu\n", state, removed, keep);
	return EXIT_OK;
}

/* The number of --keep: digits only. */
static int parse_keep(struct cli_ctx *cx, const char *arg, size_t *keep)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 10);
	if (*end || errno || arg[0] < '0' || arg[0] > '9' || v > SIZE_MAX)
		return cli_fail(cx, EXIT_USAGE, "'%s' is not a number of ops (--keep N)", arg);
	*keep = (size_t)v;
	return EXIT_OK;
}

int cmd_journal(struct cli_ctx *cx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"state-dir", required_argument, NULL, 'J'},
		{"json", no_argument, NULL, 'j'},
		{"yes", no_argument, NULL, 'y'},
		{"keep", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		cmd_journal_help();
		return EXIT_OK;
	}
	bool show = argc >= 2 && !strcmp(argv[1], "show");
	bool pruning = argc >= 2 && !strcmp(argv[1], "prune");
	if (argc < 2 || (!show && !pruning && strcmp(argv[1], "set-aside") != 0)) {
		static const char *const subs[] = {"show", "set-aside", "prune"};
		const char *near = argc >= 2 ? cli_nearest(argv[1], subs, 3) : NULL;
		if (near)
			return cli_fail(cx, EXIT_USAGE, "unknown journal command '%s' (did you mean '%s'?)", argv[1], near);
		return cli_usage(cx, JOURNAL_USAGE);
	}
	const char *state = NULL, *keep_arg = NULL;
	bool json = cx->json, yes = false;
	int c;
	optind = 1;
	char name[32];
	snprintf(name, sizeof(name), "journal %s", argv[1]);
	while ((c = cli_getopt(cx, argc - 1, argv + 1, longopts, name)) != -1) {
		switch (c) {
		case 'J': state = optarg; break;
		case 'j': json = true; break;
		case 'y': yes = true; break;
		case 'k': keep_arg = optarg; break;
		case 'h': cmd_journal_help(); return EXIT_OK;
		default: return cli_usage(cx, JOURNAL_USAGE);
		}
	}
	int nrest = argc - 1 - optind;
	bool aside = !show && !pruning;
	if (nrest > 1 || (show && yes) || (aside && (json || nrest != 1)) || (pruning && (json || yes || nrest)) ||
	    (keep_arg && !pruning))
		return cli_usage(cx, JOURNAL_USAGE);
	size_t keep = JOURNAL_KEEP_FINISHED;
	if (keep_arg && parse_keep(cx, keep_arg, &keep) != EXIT_OK)
		return EXIT_USAGE;
	uint64_t id = 0;
	if (nrest == 1) {
		char *end;
		const char *arg = argv[1 + optind];
		errno = 0;
		id = strtoull(arg, &end, 10);
		if (*end || id == 0 || errno || arg[0] < '0' || arg[0] > '9')
			return cli_fail(cx, EXIT_USAGE, "'%s' is not an op number", arg);
	}
	struct cli_places pl;
	struct journal *j;
	struct journal_err je = {0};
	int rc = cli_places_init(cx, &pl, NULL);
	if (rc == EXIT_OK)
		rc = cli_places_set(cx, &pl, NULL, state);
	if (rc != EXIT_OK) {
		cli_places_free(&pl);
		return rc;
	}
	if (journal_open(&j, pl.state, &je) < 0) {
		rc = je.msg[0] ? cli_fail(cx, EXIT_FAILURE_, "%s", je.msg)
			       : cli_fail(cx, EXIT_FAILURE_, "journal: cannot open %s", pl.state);
		cli_places_free(&pl);
		return rc;
	}
	if (pruning)
		rc = prune(cx, j, pl.state, keep);
	else if (!show)
		rc = set_aside(cx, j, id, yes);
	else if (id == 0)
		rc = show_all(cx, j, json);
	else
		rc = show_one(cx, j, id, json);
	journal_close(j);
	cli_places_free(&pl);
	return rc;
}
