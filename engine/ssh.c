/*
 * ssh.c - the SSH transport (see ssh.h).
 */
#include "ssh.h"
#include "ssh_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../base/vec.h"
#include "../base/xalloc.h"


int ssh_parse_url(const char *url, struct ssh_target *t)
{
	memset(t, 0, sizeof(*t));
	if (strncmp(url, "ssh://", 6) != 0)
		return -1;
	const char *p = url + 6, *at = strchr(p, '@');
	if (at == p)
		return -1;
	t->user = at ? xstrndup(p, (size_t)(at - p)) : NULL;
	const char *host = at ? at + 1 : p, *colon = strrchr(host, ':');
	t->port = 0;
	if (colon) {
		char *end;
		long port = strtol(colon + 1, &end, 10);
		if (*end || port < 1 || port > 65535) {
			ssh_target_free(t);
			return -1;
		}
		t->port = (int)port;
		t->host = xstrndup(host, (size_t)(colon - host));
	} else {
		t->host = xstrdup(host);
	}
	if (!t->host[0] || (t->user && (!t->user[0] || strpbrk(t->user, " \t\n'\"@"))) ||
	    strpbrk(t->host, " \t\n'\"/@")) {
		ssh_target_free(t);
		return -1;
	}
	t->timeout_ms = 30000;
	return 0;
}

void ssh_target_free(struct ssh_target *t)
{
	free(t->user);
	free(t->host);
	free(t->known_hosts);
	free(t->agent_sock);
	t->known_hosts = t->agent_sock = NULL;
	for (size_t i = 0; i < t->nkeys; i++)
		free(t->keys[i]);
	free(t->keys);
	t->keys = NULL;
	t->nkeys = 0;
	t->user = t->host = NULL;
}

/* SFTP status -> errno. */
/* The connection's SFTP session, started on first use (NULL if the host refuses it). */
static LIBSSH2_SFTP *SFTP(struct ssh *s)
{
	if (!s->sftp)
		s->sftp = libssh2_sftp_init(s->session);
	return s->sftp;
}

static int sftp_err(struct ssh *s)
{
	if (libssh2_session_last_errno(s->session) != LIBSSH2_ERROR_SFTP_PROTOCOL)
		return -EIO;
	switch (libssh2_sftp_last_error(s->sftp)) {
	case LIBSSH2_FX_NO_SUCH_FILE:
	case LIBSSH2_FX_NO_SUCH_PATH: return -ENOENT;
	case LIBSSH2_FX_PERMISSION_DENIED: return -EACCES;
	case LIBSSH2_FX_FILE_ALREADY_EXISTS: return -EEXIST;
	case LIBSSH2_FX_NOT_A_DIRECTORY: return -ENOTDIR;
	case LIBSSH2_FX_DIR_NOT_EMPTY: return -ENOTEMPTY;
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM: return -ENOSPC;
	case LIBSSH2_FX_OP_UNSUPPORTED: return -ENOTSUP;
	default: return -EIO;
	}
}

/* One shell word: single quotes, with ' written '\'' */

/* Runs a command line on the host; its stdout and stderr into out (if any). */
static int exec_line(struct ssh *s, const char *line, struct sbuf *out, int *status)
{
	LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(s->session);
	if (!ch)
		return -EIO;
	int r = libssh2_channel_exec(ch, line);
	if (r < 0) {
		libssh2_channel_free(ch);
		return -EIO;
	}
	char buf[8192];
	for (;;) {
		ssize_t n = libssh2_channel_read(ch, buf, sizeof(buf));
		ssize_t m = libssh2_channel_read_stderr(ch, buf + (n > 0 ? n : 0), sizeof(buf) - (size_t)(n > 0 ? n : 0));
		if (n < 0 || m < 0) {
			r = -EIO;
			break;
		}
		if (out && (n > 0 || m > 0))
			sbuf_append(out, buf, (size_t)(n > 0 ? n : 0) + (size_t)(m > 0 ? m : 0));
		if (n == 0 && m == 0 && libssh2_channel_eof(ch))
			break;
	}
	libssh2_channel_close(ch);
	libssh2_channel_wait_closed(ch);
	*status = libssh2_channel_get_exit_status(ch);
	libssh2_channel_free(ch);
	return r;
}

