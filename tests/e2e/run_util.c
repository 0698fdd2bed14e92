/*
 * run_util.c - running the real punix binary for the end-to-end tests, and
 * their scratch directories (see run_util.h).
 *
 * The runner reads standard output and standard error together (poll), so
 * a child that fills one pipe while we wait on the other cannot deadlock
 * us, and keeps every byte. A deadline bounds every run: a punix that hangs
 * (on a FIFO, say) is killed and reported, and the test fails instead of
 * the suite stalling.
 */
#include "run_util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define RUN_MAX_ARGS 64

/* ---- growable buffers ---------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_append(struct buf *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (b->len + n + 1 > cap)
			cap *= 2;
		b->p = realloc(b->p, cap);
		cr_assert_not_null(b->p);
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Hands over the bytes, NUL-terminated even when there were none. */
static char *buf_take(struct buf *b, size_t *len)
{
	buf_append(b, "", 0);
	*len = b->len;
	return b->p;
}

/* ---- running punix --------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The child's environment: ours, except that a child dropping privileges
 * runs without LeakSanitizer (it cannot inspect a process whose identity
 * changed, and would fail the run). Built before fork: the child only
 * calls async-signal-safe functions.
 */
static char **child_env(bool dropping, char **asan_owned)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	cr_assert_not_null(env);
	size_t m = 0;
	const char *asan = NULL;
	for (size_t i = 0; i < n; i++) {
		if (dropping && strncmp(environ[i], "ASAN_OPTIONS=", 13) == 0) {
			asan = environ[i] + 13;
			continue;
		}
		env[m++] = environ[i];
	}
	*asan_owned = NULL;
	if (dropping) {
		size_t len = strlen("ASAN_OPTIONS=detect_leaks=0") + (asan ? strlen(asan) + 1 : 0) + 1;
		char *s = malloc(len);
		cr_assert_not_null(s);
		snprintf(s, len, "ASAN_OPTIONS=%s%sdetect_leaks=0", asan ? asan : "", asan && *asan ? ":" : "");
		env[m++] = s;
		*asan_owned = s;
	}
	env[m] = NULL;
	return env;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void child(const struct run_opts *o, int out_fd, int err_fd, char *const *argv, char *const *env)
{
	int null_fd = open("/dev/null", O_RDONLY);
	if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		_exit(126);
	if (o->cwd && chdir(o->cwd) < 0)
		_exit(126);
	if (o->uid != RUN_SAME_UID && geteuid() == 0) {
		gid_t gid = (gid_t)o->uid;
		if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(o->uid) < 0)
			_exit(126);
	}
	execve(PUNIX_BIN, argv, env);
	_exit(127);
}

struct run_result run_punix(const struct run_opts *opts, const char *const *args)
{
	static const struct run_opts defaults = RUN_OPTS_DEFAULT;
	const struct run_opts *o = opts ? opts : &defaults;
	int timeout_s = o->timeout_s > 0 ? o->timeout_s : RUN_DEFAULT_TIMEOUT_S;

	size_t n = 0;
	while (args[n])
		n++;
	const char **argv = calloc(n + 2, sizeof(*argv));
	cr_assert_not_null(argv);
	argv[0] = PUNIX_BIN;
	memcpy(argv + 1, args, n * sizeof(*argv));
	char *asan_owned;
	char **env = child_env(o->uid != RUN_SAME_UID && geteuid() == 0, &asan_owned);

