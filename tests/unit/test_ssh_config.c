/*
 * test_ssh_config.c - OpenSSH's client config and known_hosts read from
 * bytes (engine/ssh_config.h): which block applies to a host, which value
 * wins, what is expanded, how Include files are fed in, and every way a
 * config or a known_hosts line is refused, each naming path:line.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ssh_config.h"

#define ED25519 "AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
#define ECDSA                                                                                                          \
	"AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" \
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define HASHED "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|A4Vf9JAnkwF7GzejeJdS+cAjBV4="

/* Resolves text for host as user "me" with home /home/me, asserting success. */
static struct ssh_host_config resolve(const char *text, const char *host)
{
	struct ssh_host_config c;
	struct sbuf err = SBUF_INIT;
	int r = ssh_config_resolve("cfg", text, strlen(text), host, "/home/me", "me", &c, &err);
	cr_assert_eq(r, 0, "%s", sbuf_str(&err));
	sbuf_free(&err);
	return c;
}

/* Resolves text expecting a refusal whose message starts with `where` and holds `what`. */
static void refused(const char *text, const char *where, const char *what)
{
	struct ssh_host_config c;
	struct sbuf err = SBUF_INIT;
	int r = ssh_config_resolve("cfg", text, strlen(text), "web", "/home/me", "me", &c, &err);
	cr_assert_eq(r, -EBADMSG, "accepted: %s", text);
	cr_expect(strncmp(sbuf_str(&err), where, strlen(where)) == 0, "%s: not at %s", sbuf_str(&err), where);
	cr_expect(strstr(sbuf_str(&err), what) != NULL, "%s: does not say %s", sbuf_str(&err), what);
	cr_expect(c.raw == NULL && c.hostname == NULL && c.nidentity == 0 && c.ninclude == 0, "left something");
	sbuf_free(&err);
}

static bool warned(const struct ssh_host_config *c, const char *what)
{
	for (size_t i = 0; i < c->nwarning; i++)
		if (strstr(c->warnings[i], what))
			return true;
	return false;
}

Test(ssh_config, host_patterns_select_blocks_with_wildcards_and_negation)
{
	const char *text = "Host *.example.com !bad.example.com\n"
	                   "  User ex\n"
	                   "Host web? db*\n"
	                   "  User short\n"
	                   "Host *\n"
	                   "  User everyone\n";
	const char *cases[][2] = {
	    {"www.example.com", "ex"}, {"bad.example.com", "everyone"},
	    {"web1", "short"},         {"web12", "everyone"},
	    {"db-main", "short"},      {"WEB1", "everyone"}, /* Host is case-sensitive */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ssh_host_config c = resolve(text, cases[i][0]);
		cr_expect_str_eq(c.user, cases[i][1], "host %s", cases[i][0]);
		ssh_host_config_free(&c);
	}
	/* a Host with nothing but a comment matches nothing, as in ssh */
	struct ssh_host_config e = resolve("Host # none yet\n  Port 1\nUserKnownHostsFile # none\n", "web");
	cr_expect(e.port == 0 && e.user_known_hosts_file == NULL);
	ssh_host_config_free(&e);
	/* a negated pattern wins whatever its place on the line */
	struct ssh_host_config c = resolve("Host web !web\n  Port 1\n", "web");
	cr_expect_eq(c.port, 0);
	ssh_host_config_free(&c);
}

Test(ssh_config, the_first_value_obtained_wins)
{
	struct ssh_host_config c = resolve("Host web\n  Port 2222\n  User a\nHost *\n  Port 22\n  User b\n"
	                                   "  StrictHostKeyChecking accept-new\n",
	                                   "web");
	cr_expect_eq(c.port, 2222);
	cr_expect_str_eq(c.user, "a");
	cr_expect_eq(c.strict_host_key_checking, 2);
	cr_expect_null(c.hostname);
	cr_expect_null(c.user_known_hosts_file);
	ssh_host_config_free(&c);
	c = resolve("", "web");
	cr_expect(c.port == 0 && c.strict_host_key_checking == -1 && !c.user && c.nidentity == 0);
	ssh_host_config_free(&c);
}

