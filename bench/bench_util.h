/*
 * bench_util.h - what every process-timing harness here shares: running a
 * whole process (fork, exec, wait4) and timing it, medians, and fitting the
 * growth exponent, and small shell and file helpers. Used by bench.c,
 * bench_engine.c and bench_ssh.c.
 */
#ifndef PUNIX_BENCH_UTIL_H
#define PUNIX_BENCH_UTIL_H

#include <stdio.h>

struct sample {
	double secs;
	long rss_kb;
};

/* CLOCK_MONOTONIC, in seconds. */
double now(void);
/*
 * Runs argv with PUNIX_HOME=home (if set), output discarded, and exits the
 * harness if it does not exit with want_status: a number measured on a
 * command that failed would be a wrong number.
 */
struct sample run(char *const *argv, const char *home, int want_status);
int cmp_double(const void *a, const void *b);
/* The median of t[0..n) (sorts t). */
double median_of(double *t, int n);
/* Median seconds (and the largest RSS) over reps (at most 32) runs of argv. */
struct sample median(char *const *argv, const char *home, int reps);
/* Runs a and b alternately reps (at most 64) times; the median of the a runs. */
double alternate(char *const *a, char *const *b, const char *home, int reps);
/* k of t ~ n^k, by least squares on log-log scales. */
double fit_exponent(const double *n, const double *t, int k);
/* Prints the exponent and what it means. */
void verdict(double k);
/* system(cmd), and the harness exits if it fails. */
void shell(const char *cmd);
/* shell() of a formatted command (at most 4 KiB). */
__attribute__((format(printf, 1, 2))) void shellf(const char *fmt, ...);
/* fopen(path, "w"), or exit naming it. */
FILE *create(const char *path);

#endif
