/*
 * ssh_session.c - reaching a host and logging in (ssh_internal.h): the TCP
 * connection, the host key against known_hosts (read through this
 * machine's table, never trusted on first use), and key login as OpenSSH
 * tries it.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ssh_internal.h"

int connect_tcp(const char *host, int port, struct sbuf *err)
{
	char p[16];
	snprintf(p, sizeof(p), "%d", port);
	struct addrinfo hints = {0}, *res;
	hints.ai_socktype = SOCK_STREAM;
	int r = getaddrinfo(host, p, &hints, &res);
	if (r != 0) {
		sbuf_printf(err, "cannot resolve %s: %s", host, gai_strerror(r));
		return -1;
	}
	int fd = -1, why = EADDRNOTAVAIL; /* no address at all: nothing to connect to */
	for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			why = errno;
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
			why = errno; /* before close() can change it */
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		sbuf_printf(err, "cannot connect to %s port %d: %s", host, port, strerror(why));
		return fd;
	}
	/*
	 * SSH is a stream of small requests each waiting for its answer (SFTP,
	 * exec channels): Nagle's algorithm would hold each one back waiting for
	 * the previous one's ACK (measured ~6x on loopback).
	 */
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 && errno != EOPNOTSUPP) {
		why = errno;
		close(fd);
		sbuf_printf(err, "cannot set TCP_NODELAY on the connection to %s port %d: %s", host, port, strerror(why));
		return -1;
	}
	return fd;
}

/*
 * Line by line, as OpenSSH reads it: a line libssh2 cannot parse (a key
 * type it lacks) is skipped, and so is every marker line (libssh2 knows no
 * markers and would take "@revoked" for a host name): @cert-authority
 * because punix accepts no host certificates, @revoked because
 * known_hosts_revoked() checks those first.
 */
void known_hosts_load(LIBSSH2_KNOWNHOSTS *kh, const char *text, size_t len)
{
	for (const char *line = text, *next; line && line < text + len; line = next) {
		const char *nl = memchr(line, '\n', (size_t)(text + len - line));
		next = nl ? nl + 1 : NULL;
		/* with its newline, as libssh2's own reader passes it (the key's end is found by it) */
		size_t n = nl ? (size_t)(nl - line) + 1 : (size_t)(text + len - line);
		size_t lead = strspn(line, " \t");
		if (n > lead && line[lead] != '#' && line[lead] != '\n' && line[lead] != '@')
			libssh2_knownhost_readline(kh, line, n, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
	}
}

/* Standard base64 into out (at most cap bytes); the length, or -1 if it is not base64. */
static long b64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
	unsigned v = 0;
	int bits = 0;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = in[i];
		int d = ch >= 'A' && ch <= 'Z' ? ch - 'A'
			: ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
			: ch >= '0' && ch <= '9' ? ch - '0' + 52
			: ch == '+' ? 62 : ch == '/' ? 63 : ch == '=' ? -2 : -1;
		if (d == -2)
			break;
		if (d < 0)
			return -1;
		v = (v << 6) | (unsigned)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (k == cap)
				return -1;
			out[k++] = (unsigned char)(v >> bits);
		}
	}
	return (long)k;
}

bool known_hosts_revoked(const char *text, size_t len, const unsigned char *key, size_t keylen)
{
	for (const char *line = text, *next; line && line < text + len; line = next) {
		const char *nl = memchr(line, '\n', (size_t)(text + len - line));
		next = nl ? nl + 1 : NULL;
		const char *end = nl ? nl : text + len;
		const char *p = line + strspn(line, " \t");
		if ((size_t)(end - p) < 9 || strncmp(p, "@revoked", 8) || (p[8] != ' ' && p[8] != '\t'))
			continue;
		/* @revoked HOSTS KEYTYPE BASE64 [COMMENT]: revoked for every host, whatever the pattern */
		const char *f = p + 8;
		for (int field = 0; field < 2 && f < end; field++) {
			f += strspn(f, " \t");
			f += strcspn(f, " \t\n");
		}
		f += strspn(f, " \t");
		size_t flen = strcspn(f, " \t\r\n");
		if (f + flen > end || !flen)
			continue;
		unsigned char buf[4096];
		long k = b64_decode(f, flen, buf, sizeof(buf));
		if (k == (long)keylen && memcmp(buf, key, keylen) == 0)
			return true;
	}
	return false;
}

