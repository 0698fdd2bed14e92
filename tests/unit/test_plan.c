/*
 * test_plan.c - an op's plan (engine/plan.h): the binary encoding round
 * trip, the JSON plans of punix before it, and every way bytes can fail to
 * be a plan, each with a message that says which.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/plan.h"

static struct op_plan full(void)
{
	struct op_plan p = {0};
	p.ssh = strdup("ssh://deploy@host:2222");
	p.known_hosts = strdup("/root/.ssh/known_hosts");
	p.key = strdup("/root/.ssh/id_ed25519");
	p.transport_root = strdup("");
	p.deployments_root = strdup("/var/lib/punix/deployments");
	p.unit_dir = strdup("/etc/systemd/system");
	p.store_root = strdup("/var/lib/punix/store");
	p.stack = strdup("Web");
	p.activate = true;
	p.generation = 1001;
	p.previous = 999;
	p.deployed_at = strdup("2026-12-03T07:00:00Z");
	p.source_hash = strdup("00ff");
	plan_list_add(&p.store_paths, &p.npaths, "/var/lib/punix/store/0123456789abcdfghijklmnpqrsvwxyz-app-1");
	plan_list_add(&p.store_paths, &p.npaths, "/var/lib/punix/store/1123456789abcdfghijklmnpqrsvwxyz-lib-2");
	p.config_files = calloc(1, sizeof(*p.config_files));
	p.config_files[0] = (struct plan_file){strdup("/etc/web.conf"), strdup("ab"), 0640, NULL};
	p.nconfig = 1;
	p.secret_files = calloc(1, sizeof(*p.secret_files));
	p.secret_files[0] = (struct plan_file){strdup("/x/web.env"), NULL, 0600, strdup("web")};
	p.nsecret = 1;
	plan_list_add(&p.adopt, &p.nadopt, "/etc/motd");
	p.services = strdup("[{\"name\":\"web\"}]");
	p.keep = 3;
	p.prune = calloc(2, sizeof(*p.prune));
	p.prune[0] = 1;
	p.prune[1] = -2; /* signed numbers survive */
	p.nprune = 2;
	return p;
}

Test(plan, a_plan_round_trips_through_its_encoding)
{
	struct op_plan p = full(), q;
	unsigned char *b;
	size_t n;
	plan_encode(&p, &b, &n);
	cr_assert(n > 4 && memcmp(b, "PPL\x02", 4) == 0);
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(plan_decode(b, n, &q, &err), 0, "%s", err.sb_buf);
	cr_expect_str_eq(q.ssh, p.ssh);
	cr_expect_str_eq(q.transport_root, "");
	cr_expect_str_eq(q.stack, "Web");
	cr_expect(q.activate && !q.enable);
	cr_expect_eq(q.generation, 1001);
	cr_expect_eq(q.previous, 999);
	cr_assert_eq(q.npaths, 2);
	cr_expect_str_eq(q.store_paths[1], p.store_paths[1]);
	cr_assert_eq(q.nconfig, 1);
	cr_expect_eq(q.config_files[0].mode, 0640);
	cr_expect_str_eq(q.config_files[0].sha256, "ab");
	cr_assert_eq(q.nsecret, 1);
	cr_expect_null(q.secret_files[0].sha256);
	cr_expect_str_eq(q.secret_files[0].owner, "web");
	cr_expect_str_eq(q.adopt[0], "/etc/motd");
	cr_expect_str_eq(q.services, p.services);
	cr_assert_eq(q.nprune, 2);
	cr_expect_eq(q.prune[1], -2);
	cr_expect_eq(q.keep, 3);
	unsigned char *b2;
	size_t n2;
	plan_encode(&q, &b2, &n2);
	cr_expect(n2 == n && memcmp(b, b2, n) == 0, "the encoding is stable");
	free(b);
	free(b2);
	sbuf_free(&err);
	plan_free(&p);
	plan_free(&q);
}

/* Confirm-or-revert's fields make a version 4 plan; a plan without them stays version 2. */
Test(plan, confirm_fields_make_a_version_4_plan)
{
	struct op_plan p = {0}, q;
	p.stack = plan_strdup("Web");
	unsigned char *b;
	size_t n;
	plan_encode(&p, &b, &n);
	cr_expect_eq(b[3], 2);
	free(b);
	p.confirm_timeout = 30;
	p.confirm_token = plan_strdup("0123abcd");
	p.health = plan_strdup("curl -fsS localhost/health");
	p.confirm_needed = true;
	plan_encode(&p, &b, &n);
	cr_expect_eq(b[3], 4);
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(plan_decode(b, n, &q, &err), 0, "%s", err.sb_buf);
	cr_expect_eq(q.confirm_timeout, 30);
	cr_expect_str_eq(q.confirm_token, "0123abcd");
	cr_expect_str_eq(q.health, p.health);
	cr_expect(q.confirm_needed);
	char *j = plan_to_json(&q);
	cr_expect(strstr(j, "\"confirm_timeout\": 30") || strstr(j, "\"confirm_timeout\":30"), "%s", j);
	free(j);
	free(b);
	sbuf_free(&err);
	plan_free(&p);
	plan_free(&q);
}

