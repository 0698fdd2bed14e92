/*
 * test_supervisord.c - the supervisord backend against a real supervisord
 * (Debian's supervisor package): the test starts its own, with a private
 * config in a scratch directory (socket, pid file, logs and include
 * directory all there), deploys with --supervisor-conf and --activate
 * into that include directory (state and deployments under the scratch
 * PUNIX_HOME), and asks supervisorctl what runs. Nothing outside the
 * scratch directory is touched; the supervisord is killed at the end.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "tests/support/proc.h"

static struct tdir t;
static char *home, *conf;
static bool have_supervisord;

static char *ctl_out(const char *args)
{
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "supervisorctl -c %s %s 2>&1", conf, args);
	FILE *p = popen(cmd.sb_buf, "r");
	sbuf_free(&cmd);
	struct sbuf out = SBUF_INIT;
	char buf[512];
	size_t n;
	while (p && (n = fread(buf, 1, sizeof(buf), p)) > 0)
		sbuf_append(&out, buf, n);
	if (p)
		pclose(p);
	return sbuf_detach(&out, NULL);
}

/* The program's state word in `supervisorctl status NAME`, and its pid (0 if none). */
static char *state_of(const char *name, long *pid)
{
	struct sbuf a = SBUF_INIT;
	sbuf_printf(&a, "status %s", name);
	char *o = ctl_out(a.sb_buf);
	sbuf_free(&a);
	char st[64] = "";
	sscanf(o + strcspn(o, " "), "%63s", st);
	const char *p = strstr(o, "pid ");
	if (pid)
		*pid = p ? strtol(p + 4, NULL, 10) : 0;
	free(o);
	return strdup(st);
}

static void start(void)
{
	tdir_make(&t);
	home = tdir_at(&t, "home");
	conf = tdir_at(&t, "supervisord.conf");
	have_supervisord = access("/usr/bin/supervisord", X_OK) == 0 && access("/usr/bin/supervisorctl", X_OK) == 0;
	if (!have_supervisord)
		return;
	char *d = t.path;
	struct sbuf c = SBUF_INIT;
	sbuf_printf(&c,
		    "[unix_http_server]\nfile=%s/supervisor.sock\nchmod=0700\n\n"
		    "[supervisord]\nlogfile=%s/supervisord.log\npidfile=%s/supervisord.pid\nchildlogdir=%s/logs\n"
		    "nodaemon=false\n\n"
		    "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
		    "[supervisorctl]\nserverurl=unix://%s/supervisor.sock\n\n"
		    "[include]\nfiles = %s/conf.d/*.conf\n",
		    d, d, d, d, d, d);
	tdir_write(&t, "supervisord.conf", c.sb_buf);
	sbuf_free(&c);
	tdir_write(&t, "conf.d/.keep", "");
	tdir_write(&t, "logs/.keep", "");
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "/usr/bin/supervisord -c %s", conf);
	cr_assert_eq(system(cmd.sb_buf), 0, "supervisord did not start");
	sbuf_free(&cmd);
	for (int i = 0; i < 100; i++) {
		char *o = ctl_out("pid");
		bool up = o[0] >= '1' && o[0] <= '9';
		free(o);
		if (up)
			return;
		usleep(100 * 1000);
	}
	cr_assert_fail("supervisord does not answer");
}

static void stop(void)
{
	char *pidf = tdir_read(&t, "supervisord.pid");
	long pid = pidf ? strtol(pidf, NULL, 10) : 0;
	free(pidf);
	if (pid > 0) {
		/* it stops its programs (as groups) and exits */
		kill((pid_t)pid, SIGTERM);
		for (int i = 0; i < 100 && kill((pid_t)pid, 0) == 0; i++)
			usleep(100 * 1000);
		if (kill((pid_t)pid, 0) == 0)
			kill((pid_t)pid, SIGKILL);
	}
	free(home);
	free(conf);
	tdir_free(&t);
}

/* The program: ticker's arg, whether "extra" and "bad" are in the stack. */
static void write_prog(const char *ticker_arg, bool extra, bool bad)
{
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p,
		    "module Bins { pname = \"bins\" version = \"1\" recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf '#!/bin/sh\\\\nexec sleep \\\"$1\\\"\\\\n' > "
		    "$OUTPUT/bin/ok && printf '#!/bin/sh\\\\nexit 3\\\\n' > $OUTPUT/bin/bad && chmod +x $OUTPUT/bin/*\" } }\n"
		    "module S { backend = \"supervisord\"\n"
		    "  services = [\n"
		    "    { name = \"ticker\" package = \"Bins\" binary = \"ok\" args = [\"%s\"]\n"
		    "      environment = { GREETING = \"hello, world\" } }\n"
		    "%s%s"
		    "  ] }\n",
		    ticker_arg, extra ? "    { name = \"extra\" package = \"Bins\" binary = \"ok\" args = [\"400\"] }\n" : "",
		    bad ? "    { name = \"bad\" package = \"Bins\" binary = \"bad\" }\n" : "");
	tdir_write(&t, "prog.pcl", p.sb_buf);
	sbuf_free(&p);
}

