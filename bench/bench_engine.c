/*
 * bench_engine.c - the engine's experiments. Not a test: it prints numbers.
 *
 *   bench_engine PUNIX history [--quick]     one rollback after 10 .. 100,000 earlier ops
 *                                            in the journal (compaction included)
 *
 * Like bench.c: every time is of a whole punix process, the median of
 * several, set against an anchor measured in the same run, and growth is
 * the exponent k of time ~ size^k (bench_util.h).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "journal/journal.h"

static const char *punix;
static char scratch[64];

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_engine: %s: %s\n", what, msg);
	exit(1);
}

/* shell() of a formatted command. */
static void shellf(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	shell(cmd);
}

static FILE *create(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	return f;
}

/* The size of the journal's data.mdb in dir. */
static double journal_mb(const char *dir)
{
	char path[512];
	struct stat st;
	if (snprintf(path, sizeof(path), "%s/data.mdb", dir) >= (int)sizeof(path) || stat(path, &st) < 0)
		return 0;
	return (double)st.st_size / 1e6;
}

/* ---- history: one rollback after a long journal -------------------------------------------- */

/* The real ops of the base journal, cloned to make a history: kind, scope, plan and steps. */
struct tmpl {
	struct journal_op op;
	struct journal_step *steps;
	size_t nsteps;
};

static void jdie(const char *what, const struct journal_err *e)
{
	die(what, e->msg);
}

static void clone_op(struct journal *j, const struct tmpl *t)
{
	struct journal_err e;
	struct journal_op op = {0};
	op.kind = t->op.kind;
	op.scope = t->op.scope;
	op.stack = t->op.stack;
	op.plan = t->op.plan;
	if (journal_op_begin(j, &op, &e) < 0)
		jdie("op_begin", &e);
	/* INTENT then DONE for each step, as the engine writes them */
	for (size_t s = 0; s < t->nsteps; s++) {
		const struct journal_step *st = &t->steps[s];
		if (journal_step_write(j, op.id, st->index, st->name, JOURNAL_STEP_INTENT, NULL, &e) < 0 ||
		    journal_step_write(j, op.id, st->index, st->name, st->state, st->result, &e) < 0)
			jdie("step_write", &e);
	}
	if (journal_op_finish(j, op.id, t->op.state, &e) < 0)
		jdie("op_finish", &e);
}

/*
 * Fills the journal in state_dir (a copy of a real one) up to total finished
 * ops, cloning its real ops in turn, 1,000 to a batch (one commit each) so
 * that 100,000 ops take seconds, not the ~10 minutes of 100,000 real ops.
 */
static double fill_history(const char *state_dir, long total)
{
	struct journal *j;
	struct journal_err e;
	if (journal_open(&j, state_dir, &e) < 0)
		jdie("open", &e);
	struct journal_op *ops;
	size_t nops, have;
	if (journal_op_list(j, &ops, &nops, &e) < 0 || journal_finished_count(j, &have, &e) < 0)
		jdie("list", &e);
	struct tmpl t[8];
	size_t nt = nops < 8 ? nops : 8;
	for (size_t i = 0; i < nt; i++)
		if (journal_op_get(j, ops[i].id, &t[i].op, &t[i].steps, &t[i].nsteps, &e) < 0)
			jdie("op_get", &e);
	journal_ops_free(ops, nops);
	double t0 = now();
	for (long n = (long)have, k = 0; n < total;) {
		if (journal_batch_begin(j, &e) < 0)
			jdie("batch_begin", &e);
		for (long b = 0; b < 1000 && n < total; b++, n++, k++)
			clone_op(j, &t[k % (long)nt]);
		if (journal_batch_commit(j, &e) < 0)
			jdie("batch_commit", &e);
	}
	double secs = now() - t0;
	for (size_t i = 0; i < nt; i++) {
		journal_op_free(&t[i].op);
		journal_steps_free(t[i].steps, t[i].nsteps);
	}
	journal_close(j);
	return secs;
}

static long finished_ops(const char *state_dir)
{
	struct journal *j;
	struct journal_err e;
	size_t n;
	if (journal_open(&j, state_dir, &e) < 0 || journal_finished_count(j, &n, &e) < 0)
		jdie("count", &e);
	journal_close(j);
	return (long)n;
}

