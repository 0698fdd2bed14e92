/*
 * test_activate.c - --activate and --enable against a real systemd: PID 1
 * of a private PID and mount namespace (docs/testing.md), with a tmpfs on
 * /run and /tmp, stub targets, and the test's own unit directory bound on
 * /etc/systemd/system and its own directory on /var/lib (StateDirectory=),
 * so the machine's systemd, /tmp and /var/lib are never touched.
 * punix runs inside the namespace through nsenter.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/ops.h"
#include "base/sbuf.h"

static char dir[64];
static pid_t unshare_pid, sd_pid;

static char *at(const char *rel)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s", dir, rel);
	return sbuf_detach(&sb, NULL);
}

static void write_at(const char *rel, const char *text, uint32_t mode)
{
	char *p = at(rel), *d = ops_dirname(p);
	cr_assert_eq(ops_mkdir_p(ops_local(), d, 0755), 0);
	cr_assert_eq(ops_write_atomic(ops_local(), p, text, strlen(text), mode), 0);
	free(p);
	free(d);
}

static int sh(const char *fmt, const char *a)
{
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, fmt, a, a, a, a);
	int st = system(cmd.sb_buf);
	sbuf_free(&cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void boot(void)
{
	/* not under /tmp: the namespace gets a tmpfs there */
	strcpy(dir, "/var/tmp/punix-act-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	chmod(dir, 0755);
	const char *stubs[] = {"sysinit", "basic", "multi-user", "timers", "sockets", "paths", "local-fs", "network",
			       "shutdown", "default"};
	for (size_t i = 0; i < sizeof(stubs) / sizeof(stubs[0]); i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "stubs/%s.target", stubs[i]);
		write_at(rel, "[Unit]\nDescription=stub target\n", 0644);
	}
	char *units = at("units"), *varlib = at("varlib");
	mkdir(units, 0755);
	mkdir(varlib, 0755); /* the namespace's /var/lib: StateDirectory= lands here, never in the machine's */
	free(varlib);
	struct sbuf script = SBUF_INIT;
	sbuf_printf(&script,
		    "#!/bin/sh\nset -e\nmount --make-rprivate /\nmount -t tmpfs tmpfs /run\nmount -t tmpfs tmpfs /tmp\n"
		    "mkdir -p /run/systemd/system\nmount --bind %s/units /etc/systemd/system\n"
		    "mount --bind %s/varlib /var/lib\n"
		    "mount --bind %s/stubs /usr/lib/systemd/system\n"
		    "exec /usr/lib/systemd/systemd --system --unit=multi-user.target\n",
		    dir, dir, dir);
	write_at("boot.sh", script.sb_buf, 0755);
	sbuf_free(&script);
	char *bootsh = at("boot.sh"), *log = at("systemd.log");
	unshare_pid = fork();
	if (unshare_pid == 0) {
		FILE *f = freopen(log, "w", stdout);
		(void)f;
		dup2(1, 2);
		execlp("unshare", "unshare", "--pid", "--fork", "--mount", "--mount-proc", bootsh, (char *)NULL);
		_exit(127);
	}
	/* systemd is unshare's child; wait until it answers */
	char pidcmd[128];
	snprintf(pidcmd, sizeof(pidcmd), "pgrep -P %d", (int)unshare_pid);
	for (int i = 0; i < 100 && !sd_pid; i++) {
		usleep(100 * 1000);
		FILE *p = popen(pidcmd, "r");
		int pid = 0;
		if (fscanf(p, "%d", &pid) == 1)
			sd_pid = pid;
		pclose(p);
	}
	cr_assert_gt(sd_pid, 0, "systemd did not start");
	char ready[256];
	snprintf(ready, sizeof(ready), "nsenter -t %d -m -p systemctl is-system-running >/dev/null 2>&1", (int)sd_pid);
	int up = 0;
	for (int i = 0; i < 100; i++) {
		int st = system(ready);
		/* running or degraded both mean the manager answers */
		if (WIFEXITED(st) && WEXITSTATUS(st) <= 1) {
			up = 1;
			break;
		}
		usleep(100 * 1000);
	}
	cr_assert(up, "systemd in the namespace does not answer");
	/* the binary may live under /tmp, which the namespace hides: bring a copy */
	cr_assert_eq(sh("cp " PUNIX_BIN " %s/punix", dir), 0);
	free(units);
	free(bootsh);
	free(log);
}

