/*
 * test_systemd.c - the systemd service surface and secrets, checked with
 * systemd's own tools: every unit rendered passes `systemd-analyze verify`
 * with nothing on standard error; sysusers.d and tmpfiles.d files apply
 * with systemd-sysusers and systemd-tmpfiles into a scratch root; golden
 * units for the service surface document's examples; secrets reach only
 * their 0600 sidecar, and rollback restores the sidecar of its generation.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/ops.h"
#include "base/sbuf.h"
#include "tests/support/proc.h"

static struct tdir t;
static char *home, *target;

static void setup(void)
{
	tdir_make(&t);
	home = tdir_at(&t, "home");
	target = tdir_at(&t, "target");
	mkdir(target, 0755);
}

static void teardown(void)
{
	unsetenv("DB_PWD");
	free(home);
	free(target);
	tdir_free(&t);
}

static const char pkgs[] =
	"module Appview { pname = \"appview\" version = \"1\" recipe = \"std.shell\"\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && for b in appview db punix; do printf '#!/bin/sh\\\\n' > "
	"$OUTPUT/bin/$b; chmod +x $OUTPUT/bin/$b; done\" } }\n";

static struct proc_result deploy(const char *prog_rel, const char *stack)
{
	char *prog = tdir_at(&t, prog_rel);
	const char *a[] = {"service", "deploy", stack, "--file", prog, "--transport-root", target, NULL};
	struct proc_result r = punix_run(home, a);
	free(prog);
	return r;
}

static char *target_file(const char *path)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s%s", target, path);
	char *p = sbuf_detach(&sb, NULL), *buf = NULL;
	size_t len;
	if (ops_local()->read_file(ops_local(), p, 1 << 20, &buf, &len) < 0)
		buf = NULL;
	free(p);
	return buf;
}

/* systemd-analyze verify of units under the target root: exit 0, no stderr. */
static void analyze(const char *const *units)
{
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd,
		    "cd %s && mkdir -p usr/lib/systemd/system && for u in sysinit shutdown basic multi-user timers "
		    "sockets paths local-fs network default; do printf '[Unit]\\nDescription=stub\\n' > "
		    "usr/lib/systemd/system/$u.target; done && systemd-analyze verify --man=no --root=%s",
		    target, target);
	for (size_t i = 0; units[i]; i++)
		sbuf_printf(&cmd, " /etc/systemd/system/%s", units[i]);
	sbuf_printf(&cmd, " 2>%s/analyze.err", t.path);
	int st = system(cmd.sb_buf);
	char *err = tdir_read(&t, "analyze.err");
	cr_expect_eq(st, 0, "systemd-analyze verify failed:\n%s", err);
	cr_expect_str_eq(err ? err : "", "", "systemd-analyze verify printed:\n%s", err);
	free(err);
	sbuf_free(&cmd);
}

Test(systemd, service_config_golden_and_verified, .init = setup, .fini = teardown, .timeout = 120)
{
	struct sbuf prog = SBUF_INIT;
	sbuf_printf(&prog,
		    "%smodule S { backend = \"systemd\" services = [{\n"
		    "  name = \"appview\" package = \"Appview\" binary = \"appview\"\n"
		    "  serviceConfig = { DynamicUser = true StateDirectory = \"appview\" Restart = \"always\"\n"
		    "                    RestartSec = 5 LimitNOFILE = 65536 } }] }\n",
		    pkgs);
	tdir_write(&t, "p.pcl", prog.sb_buf);
	struct proc_result r = deploy("p.pcl", "S");
	cr_assert_eq(r.status, 0, "%s", r.err);
	char *unit = target_file("/etc/systemd/system/appview.service");
	const char *exec = strstr(unit, "ExecStart=");
	char *line = strndup(exec, strcspn(exec, "\n") + 1);
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want,
		    "[Unit]\nDescription=Punix stack S: appview\n\n[Service]\n%s"
		    "Type=simple\nRestart=always\nDynamicUser=yes\nLimitNOFILE=65536\nRestartSec=5\nStateDirectory=appview\n"
		    "\n[Install]\nWantedBy=multi-user.target\n",
		    line);
	cr_expect_str_eq(unit, want.sb_buf);
	const char *units[] = {"appview.service", NULL};
	analyze(units);
	free(line);
	free(unit);
	sbuf_free(&want);
	sbuf_free(&prog);
	proc_result_free(&r);
}