Test(plan, a_json_plan_of_an_older_punix_is_read)
{
	const char *old = "{\"activate\":false,\"config_files\":[{\"mode\":\"0644\",\"path\":\"/etc/a\",\"sha256\":\"5f\"}],"
			  "\"deployments_root\":\"/d\",\"generation\":2,\"previous\":1,\"secret_files\":[],"
			  "\"services\":[{\"name\":\"web\"}],\"ssh\":\"\",\"stack\":\"Web\",\"store_paths\":[\"/s/x\"],"
			  "\"store_root\":\"/s\",\"transport_root\":\"/t\",\"unit_dir\":\"/u\"}";
	struct op_plan q;
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(plan_decode(old, strlen(old), &q, &err), 0, "%s", err.sb_buf);
	cr_expect_eq(q.generation, 2);
	cr_expect_str_eq(q.transport_root, "/t");
	cr_assert_eq(q.nconfig, 1);
	cr_expect_eq(q.config_files[0].mode, 0644);
	cr_expect_str_eq(q.store_paths[0], "/s/x");
	cr_expect_str_eq(q.services, "[{\"name\":\"web\"}]");
	plan_free(&q);
	sbuf_free(&err);
}

/* Decoding fails with -EBADMSG, a message holding want, and nothing left allocated. */
static void refused(const void *b, size_t n, const char *want)
{
	struct op_plan q;
	struct sbuf err = SBUF_INIT;
	cr_expect_eq(plan_decode(b, n, &q, &err), -EBADMSG);
	cr_expect(strstr(err.sb_buf, want) != NULL, "'%s' does not say '%s'", err.sb_buf, want);
	cr_expect(!q.stack && !q.store_paths && !q.config_files);
	sbuf_free(&err);
}

Test(plan, a_plan_with_a_supervisor_conf_is_version_3_and_round_trips)
{
	struct op_plan p = full(), q;
	p.supervisor_conf = strdup("/tmp/s/supervisord.conf");
	unsigned char *b;
	size_t n;
	plan_encode(&p, &b, &n);
	cr_assert(n > 4 && memcmp(b, "PPL\x03", 4) == 0);
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(plan_decode(b, n, &q, &err), 0, "%s", err.sb_buf);
	cr_expect_str_eq(q.supervisor_conf, "/tmp/s/supervisord.conf");
	char *j = plan_to_json(&q);
	cr_expect(strstr(j, "\"supervisor_conf\":\"/tmp/s/supervisord.conf\"") != NULL, "%s", j);
	free(j);
	plan_free(&p);
	plan_free(&q);
	free(b);
	sbuf_free(&err);
}

Test(plan, bytes_that_are_not_a_plan_are_refused_saying_why)
{
	struct op_plan p = full();
	unsigned char *b;
	size_t n;
	plan_encode(&p, &b, &n);
	refused(b, n - 3, "past the end");
	refused(b, 6, "cut short");
	refused("PPL\x05", 4, "version 5 is not one this punix reads");
	refused("PPL\x03\x1c\x08\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00", 17, "unknown field 28 (plan version 3)");
	/* a field of version 3 (--supervisor-conf) in a version-2 plan */
	refused("PPL\x02\x1b\x01\x00\x00\x00/", 10, "unknown field 27 (plan version 2)");
	/* a field of version 2 (the target's --remote-punix) in a version-1 plan */
	refused("PPL\x01\x19\x01\x00\x00\x00/", 10, "unknown field 25 (plan version 1)");
	refused("PPL\x01\x63\x00\x00\x00\x00", 9, "unknown field 99");
	refused("PPL\x01\x08\x02\x00\x00\x00W\x00", 11, "NUL byte");
	refused("PPL\x01\x0b\x02\x00\x00\x00\x01\x02", 11, "has 2 bytes, not 8");
	refused("PPL\x01\x08\x01\x00\x00\x00W\x08\x01\x00\x00\x00X", 16, "appears twice");
	refused("PPL\x01\x10\x06\x00\x00\x00\x01\x01\x00\x00\x00/", 15, "lacks its path or mode");
	refused("{\"store_paths\": [42]}", 21, "entry 1 of \"store_paths\" is not text");
	refused("[1]", 3, "3 bytes that are not a plan");
	refused("{\"a\":", 5, "plan: not a plan (");
	refused("", 0, "0 bytes that are not a plan");
	free(b);
	plan_free(&p);
}