/* One stack, one std.shell package, one config file whose content is the version. */
static void history_program(const char *path, int version)
{
	FILE *f = create(path);
	fprintf(f,
		"module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
		"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && touch $OUTPUT/bin/app\" } }\n"
		"module S { backend = \"systemd\" storeModules = [\"App\"] services = []\n"
		"  configFiles = [ { path = \"/etc/s/s.conf\" content = \"v = %d\\n\" } ] }\n",
		version);
	fclose(f);
}

#define HIST_SIZES 4
#define FIRSTS 3 /* first rollbacks after the largest history, each on its own copy */

static void bench_history(int quick)
{
	long sizes[HIST_SIZES] = {10, 1000, 9000, quick ? 20000 : 100000};
	int reps = quick ? 7 : 31;
	char dir[128], home[256], target[256], prog[256], base[300];
	snprintf(dir, sizeof(dir), "%s/hist", scratch);
	snprintf(home, sizeof(home), "%s/home", dir);
	snprintf(target, sizeof(target), "%s/target", dir);
	snprintf(prog, sizeof(prog), "%s/prog.pcl", dir);
	snprintf(base, sizeof(base), "%s/journal", home);
	shellf("mkdir -p %s", target);

	/* the real ops the history is cloned from: two deploys, a rollback, a set-current */
	char *deploy[] = {(char *)punix, "service", "deploy", "S", "--file", prog, "--transport-root", target, NULL};
	history_program(prog, 1);
	run(deploy, home, 0);
	history_program(prog, 2);
	run(deploy, home, 0);
	char *rb0[] = {(char *)punix, "service", "rollback", "S", "--transport-root", target, NULL};
	char *fw0[] = {(char *)punix, "service", "set-current", "S", "2", "--transport-root", target, NULL};
	run(rb0, home, 0);
	run(fw0, home, 0);

	/*
	 * One journal per size, each a copy of the real one (its target
	 * registration and lock files too, so the first op on it does no
	 * extra work), given by --state-dir: every rollback then works on the
	 * same home, target and generations, and only the history differs.
	 */
	char sd[HIST_SIZES][320];
	double fill[HIST_SIZES], mb[HIST_SIZES];
	for (int i = 0; i < HIST_SIZES; i++) {
		snprintf(sd[i], sizeof(sd[i]), "%s/journal-%ld", dir, sizes[i]);
		shellf("cp -a %s %s", base, sd[i]);
		fill[i] = fill_history(sd[i], sizes[i]);
		mb[i] = journal_mb(sd[i]);
	}
	/*
	 * Nothing dirty in the page cache: a timed op's fdatasync of data.mdb
	 * would otherwise also write back what cp left unwritten.
	 */
	shell("sync");
	char *rb[HIST_SIZES][10], *fw[HIST_SIZES][10];
	for (int i = 0; i < HIST_SIZES; i++) {
		char *r[] = {(char *)punix, "service", "rollback", "S", "--transport-root", target, "--state-dir", sd[i],
			     NULL};
		char *f[] = {(char *)punix, "service", "set-current", "S", "2", "--transport-root", target, "--state-dir",
			     sd[i], NULL};
		memcpy(rb[i], r, sizeof(r));
		memcpy(fw[i], f, sizeof(f));
	}

	/*
	 * (a) the first rollback on the largest history: it pays the
	 * compaction. A single run each, so on FIRSTS copies of that journal
	 * (the journal itself last: its steady state is measured below).
	 */
	int big = HIST_SIZES - 1;
	double firsts[FIRSTS];
	long before_first = finished_ops(sd[big]), after_first = 0;
	for (int k = 0; k < FIRSTS; k++) {
		char copy[400];
		snprintf(copy, sizeof(copy), "%s-copy", sd[big]);
		if (k < FIRSTS - 1)
			shellf("rm -rf %s && cp -a %s %s && sync", copy, sd[big], copy); /* see below */
		const char *use = k < FIRSTS - 1 ? copy : sd[big];
		char *r[] = {(char *)punix, "service", "rollback", "S", "--transport-root", target, "--state-dir",
			     (char *)use, NULL};
		char *f[] = {(char *)punix, "service", "set-current", "S", "2", "--transport-root", target,
			     "--state-dir", (char *)use, NULL};
		firsts[k] = run(r, home, 0).secs;
		after_first = finished_ops(use);
		run(f, home, 0);
		if (k < FIRSTS - 1)
			shellf("rm -rf %s", copy);
	}
	double first = median_of(firsts, FIRSTS);

	/*
	 * Then every history in turn, round-robin, so that the machine's noise
	 * falls on all of them alike; each rollback is followed by a
	 * set-current 2 so that the next one has real work to do.
	 */
	double t[HIST_SIZES][64], med[HIST_SIZES];
	for (int r = 0; r < reps; r++)
		for (int i = 0; i < HIST_SIZES; i++) {
			t[i][r] = run(rb[i], home, 0).secs;
			run(fw[i], home, 0);
		}
	for (int i = 0; i < HIST_SIZES; i++)
		med[i] = median_of(t[i], reps);

	printf("one punix service rollback (a whole process; then set-current 2, untimed), after N earlier\n"
	       "finished ops in the journal (clones of real deploy, rollback and set-current ops, written\n"
	       "with the journal API, 1,000 to a commit); median of %d, round-robin over the journals.\n"
	       "The engine compacts when more than %d finished ops are stored (down to %d).\n\n",
	       reps, JOURNAL_COMPACT_AT, JOURNAL_KEEP_FINISHED);
	printf("%-24s %9s %10s %11s %11s %10s\n", "history", "fill s", "data.mdb MB", "ops after", "rollback ms",
	       "/ t(10)");
	for (int i = 0; i < big; i++)
		printf("%-24ld %9.2f %10.1f %11ld %11.2f %10.2f\n", sizes[i], fill[i], mb[i], finished_ops(sd[i]),
		       1e3 * med[i], med[i] / med[0]);
	char label[64];
	snprintf(label, sizeof(label), "%ld, first (compacts)", sizes[big]);
	printf("%-24s %9.2f %10.1f %11ld %11.2f %10.2f\n", label, fill[big], mb[big], after_first, 1e3 * first,
	       first / med[0]);
	snprintf(label, sizeof(label), "%ld, after (median)", sizes[big]);
	printf("%-24s %9s %10.1f %11ld %11.2f %10.2f\n", label, "", journal_mb(sd[big]), finished_ops(sd[big]), 1e3 * med[big],
	       med[big] / med[0]);
	printf("\n(ops after: finished ops stored after every run, or for the first rollback right after it;\n"
	       " the first rollback is the median of %d, each on its own copy of the journal)\n\n",
	       FIRSTS);
	long removed = before_first + 1 - after_first;
	printf("(a) first rollback after %ld ops: %.1f ms = %.0f x t(10); it removed %ld ops: %.1f us each\n"
	       "(b) the rollbacks after it: %.2f ms, (b) / t(10) = %.2f\n"
	       "(c) below the threshold, no compaction: t(%ld) / t(10) = %.2f\n",
	       sizes[big], 1e3 * first, first / med[0], removed, 1e6 * (first - med[0]) / (double)removed,
	       1e3 * med[big], med[big] / med[0], sizes[2], med[2] / med[0]);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_engine PUNIX history [--quick]\n");
		return 2;
	}
	punix = argv[1];
	int quick = argc > 3 && !strcmp(argv[3], "--quick");
	strcpy(scratch, "/tmp/punix-bench-XXXXXX");
	if (!mkdtemp(scratch)) {
		perror("mkdtemp");
		return 1;
	}
	/* as root, punix builds as nobody, who must reach the store in here */
	if (chmod(scratch, 0755) < 0) {
		perror("chmod");
		return 1;
	}
	if (!strcmp(argv[2], "history"))
		bench_history(quick);
	else
		fprintf(stderr, "bench_engine: unknown experiment %s\n", argv[2]);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "chmod -R u+w %s; rm -rf %s", scratch, scratch);
	return system(cmd) == 0 ? 0 : 1;
}
