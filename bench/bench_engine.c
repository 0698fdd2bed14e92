/*
 * bench_engine.c - the engine's experiments. Not a test: it prints numbers.
 *
 *   bench_engine PUNIX history [--quick]     one rollback after 10 .. 100,000 earlier ops
 *                                            in the journal (compaction included)
 *   bench_engine PUNIX syncs                 fdatasync (journal commits) and fsync per op
 *                                            (strace), against design.md's minimum; and
 *                                            10 stacks deployed in one process
 *   bench_engine PUNIX concurrent [--quick]  10 stacks deployed at once in one engine
 *                                            against 10 processes one after another
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

/* The size of the journal's data.mdb in dir. */
static double journal_mb(const char *dir)
{
	char path[512];
	struct stat st;
	if (snprintf(path, sizeof(path), "%s/data.mdb", dir) >= (int)sizeof(path) || stat(path, &st) < 0)
		return 0;
	return (double)st.st_size / 1e6;
}

/* "S0,S1,...,S{n-1}" */
static void stack_list(char *buf, size_t len, int n)
{
	size_t o = 0;
	buf[0] = 0;
	for (int i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%sS%d", i ? "," : "", i);
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

/* ---- syncs: fdatasync and fsync per op ------------------------------------------------------ */

struct syncs {
	long commits;   /* fdatasync of the journal's data.mdb: one per LMDB commit */
	long fdatasync; /* any other fdatasync */
	long fsync;     /* every fsync, of which: */
	long local;     /* under the home (the journal's directory, its target registry) */
	long push;      /* under the target's store (pushing a store path) */
};

/* Counts the op's syncs with strace -f -y (which names each fd's path), classified by path. */
static struct syncs trace(const char *home, const char *target, char *const *argv)
{
	char out[128];
	snprintf(out, sizeof(out), "%s/strace.txt", scratch);
	char *args[64] = {"strace", "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o", out};
	int n = 8;
	for (int i = 0; argv[i] && n < 63; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	run(args, home, 0);

	struct syncs s = {0};
	FILE *f = fopen(out, "r");
	if (!f)
		die("strace", "no output");
	char line[2048], rebased_store[600];
	snprintf(rebased_store, sizeof(rebased_store), "%s%s/store", target, home);
	while (fgets(line, sizeof(line), f)) {
		/* "PID fsync(FD</path>) = 0", or "... <unfinished ...>" when another thread interrupts */
		char *c = line + strspn(line, "0123456789 ");
		bool datasync = !strncmp(c, "fdatasync(", 10);
		if (!datasync && strncmp(c, "fsync(", 6))
			continue; /* "<... resumed>", or a syscall strace cannot name */
		char *p = strchr(c, '<'), *q = p ? strchr(p, '>') : NULL;
		if (!p || !q)
			die("strace", "a sync without a path (strace too old for -y?)");
		*q = 0;
		p++;
		if (datasync) {
			size_t l = strlen(p);
			if (l >= 9 && !strcmp(p + l - 9, "/data.mdb"))
				s.commits++;
			else
				s.fdatasync++;
			continue;
		}
		s.fsync++;
		if (!strncmp(p, target, strlen(target))) {
			if (!strncmp(p, rebased_store, strlen(rebased_store)) || strstr(p, "/.store.tmp-"))
				s.push++;
		} else if (!strncmp(p, home, strlen(home))) {
			s.local++;
		}
	}
	fclose(f);
	return s;
}

/*
 * What an op touches, from which design.md's minimum follows: the journal
 * needs one durable commit before each step recovery must know of (a step
 * with an undo before the flip, and the flip itself: deploy 2, rollback and
 * set-current 1), every other record riding along, and one for the op's
 * end: waits + 1; the
 * generation (deploys only) each of its files and directories once, the
 * manifest and its directory; the flip its directory; the live files one
 * fsync each and their directories once. Not in design.md's list but
 * needed all the same: a directory the op creates needs its parent synced
 * once, or its entry may be lost.
 */
struct shape {
	const char *name;
	int waits, gen_files, gen_dirs, live_files, live_dirs, new_dirs;
	bool deploy;
};

static long min_commits(const struct shape *s)
{
	return s->waits + 1;
}

static long min_fsync(const struct shape *s)
{
	return (s->deploy ? s->gen_files + s->gen_dirs + 2 : 0) + 1 + s->live_files + s->live_dirs + s->new_dirs;
}

static void print_formula(const struct shape *s)
{
	printf("  %-30s commits %ld = %d step%s whose INTENT must be durable first + 1 (the end); fsync %ld = ", s->name,
	       min_commits(s), s->waits, s->waits == 1 ? "" : "s", min_fsync(s));
	if (s->deploy)
		printf("%d gen files + %d gen dirs + 2 manifest (file, dir) + ", s->gen_files, s->gen_dirs);
	printf("1 flip dir + %d live files + %d live dirs", s->live_files, s->live_dirs);
	if (s->new_dirs)
		printf(" + %d parents of new dirs", s->new_dirs);
	printf("\n");
}

/*
 * Base (one config file) brings the package and the deployments root to
 * the target first, as design.md's minimum assumes ("store paths all
 * present"); S and S0..S9 have two config files each, a.conf carrying the
 * version.
 */
static void syncs_program(const char *path, int version)
{
	FILE *f = create(path);
	fputs("module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
	      "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && touch $OUTPUT/bin/app\" } }\n"
	      "module Base { backend = \"systemd\" storeModules = [\"App\"] services = []\n"
	      "  configFiles = [ { path = \"/etc/base/x.conf\" content = \"x\\n\" } ] }\n",
	      f);
	const char *names[11] = {"S", "S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9"};
	for (int i = 0; i < 11; i++)
		fprintf(f,
			"module %s { backend = \"systemd\" storeModules = [\"App\"] services = []\n"
			"  configFiles = [ { path = \"/etc/%s/a.conf\" content = \"a = %d\\n\" }\n"
			"                  { path = \"/etc/%s/b.conf\" content = \"b\\n\" } ] }\n",
			names[i], names[i], version, names[i]);
	fclose(f);
}

static void print_syncs(const char *name, const struct syncs *m, const struct shape *s)
{
	char mc[16] = "-", mf[16] = "-";
	if (s) {
		snprintf(mc, sizeof(mc), "%ld", min_commits(s));
		snprintf(mf, sizeof(mf), "%ld", min_fsync(s));
	}
	printf("%-34s %8ld %6s %8ld %6s %8ld %8ld %10ld\n", name, m->commits, mc, m->fsync, mf, m->local, m->push,
	       m->fdatasync);
}

static void bench_syncs(void)
{
	if (system("command -v strace >/dev/null 2>&1") != 0) {
		printf("strace: not installed; skipped\n");
		return;
	}
	char dir[128], home[256], target[256], prog[256];
	snprintf(dir, sizeof(dir), "%s/syncs", scratch);
	snprintf(home, sizeof(home), "%s/home", dir);
	snprintf(target, sizeof(target), "%s/target", dir);
	snprintf(prog, sizeof(prog), "%s/prog.pcl", dir);
	shellf("mkdir -p %s", target);
	syncs_program(prog, 0);
	char *build[] = {(char *)punix, "build", prog, NULL};
	run(build, home, 0);
	char *base[] = {(char *)punix, "service", "deploy", "Base", "--file", prog, "--transport-root", target, NULL};
	run(base, home, 0);

	/* deploy (7 steps), rollback and set-current (5); S's files are /etc/S/a.conf and b.conf */
	const struct shape first = {"first deploy", 2, 2, 3, 2, 1, 2, true};
	const struct shape redeploy = {"redeploy, 1 file changed", 2, 2, 3, 1, 1, 0, true};
	const struct shape rollback = {"rollback", 1, 0, 0, 1, 1, 0, false};
	const struct shape setcur = {"set-current", 1, 0, 0, 1, 1, 0, false};

	char *deploy[] = {(char *)punix, "service", "deploy", "S", "--file", prog, "--transport-root", target, NULL};
	char *rb[] = {(char *)punix, "service", "rollback", "S", "--transport-root", target, NULL};
	char *sc[] = {(char *)punix, "service", "set-current", "S", "2", "--transport-root", target, NULL};
	struct syncs m_first = trace(home, target, deploy);
	syncs_program(prog, 1);
	struct syncs m_re = trace(home, target, deploy);
	struct syncs m_rb = trace(home, target, rb);
	struct syncs m_sc = trace(home, target, sc);

	/* the very first deploy: new home, journal and target, and the package pushed */
	char home2[300], target2[300];
	snprintf(home2, sizeof(home2), "%s/home2", dir);
	snprintf(target2, sizeof(target2), "%s/target2", dir);
	shellf("mkdir -p %s", target2);
	run(build, home2, 0);
	char *deploy2[] = {(char *)punix, "service", "deploy", "S", "--file", prog, "--transport-root", target2, NULL};
	struct syncs m_new = trace(home2, target2, deploy2);

	printf("syncs per op, counted with strace -f -y; the package already built. 'commits' are the\n"
	       "fdatasyncs of the journal's data.mdb (LMDB: one per commit, its meta page written O_DSYNC);\n"
	       "'min' is what the guarantees need (docs/design.md, 'The minimum number of syncs').\n"
	       "The stack S has two config files, /etc/S/a.conf and /etc/S/b.conf; a stack Base was\n"
	       "deployed first, so the package is on the target and the deployments root exists.\n\n");
	printf("%-34s %8s %6s %8s %6s %8s %8s %10s\n", "op", "commits", "min", "fsync", "min", "local", "push",
	       "fdatasync*");
	print_syncs("first deploy of S", &m_first, &first);
	print_syncs("redeploy, a.conf changed", &m_re, &redeploy);
	print_syncs("rollback", &m_rb, &rollback);
	print_syncs("set-current", &m_sc, &setcur);
	print_syncs("first deploy, new home and target", &m_new, NULL);
	printf("\n(local: fsyncs under the home, i.e. the journal's directory and target registry; push:\n"
	       " under the target's store; fdatasync*: fdatasyncs of anything but data.mdb. The last row\n"
	       " also creates the home, the journal and the target tree and pushes the package, which\n"
	       " the minimum does not cover: no minimum is given for it.)\n\nminimum, term by term:\n");
	print_formula(&first);
	print_formula(&redeploy);
	print_formula(&rollback);
	print_formula(&setcur);

	/*
	 * Ten stacks in one process: one engine, one group commit per loop
	 * iteration, shared by every op that wrote a record in it. First their
	 * first deploys, then redeploys that change one file each, against
	 * the same redeploy of one stack alone (measured above). strace slows
	 * every syscall, which may change how the ops' steps line up.
	 */
	int trials = 5;
	char list[128];
	stack_list(list, sizeof(list), 10);
	char *ten[] = {(char *)punix, "service", "deploy", list, "--file", prog, "--transport-root", target, NULL};
	struct syncs m_ten_first = trace(home, target, ten);
	double c[16], fs[16];
	for (int t = 0; t < trials; t++) {
		syncs_program(prog, 2 + t);
		struct syncs m = trace(home, target, ten);
		c[t] = (double)m.commits / 10;
		fs[t] = (double)m.fsync / 10;
	}
	double cmin = c[0], cmax = c[0];
	for (int t = 1; t < trials; t++)
		cmin = c[t] < cmin ? c[t] : cmin, cmax = c[t] > cmax ? c[t] : cmax;
	double cmed = median_of(c, trials), fmed = median_of(fs, trials);
	printf("\n10 stacks in one process (punix service deploy S0,...,S9), per deploy:\n\n");
	printf("%-40s %12s %12s\n", "", "commits", "fsync");
	printf("%-40s %12.1f %12.1f\n", "10 first deploys at once", (double)m_ten_first.commits / 10,
	       (double)m_ten_first.fsync / 10);
	printf("%-40s %12.1f %12.1f   (commits %.1f .. %.1f)\n", "10 redeploys at once (median of 5)", cmed, fmed, cmin,
	       cmax);
	printf("%-40s %12ld %12ld\n", "1 redeploy alone (above)", m_re.commits, m_re.fsync);
	printf("%-40s %12.1f %12ld\n", "minimum at once (all steps in lockstep)", (double)min_commits(&redeploy) / 10,
	       min_fsync(&redeploy));
	printf("\ncommits per deploy, 10 at once / alone: %.2f\n", cmed / (double)m_re.commits);
}

/* ---- concurrent: stacks deployed at once against one after another -------------------------- */

/* n stacks, each with its own package whose build sleeps, one service and one config file. */
static void concurrent_program(const char *path, int n, const char *sleep_s)
{
	FILE *f = create(path);
	for (int i = 0; i < n; i++)
		fprintf(f,
			"module P%d { pname = \"app%d\" version = \"1\" recipe = \"std.shell\"\n"
			"  recipeArgs = { command = \"sleep %s && mkdir -p $OUTPUT/bin && echo %d > $OUTPUT/bin/app\" } }\n"
			"module S%d { backend = \"systemd\" storeModules = [\"P%d\"]\n"
			"  services = [ { name = \"svc%d\" package = \"P%d\" binary = \"app\" } ]\n"
			"  configFiles = [ { path = \"/etc/s%d/a.conf\" content = \"a = %d\\n\" } ] }\n",
			i, i, sleep_s, i, i, i, i, i, i, i);
	fclose(f);
}

/*
 * One trial: a fresh home and target; with prebuilt, the packages are built
 * first (untimed). Then the n stacks deployed at once by one process (its
 * time), or by one process each in sequence (the sum of their times).
 */
static double conc_trial(const char *dir, const char *prog, int n, bool prebuilt, bool at_once)
{
	char home[256], target[256];
	snprintf(home, sizeof(home), "%s/home", dir);
	snprintf(target, sizeof(target), "%s/target", dir);
	shellf("rm -rf %s %s && mkdir -p %s", home, target, target);
	if (prebuilt) {
		char *build[] = {(char *)punix, "build", (char *)prog, NULL};
		run(build, home, 0);
	}
	if (at_once) {
		char list[128];
		stack_list(list, sizeof(list), n);
		char *d[] = {(char *)punix, "service", "deploy", list, "--file", (char *)prog, "--transport-root", target,
			     NULL};
		return run(d, home, 0).secs;
	}
	double total = 0;
	for (int i = 0; i < n; i++) {
		char s[16];
		snprintf(s, sizeof(s), "S%d", i);
		char *d[] = {(char *)punix, "service", "deploy", s, "--file", (char *)prog, "--transport-root", target, NULL};
		total += run(d, home, 0).secs;
	}
	return total;
}

#define CONC_SIZES 4

static void bench_concurrent(int quick)
{
	const int sizes[CONC_SIZES] = {1, 2, 5, 10};
	const char *sleep_s = "0.2";
	printf("n stacks, each with its own package (std.shell: sleep %s, then write a file), one\n"
	       "service and one config file; a fresh home and target every trial.\n"
	       "at once: punix service deploy S0,...,S{n-1} (one engine); sequence: n processes,\n"
	       "punix service deploy Si, one after another (the sum of their times).\n\n",
	       sleep_s);
	for (int prebuilt = 0; prebuilt < 2; prebuilt++) {
		/* a pure deploy takes milliseconds, mostly syncs: more trials against the disk's noise */
		int trials = prebuilt ? (quick ? 5 : 15) : (quick ? 3 : 7);
		double ns[CONC_SIZES], once[CONC_SIZES], seq[CONC_SIZES];
		printf("%s, median of %d:\n",
		       prebuilt ? "packages already built (pure deploy)" : "building the packages (deploy builds them)",
		       trials);
		printf("%8s %12s %12s %10s %14s\n", "stacks", "at once s", "sequence s", "ratio", "at once/stack");
		for (int i = 0; i < CONC_SIZES; i++) {
			int n = sizes[i];
			char dir[128], prog[200];
			snprintf(dir, sizeof(dir), "%s/conc-%d", scratch, n);
			snprintf(prog, sizeof(prog), "%s/prog.pcl", dir);
			shellf("mkdir -p %s", dir);
			concurrent_program(prog, n, sleep_s);
			double a[16], s[16];
			/* alternated, so that the machine's noise falls on both alike */
			for (int t = 0; t < trials; t++) {
				a[t] = conc_trial(dir, prog, n, prebuilt, true);
				s[t] = conc_trial(dir, prog, n, prebuilt, false);
			}
			ns[i] = n;
			once[i] = median_of(a, trials);
			seq[i] = median_of(s, trials);
			printf("%8d %12.3f %12.3f %10.2f %12.1f ms\n", n, once[i], seq[i], once[i] / seq[i],
			       1e3 * once[i] / n);
			fflush(stdout);
		}
		printf("at once, 10 stacks / 1: %.2f (sequence: %.2f); 10 at once / 10 in sequence: %.2f\n",
		       once[3] / once[0], seq[3] / seq[0], once[3] / seq[3]);
		if (!prebuilt) {
			/*
			 * The builds run on libuv's pool, 4 threads unless
			 * UV_THREADPOOL_SIZE says otherwise (docs/design.md): with
			 * one thread per stack, is the pool what bounds the overlap?
			 */
			char dir[128], prog[200];
			snprintf(dir, sizeof(dir), "%s/conc-10", scratch);
			snprintf(prog, sizeof(prog), "%s/prog.pcl", dir);
			setenv("UV_THREADPOOL_SIZE", "10", 1);
			double a[16];
			for (int t = 0; t < trials; t++)
				a[t] = conc_trial(dir, prog, 10, false, true);
			unsetenv("UV_THREADPOOL_SIZE");
			double m = median_of(a, trials);
			printf("10 at once with UV_THREADPOOL_SIZE=10: %.3f s (/ the default pool of 4: %.2f)\n", m,
			       m / once[3]);
		}
		printf("growth exponent at once %.2f, in sequence %.2f (1.0: each stack costs as much as a whole run)\n\n",
		       fit_exponent(ns, once, CONC_SIZES), fit_exponent(ns, seq, CONC_SIZES));
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_engine PUNIX history|syncs|concurrent [--quick]\n");
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
	else if (!strcmp(argv[2], "syncs"))
		bench_syncs();
	else if (!strcmp(argv[2], "concurrent"))
		bench_concurrent(quick);
	else
		fprintf(stderr, "bench_engine: unknown experiment %s\n", argv[2]);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "chmod -R u+w %s; rm -rf %s", scratch, scratch);
	return system(cmd) == 0 ? 0 : 1;
}
