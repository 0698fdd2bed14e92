/*
 * test_confinement.c - punix never touches anything outside its roots,
 * tried the way an attacker or a careless operator would: symlinks planted
 * in a transport root, a store that is not a store, a deployments root that
 * does not exist, registrations and manifests that lie about where their
 * paths are, files the stack does not own, roots named with '/.', '//' and
 * a trailing '/'. Each case checks that nothing outside was changed.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "journal/journal.h"
#include "tests/support/proc.h"

static struct tdir t;
static char *home, *root, *prog, *outside;

static const char program[] =
	"module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf x > $OUTPUT/bin/app\" } }\n"
	"module Web { backend = \"systemd\"\n"
	"  services = [{ name = \"web\" package = \"App\" binary = \"app\" }]\n"
	"  configFiles = [{ path = \"/etc/web/web.conf\" content = \"port = 80\\n\" }] }\n";

static void setup(void)
{
	tdir_make(&t);
	home = tdir_at(&t, "home");
	root = tdir_at(&t, "root");
	outside = tdir_at(&t, "outside");
	mkdir(root, 0755);
	mkdir(outside, 0755);
	tdir_write(&t, "outside/keep", "precious\n");
	tdir_write(&t, "p/prog.pcl", program);
	prog = tdir_at(&t, "p/prog.pcl");
}

static void teardown(void)
{
	free(home);
	free(root);
	free(prog);
	free(outside);
	tdir_free(&t);
}

static void tdir_mkdir_p(const struct tdir *d, const char *rel)
{
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "mkdir -p '%s/%s'", d->path, rel);
	cr_assert_eq(system(cmd.sb_buf), 0);
	sbuf_free(&cmd);
}

static struct proc_result deploy_to(const char *troot, const char *extra)
{
	const char *a[] = {"service", "deploy", "Web", "--file", prog, "--transport-root", troot, extra, NULL};
	return punix_run(home, a);
}

/* outside/ holds exactly one file, "keep", with its original bytes. */
static void outside_untouched(void)
{
	char *keep = tdir_read(&t, "outside/keep");
	cr_assert_not_null(keep, "outside/keep is gone");
	cr_expect_str_eq(keep, "precious\n");
	free(keep);
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "test \"$(ls -A %s)\" = keep", outside);
	cr_expect_eq(system(cmd.sb_buf), 0, "something was written into %s", outside);
	sbuf_free(&cmd);
}

Test(confinement, a_symlinked_directory_in_the_root_cannot_redirect_a_write, .init = setup, .fini = teardown,
     .timeout = 120)
{
	/* <root>/etc/web -> the outside directory: the config file must not land there */
	tdir_mkdir_p(&t, "root/etc");
	char *link = tdir_at(&t, "root/etc/web");
	cr_assert_eq(symlink(outside, link), 0);
	struct proc_result r = deploy_to(root, NULL);
	cr_expect_neq(r.status, 0, "the deploy followed a symlink out of its root:\n%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "error: ") != NULL, "%s", r.err);
	outside_untouched();
	proc_result_free(&r);
	free(link);
}

Test(confinement, a_symlinked_config_file_is_replaced_not_written_through, .init = setup, .fini = teardown,
     .timeout = 120)
{
	/* <root>/etc/web/web.conf -> outside/keep, adopted: the link is replaced, keep is intact */
	tdir_mkdir_p(&t, "root/etc/web");
	char *link = tdir_at(&t, "root/etc/web/web.conf"), *keep = tdir_at(&t, "outside/keep");
	cr_assert_eq(symlink(keep, link), 0);
	struct proc_result r = deploy_to(root, NULL);
	cr_expect_eq(r.status, 1, "a file nobody adopted must be refused:\n%s", r.err);
	cr_expect(strstr(r.err, "[E13]") != NULL && strstr(r.err, "/etc/web/web.conf exists") != NULL, "%s", r.err);
	proc_result_free(&r);
	outside_untouched();
	struct stat st;
	cr_expect_eq(lstat(link, &st), 0);
	cr_expect(S_ISLNK(st.st_mode), "the refused deploy changed nothing");
	free(link);
	free(keep);
}

Test(confinement, a_trailing_slash_names_the_same_target_and_lock, .init = setup, .fini = teardown, .timeout = 120)
{
	struct proc_result r = deploy_to(root, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	struct sbuf alt = SBUF_INIT;
	sbuf_printf(&alt, "%s//./", root);
	const char *a[] = {"service", "status", "Web", "--transport-root", alt.sb_buf, NULL};
	r = punix_run(home, a);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "gen-001") != NULL, "'%s' is the same target:\n%s", alt.sb_buf, r.out);
	proc_result_free(&r);
	sbuf_reset(&alt);
	sbuf_printf(&alt, "%s/../root", root);
	const char *b[] = {"service", "status", "Web", "--transport-root", alt.sb_buf, NULL};
	r = punix_run(home, b);
	cr_expect_eq(r.status, 2, "'..' in a root is refused:\n%s", r.err);
	cr_expect(strstr(r.err, "'..'") != NULL, "%s", r.err);
	proc_result_free(&r);
	sbuf_free(&alt);
}

