/*
 * ops_stream.c - the local table's command streams (ops.h: stream_open):
 * /bin/sh -c LINE with its standard input and output on one end of a
 * socket pair. Host mode runs `punix host serve` this way on a machine
 * it reaches without SSH (and the tests drive the protocol through it).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ops.h"
#include "ops_local_internal.h"
#include "xalloc.h"

struct ops_stream {
	int fd;
	pid_t pid;
};

int local_stream_open(struct punix_ops *o, const char *line, struct ops_stream **out)
{
	(void)o;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(sv[0]);
		close(sv[1]);
		return e;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		/* standard error is not the stream's (ops.h): a line that wants it there says so */
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null < 0 || dup2(sv[1], 0) < 0 || dup2(sv[1], 1) < 0 || dup2(null, 2) < 0)
			_exit(127);
		execl("/bin/sh", "sh", "-c", line, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	struct ops_stream *s = xcalloc(1, sizeof(*s));
	s->fd = sv[0];
	s->pid = pid;
	*out = s;
	return 0;
}

ssize_t local_stream_read(struct punix_ops *o, struct ops_stream *s, void *buf, size_t n)
{
	(void)o;
	for (;;) {
		ssize_t r = read(s->fd, buf, n);
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return -errno;
	}
}

ssize_t local_stream_write(struct punix_ops *o, struct ops_stream *s, const void *buf, size_t n)
{
	(void)o;
	for (;;) {
		ssize_t r = send(s->fd, buf, n, MSG_NOSIGNAL);
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return -errno;
	}
}

int local_stream_close(struct punix_ops *o, struct ops_stream *s, int *status)
{
	(void)o;
	close(s->fd);
	int st = 0, r = 0;
	while (waitpid(s->pid, &st, 0) < 0)
		if (errno != EINTR) {
			r = -errno;
			break;
		}
	if (r == 0 && status)
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	free(s);
	return r;
}