	int po[2], pe[2];
	cr_assert_eq(pipe2(po, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(pe, O_CLOEXEC), 0);
	double start = now();
	pid_t pid = fork();
	cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
	if (pid == 0)
		child(o, po[1], pe[1], (char *const *)argv, env);
	close(po[1]);
	close(pe[1]);
	free(argv);
	free(env);
	free(asan_owned);

	struct buf bufs[2] = {{0}, {0}};
	struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
	double deadline = start + timeout_s;
	bool timed_out = false;
	int open_fds = 2, st = 0;
	bool reaped = false;
	while (!reaped) {
		double left = deadline - now();
		if (left <= 0) {
			kill(pid, SIGKILL);
			timed_out = true;
			break;
		}
		if (open_fds > 0) {
			/* wake now and then: the deadline holds even if nothing is written */
			int ms = left > 0.1 ? 100 : (int)(left * 1000) + 1;
			int r = poll(fds, 2, ms);
			cr_assert(r >= 0 || errno == EINTR, "poll: %s", strerror(errno));
			for (int i = 0; i < 2 && r > 0; i++) {
				if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
					continue;
				char chunk[65536];
				ssize_t got = read(fds[i].fd, chunk, sizeof(chunk));
				if (got > 0) {
					buf_append(&bufs[i], chunk, (size_t)got);
				} else if (got == 0 || errno != EINTR) {
					close(fds[i].fd);
					fds[i].fd = -1;
					open_fds--;
				}
			}
			continue;
		}
		/* both outputs closed: the child is exiting (or closed them and lingers) */
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid) {
			reaped = true;
		} else {
			cr_assert(w == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
			nanosleep(&(struct timespec){0, 2 * 1000 * 1000}, NULL);
		}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	if (!reaped)
		while (waitpid(pid, &st, 0) < 0)
			cr_assert_eq(errno, EINTR);

	struct run_result r = {0};
	r.timed_out = timed_out;
	r.seconds = now() - start;
	if (WIFEXITED(st))
		r.status = WEXITSTATUS(st) == 127 || WEXITSTATUS(st) == 126 ? -1 : WEXITSTATUS(st);
	else
		r.status = 128 + WTERMSIG(st);
	r.out = buf_take(&bufs[0], &r.out_len);
	r.err = buf_take(&bufs[1], &r.err_len);
	cr_assert_neq(r.status, -1, "could not run %s (exec or setup failed in the child)", PUNIX_BIN);
	return r;
}

static struct run_result run_va(const struct run_opts *opts, const char *arg, va_list ap)
{
	const char *args[RUN_MAX_ARGS + 1];
	size_t n = 0;
	for (const char *a = arg; a; a = va_arg(ap, const char *)) {
		cr_assert_lt(n, RUN_MAX_ARGS, "too many arguments for run_punix_args");
		args[n++] = a;
	}
	args[n] = NULL;
	return run_punix(opts, args);
}

struct run_result run_punix_args(const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	struct run_result r = run_va(NULL, arg, ap);
	va_end(ap);
	return r;
}

struct run_result run_punix_in(const struct run_opts *opts, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	struct run_result r = run_va(opts, arg, ap);
	va_end(ap);
	return r;
}

void run_result_free(struct run_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

bool run_crashed(const struct run_result *r)
{
	return r->status >= 128 || strstr(r->err, "AddressSanitizer") || strstr(r->err, "LeakSanitizer") ||
	       strstr(r->err, "runtime error:");
}

size_t count_substr(const char *haystack, const char *needle)
{
	size_t n = 0, len = strlen(needle);
	for (const char *p = haystack; len && (p = strstr(p, needle)); p += len)
		n++;
	return n;
}

/* ---- scratch directories and files ---------------------------------------- */

void tmpdir_make(struct tmpdir *t)
{
	strcpy(t->path, "/tmp/punix-e2e-XXXXXX");
	cr_assert_not_null(mkdtemp(t->path), "mkdtemp: %s", strerror(errno));
	/* other users (the unprivileged runs) must be able to reach what is inside */
	cr_assert_eq(chmod(t->path, 0755), 0);
}

/* Removes name in directory at and everything under it, never following links. */
static void remove_at(int at, const char *name)
{
	struct stat st;
	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlinkat(at, name, 0);
		return;
	}
	fchmodat(at, name, 0700, 0);
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		DIR *d = fdopendir(fd);
		if (d) {
			struct dirent *e;
			while ((e = readdir(d)))
				if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
					remove_at(dirfd(d), e->d_name);
			closedir(d);
		} else {
			close(fd);
		}
	}
	unlinkat(at, name, AT_REMOVEDIR);
}

void tmpdir_remove(struct tmpdir *t)
{
	if (t->path[0])
		remove_at(AT_FDCWD, t->path);
	t->path[0] = '\0';
}

char *tmpdir_at(const struct tmpdir *t, const char *rel)
{
	size_t len = strlen(t->path) + 1 + strlen(rel) + 1;
	char *s = malloc(len);
	cr_assert_not_null(s);
	snprintf(s, len, "%s/%s", t->path, rel);
	return s;
}

static void mkdir_p(const char *path)
{
	char *p = strdup(path);
	cr_assert_not_null(p);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		cr_assert(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", p, strerror(errno));
		*s = '/';
	}
	cr_assert(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", p, strerror(errno));
	free(p);
}

void write_file(const char *path, const void *data, size_t len)
{
	char *dir = strdup(path);
	cr_assert_not_null(dir);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		mkdir_p(dir);
	}
	free(dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		cr_assert_gt(n, 0, "write %s: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	cr_assert_eq(close(fd), 0);
}

void tmpdir_write(const struct tmpdir *t, const char *rel, const char *text)
{
	char *path = tmpdir_at(t, rel);
	write_file(path, text, strlen(text));
	free(path);
}

void tmpdir_mkdir(const struct tmpdir *t, const char *rel)
{
	char *path = tmpdir_at(t, rel);
	mkdir_p(path);
	free(path);
}