static struct proc_result run(const char *sub)
{
	char *prog = tdir_at(&t, "prog.pcl");
	const char *deploy[] = {"service", "deploy", "S", "--file", prog, "--supervisor-conf", conf, "--activate", NULL};
	const char *rollback[] = {"service", "rollback", "S", "--supervisor-conf", conf, "--activate", NULL};
	struct proc_result r = punix_run(home, strcmp(sub, "deploy") ? rollback : deploy);
	free(prog);
	return r;
}

static void expect_state(const char *name, const char *want, long *pid)
{
	char *st = state_of(name, pid);
	cr_expect_str_eq(st, want, "%s is %s, not %s", name, st, want);
	free(st);
}

Test(supervisord, programs_run_restart_stop_fail_and_roll_back, .init = start, .fini = stop, .timeout = 240)
{
	if (!have_supervisord)
		cr_skip_test("supervisord is not installed (scripts/install-deps installs it)");
	/* gen-001: ticker runs */
	write_prog("300", false, false);
	struct proc_result r = run("deploy");
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "deployed: stack S \u2192 gen-001 (") != NULL, "%s", r.out);
	cr_expect(strstr(r.out, "\u2713 (re)started ticker (RUNNING under supervisord)\n") != NULL, "%s", r.out);
	char *file = tdir_read(&t, "conf.d/ticker.conf");
	cr_assert_not_null(file, "the program's file is in the include directory");
	cr_expect(strstr(file, "[program:ticker]\ncommand=") != NULL, "%s", file);
	cr_expect(strstr(file, "/bin/ok 300\n") != NULL, "%s", file);
	cr_expect(strstr(file, "environment=GREETING=\"hello, world\"\n") != NULL, "%s", file);
	free(file);
	long pid1 = 0, pid2 = 0, pid3 = 0;
	expect_state("ticker", "RUNNING", &pid1);
	cr_expect_gt(pid1, 0);
	proc_result_free(&r);

	/* gen-002: a changed argument restarts ticker; extra starts */
	write_prog("301", true, false);
	r = run("deploy");
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "\u2713 (re)started ticker (RUNNING under supervisord)\n") != NULL, "%s", r.out);
	cr_expect(strstr(r.out, "\u2713 (re)started extra (RUNNING under supervisord)\n") != NULL, "%s", r.out);
	expect_state("ticker", "RUNNING", &pid2);
	cr_expect(pid2 > 0 && pid2 != pid1, "ticker was restarted (pid %ld, then %ld)", pid1, pid2);
	expect_state("extra", "RUNNING", NULL);
	proc_result_free(&r);

	/* gen-003: extra leaves the stack: stopped, its file gone; ticker untouched */
	write_prog("301", false, false);
	r = run("deploy");
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "\u2713 stopped extra (no longer in the stack)\n") != NULL, "%s", r.out);
	cr_expect(strstr(r.out, "\u00b7 ticker unchanged, not restarted\n") != NULL, "%s", r.out);
	char *gone = tdir_read(&t, "conf.d/extra.conf");
	cr_expect_null(gone, "extra's file is removed");
	free(gone);
	char *o = ctl_out("status extra");
	cr_expect(strstr(o, "no such process") != NULL, "supervisord no longer knows extra: %s", o);
	free(o);
	expect_state("ticker", "RUNNING", &pid3);
	cr_expect_eq(pid3, pid2, "ticker was not restarted");
	proc_result_free(&r);

	/* rollback to gen-002: extra is back */
	r = run("rollback");
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "\u2713 (re)started extra (RUNNING under supervisord)\n") != NULL, "%s", r.out);
	expect_state("extra", "RUNNING", NULL);
	expect_state("ticker", "RUNNING", NULL);
	proc_result_free(&r);

	/* gen-004: a program that exits at once is reported, exit 1, nothing rolled back */
	write_prog("301", true, true);
	r = run("deploy");
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "\u26a0 bad did not (re)start: ") != NULL, "%s", r.out);
	cr_expect(strstr(r.err, "error: stack S is deployed (current \u2192 gen-004) but 1 unit(s) did not (re)start: bad "
				"\u2014 investigate and re-activate; this was NOT rolled back\n") != NULL,
		  "%s", r.err);
	char *st = state_of("bad", NULL);
	cr_expect(!strcmp(st, "BACKOFF") || !strcmp(st, "FATAL") || !strcmp(st, "EXITED") || !strcmp(st, "STARTING"),
		  "bad is %s", st);
	free(st);
	expect_state("ticker", "RUNNING", NULL);
	proc_result_free(&r);

	/* with --json: the same exit code, the op's object with ok false and the flip standing */
	const char *back[] = {"service", "set-current", "S", "3", "--supervisor-conf", conf, "--activate", "--json", NULL};
	r = punix_run(home, back);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "\"ok\": true") != NULL, "%s", r.out);
	proc_result_free(&r);
	const char *fwd[] = {"service", "set-current", "S", "gen-004", "--supervisor-conf", conf, "--activate", "--json", NULL};
	r = punix_run(home, fwd);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "\"ok\": false") != NULL && strstr(r.out, "\"exit\": 1") != NULL &&
			  strstr(r.out, "\"generation\": 4") != NULL && strstr(r.out, "\"failed\": \"bad\"") != NULL &&
			  strstr(r.out, "this was NOT rolled back") != NULL,
		  "%s", r.out);
	cr_expect(strstr(r.out, "\u26a0") == NULL || strstr(r.out, "\"activation\"") != NULL,
		  "the activation lines are in the object, not beside it: %s", r.out);
	proc_result_free(&r);
}