static void shutdown_(void)
{
	if (sd_pid > 0)
		kill(sd_pid, SIGKILL);
	if (unshare_pid > 0)
		waitpid(unshare_pid, NULL, 0);
	sh("chmod -R u+w %s; rm -rf %s", dir);
}

/* Runs punix inside the namespace; returns its exit status, output in *out. */
static int punix_in(const char *args, char **out)
{
	char *outp = at("out.txt"), *home = at("home");
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "nsenter -t %d -m -p env PUNIX_HOME=%s %s/punix %s > %s 2>&1", (int)sd_pid, home, dir, args,
		    outp);
	int st = system(cmd.sb_buf);
	char *text = NULL;
	size_t len;
	ops_local()->read_file(ops_local(), outp, 1 << 20, &text, &len);
	*out = text;
	sbuf_free(&cmd);
	free(outp);
	free(home);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int ctl(const char *args)
{
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "nsenter -t %d -m -p systemctl %s >/dev/null 2>&1", (int)sd_pid, args);
	int st = system(cmd.sb_buf);
	sbuf_free(&cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void write_prog(bool with_broken)
{
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p,
		    "module Bins { pname = \"bins\" version = \"1\" recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf '#!/bin/sh\\\\nexec sleep 1000\\\\n' > "
		    "$OUTPUT/bin/ok && printf '#!/bin/sh\\\\nexit 3\\\\n' > $OUTPUT/bin/bad && chmod +x $OUTPUT/bin/*\" } }\n"
		    "module S { backend = \"systemd\"\n"
		    "  services = [\n"
		    "    { name = \"good\" package = \"Bins\" binary = \"ok\" }\n"
		    "    { name = \"tick\" package = \"Bins\" binary = \"ok\" serviceConfig = { Type = \"oneshot\" }\n"
		    "      timer = { OnCalendar = \"daily\" } }\n"
		    "%s"
		    "  ]\n"
		    "  configFiles = [{ path = \"%s/live/app.conf\" content = \"x\\n\" }] }\n",
		    with_broken ? "    { name = \"broken\" package = \"Bins\" binary = \"bad\" serviceConfig = { Type = \"oneshot\" } }\n"
				: "",
		    dir);
	write_at("prog.pcl", p.sb_buf, 0644);
	sbuf_free(&p);
}

Test(activate, restarts_what_changed_reports_failures_stops_what_went, .init = boot, .fini = shutdown_,
     .timeout = 300)
{
	write_prog(true);
	char *prog = at("prog.pcl"), *out;
	struct sbuf args = SBUF_INIT;
	sbuf_printf(&args, "service deploy S --file %s --activate", prog);
	int st = punix_in(args.sb_buf, &out);
	cr_expect_eq(st, 1, "a unit that did not start makes it exit 1:\n%s", out);
	cr_expect(strstr(out, "deployed: stack S \u2192 gen-001 (") != NULL, "%s", out);
	cr_expect(strstr(out, "\u2713 (re)started good.service (not enabled for boot)\n") != NULL, "%s", out);
	cr_expect(strstr(out, "\u2713 (re)started tick.timer (not enabled for boot)\n") != NULL,
		  "a timer-activated service restarts its timer:\n%s", out);
	cr_expect(strstr(out, "\u26a0 broken.service did not (re)start: ") != NULL, "%s", out);
	cr_expect(strstr(out, "error: stack S is deployed (current \u2192 gen-001) but 1 unit(s) did not (re)start: "
			      "broken.service \u2014 investigate and re-activate; this was NOT rolled back\n") != NULL,
		  "%s", out);
	cr_expect_eq(ctl("is-active good.service"), 0, "good.service runs");
	cr_expect_eq(ctl("is-active tick.timer"), 0, "tick.timer is armed");
	cr_expect_neq(ctl("is-active tick.service"), 0, "the job itself did not run");
	free(out);

	/* the same again without broken: good is unchanged, broken stops, --enable enables */
	write_prog(false);
	sbuf_reset(&args);
	sbuf_printf(&args, "service deploy S --file %s --activate --enable", prog);
	st = punix_in(args.sb_buf, &out);
	cr_expect_eq(st, 0, "%s", out);
	cr_expect(strstr(out, "\u00b7 good.service unchanged, not restarted\n") != NULL, "%s", out);
	cr_expect(strstr(out, "\u2713 stopped broken.service (no longer in the stack)\n") != NULL, "%s", out);
	char *wants = at("units/multi-user.target.wants/good.service"), *twants = at("units/timers.target.wants/tick.timer");
	struct stat sb;
	cr_expect_eq(lstat(wants, &sb), 0, "enable created the wants link");
	cr_expect_eq(lstat(twants, &sb), 0, "and the timer's");
	free(out);

	/* a dry run ignores --activate */
	sbuf_reset(&args);
	sbuf_printf(&args, "service deploy S --file %s --dry-run --activate", prog);
	st = punix_in(args.sb_buf, &out);
	cr_expect_eq(st, 0, "%s", out);
	cr_expect(strstr(out, "activation skipped: the target is a rebased tree") != NULL, "%s", out);
	free(out);
	free(wants);
	free(twants);
	free(prog);
	sbuf_free(&args);
}

