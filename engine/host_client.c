/*
 * host_client.c - the deployer's side of host mode (host.h): starts the
 * target's `punix host serve` on a stream of the connection, agrees on a
 * protocol version, asks in one request which store paths the target has,
 * sends the missing ones in one stream, and runs one command there.
 * Every wait for an answer is counted (h->waits): the round trips.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/xalloc.h"
#include "host.h"
#include "proto.h"

static ssize_t s_read(void *ctx, void *buf, size_t n)
{
	struct host_conn *h = ctx;
	return h->o->stream_read(h->o, h->s, buf, n);
}

static ssize_t s_write(void *ctx, const void *buf, size_t n)
{
	struct host_conn *h = ctx;
	return h->o->stream_write(h->o, h->s, buf, n);
}


char *host_line(const char *remote, const char *troot, const char *bootstrap)
{
	(void)troot;
	struct sbuf l = SBUF_INIT;
	/* the command's complaints on the stream, where they are shown; the channel's own stderr is not read */
	sbuf_puts(&l, "exec 2>&1; ");
	if (remote) {
		/* named by the operator: that one or none */
		sbuf_puts(&l, "p=");
		sbuf_shell_quote(&l, remote);
		sbuf_puts(&l, "; if [ -x \"$p\" ]; then exec \"$p\" host serve; fi; echo @punix-missing");
		return sbuf_detach(&l, NULL);
	}
	sbuf_puts(&l, "if p=$(command -v punix); then exec \"$p\" host serve; fi; ");
	if (bootstrap) {
		sbuf_puts(&l, "b=");
		sbuf_shell_quote(&l, bootstrap);
		sbuf_puts(&l, "; if [ -x \"$b\" ]; then exec \"$b\" host serve; fi; ");
	}
	sbuf_puts(&l, "echo @punix-missing");
	return sbuf_detach(&l, NULL);
}

/* Waits for the next frame; a FAIL becomes the error. */
static int expect(struct host_conn *h, struct proto_msg *m, struct sbuf *err)
{
	int r = proto_flush(&h->io);
	if (r < 0) {
		sbuf_printf(err, "writing to the target's punix: %s", strerror(-r));
		return r;
	}
	h->waits++;
	r = proto_recv(&h->io, &h->payload, m, err);
	if (r == 1) {
		sbuf_puts(err, "the target's punix ended the conversation");
		return -EPIPE;
	}
	if (r < 0)
		return r;
	if (m->type == PM_FAIL) {
		char *t = proto_text(m, PF_TEXT);
		sbuf_puts(err, t);
		bool proto = strstr(t, "[E16]") != NULL;
		free(t);
		proto_msg_free(m);
		return proto ? -EPROTO : -EIO;
	}
	return 0;
}

int host_connect(struct punix_ops *o, const char *line, const char *store_root, const char *troot,
		 struct host_conn *h, struct sbuf *err)
{
	memset(h, 0, sizeof(*h));
	if (!o->stream_open) {
		sbuf_puts(err, "this transport cannot run a command stream");
		return -ENOTSUP;
	}
	int r = o->stream_open(o, line, &h->s);
	if (r < 0) {
		sbuf_printf(err, "starting the target's punix: %s", ops_strerror(r));
		return r;
	}
	h->o = o;
	proto_io_init(&h->io, s_read, s_write, h);
	struct proto_msg m;
	struct sbuf why = SBUF_INIT;
	h->waits++;
	r = proto_recv(&h->io, &h->payload, &m, &why);
	if (r != 0 || m.type != PM_HELLO) {
		bool missing = strstr(sbuf_str(&why), "@punix-missing") != NULL;
		if (missing)
			sbuf_puts(err, "no punix on the target (not on its PATH, none bootstrapped)");
		else if (r == 1)
			sbuf_puts(err, "the target's punix said nothing");
		else if (r == 0)
			sbuf_printf(err, "the target's punix began with a %s frame, not HELLO", proto_type_name(m.type));
		else
			sbuf_puts(err, why.sb_buf);
		sbuf_free(&why);
		proto_msg_free(&m);
		host_close(h, NULL);
		return 1;
	}
	sbuf_free(&why);
	char *magic = proto_text(&m, PF_MAGIC), *arch = proto_text(&m, PF_ARCH), *pv = proto_text(&m, PF_PUNIX);
	uint64_t vmax = 0, vmin = 0;
	proto_num(&m, PF_VERSION, &vmax);
	proto_num(&m, PF_MIN, &vmin);
	snprintf(h->arch, sizeof(h->arch), "%s", arch ? arch : "unknown");
	snprintf(h->punix, sizeof(h->punix), "%s", pv ? pv : "?");
	free(magic);
	free(arch);
	free(pv);
	proto_msg_free(&m);
	if (vmax < PROTO_VERSION_MIN || vmin > PROTO_VERSION) {
		sbuf_printf(err,
			    "[E16] protocol mismatch: the target's punix %s speaks host protocol %llu..%llu, this "
			    "punix %s speaks %d..%d; upgrade the %s's punix",
			    h->punix, (unsigned long long)vmin, (unsigned long long)vmax, PUNIX_VERSION_TEXT,
			    PROTO_VERSION_MIN, PROTO_VERSION, vmax < PROTO_VERSION_MIN ? "target" : "deployer");
		host_close(h, NULL);
		return -EPROTO;
	}
	h->version = vmax < PROTO_VERSION ? vmax : PROTO_VERSION;
	struct proto_frame fr;
	proto_begin(&fr, PM_HELLO);
	proto_put_text(&fr, PF_MAGIC, PROTO_MAGIC);
	proto_put_num(&fr, PF_VERSION, PROTO_VERSION);
	proto_put_num(&fr, PF_MIN, PROTO_VERSION_MIN);
	proto_put_text(&fr, PF_PUNIX, PUNIX_VERSION_TEXT);
	proto_put_text(&fr, PF_STORE, store_root);
	if (troot && *troot)
		proto_put_text(&fr, PF_ROOT, troot);
	r = proto_send(&h->io, &fr);
	if (r < 0) {
		sbuf_printf(err, "writing to the target's punix: %s", strerror(-r));
		host_close(h, NULL);
		return r;
	}
	/* no answer is awaited: a refusal arrives as the answer to what comes next */
	return 0;
}

