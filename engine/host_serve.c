/*
 * host_serve.c - `punix host serve`: the target's side of host mode
 * (docs/hosts.md). It speaks the host protocol (proto.h) on its standard
 * input and output: says HELLO, answers which store paths are valid here,
 * receives the missing ones into the store (store_receive.c: hash-checked,
 * registered last), and runs one punix command as a child of its own, with
 * the generation bundle on the child's descriptor 3, relaying what the
 * child prints. The child is this host's punix under this host's journal
 * and locks: if the deployer goes away mid-op, the child runs on to its
 * end (its output is dropped), and if the child is killed, this host's own
 * recovery finishes or undoes its op.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../base/vec.h"
#include "../base/xalloc.h"
#include "../store/store.h"
#include "host.h"
#include "proto.h"

struct server {
	const struct host_serve_config *cfg;
	struct proto_io io;
	struct sbuf payload;
	uint64_t version; /* agreed */
	char *store_root, *troot;
	struct punix_ops *ops; /* the host beneath its root (the transport root, or /) */
	struct store store;
	bool store_open;
	int store_h; /* the store's lock, shared, while paths arrive */
	struct store_recv rv;
	bool in_path;
	uint64_t received;
};

static ssize_t fd_read(void *ctx, void *buf, size_t n)
{
	int fd = *(int *)ctx;
	for (;;) {
		ssize_t r = read(fd, buf, n);
		if (r >= 0 || errno != EINTR)
			return r < 0 ? -errno : r;
	}
}

static ssize_t fd_write(void *ctx, const void *buf, size_t n)
{
	int fd = ((int *)ctx)[1];
	for (;;) {
		ssize_t r = write(fd, buf, n);
		if (r >= 0 || errno != EINTR)
			return r < 0 ? -errno : r;
	}
}

/* Says why it gives up (FAIL), and the exit code to end with. */
__attribute__((format(printf, 3, 4))) static int fail(struct server *sv, int code, const char *fmt, ...)
{
	struct sbuf t = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sbuf_vprintf(&t, fmt, ap);
	va_end(ap);
	struct proto_frame fr;
	proto_begin(&fr, PM_FAIL);
	proto_put_text(&fr, PF_TEXT, t.sb_buf);
	if (proto_send(&sv->io, &fr) == 0)
		proto_flush(&sv->io);
	sbuf_free(&t);
	return code;
}

static int hello(struct server *sv)
{
	struct utsname u;
	struct proto_frame fr;
	proto_begin(&fr, PM_HELLO);
	proto_put_text(&fr, PF_MAGIC, PROTO_MAGIC);
	proto_put_num(&fr, PF_VERSION, PROTO_VERSION);
	proto_put_num(&fr, PF_MIN, PROTO_VERSION_MIN);
	proto_put_text(&fr, PF_PUNIX, sv->cfg->punix_version);
	proto_put_text(&fr, PF_ARCH, uname(&u) == 0 ? u.machine : "unknown");
	int r = proto_send(&sv->io, &fr);
	if (r == 0)
		r = proto_flush(&sv->io);
	if (r < 0)
		return 3;
	struct proto_msg m;
	struct sbuf err = SBUF_INIT;
	r = proto_recv(&sv->io, &sv->payload, &m, &err);
	if (r != 0 || m.type != PM_HELLO) {
		int code = r == 1 ? 0 : fail(sv, 3, "expected the deployer's HELLO: %s", r ? err.sb_buf : "another frame");
		sbuf_free(&err);
		proto_msg_free(&m);
		return code;
	}
	sbuf_free(&err);
	char *magic = proto_text(&m, PF_MAGIC), *theirs = proto_text(&m, PF_PUNIX);
	uint64_t vmax = 0, vmin = 0;
	proto_num(&m, PF_VERSION, &vmax);
	proto_num(&m, PF_MIN, &vmin);
	int code = 0;
	if (!magic || strcmp(magic, PROTO_MAGIC) != 0)
		code = fail(sv, 3, "the deployer did not say it speaks the punix host protocol");
	else if (vmax < PROTO_VERSION_MIN || vmin > PROTO_VERSION)
		code = fail(sv, 1,
			    "[E16] protocol mismatch: the deployer's punix %s speaks host protocol %llu..%llu, this "
			    "target's punix %s speaks %d..%d; upgrade the %s's punix",
			    theirs ? theirs : "?", (unsigned long long)vmin, (unsigned long long)vmax,
			    sv->cfg->punix_version, PROTO_VERSION_MIN, PROTO_VERSION,
			    vmax < PROTO_VERSION_MIN ? "deployer" : "target");
	sv->version = vmax < PROTO_VERSION ? vmax : PROTO_VERSION;
	sv->store_root = proto_text(&m, PF_STORE);
	sv->troot = proto_text(&m, PF_ROOT);
	free(magic);
	free(theirs);
	proto_msg_free(&m);
	return code;
}