Test(confinement, gc_without_a_deployments_root_deletes_nothing, .init = setup, .fini = teardown, .timeout = 120)
{
	const char *b[] = {"build", prog, NULL};
	struct proc_result r = punix_run(home, b);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	char *none = tdir_at(&t, "nonexistent");
	const char *g[] = {"store", "gc", "--deployments-root", none, NULL};
	r = punix_run(home, g);
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "deletes nothing") != NULL && strstr(r.err, none) != NULL, "%s", r.err);
	proc_result_free(&r);
	const char *i[] = {"store", "info", NULL};
	r = punix_run(home, i);
	cr_expect(strstr(r.out, "paths: 1\n") != NULL, "the built path survived:\n%s", r.out);
	proc_result_free(&r);
	free(none);
}

Test(confinement, gc_verify_and_recover_refuse_a_directory_that_is_not_a_store, .init = setup, .fini = teardown,
     .timeout = 120)
{
	/* a directory full of things that look like leftovers */
	tdir_write(&t, "outside/0123456789abcdfghijklmnpqrsvwxyz-looks-1/file", "x\n");
	tdir_mkdir_p(&t, "outside/.meta");
	const char *cmds[][6] = {
		{"store", "gc", "--store-root", outside, NULL},
		{"store", "verify", "--store-root", outside, NULL},
		{"recover", "--store-root", outside, NULL},
	};
	for (size_t i = 0; i < 3; i++) {
		struct proc_result r = punix_run(home, cmds[i]);
		cr_expect_eq(r.status, 1, "%s %s: %s", cmds[i][0], cmds[i][1], r.err);
		cr_expect(strstr(r.err, "is not a Punix store") != NULL, "%s", r.err);
		proc_result_free(&r);
	}
	char *f = tdir_read(&t, "outside/0123456789abcdfghijklmnpqrsvwxyz-looks-1/file");
	cr_expect_not_null(f, "recover deleted a 'leftover' from a directory that is not a store");
	free(f);
	char *keep = tdir_read(&t, "outside/keep");
	cr_expect_str_eq(keep ? keep : "", "precious\n");
	free(keep);
}

Test(confinement, a_registration_naming_a_path_outside_the_store_deletes_nothing, .init = setup, .fini = teardown,
     .timeout = 120)
{
	const char *b[] = {"build", prog, NULL};
	struct proc_result r = punix_run(home, b);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	/* a registration whose path is the outside directory, with a valid name */
	struct sbuf reg = SBUF_INIT;
	sbuf_printf(&reg,
		    "{\"format\": 1, \"path\": \"%s\", \"nar_sha256\": "
		    "\"0000000000000000000000000000000000000000000000000000000000000000\", \"bytes\": 1, \"deps\": []}\n",
		    outside);
	tdir_write(&t, "home/store/.meta/0123456789abcdfghijklmnpqrsvwxyz-evil-1.json", reg.sb_buf);
	tdir_mkdir_p(&t, "home/deployments");
	const char *g[] = {"store", "gc", NULL};
	r = punix_run(home, g);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "corrupt registration") != NULL && strstr(r.err, outside) != NULL, "%s", r.err);
	proc_result_free(&r);
	outside_untouched();
	sbuf_free(&reg);
}