int host_have(struct host_conn *h, const char *const *paths, size_t n, unsigned char *bits, struct sbuf *err)
{
	struct proto_frame fr;
	proto_begin(&fr, PM_HAVE);
	for (size_t i = 0; i < n; i++)
		proto_put_text(&fr, PF_PATH, paths[i]);
	int r = proto_send(&h->io, &fr);
	struct proto_msg m = {0};
	if (r == 0)
		r = expect(h, &m, err);
	else
		sbuf_printf(err, "asking the target which paths it has: %s", strerror(-r));
	if (r < 0)
		return r;
	const struct proto_field *b = proto_get(&m, PF_BITS);
	if (m.type != PM_HAVE || !b || b->n != n) {
		sbuf_printf(err, "the target answered which of %zu paths it has with %s", n,
			    m.type == PM_HAVE ? "the wrong count" : proto_type_name(m.type));
		proto_msg_free(&m);
		return -EBADMSG;
	}
	for (size_t i = 0; i < n; i++)
		bits[i] = b->v[i] ? 1 : 0;
	proto_msg_free(&m);
	return 0;
}

/* ---- pushing trees ----------------------------------------------------------------------- */

struct walk {
	struct host_conn *h;
	struct punix_ops *src;
	const char *top;
	struct sbuf *err;
	const struct host_push_tick *tick;
	size_t done;    /* paths sent before this one */
	uint64_t start; /* h->pushed_bytes as the push began */
};

static int send_entry(struct walk *w, const char *path, const char *rel);

static int child(struct punix_ops *o, const char *path, const char *name, void *arg)
{
	(void)o;
	(void)name;
	struct walk *w = arg;
	return send_entry(w, path, path + strlen(w->top) + 1);
}

static int send_entry(struct walk *w, const char *path, const char *rel)
{
	struct punix_ops *o = w->src;
	struct ops_stat st;
	int r = o->stat(o, path, 0, &st);
	if (r < 0) {
		sbuf_printf(w->err, "%s: %s", path, ops_strerror(r));
		return r;
	}
	struct proto_frame fr;
	proto_begin(&fr, PM_ENTRY);
	proto_put_text(&fr, PF_REL, rel);
	char *link = NULL;
	switch (st.type) {
	case OPS_FT_DIR: proto_put_text(&fr, PF_KIND, "d"); break;
	case OPS_FT_LINK:
		r = o->readlink(o, path, &link);
		proto_put_text(&fr, PF_KIND, "l");
		proto_put_text(&fr, PF_LINK, link ? link : "");
		free(link);
		break;
	case OPS_FT_REG:
		proto_put_text(&fr, PF_KIND, (st.mode & 0111) ? "x" : "f");
		proto_put_num(&fr, PF_SIZE, st.size);
		break;
	default: r = -EINVAL;
	}
	if (r < 0) {
		sbuf_free(&fr.b);
		sbuf_printf(w->err, "%s: %s", path, ops_strerror(r));
		return r;
	}
	r = proto_send(&w->h->io, &fr);
	if (r == 0 && st.type == OPS_FT_REG) {
		int fd;
		r = o->open(o, path, OPS_O_RDONLY | OPS_O_NOFOLLOW, 0, &fd);
		uint64_t left = st.size;
		char buf[65536];
		while (r == 0 && left) {
			ssize_t n = o->read(o, fd, buf, left < sizeof(buf) ? left : sizeof(buf));
			if (n <= 0) {
				r = n < 0 ? (int)n : -EIO; /* shorter than it was: changed under us */
				break;
			}
			proto_begin(&fr, PM_DATA);
			proto_put(&fr, PF_BYTES, buf, (size_t)n);
			r = proto_send(&w->h->io, &fr);
			left -= (uint64_t)n;
			w->h->pushed_bytes += (uint64_t)n;
			if (r == 0 && w->tick && w->tick->fn)
				w->tick->fn(w->tick->arg, w->done, w->h->pushed_bytes - w->start);
		}
		if (fd >= 0 && r != -ENOENT)
			o->close(o, fd);
	}
	if (r == 0 && st.type == OPS_FT_DIR)
		r = ops_each_child(o, path, child, w);
	if (r < 0 && !w->err->sb_len)
		sbuf_printf(w->err, "sending %s: %s", path, ops_strerror(r));
	return r;
}

