/*
 * bench.c - the benchmark harness. Not a test: it prints numbers.
 *
 *   bench PUNIX GEN check [--quick]  punix check on 10^3..10^5 modules
 *   bench PUNIX GEN noop [--quick]   a no-op punix build of 100..10^4 built packages
 *   bench PUNIX GEN hash             tree hashing, against sha256sum over the same bytes
 *
 * Every time is the median of several runs of a whole process (fork, exec,
 * wait4), so it includes start-up, as a user sees it. Each figure that can
 * be is a ratio to a baseline measured in the same run on the same files,
 * because this machine is shared and noisy; growth is reported as the
 * exponent k of time ~ size^k, fitted by least squares on log-log scales
 * (1.0 is linear).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *punix, *gen;
static char scratch[64];

struct sample {
	double secs;
	long rss_kb;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs argv with PUNIX_HOME=home (if set), output discarded. */
static struct sample run(char *const *argv, const char *home, int want_status)
{
	double t0 = now();
	pid_t pid = fork();
	if (pid == 0) {
		if (home)
			setenv("PUNIX_HOME", home, 1);
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	struct rusage ru;
	wait4(pid, &st, 0, &ru);
	struct sample s = {now() - t0, ru.ru_maxrss};
	if (!WIFEXITED(st) || WEXITSTATUS(st) != want_status) {
		fprintf(stderr, "bench: %s exited with %d\n", argv[0], WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		exit(1);
	}
	return s;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median seconds (and the largest RSS) over reps runs. */
static struct sample median(char *const *argv, const char *home, int reps)
{
	double t[32];
	long rss = 0;
	for (int i = 0; i < reps; i++) {
		struct sample s = run(argv, home, 0);
		t[i] = s.secs;
		if (s.rss_kb > rss)
			rss = s.rss_kb;
	}
	qsort(t, (size_t)reps, sizeof(t[0]), cmp_double);
	return (struct sample){t[reps / 2], rss};
}

static double fit_exponent(const double *n, const double *t, int k)
{
	double sx = 0, sy = 0, sxx = 0, sxy = 0;
	for (int i = 0; i < k; i++) {
		double x = log(n[i]), y = log(t[i]);
		sx += x, sy += y, sxx += x * x, sxy += x * y;
	}
	return (k * sxy - sx * sy) / (k * sxx - sx * sx);
}

static void shell(const char *cmd)
{
	if (system(cmd) != 0) {
		fprintf(stderr, "bench: failed: %s\n", cmd);
		exit(1);
	}
}

static double dir_bytes(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "du -sb %s | cut -f1", dir);
	FILE *f = popen(cmd, "r");
	double b = 0;
	if (fscanf(f, "%lf", &b) != 1)
		b = 0;
	pclose(f);
	return b;
}

static void verdict(double k)
{
	printf("growth exponent %.2f (%s)\n", k, k < 1.15 ? "linear" : k < 1.5 ? "slightly super-linear" : "SUPER-LINEAR");
}

static void bench_check(int quick)
{
	long sizes[] = {1000, 3000, 10000, 30000, 100000};
	int nsizes = quick ? 3 : 5, reps = quick ? 3 : 5;
	double ns[5], ts[5];
	printf("punix check: median of %d runs; baseline = cat of the same files\n\n", reps);
	printf("%9s %9s %10s %10s %8s %12s %10s %11s\n", "modules", "MB", "check s", "cat s", "ratio", "modules/s",
	       "MB/s", "RSS KB/mod");
	for (int i = 0; i < nsizes; i++) {
		char dir[128], cmd[512];
		snprintf(dir, sizeof(dir), "%s/check-%ld", scratch, sizes[i]);
		snprintf(cmd, sizeof(cmd), "%s check %ld %s", gen, sizes[i], dir);
		shell(cmd);
		double mb = dir_bytes(dir) / 1e6;
		char *check[] = {(char *)punix, "check", dir, NULL};
		snprintf(cmd, sizeof(cmd), "cat %s/*.pcl > /dev/null", dir);
		char *cat[] = {"sh", "-c", cmd, NULL};
		struct sample c = median(check, NULL, reps), b = median(cat, NULL, reps);
		ns[i] = (double)sizes[i];
		ts[i] = c.secs;
		printf("%9ld %9.1f %10.4f %10.4f %8.1f %12.0f %10.1f %11.2f\n", sizes[i], mb, c.secs, b.secs,
		       c.secs / b.secs, (double)sizes[i] / c.secs, mb / c.secs, (double)c.rss_kb / (double)sizes[i]);
	}
	printf("\n");
	for (int i = 1; i < nsizes; i++)
		printf("exponent %ld -> %ld: %.2f\n", sizes[i - 1], sizes[i], log(ts[i] / ts[i - 1]) / log(ns[i] / ns[i - 1]));
	verdict(fit_exponent(ns, ts, nsizes));
}

static void bench_noop(int quick)
{
	long sizes[] = {100, 300, 1000, 3000, 10000};
	int nsizes = quick ? 3 : 5, reps = quick ? 3 : 5;
	double ns[5], ts[5];
	printf("no-op punix build (every package already valid): median of %d runs\n", reps);
	printf("baseline = punix check of the same program (the part of a build that is not the store)\n\n");
	printf("%9s %10s %10s %8s %12s\n", "packages", "build s", "check s", "ratio", "ms/package");
	for (int i = 0; i < nsizes; i++) {
		char dir[128], home[128], cmd[512];
		snprintf(dir, sizeof(dir), "%s/noop-%ld", scratch, sizes[i]);
		snprintf(home, sizeof(home), "%s/home-%ld", scratch, sizes[i]);
		snprintf(cmd, sizeof(cmd), "%s build %ld %s", gen, sizes[i], dir);
		shell(cmd);
		char *build[] = {(char *)punix, "build", dir, NULL};
		char *check[] = {(char *)punix, "check", dir, NULL};
		run(build, home, 0); /* the real build, not timed */
		struct sample b = median(build, home, reps), c = median(check, home, reps);
		ns[i] = (double)sizes[i];
		ts[i] = b.secs;
		printf("%9ld %10.4f %10.4f %8.2f %12.3f\n", sizes[i], b.secs, c.secs, b.secs / c.secs,
		       1000 * b.secs / (double)sizes[i]);
	}
	printf("\n");
	verdict(fit_exponent(ns, ts, nsizes));
}

static void bench_hash(void)
{
	/* 64 MiB in 256 files of 256 KiB, plus a deep small tree */
	char src[128], cmd[1024];
	snprintf(src, sizeof(src), "%s/hash-src", scratch);
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s/src/big %s/src/small && for i in $(seq 1 256); do head -c 262144 /dev/urandom > "
		 "%s/src/big/f$i; done && for i in $(seq 1 2000); do echo $i > %s/src/small/s$i; done",
		 src, src, src, src);
	shell(cmd);
	char prog[256];
	snprintf(prog, sizeof(prog), "%s/p.pcl", src);
	FILE *f = fopen(prog, "w");
	fputs("module Src { pname = \"src\" version = \"1\" recipe = \"std.shell\" "
	      "recipeArgs = { command = \"true\" } source = { type = \"local\" path = \"./src\" } }\n",
	      f);
	fclose(f);
	char home[128];
	snprintf(home, sizeof(home), "%s/hash-home", scratch);
	char *path[] = {(char *)punix, "store", "path", prog, "Src", NULL};
	snprintf(cmd, sizeof(cmd), "find %s/src -type f -print0 | xargs -0 sha256sum > /dev/null", src);
	char *sha[] = {"sh", "-c", cmd, NULL};
	struct sample a = median(path, home, 5), b = median(sha, NULL, 5);
	double mb = dir_bytes(src) / 1e6;
	printf("source tree hashing: %.1f MB in 2256 files (punix store path = check + tree hash)\n\n", mb);
	printf("%-26s %8.3f s %8.1f MB/s\n", "punix store path", a.secs, mb / a.secs);
	printf("%-26s %8.3f s %8.1f MB/s\n", "sha256sum (same files)", b.secs, mb / b.secs);
	printf("ratio punix / sha256sum: %.2f\n", a.secs / b.secs);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: bench PUNIX GEN check|noop|hash [--quick]\n");
		return 2;
	}
	punix = argv[1];
	gen = argv[2];
	int quick = argc > 4 && !strcmp(argv[4], "--quick");
	strcpy(scratch, "/tmp/punix-bench-XXXXXX");
	if (!mkdtemp(scratch)) {
		perror("mkdtemp");
		return 1;
	}
	if (!strcmp(argv[3], "check"))
		bench_check(quick);
	else if (!strcmp(argv[3], "noop"))
		bench_noop(quick);
	else if (!strcmp(argv[3], "hash"))
		bench_hash();
	else
		fprintf(stderr, "bench: unknown experiment %s\n", argv[3]);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "chmod -R u+w %s; rm -rf %s", scratch, scratch);
	return system(cmd) == 0 ? 0 : 1;
}