Test(confinement, a_config_file_may_not_be_punix_state_or_another_stacks, .init = setup, .fini = teardown,
     .timeout = 120)
{
	struct proc_result r = deploy_to(root, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	/* a second stack declaring the first one's file, and one writing into punix's state */
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p,
		    "%s\nmodule Thief { backend = \"systemd\"\n"
		    "  services = [{ name = \"thief\" package = \"App\" binary = \"app\" }]\n"
		    "  configFiles = [{ path = \"/etc/web/web.conf\" content = \"mine\\n\" },\n"
		    "                 { path = \"%s/deployments/Web/current\" content = \"x\" }] }\n",
		    program, home);
	tdir_write(&t, "p/prog.pcl", p.sb_buf);
	const char *a[] = {"service", "deploy", "Thief", "--file", prog, "--transport-root", root, NULL};
	r = punix_run(home, a);
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "/etc/web/web.conf belongs to stack 'Web'") != NULL, "%s", r.err);
	cr_expect(strstr(r.err, "punix's own state") != NULL, "%s", r.err);
	proc_result_free(&r);
	char *conf = tdir_read(&t, "root/etc/web/web.conf");
	cr_expect_str_eq(conf ? conf : "", "port = 80\n", "the other stack's file is intact");
	free(conf);
	sbuf_free(&p);
}

Test(confinement, an_adopted_file_comes_back_when_the_stack_lets_it_go, .init = setup, .fini = teardown,
     .timeout = 120)
{
	tdir_write(&t, "root/etc/web/web.conf", "the admin's own\n");
	char *conf = tdir_at(&t, "root/etc/web/web.conf");
	chmod(conf, 0640);
	struct proc_result r = deploy_to(root, "--adopt=/etc/web/web.conf");
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	char *now = tdir_read(&t, "root/etc/web/web.conf");
	cr_expect_str_eq(now ? now : "", "port = 80\n");
	free(now);
	/* the stack stops declaring it */
	char *p = strdup(program);
	char *cf = strstr(p, "  configFiles");
	strcpy(cf, "  configFiles = [] }\n");
	tdir_write(&t, "p/prog.pcl", p);
	free(p);
	r = deploy_to(root, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	now = tdir_read(&t, "root/etc/web/web.conf");
	cr_expect_str_eq(now ? now : "", "the admin's own\n", "the original bytes came back");
	struct stat st;
	cr_expect_eq(stat(conf, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0640, "with the original mode");
	free(now);
	free(conf);
}

Test(confinement, read_only_commands_create_nothing, .init = setup, .fini = teardown, .timeout = 120)
{
	const char *cmds[][6] = {
		{"store", "info", NULL},
		{"service", "status", "Web", NULL},
		{"service", "verify", "Web", NULL},
		{"service", "status", "Web", "--dry-run", NULL},
	};
	for (size_t i = 0; i < 4; i++) {
		struct proc_result r = punix_run(home, cmds[i]);
		cr_expect(r.status < 128, "%s %s crashed", cmds[i][0], cmds[i][1]);
		proc_result_free(&r);
		struct stat st;
		cr_expect_neq(stat(home, &st), 0, "'%s %s' created %s", cmds[i][0], cmds[i][1], home);
	}
}

/* ---- state that is not what it should be ------------------------------------------ */

Test(state, generation_numbers_past_999_keep_working, .init = setup, .fini = teardown, .timeout = 120)
{
	struct proc_result r = deploy_to(root, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	/* make gen-001 into gen-999, as 998 deploys later */
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd,
		    "cd '%s%s/deployments/Web' && sed -i 's/\"generation\": 1,/\"generation\": 999,/' gen-001.json && "
		    "mv gen-001.json gen-999.json && mv gen-001.files gen-999.files && ln -sfn gen-999.json current",
		    root, home);
	cr_assert_eq(system(cmd.sb_buf), 0);
	sbuf_free(&cmd);
	r = deploy_to(root, NULL);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "gen-1000") != NULL, "%s", r.out);
	proc_result_free(&r);
	const char *rb[] = {"service", "rollback", "Web", "--transport-root", root, NULL};
	r = punix_run(home, rb);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "gen-999 (was gen-1000)") != NULL, "%s", r.out);
	proc_result_free(&r);
	const char *sc[] = {"service", "set-current", "Web", "1000", "--transport-root", root, NULL};
	r = punix_run(home, sc);
	cr_expect_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	const char *st[] = {"service", "status", "Web", "--transport-root", root, NULL};
	r = punix_run(home, st);
	char *p999 = strstr(r.out, "  gen-999 "), *p1000 = strstr(r.out, "* gen-1000 ");
	cr_expect(p999 && p1000 && p999 < p1000, "generations in number order:\n%s", r.out);
	proc_result_free(&r);
}