Test(ssh_config, match_all_and_match_host)
{
	const char *text = "Host web\n"
	                   "  HostName web.internal\n"
	                   "Match host *.internal\n" /* the HostName so far, not the alias */
	                   "  User inside\n"
	                   "Match originalhost web !host nothing\n"
	                   "  Port 2200\n"
	                   "Match all\n"
	                   "  StrictHostKeyChecking yes\n"
	                   "  User all\n";
	struct ssh_host_config c = resolve(text, "web");
	cr_expect_str_eq(c.hostname, "web.internal");
	cr_expect_str_eq(c.user, "inside");
	cr_expect_eq(c.port, 2200);
	cr_expect_eq(c.strict_host_key_checking, 1);
	ssh_host_config_free(&c);
	c = resolve(text, "db");
	cr_expect_str_eq(c.user, "all");
	cr_expect_eq(c.port, 0);
	ssh_host_config_free(&c);
	/* Match host is case-insensitive and takes a comma-separated list with !negation */
	c = resolve("Match host DB*,!db9\n  Port 5\n", "db1");
	cr_expect_eq(c.port, 5);
	ssh_host_config_free(&c);
	c = resolve("Match host DB*,!db9\n  Port 5\n", "db9");
	cr_expect_eq(c.port, 0);
	ssh_host_config_free(&c);
}

Test(ssh_config, match_criteria_that_cannot_be_decided_skip_the_block_with_a_warning)
{
	struct ssh_host_config c = resolve("Match exec \"test -f /x\"\n  Port 1\n"
	                                   "Match host other localnetwork 10.0.0.0/8\n  Port 2\n"
	                                   "Match localuser me\n  User local\n",
	                                   "web");
	cr_expect_eq(c.port, 0);
	cr_expect_str_eq(c.user, "local");
	cr_assert_eq(c.nwarning, 1, "no warning when a decidable criterion already failed");
	cr_expect(warned(&c, "cfg:1: Match exec cannot be decided here"), "%s", c.warnings[0]);
	ssh_host_config_free(&c);
	refused("Match frobnicate x\n", "cfg:1:", "unknown criterion frobnicate");
	refused("Match host\n", "cfg:1:", "needs patterns");
	refused("Match host a user b all\n", "cfg:1:", "cannot be combined");
	refused("Match all host a\n", "cfg:1:", "cannot be combined");
}

Test(ssh_config, keyword_equals_value_and_case)
{
	struct ssh_host_config c = resolve("PORT=2022\nuser =bob\n  hostname= h.example.com  \n"
	                                   "StrictHostKeyChecking\t=\tNo\n",
	                                   "web");
	cr_expect_eq(c.port, 2022);
	cr_expect_str_eq(c.user, "bob");
	cr_expect_str_eq(c.hostname, "h.example.com");
	cr_expect_eq(c.strict_host_key_checking, 0);
	ssh_host_config_free(&c);
	/* only one '=': the second is part of the value */
	refused("Port==22\n", "cfg:1:", "Port =22: not 1..65535");
}

Test(ssh_config, quotes_escapes_and_comments)
{
	struct ssh_host_config c = resolve("# a comment\n\n   \t\n"
	                                   "IdentityFile \"~/my keys/id\" # why this key\n"
	                                   "IdentityFile '/k/it''s'\n"
	                                   "IdentityFile /k/a\\ b\n"
	                                   "User \"\\\"quoted\\\"\"\n"
	                                   "Host=\"web\"\n"
	                                   "  Port 99\r\n",
	                                   "web");
	cr_assert_eq(c.nidentity, 3);
	cr_expect_str_eq(c.identity_files[0], "/home/me/my keys/id");
	cr_expect_str_eq(c.identity_files[1], "/k/its");
	cr_expect_str_eq(c.identity_files[2], "/k/a b");
	cr_expect_str_eq(c.user, "\"quoted\"");
	cr_expect_eq(c.port, 99);
	ssh_host_config_free(&c);
	refused("Host *\n\nUser \"bob\n", "cfg:3:", "unterminated quote");
	refused("Foo 'bar\n", "cfg:1:", "unterminated quote"); /* even for a keyword not read */
}

