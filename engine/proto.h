/*
 * proto.h - the host protocol: what a deployer and `punix host serve` on a
 * target say to each other over one byte stream (an SSH exec channel).
 *
 *   stream := frame*
 *   frame  := type(1) length(4, LE) payload      (length <= PROTO_MAX_FRAME)
 *   payload:= { tag(1) length(4, LE) bytes }      (the fields of the type)
 *
 * The target speaks first (HELLO: the magic, the protocol versions it
 * speaks, its punix version, its architecture); the deployer answers with
 * its HELLO. A deployer whose version the target does not speak gets FAIL
 * naming both; a target whose version the deployer does not speak is
 * refused by the deployer the same way. Then, in order, any number of:
 *
 *   HAVE(path*)            -> HAVE(bits: one byte per path, 1 = valid there)
 *   PATH(path, reg) { ENTRY(kind, rel, mode[, size | link]) DATA* }*  ... PUSHED
 *                          -> PUSHED(count)  (or FAIL naming the path)
 *   RUN(arg*, bundle?)     -> OUT* ERR* ... EXIT(code)    (then the server ends)
 *
 * Every field of a type is known to its decoder and has one shape (text
 * without NUL, an 8-byte LE number, or bytes); an unknown tag, a field of a
 * type that does not take it, a field twice that may appear once, or a
 * frame cut short is an error naming it, never a guess. The decoder is pure
 * (fuzzed: fuzz/proto_fuzz.c).
 */
#ifndef PUNIX_ENGINE_PROTO_H
#define PUNIX_ENGINE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../base/sbuf.h"

#define PROTO_MAGIC "punix-host"
/* The version this punix speaks; it speaks every one from PROTO_VERSION_MIN. */
#define PROTO_VERSION 1
#define PROTO_VERSION_MIN 1
#define PROTO_MAX_FRAME (16u << 20)
#define PROTO_MAX_FIELDS 65536

enum proto_type {
	PM_HELLO = 'H',
	PM_HAVE = 'Q',
	PM_PATH = 'P',
	PM_ENTRY = 'N',
	PM_DATA = 'D',
	PM_PUSHED = 'S',
	PM_RUN = 'R',
	PM_OUT = 'O',
	PM_ERR = 'E',
	PM_EXIT = 'X',
	PM_FAIL = 'F',
};

enum proto_tag {
	PF_MAGIC = 1, /* text */
	PF_VERSION,   /* number: the newest version the sender speaks */
	PF_MIN,       /* number: the oldest */
	PF_PUNIX,     /* text: the sender's punix version */
	PF_ARCH,      /* text: uname -m (the target's) */
	PF_PATH,      /* text: a store path */
	PF_BITS,      /* bytes */
	PF_REG,       /* bytes: a registration (store.h) */
	PF_KIND,      /* text: "f" file, "x" executable file, "d" directory, "l" symlink */
	PF_REL,       /* text: the entry's path below the store path ("" is the path itself) */
	PF_SIZE,      /* number: a file's size; DATA frames carry exactly that many bytes */
	PF_LINK,      /* text: a symlink's target */
	PF_BYTES,     /* bytes: DATA, OUT, ERR */
	PF_ARG,       /* text: RUN's arguments, in order */
	PF_BUNDLE,    /* bytes: a generation bundle (below) */
	PF_CODE,      /* number: an exit code */
	PF_TEXT,      /* text: why (FAIL) */
	PF_COUNT,     /* number */
	PF_STORE,     /* text: the store's directory (HELLO from the deployer) */
	PF_ROOT,      /* text: the transport root, if any (HELLO from the deployer) */
	PF_MAX_
};

struct proto_field {
	unsigned char tag;
	const unsigned char *v;
	size_t n;
};

/* A decoded frame; its fields point into the buffer it was decoded from. */
struct proto_msg {
	unsigned char type;
	struct proto_field *f;
	size_t nf;
};

