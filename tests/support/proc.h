/*
 * proc.h - test support: a scratch directory per test and running the real
 * punix binary in it, with its output captured.
 */
#ifndef PUNIX_TEST_PROC_H
#define PUNIX_TEST_PROC_H

#include <stddef.h>
#include <sys/types.h>

/*
 * A fresh directory under /tmp, mode 0755 (as root, punix builds as another
 * user, who must reach the store); removed (read-only parts too) by tdir_free.
 */
struct tdir {
	char path[64];
};

void tdir_make(struct tdir *t);
void tdir_free(struct tdir *t);
/* "<dir>/<rel>", malloc'd. */
char *tdir_at(const struct tdir *t, const char *rel);
/* Writes rel (creating parent directories) with mode 0644. */
void tdir_write(const struct tdir *t, const char *rel, const char *text);
/* Reads rel whole, malloc'd, or NULL if it cannot be read. */
char *tdir_read(const struct tdir *t, const char *rel);

struct proc_result {
	int status;   /* exit code, or 128+signal */
	char *out;    /* standard output, malloc'd */
	char *err;    /* standard error, malloc'd */
};

/*
 * Runs punix with args (NULL-terminated) and PUNIX_HOME=home (when not
 * NULL), waits, and captures both outputs. A run longer than 120 s is
 * killed and reported as status 128+9.
 */
struct proc_result punix_run(const char *home, const char *const *args);
void proc_result_free(struct proc_result *r);

/* Starts punix without waiting; output goes to the file out_path. */
pid_t punix_start(const char *home, const char *const *args, const char *out_path);
/* Waits for a started punix; returns its exit code or 128+signal. */
int punix_wait(pid_t pid);

/*
 * Starts a test server: `python3 argv[0] argv[1] ...` (argv
 * NULL-terminated), which must print the port it listens on as its first
 * line; *port gets it (the test fails if it does not come). Its pid, for
 * test_server_stop, which ends it (and sets *pid to -1; nothing if <= 0).
 */
pid_t test_server_start(const char *const *argv, int *port);
void test_server_stop(pid_t *pid);

#endif