/*
 * Secrets: in a file only the program's user can read (0600), sourced by
 * /bin/sh before the program starts; the program sees the value, the
 * supervisord config never holds it, and a changed secret restarts it.
 * The file is at the stack's sidecar path, /etc/punix/secrets/STACK/: the
 * stack's name is this test's own, and the directory is removed after.
 */
Test(supervisord, a_secret_reaches_the_program_through_its_own_file, .init = start, .fini = stop, .timeout = 120)
{
	if (!have_supervisord)
		cr_skip_test("supervisord is not installed (scripts/install-deps installs it)");
	/* the program runs as nobody: it reaches its own file, and writes what it saw where it may */
	cr_assert_eq(chmod(t.path, 0711), 0);
	tdir_write(&t, "out/.keep", "");
	char *outdir = tdir_at(&t, "out");
	cr_assert_eq(chmod(outdir, 0777), 0);
	char *seen = tdir_at(&t, "out/seen");
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p,
		    "module Bins { pname = \"bins\" version = \"1\" recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf '#!/bin/sh\\\\nprintf %%%%s \\\"$TOKEN\\\" "
		    "> \\\"$1\\\"\\\\nexec sleep 300\\\\n' > $OUTPUT/bin/dump && chmod +x $OUTPUT/bin/dump\" } }\n"
		    "module PunixTestSupSecrets { backend = \"supervisord\"\n"
		    "  services = [{ name = \"dumper\" package = \"Bins\" binary = \"dump\" args = [\"%s\"]\n"
		    "      serviceConfig = { User = \"nobody\" }\n"
		    "      environment = { TOKEN = { from_env = \"PUNIX_TEST_SUP_TOKEN\" } } }] }\n",
		    seen);
	tdir_write(&t, "secret.pcl", p.sb_buf);
	sbuf_free(&p);
	char *prog = tdir_at(&t, "secret.pcl");
	const char *deploy[] = {"service", "deploy", "PunixTestSupSecrets", "--file", prog, "--supervisor-conf", conf,
				"--activate", NULL};
	setenv("PUNIX_TEST_SUP_TOKEN", "it's a s3cret", 1);
	struct proc_result r = punix_run(home, deploy);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "\u2713 (re)started dumper (RUNNING under supervisord)\n") != NULL, "%s", r.out);
	proc_result_free(&r);
	char *got = NULL;
	for (int i = 0; i < 50 && !(got = tdir_read(&t, "out/seen")); i++)
		usleep(100 * 1000);
	cr_expect_str_eq(got ? got : "(nothing)", "it's a s3cret", "the program sees the secret");
	free(got);
	char *cfg = tdir_read(&t, "conf.d/dumper.conf");
	cr_expect(cfg && strstr(cfg, "s3cret") == NULL, "the config never holds the secret: %s", cfg ? cfg : "");
	free(cfg);
	struct stat st;
	cr_expect_eq(stat("/etc/punix/secrets/PunixTestSupSecrets/dumper.env", &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0600);
	cr_expect_eq(stat("/etc/punix/secrets/PunixTestSupSecrets", &st), 0);
	cr_expect_eq(st.st_mode & 0111, 0111, "its directory can be entered by the program's user (mode %04o)",
		     (unsigned)(st.st_mode & 07777));

	/* a changed secret restarts the program, though its config did not change */
	long pid1 = 0, pid2 = 0;
	expect_state("dumper", "RUNNING", &pid1);
	setenv("PUNIX_TEST_SUP_TOKEN", "another", 1);
	r = punix_run(home, deploy);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "\u2713 (re)started dumper (RUNNING under supervisord)\n") != NULL, "%s", r.out);
	proc_result_free(&r);
	expect_state("dumper", "RUNNING", &pid2);
	cr_expect(pid2 > 0 && pid2 != pid1, "restarted (pid %ld, then %ld)", pid1, pid2);
	unsetenv("PUNIX_TEST_SUP_TOKEN");
	cr_expect_eq(system("rm -rf /etc/punix/secrets/PunixTestSupSecrets"), 0);
	free(prog);
	free(seen);
	free(outdir);
}