/* The store paths arrive into, opened on first use, beneath the host's root. */
static int need_store(struct server *sv)
{
	if (sv->store_open)
		return 0;
	if (!sv->store_root || sv->store_root[0] != '/')
		return fail(sv, 3, "the deployer named no store (HELLO without a store directory)");
	struct sbuf err = SBUF_INIT, real = SBUF_INIT;
	const char *root = sv->troot && *sv->troot ? sv->troot : "/";
	sv->ops = ops_beneath(root, &err);
	if (!sv->ops) {
		int code = fail(sv, 3, "this host's root %s: %s", root, err.sb_buf);
		sbuf_free(&err);
		return code;
	}
	sbuf_printf(&real, "%s%s", strcmp(root, "/") ? root : "", sv->store_root);
	int r = store_open(&sv->store, sv->ops, sv->store_root, real.sb_buf, NULL, STORE_CREATE, &err);
	sbuf_free(&real);
	if (r < 0) {
		int code = fail(sv, 3, "this host's store: %s", err.sb_buf);
		sbuf_free(&err);
		return code;
	}
	sbuf_free(&err);
	sv->store_open = true;
	return 0;
}

static int answer_have(struct server *sv, const struct proto_msg *m)
{
	int code = need_store(sv);
	if (code)
		return code;
	struct sbuf bits = SBUF_INIT;
	for (size_t i = 0; i < m->nf; i++) {
		if (m->f[i].tag != PF_PATH)
			continue;
		char *p = xstrndup((const char *)m->f[i].v, m->f[i].n);
		sbuf_putc(&bits, store_is_valid(&sv->store, p) ? 1 : 0);
		free(p);
	}
	struct proto_frame fr;
	proto_begin(&fr, PM_HAVE);
	proto_put(&fr, PF_BITS, bits.sb_buf ? bits.sb_buf : "", bits.sb_len);
	sbuf_free(&bits);
	int r = proto_send(&sv->io, &fr);
	if (r == 0)
		r = proto_flush(&sv->io);
	return r < 0 ? 3 : 0;
}

/* Ends the path being received, if any; a failure is FAIL'd. */
static int end_path(struct server *sv)
{
	if (!sv->in_path)
		return 0;
	sv->in_path = false;
	struct sbuf err = SBUF_INIT;
	int r = store_recv_commit(&sv->rv, &err);
	int code = r < 0 ? fail(sv, 3, "receiving %s", err.sb_buf) : 0;
	if (r == 0)
		sv->received++;
	sbuf_free(&err);
	return code;
}

static int on_path(struct server *sv, const struct proto_msg *m)
{
	int code = end_path(sv);
	if (code == 0)
		code = need_store(sv);
	if (code)
		return code;
	if (sv->store_h < 0) {
		/* no collection of this store while paths arrive */
		int r = store_lock(&sv->store, false, &sv->store_h);
		if (r < 0) {
			sv->store_h = -1;
			return fail(sv, 3, "locking this host's store: %s", strerror(-r));
		}
	}
	char *path = proto_text(m, PF_PATH);
	const struct proto_field *reg = proto_get(m, PF_REG);
	struct sbuf err = SBUF_INIT;
	int r = store_recv_begin(&sv->store, path, (const char *)reg->v, reg->n, &sv->rv, &err);
	if (r < 0)
		code = fail(sv, 3, "receiving %s: %s", path, err.sb_buf);
	else
		sv->in_path = true;
	free(path);
	sbuf_free(&err);
	return code;
}

static int on_entry(struct server *sv, const struct proto_msg *m)
{
	if (!sv->in_path)
		return fail(sv, 3, "an ENTRY arrived outside a PATH");
	char *kind = proto_text(m, PF_KIND), *rel = proto_text(m, PF_REL), *link = proto_text(m, PF_LINK);
	uint64_t size = 0;
	proto_num(m, PF_SIZE, &size);
	struct sbuf err = SBUF_INIT;
	int code = 0;
	if (strlen(kind) != 1 || !strchr("dfxl", kind[0]))
		code = fail(sv, 3, "an ENTRY of unknown kind '%s'", kind);
	else if (store_recv_entry(&sv->rv, kind[0], rel, link, size, &err) < 0)
		code = fail(sv, 3, "%s", err.sb_buf);
	free(kind);
	free(rel);
	free(link);
	sbuf_free(&err);
	return code;
}