Test(systemd, timers_oneshots_module_services_verified, .init = setup, .fini = teardown, .timeout = 120)
{
	struct sbuf prog = SBUF_INIT;
	sbuf_printf(&prog,
		    "%smodule Api { package = \"Appview\" binary = \"appview\" serviceConfig = { DynamicUser = true } }\n"
		    "module Worker { package = \"Appview\" binary = \"db\" serviceConfig = { Restart = \"always\" } "
		    "dependsOn = [\"Api\"] }\n"
		    "module Gc { name = \"store-gc\" package = \"Appview\" binary = \"punix\" args = [\"store\", \"gc\"]\n"
		    "  serviceConfig = { Type = \"oneshot\" } timer = { OnCalendar = \"daily\" Persistent = true } }\n"
		    "module Off { package = \"Appview\" binary = \"db\" enable = false }\n"
		    "module S { backend = \"systemd\" services = [\"Api\", \"Worker\", \"Gc\", \"Off\"] }\n",
		    pkgs);
	tdir_write(&t, "p.pcl", prog.sb_buf);
	struct proc_result r = deploy("p.pcl", "S");
	cr_assert_eq(r.status, 0, "%s", r.err);
	char *gc = target_file("/etc/systemd/system/store-gc.service");
	cr_expect(strstr(gc, "\nType=oneshot\n") && !strstr(gc, "Restart=") && !strstr(gc, "[Install]"), "%s", gc);
	cr_expect(strstr(gc, "/bin/punix store gc\n") != NULL, "%s", gc);
	char *timer = target_file("/etc/systemd/system/store-gc.timer");
	cr_expect_str_eq(timer, "[Unit]\nDescription=Punix stack S: store-gc (timer)\n\n[Timer]\nOnCalendar=daily\n"
				"Persistent=yes\n\n[Install]\nWantedBy=timers.target\n");
	char *worker = target_file("/etc/systemd/system/Worker.service");
	cr_expect(strstr(worker, "After=Api.service\nRequires=Api.service\n") != NULL, "%s", worker);
	char *off = target_file("/etc/systemd/system/Off.service");
	cr_expect_null(off, "a disabled service has no unit");
	const char *units[] = {"Api.service", "Worker.service", "store-gc.service", "store-gc.timer", NULL};
	analyze(units);
	free(gc);
	free(timer);
	free(worker);
	sbuf_free(&prog);
	proc_result_free(&r);
}

Test(systemd, sysusers_and_tmpfiles_apply_with_systemd_tools, .init = setup, .fini = teardown, .timeout = 120)
{
	struct sbuf prog = SBUF_INIT;
	sbuf_printf(&prog,
		    "%smodule S { backend = \"systemd\" systemGroups = [\"git\"]\n"
		    "  systemUsers = [{ name = \"git\" group = \"git\" home = \"/var/lib/git\" }, { name = \"web\" group = "
		    "\"www\" }]\n"
		    "  services = [{ name = \"a\" package = \"Appview\" binary = \"appview\" tmpfiles = [\"d /var/lib/git 0750 "
		    "git git -\"] },\n"
		    "              { name = \"b\" package = \"Appview\" binary = \"db\" tmpfiles = [\"d /var/lib/git 0750 git "
		    "git -\", \"d /run/web 0755 web www -\"] }] }\n",
		    pkgs);
	tdir_write(&t, "p.pcl", prog.sb_buf);
	struct proc_result r = deploy("p.pcl", "S");
	cr_assert_eq(r.status, 0, "%s", r.err);
	char *su = target_file("/etc/sysusers.d/punix-S.conf"), *tf = target_file("/etc/tmpfiles.d/punix-S.conf");
	cr_expect_str_eq(su, "# punix stack S: system users and groups\ng git -\ng www -\n"
			     "u git -:git \"punix user git\" /var/lib/git\nu web -:www \"punix user web\"\n");
	cr_expect_str_eq(tf, "# punix stack S: tmpfiles.d rules of its services\nd /run/web 0755 web www -\n"
			     "d /var/lib/git 0750 git git -\n");
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd,
		    "set -e; root=%s/sysroot; mkdir -p $root/etc; "
		    "systemd-sysusers --root=$root %s/etc/sysusers.d/punix-S.conf 2>/dev/null; "
		    "systemd-tmpfiles --root=$root --create %s/etc/tmpfiles.d/punix-S.conf; "
		    "grep -q '^git:x:[0-9]*:[0-9]*:punix user git:/var/lib/git:' $root/etc/passwd; "
		    "grep -q '^www:' $root/etc/group; test -d $root/var/lib/git; test -d $root/run/web",
		    t.path, target, target);
	cr_expect_eq(system(cmd.sb_buf), 0, "sysusers and tmpfiles applied");
	sbuf_free(&cmd);
	free(su);
	free(tf);
	sbuf_free(&prog);
	proc_result_free(&r);
}

