/*
 * known_hosts_fuzz.c - libFuzzer target for the way punix feeds a
 * known_hosts file to libssh2 before it trusts a host's key:
 * known_hosts_load() (engine/ssh_session.c), the reader check_host_key()
 * runs, line by line into libssh2_knownhost_readline().
 *
 * Any input is loaded into a fresh libssh2 known-hosts collection, which
 * is then asked, as check_host_key() asks it, about host 127.0.0.1 port 22
 * with a fixed 32-byte ed25519 key: the answer is one of match, mismatch,
 * not found or failure, never a crash, a read past the end or a leak (of
 * ours or of libssh2's, which is not instrumented but allocates and
 * copies through the sanitizer's malloc and memcpy). Every entry libssh2
 * kept is walked. The text is NUL-terminated, as check_host_key() has it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ssh_internal.h"

#define CHECK(c)                                                                                                       \
	do {                                                                                                           \
		if (!(c))                                                                                              \
			abort();                                                                                       \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/*
 * libssh2 1.10's libssh2_knownhost_checkp() leaks an HMAC_CTX (OpenSSL's,
 * 2 allocations) for each hashed entry whose hash is not 20 bytes long
 * ("|1|c2FsdA==|c2hvcnQ= ..."): it allocates the context, then skips the
 * entry without freeing it. That is libssh2's, not ours (fuzz/README.md,
 * Findings); libcrypto has no frame pointers, so all LeakSanitizer sees of
 * the stack is CRYPTO_zalloc. Nothing else in this target allocates
 * through OpenSSL.
 */
const char *__lsan_default_suppressions(void)
{
	return "leak:CRYPTO_zalloc\n";
}

/* The key the host shows: 32 raw bytes, as an ed25519 public key is. */
static const char host_key[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialized;
	if (!initialized) {
		CHECK(ssh2_load(NULL) != NULL); /* punix's calls go through the table (engine/ssh2_api.h) */
		CHECK(libssh2_init(0) == 0);
		initialized = 1;
	}
	LIBSSH2_SESSION *session = libssh2_session_init();
	CHECK(session != NULL);
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(session);
	CHECK(kh != NULL);
	/*
	 * An exact-size copy plus the NUL that read_file() puts after every
	 * file it reads, so ASan sees any read past it. libssh2 1.10 reads one
	 * byte past the line it is given (it copies keylen + 1 bytes of the key
	 * and of the comment, and looks for the newline there): past the last
	 * line of a file without a final newline, that byte is this NUL
	 * (fuzz/README.md, Findings).
	 */
	char *p = malloc(size + 1);
	memcpy(p, data, size);
	p[size] = '\0';
	known_hosts_load(kh, p, size);
	/* the @revoked lines, read by punix itself: any text, never a read past it */
	(void)known_hosts_revoked(p, size, (const unsigned char *)host_key, sizeof(host_key));
	free(p); /* libssh2 keeps copies: nothing may point into the text any more */

	size_t entries = 0;
	struct libssh2_knownhost *prev = NULL, *e;
	while (libssh2_knownhost_get(kh, &e, prev) == 0) {
		CHECK(e != NULL && entries < size); /* each entry was at least a byte of a line */
		if (e->name)
			(void)strlen(e->name);
		if (e->key)
			(void)strlen(e->key);
		entries++;
		prev = e;
	}

	struct libssh2_knownhost *found = NULL;
	int r = libssh2_knownhost_checkp(kh, "127.0.0.1", 22, host_key, sizeof(host_key),
					 LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
						 LIBSSH2_KNOWNHOST_KEY_ED25519,
					 &found);
	CHECK(r == LIBSSH2_KNOWNHOST_CHECK_MATCH || r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH ||
	      r == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND || r == LIBSSH2_KNOWNHOST_CHECK_FAILURE);
	CHECK(entries > 0 || r != LIBSSH2_KNOWNHOST_CHECK_MATCH);
	if (r == LIBSSH2_KNOWNHOST_CHECK_MATCH || r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
		CHECK(found != NULL);

	libssh2_knownhost_free(kh);
	libssh2_session_free(session);
	return 0;
}