Test(ssh_config, tokens_and_tilde_are_expanded)
{
	struct ssh_host_config c = resolve("Host web\n"
	                                   "  HostName %h.example.com\n"
	                                   "  User deploy\n"
	                                   "  Port 2222\n"
	                                   "  IdentityFile ~/.ssh/%r@%h:%p\n"
	                                   "  IdentityFile %d/keys/%u-%n-100%%\n"
	                                   "  IdentityFile ~me/k\n"
	                                   "  UserKnownHostsFile ~/.ssh/kh_%h /etc/ssh/kh\n",
	                                   "web");
	cr_expect_str_eq(c.hostname, "web.example.com");
	cr_assert_eq(c.nidentity, 3);
	cr_expect_str_eq(c.identity_files[0], "/home/me/.ssh/deploy@web.example.com:2222");
	cr_expect_str_eq(c.identity_files[1], "/home/me/keys/me-web-100%");
	cr_expect_str_eq(c.identity_files[2], "/home/me/k");
	cr_expect_str_eq(c.user_known_hosts_file, "/home/me/.ssh/kh_web.example.com");
	cr_expect_eq(c.nwarning, 0);
	ssh_host_config_free(&c);
	/* ssh connects to the host name in lower case, and that is its %h; %n is the alias as typed */
	c = resolve("HostName %h.EXAMPLE.com\nIdentityFile /k/%h/%n\n", "WEB1");
	cr_expect_str_eq(c.hostname, "web1.example.com");
	cr_expect_str_eq(c.identity_files[0], "/k/web1.example.com/WEB1");
	ssh_host_config_free(&c);
	c = resolve("IdentityFile /k/%h\n", "WEB1");
	cr_expect_null(c.hostname);
	cr_expect_str_eq(c.identity_files[0], "/k/web1");
	ssh_host_config_free(&c);
	/* %r is the local user without a User; %p 22 without a Port */
	c = resolve("IdentityFile /k/%r-%p\n", "web");
	cr_expect_str_eq(c.identity_files[0], "/k/me-22");
	ssh_host_config_free(&c);
}

Test(ssh_config, what_cannot_be_expanded_stays_with_a_warning)
{
	struct ssh_host_config c = resolve("IdentityFile ~bob/.ssh/id_%l\nUserKnownHostsFile ${HOME}/kh\n", "web");
	cr_expect_str_eq(c.identity_files[0], "~bob/.ssh/id_%l");
	cr_expect_str_eq(c.user_known_hosts_file, "${HOME}/kh");
	cr_expect(warned(&c, "cfg:1: IdentityFile ~bob/.ssh/id_%l: not expanded here: ~bob %l"));
	cr_expect(warned(&c, "cfg:2: UserKnownHostsFile ${HOME}/kh: not expanded here: ${...}"));
	ssh_host_config_free(&c);
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(ssh_config_resolve("cfg", "IdentityFile ~/%d/%u\n", 21, "web", NULL, NULL, &c, &err), 0);
	cr_expect_str_eq(c.identity_files[0], "~/%d/%u");
	cr_expect_eq(c.nwarning, 1);
	ssh_host_config_free(&c);
	sbuf_free(&err);
	refused("IdentityFile /k/%x\n", "cfg:1:", "unknown token %x");
	refused("HostName %p.example.com\n", "cfg:1:", "unknown token %p");
	refused("IdentityFile /k/%\n", "cfg:1:", "a % at the end");
	/* not taken, not expanded, not refused (ssh only expands what it uses) */
	c = resolve("Host other\n  HostName %p\nHost *\n  HostName a\n  HostName %z\n", "web");
	cr_expect_str_eq(c.hostname, "a");
	ssh_host_config_free(&c);
}

Test(ssh_config, several_identity_files_in_order_without_duplicates)
{
	struct ssh_host_config c = resolve("Host web\n  IdentityFile /k/web\nHost *\n  IdentityFile /k/all\n"
	                                   "  IdentityFile /k/web\n  IdentityFile NONE\n",
	                                   "web");
	cr_assert_eq(c.nidentity, 3);
	cr_expect_str_eq(c.identity_files[0], "/k/web");
	cr_expect_str_eq(c.identity_files[1], "/k/all");
	cr_expect_str_eq(c.identity_files[2], "none");
	ssh_host_config_free(&c);
	struct sbuf many = SBUF_INIT;
	for (int i = 0; i <= 100; i++)
		sbuf_printf(&many, "IdentityFile /k/%d\n", i);
	refused(many.sb_buf, "cfg:101:", "more than 100 IdentityFile");
	sbuf_free(&many);
}