static const char secret_stack[] =
	"module S { backend = \"systemd\" services = [{ name = \"db\" package = \"Appview\" binary = \"db\"\n"
	"  serviceConfig = { User = \"nobody\" }\n"
	"  environment = { DB_PASSWORD = { from_env = \"DB_PWD\" } API_KEY = { from_file = \"%s\" } MODE = \"prod\" } }] }\n";

static void write_secret_prog(const char *keyfile)
{
	struct sbuf prog = SBUF_INIT;
	sbuf_puts(&prog, pkgs);
	sbuf_printf(&prog, secret_stack, keyfile);
	tdir_write(&t, "p.pcl", prog.sb_buf);
	sbuf_free(&prog);
}

/* Exit status of grep -r for needle under dir (0 = found). */
static int grep_tree(const char *dir, const char *needle)
{
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "grep -r -q -a -F '%s' %s", needle, dir);
	int st = system(cmd.sb_buf);
	sbuf_free(&cmd);
	return st;
}

Test(secrets, missing_secrets_are_all_reported, .init = setup, .fini = teardown, .timeout = 120)
{
	char *key = tdir_at(&t, "nokey");
	write_secret_prog(key);
	unsetenv("DB_PWD");
	struct proc_result r = deploy("p.pcl", "S");
	cr_expect_eq(r.status, 1);
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want,
		    "error: [E11] stack 'S': 2 secret(s) cannot be resolved:\n"
		    "  API_KEY of service 'db' (from_file %s): No such file or directory\n"
		    "  DB_PASSWORD of service 'db' (from_env DB_PWD): not set\n",
		    key);
	cr_expect_str_eq(r.err, want.sb_buf);
	proc_result_free(&r);
	/* a directory is not a secret file */
	char *dir = tdir_at(&t, "keydir");
	mkdir(dir, 0700);
	write_secret_prog(dir);
	setenv("DB_PWD", "x", 1);
	r = deploy("p.pcl", "S");
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "(from_file") && strstr(r.err, "Is a directory"), "%s", r.err);
	proc_result_free(&r);
	sbuf_free(&want);
	free(key);
	free(dir);
}