Test(state, an_effect_failing_after_the_flip_is_finished_by_recover_once_fixed, .init = setup, .fini = teardown,
     .timeout = 120)
{
	/* the deploy stops right after its flip; then /etc/web becomes a file */
	setenv("PUNIX_CRASH_AT", "deploy:flip:after", 1);
	struct proc_result r = deploy_to(root, NULL);
	unsetenv("PUNIX_CRASH_AT");
	cr_assert_eq(r.status, 128 + 9, "%s", r.err);
	proc_result_free(&r);
	char *etc_web = tdir_at(&t, "root/etc/web");
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "rm -rf '%s' && mkdir -p \"$(dirname '%s')\" && echo 'in the way' > '%s'", etc_web, etc_web,
		    etc_web);
	cr_assert_eq(system(cmd.sb_buf), 0);
	/* materialise cannot finish (ENOTDIR): recover says so, and keeps the op */
	const char *rec[] = {"recover", NULL};
	r = punix_run(home, rec);
	cr_expect_neq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "rolling forward failed") != NULL && strstr(r.out, "/etc/web/web.conf") != NULL,
		  "the report names the op and the path:\n%s%s", r.out, r.err);
	proc_result_free(&r);
	/* the cause goes; recover finishes the op */
	cr_assert_eq(unlink(etc_web), 0);
	r = punix_run(home, rec);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "rolled forward; current is gen-001") != NULL, "%s", r.out);
	proc_result_free(&r);
	char *conf = tdir_read(&t, "root/etc/web/web.conf");
	cr_expect_str_eq(conf ? conf : "", "port = 80\n");
	free(conf);
	free(etc_web);
	sbuf_free(&cmd);
}

Test(state, rolling_back_away_from_a_corrupt_generation_works, .init = setup, .fini = teardown, .timeout = 120)
{
	struct proc_result r = deploy_to(root, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	r = deploy_to(root, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	char *m = tdir_at(&t, "root");
	struct sbuf path = SBUF_INIT;
	sbuf_printf(&path, "%s%s/deployments/Web/gen-002.json", m, home);
	FILE *f = fopen(path.sb_buf, "w");
	cr_assert_not_null(f);
	fputs("{ not a manifest", f);
	fclose(f);
	const char *rb[] = {"service", "rollback", "Web", "--transport-root", root, NULL};
	r = punix_run(home, rb);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "gen-001 (was gen-002)") != NULL, "%s", r.out);
	proc_result_free(&r);
	sbuf_free(&path);
	free(m);
}

Test(state, prune_and_gc_refuse_a_current_that_names_a_missing_generation, .init = setup, .fini = teardown,
     .timeout = 120)
{
	/* locally (no transport root), so the deployer's own gc sees it */
	char *dep = tdir_at(&t, "dep");
	const char *d[] = {"service", "deploy", "Web", "--file", prog, "--transport-root", root, "--deployments-root",
			   dep, NULL};
	struct proc_result r = punix_run(home, d);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	struct sbuf cur = SBUF_INIT;
	sbuf_printf(&cur, "%s%s/Web/current", root, dep);
	cr_assert_eq(unlink(cur.sb_buf), 0);
	cr_assert_eq(symlink("gen-042.json", cur.sb_buf), 0);
	const char *p[] = {"service", "prune", "Web", "--keep", "0", "--transport-root", root, "--deployments-root", dep,
			   NULL};
	r = punix_run(home, p);
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "current names gen-042, which does not exist") != NULL, "%s", r.err);
	proc_result_free(&r);
	struct sbuf m = SBUF_INIT;
	sbuf_printf(&m, "%s%s/Web/gen-001.json", root, dep);
	struct stat st;
	cr_expect_eq(stat(m.sb_buf, &st), 0, "prune deleted nothing");
	const char *g[] = {"store", "gc", "--transport-root", root, "--deployments-root", dep, NULL};
	r = punix_run(home, g);
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "gen-042, which does not exist") != NULL, "%s", r.err);
	proc_result_free(&r);
	sbuf_free(&cur);
	sbuf_free(&m);
	free(dep);
}

