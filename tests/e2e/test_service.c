/*
 * test_service.c - `punix service status|verify|set-current`, `punix journal
 * show` and `punix recover` as a user meets them, including a journal with a
 * corrupted record and drift in the live files.
 */
#include <criterion/criterion.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/ops.h"
#include "base/sbuf.h"
#include "tests/support/proc.h"

static struct tdir t;
static char *home, *target, *prog;

static void setup(void)
{
	tdir_make(&t);
	home = tdir_at(&t, "home");
	target = tdir_at(&t, "target");
	mkdir(target, 0755);
	tdir_write(&t, "p/prog.pcl",
		   "module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
		   "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" } }\n"
		   "module Web { backend = \"systemd\"\n"
		   "  services = [{ name = \"web\" package = \"App\" binary = \"app\" args = [\"--name\", \"a b\", \"100%\"] "
		   "environment = { GREETING = \"hello \\\"you\\\"\" } }]\n"
		   "  configFiles = [{ path = \"/etc/web.conf\" content = \"port = 80\\n\" }] }\n");
	prog = tdir_at(&t, "p/prog.pcl");
}

static void teardown(void)
{
	free(home);
	free(target);
	free(prog);
	tdir_free(&t);
}

static struct proc_result svc(const char *sub, const char *extra)
{
	const char *a[] = {"service", sub, "Web", "--transport-root", target, extra, NULL};
	if (!strcmp(sub, "deploy")) {
		const char *d[] = {"service", "deploy", "Web", "--file", prog, "--transport-root", target, NULL};
		return punix_run(home, d);
	}
	return punix_run(home, a);
}

