/*
 * ops_local.c - the effect seam over the local machine (see ops.h).
 *
 * Thin wrappers over the system calls, translating errors to -errno. Every
 * descriptor is opened close-on-exec so a build never inherits one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "ops.h"
#include "ops_local_internal.h"
#include "vec.h"
#include "xalloc.h"

enum ops_ftype local_ftype(mode_t m)
{
	if (S_ISREG(m))
		return OPS_FT_REG;
	if (S_ISDIR(m))
		return OPS_FT_DIR;
	if (S_ISLNK(m))
		return OPS_FT_LINK;
	return OPS_FT_OTHER;
}

void local_fill_stat(const struct stat *st, struct ops_stat *out)
{
	out->type = local_ftype(st->st_mode);
	out->size = (uint64_t)st->st_size;
	out->dev = (uint64_t)st->st_dev;
	out->ino = (uint64_t)st->st_ino;
	out->mode = (uint32_t)(st->st_mode & 07777);
	out->nlink = (uint32_t)st->st_nlink;
	out->uid = (int64_t)st->st_uid;
}

static int local_stat(struct punix_ops *o, const char *path, int follow, struct ops_stat *out)
{
	(void)o;
	struct stat st;
	if ((follow ? stat(path, &st) : lstat(path, &st)) < 0)
		return -errno;
	local_fill_stat(&st, out);
	return 0;
}

int local_open_flags(int flags)
{
	int f = O_CLOEXEC;
	f |= (flags & OPS_O_WRONLY) ? O_WRONLY : O_RDONLY;
	if (flags & OPS_O_CREAT)
		f |= O_CREAT;
	if (flags & OPS_O_EXCL)
		f |= O_EXCL;
	if (flags & OPS_O_TRUNC)
		f |= O_TRUNC;
	if (flags & OPS_O_DIRECTORY)
		f |= O_DIRECTORY;
	if (flags & OPS_O_NOFOLLOW)
		f |= O_NOFOLLOW;
	if (flags & OPS_O_APPEND)
		f |= O_APPEND;
	return f;
}

static int local_open(struct punix_ops *o, const char *path, int flags, uint32_t mode, int *h)
{
	(void)o;
	int fd = open(path, local_open_flags(flags) | O_NOCTTY, (mode_t)mode);
	if (fd < 0)
		return -errno;
	*h = fd;
	return 0;
}

static ssize_t local_read(struct punix_ops *o, int h, void *buf, size_t n)
{
	(void)o;
	for (;;) {
		ssize_t r = read(h, buf, n);
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return -errno;
	}
}

static ssize_t local_write(struct punix_ops *o, int h, const void *buf, size_t n)
{
	(void)o;
	for (;;) {
		ssize_t r = write(h, buf, n);
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return -errno;
	}
}

static int local_fsync(struct punix_ops *o, int h)
{
	(void)o;
	return fsync(h) < 0 ? -errno : 0;
}

static int local_close(struct punix_ops *o, int h)
{
	(void)o;
	/* Linux closes the descriptor even when close(2) fails: never retry. */
	return close(h) < 0 && errno != EINTR ? -errno : 0;
}

static int local_read_file(struct punix_ops *o, const char *path, size_t max, char **bufp, size_t *lenp)
{
	(void)o;
	/* O_NONBLOCK: opening a FIFO must not hang; it is rejected below. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	return local_read_fd(fd, max, bufp, lenp);
}

int local_read_fd(int fd, size_t max, char **bufp, size_t *lenp)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	size_t cap = (size_t)st.st_size + 1, len = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			/* The file grew while we read it; keep the limit. */
			if (cap > max + 1) {
				free(buf);
				close(fd);
				return -EFBIG;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			free(buf);
			close(fd);
			return e;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int local_list_dir(struct punix_ops *o, const char *path, char ***namesp, size_t *np)
{
	(void)o;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return local_list_fd(fd, namesp, np);
}

int local_list_fd(int fd, char ***namesp, size_t *np)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = -errno;
		close(fd);
		return e;
	}
	VEC(char *) names = {0};
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		VEC_PUSH(&names, xstrdup(e->d_name));
	}
	int err = errno;
	closedir(d);
	if (err) {
		ops_free_names(names.v, names.n);
		return -err;
	}
	if (names.n > 1)
		qsort(names.v, names.n, sizeof(names.v[0]), name_cmp);
	*namesp = names.v;
	*np = names.n;
	return 0;
}