Test(confinement, as_a_non_root_user_a_planted_symlink_reaches_nothing, .init = setup, .fini = teardown,
     .timeout = 120)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to become nobody");
	/* nobody owns the scratch tree and the outside directory too: only
	 * confinement, not permissions, keeps the write inside the root */
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "mkdir -p %s/root/etc && ln -s %s %s/root/etc/web && chown -R nobody %s/root %s/p %s && "
			  "mkdir -p %s/home && chown nobody %s/home && chmod 0755 %s",
		    t.path, outside, t.path, t.path, t.path, outside, t.path, t.path, t.path);
	cr_assert_eq(system(cmd.sb_buf), 0);
	sbuf_reset(&cmd);
	sbuf_printf(&cmd,
		    "su -s /bin/sh nobody -c 'ASAN_OPTIONS=detect_leaks=0 PUNIX_HOME=%s/home %s service deploy Web "
		    "--file %s --transport-root %s/root' >/dev/null 2>&1",
		    t.path, PUNIX_BIN, prog, t.path);
	int st = system(cmd.sb_buf);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) != 0, "the deploy through the symlink must fail");
	outside_untouched();
	sbuf_free(&cmd);
}

/*
 * A running op's plan pins what it needs; a plan whose pins cannot be read
 * (here: a number among the store paths) could need anything, so GC deletes
 * nothing and says which op and what to do.
 */
Test(confinement, gc_refuses_a_running_op_whose_pins_cannot_be_read, .init = setup, .fini = teardown,
     .timeout = 120)
{
	const char *b[] = {"build", prog, NULL};
	struct proc_result r = punix_run(home, b);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	tdir_mkdir_p(&t, "home/deployments");
	char *jdir = tdir_at(&t, "home/journal");
	struct journal *j;
	struct journal_err je;
	cr_assert_eq(journal_open(&j, jdir, &je), 0, "%s", je.msg);
	struct journal_op op = {.kind = "deploy", .scope = "x|y|Web", .stack = "Web",
				.plan = "{\"store_paths\": [42]}", .state = JOURNAL_OP_RUNNING, .started = 1};
	cr_assert_eq(journal_op_begin(j, &op, &je), 0, "%s", je.msg);
	journal_close(j);
	free(jdir);
	char *before = NULL;
	struct sbuf ls = SBUF_INIT;
	sbuf_printf(&ls, "ls %s/home/store", t.path);
	FILE *f = popen(ls.sb_buf, "r");
	size_t cap = 0;
	cr_assert(getdelim(&before, &cap, '\0', f) > 0);
	pclose(f);
	const char *g[] = {"store", "gc", NULL};
	r = punix_run(home, g);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "cannot be read") != NULL && strstr(r.err, "set-aside") != NULL, "%s", r.err);
	proc_result_free(&r);
	f = popen(ls.sb_buf, "r");
	char *after = NULL;
	cap = 0;
	cr_assert(getdelim(&after, &cap, '\0', f) > 0);
	pclose(f);
	cr_expect_str_eq(after, before, "gc deleted something");
	free(before);
	free(after);
	sbuf_free(&ls);
}

/* The stack's lock on the target, planted as a symlink to a file outside: refused, the file untouched. */
Test(confinement, a_symlinked_target_lock_is_refused, .init = setup, .fini = teardown, .timeout = 120)
{
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "mkdir -p '%s%s/deployments/.locks' && ln -s %s/keep '%s%s/deployments/.locks/Web.lock'", root,
		    home, outside, root, home);
	cr_assert_eq(system(cmd.sb_buf), 0);
	struct proc_result r = deploy_to(root, NULL);
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "cannot lock stack 'Web' on the target") != NULL, "%s", r.err);
	proc_result_free(&r);
	outside_untouched();
	sbuf_free(&cmd);
}
