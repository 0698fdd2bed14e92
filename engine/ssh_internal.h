/*
 * ssh_internal.h - what the SSH transport's files share (ssh.h is its
 * interface): the connection, and reaching and logging in to the host
 * (ssh_session.c), which the table's calls (ssh.c) are built on.
 */
#ifndef PUNIX_ENGINE_SSH_INTERNAL_H
#define PUNIX_ENGINE_SSH_INTERNAL_H

#include <stdbool.h>

#include <libssh2.h>
#include <libssh2_sftp.h>

#include "ssh2_api.h" /* libssh2 through a table, loaded on first use */

#include "../base/ops.h"
#include "../base/sbuf.h"
#include "ssh.h"

#define SSH_MAX_HANDLES 64
#define SSH_MAX_LOCKS 8

struct ssh {
	struct punix_ops ops; /* first: the table is the context */
	int sock;
	LIBSSH2_SESSION *session;
	LIBSSH2_SFTP *sftp;
	LIBSSH2_SFTP_HANDLE *handles[SSH_MAX_HANDLES];
	struct punix_ops *local; /* this machine's: logs of run */
	char arch[64];           /* the host's `uname -m`, asked once at connect */
	LIBSSH2_CHANNEL *locks[SSH_MAX_LOCKS]; /* a lock is a session holding flock(1) open on the host */
};

#define S(o) ((struct ssh *)(o))

/* A TCP connection to host:port with TCP_NODELAY; the descriptor, or -1 with err. */
int connect_tcp(const char *host, int port, struct sbuf *err);
/* The host key must be in the known_hosts file: never trust on first use. 0, or -1 with err. */
int check_host_key(struct ssh *s, const struct ssh_target *t, struct sbuf *err);
/*
 * Feeds a known_hosts file's text to kh line by line (check_host_key's
 * reader, fuzzed: fuzz/known_hosts_fuzz.c); lines libssh2 refuses are
 * skipped. text[len] must be a NUL, as read_file leaves it: libssh2 (1.10)
 * reads a byte past the end of a line it is given.
 */
/* Whether a @revoked line of known_hosts text holds this key (raw SSH key blob), for any host. */
bool known_hosts_revoked(const char *text, size_t len, const unsigned char *key, size_t keylen);
void known_hosts_load(LIBSSH2_KNOWNHOSTS *kh, const char *text, size_t len);
/* Key login: the agent's keys, then each key file. 0, or -1 with err naming all that was tried. */
int authenticate(struct ssh *s, const struct ssh_target *t, struct sbuf *err);

/* Fills the table's stream calls (ssh_stream.c). */
void ssh_stream_table(struct punix_ops *o);

#endif