void ops_free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int local_mkdir(struct punix_ops *o, const char *path, uint32_t mode)
{
	(void)o;
	return mkdir(path, (mode_t)mode) < 0 ? -errno : 0;
}

static int local_rename(struct punix_ops *o, const char *from, const char *to)
{
	(void)o;
	return rename(from, to) < 0 ? -errno : 0;
}

static int local_unlink(struct punix_ops *o, const char *path)
{
	(void)o;
	return unlink(path) < 0 ? -errno : 0;
}

static int local_rmdir(struct punix_ops *o, const char *path)
{
	(void)o;
	return rmdir(path) < 0 ? -errno : 0;
}

static int local_symlink(struct punix_ops *o, const char *target, const char *path)
{
	(void)o;
	return symlink(target, path) < 0 ? -errno : 0;
}

static int local_readlink(struct punix_ops *o, const char *path, char **target)
{
	(void)o;
	return local_readlinkat(AT_FDCWD, path, target);
}

int local_readlinkat(int dfd, const char *path, char **target)
{
	size_t cap = 256;
	for (;;) {
		char *buf = xmalloc(cap);
		ssize_t n = readlinkat(dfd, path, buf, cap);
		if (n < 0) {
			int e = -errno;
			free(buf);
			return e;
		}
		if ((size_t)n < cap) {
			buf[n] = '\0';
			*target = buf;
			return 0;
		}
		free(buf);
		cap *= 2;
	}
}

static int local_chmod(struct punix_ops *o, const char *path, uint32_t mode)
{
	(void)o;
	return chmod(path, (mode_t)mode) < 0 ? -errno : 0;
}

static int local_fchmod(struct punix_ops *o, int h, uint32_t mode)
{
	(void)o;
	return fchmod(h, (mode_t)mode) < 0 ? -errno : 0;
}

int local_user_ids(const char *user, uid_t *uid, gid_t *gid)
{
	long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t size = hint > 0 ? (size_t)hint : 16384;
	for (;;) {
		char *buf = xmalloc(size);
		struct passwd pw, *res = NULL;
		int e = getpwnam_r(user, &pw, buf, size, &res);
		if (e == 0 && res) {
			*uid = pw.pw_uid;
			*gid = pw.pw_gid;
		}
		free(buf);
		if (e == ERANGE && size < (1u << 20)) {
			size *= 4;
			continue;
		}
		if (e == EINTR)
			continue;
		return e ? -e : res ? 0 : -ENOENT;
	}
}

static int local_chown_user(struct punix_ops *o, const char *path, const char *user)
{
	(void)o;
	uid_t uid;
	gid_t gid;
	int r = local_user_ids(user, &uid, &gid);
	if (r < 0)
		return r;
	return chown(path, uid, gid) < 0 ? -errno : 0;
}

static int local_realpath(struct punix_ops *o, const char *path, char **out)
{
	(void)o;
	char *r = realpath(path, NULL);
	if (!r)
		return -errno;
	*out = r;
	return 0;
}