Test(secrets, values_reach_only_the_sidecar_and_rollback_restores_it, .init = setup, .fini = teardown,
     .timeout = 120)
{
	char *key = tdir_at(&t, "api.key");
	write_secret_prog(key);
	tdir_write(&t, "api.key", "key-number-one-7c1\n");
	setenv("DB_PWD", "pw-first-9f8e", 1);
	struct proc_result r1 = deploy("p.pcl", "S");
	cr_assert_eq(r1.status, 0, "%s", r1.err);
	char *side1 = target_file("/etc/punix/secrets/S/db.env");
	cr_expect_str_eq(side1, "API_KEY=\"key-number-one-7c1\"\nDB_PASSWORD=\"pw-first-9f8e\"\n",
			 "one trailing newline stripped");
	struct stat st;
	struct sbuf sp = SBUF_INIT;
	sbuf_printf(&sp, "%s/etc/punix/secrets/S/db.env", target);
	cr_assert_eq(stat(sp.sb_buf, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0600);
	char *unit = target_file("/etc/systemd/system/db.service");
	cr_expect(strstr(unit, "EnvironmentFile=/etc/punix/secrets/S/db.env\n") != NULL, "%s", unit);
	cr_expect(strstr(unit, "Environment=\"MODE=prod\"\n") != NULL, "%s", unit);

	tdir_write(&t, "api.key", "key-number-two-3b2\n");
	setenv("DB_PWD", "pw-second-1a2b", 1);
	struct proc_result r2 = deploy("p.pcl", "S");
	cr_assert_eq(r2.status, 0, "%s", r2.err);
	char *side2 = target_file("/etc/punix/secrets/S/db.env");
	cr_expect(strstr(side2, "pw-second-1a2b") != NULL);

	/* secrets never in the store, a manifest, the journal, a log, a unit, the plan */
	const char *values[] = {"pw-first-9f8e", "pw-second-1a2b", "key-number-one-7c1", "key-number-two-3b2"};
	char *dep = tdir_at(&t, "home");
	for (int i = 0; i < 4; i++) {
		cr_expect_neq(grep_tree(dep, values[i]), 0, "%s is not under PUNIX_HOME (store, journal, logs)",
			      values[i]);
		char *units_dir = tdir_at(&t, "target/etc/systemd");
		cr_expect_neq(grep_tree(units_dir, values[i]), 0, "%s is in no unit", values[i]);
		free(units_dir);
	}
	/* the two generations differ only in secret values: same manifests but the dates */
	struct sbuf m1 = SBUF_INIT, m2 = SBUF_INIT;
	sbuf_printf(&m1, "%s%s/deployments/S/gen-001.json", target, home);
	sbuf_printf(&m2, "%s%s/deployments/S/gen-002.json", target, home);
	json_t *j1 = json_load_file(m1.sb_buf, 0, NULL), *j2 = json_load_file(m2.sb_buf, 0, NULL);
	cr_assert(j1 && j2);
	const char *same[] = {"store_paths", "source_hash", "services", "config_files", "secret_files"};
	for (int i = 0; i < 5; i++)
		cr_expect(json_equal(json_object_get(j1, same[i]), json_object_get(j2, same[i])), "%s differs", same[i]);
	char *text = json_dumps(j1, 0);
	for (int i = 0; i < 4; i++)
		cr_expect(strstr(text, values[i]) == NULL);
	cr_expect(strstr(text, "\"from\": \"DB_PWD\"") || strstr(text, "\"from\":\"DB_PWD\""), "%s", text);
	free(text);

	/* rollback restores the first generation's sidecar */
	const char *rb[] = {"service", "rollback", "S", "--transport-root", target, NULL};
	struct proc_result r3 = punix_run(home, rb);
	cr_assert_eq(r3.status, 0, "%s", r3.err);
	char *side3 = target_file("/etc/punix/secrets/S/db.env");
	cr_expect_str_eq(side3, side1);
	const char *verify[] = {"service", "verify", "S", "--transport-root", target, NULL};
	struct proc_result r4 = punix_run(home, verify);
	cr_expect_eq(r4.status, 0, "%s", r4.out);

	json_decref(j1);
	json_decref(j2);
	sbuf_free(&m1);
	sbuf_free(&m2);
	sbuf_free(&sp);
	free(dep);
	free(side1);
	free(side2);
	free(side3);
	free(unit);
	free(key);
	proc_result_free(&r1);
	proc_result_free(&r2);
	proc_result_free(&r3);
	proc_result_free(&r4);
}

Test(systemd, unit_dir_is_honoured, .init = setup, .fini = teardown, .timeout = 120)
{
	struct sbuf prog = SBUF_INIT;
	sbuf_printf(&prog, "%smodule S { backend = \"systemd\" services = [{ name = \"u\" package = \"Appview\" "
			   "binary = \"appview\" }] }\n",
		    pkgs);
	tdir_write(&t, "p.pcl", prog.sb_buf);
	char *p = tdir_at(&t, "p.pcl");
	const char *a[] = {"service", "deploy", "S", "--file", p, "--transport-root", target, "--unit-dir",
			   "/home/op/.config/systemd/user", NULL};
	struct proc_result r = punix_run(home, a);
	cr_assert_eq(r.status, 0, "%s", r.err);
	char *unit = target_file("/home/op/.config/systemd/user/u.service");
	cr_assert_not_null(unit);
	cr_expect(strstr(unit, "WantedBy=default.target\n") != NULL, "a user unit is wanted by default.target:\n%s",
		  unit);
	free(unit);
	free(p);
	sbuf_free(&prog);
	proc_result_free(&r);
}

/* ---- values that cannot be one line ------------------------------------------- */

static struct proc_result deploy_dry(const char *prog_rel, const char *stack)
{
	char *prog = tdir_at(&t, prog_rel);
	const char *a[] = {"service", "deploy", stack, "--file", prog, "--dry-run", NULL};
	struct proc_result r = punix_run(home, a);
	free(prog);
	return r;
}

/* needle is nowhere in the run's output nor under PUNIX_HOME (journal, logs, the dry run's scratch). */
static void expect_nowhere(const struct proc_result *r, const char *needle)
{
	cr_expect(strstr(r->out, needle) == NULL, "%s is on standard output:\n%s", needle, r->out);
	cr_expect(strstr(r->err, needle) == NULL, "%s is on standard error:\n%s", needle, r->err);
	cr_expect_neq(grep_tree(home, needle), 0, "%s is under PUNIX_HOME", needle);
}

/*
 * A secret that holds a control character (tab aside), a line break or bytes
 * that are not UTF-8, or that ends in a backslash, cannot be one KEY="value"
 * line of the sidecar: the dry-run deploy fails with [E11] naming the
 * service, the variable and the class of byte, never the value, and
 * deploys nothing.
 */
Test(secrets, a_value_with_a_control_byte_or_a_trailing_backslash_is_refused_unquoted, .init = setup,
     .fini = teardown, .timeout = 120)
{
	char *key = tdir_at(&t, "api.key");
	write_secret_prog(key);
	tdir_write(&t, "api.key", "key-ends-in-9b1\\\n"); /* the newline is stripped: it ends in '\' */
	setenv("DB_PWD", "pw-\x01-7d3e", 1);
	struct proc_result r = deploy_dry("p.pcl", "S");
	cr_expect_eq(r.status, 1, "%s", r.err);
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want,
		    "error: [E11] stack 'S': 2 secret(s) cannot be resolved:\n"
		    "  API_KEY of service 'db' (from_file %s): ends in a backslash\n"
		    "  DB_PASSWORD of service 'db' (from_env DB_PWD): holds a control character other than tab\n",
		    key);
	cr_expect_str_eq(r.err, want.sb_buf);
	cr_expect_str_eq(r.out, "");
	expect_nowhere(&r, "7d3e");
	expect_nowhere(&r, "key-ends-in-9b1");
	char *side = tdir_read(&t, "home/deployments/.dry-run/etc/punix/secrets/S/db.env");
	cr_expect_null(side, "nothing deployed");
	free(side);
	proc_result_free(&r);

	/* DEL, a carriage return, bytes that are not UTF-8 */
	tdir_write(&t, "api.key", "key\r-5c2a\n");
	setenv("DB_PWD", "pw-\xff-7d3e", 1);
	r = deploy_dry("p.pcl", "S");
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "  API_KEY of service 'db' (from_file ") &&
			  strstr(r.err, "): holds a line break\n") &&
			  strstr(r.err, "  DB_PASSWORD of service 'db' (from_env DB_PWD): is not valid UTF-8\n"),
		  "%s", r.err);
	expect_nowhere(&r, "7d3e");
	expect_nowhere(&r, "5c2a");
	proc_result_free(&r);
	setenv("DB_PWD", "pw-\x7f-7d3e", 1);
	tdir_write(&t, "api.key", "ok\n");
	r = deploy_dry("p.pcl", "S");
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "  DB_PASSWORD of service 'db' (from_env DB_PWD): holds a control character other "
				"than tab\n") != NULL,
		  "%s", r.err);
	expect_nowhere(&r, "7d3e");
	proc_result_free(&r);

	/* a tab, and a backslash inside the value, are kept (escaped in the sidecar) */
	tdir_write(&t, "api.key", "a\\b\n");
	setenv("DB_PWD", "pw\twith-tab", 1);
	r = deploy_dry("p.pcl", "S");
	cr_assert_eq(r.status, 0, "%s", r.err);
	side = tdir_read(&t, "home/deployments/.dry-run/etc/punix/secrets/S/db.env");
	cr_expect_str_eq(side, "API_KEY=\"a\\\\b\"\nDB_PASSWORD=\"pw\twith-tab\"\n");
	free(side);
	proc_result_free(&r);
	sbuf_free(&want);
	free(key);
}

