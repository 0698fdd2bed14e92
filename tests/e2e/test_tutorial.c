/*
 * test_tutorial.c - the first-deploy tutorial, command for command and
 * output for output: a dry-run deploy, a second deploy, a rollback through
 * --transport-root, and what the user is told to look at in between. Only
 * the tutorial's /tmp/punix-tutorial becomes a directory of the test.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/ops.h"
#include "base/sbuf.h"
#include "tests/support/proc.h"

static struct tdir t;

static char *fmt(const char *f, const char *a)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, f, a, a, a, a);
	return sbuf_detach(&sb, NULL);
}

/* Lines of text that contain needle. */
static int count_lines_with(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

Test(tutorial, first_deploy_deploy_twice_roll_back, .timeout = 120)
{
	tdir_make(&t);
	char *text = NULL;
	size_t len;
	cr_assert_eq(ops_local()->read_file(ops_local(), PUNIX_SOURCE_DIR "/examples/hello/hello.pcl", 1 << 20, &text,
					    &len),
		     0);
	tdir_write(&t, "work/hello.pcl", text);
	tdir_write(&t, "work/src/README", "the tutorial's source tree\n");
	free(text);
	char *work = tdir_at(&t, "work"), *root = tdir_at(&t, "punix-tutorial"), *home = tdir_at(&t, "home");
	cr_assert_eq(chdir(work), 0);
	char *store = fmt("%s/store", root), *deploys = fmt("%s/deploys", root);
	char *scratch = fmt("%s/deploys/.dry-run", root);

	/* Dry-run deploy */
	const char *deploy[] = {"service", "deploy", "HelloStack", "--file", "hello.pcl", "--dry-run", "--store-root",
				store, "--deployments-root", deploys, NULL};
	struct proc_result r = punix_run(home, deploy);
	cr_assert_eq(r.status, 0, "%s", r.err);
	char *want = fmt("deployed: stack HelloStack \u2192 gen-001 (2 config file(s), 1 store path(s) pinned)\n"
			 "scratch: %s/deploys/.dry-run/\n",
			 root);
	cr_expect_str_eq(r.out, want);
	free(want);
	proc_result_free(&r);

	char **names;
	size_t n;
	char *etc = fmt("%s/etc", scratch);
	cr_assert_eq(ops_local()->list_dir(ops_local(), etc, &names, &n), 0);
	cr_expect_eq(n, 2);
	cr_expect_str_eq(names[0], "hello.conf");
	cr_expect_str_eq(names[1], "systemd");
	ops_free_names(names, n);
	char *units = fmt("%s/etc/systemd/system", scratch);
	cr_assert_eq(ops_local()->list_dir(ops_local(), units, &names, &n), 0);
	cr_expect_eq(n, 1);
	cr_expect_str_eq(names[0], "hello.service");
	ops_free_names(names, n);

	char *unit_path = fmt("%s/etc/systemd/system/hello.service", scratch);
	char *unit = NULL;
	cr_assert_eq(ops_local()->read_file(ops_local(), unit_path, 1 << 20, &unit, &len), 0);
	const char *exec = strstr(unit, "ExecStart=");
	cr_assert_not_null(exec);
	char *store_prefix = fmt("ExecStart=%s/", store);
	cr_expect(strncmp(exec, store_prefix, strlen(store_prefix)) == 0, "%s", unit);
	cr_expect(strstr(exec, "-hello-1.0/bin/hi\n") != NULL, "%s", unit);
	char *exec_line = strndup(exec, strcspn(exec, "\n") + 1);
	struct sbuf want_unit = SBUF_INIT;
	sbuf_printf(&want_unit,
		    "[Unit]\nDescription=Punix stack HelloStack: hello\n\n[Service]\n%sType=simple\nRestart=on-failure\n\n"
		    "[Install]\nWantedBy=multi-user.target\n",
		    exec_line);
	cr_expect_str_eq(unit, want_unit.sb_buf);

	/* Deploy twice: a new generation even with identical content */
	r = punix_run(home, deploy);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_expect(strncmp(r.out, "deployed: stack HelloStack \u2192 gen-002 (", 31) == 0, "%s", r.out);
	proc_result_free(&r);

	/* Roll back */
	const char *rollback[] = {"service", "rollback", "HelloStack", "--store-root", store, "--deployments-root",
				  deploys, "--transport-root", scratch, NULL};
	r = punix_run(home, rollback);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_expect_str_eq(r.out, "rolled back: stack HelloStack \u2192 gen-001 (was gen-002)\n");
	proc_result_free(&r);

	{
		struct sbuf c = SBUF_INIT;
		sbuf_printf(&c, "%s%s/HelloStack/current", scratch, deploys);
		char buf[64] = "";
		ssize_t k = readlink(c.sb_buf, buf, sizeof(buf) - 1);
		cr_assert_gt(k, 0, "%s", c.sb_buf);
		buf[k] = '\0';
		cr_expect_str_eq(buf, "gen-001.json");
		struct sbuf g2 = SBUF_INIT;
		sbuf_printf(&g2, "%s%s/HelloStack/gen-002.json", scratch, deploys);
		struct stat st;
		cr_expect_eq(stat(g2.sb_buf, &st), 0, "gen-002.json is still on disk");
		sbuf_free(&g2);
		sbuf_free(&c);
	}
	/* "the next punix store gc will see both gen-001 AND gen-002 in the
	 * keep-set; the Hello store path survives both": run as written */
	const char *gc[] = {"store", "gc", "--store-root", store, "--deployments-root", deploys, "--print-roots", NULL};
	r = punix_run(home, gc);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "2 generation(s)") != NULL, "both generations are roots:\n%s", r.out);
	cr_expect_eq(count_lines_with(r.out, "-hello-1.0\n"), 2, "gen-001 and gen-002 each pin Hello:\n%s", r.out);
	cr_expect(strstr(r.out, "removed: 0 paths") != NULL, "%s", r.out);
	proc_result_free(&r);
	const char *info[] = {"store", "info", "--store-root", store, NULL};
	r = punix_run(home, info);
	cr_expect(strstr(r.out, "paths: 1\n") != NULL, "the Hello store path survived:\n%s", r.out);
	proc_result_free(&r);

	free(exec_line);
	sbuf_free(&want_unit);
	free(store_prefix);
	free(unit);
	free(unit_path);
	free(units);
	free(etc);
	free(scratch);
	free(store);
	free(deploys);
	free(work);
	free(root);
	free(home);
	cr_assert_eq(chdir("/"), 0);
	tdir_free(&t);
}