Test(service, status_verify_and_repair, .init = setup, .fini = teardown, .timeout = 120)
{
	struct proc_result r = svc("deploy", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	r = svc("deploy", NULL);
	proc_result_free(&r);

	r = svc("status", NULL);
	cr_expect_eq(r.status, 0);
	cr_expect(strncmp(r.out, "stack Web: current gen-002\n  gen-001  ", 38) == 0, "%s", r.out);
	cr_expect(strstr(r.out, "\n* gen-002  ") != NULL, "%s", r.out);
	proc_result_free(&r);

	r = svc("verify", NULL);
	cr_expect_eq(r.status, 0);
	cr_expect_str_eq(r.out, "stack Web gen-002: 0 file(s) drifted\n");
	proc_result_free(&r);

	/* a hand edit, and a unit removed */
	struct sbuf conf = SBUF_INIT, unit = SBUF_INIT;
	sbuf_printf(&conf, "%s/etc/web.conf", target);
	sbuf_printf(&unit, "%s/etc/systemd/system/web.service", target);
	FILE *f = fopen(conf.sb_buf, "w");
	fputs("port = 8080\n", f);
	fclose(f);
	char *unit_text = tdir_read(&t, "target/etc/systemd/system/web.service");
	unlink(unit.sb_buf);
	r = svc("verify", NULL);
	cr_expect_eq(r.status, 1);
	cr_expect_str_eq(r.out, "drift: /etc/systemd/system/web.service: missing\ndrift: /etc/web.conf: content "
				"differs\nstack Web gen-002: 2 file(s) drifted\n");
	proc_result_free(&r);

	/* setting the current generation again repairs it */
	r = svc("set-current", "2");
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect_str_eq(r.out, "current: stack Web \u2192 gen-002 (was gen-002)\n");
	proc_result_free(&r);
	r = svc("verify", NULL);
	cr_expect_eq(r.status, 0, "%s", r.out);
	proc_result_free(&r);
	char *again = tdir_read(&t, "target/etc/systemd/system/web.service");
	cr_expect_str_eq(again, unit_text);
	cr_expect(strstr(again, "ExecStart=") && strstr(again, " --name \"a b\" 100%%\n"), "%s", again);
	cr_expect(strstr(again, "Environment=\"GREETING=hello \\\"you\\\"\"\n") != NULL, "%s", again);
	free(again);
	free(unit_text);
	sbuf_free(&conf);
	sbuf_free(&unit);
}

Test(service, journal_show_lists_ops_and_steps, .init = setup, .fini = teardown, .timeout = 120)
{
	struct proc_result r = svc("deploy", NULL);
	proc_result_free(&r);
	const char *show[] = {"journal", "show", NULL};
	r = punix_run(home, show);
	cr_expect_eq(r.status, 0);
	cr_expect(strncmp(r.out, "1\tdone\tdeploy\tWeb\t", 18) == 0, "%s", r.out);
	proc_result_free(&r);
	const char *one[] = {"journal", "show", "1", NULL};
	r = punix_run(home, one);
	cr_expect_eq(r.status, 0);
	cr_expect(strstr(r.out, "  step 4 flip         done\n") != NULL, "%s", r.out);
	proc_result_free(&r);
	const char *none[] = {"journal", "show", "99", NULL};
	r = punix_run(home, none);
	cr_expect_eq(r.status, 1);
	cr_expect_str_eq(r.err, "error: journal: no op 99\n");
	proc_result_free(&r);
}

Test(service, a_corrupted_journal_record_is_named_not_trusted, .init = setup, .fini = teardown, .timeout = 120)
{
	struct proc_result r = svc("deploy", NULL);
	proc_result_free(&r);
	/* op 2: a deploy that died after staging, so it is running in the journal */
	setenv("PUNIX_CRASH_AT", "deploy:stage:after", 1);
	r = svc("deploy", NULL);
	unsetenv("PUNIX_CRASH_AT");
	cr_assert_eq(r.status, 128 + 9, "the deploy was killed: %s", r.err);
	proc_result_free(&r);
	/* overwrite op 2's record with bytes that are not a record */
	char *dir = tdir_at(&t, "home/journal");
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	cr_assert_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	mdb_env_set_mapsize(env, (size_t)1 << 30);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "ops", 0, &dbi), 0);
	unsigned char key[8] = {0, 0, 0, 0, 0, 0, 0, 2};
	MDB_val k = {8, key}, v = {21, "PJR\x01Ohand-edited junk"};
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	const char *show[] = {"journal", "show", NULL};
	r = punix_run(home, show);
	cr_expect_eq(r.status, 1);
	cr_expect(strncmp(r.err, "error: journal: op 2 is corrupt: ", 33) == 0, "%s", r.err);
	proc_result_free(&r);
	const char *rec[] = {"recover", NULL};
	r = punix_run(home, rec);
	cr_expect_eq(r.status, 3);
	cr_expect(strstr(r.out, "op 2 is corrupt") != NULL && strstr(r.out, "journal set-aside 2 --yes") != NULL,
		  "recover names the corrupt op and the way out:\n%s", r.out);
	cr_expect(strstr(r.err, "1 op(s) in the journal are corrupt and were left alone") != NULL, "%s", r.err);
	proc_result_free(&r);
	/* it stops only itself: the stack deploys again, and after set-aside recover is clean */
	r = svc("deploy", NULL);
	cr_expect_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	const char *aside[] = {"journal", "set-aside", "2", "--yes", NULL};
	r = punix_run(home, aside);
	cr_expect_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	r = punix_run(home, rec);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	/* a finished op's record gone bad stops nothing: recovery reads only what is running */
	cr_assert_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	mdb_env_set_mapsize(env, (size_t)1 << 30);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "ops", 0, &dbi), 0);
	key[7] = 1;
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	r = punix_run(home, rec);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	r = svc("deploy", NULL);
	cr_expect_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	free(dir);
}

