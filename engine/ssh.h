/*
 * ssh.h - the SSH transport: the ops table over libssh2, for a target
 * that is another machine.
 *
 * Files go over SFTP; what SFTP cannot do atomically or at all goes over an
 * exec channel: `mv -T` (SFTP's rename will not replace a file), `ln -s`,
 * `sync` (to make a directory durable), `chown`, and `run` itself. The host
 * key must already be in the known_hosts file given (never trust on first
 * use); authentication is by key only. Every call has a timeout.
 */
#ifndef PUNIX_ENGINE_SSH_H
#define PUNIX_ENGINE_SSH_H

#include "../base/ops.h"
#include "../base/sbuf.h"

struct ssh_target {
	char *user;              /* NULL until resolved (the URL may omit it) */
	char *host;              /* what to connect to and check in known_hosts */
	int port;                /* 0 until resolved (the URL may omit it) */
	char *known_hosts;       /* OpenSSH format */
	/*
	 * How to log in, tried in order until the server accepts: the agent at
	 * agent_sock (every key it holds), then each private key file (its
	 * public key <key>.pub beside it, or derived). With --key, that key
	 * alone.
	 */
	char *agent_sock;
	char **keys;
	size_t nkeys;
	int timeout_ms;
	/* this machine's table: known_hosts, the keys and run logs are read and written through it */
	struct punix_ops *local;
};

/* "ssh://[USER@]HOST[:PORT]" -> parts (malloc'd; user NULL, port 0 when not given); -1 if malformed. */
int ssh_parse_url(const char *url, struct ssh_target *t);
void ssh_target_free(struct ssh_target *t);

/* Connects, checks the host key, authenticates, opens SFTP. NULL + err on failure. */
struct punix_ops *ops_ssh_connect(const struct ssh_target *t, struct sbuf *err);
void ops_ssh_close(struct punix_ops *o);

/* Per engine: before its first connection, after its last. */
int ssh_library_init(struct sbuf *err);
void ssh_library_exit(void);

#endif
