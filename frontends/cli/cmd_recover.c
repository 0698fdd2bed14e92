/*
 * cmd_recover.c - `punix recover [--list]`: finish or undo whatever an
 * interrupted punix left behind.
 *
 * Today that is the store: build directories of builds that died, outputs
 * renamed into place whose registration was never written, and temporary
 * files of registrations. None of them is valid, so removing them changes
 * nothing a user can rely on; a derivation that is being built right now
 * (its lock is held) is left alone. The journaled operations of the engine
 * will be recovered here too.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "../../engine/engine.h"
#include "cli.h"

#define RECOVER_USAGE "usage: punix recover [--list] [--json] [--store-root DIR] [--state-dir DIR]\n"

void cmd_recover_help(void)
{
	fputs(RECOVER_USAGE
	      "\n"
	      "Finishes or undoes every interrupted op in the journal (an op stopped before its\n"
	      "flip is undone; one stopped at or after it is rolled forward), then cleans up\n"
	      "after interrupted builds: build directories of dead builds, store paths that were\n"
	      "never registered, temporary registration files. One line per item, or\n"
	      "'nothing to recover'.\n"
	      "\n"
	      "  --list            say what would be done; change nothing\n"
	      "  --json            one JSON object: {\"ops\": [lines], \"store\": [lines]}\n"
	      "  --store-root DIR  the store (default: $PUNIX_STORE_DIR, else $PUNIX_HOME/store)\n"
	      "  --state-dir DIR   the journal (default: $PUNIX_STATE_DIR, else $PUNIX_HOME/journal)\n",
	      stdout);
}

struct recover_out {
	bool list;
	size_t n;
	json_t *ops, *store; /* with --json */
	struct cli_progress progress;
	struct cli_progress_src src;
};

static void on_count(void *arg, const char *what, uint64_t done, uint64_t total, uint64_t bytes)
{
	struct recover_out *o = arg;
	cli_progress_count(&o->src, what, done, total, bytes);
}

static void on_op(void *arg, const char *line)
{
	struct recover_out *o = arg;
	o->n++;
	cli_progress_clear(&o->progress); /* off the terminal before the line (it may share it) */
	if (o->ops)
		json_array_append_new(o->ops, json_string(line));
	else
		puts(line);
}

static void on_item(void *arg, const char *what, const char *path)
{
	struct recover_out *o = arg;
	o->n++;
	if (o->store) {
		json_array_append_new(o->store, json_pack("{s:s, s:s, s:b}", "what", what, "path", path, "removed", !o->list));
		return;
	}
	printf("%s: %s %s\n", o->list ? "would remove" : "removed", what, path);
}

int cmd_recover(struct cli_ctx *cx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"list", no_argument, NULL, 'l'},
		{"json", no_argument, NULL, 'j'},
		{"store-root", required_argument, NULL, 's'},
		{"state-dir", required_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *store_root = NULL, *state = NULL;
	struct recover_out out = {0};
	if (cx->json) {
		out.ops = json_array();
		out.store = json_array();
	}
	int c, rc = EXIT_OK;
	optind = 1;
	while ((c = cli_getopt(cx, argc, argv, longopts, NULL)) != -1) {
		switch (c) {
		case 'l': out.list = true; break;
		case 'j': break; /* cx->json, from main */
		case 's': store_root = optarg; break;
		case 'J': state = optarg; break;
		case 'h': cmd_recover_help(); goto usage;
		default: rc = cli_usage(cx, RECOVER_USAGE); goto usage;
		}
	}
	if (optind != argc) {
		rc = cli_usage(cx, RECOVER_USAGE);
		goto usage;
	}
	struct cli_places pl;
	struct store st = {0};
	rc = cli_places_init(cx, &pl, store_root);
	if (rc == EXIT_OK)
		rc = cli_places_set(cx, &pl, NULL, state);
	/* An explicit --store-root must be a store; the default one may not exist yet. */
	struct ops_stat sst;
	bool no_store = rc == EXIT_OK && !store_root && !getenv("PUNIX_STORE_DIR") &&
			ops_local()->stat(ops_local(), pl.store, 0, &sst) == -ENOENT;
	if (rc == EXIT_OK && no_store && store_sweep_creation(ops_local(), pl.store) < 0)
		rc = cli_fail(cx, EXIT_FAILURE_, "cannot remove what a cut-short creation of the store %s left beside it",
			      pl.store);
	if (rc == EXIT_OK && !no_store)
		rc = cli_open_store(cx, &st, &pl, 0);
	if (rc == EXIT_OK) {
		struct engine *e = cli_engine(cx, &pl, &st);
		if (!e) {
			rc = EXIT_FAILURE_;
		} else {
			struct sbuf err = SBUF_INIT;
			/* the ops recovered so far, on standard error (docs/cli.md, "Progress") */
			cli_progress_init(&out.progress, cx->json);
			cli_progress_source(&out.src, &out.progress, "recover");
			int er = engine_recover_counted(e, out.list, on_op, out.progress.on ? on_count : NULL, &out, &err);
			cli_progress_end(&out.progress);
			if (er < 0)
				rc = cli_fail(cx, EXIT_FAILURE_, "%s",
					      cli_reason(err.sb_buf, "an interrupted op could not be finished or undone "
								     "(its report line says why); it stays in the journal"));
			sbuf_free(&err);
			engine_close(e);
		}
	}
	if (rc == EXIT_OK && !no_store) {
		int r = store_clean_leftovers(&st, out.list, on_item, &out);
		if (r < 0)
			rc = cli_fail(cx, EXIT_FAILURE_, "store %s: %s", st.root, strerror(-r));
	}
	if (rc == EXIT_OK && out.n == 0 && !out.ops)
		puts("nothing to recover");
	if (st.root)
		store_close(&st);
	if (out.ops) {
		cli_json_out(cx, json_pack("{s:o, s:o, s:b}", "ops", out.ops, "store", out.store, "list", out.list), rc);
		out.ops = out.store = NULL;
	}
	cli_places_free(&pl);
usage:
	json_decref(out.ops);
	json_decref(out.store);
	return rc;
}