Test(ssh_config, bad_values_are_refused_with_path_and_line)
{
	refused("Host web\n  Port 0\n", "cfg:2:", "Port 0: not 1..65535 or ssh");
	refused("Port 65536\n", "cfg:1:", "Port 65536");
	refused("Port 22x\n", "cfg:1:", "Port 22x");
	refused("Port -1\n", "cfg:1:", "Port -1");
	refused("Host other\n\n  Port 99999\n", "cfg:3:", "Port 99999"); /* checked in blocks that do not apply */
	refused("Port http\n", "cfg:1:", "other service names are not looked up"); /* no /etc/services */
	refused("Port 22 23\n", "cfg:1:", "Port takes one value");
	refused("Port\n", "cfg:1:", "Port has no value");
	refused("User #nobody\n", "cfg:1:", "User needs a value");
	refused("Host \"\"\n", "cfg:1:", "Host: an empty value");
	refused("StrictHostKeyChecking maybe\n", "cfg:1:", "not yes, no, accept-new, ask or off");
	refused("UserKnownHostsFile /a none\n", "cfg:1:", "none must be alone");
	char *line = malloc(5000);
	memset(line, 'x', 4999);
	memcpy(line, "User ", 5);
	line[4999] = '\0';
	refused(line, "cfg:1:", "over 4096 bytes");
	free(line);
	struct ssh_host_config c = resolve("Port ssh\nPort 65535\n", "web");
	cr_expect_eq(c.port, 22);
	ssh_host_config_free(&c);
	c = resolve("Port +022\n", "web"); /* as strtonum reads it */
	cr_expect_eq(c.port, 22);
	ssh_host_config_free(&c);
	struct sbuf err = SBUF_INIT;
	cr_expect_eq(ssh_config_resolve("cfg", "User a\nUser b\0c\n", 15, "web", NULL, NULL, &c, &err), -EBADMSG);
	cr_expect(strstr(sbuf_str(&err), "cfg:2: the line holds a NUL byte") != NULL, "%s", sbuf_str(&err));
	cr_expect_eq(ssh_config_resolve("cfg", "", 0, "", NULL, NULL, &c, &err), -EINVAL);
	sbuf_free(&err);
}

Test(ssh_config, includes_are_reported_in_order_those_of_other_blocks_for_checking)
{
	struct ssh_host_config c = resolve("Include ~/.ssh/config.d/* /etc/ssh/extra\n"
	                                   "Host other\n  Include never\n"
	                                   "Host web\n  Include 'web conf'\n",
	                                   "web");
	cr_assert_eq(c.ninclude, 4);
	cr_expect_str_eq(c.includes[0].pattern, "/home/me/.ssh/config.d/*");
	cr_expect_str_eq(c.includes[0].where, "cfg:1");
	cr_expect_str_eq(c.includes[1].pattern, "/etc/ssh/extra");
	cr_expect_str_eq(c.includes[2].pattern, "never");
	cr_expect(!c.includes[0].check_only && !c.includes[1].check_only && !c.includes[3].check_only);
	cr_expect(c.includes[2].check_only, "ssh reads it only for its errors");
	cr_expect_str_eq(c.includes[3].pattern, "web conf");
	cr_expect_str_eq(c.includes[3].where, "cfg:5");
	/* a file read only to check it sets nothing, but its errors are the config's */
	const char *quiet = "Port 1\nUser x\nMatch all\nHost *\n  User y\n", *broken = "Host *\n  Port 0\n";
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(ssh_config_feed(&c, 2, 0, "never", quiet, strlen(quiet), &err), 0, "%s", sbuf_str(&err));
	cr_expect(c.port == 0 && c.user == NULL);
	cr_expect_eq(ssh_config_feed(&c, 2, 0, "never", broken, strlen(broken), &err), -EBADMSG);
	cr_expect(strstr(sbuf_str(&err), "never:2: Port 0") != NULL, "%s", sbuf_str(&err));
	ssh_host_config_free(&c);
	sbuf_free(&err);
}