Test(service, bad_arguments_exit_2, .init = setup, .fini = teardown)
{
	const char *bad_name[] = {"service", "rollback", "../etc", NULL};
	struct proc_result r = punix_run(home, bad_name);
	cr_expect_eq(r.status, 2);
	cr_expect_str_eq(r.err, "error: '../etc' is not a stack name (a module name: letters, digits, '_' and '-')\n");
	proc_result_free(&r);
	const char *rel[] = {"service", "status", "Web", "--transport-root", "relative/dir", NULL};
	r = punix_run(home, rel);
	cr_expect_eq(r.status, 2);
	cr_expect(strstr(r.err, "--transport-root needs an absolute path") != NULL, "%s", r.err);
	proc_result_free(&r);
	const char *nofile[] = {"service", "deploy", "Web", NULL};
	r = punix_run(home, nofile);
	cr_expect_eq(r.status, 2);
	proc_result_free(&r);
	const char *badn[] = {"service", "set-current", "Web", "two", NULL};
	r = punix_run(home, badn);
	cr_expect_eq(r.status, 2);
	proc_result_free(&r);
	const char *nostack[] = {"service", "deploy", "App", "--file", prog, "--transport-root", target, NULL};
	r = punix_run(home, nostack);
	cr_expect_eq(r.status, 1);
	cr_expect_str_eq(r.err, "error: [E2] 'App' is a package module, not a stack\n");
	proc_result_free(&r);
}

Test(service, permuted_programs_render_byte_identical_generations, .init = setup, .fini = teardown, .timeout = 120)
{
	/* with a provision too: <name>-provision.service is rendered from sorted input like the rest */
	tdir_write(&t, "p/prog.pcl",
		   "module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
		   "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" } }\n"
		   "module Web { backend = \"systemd\"\n"
		   "  services = [{ name = \"web\" package = \"App\" binary = \"app\" args = [\"--name\", \"a b\", \"100%\"] "
		   "environment = { GREETING = \"hello \\\"you\\\"\" }\n"
		   "    serviceConfig = { User = \"web\" StateDirectory = \"web\" }\n"
		   "    provision = { binary = \"migrate\" args = [\"--to\", \"${App.out}/schema\"] environment = { A = \"1\" B = \"2\" } } }]\n"
		   "  configFiles = [{ path = \"/etc/web.conf\" content = \"port = 80\\n\" }] }\n");
	tdir_write(&t, "q/b.pcl",
		   "module Web { configFiles = [{ content = \"port = 80\\n\"; path = \"/etc/web.conf\" }]\n"
		   "  services = [{ provision = { environment = { B = \"2\" A = \"1\" } args = [\"--to\", \"${App.out}/schema\"] "
		   "package = \"App\" binary = \"migrate\" }\n"
		   "    serviceConfig = { StateDirectory = \"web\" User = \"web\" }\n"
		   "    environment = { GREETING = \"hello \\\"you\\\"\" } args = [\"--name\", \"a b\", \"100%\"] "
		   "binary = \"app\" package = App.out name = \"web\" }]\n"
		   "  backend = \"systemd\" }\n");
	tdir_write(&t, "q/a.pcl",
		   "module App { recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" } recipe = \"std.shell\" "
		   "version = \"1\" pname = \"app\" }\n");
	char *q = tdir_at(&t, "q"), *target2 = tdir_at(&t, "target2");
	mkdir(target2, 0755);
	struct proc_result r = svc("deploy", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	const char *d[] = {"service", "deploy", "Web", "--file", q, "--transport-root", target2, NULL};
	r = punix_run(home, d);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "diff -r %s/etc %s/etc && diff -r %s%s/home/deployments/Web/gen-001.files %s%s/home/deployments/Web/gen-001.files",
		    target, target2, target, t.path, target2, t.path);
	cr_expect_eq(system(cmd.sb_buf), 0, "the rendered files are byte-identical");
	sbuf_reset(&cmd);
	sbuf_printf(&cmd, "grep -q '^ExecStart=.*/bin/migrate --to .*-app-1/schema$' %s/etc/systemd/system/web-provision.service",
		    target);
	cr_expect_eq(system(cmd.sb_buf), 0, "the provision's unit is rendered, its store path put in");
	sbuf_free(&cmd);
	free(q);
	free(target2);
}