/* The host key must be in known_hosts: never trust on first use. */
int check_host_key(struct ssh *s, const struct ssh_target *t, struct sbuf *err)
{
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(s->session);
	char *text = NULL;
	size_t tlen = 0;
	int rr = kh ? t->local->read_file(t->local, t->known_hosts, 1 << 22, &text, &tlen) : -ENOMEM;
	if (rr < 0) {
		sbuf_printf(err, "cannot read the known hosts file %s: %s", t->known_hosts, ops_strerror(rr));
		if (kh)
			libssh2_knownhost_free(kh);
		return -1;
	}
	known_hosts_load(kh, text, tlen);
	size_t len;
	int type;
	const char *key = libssh2_session_hostkey(s->session, &len, &type);
	bool revoked = key && known_hosts_revoked(text, tlen, (const unsigned char *)key, len);
	free(text);
	if (revoked) {
		libssh2_knownhost_free(kh);
		sbuf_printf(err, "the host key of %s:%d is marked @revoked in %s: refusing to connect", t->host, t->port,
			    t->known_hosts);
		return -1;
	}
	int kt = type == LIBSSH2_HOSTKEY_TYPE_RSA		? LIBSSH2_KNOWNHOST_KEY_SSHRSA
		 : type == LIBSSH2_HOSTKEY_TYPE_ECDSA_256	? LIBSSH2_KNOWNHOST_KEY_ECDSA_256
		 : type == LIBSSH2_HOSTKEY_TYPE_ECDSA_384	? LIBSSH2_KNOWNHOST_KEY_ECDSA_384
		 : type == LIBSSH2_HOSTKEY_TYPE_ECDSA_521	? LIBSSH2_KNOWNHOST_KEY_ECDSA_521
		 : type == LIBSSH2_HOSTKEY_TYPE_ED25519 ? LIBSSH2_KNOWNHOST_KEY_ED25519
						       : LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
	struct libssh2_knownhost *found;
	int r = key ? libssh2_knownhost_checkp(kh, t->host, t->port, key, len,
					       LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | kt, &found)
		    : LIBSSH2_KNOWNHOST_CHECK_FAILURE;
	libssh2_knownhost_free(kh);
	if (r == LIBSSH2_KNOWNHOST_CHECK_MATCH)
		return 0;
	if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
		sbuf_printf(err, "the host key of %s:%d does NOT match %s: refusing to connect", t->host, t->port,
			    t->known_hosts);
	else
		sbuf_printf(err, "%s:%d is not in %s (host keys are never trusted on first use)", t->host, t->port,
			    t->known_hosts);
	return -1;
}

/* Logs in with one key file; 0, or <0 with why (the file's, or the server's refusal). */
static int auth_with_file(struct ssh *s, const struct ssh_target *t, const char *key, struct sbuf *why)
{
	char *priv = NULL, *pubkey = NULL;
	size_t privlen = 0, publen = 0;
	int r = t->local->read_file(t->local, key, 1 << 20, &priv, &privlen);
	if (r < 0) {
		sbuf_printf(why, "%s: %s", key, ops_strerror(r));
		return r;
	}
	struct sbuf pub = SBUF_INIT;
	sbuf_printf(&pub, "%s.pub", key);
	if (t->local->read_file(t->local, pub.sb_buf, 1 << 20, &pubkey, &publen) < 0)
		publen = 0; /* libssh2 derives it from the private key */
	sbuf_free(&pub);
	r = libssh2_userauth_publickey_frommemory(s->session, t->user, strlen(t->user), pubkey, publen, priv, privlen,
						  NULL);
	memset(priv, 0, privlen); /* do not leave a private key in freed memory */
	free(priv);
	free(pubkey);
	if (r < 0) {
		char *msg = NULL;
		libssh2_session_last_error(s->session, &msg, NULL, 0);
		sbuf_printf(why, "%s: %s", key, msg && *msg ? msg : "refused");
		return -EACCES;
	}
	return 0;
}

/* Logs in with a key the agent holds; 0, or <0 with why. */
static int auth_with_agent(struct ssh *s, const struct ssh_target *t, struct sbuf *why)
{
	LIBSSH2_AGENT *agent = libssh2_agent_init(s->session);
	if (!agent) {
		sbuf_printf(why, "the agent at %s: cannot start libssh2's agent client", t->agent_sock);
		return -ENOMEM;
	}
	/* the socket the CLI found (SSH_AUTH_SOCK, read once there): libssh2 reads no environment */
	libssh2_agent_set_identity_path(agent, t->agent_sock);
	int r = -EACCES;
	size_t tried = 0;
	if (libssh2_agent_connect(agent) != 0) {
		sbuf_printf(why, "the agent at %s: cannot connect", t->agent_sock);
	} else if (libssh2_agent_list_identities(agent) != 0) {
		sbuf_printf(why, "the agent at %s: cannot list its keys", t->agent_sock);
	} else {
		struct libssh2_agent_publickey *id = NULL, *prev = NULL;
		while (r < 0 && libssh2_agent_get_identity(agent, &id, prev) == 0) {
			tried++;
			if (libssh2_agent_userauth(agent, t->user, id) == 0)
				r = 0;
			prev = id;
		}
		if (r < 0)
			sbuf_printf(why, "the agent at %s: %zu key(s), none accepted", t->agent_sock, tried);
	}
	libssh2_agent_disconnect(agent);
	libssh2_agent_free(agent);
	return r;
}

/*
 * Key login only, as OpenSSH tries it: the agent's keys, then each key
 * file. The error names user@host:port and everything tried.
 */
int authenticate(struct ssh *s, const struct ssh_target *t, struct sbuf *err)
{
	struct sbuf tried = SBUF_INIT;
	int r = -EACCES;
	if (t->agent_sock && *t->agent_sock) {
		r = auth_with_agent(s, t, &tried);
		if (r < 0)
			sbuf_puts(&tried, "; ");
	}
	for (size_t i = 0; i < t->nkeys && r < 0; i++) {
		struct ops_stat st;
		/* a default key that does not exist is not worth a line; one asked for is */
		if (t->local->stat(t->local, t->keys[i], 1, &st) < 0 && t->nkeys > 1)
			continue;
		r = auth_with_file(s, t, t->keys[i], &tried);
		if (r < 0)
			sbuf_puts(&tried, "; ");
	}
	if (r < 0) {
		if (tried.sb_len >= 2)
			tried.sb_buf[tried.sb_len -= 2] = '\0';
		sbuf_printf(err, "key authentication as %s@%s:%d failed: %s", t->user, t->host, t->port,
			    tried.sb_len ? tried.sb_buf : "no agent and none of the key files exist (give one with --key)");
	}
	sbuf_free(&tried);
	return r < 0 ? -1 : 0;
}