/* A service with a provision that appends a line to its StateDirectory; `fail` makes the provision exit 3. */
static void write_provision_prog(bool fail)
{
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p,
		    "module Bins { pname = \"bins\" version = \"1\" recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf '#!/bin/sh\\\\nexec sleep 1000\\\\n' > "
		    "$OUTPUT/bin/ok && printf '#!/bin/sh\\\\nexit 3\\\\n' > $OUTPUT/bin/bad && "
		    "printf '#!/bin/sh\\\\necho \\\"$1\\\" >> \\\"$STATE_DIRECTORY/marker\\\"\\\\n' > $OUTPUT/bin/mark && "
		    "chmod +x $OUTPUT/bin/*\" } }\n"
		    "module S { backend = \"systemd\"\n"
		    "  services = [{ name = \"db\" package = \"Bins\" binary = \"ok\"\n"
		    "    serviceConfig = { StateDirectory = \"pvtest\" }\n"
		    "    provision = { binary = \"%s\" args = [\"schema-1\"] } }] }\n",
		    fail ? "bad" : "mark");
	write_at("prov.pcl", p.sb_buf, 0644);
	sbuf_free(&p);
}

static char *marker(void)
{
	char *path = at("varlib/pvtest/marker"), *text = NULL;
	size_t len;
	if (ops_local()->read_file(ops_local(), path, 1 << 20, &text, &len) < 0)
		text = NULL;
	free(path);
	return text;
}

Test(activate, runs_a_provision_after_its_service_reports_its_failure_and_rollback_keeps_state, .init = boot,
     .fini = shutdown_, .timeout = 300)
{
	write_provision_prog(false);
	char *prog = at("prov.pcl"), *out, *m;
	struct sbuf args = SBUF_INIT;
	sbuf_printf(&args, "service deploy S --file %s --activate", prog);
	int st = punix_in(args.sb_buf, &out);
	cr_expect_eq(st, 0, "%s", out);
	cr_expect(strstr(out, "\u2713 (re)started db.service (not enabled for boot)\n\u2713 provisioned db\n") != NULL,
		  "the provision runs after its service:\n%s", out);
	cr_expect_eq(ctl("is-active db.service"), 0, "db.service runs");
	cr_expect_neq(ctl("is-active db-provision.service"), 0, "a provision does not remain active");
	m = marker();
	cr_expect_str_eq(m ? m : "(none)", "schema-1\n", "the provision wrote into the StateDirectory");
	free(m);
	free(out);

	/* nothing changed: neither the service nor its provision runs again */
	st = punix_in(args.sb_buf, &out);
	cr_expect_eq(st, 0, "%s", out);
	cr_expect(strstr(out, "\u00b7 db-provision.service unchanged (and db.service too), not run\n") != NULL, "%s", out);
	free(out);

	/* a provision that fails: reported like a unit that fails, exit 1, not rolled back */
	write_provision_prog(true);
	st = punix_in(args.sb_buf, &out);
	cr_expect_eq(st, 1, "%s", out);
	cr_expect(strstr(out, "\u26a0 db-provision.service failed: ") != NULL, "%s", out);
	cr_expect(strstr(out, "this was NOT rolled back") != NULL, "%s", out);
	cr_expect_eq(ctl("is-active db.service"), 0, "the service itself still runs");
	free(out);

	/* rollback flips code and config back to gen-002 and runs its provision again; the data stays */
	st = punix_in("service rollback S --activate", &out);
	cr_expect_eq(st, 0, "%s", out);
	cr_expect(strstr(out, "\u2713 provisioned db\n") != NULL, "%s", out);
	m = marker();
	cr_expect_str_eq(m ? m : "(none)", "schema-1\nschema-1\n", "rollback kept the state and added to it:\n%s", out);
	free(m);
	free(out);
	free(prog);
	sbuf_free(&args);
}
