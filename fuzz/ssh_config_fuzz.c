/*
 * ssh_config_fuzz.c - libFuzzer target for the readers of OpenSSH's client
 * config and known_hosts (engine/ssh_config.h), text people write by hand
 * and punix reads before it connects.
 *
 * The first byte chooses: even, the rest is a config resolved for host
 * "web.example.com", then fed to itself as the file its last Include
 * names, twice or (with bit 1 set) down past the depth limit, so that the
 * reading of included files is fuzzed too; odd, the rest is a known_hosts
 * file. Any input: 0 or -EBADMSG with a message that names the place,
 * never a crash, a read past the end or a leak. A resolved config has a
 * port 0..65535, a StrictHostKeyChecking -1..3, at most 100 IdentityFile
 * and only non-empty strings; resolving twice gives the same. A
 * known_hosts check counts what parsing each line accepts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ssh_config.h"

#define CHECK(c)                                                                                                       \
	do {                                                                                                           \
		if (!(c))                                                                                              \
			abort();                                                                                       \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s)
{
	CHECK(s != NULL && s[0] != '\0');
}

static void check_config(const struct ssh_host_config *c)
{
	CHECK(c->raw != NULL);
	CHECK(c->port >= 0 && c->port <= 65535);
	CHECK(c->strict_host_key_checking >= -1 && c->strict_host_key_checking <= 3);
	CHECK(c->nidentity <= 100);
	if (c->hostname)
		check_str(c->hostname);
	if (c->user)
		check_str(c->user);
	if (c->user_known_hosts_file)
		check_str(c->user_known_hosts_file);
	for (size_t i = 0; i < c->nidentity; i++)
		check_str(c->identity_files[i]);
	for (size_t i = 0; i < c->ninclude; i++) {
		check_str(c->includes[i].pattern);
		check_str(c->includes[i].where);
	}
	for (size_t i = 0; i < c->nwarning; i++)
		check_str(c->warnings[i]);
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_refused(int r, const struct ssh_host_config *c, const struct sbuf *err)
{
	CHECK(r == -EBADMSG && err->sb_len > 0);
	CHECK(!c->raw && !c->hostname && !c->identity_files && !c->includes && !c->warnings);
}

static void fuzz_config(const char *p, size_t n, int levels)
{
	struct ssh_host_config a, b;
	struct sbuf err = SBUF_INIT;
	int r = ssh_config_resolve("cfg", p, n, "web.example.com", "/home/u", "u", &a, &err);
	if (r < 0) {
		check_refused(r, &a, &err);
		CHECK(strncmp(err.sb_buf, "cfg:", 4) == 0);
		sbuf_free(&err);
		return;
	}
	check_config(&a);
	CHECK(ssh_config_resolve("cfg", p, n, "web.example.com", "/home/u", "u", &b, &err) == 0);
	CHECK(same(a.hostname, b.hostname) && same(a.user, b.user) && a.port == b.port);
	CHECK(a.nidentity == b.nidentity && a.ninclude == b.ninclude && a.nwarning == b.nwarning);
	for (size_t i = 0; i < a.nidentity; i++)
		CHECK(strcmp(a.identity_files[i], b.identity_files[i]) == 0);
	ssh_host_config_free(&b);
	/* the same text as the file the Includes name (ssh allows 16 levels) */
	for (int i = 0; i < levels && a.ninclude > 0; i++) {
		r = ssh_config_feed(&a, a.ninclude - 1, (size_t)i, "inc", p, n, &err);
		if (r < 0) {
			check_refused(r, &a, &err);
			break;
		}
		check_config(&a);
	}
	ssh_host_config_free(&a);
	/* without a home or a local user: what needs them stays as written */
	r = ssh_config_resolve("cfg", p, n, "w", NULL, NULL, &b, &err);
	if (r == 0)
		check_config(&b);
	else
		check_refused(r, &b, &err); /* what applies to another host may be refused */
	ssh_host_config_free(&b);
	sbuf_free(&err);
}

static void fuzz_known_hosts(const char *p, size_t n)
{
	size_t entries = 0, parsed = 0;
	struct sbuf err = SBUF_INIT;
	int r = ssh_known_hosts_check("kh", p, n, &entries, &err);
	CHECK(r == 0 || (r == -EBADMSG && strncmp(err.sb_buf, "kh:", 3) == 0));
	for (size_t at = 0, end; at < n; at = end + 1) {
		const char *nl = memchr(p + at, '\n', n - at);
		end = nl ? (size_t)(nl - p) : n;
		struct ssh_known_host kh;
		struct sbuf e = SBUF_INIT;
		int k = ssh_known_hosts_parse_line(p + at, end - at, &kh, &e);
		CHECK(k == 0 || k == 1 || (k == -EBADMSG && e.sb_len > 0));
		if (k == 1) {
			parsed++;
			check_str(kh.hosts);
			check_str(kh.key_type);
			check_str(kh.key);
			CHECK(kh.hashed == (kh.hosts[0] == '|'));
		}
		ssh_known_host_free(&kh);
		sbuf_free(&e);
	}
	CHECK(parsed == entries);
	sbuf_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	/* an exact-size copy, so ASan sees any read past the end */
	char *p = malloc(size - 1 ? size - 1 : 1);
	memcpy(p, data + 1, size - 1);
	if (data[0] & 1)
		fuzz_known_hosts(p, size - 1);
	else
		fuzz_config(p, size - 1, data[0] & 2 ? 18 : 2);
	free(p);
	return 0;
}