int host_push(struct host_conn *h, struct store *src, const char *const *paths, size_t n,
	      const struct host_push_tick *tick, struct sbuf *err)
{
	int r = 0;
	uint64_t start = h->pushed_bytes;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (i && tick && tick->fn)
			tick->fn(tick->arg, i, h->pushed_bytes - start);
		struct sbuf meta = SBUF_INIT;
		sbuf_printf(&meta, "%s/%s.json", src->meta_dir, store_path_name(paths[i]));
		char *reg = NULL;
		size_t len = 0;
		r = src->ops->read_file(src->ops, meta.sb_buf, 1 << 20, &reg, &len);
		if (r < 0)
			sbuf_printf(err, "reading the registration of %s: %s", paths[i], ops_strerror(r));
		sbuf_free(&meta);
		if (r < 0)
			break;
		struct proto_frame fr;
		proto_begin(&fr, PM_PATH);
		proto_put_text(&fr, PF_PATH, paths[i]);
		proto_put(&fr, PF_REG, reg, len);
		free(reg);
		r = proto_send(&h->io, &fr);
		struct walk w = {h, src->ops, paths[i], err, tick, i, start};
		if (r == 0)
			r = send_entry(&w, paths[i], "");
	}
	if (r == 0 && n && tick && tick->fn)
		tick->fn(tick->arg, n, h->pushed_bytes - start);
	struct proto_frame fr;
	proto_begin(&fr, PM_PUSHED);
	proto_put_num(&fr, PF_COUNT, n);
	if (r == 0)
		r = proto_send(&h->io, &fr);
	else
		sbuf_free(&fr.b);
	struct proto_msg m = {0};
	if (r == 0)
		r = expect(h, &m, err);
	else if (!err->sb_len)
		sbuf_printf(err, "sending store paths to the target: %s", strerror(-r));
	if (r == 0 && m.type != PM_PUSHED) {
		sbuf_printf(err, "the target answered a push with %s", proto_type_name(m.type));
		r = -EBADMSG;
	}
	proto_msg_free(&m);
	return r;
}

int host_run(struct host_conn *h, const char *const *args, size_t nargs, const struct sbuf *bundle,
	     void (*out)(void *arg, const char *buf, size_t n), void (*errout)(void *arg, const char *buf, size_t n),
	     void *arg, int *code, struct sbuf *err)
{
	struct proto_frame fr;
	proto_begin(&fr, PM_RUN);
	for (size_t i = 0; i < nargs; i++)
		proto_put_text(&fr, PF_ARG, args[i]);
	if (bundle)
		proto_put(&fr, PF_BUNDLE, bundle->sb_buf ? bundle->sb_buf : "", bundle->sb_len);
	int r = proto_send(&h->io, &fr);
	if (r < 0) {
		sbuf_printf(err, "starting the command on the target: %s", strerror(-r));
		return r;
	}
	for (bool first = true;; first = false) {
		struct proto_msg m;
		if (first) {
			r = expect(h, &m, err);
		} else {
			r = proto_recv(&h->io, &h->payload, &m, err);
			if (r == 1) {
				sbuf_puts(err, "the connection ended before the target said how the command ended");
				r = -EPIPE;
			} else if (r == 0 && m.type == PM_FAIL) {
				char *t = proto_text(&m, PF_TEXT);
				sbuf_puts(err, t);
				free(t);
				proto_msg_free(&m);
				r = -EIO;
			}
		}
		if (r < 0)
			return r;
		const struct proto_field *b = proto_get(&m, PF_BYTES);
		uint64_t c = 0;
		switch (m.type) {
		case PM_OUT: out(arg, (const char *)b->v, b->n); break;
		case PM_ERR: errout(arg, (const char *)b->v, b->n); break;
		case PM_EXIT:
			proto_num(&m, PF_CODE, &c);
			*code = (int)c;
			proto_msg_free(&m);
			return 0;
		default:
			sbuf_printf(err, "the target sent %s while running a command", proto_type_name(m.type));
			proto_msg_free(&m);
			return -EBADMSG;
		}
		proto_msg_free(&m);
	}
}

void host_close(struct host_conn *h, int *status)
{
	int st = 0;
	if (h->s) {
		proto_flush(&h->io);
		h->o->stream_close(h->o, h->s, &st);
	}
	if (status)
		*status = st;
	proto_io_free(&h->io);
	sbuf_free(&h->payload);
	h->s = NULL;
}