static const char plain_stack[] =
	"module S { backend = \"systemd\" services = [{ name = \"web\" package = \"Appview\" binary = \"appview\" }] }\n";

/*
 * What the checker cannot see is refused by the renderer: a store root
 * holding a control character would put it into ExecStart=. The deploy
 * fails naming the stack, the service and the directive, and writes no
 * unit.
 */
Test(systemd, a_store_path_with_a_control_byte_is_refused_by_the_renderer, .init = setup, .fini = teardown,
     .timeout = 120)
{
	struct sbuf prog = SBUF_INIT;
	sbuf_printf(&prog, "%s%s", pkgs, plain_stack);
	tdir_write(&t, "p.pcl", prog.sb_buf);
	char *p = tdir_at(&t, "p.pcl"), *store = tdir_at(&t, "st\x01re");
	const char *a[] = {"service", "deploy", "S", "--file", p, "--dry-run", "--store-root", store, NULL};
	struct proc_result r = punix_run(home, a);
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect_str_eq(r.err, "error: stack 'S': service 'web': cannot render ExecStart= (the store path of package "
				"'Appview'): the value holds a control character other than tab\n");
	char *unit = tdir_read(&t, "home/deployments/.dry-run/etc/systemd/system/web.service");
	cr_expect_null(unit, "no unit written");
	free(unit);
	free(store);
	free(p);
	sbuf_free(&prog);
	proc_result_free(&r);
}

