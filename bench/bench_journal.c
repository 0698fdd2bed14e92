/*
 * bench_journal.c - the journal's cost per op as its history grows. Not a
 * test: it prints numbers.
 *
 *   bench_journal [--quick] [DIR]
 *
 * For each N (10, 1,000, 100,000; --quick: 10, 1,000, 10,000), a fresh
 * journal under DIR (default /tmp) is filled with N finished ops, as an
 * engine writes them (a ~2 KB plan, 6 steps each written INTENT then DONE),
 * committed 1,000 ops to a batch. Then "one more op" is timed, the median
 * of REPS: what a new op reads and writes, journal_running_list (recovery:
 * is anything running?), journal_op_begin, 6 x journal_step_write INTENT and
 * DONE, journal_op_finish. Once with every write durable by itself, as the
 * engine does (14 commits, so mostly fdatasync), once inside a batch (one
 * commit), which shows the CPU cost without the disk. For comparison, the
 * same read through journal_op_list, which reads the whole history.
 *
 * Then the 100,000-op journal is pruned to 1,000 and timed.
 *
 * Uses the journal API only; every time is CLOCK_MONOTONIC wall time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "journal/journal.h"

#define NSTEPS 6
#define FILL_BATCH 1000
#define PLAN_BYTES 2000

struct bench {
	char plan[PLAN_BYTES + 1];
	int reps;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *t, int n)
{
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	return t[n / 2];
}

static void die(const char *what, const struct journal_err *e)
{
	fprintf(stderr, "bench_journal: %s: %s\n", what, e->msg);
	exit(1);
}

/* A JSON plan of about PLAN_BYTES, like a deploy's (paths and hashes). */
static void make_plan(char *p)
{
	int n = snprintf(p, PLAN_BYTES + 1, "{\"stack\":\"Web\",\"generation\":7,\"store_paths\":[");
	for (int i = 0; n < PLAN_BYTES - 80; i++)
		n += snprintf(p + n, (size_t)(PLAN_BYTES + 1 - n), "%s\"/var/lib/punix/store/%08x%08x-pkg-%d\"",
			      i ? "," : "", (unsigned)i * 2654435761u, (unsigned)i * 40503u, i);
	snprintf(p + n, (size_t)(PLAN_BYTES + 1 - n), "]}");
}

static const char *const step_names[NSTEPS] = {"plan", "build", "stage", "flip", "materialise", "activate"};

/* One op as the engine writes it; with list, preceded by what a new op reads. */
static void one_op(struct journal *j, const struct bench *b, int list_all)
{
	struct journal_err e;
	struct journal_op *ops;
	size_t n;
	if ((list_all ? journal_op_list(j, &ops, &n, &e) : journal_running_list(j, &ops, &n, &e)) < 0)
		die("listing", &e);
	journal_ops_free(ops, n);
	struct journal_op op = {0};
	op.kind = "deploy";
	op.scope = "local|/var/lib/punix/deployments|Web";
	op.stack = "Web";
	op.plan = (char *)b->plan;
	if (journal_op_begin(j, &op, &e) < 0)
		die("op_begin", &e);
	for (uint32_t s = 0; s < NSTEPS; s++) {
		if (journal_step_write(j, op.id, s, step_names[s], JOURNAL_STEP_INTENT, NULL, &e) < 0 ||
		    journal_step_write(j, op.id, s, step_names[s], JOURNAL_STEP_DONE, NULL, &e) < 0)
			die("step_write", &e);
	}
	if (journal_op_finish(j, op.id, JOURNAL_OP_DONE, &e) < 0)
		die("op_finish", &e);
}

static void fill(struct journal *j, const struct bench *b, long n)
{
	struct journal_err e;
	for (long i = 0; i < n; i += FILL_BATCH) {
		if (journal_batch_begin(j, &e) < 0)
			die("batch_begin", &e);
		for (long k = i; k < n && k < i + FILL_BATCH; k++)
			one_op(j, b, 0);
		if (journal_batch_commit(j, &e) < 0)
			die("batch_commit", &e);
	}
}

struct timing {
	double durable, batched, list_all, running_list, old_list;
	double commits_durable, commits_batched;
};

static double time_list(struct journal *j, int all, int reps)
{
	double t[64];
	struct journal_err e;
	for (int r = 0; r < reps; r++) {
		struct journal_op *ops;
		size_t n;
		double t0 = now();
		if ((all ? journal_op_list(j, &ops, &n, &e) : journal_running_list(j, &ops, &n, &e)) < 0)
			die("listing", &e);
		t[r] = now() - t0;
		journal_ops_free(ops, n);
	}
	return median(t, reps);
}