Test(ssh_config, an_included_file_counts_where_its_include_stands)
{
	const char *top = "Port 1000\n"  /* before the Include: beats it */
	                  "Include a*\n" /* a1, a2 */
	                  "User top\n"   /* after: loses to it */
	                  "IdentityFile /k/top\n"
	                  "Include b\n";
	struct ssh_host_config c = resolve(top, "web");
	const char *a1 = "Port 1\nUser a1\nIdentityFile /k/a1\nInclude nested\n", *a2 = "HostName a2\nUser a2\n",
	           *nested = "IdentityFile /k/nested\nStrictHostKeyChecking ask\n",
	           *b = "User b\nHostName b\nUserKnownHostsFile /kh/%h\n";
	struct sbuf err = SBUF_INIT;
	/* fed out of order on purpose: the order of reading is what counts */
	cr_assert_eq(c.ninclude, 2);
	cr_assert_eq(ssh_config_feed(&c, 1, 0, "b", b, strlen(b), &err), 0, "%s", sbuf_str(&err));
	cr_assert_eq(ssh_config_feed(&c, 0, 1, "a2", a2, strlen(a2), &err), 0, "%s", sbuf_str(&err));
	cr_assert_eq(ssh_config_feed(&c, 0, 0, "a1", a1, strlen(a1), &err), 0, "%s", sbuf_str(&err));
	cr_assert_eq(c.ninclude, 3);
	cr_expect_str_eq(c.includes[1].pattern, "nested", "listed right after the include it is in");
	cr_expect_str_eq(c.includes[1].where, "a1:4");
	cr_assert_eq(ssh_config_feed(&c, 1, 0, "nested", nested, strlen(nested), &err), 0, "%s", sbuf_str(&err));
	cr_expect_eq(c.port, 1000);
	cr_expect_str_eq(c.user, "a1");
	cr_expect_str_eq(c.hostname, "a2");
	cr_expect_eq(c.strict_host_key_checking, 3);
	cr_expect_str_eq(c.user_known_hosts_file, "/kh/a2", "%%h is the HostName as finally resolved");
	cr_assert_eq(c.nidentity, 3);
	cr_expect_str_eq(c.identity_files[0], "/k/a1");
	cr_expect_str_eq(c.identity_files[1], "/k/nested");
	cr_expect_str_eq(c.identity_files[2], "/k/top");
	/* an error in an included file names it, and ends the config */
	cr_expect_eq(ssh_config_feed(&c, 2, 0, "bad", "\nPort x\n", 8, &err), -EBADMSG);
	cr_expect(strstr(sbuf_str(&err), "bad:2: Port x") != NULL, "%s", sbuf_str(&err));
	cr_expect(c.raw == NULL && c.ninclude == 0);
	cr_expect_eq(ssh_config_feed(&c, 0, 0, "x", "", 0, &err), -EINVAL);
	sbuf_free(&err);
}

Test(ssh_config, what_follows_an_include_sees_what_the_included_file_set)
{
	/* the usual ~/.ssh/config: hosts in config.d, then rules over the names they set */
	struct ssh_host_config c = resolve("Include config.d/*\n"
	                                   "Match host *.internal\n  User ops\n  Include internal.conf\n"
	                                   "Match user ops\n  Port 2222\n",
	                                   "db");
	const char *hosts = "Host db\n  HostName db.internal\n", *internal = "IdentityFile ~/.ssh/internal\n";
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(c.ninclude, 2);
	cr_expect(c.includes[1].check_only);
	cr_assert_eq(ssh_config_feed(&c, 0, 0, "config.d/hosts", hosts, strlen(hosts), &err), 0, "%s", err.sb_buf);
	cr_expect_str_eq(c.user, "ops");
	cr_expect_eq(c.port, 2222);
	cr_assert_eq(c.ninclude, 2);
	cr_expect_str_eq(c.includes[1].pattern, "internal.conf");
	cr_expect(!c.includes[1].check_only, "the Include in the Match block now applies");
	cr_assert_eq(ssh_config_feed(&c, 1, 0, "internal.conf", internal, strlen(internal), &err), 0, "%s", err.sb_buf);
	cr_assert_eq(c.nidentity, 1);
	cr_expect_str_eq(c.identity_files[0], "/home/me/.ssh/internal");
	ssh_host_config_free(&c);
	sbuf_free(&err);
}

Test(ssh_config, includes_nest_at_most_16_deep)
{
	struct ssh_host_config c = resolve("Include f\n", "web");
	struct sbuf err = SBUF_INIT;
	int r = 0;
	for (size_t depth = 1; r == 0 && depth <= 17; depth++)
		r = ssh_config_feed(&c, c.ninclude - 1, 0, "f", "Include f\n", 10, &err);
	cr_expect_eq(r, -EBADMSG);
	cr_expect(strstr(sbuf_str(&err), "f:1: Include: files included more than 16 deep") != NULL, "%s",
	          sbuf_str(&err));
	ssh_host_config_free(&c);
	sbuf_free(&err);
}

/* ---- known_hosts -------------------------------------------------------------------------- */

static int kh_check(const char *text, size_t *entries, struct sbuf *err)
{
	return ssh_known_hosts_check("kh", text, strlen(text), entries, err);
}