/*
 * A current link naming a manifest that is not there (or a listed
 * generation whose manifest is a dangling link) is reported with the path
 * that is missing, never as "(null)" or an empty reason.
 */
Test(service, a_missing_manifest_is_named_by_status_and_verify, .init = setup, .fini = teardown, .timeout = 120)
{
	struct proc_result r = svc("deploy", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	struct sbuf cur = SBUF_INIT, dangling = SBUF_INIT, want = SBUF_INIT;
	sbuf_printf(&cur, "%s%s/deployments/Web/current", target, home);
	cr_assert_eq(unlink(cur.sb_buf), 0);
	cr_assert_eq(symlink("gen-009.json", cur.sb_buf), 0);
	r = svc("verify", NULL);
	cr_expect_eq(r.status, 1);
	sbuf_printf(&want, "error: %s/deployments/Web/gen-009.json: No such file or directory (the manifest of gen-009 "
			   "of stack 'Web')\n",
		    home);
	cr_expect_str_eq(r.err, want.sb_buf);
	proc_result_free(&r);

	sbuf_printf(&dangling, "%s%s/deployments/Web/gen-005.json", target, home);
	cr_assert_eq(symlink("gen-404.json", dangling.sb_buf), 0);
	r = svc("status", NULL);
	cr_expect_eq(r.status, 1);
	sbuf_reset(&want);
	sbuf_printf(&want, "error: %s/deployments/Web/gen-005.json: No such file or directory (the manifest of gen-005 "
			   "of stack 'Web')\n",
		    home);
	cr_expect_str_eq(r.err, want.sb_buf);
	proc_result_free(&r);

	/* the collector's scan of this machine's deployments says where it looked */
	sbuf_reset(&dangling);
	sbuf_printf(&dangling, "%s/deployments/Web", home);
	cr_assert_eq(ops_mkdir_p(ops_local(), dangling.sb_buf, 0755), 0);
	sbuf_puts(&dangling, "/gen-001.json");
	cr_assert_eq(symlink("gen-404.json", dangling.sb_buf), 0);
	const char *gc[] = {"store", "gc", "--dry-run", NULL};
	r = punix_run(home, gc);
	cr_expect_eq(r.status, 1);
	sbuf_reset(&want);
	sbuf_printf(&want,
		    "error: %s/deployments/Web/gen-001.json: No such file or directory; garbage collection deletes nothing "
		    "while a generation's pins are unknown\n",
		    home);
	cr_expect_str_eq(r.err, want.sb_buf);
	proc_result_free(&r);
	sbuf_free(&cur);
	sbuf_free(&dangling);
	sbuf_free(&want);
}

/*
 * A string composed with "${Pkg.out}" reaches the rendered unit and config
 * file with the package's store path in it, and a package named only that
 * way is built and pinned.
 */
Test(service, interpolated_store_paths_are_rendered, .init = setup, .fini = teardown, .timeout = 120)
{
	tdir_write(&t, "i/prog.pcl",
		   "module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
		   "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" } }\n"
		   "module Tool { pname = \"tool\" version = \"2\" recipe = \"std.shell\"\n"
		   "  recipeArgs = { command = \"mkdir -p $OUTPUT/share\" } }\n"
		   "module Base { port = 8080 }\n"
		   "module Web { backend = \"systemd\"\n"
		   "  services = [{ name = \"web\" package = \"App\" binary = \"app\"\n"
		   "    args = [\"--data=${Tool.out}/share\", \"--port\", \"${Base.port}\", \"$${literal}\"]\n"
		   "    environment = { TOOL = \"${Tool.out}\" } }]\n"
		   "  configFiles = [{ path = \"/etc/web.conf\" content = \"tool = ${Tool.out}\\nport = ${Base.port}\\n\" }] }\n");
	char *ip = tdir_at(&t, "i/prog.pcl");
	const char *d[] = {"service", "deploy", "Web", "--file", ip, "--transport-root", target, NULL};
	struct proc_result r = punix_run(home, d);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "2 store path(s) pinned") != NULL, "Tool is pinned too: %s", r.out);
	proc_result_free(&r);
	char *conf = tdir_read(&t, "target/etc/web.conf");
	cr_assert(conf != NULL);
	/* "tool = <store>/<hash>-tool-2\nport = 8080\n" */
	cr_assert(strncmp(conf, "tool = /", 8) == 0, "%s", conf);
	char *tool = strndup(conf + 7, strcspn(conf + 7, "\n"));
	cr_expect(strlen(tool) > 7 && strcmp(tool + strlen(tool) - 7, "-tool-2") == 0, "%s", tool);
	cr_expect(strstr(tool, "/store/") != NULL, "%s", tool);
	cr_expect(strcmp(conf + 7 + strlen(tool), "\nport = 8080\n") == 0, "%s", conf);
	char *unit = tdir_read(&t, "target/etc/systemd/system/web.service");
	cr_assert(unit != NULL);
	struct sbuf want = SBUF_INIT;
	/* systemd reads "$$" as one '$': the literal "${literal}" is escaped so */
	sbuf_printf(&want, "/bin/app --data=%s/share --port 8080 $${literal}\n", tool);
	cr_expect(strstr(unit, want.sb_buf) != NULL, "want %s in:\n%s", want.sb_buf, unit);
	sbuf_reset(&want);
	sbuf_printf(&want, "Environment=\"TOOL=%s\"\n", tool);
	cr_expect(strstr(unit, want.sb_buf) != NULL, "want %s in:\n%s", want.sb_buf, unit);
	free(conf);
	free(unit);
	sbuf_free(&want);
	free(tool);
	free(ip);
}

