/*
 * run_util.h - what the end-to-end tests need to drive the real punix
 * binary as a user would: run it with arguments (optionally in another
 * working directory, optionally as an unprivileged user), capture all of
 * its standard output and standard error and its exit status, never wait
 * on it forever; and scratch directories and files to run it on.
 */
#ifndef PUNIX_E2E_RUN_UTIL_H
#define PUNIX_E2E_RUN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* run_opts.uid when the child keeps our identity. */
#define RUN_SAME_UID ((uid_t)-1)
/* The uid (and gid) of "nobody", for tests that need permissions to bite. */
#define RUN_NOBODY ((uid_t)65534)
/* run_opts.timeout_s when none is given. */
#define RUN_DEFAULT_TIMEOUT_S 20

struct run_opts {
	const char *cwd; /* directory to run in; NULL: ours */
	uid_t uid;       /* RUN_SAME_UID, or a uid to drop to (gid too) when we are root */
	int timeout_s;   /* killed after this long; 0: RUN_DEFAULT_TIMEOUT_S */
};

#define RUN_OPTS_DEFAULT {NULL, RUN_SAME_UID, 0}

struct run_result {
	int status;     /* exit code, 128+signal if killed by one, -1 if it could not be run */
	bool timed_out; /* killed by us at the deadline (status is then 128+SIGKILL) */
	double seconds; /* wall-clock time from start to exit */
	char *out;      /* all of standard output, NUL-terminated */
	size_t out_len; /* its length (the output may itself hold NUL bytes) */
	char *err;      /* all of standard error, NUL-terminated */
	size_t err_len;
};

/*
 * Runs PUNIX_BIN with args (NULL-terminated, without the program name) and
 * waits for it. Standard input is /dev/null. opts may be NULL.
 */
struct run_result run_punix(const struct run_opts *opts, const char *const *args);
/* run_punix(NULL, ...) with the arguments listed inline, NULL-terminated. */
struct run_result run_punix_args(const char *arg, ...) __attribute__((sentinel));
/* run_punix with opts and the arguments listed inline, NULL-terminated. */
struct run_result run_punix_in(const struct run_opts *opts, const char *arg, ...) __attribute__((sentinel));
void run_result_free(struct run_result *r);

/*
 * Did the run end in a crash rather than an exit of punix's own: killed by
 * a signal, or a sanitizer's report on standard error (sanitizers exit 1,
 * like an ordinary error).
 */
bool run_crashed(const struct run_result *r);

/* Occurrences of needle in haystack (not overlapping). */
size_t count_substr(const char *haystack, const char *needle);

/* A fresh directory under /tmp (mode 0755), removed with all it holds. */
struct tmpdir {
	char path[64];
};

void tmpdir_make(struct tmpdir *t);
/*
 * Removes the directory and everything under it: symbolic links are removed,
 * never followed; unreadable directories are made readable first.
 */
void tmpdir_remove(struct tmpdir *t);
/* "<dir>/<rel>", malloc'd. */
char *tmpdir_at(const struct tmpdir *t, const char *rel);

/* Writes len bytes to path (mode 0644), creating missing parent directories. */
void write_file(const char *path, const void *data, size_t len);
/* write_file of the string text to <dir>/<rel>. */
void tmpdir_write(const struct tmpdir *t, const char *rel, const char *text);
/* Creates <dir>/<rel> and missing parents, mode 0755. */
void tmpdir_mkdir(const struct tmpdir *t, const char *rel);

#endif