static struct timing measure(struct journal *j, const struct bench *b)
{
	struct timing tm;
	double t[64];
	struct journal_err e;
	uint64_t c0 = journal_commit_count(j);
	for (int r = 0; r < b->reps; r++) {
		double t0 = now();
		one_op(j, b, 0);
		t[r] = now() - t0;
	}
	tm.commits_durable = (double)(journal_commit_count(j) - c0) / b->reps;
	tm.durable = median(t, b->reps);
	c0 = journal_commit_count(j);
	for (int r = 0; r < b->reps; r++) {
		double t0 = now();
		if (journal_batch_begin(j, &e) < 0)
			die("batch_begin", &e);
		one_op(j, b, 0);
		if (journal_batch_commit(j, &e) < 0)
			die("batch_commit", &e);
		t[r] = now() - t0;
	}
	tm.commits_batched = (double)(journal_commit_count(j) - c0) / b->reps;
	tm.batched = median(t, b->reps);
	/* the same op, but the read of what is running through the whole history, as before the index */
	for (int r = 0; r < b->reps; r++) {
		double t0 = now();
		if (journal_batch_begin(j, &e) < 0)
			die("batch_begin", &e);
		one_op(j, b, 1);
		if (journal_batch_commit(j, &e) < 0)
			die("batch_commit", &e);
		t[r] = now() - t0;
	}
	tm.list_all = median(t, b->reps);
	tm.running_list = time_list(j, 0, b->reps);
	tm.old_list = time_list(j, 1, b->reps < 5 ? b->reps : 5);
	return tm;
}

static void rm_journal(const char *dir)
{
	char p[300];
	const char *files[] = {"data.mdb", "lock.mdb"};
	for (int i = 0; i < 2; i++)
		if (snprintf(p, sizeof(p), "%s/%s", dir, files[i]) < (int)sizeof(p) && unlink(p) < 0)
			perror(p);
	if (rmdir(dir) < 0)
		perror(dir);
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && !strcmp(argv[1], "--quick");
	const char *base = argc > 1 + quick ? argv[1 + quick] : "/tmp";
	struct bench b;
	make_plan(b.plan);
	b.reps = quick ? 5 : 21;
	long sizes[] = {10, 1000, quick ? 10000 : 100000};
	struct timing tm[3];
	char dir[3][256];
	printf("journal: one more op (journal_running_list, op_begin, %d steps x INTENT+DONE, finish), median of %d;\n"
	       "the journal first filled with N finished ops (plan %zu bytes, %d steps each)\n\n",
	       NSTEPS, b.reps, strlen(b.plan), NSTEPS);
	printf("%8s %9s %12s %12s %11s %11s %13s %13s %9s\n", "N", "fill s", "durable ms", "batched ms", "commits",
	       "commits/b", "running_list", "op_list ms", "op+list");
	for (int i = 0; i < 3; i++) {
		snprintf(dir[i], sizeof(dir[i]), "%s/punix-bench-journal-XXXXXX", base);
		if (!mkdtemp(dir[i])) {
			perror("mkdtemp");
			return 1;
		}
		struct journal *j;
		struct journal_err e;
		if (journal_open(&j, dir[i], &e) < 0)
			die("open", &e);
		double t0 = now();
		fill(j, &b, sizes[i]);
		double tf = now() - t0;
		tm[i] = measure(j, &b);
		printf("%8ld %9.2f %12.3f %12.3f %11.1f %11.1f %10.1f us %13.3f %9.3f\n", sizes[i], tf,
		       1e3 * tm[i].durable, 1e3 * tm[i].batched, tm[i].commits_durable, tm[i].commits_batched,
		       1e6 * tm[i].running_list, 1e3 * tm[i].old_list, 1e3 * tm[i].list_all);
		fflush(stdout);
		journal_close(j);
	}
	printf("\n(durable: every write its own commit, as the engine writes; batched: the same op in one batch;\n"
	       " running_list: that call alone; op_list: journal_op_list alone, the whole history;\n"
	       " op+list: the batched op reading journal_op_list instead of journal_running_list, ms)\n\n");
	printf("ratio t(%ld)/t(10): durable %.2f, batched %.2f, running_list %.2f; "
	       "with journal_op_list instead: %.1f\n",
	       sizes[2], tm[2].durable / tm[0].durable, tm[2].batched / tm[0].batched,
	       tm[2].running_list / tm[0].running_list, tm[2].list_all / tm[0].list_all);
	printf("LMDB commits per op: %.0f without a batch, %.0f with one\n\n", tm[2].commits_durable,
	       tm[2].commits_batched);

	/* pruning the largest journal to 1,000 */
	struct journal *j;
	struct journal_err e;
	if (journal_open(&j, dir[2], &e) < 0)
		die("open", &e);
	size_t before, after, removed;
	if (journal_finished_count(j, &before, &e) < 0)
		die("count", &e);
	uint64_t c0 = journal_commit_count(j);
	double t0 = now();
	if (journal_prune(j, 1000, &removed, &e) < 0)
		die("prune", &e);
	double tp = now() - t0;
	if (journal_finished_count(j, &after, &e) < 0)
		die("count", &e);
	printf("journal_prune: %zu finished ops -> %zu: removed %zu in %.2f s (%.1f us/op, %llu commits)\n", before,
	       after, removed, tp, 1e6 * tp / (double)(removed ? removed : 1),
	       (unsigned long long)(journal_commit_count(j) - c0));
	c0 = journal_commit_count(j);
	t0 = now();
	if (journal_compact(j, &e) < 0)
		die("compact", &e);
	printf("journal_compact below its threshold: %.1f us, %llu commits\n", 1e6 * (now() - t0),
	       (unsigned long long)(journal_commit_count(j) - c0));
	journal_close(j);
	for (int i = 0; i < 3; i++)
		rm_journal(dir[i]);
	return 0;
}