Test(known_hosts, plain_hashed_and_marked_entries_are_counted)
{
	const char *text = "# known hosts\n"
	                   "\n"
	                   "web.example.com,10.0.0.1 ssh-ed25519 " ED25519 "\n"
	                   "[db.example.com]:2222,[10.0.0.2]:* ecdsa-sha2-nistp256 " ECDSA " db key\n"
	                   "  " HASHED " ssh-ed25519 " ED25519 "\r\n"
	                   "@cert-authority *.example.com ssh-ed25519 " ED25519 "\n"
	                   "@revoked * ssh-ed25519 " ED25519 " old\n"
	                   "!bad.example.com,*.example.com ssh-ed25519 " ED25519;
	size_t n = 99;
	struct sbuf err = SBUF_INIT;
	cr_expect_eq(kh_check(text, &n, &err), 0, "%s", sbuf_str(&err));
	cr_expect_eq(n, 6);
	sbuf_free(&err);
}

Test(known_hosts, a_line_parses_into_its_parts)
{
	struct ssh_known_host kh;
	struct sbuf err = SBUF_INIT;
	const char *l = "@cert-authority\t*.example.com ssh-ed25519 " ED25519 "  the CA\n";
	cr_assert_eq(ssh_known_hosts_parse_line(l, strlen(l), &kh, &err), 1, "%s", sbuf_str(&err));
	cr_expect_eq(kh.marker, SSH_KH_CERT_AUTHORITY);
	cr_expect(!kh.hashed);
	cr_expect_str_eq(kh.hosts, "*.example.com");
	cr_expect_str_eq(kh.key_type, "ssh-ed25519");
	cr_expect_str_eq(kh.key, ED25519);
	cr_expect_str_eq(kh.comment, "the CA");
	ssh_known_host_free(&kh);
	l = HASHED " ssh-ed25519 " ED25519;
	cr_assert_eq(ssh_known_hosts_parse_line(l, strlen(l), &kh, &err), 1, "%s", sbuf_str(&err));
	cr_expect(kh.hashed && kh.marker == SSH_KH_PLAIN && kh.comment == NULL);
	ssh_known_host_free(&kh);
	cr_expect_eq(ssh_known_hosts_parse_line("  # note", 8, &kh, &err), 0);
	cr_expect_eq(ssh_known_hosts_parse_line("", 0, &kh, &err), 0);
	sbuf_free(&err);
}

Test(known_hosts, malformed_lines_are_named)
{
	const char *cases[][2] = {
	    {"web ssh-ed25519\n", "kh:1: 2 of the 3 fields"},
	    {"web\n", "kh:1: 1 of the 3 fields"},
	    {"@revoked\n", "kh:1: 0 of the 3 fields"},
	    {"web ssh-ed25519 AAAA$$$$\n", "not valid base64"},
	    {"web ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4\n",
	     "not valid base64"},
	    {"web ssh-rsa " ED25519 "\n", "not an SSH key blob of type ssh-rsa"},
	    {"web ssh-foo " ED25519 "\n", "unknown key type ssh-foo"},
	    {"@trusted web ssh-ed25519 " ED25519 "\n", "unknown marker @trusted"},
	    {"|1|AAAA|BBBB ssh-ed25519 " ED25519 "\n", "hashed host"},
	    {"|2|x|y ssh-ed25519 " ED25519 "\n", "hashed host"},
	    {"a,,b ssh-ed25519 " ED25519 "\n", "an empty pattern"},
	    {"[web]:99999 ssh-ed25519 " ED25519 "\n", "[host]:port"},
	    {"[web ssh-ed25519 " ED25519 "\n", "[host]:port"},
	    {"\n\n# ok\nweb ssh-ed25519 " ED25519 "\nweb\n", "kh:5:"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;
		struct sbuf err = SBUF_INIT;
		cr_expect_eq(kh_check(cases[i][0], &n, &err), -EBADMSG, "accepted: %s", cases[i][0]);
		cr_expect(strstr(sbuf_str(&err), cases[i][1]) != NULL, "%s: does not say %s", sbuf_str(&err),
		          cases[i][1]);
		cr_expect(strncmp(sbuf_str(&err), "kh:", 3) == 0, "%s", sbuf_str(&err));
		sbuf_free(&err);
	}
	/* the first malformed line in full, and how many more; the good ones still counted */
	size_t n;
	struct sbuf err = SBUF_INIT;
	cr_expect_eq(kh_check("x\nweb ssh-ed25519 " ED25519 "\ny\nz\n", &n, &err), -EBADMSG);
	cr_expect_eq(n, 1);
	cr_expect(strstr(sbuf_str(&err), "kh:1: 1 of the 3 fields") && strstr(sbuf_str(&err), "2 more"), "%s",
	          sbuf_str(&err));
	sbuf_free(&err);
}