/* A store under a directory with a space: ExecStart's executable is quoted, so systemd does not split it. */
Test(systemd, a_store_path_with_a_space_is_quoted_in_exec_start, .init = setup, .fini = teardown, .timeout = 120)
{
	static const char pkg[] =
		"module Appview { pname = \"appview\" version = \"1\" recipe = \"std.shell\"\n"
		"  recipeArgs = { command = \"mkdir -p \\\"$OUTPUT/bin\\\" && printf '#!/bin/sh\\\\n' > "
		"\\\"$OUTPUT/bin/appview\\\" && chmod +x \\\"$OUTPUT/bin/appview\\\"\" } }\n";
	struct sbuf prog = SBUF_INIT;
	sbuf_printf(&prog, "%s%s", pkg, plain_stack);
	tdir_write(&t, "p.pcl", prog.sb_buf);
	char *p = tdir_at(&t, "p.pcl"), *store = tdir_at(&t, "my store");
	const char *a[] = {"service", "deploy", "S", "--file", p, "--transport-root", target, "--store-root", store, NULL};
	struct proc_result r = punix_run(home, a);
	cr_assert_eq(r.status, 0, "%s", r.err);
	char *unit = target_file("/etc/systemd/system/web.service");
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want, "\nExecStart=\"%s/", store);
	cr_expect(strstr(unit, want.sb_buf) && strstr(unit, "-appview-1/bin/appview\"\n"), "%s", unit);
	const char *units[] = {"web.service", NULL};
	analyze(units);
	free(unit);
	free(store);
	free(p);
	sbuf_free(&want);
	sbuf_free(&prog);
	proc_result_free(&r);
}
