/*
 * bench_util.c - running and timing whole processes; see bench_util.h.
 */
#include "bench_util.h"

#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct sample run(char *const *argv, const char *home, int want_status)
{
	/* standard error kept aside, to say why when a run does not end as it should */
	char errpath[] = "/tmp/punix-bench-err-XXXXXX";
	int efd = mkstemp(errpath);
	double t0 = now();
	pid_t pid = fork();
	if (pid == 0) {
		if (home)
			setenv("PUNIX_HOME", home, 1);
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(efd >= 0 ? efd : fd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	struct rusage ru;
	wait4(pid, &st, 0, &ru);
	struct sample s = {now() - t0, ru.ru_maxrss};
	if (!WIFEXITED(st) || WEXITSTATUS(st) != want_status) {
		fprintf(stderr, "bench: %s exited with %d:", argv[0], WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		for (int i = 1; argv[i]; i++)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, "\n");
		char buf[4096];
		ssize_t n;
		lseek(efd, 0, SEEK_SET);
		while (efd >= 0 && (n = read(efd, buf, sizeof(buf))) > 0)
			fwrite(buf, 1, (size_t)n, stderr);
		unlink(errpath);
		exit(1);
	}
	if (efd >= 0) {
		close(efd);
		unlink(errpath);
	}
	return s;
}

int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double median_of(double *t, int n)
{
	qsort(t, (size_t)n, sizeof(t[0]), cmp_double);
	return t[n / 2];
}

struct sample median(char *const *argv, const char *home, int reps)
{
	double t[32];
	long rss = 0;
	for (int i = 0; i < reps; i++) {
		struct sample s = run(argv, home, 0);
		t[i] = s.secs;
		if (s.rss_kb > rss)
			rss = s.rss_kb;
	}
	return (struct sample){median_of(t, reps), rss};
}

double alternate(char *const *a, char *const *b, const char *home, int reps)
{
	double t[64];
	for (int i = 0; i < reps; i++) {
		t[i] = run(a, home, 0).secs;
		run(b, home, 0);
	}
	return median_of(t, reps);
}

double fit_exponent(const double *n, const double *t, int k)
{
	double sx = 0, sy = 0, sxx = 0, sxy = 0;
	for (int i = 0; i < k; i++) {
		double x = log(n[i]), y = log(t[i]);
		sx += x, sy += y, sxx += x * x, sxy += x * y;
	}
	return (k * sxy - sx * sy) / (k * sxx - sx * sx);
}

void verdict(double k)
{
	printf("growth exponent %.2f (%s)\n", k, k < 1.15 ? "linear" : k < 1.5 ? "slightly super-linear" : "SUPER-LINEAR");
}

void shell(const char *cmd)
{
	if (system(cmd) != 0) {
		fprintf(stderr, "bench: failed: %s\n", cmd);
		exit(1);
	}
}

void shellf(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	shell(cmd);
}

FILE *create(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	return f;
}