static int on_data(struct server *sv, const struct proto_msg *m)
{
	if (!sv->in_path)
		return fail(sv, 3, "DATA arrived outside a PATH");
	const struct proto_field *b = proto_get(m, PF_BYTES);
	struct sbuf err = SBUF_INIT;
	int code = store_recv_data(&sv->rv, b->v, b->n, &err) < 0 ? fail(sv, 3, "%s", err.sb_buf) : 0;
	sbuf_free(&err);
	return code;
}

static int on_pushed(struct server *sv)
{
	int code = end_path(sv);
	if (code)
		return code;
	if (sv->store_h >= 0) {
		store_unlock(&sv->store, sv->store_h);
		sv->store_h = -1;
	}
	struct proto_frame fr;
	proto_begin(&fr, PM_PUSHED);
	proto_put_num(&fr, PF_COUNT, sv->received);
	int r = proto_send(&sv->io, &fr);
	if (r == 0)
		r = proto_flush(&sv->io);
	return r < 0 ? 3 : 0;
}

/* ---- RUN: one punix command, its output relayed ------------------------------------------ */

static const char *const runnable[] = {"service", "store", "recover", "journal", NULL};

static int relay(struct server *sv, unsigned char type, const char *buf, size_t n)
{
	struct proto_frame fr;
	proto_begin(&fr, type);
	proto_put(&fr, PF_BYTES, buf, n);
	int r = proto_send(&sv->io, &fr);
	return r == 0 ? proto_flush(&sv->io) : r;
}

static int on_run(struct server *sv, const struct proto_msg *m)
{
	int code = end_path(sv);
	if (code)
		return code;
	size_t nargs = 0;
	for (size_t i = 0; i < m->nf; i++)
		nargs += m->f[i].tag == PF_ARG;
	char **argv = xcalloc(nargs + 4, sizeof(char *));
	size_t k = 0;
	argv[k++] = xstrdup(sv->cfg->self);
	for (size_t i = 0; i < m->nf; i++)
		if (m->f[i].tag == PF_ARG)
			argv[k++] = xstrndup((const char *)m->f[i].v, m->f[i].n);
	bool ok = false;
	for (size_t i = 0; runnable[i]; i++)
		ok |= strcmp(argv[1], runnable[i]) == 0;
	const struct proto_field *bundle = proto_get(m, PF_BUNDLE);
	if (bundle) {
		argv[k++] = xstrdup("--bundle-fd");
		argv[k++] = xstrdup("3");
	}
	/* the host's own places: under the transport root when there is one */
	struct sbuf root_env = SBUF_INIT, state_env = SBUF_INIT;
	VEC(char *) env = {0};
	for (char *const *e = sv->cfg->env; e && *e; e++)
		if (strncmp(*e, "PUNIX_HOST_ROOT=", 16) && strncmp(*e, "PUNIX_STATE_DIR=", 16))
			VEC_PUSH(&env, *e);
	if (sv->troot && *sv->troot) {
		sbuf_printf(&root_env, "PUNIX_HOST_ROOT=%s", sv->troot);
		sbuf_printf(&state_env, "PUNIX_STATE_DIR=%s/var/lib/punix/journal", sv->troot);
		VEC_PUSH(&env, root_env.sb_buf);
		VEC_PUSH(&env, state_env.sb_buf);
	}
	VEC_PUSH(&env, NULL);
	int out[2] = {-1, -1}, err[2] = {-1, -1}, in3[2] = {-1, -1};
	pid_t pid = -1;
	if (!ok)
		code = fail(sv, 2, "'%s' is not a command host mode runs", argv[1]);
	else if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || (bundle && pipe2(in3, O_CLOEXEC) < 0))
		code = fail(sv, 3, "pipe: %s", strerror(errno));
	else if ((pid = fork()) < 0)
		code = fail(sv, 3, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* its own session: the deployer's going away signals nothing to the op */
		setsid();
		signal(SIGPIPE, SIG_DFL);
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0 ||
		    (bundle && dup2(in3[0], 3) < 0))
			_exit(127);
		execve(argv[0], argv, env.v);
		_exit(127);
	}
	if (pid > 0) {
		close(out[1]);
		close(err[1]);
		if (bundle)
			close(in3[0]);
		out[1] = err[1] = in3[0] = -1;
		const unsigned char *bp = bundle ? bundle->v : NULL;
		size_t bleft = bundle ? bundle->n : 0;
		if (!bundle)
			in3[1] = -1;
		bool gone = false; /* the deployer: its stream broke */
		int open_fds = 2;
		char buf[16384];
		while (open_fds > 0 || in3[1] >= 0) {
			struct pollfd p[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {in3[1], POLLOUT, 0}};
			if (poll(p, 3, -1) < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			if (in3[1] >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
				ssize_t w = bleft ? write(in3[1], bp, bleft < 65536 ? bleft : 65536) : 0;
				if (w > 0) {
					bp += w;
					bleft -= (size_t)w;
				}
				if (bleft == 0 || w < 0) {
					close(in3[1]);
					in3[1] = -1;
				}
			}
			for (int j = 0; j < 2; j++) {
				int *fd = j == 0 ? &out[0] : &err[0];
				if (*fd < 0 || !(p[j].revents & (POLLIN | POLLHUP | POLLERR)))
					continue;
				ssize_t n = read(*fd, buf, sizeof(buf));
				if (n <= 0) {
					close(*fd);
					*fd = -1;
					open_fds--;
					continue;
				}
				if (!gone && relay(sv, j == 0 ? PM_OUT : PM_ERR, buf, (size_t)n) < 0)
					gone = true;
			}
			if (open_fds == 0 && in3[1] >= 0) {
				close(in3[1]);
				in3[1] = -1;
			}
		}
		int st = 0;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		int exit = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		if (!gone) {
			struct proto_frame fr;
			proto_begin(&fr, PM_EXIT);
			proto_put_num(&fr, PF_CODE, (uint64_t)exit);
			if (proto_send(&sv->io, &fr) == 0)
				proto_flush(&sv->io);
		}
		code = 0;
	}
	int fds[] = {out[0], out[1], err[0], err[1], in3[0], in3[1]};
	for (size_t i = 0; i < 6; i++)
		if (fds[i] >= 0 && pid <= 0)
			close(fds[i]);
	for (size_t i = 0; i < k; i++)
		free(argv[i]);
	free(argv);
	VEC_FREE(&env);
	sbuf_free(&root_env);
	sbuf_free(&state_env);
	return code;
}

