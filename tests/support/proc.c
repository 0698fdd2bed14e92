/*
 * proc.c - see proc.h.
 */
#include "proc.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/ops.h"
#include "base/sbuf.h"

void tdir_make(struct tdir *t)
{
	strcpy(t->path, "/tmp/punix-test-XXXXXX");
	cr_assert_not_null(mkdtemp(t->path));
	/* searchable by others: as root, punix builds as an unprivileged user */
	cr_assert_eq(chmod(t->path, 0755), 0);
}

void tdir_free(struct tdir *t)
{
	ops_remove_tree(ops_local(), t->path);
}

char *tdir_at(const struct tdir *t, const char *rel)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s", t->path, rel);
	return sbuf_detach(&sb, NULL);
}

void tdir_write(const struct tdir *t, const char *rel, const char *text)
{
	char *path = tdir_at(t, rel);
	char *dir = ops_dirname(path);
	cr_assert_eq(ops_mkdir_p(ops_local(), dir, 0755), 0, "mkdir %s", dir);
	cr_assert_eq(ops_write_atomic(ops_local(), path, text, strlen(text), 0644), 0, "write %s", path);
	free(dir);
	free(path);
}

char *tdir_read(const struct tdir *t, const char *rel)
{
	char *path = tdir_at(t, rel), *buf = NULL;
	size_t len;
	if (ops_local()->read_file(ops_local(), path, 64 << 20, &buf, &len) < 0)
		buf = NULL;
	free(path);
	return buf;
}

static void exec_punix(const char *home, const char *const *args)
{
	if (home)
		setenv("PUNIX_HOME", home, 1);
	unsetenv("PUNIX_STORE_DIR");
	size_t n = 0;
	while (args[n])
		n++;
	const char **argv = calloc(n + 2, sizeof(*argv));
	argv[0] = PUNIX_BIN;
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = args[i];
	execv(PUNIX_BIN, (char *const *)argv);
	_exit(127);
}

pid_t punix_start(const char *home, const char *const *args, const char *out_path)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		exec_punix(home, args);
	}
	return pid;
}

int punix_wait(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		cr_assert_eq(errno, EINTR);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct proc_result punix_run(const char *home, const char *const *args)
{
	int po[2], pe[2];
	cr_assert_eq(pipe(po), 0);
	cr_assert_eq(pipe(pe), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		close(po[1]);
		close(pe[1]);
		exec_punix(home, args);
	}
	close(po[1]);
	close(pe[1]);
	struct sbuf out = SBUF_INIT, err = SBUF_INIT;
	struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
	struct sbuf *bufs[2] = {&out, &err};
	int open_fds = 2;
	double deadline = now() + 120;
	bool killed = false;
	while (open_fds > 0) {
		int timeout = (int)((deadline - now()) * 1000);
		if (timeout <= 0) {
			kill(pid, SIGKILL);
			killed = true;
			break;
		}
		if (poll(fds, 2, timeout) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
				continue;
			char buf[65536];
			ssize_t n = read(fds[i].fd, buf, sizeof(buf));
			if (n > 0) {
				sbuf_append(bufs[i], buf, (size_t)n);
			} else {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_fds--;
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	struct proc_result r;
	r.status = punix_wait(pid);
	if (killed)
		r.status = 128 + SIGKILL;
	sbuf_append(&out, "", 0);
	sbuf_append(&err, "", 0);
	r.out = sbuf_detach(&out, NULL);
	r.err = sbuf_detach(&err, NULL);
	return r;
}

void proc_result_free(struct proc_result *r)
{
	free(r->out);
	free(r->err);
}

pid_t test_server_start(const char *const *argv, int *port)
{
	const char *a[16] = {"python3"};
	size_t n = 1;
	for (; argv[n - 1] && n < 15; n++)
		a[n] = argv[n - 1];
	a[n] = NULL;
	int fd[2];
	cr_assert_eq(pipe(fd), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execvp("python3", (char *const *)a);
		_exit(127);
	}
	close(fd[1]);
	FILE *f = fdopen(fd[0], "r");
	cr_assert_eq(fscanf(f, "%d", port), 1, "the test server %s did not start", argv[0]);
	fclose(f);
	return pid;
}

void test_server_stop(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
		*pid = -1;
	}
}