static int exec_argv(struct ssh *s, const char *const *argv, struct sbuf *out)
{
	struct sbuf line = SBUF_INIT;
	for (size_t i = 0; argv[i]; i++) {
		if (i)
			sbuf_putc(&line, ' ');
		sbuf_shell_quote(&line, argv[i]);
	}
	int status = 0, r = exec_line(s, line.sb_buf, out, &status);
	sbuf_free(&line);
	if (r < 0)
		return r;
	return status == 0 ? 0 : -EIO;
}

static int ssh_stat(struct punix_ops *o, const char *path, int follow, struct ops_stat *st)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	if (libssh2_sftp_stat_ex(SFTP(S(o)), path, (unsigned)strlen(path), follow ? LIBSSH2_SFTP_STAT : LIBSSH2_SFTP_LSTAT,
				 &a) < 0)
		return sftp_err(S(o));
	memset(st, 0, sizeof(*st));
	unsigned long m = a.permissions;
	st->type = S_ISREG(m) ? OPS_FT_REG : S_ISDIR(m) ? OPS_FT_DIR : S_ISLNK(m) ? OPS_FT_LINK : OPS_FT_OTHER;
	st->size = a.filesize;
	st->mode = (uint32_t)(m & 07777);
	st->uid = (a.flags & LIBSSH2_SFTP_ATTR_UIDGID) ? (int64_t)a.uid : -1;
	return 0;
}

static int ssh_open(struct punix_ops *o, const char *path, int flags, uint32_t mode, int *h)
{
	struct ssh *s = S(o);
	int slot = -1;
	for (int i = 0; i < SSH_MAX_HANDLES && slot < 0; i++)
		if (!s->handles[i])
			slot = i;
	if (slot < 0)
		return -EMFILE;
	if (flags & OPS_O_NOFOLLOW) {
		/* SFTP's open follows a last symlink: one there is refused first (a check, not a guarantee) */
		LIBSSH2_SFTP_ATTRIBUTES a;
		if (libssh2_sftp_stat_ex(SFTP(s), path, (unsigned)strlen(path), LIBSSH2_SFTP_LSTAT, &a) == 0 &&
		    LIBSSH2_SFTP_S_ISLNK(a.permissions))
			return -ELOOP;
	}
	unsigned long f = (flags & OPS_O_WRONLY) ? LIBSSH2_FXF_WRITE : LIBSSH2_FXF_READ;
	if (flags & OPS_O_CREAT)
		f |= LIBSSH2_FXF_CREAT;
	if (flags & OPS_O_EXCL)
		f |= LIBSSH2_FXF_EXCL;
	if (flags & OPS_O_TRUNC)
		f |= LIBSSH2_FXF_TRUNC;
	if (flags & OPS_O_APPEND)
		f |= LIBSSH2_FXF_APPEND;
	LIBSSH2_SFTP_HANDLE *hd = libssh2_sftp_open_ex(SFTP(s), path, (unsigned)strlen(path), f, (long)mode,
						       (flags & OPS_O_DIRECTORY) ? LIBSSH2_SFTP_OPENDIR : LIBSSH2_SFTP_OPENFILE);
	if (!hd)
		return sftp_err(s);
	s->handles[slot] = hd;
	*h = slot;
	return 0;
}

static ssize_t ssh_read(struct punix_ops *o, int h, void *buf, size_t n)
{
	ssize_t r = libssh2_sftp_read(S(o)->handles[h], buf, n);
	return r < 0 ? sftp_err(S(o)) : r;
}

