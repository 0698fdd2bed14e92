/*
 * test_vault.c - the --vault-secrets file (engine/vault.h): its JSON (one
 * object of names to single-line strings), its refusals (mode, owner, bad
 * JSON, multi-line values), which never quote a value, and resolving one
 * secret from the environment, a file or the vault.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "engine/desc.h"
#include "engine/vault.h"
#include "tests/support/proc.h"

static int parse(const char *text, struct vault *v, struct sbuf *err)
{
	return vault_parse(text, strlen(text), v, err);
}

Test(vault, parses_an_object_of_strings)
{
	struct vault v;
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(parse(" {\"a\": \"one\", \"b-2.x\" :\"t\\u00e9\\\"\\\\\\/\\t\",\n \"c\":\"\\ud83d\\ude00\"}\n", &v, &err),
		     0, "%s", sbuf_str(&err));
	cr_assert_eq(v.n, 3);
	size_t len;
	cr_expect_str_eq(vault_get(&v, "a", &len), "one");
	cr_expect_eq(len, 3);
	cr_expect_str_eq(vault_get(&v, "b-2.x", NULL), "t\xc3\xa9\"\\/\t");
	cr_expect_str_eq(vault_get(&v, "c", NULL), "\xf0\x9f\x98\x80");
	cr_expect_null(vault_get(&v, "d", NULL));
	vault_free(&v);
	cr_assert_eq(parse("{}", &v, &err), 0);
	cr_expect_eq(v.n, 0);
	vault_free(&v);
	sbuf_free(&err);
}

/* Each refused text, a piece of the message, and the value that must not be in it. */
static void refused(const char *text, const char *why, const char *secret)
{
	struct vault v;
	struct sbuf err = SBUF_INIT;
	cr_expect_eq(parse(text, &v, &err), -EBADMSG, "accepted: %s", text);
	cr_expect(strstr(sbuf_str(&err), why) != NULL, "for %s: %s", text, sbuf_str(&err));
	if (secret)
		cr_expect(strstr(sbuf_str(&err), secret) == NULL, "the message shows the value: %s", sbuf_str(&err));
	cr_expect_eq(v.n, 0);
	sbuf_free(&err);
}

Test(vault, bad_json_is_refused_saying_where)
{
	refused("", "line 1: not a JSON object", NULL);
	refused("[\"a\"]", "not a JSON object", NULL);
	refused("{\"a\": \"x\",}", "expected a name", NULL);
	refused("{\"a\" \"x\"}", "expected ':' after \"a\"", NULL);
	refused("{\"a\": \"x\"\n\"b\": \"y\"}", "line 2: expected ',' or '}'", NULL);
	refused("{\"a\": \"sekrit}", "the value of \"a\" has no closing quote", NULL);
	refused("{\"a\": \"x\"} {}", "something follows the object", NULL);
	refused("{\"a\": \"x\", \"a\": \"y\"}", "\"a\" is given twice", NULL);
	refused("{\"a\": \"s\\qx\"}", "the value of \"a\" holds an invalid escape", NULL);
	refused("{\"a\": \"\\ud800x\"}", "unpaired surrogate", NULL);
	refused("{\"a\": \"\xff\"}", "not valid UTF-8", NULL);
	refused("{\"a\": \"x\\u0000y\"}", "NUL", NULL);
}

Test(vault, a_value_must_be_a_single_line_string)
{
	refused("{\"a\": 42}", "the value of \"a\" is not a string", NULL);
	refused("{\"a\": {\"b\": \"c\"}}", "the value of \"a\" is not a string", NULL);
	refused("{\"a\": null}", "is not a string", NULL);
	refused("{\"a\": \"line-one\\nline-two\"}", "the value of \"a\" is not a single line", "line-one");
	refused("{\"a\": \"sek\\rrit\"}", "carriage return", "sek");
	refused("{\"a\": \"raw\nbreak\"}", "holds a line break", "raw");
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	cr_assert_eq(chmod(path, mode), 0);
}

