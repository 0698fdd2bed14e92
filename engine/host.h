/*
 * host.h - host mode (docs/hosts.md): the target's server (`punix host
 * serve`, host_serve.c) and the deployer's client of it (host_client.c),
 * speaking the host protocol (proto.h) over one stream.
 */
#ifndef PUNIX_ENGINE_HOST_H
#define PUNIX_ENGINE_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/ops.h"
#include "../base/sbuf.h"
#include "../store/store.h"
#include "proto.h"

struct host_serve_config {
	int in, out;               /* the stream (standard input and output) */
	const char *self;          /* this punix, to run commands with */
	const char *punix_version; /* said in HELLO */
	char *const *env;          /* the commands' environment */
};

/* Serves one deployer until it is done; the exit code (0, or why it gave up). */
int host_serve(const struct host_serve_config *cfg);

/* ---- the deployer's side ----------------------------------------------------------- */

struct host_conn {
	struct punix_ops *o;
	struct ops_stream *s;
	struct proto_io io;
	struct sbuf payload;
	char arch[64], punix[64]; /* the target's, from its HELLO */
	uint64_t version;         /* agreed */
	unsigned waits;           /* round trips: each time we waited for an answer */
	uint64_t pushed_bytes;
};

/*
 * Runs line on the target through o's stream and says HELLO. 0 connected;
 * 1 no punix runs there (the line printed @punix-missing, or something that
 * is not the protocol: err says what); <0 with err (a protocol mismatch is
 * -EPROTO, named as [E15]).
 */
int host_connect(struct punix_ops *o, const char *line, const char *store_root, const char *troot,
		 struct host_conn *h, struct sbuf *err);
/* bits[i] = 1 when paths[i] is valid in the target's store; one round trip. */
int host_have(struct host_conn *h, const char *const *paths, size_t n, unsigned char *bits, struct sbuf *err);
/* Told, on the pushing thread, the paths sent in whole and the bytes of their files sent so far. */
struct host_push_tick {
	void (*fn)(void *arg, size_t done, uint64_t bytes);
	void *arg;
};
/*
 * Sends each path of src (its tree and registration) in one stream; one
 * round trip. tick (or NULL) after each path and each 64 KiB of a file.
 */
int host_push(struct host_conn *h, struct store *src, const char *const *paths, size_t n,
	      const struct host_push_tick *tick, struct sbuf *err);
/*
 * Runs `punix ARGS...` on the target (bundle, if not NULL, on its
 * descriptor 3); its output to out and err as it arrives; *code its exit.
 */
int host_run(struct host_conn *h, const char *const *args, size_t nargs, const struct sbuf *bundle,
	     void (*out)(void *arg, const char *buf, size_t n), void (*errout)(void *arg, const char *buf, size_t n),
	     void *arg, int *code, struct sbuf *err);
/* Ends the stream; the server's exit code in *status if not NULL. */
void host_close(struct host_conn *h, int *status);

/*
 * The command line that starts the target's server: remote (--remote-punix)
 * if set, else `punix` on the PATH, else the static build pushed into its
 * store earlier (bootstrap, if not NULL: its path in the target's store);
 * else it prints @punix-missing.
 */
char *host_line(const char *remote, const char *troot, const char *bootstrap);

/*
 * Where a static punix (the file static_punix, built for this machine)
 * lives as a store path under store_root: "<hash>-punix-static-<version>",
 * named by the binary's hash. malloc'd, or NULL with err; with bin, the
 * binary's bytes too.
 */
char *host_static_path(const char *static_punix, const char *store_root, char **bin, size_t *len, struct sbuf *err);

#endif