static ssize_t ssh_write(struct punix_ops *o, int h, const void *buf, size_t n)
{
	ssize_t r = libssh2_sftp_write(S(o)->handles[h], buf, n);
	return r < 0 ? sftp_err(S(o)) : r;
}

static int ssh_fsync(struct punix_ops *o, int h)
{
	return libssh2_sftp_fsync(S(o)->handles[h]) < 0 ? sftp_err(S(o)) : 0;
}

static int ssh_close(struct punix_ops *o, int h)
{
	int r = libssh2_sftp_close_handle(S(o)->handles[h]);
	S(o)->handles[h] = NULL;
	return r < 0 ? -EIO : 0;
}

static int ssh_read_file(struct punix_ops *o, const char *path, size_t max, char **bufp, size_t *lenp)
{
	struct ops_stat st;
	int r = ssh_stat(o, path, 1, &st);
	if (r < 0)
		return r;
	if (st.type != OPS_FT_REG)
		return st.type == OPS_FT_DIR ? -EISDIR : -EINVAL;
	if (st.size > max)
		return -EFBIG;
	int h;
	r = ssh_open(o, path, OPS_O_RDONLY, 0, &h);
	if (r < 0)
		return r;
	size_t cap = (size_t)st.size + 1, len = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > max + 1) {
				r = -EFBIG;
				break;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t n = ssh_read(o, h, buf + len, cap - 1 - len);
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	ssh_close(o, h);
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ssh_list_dir(struct punix_ops *o, const char *path, char ***namesp, size_t *np)
{
	struct ssh *s = S(o);
	LIBSSH2_SFTP_HANDLE *d = libssh2_sftp_open_ex(SFTP(s), path, (unsigned)strlen(path), 0, 0, LIBSSH2_SFTP_OPENDIR);
	if (!d)
		return sftp_err(s);
	VEC(char *) names = {0};
	char name[1024];
	LIBSSH2_SFTP_ATTRIBUTES a;
	int r;
	while ((r = libssh2_sftp_readdir(d, name, sizeof(name), &a)) > 0) {
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		VEC_PUSH(&names, xstrndup(name, (size_t)r));
	}
	libssh2_sftp_closedir(d);
	if (r < 0) {
		ops_free_names(names.v, names.n);
		return sftp_err(s);
	}
	if (names.n > 1)
		qsort(names.v, names.n, sizeof(names.v[0]), name_cmp);
	*namesp = names.v;
	*np = names.n;
	return 0;
}

static int ssh_mkdir(struct punix_ops *o, const char *path, uint32_t mode)
{
	if (libssh2_sftp_mkdir_ex(SFTP(S(o)), path, (unsigned)strlen(path), (long)mode) == 0)
		return 0;
	int r = sftp_err(S(o));
	struct ops_stat st;
	/* many servers say "failure" for an existing directory */
	if (r != -ENOENT && r != -EACCES && ssh_stat(o, path, 0, &st) == 0)
		return -EEXIST;
	return r;
}

/* SFTP's rename refuses to replace; mv -T does it with rename(2) on the host. */
/*
 * SFTP's rename will not replace what is there (v3), so it is tried first:
 * onto a new name (every file of a generation being staged, a store path
 * pushed) it is one SFTP request. Onto an existing name (a live file, the
 * flip of current) it fails, and `mv -T` over an exec channel, about 50
 * requests' worth, does the atomic replace.
 */
static int ssh_rename(struct punix_ops *o, const char *from, const char *to)
{
	if (libssh2_sftp_rename_ex(SFTP(S(o)), from, (unsigned)strlen(from), to, (unsigned)strlen(to),
				   LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE) == 0)
		return 0;
	const char *argv[] = {"mv", "-T", "--", from, to, NULL};
	struct ops_stat st;
	if (ssh_stat(o, from, 0, &st) < 0)
		return -ENOENT;
	return exec_argv(S(o), argv, NULL);
}

static int ssh_unlink(struct punix_ops *o, const char *path)
{
	return libssh2_sftp_unlink_ex(SFTP(S(o)), path, (unsigned)strlen(path)) < 0 ? sftp_err(S(o)) : 0;
}

static int ssh_rmdir(struct punix_ops *o, const char *path)
{
	return libssh2_sftp_rmdir_ex(SFTP(S(o)), path, (unsigned)strlen(path)) < 0 ? sftp_err(S(o)) : 0;
}

/* Not SFTP's symlink: OpenSSH's server takes its two arguments reversed. */
static int ssh_symlink(struct punix_ops *o, const char *target, const char *path)
{
	struct ops_stat st;
	if (ssh_stat(o, path, 0, &st) == 0)
		return -EEXIST;
	const char *argv[] = {"ln", "-s", "--", target, path, NULL};
	return exec_argv(S(o), argv, NULL);
}

static int ssh_readlink(struct punix_ops *o, const char *path, char **target)
{
	/* libssh2 may answer an empty name instead of an error: ask lstat why */
	struct ops_stat st;
	int r = ssh_stat(o, path, 0, &st);
	if (r < 0)
		return r;
	if (st.type != OPS_FT_LINK)
		return -EINVAL;
	char buf[4096];
	int n = libssh2_sftp_symlink_ex(SFTP(S(o)), path, (unsigned)strlen(path), buf, sizeof(buf) - 1,
					LIBSSH2_SFTP_READLINK);
	if (n < 0)
		return sftp_err(S(o));
	if (n == 0)
		return -EIO;
	*target = xstrndup(buf, (size_t)n);
	return 0;
}

static int ssh_chmod(struct punix_ops *o, const char *path, uint32_t mode)
{
	LIBSSH2_SFTP_ATTRIBUTES a = {0};
	a.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
	a.permissions = mode;
	return libssh2_sftp_stat_ex(SFTP(S(o)), path, (unsigned)strlen(path), LIBSSH2_SFTP_SETSTAT, &a) < 0
		       ? sftp_err(S(o))
		       : 0;
}

static int ssh_fchmod(struct punix_ops *o, int h, uint32_t mode)
{
	LIBSSH2_SFTP_ATTRIBUTES a = {0};
	a.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
	a.permissions = mode;
	return libssh2_sftp_fsetstat(S(o)->handles[h], &a) < 0 ? sftp_err(S(o)) : 0;
}

static int ssh_chown_user(struct punix_ops *o, const char *path, const char *user)
{
	struct sbuf spec = SBUF_INIT;
	sbuf_printf(&spec, "%s:", user);
	const char *argv[] = {"chown", "--", spec.sb_buf, path, NULL};
	int r = exec_argv(S(o), argv, NULL);
	sbuf_free(&spec);
	return r;
}

static int ssh_realpath(struct punix_ops *o, const char *path, char **out)
{
	char buf[4096];
	int n = libssh2_sftp_symlink_ex(SFTP(S(o)), path, (unsigned)strlen(path), buf, sizeof(buf) - 1,
					LIBSSH2_SFTP_REALPATH);
	if (n < 0)
		return sftp_err(S(o));
	*out = xstrndup(buf, (size_t)n);
	return 0;
}

/* SFTP has no way to fsync a directory: coreutils' sync fsyncs the file it is given. */
static int ssh_fsync_path(struct punix_ops *o, const char *path)
{
	const char *argv[] = {"sync", "--", path, NULL};
	return exec_argv(S(o), argv, NULL);
}

/*
 * A lock on the host is a session that holds it: a shell opens the file,
 * takes flock(1) on it and then waits for its input to end. The lock lasts
 * while the channel is open; closing it, the connection dropping or this
 * process dying ends the session and the kernel drops the lock. So a
 * crashed deployer never leaves a target locked.
 */
static int ssh_lock(struct punix_ops *o, const char *path, int excl, int wait, int *h)
{
	struct ssh *s = S(o);
	int slot = -1;
	for (int i = 0; i < SSH_MAX_LOCKS && slot < 0; i++)
		if (!s->locks[i])
			slot = i;
	if (slot < 0)
		return -EMFILE;
	struct sbuf line = SBUF_INIT;
	/* a lock file that is a symlink is refused, never opened through */
	sbuf_puts(&line, "[ -L ");
	sbuf_shell_quote(&line, path);
	sbuf_puts(&line, " ] && exit 73; exec 9>>");
	sbuf_shell_quote(&line, path);
	sbuf_printf(&line, " || exit 74; command -v flock >/dev/null || exit 127; flock %s %s 9 || exit 75; "
			   "echo @punix-locked; exec cat >/dev/null",
		    excl ? "-x" : "-s", wait ? "" : "-n");
	LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(s->session);
	if (!ch) {
		sbuf_free(&line);
		return -EIO;
	}
	int r = libssh2_channel_exec(ch, line.sb_buf);
	sbuf_free(&line);
	/*
	 * Until our line: a login shell's rc files may print before the
	 * command runs (seen: an rc that prints for every command), and that
	 * must not be taken for an answer.
	 */
	struct sbuf got = SBUF_INIT;
	bool locked = false;
	while (r == 0 && !locked && got.sb_len < 65536) {
		char buf[512];
		ssize_t n = libssh2_channel_read(ch, buf, sizeof(buf));
		if (n <= 0)
			break; /* the shell ended without the lock */
		sbuf_append(&got, buf, (size_t)n);
		locked = strstr(got.sb_buf, "@punix-locked\n") != NULL;
	}
	sbuf_free(&got);
	if (locked) {
		s->locks[slot] = ch;
		*h = slot;
		return 0;
	}
	libssh2_channel_close(ch);
	libssh2_channel_wait_closed(ch);
	int status = libssh2_channel_get_exit_status(ch);
	libssh2_channel_free(ch);
	return r < 0		  ? -EIO
	       : status == 75 ? -EWOULDBLOCK
	       : status == 127 ? -ENOTSUP
	       : status == 74 ? -EACCES
	       : status == 73 ? -ELOOP
			      : -EIO;
}

static int ssh_unlock(struct punix_ops *o, int h)
{
	struct ssh *s = S(o);
	if (h < 0 || h >= SSH_MAX_LOCKS || !s->locks[h])
		return -EBADF;
	LIBSSH2_CHANNEL *ch = s->locks[h];
	s->locks[h] = NULL;
	libssh2_channel_send_eof(ch); /* cat ends, the shell with it, and the lock */
	libssh2_channel_close(ch);
	libssh2_channel_wait_closed(ch);
	libssh2_channel_free(ch);
	return 0;
}

/* env -i with the command's environment, then the command; output to the local log. */
static int ssh_run(struct punix_ops *o, const struct ops_cmd *cmd, int *status)
{
	if (cmd->has_ids)
		return -ENOTSUP; /* running as another user is the local table's alone */
	struct sbuf line = SBUF_INIT, out = SBUF_INIT;
	if (cmd->cwd) {
		sbuf_puts(&line, "cd ");
		sbuf_shell_quote(&line, cmd->cwd);
		sbuf_puts(&line, " && ");
	}
	sbuf_puts(&line, "env -i");
	for (size_t i = 0; cmd->env && cmd->env[i]; i++) {
		sbuf_putc(&line, ' ');
		sbuf_shell_quote(&line, cmd->env[i]);
	}
	for (size_t i = 0; cmd->argv[i]; i++) {
		sbuf_putc(&line, ' ');
		sbuf_shell_quote(&line, cmd->argv[i]);
	}
	int st = 0, r = exec_line(S(o), line.sb_buf, &out, &st);
	sbuf_free(&line);
	if (r == 0 && cmd->log_path) {
		/* appended to what the log holds, through this machine's table */
		struct punix_ops *l = S(o)->local;
		char *old = NULL;
		size_t olen = 0;
		if (l->read_file(l, cmd->log_path, 1 << 24, &old, &olen) < 0)
			olen = 0;
		int h;
		if (l->open(l, cmd->log_path, OPS_O_WRONLY | OPS_O_CREAT | OPS_O_TRUNC | OPS_O_NOFOLLOW, 0600, &h) == 0) {
			if (olen)
				l->write(l, h, old, olen);
			if (out.sb_len)
				l->write(l, h, out.sb_buf, out.sb_len);
			l->close(l, h);
		}
		free(old);
	}
	sbuf_free(&out);
	if (r < 0)
		return r;
	*status = (st & 0xff) << 8; /* as wait(2) would report an exit */
	return 0;
}

/* The deployer's clock: what a generation records is when it was deployed from here. */
/* coreutils' sync, given them all: one exec fsyncs each path in order. */
static int ssh_fsync_paths(struct punix_ops *o, const char *const *paths, size_t n, size_t *failed)
{
	enum { CHUNK = 256 };
	for (size_t i = 0; i < n; i += CHUNK) {
		size_t m = n - i < CHUNK ? n - i : CHUNK;
		struct sbuf line = SBUF_INIT;
		sbuf_puts(&line, "sync --");
		for (size_t k = 0; k < m; k++) {
			sbuf_putc(&line, ' ');
			sbuf_shell_quote(&line, paths[i + k]);
		}
		int st = 0, r = exec_line(S(o), line.sb_buf, NULL, &st);
		sbuf_free(&line);
		if (r == 0 && st != 0)
			r = -EIO;
		if (r < 0) {
			if (failed)
				*failed = i; /* sync does not say which: the chunk's first */
			return r;
		}
	}
	return 0;
}

/* Every path in one exec: a shell prints 1 or 0 for each, in order. */
static int ssh_exists(struct punix_ops *o, const char *const *paths, size_t n, unsigned char *found)
{
	/* a few hundred paths per command keeps it far below any line limit */
	enum { CHUNK = 256 };
	if (n > CHUNK) {
		int r = 0;
		for (size_t i = 0; i < n && r == 0; i += CHUNK)
			r = ssh_exists(o, paths + i, n - i < CHUNK ? n - i : CHUNK, found + i);
		return r;
	}
	if (n == 0)
		return 0;
	struct sbuf line = SBUF_INIT, out = SBUF_INIT;
	sbuf_puts(&line, "for f in");
	for (size_t i = 0; i < n; i++) {
		sbuf_putc(&line, ' ');
		sbuf_shell_quote(&line, paths[i]);
	}
	/* each answer marked, so what a shell's rc files may print first is not taken for one */
	sbuf_puts(&line, "; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then echo @1; else echo @0; fi; done");
	int st = 0, r = exec_line(S(o), line.sb_buf, &out, &st);
	sbuf_free(&line);
	size_t k = 0;
	for (const char *l = out.sb_buf; r == 0 && l && *l && k < n;) {
		const char *nl = strchr(l, '\n');
		if (l[0] == '@' && (l[1] == '0' || l[1] == '1') && (l[2] == '\n' || l[2] == '\0'))
			found[k++] = l[1] == '1';
		l = nl ? nl + 1 : NULL;
	}
	if (r == 0 && (st != 0 || k != n))
		r = -EPROTO;
	sbuf_free(&out);
	return r;
}

/* The host's architecture, asked once, when first needed (host mode learns it from HELLO instead). */
static int ssh_arch(struct punix_ops *o, char *out, size_t n)
{
	struct ssh *s = S(o);
	if (!s->arch[0]) {
		struct sbuf arch = SBUF_INIT;
		int ast = 0;
		const char *mark = NULL;
		if (exec_line(s, "echo \"@punix-arch:$(uname -m)\"", &arch, &ast) < 0 || ast != 0 ||
		    !(mark = strstr(sbuf_str(&arch), "@punix-arch:"))) {
			sbuf_free(&arch);
			return -EIO;
		}
		mark += strlen("@punix-arch:");
		snprintf(s->arch, sizeof(s->arch), "%.*s", (int)strcspn(mark, "\r\n"), mark);
		sbuf_free(&arch);
	}
	snprintf(out, n, "%s", s->arch);
	return 0;
}

static int64_t ssh_now(struct punix_ops *o)
{
	return S(o)->local->now(S(o)->local);
}
struct punix_ops *ops_ssh_connect(const struct ssh_target *t, struct sbuf *err)
{
	if (!ssh2_load(err)) /* libssh2 itself initialises on its first session when no engine did */
		return NULL;
	struct ssh *s = xcalloc(1, sizeof(*s));
	s->sock = connect_tcp(t->host, t->port, err);
	if (s->sock < 0) {
		free(s);
		return NULL;
	}
	s->session = libssh2_session_init();
	libssh2_session_set_blocking(s->session, 1);
	libssh2_session_set_timeout(s->session, t->timeout_ms);
	if (libssh2_session_handshake(s->session, s->sock) < 0) {
		sbuf_printf(err, "SSH handshake with %s:%d failed", t->host, t->port);
		goto fail;
	}
	if (check_host_key(s, t, err) < 0)
		goto fail;
	if (authenticate(s, t, err) < 0)
		goto fail;
	s->local = t->local;
	/* SFTP and the host's architecture are asked for when first needed: host mode needs neither */
	s->ops = (struct punix_ops){
		.name = "ssh",
		.ctx = s,
		.stat = ssh_stat,
		.open = ssh_open,
		.read = ssh_read,
		.write = ssh_write,
		.fsync = ssh_fsync,
		.close = ssh_close,
		.read_file = ssh_read_file,
		.list_dir = ssh_list_dir,
		.mkdir = ssh_mkdir,
		.rename = ssh_rename,
		.unlink = ssh_unlink,
		.rmdir = ssh_rmdir,
		.symlink = ssh_symlink,
		.readlink = ssh_readlink,
		.chmod = ssh_chmod,
		.fchmod = ssh_fchmod,
		.chown_user = ssh_chown_user,
		.realpath = ssh_realpath,
		.fsync_path = ssh_fsync_path,
		.lock = ssh_lock,
		.unlock = ssh_unlock,
		.run = ssh_run,
		.now = ssh_now,
		.arch = ssh_arch,
		.exists = ssh_exists,
		.fsync_paths = ssh_fsync_paths,
	};
	ssh_stream_table(&s->ops);
	return &s->ops;
fail:
	libssh2_session_disconnect(s->session, "punix: giving up");
	libssh2_session_free(s->session);
	close(s->sock);
	free(s);
	return NULL;
}

void ops_ssh_close(struct punix_ops *o)
{
	if (!o || strcmp(o->name, "ssh") != 0)
		return;
	struct ssh *s = S(o);
	for (int i = 0; i < SSH_MAX_HANDLES; i++)
		if (s->handles[i])
			libssh2_sftp_close_handle(s->handles[i]);
	for (int i = 0; i < SSH_MAX_LOCKS; i++)
		if (s->locks[i])
			ssh_unlock(o, i);
	if (s->sftp)
		libssh2_sftp_shutdown(s->sftp);
	libssh2_session_disconnect(s->session, "punix: done");
	libssh2_session_free(s->session);
	close(s->sock);
	free(s);
}

/*
 * libssh2's own state (and OpenSSL's under it) is set up by each engine
 * and released with it: libssh2 counts its initialisations.
 */
int ssh_library_init(struct sbuf *err)
{
	if (!ssh2_load(err))
		return -ENOENT;
	if (libssh2_init(0) != 0) {
		sbuf_puts(err, "cannot initialise libssh2");
		return -EIO;
	}
	return 0;
}

void ssh_library_exit(void)
{
	libssh2_exit();
}