static int local_fsync_path(struct punix_ops *o, const char *path)
{
	(void)o;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int local_lock(struct punix_ops *o, const char *path, int exclusive, int wait, int *h)
{
	(void)o;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	return local_flock(fd, exclusive, wait, h);
}

int local_flock(int fd, int exclusive, int wait, int *h)
{
	int how = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
	while (flock(fd, how) < 0) {
		if (errno == EINTR)
			continue;
		int e = -errno;
		close(fd);
		return e;
	}
	*h = fd;
	return 0;
}

static int local_unlock(struct punix_ops *o, int h)
{
	(void)o;
	return close(h) < 0 ? -errno : 0;
}

static int local_run(struct punix_ops *o, const struct ops_cmd *cmd, int *status)
{
	(void)o;
	int logfd = open(cmd->log_path ? cmd->log_path : "/dev/null",
			 O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
	if (logfd < 0)
		return -errno;
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nullfd < 0) {
		int e = -errno;
		close(logfd);
		return e;
	}
	/* The child reports a failed exec through this pipe. */
	int errpipe[2];
	if (pipe2(errpipe, O_CLOEXEC) < 0) {
		int e = -errno;
		close(logfd);
		close(nullfd);
		return e;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(logfd);
		close(nullfd);
		close(errpipe[0]);
		close(errpipe[1]);
		return e;
	}
	if (pid == 0) {
		int err;
		/*
		 * A command never outlives punix: if punix is killed mid-build,
		 * the build must not go on writing into a directory that recovery
		 * is about to remove. (Its own children are its business.)
		 */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (cmd->new_session)
			setsid();
		signal(SIGPIPE, SIG_DFL);
		if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
			goto fail;
		if (cmd->has_ids) {
			if (setgroups(0, NULL) < 0 || setgid(cmd->gid) < 0 || setuid(cmd->uid) < 0)
				goto fail;
			/* A change of identity clears the parent-death signal: arm it again. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(127);
		}
		/* After the change of identity: the directory is entered with its rights. */
		if (cmd->cwd && chdir(cmd->cwd) < 0)
			goto fail;
		execve(cmd->argv[0], (char *const *)cmd->argv, (char *const *)cmd->env);
	fail:
		err = errno;
		if (write(errpipe[1], &err, sizeof(err)) < 0) {
			/* nothing more to report */
		}
		_exit(127);
	}
	close(errpipe[1]);
	close(logfd);
	close(nullfd);
	int child_err = 0;
	ssize_t r;
	while ((r = read(errpipe[0], &child_err, sizeof(child_err))) < 0 && errno == EINTR)
		;
	close(errpipe[0]);
	if (cmd->timeout_ms > 0 && r != (ssize_t)sizeof(child_err)) {
		/* waited for without reaping, killed once out of time */
		struct timespec t0, now, nap = {0, 10 * 1000 * 1000};
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			siginfo_t si;
			si.si_pid = 0;
			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT | WNOHANG) < 0 && errno != EINTR)
				break;
			if (si.si_pid == pid)
				break;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long ms = (long)(now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
			if (ms >= cmd->timeout_ms) {
				kill(cmd->new_session ? -pid : pid, SIGKILL);
				kill(pid, SIGKILL);
				break;
			}
			nanosleep(&nap, NULL);
		}
	}
	if (cmd->has_ids && cmd->new_session) {
		/*
		 * What the command left running in its group goes with it. Waited
		 * for without reaping: while the leader is a zombie its id cannot
		 * name another process group.
		 */
		siginfo_t si;
		while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
			;
		kill(-pid, SIGKILL);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (r == (ssize_t)sizeof(child_err) && child_err)
		return -child_err;
	*status = st;
	return 0;
}

static int local_arch(struct punix_ops *o, char *out, size_t n)
{
	(void)o;
	struct utsname u;
	if (uname(&u) < 0)
		return -errno;
	snprintf(out, n, "%s", u.machine);
	return 0;
}

static int64_t local_now(struct punix_ops *o)
{
	(void)o;
	return (int64_t)time(NULL);
}

static const struct punix_ops local_ops = {
	.name = "local",
	.ctx = NULL,
	.stat = local_stat,
	.open = local_open,
	.read = local_read,
	.write = local_write,
	.fsync = local_fsync,
	.close = local_close,
	.read_file = local_read_file,
	.list_dir = local_list_dir,
	.mkdir = local_mkdir,
	.rename = local_rename,
	.unlink = local_unlink,
	.rmdir = local_rmdir,
	.symlink = local_symlink,
	.readlink = local_readlink,
	.chmod = local_chmod,
	.fchmod = local_fchmod,
	.chown_user = local_chown_user,
	.realpath = local_realpath,
	.fsync_path = local_fsync_path,
	.lock = local_lock,
	.unlock = local_unlock,
	.run = local_run,
	.now = local_now,
	.arch = local_arch,
	.exists = ops_exists_by_stat,
	.fsync_paths = ops_fsync_paths_each,
	.remove_children = local_remove_children,
	.stream_open = local_stream_open,
	.stream_read = local_stream_read,
	.stream_write = local_stream_write,
	.stream_close = local_stream_close,
};

struct punix_ops *ops_local(void)
{
	/* const data; the table's functions never write through it */
	return (struct punix_ops *)&local_ops;
}