/*
 * A backend without an activator (launchd) deploys like any other; only
 * --activate fails, after the flip, which stands (exit 1, with --json too).
 */
Test(service, a_backend_without_an_activator_renders_now_and_activates_later, .init = setup, .fini = teardown,
     .timeout = 120)
{
	tdir_write(&t, "p/mac.pcl",
		   "module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
		   "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" } }\n"
		   "module Mac { backend = \"launchd\"\n"
		   "  services = [{ name = \"web\" package = \"App\" binary = \"app\" args = [\"<&>\"] }] }\n");
	char *mac = tdir_at(&t, "p/mac.pcl");
	const char *d[] = {"service", "deploy", "Mac", "--file", mac, "--transport-root", target, NULL};
	struct proc_result r = punix_run(home, d);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "deployed: stack Mac \u2192 gen-001") != NULL, "%s", r.out);
	proc_result_free(&r);
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p, "%s/Library/LaunchDaemons/punix.Mac.web.plist", target);
	struct stat st;
	cr_expect_eq(stat(p.sb_buf, &st), 0, "%s is rendered", p.sb_buf);
	sbuf_free(&p);
	const char *a[] = {"service", "deploy", "Mac", "--file", mac, "--transport-root", target, "--activate", NULL};
	r = punix_run(home, a);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "error: stack Mac is deployed (current \u2192 gen-002) but backend 'launchd' has no "
				"activator: its files are rendered; activate them yourself \u2014 this was NOT rolled back"),
		  "%s", r.err);
	proc_result_free(&r);
	const char *j[] = {"service", "deploy", "Mac", "--file", mac, "--transport-root", target, "--activate", "--json", NULL};
	r = punix_run(home, j);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "\"no_activator\": \"launchd\"") && strstr(r.out, "\"generation\": 3"), "%s", r.out);
	proc_result_free(&r);
	const char *s[] = {"service", "status", "Mac", "--transport-root", target, NULL};
	r = punix_run(home, s);
	cr_expect(strstr(r.out, "current gen-003") != NULL, "the flips stand: %s", r.out);
	proc_result_free(&r);
	free(mac);
}