int host_serve(const struct host_serve_config *cfg)
{
	/* a deployer that goes away must not kill us mid-relay: writes then fail instead */
	signal(SIGPIPE, SIG_IGN);
	struct server sv = {.cfg = cfg, .store_h = -1};
	int fds[2] = {cfg->in, cfg->out};
	proto_io_init(&sv.io, fd_read, fd_write, fds);
	store_recv_init(&sv.rv);
	int code = hello(&sv);
	while (code == 0) {
		struct proto_msg m;
		struct sbuf err = SBUF_INIT;
		int r = proto_recv(&sv.io, &sv.payload, &m, &err);
		if (r == 1) {
			sbuf_free(&err);
			break; /* the deployer is done */
		}
		if (r < 0) {
			code = fail(&sv, 3, "%s", err.sb_buf);
			sbuf_free(&err);
			break;
		}
		sbuf_free(&err);
		switch (m.type) {
		case PM_HAVE: code = answer_have(&sv, &m); break;
		case PM_PATH: code = on_path(&sv, &m); break;
		case PM_ENTRY: code = on_entry(&sv, &m); break;
		case PM_DATA: code = on_data(&sv, &m); break;
		case PM_PUSHED: code = on_pushed(&sv); break;
		case PM_RUN:
			code = on_run(&sv, &m);
			proto_msg_free(&m);
			goto out; /* one command per session: it ends the conversation */
		default: code = fail(&sv, 3, "a %s frame is not something the deployer sends", proto_type_name(m.type));
		}
		proto_msg_free(&m);
	}
out:
	if (sv.in_path)
		store_recv_abort(&sv.rv);
	if (sv.store_h >= 0)
		store_unlock(&sv.store, sv.store_h);
	if (sv.store_open)
		store_close(&sv.store);
	if (sv.ops)
		ops_beneath_free(sv.ops);
	free(sv.store_root);
	free(sv.troot);
	if (sv.payload.sb_buf)
		memset(sv.payload.sb_buf, 0, sv.payload.sb_cap); /* a bundle's secrets were in it */
	sbuf_free(&sv.payload);
	proto_io_free(&sv.io);
	return code;
}