Test(vault, the_file_must_be_yours_and_private)
{
	struct tdir t;
	tdir_make(&t);
	char *path = tdir_at(&t, "vault.json");
	struct vault v;
	struct sbuf err = SBUF_INIT;
	int64_t me = (int64_t)geteuid();

	write_file(path, "{\"tok\": \"hunter2\"}\n", 0600);
	cr_assert_eq(vault_open(ops_local(), path, me, &v, &err), 0, "%s", sbuf_str(&err));
	cr_expect_str_eq(vault_get(&v, "tok", NULL), "hunter2");
	cr_expect_str_eq(v.path, path);
	vault_free(&v);

	/* readable by its group, or by others: refused, saying how to fix it */
	for (mode_t m = 0640; m; m = m == 0640 ? 0604 : m == 0604 ? 0620 : 0) {
		sbuf_reset(&err);
		cr_assert_eq(chmod(path, m), 0);
		cr_expect_eq(vault_open(ops_local(), path, me, &v, &err), -EPERM, "mode %o", (unsigned)m);
		cr_expect(strstr(sbuf_str(&err), "chmod 600 ") && strstr(sbuf_str(&err), path), "%s", sbuf_str(&err));
		cr_expect(!strstr(sbuf_str(&err), "hunter2"), "%s", sbuf_str(&err));
	}
	/* another owner than the user punix runs as */
	cr_assert_eq(chmod(path, 0600), 0);
	sbuf_reset(&err);
	cr_expect_eq(vault_open(ops_local(), path, me + 1, &v, &err), -EPERM);
	cr_expect(strstr(sbuf_str(&err), "not owned by the user punix runs as") != NULL, "%s", sbuf_str(&err));
	/* invalid JSON: named, the place said, no value */
	write_file(path, "{\"tok\": \"hunter2\",\n \"x\": \"multi\\nline\"}", 0600);
	sbuf_reset(&err);
	cr_expect_eq(vault_open(ops_local(), path, me, &v, &err), -EBADMSG);
	cr_expect(strstr(sbuf_str(&err), path) && strstr(sbuf_str(&err), "line 2: the value of \"x\" is not a single line"),
		  "%s", sbuf_str(&err));
	cr_expect(!strstr(sbuf_str(&err), "hunter2") && !strstr(sbuf_str(&err), "multi"), "%s", sbuf_str(&err));
	/* missing */
	sbuf_reset(&err);
	cr_assert_eq(unlink(path), 0);
	cr_expect_eq(vault_open(ops_local(), path, me, &v, &err), -ENOENT);
	cr_expect(strstr(sbuf_str(&err), "cannot read the vault file") != NULL, "%s", sbuf_str(&err));
	sbuf_free(&err);
	free(path);
	tdir_free(&t);
}

Test(vault, secret_resolve_from_each_place)
{
	struct tdir t;
	tdir_make(&t);
	char *path = tdir_at(&t, "vault.json");
	write_file(path, "from-a-file\n", 0600);
	struct vault v;
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(parse("{\"k\": \"from-the-vault\"}", &v, &err), 0);
	v.path = strdup("/etc/punix/vault.json");
	char *env[] = {"TOK=from-the-env", NULL};
	struct secret_sources ss = {env, &v, ops_local()};
	char *val;
	size_t len;
	cr_assert_eq(secret_resolve(&ss, ENV_FROM_ENV, "TOK", &val, &len, &err), 0);
	cr_expect_str_eq(val, "from-the-env");
	free(val);
	cr_assert_eq(secret_resolve(&ss, ENV_FROM_FILE, path, &val, &len, &err), 0);
	cr_expect_str_eq(val, "from-a-file", "one trailing newline stripped");
	cr_expect_eq(len, 11);
	free(val);
	cr_assert_eq(secret_resolve(&ss, ENV_FROM_VAULT, "k", &val, &len, &err), 0);
	cr_expect_str_eq(val, "from-the-vault");
	free(val);

	cr_expect_eq(secret_resolve(&ss, ENV_FROM_ENV, "NOPE", &val, &len, &err), -1);
	cr_expect_str_eq(sbuf_str(&err), "not set");
	sbuf_reset(&err);
	cr_expect_eq(secret_resolve(&ss, ENV_FROM_VAULT, "nope", &val, &len, &err), -1);
	cr_expect_str_eq(sbuf_str(&err), "not in the vault file /etc/punix/vault.json");
	sbuf_reset(&err);
	ss.vault = NULL;
	cr_expect_eq(secret_resolve(&ss, ENV_FROM_VAULT, "k", &val, &len, &err), -1);
	cr_expect_str_eq(sbuf_str(&err), "no vault file was given (--vault-secrets FILE)");
	cr_expect_null(val);
	vault_free(&v);
	sbuf_free(&err);
	free(path);
	tdir_free(&t);
}
