/*
 * ssh_stream.c - the SSH table's command streams (ops.h: stream_open): one
 * exec channel of the connection's session; its standard output is the
 * stream (the command line sends its own standard error there too, so a
 * shell's complaint reaches the reader where a frame was expected and is
 * shown as such, proto.c).
 */
#include <errno.h>
#include <stdlib.h>

#include "../base/xalloc.h"
#include "ssh_internal.h"

struct ops_stream {
	LIBSSH2_CHANNEL *ch;
};

static int stream_open(struct punix_ops *o, const char *line, struct ops_stream **out)
{
	struct ssh *s = S(o);
	LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(s->session);
	if (!ch)
		return -EIO;
	/*
	 * The channel's own standard error is dropped: sshd itself may write
	 * there (its debug lines at LogLevel DEBUG). What the command says on
	 * its standard error reaches us all the same: host_line() starts with
	 * `exec 2>&1`.
	 */
	libssh2_channel_handle_extended_data2(ch, LIBSSH2_CHANNEL_EXTENDED_DATA_IGNORE);
	if (libssh2_channel_exec(ch, line) < 0) {
		libssh2_channel_free(ch);
		return -EIO;
	}
	struct ops_stream *st = xcalloc(1, sizeof(*st));
	st->ch = ch;
	*out = st;
	return 0;
}

static ssize_t stream_read(struct punix_ops *o, struct ops_stream *st, void *buf, size_t n)
{
	(void)o;
	ssize_t r = libssh2_channel_read(st->ch, buf, n);
	if (r == 0 || r > 0)
		return r;
	return -EIO;
}

static ssize_t stream_write(struct punix_ops *o, struct ops_stream *st, const void *buf, size_t n)
{
	(void)o;
	ssize_t r = libssh2_channel_write(st->ch, buf, n);
	return r < 0 ? -EPIPE : r;
}

static int stream_close(struct punix_ops *o, struct ops_stream *st, int *status)
{
	libssh2_channel_send_eof(st->ch);
	libssh2_channel_close(st->ch);
	libssh2_channel_wait_closed(st->ch);
	int code = libssh2_channel_get_exit_status(st->ch);
	char *sig = NULL;
	libssh2_channel_get_exit_signal(st->ch, &sig, NULL, NULL, NULL, NULL, NULL);
	if (status)
		*status = sig ? 128 + 9 : code;
	if (sig)
		libssh2_free(S(o)->session, sig);
	libssh2_channel_free(st->ch);
	free(st);
	return 0;
}

void ssh_stream_table(struct punix_ops *o)
{
	o->stream_open = stream_open;
	o->stream_read = stream_read;
	o->stream_write = stream_write;
	o->stream_close = stream_close;
}