/* Decodes a frame's payload of the given type; 0, or -EBADMSG with err saying why. */
int proto_decode(unsigned char type, const void *payload, size_t len, struct proto_msg *m, struct sbuf *err);
void proto_msg_free(struct proto_msg *m);
/* The type's name for messages ("HELLO"), or NULL for a type that does not exist. */
const char *proto_type_name(unsigned char type);

/* The first field with tag (NULL if none); text fields as malloc'd strings. */
const struct proto_field *proto_get(const struct proto_msg *m, unsigned char tag);
char *proto_text(const struct proto_msg *m, unsigned char tag);
bool proto_num(const struct proto_msg *m, unsigned char tag, uint64_t *out);

/* Building a frame: proto_begin, fields, then proto_end appends it to out. */
struct proto_frame {
	struct sbuf b;
};
void proto_begin(struct proto_frame *fr, unsigned char type);
void proto_put(struct proto_frame *fr, unsigned char tag, const void *v, size_t n);
void proto_put_text(struct proto_frame *fr, unsigned char tag, const char *s);
void proto_put_num(struct proto_frame *fr, unsigned char tag, uint64_t v);
void proto_end(struct proto_frame *fr, struct sbuf *out);

/*
 * A byte stream with a write buffer: frames are queued and written out
 * when 256 KiB are waiting or on proto_flush (before waiting for an answer).
 */
struct proto_io {
	ssize_t (*read)(void *ctx, void *buf, size_t n);         /* 0 at the end */
	ssize_t (*write)(void *ctx, const void *buf, size_t n);
	void *ctx;
	struct sbuf out;
	unsigned char *in;    /* read-ahead */
	size_t in_at, in_len, in_cap;
	uint64_t frames_out, frames_in, bytes_out, bytes_in;
};
void proto_io_init(struct proto_io *io, ssize_t (*rd)(void *, void *, size_t),
		   ssize_t (*wr)(void *, const void *, size_t), void *ctx);
void proto_io_free(struct proto_io *io);
/* Queues a frame built with proto_begin..; writes out if enough waits. <0 on a write error. */
int proto_send(struct proto_io *io, struct proto_frame *fr);
int proto_flush(struct proto_io *io);
/*
 * Reads one frame into *payload (reused) and decodes it into m (pointing
 * into payload). 1 at a clean end of the stream (before any byte of a
 * frame), 0 with a frame, <0 with err saying what was wrong. Bytes that are
 * not a frame (a shell's complaint, say) are reported as text.
 */
int proto_recv(struct proto_io *io, struct sbuf *payload, struct proto_msg *m, struct sbuf *err);

/* ---- the generation bundle: what the target needs to stage a deploy ---------------- */

#define BUNDLE_VERSION 1

struct bundle_file {
	char *path;
	uint32_t mode;
	bool secret;
	char *owner;          /* a secret's user, or NULL */
	unsigned char *content;
	size_t len;
};

/* A secret's value as the deployer resolved it (build-on-target bundles only). */
struct bundle_secret {
	char *service, *key, *value;
};

struct bundle {
	/*
	 * build: the target builds the program itself (--build-on-target); the
	 * bundle then carries only the stack, the request and the secrets'
	 * values, and none of the rest.
	 */
	bool build;
	struct bundle_secret *secrets;
	size_t nsecrets;
	char *stack;
	char *request;        /* the deployer's name for this op: "<host>:<op id>:<random>" */
	char *deployed_at, *source_hash;
	char *services;       /* the manifest's "services", JSON text */
	char **store_paths;
	size_t npaths;
	struct bundle_file *files;
	size_t nfiles;
};

/*
 * "PBN" version(1) { field }, fields as the plan's (plan.h). Secret
 * contents are in it: it travels only over the SSH channel and lives only
 * in memory on either side.
 */
void bundle_encode(const struct bundle *b, struct sbuf *out);
int bundle_decode(const void *buf, size_t len, struct bundle *b, struct sbuf *err);
void bundle_free(struct bundle *b);

#endif
