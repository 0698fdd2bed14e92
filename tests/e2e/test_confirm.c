/*
 * test_confirm.c - confirm-or-revert on this machine (docs/deploy.md,
 * "Confirm or revert"): with --confirm-timeout and --health, a deploy,
 * rollback or set-current whose health check passes stays; one whose check
 * never passes is flipped back by punix itself ([E18], exit 1, the op
 * aborted, the files of the generation before live again); a punix killed
 * while it waits is flipped back by `punix recover`. Host mode's
 * confirmation over a new connection is tested with real sshd in
 * tests/conformance/test_host_mode.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "tests/support/proc.h"

static struct tdir t;
static char *home, *target, *p1, *p2, *p3;

static void setup(void)
{
	tdir_make(&t);
	home = tdir_at(&t, "home");
	target = tdir_at(&t, "target");
	mkdir(target, 0755);
	for (int v = 1; v <= 3; v++) {
		char rel[32], text[256];
		snprintf(rel, sizeof(rel), "p/v%d.pcl", v);
		snprintf(text, sizeof(text),
			 "module Web { backend = \"systemd\"\n"
			 "  configFiles = [{ path = \"/etc/web.conf\" content = \"v%d\\n\" }] }\n",
			 v);
		tdir_write(&t, rel, text);
	}
	p1 = tdir_at(&t, "p/v1.pcl");
	p2 = tdir_at(&t, "p/v2.pcl");
	p3 = tdir_at(&t, "p/v3.pcl");
}

static void teardown(void)
{
	free(home);
	free(target);
	free(p1);
	free(p2);
	free(p3);
	tdir_free(&t);
}

TestSuite(confirm, .init = setup, .fini = teardown, .timeout = 120);

/* `punix service deploy Web --file f --transport-root T [--confirm-timeout s] [--health h]` */
static struct proc_result deploy(const char *f, const char *secs, const char *health)
{
	const char *a[16] = {"service", "deploy", "Web", "--file", f, "--transport-root", target};
	int n = 7;
	if (secs) {
		a[n++] = "--confirm-timeout";
		a[n++] = secs;
	}
	if (health) {
		a[n++] = "--health";
		a[n++] = health;
	}
	a[n] = NULL;
	return punix_run(home, a);
}

static char *live(void)
{
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p, "%s/etc/web.conf", target);
	FILE *f = fopen(p.sb_buf, "r");
	sbuf_free(&p);
	static char buf[64];
	buf[0] = '\0';
	if (f) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
	}
	return buf;
}

static char *journal(void)
{
	const char *a[] = {"journal", "show", NULL};
	struct proc_result r = punix_run(home, a);
	char *out = r.out;
	r.out = NULL;
	proc_result_free(&r);
	return out;
}

Test(confirm, a_healthy_deploy_stays_and_an_unhealthy_one_is_flipped_back)
{
	struct proc_result r = deploy(p1, NULL, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);

	char *mark = tdir_at(&t, "healthy");
	char *check = NULL;
	struct sbuf c = SBUF_INIT;
	sbuf_printf(&c, "test -f %s", mark);
	check = sbuf_detach(&c, NULL);
	FILE *f = fopen(mark, "w");
	cr_assert(f);
	fclose(f);
	r = deploy(p2, "5", check);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "deployed: stack Web \u2192 gen-002") && strstr(r.out, "confirmed: stack Web stays at gen-002"),
		  "%s", r.out);
	cr_expect_str_eq(live(), "v2\n");
	proc_result_free(&r);

	/* the check fails from now on: gen-003 goes live, then back to gen-002 */
	unlink(mark);
	r = deploy(p3, "2", check);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "error: [E18] stack Web: gen-003 was not kept: reverted to gen-002: the health check") &&
			  strstr(r.err, "failed (exit 1"),
		  "%s", r.err);
	cr_expect_str_eq(live(), "v2\n", "the files of gen-002 are live again");
	proc_result_free(&r);
	char *j = journal();
	cr_expect(strstr(j, "3\taborted\tdeploy\tWeb\t") != NULL, "the reverted op ends aborted: %s", j);
	free(j);
	const char *st[] = {"service", "status", "Web", "--transport-root", target, NULL};
	r = punix_run(home, st);
	cr_expect(strstr(r.out, "current gen-002") != NULL, "%s", r.out);
	proc_result_free(&r);

	/* rollback with a check that passes: confirmed, and the same line */
	f = fopen(mark, "w");
	fclose(f);
	const char *rb[] = {"service", "rollback", "Web", "--transport-root", target, "--confirm-timeout", "5",
			    "--health", check, "--json", NULL};
	r = punix_run(home, rb);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "\"confirmed\": true") || strstr(r.out, "\"confirmed\":true"), "%s", r.out);
	cr_expect_str_eq(live(), "v1\n");
	proc_result_free(&r);
	free(check);
	free(mark);
}

Test(confirm, a_punix_killed_while_it_waits_is_flipped_back_by_recover)
{
	struct proc_result r = deploy(p1, NULL, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	setenv("PUNIX_CRASH_AT", "deploy:confirm:waiting", 1);
	r = deploy(p2, "30", "true");
	unsetenv("PUNIX_CRASH_AT");
	cr_assert_eq(r.status, 128 + 9, "killed while it waits: %s%s", r.out, r.err);
	proc_result_free(&r);
	cr_expect_str_eq(live(), "v2\n", "gen-002 went live before the wait");
	const char *rc[] = {"recover", NULL};
	r = punix_run(home, rc);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "op 2 (deploy Web): reverted to gen-001: its punix stopped before the op was found healthy"),
		  "%s", r.out);
	proc_result_free(&r);
	cr_expect_str_eq(live(), "v1\n", "the files of gen-001 are live again");
	char *j = journal();
	cr_expect(strstr(j, "2\taborted\tdeploy\tWeb\t") != NULL, "%s", j);
	free(j);
	/* and a crash as it flips back: recover finishes the flip back */
	setenv("PUNIX_CRASH_AT", "deploy:confirm:reverting", 1);
	r = deploy(p3, "1", "false");
	unsetenv("PUNIX_CRASH_AT");
	cr_assert_eq(r.status, 128 + 9, "%s%s", r.out, r.err);
	proc_result_free(&r);
	r = punix_run(home, rc);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "op 3 (deploy Web): reverted to gen-001: the health check `false` failed"), "%s", r.out);
	proc_result_free(&r);
	cr_expect_str_eq(live(), "v1\n");
}

Test(confirm, what_cannot_be_confirmed_is_refused)
{
	/* nothing to go back to */
	struct proc_result r = deploy(p1, "2", "true");
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "[E18] --confirm-timeout: stack 'Web' has no live generation to go back to"), "%s", r.err);
	proc_result_free(&r);
	r = deploy(p1, NULL, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	/* a confirmation nobody waits for */
	const char *cf[] = {"service", "confirm", "Web", "0123456789abcdef", "--transport-root", target, "--wait", "1", NULL};
	r = punix_run(home, cf);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "[E18] stack Web: no op there waits for this confirmation"), "%s", r.err);
	proc_result_free(&r);
	/* usage */
	const char *u1[] = {"service", "status", "Web", "--confirm-timeout", "3", NULL};
	r = punix_run(home, u1);
	cr_expect_eq(r.status, 2, "%s", r.err);
	proc_result_free(&r);
	const char *u2[] = {"service", "rollback", "Web", "--health", "true", NULL};
	r = punix_run(home, u2);
	cr_expect_eq(r.status, 2, "%s", r.err);
	cr_expect(strstr(r.err, "--health and --confirm-token go with --confirm-timeout SECS"), "%s", r.err);
	proc_result_free(&r);
	const char *u3[] = {"service", "rollback", "Web", "--confirm-timeout", "0", NULL};
	r = punix_run(home, u3);
	cr_expect_eq(r.status, 2, "%s", r.err);
	proc_result_free(&r);
}

/* The decision file's state word and token (for the tests below). */
static bool decision(char *state, size_t n)
{
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p, "%s%s/deployments/.locks/Web.confirm", target, home);
	FILE *f = fopen(p.sb_buf, "r");
	sbuf_free(&p);
	char line[512] = "";
	bool ok = f && fgets(line, sizeof(line), f);
	if (f)
		fclose(f);
	char tok[96], st[32];
	ok = ok && sscanf(line, "punix-confirm 1\t%95[^\t]\t%31[^\t]\t", tok, st) == 2;
	if (ok)
		snprintf(state, n, "%s", st);
	return ok;
}

static void wait_for_state(const char *want)
{
	char st[32] = "";
	for (int i = 0; i < 200 && !(decision(st, sizeof(st)) && !strcmp(st, want)); i++)
		usleep(50 * 1000);
	cr_assert_str_eq(st, want, "the decision file says %s", st);
}

/*
 * A confirmation is an ack: the waiting op alone decides, and only with
 * its health check passed. Killed after an ack but before the check
 * passed, the op is flipped back by recover; a confirmation after the
 * deadline is refused even when nobody waits any more.
 */
Test(confirm, an_ack_without_a_passed_health_check_is_not_kept)
{
	struct proc_result r = deploy(p1, NULL, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	const char *a[] = {"service", "deploy", "Web", "--file", p2, "--transport-root", target, "--confirm-timeout", "60",
			   "--confirm-token", "tok1", "--health", "false", NULL};
	char *log = tdir_at(&t, "deploy.log");
	pid_t pid = punix_start(home, a, log);
	wait_for_state("waiting");
	const char *cf[] = {"service", "confirm", "Web", "tok1", "--transport-root", target, NULL};
	r = punix_run(home, cf);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "stack Web: confirmed\n") != NULL, "%s", r.out);
	proc_result_free(&r);
	wait_for_state("acked");
	kill(pid, SIGKILL);
	punix_wait(pid);
	cr_expect_str_eq(live(), "v2\n", "gen-002 went live before the wait");
	const char *rc[] = {"recover", NULL};
	r = punix_run(home, rc);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "op 2 (deploy Web): reverted to gen-001: its punix stopped before the op was confirmed"),
		  "%s", r.out);
	proc_result_free(&r);
	cr_expect_str_eq(live(), "v1\n", "not kept: its health check never passed");

	/* the waiter dead, its deadline past: a confirmation is too late, and recover flips back */
	setenv("PUNIX_CRASH_AT", "deploy:confirm:waiting", 1);
	const char *b[] = {"service", "deploy", "Web", "--file", p3, "--transport-root", target, "--confirm-timeout", "1",
			   "--confirm-token", "tok2", NULL};
	r = punix_run(home, b);
	unsetenv("PUNIX_CRASH_AT");
	cr_assert_eq(r.status, 128 + 9, "%s%s", r.out, r.err);
	proc_result_free(&r);
	sleep(2);
	const char *late[] = {"service", "confirm", "Web", "tok2", "--transport-root", target, NULL};
	r = punix_run(home, late);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "[E18] stack Web: too late: its deadline passed") != NULL, "%s", r.err);
	proc_result_free(&r);
	r = punix_run(home, rc);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "reverted to gen-001") != NULL, "%s", r.out);
	proc_result_free(&r);
	cr_expect_str_eq(live(), "v1\n");
	free(log);
}

/*
 * Killed after its flip but before its files were made live, an op that
 * waited for a confirmation nobody gave is flipped back by recover
 * without first making its own generation's files live (nor restarting
 * its services): its materialise step never completes.
 */
Test(confirm, recover_does_not_make_a_rejected_generation_live_first)
{
	struct proc_result r = deploy(p1, NULL, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	setenv("PUNIX_CRASH_AT", "deploy:materialise:before", 1);
	r = deploy(p2, "30", "true");
	unsetenv("PUNIX_CRASH_AT");
	cr_assert_eq(r.status, 128 + 9, "%s%s", r.out, r.err);
	proc_result_free(&r);
	cr_expect_str_eq(live(), "v1\n", "flipped, not yet materialised");
	const char *rc[] = {"recover", NULL};
	r = punix_run(home, rc);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "op 2 (deploy Web): reverted to gen-001") != NULL, "%s", r.out);
	proc_result_free(&r);
	cr_expect_str_eq(live(), "v1\n");
	const char *js[] = {"journal", "show", "2", NULL};
	r = punix_run(home, js);
	cr_expect(strstr(r.out, "materialise  done") == NULL && strstr(r.out, "confirm      undone") != NULL,
		  "gen-002's files were never made live: %s", r.out);
	proc_result_free(&r);
}

/*
 * Links planted where the decision file and its lock go never lead
 * outside: the file is replaced beside the link, never written through
 * it; a lock that cannot be taken (a link) decides nothing, so the op is
 * flipped back at once rather than left past its flip. The files the
 * links name are untouched.
 */
Test(confirm, links_in_place_of_the_decision_file_lead_nowhere)
{
	struct proc_result r = deploy(p1, NULL, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	tdir_write(&t, "outside/victim", "keep\n");
	tdir_write(&t, "outside/victim2", "keep\n");
	char *victim = tdir_at(&t, "outside/victim"), *victim2 = tdir_at(&t, "outside/victim2");
	struct sbuf locks = SBUF_INIT, f = SBUF_INIT, l = SBUF_INIT;
	sbuf_printf(&locks, "%s%s/deployments/.locks", target, home);
	sbuf_printf(&f, "%s/Web.confirm", locks.sb_buf);
	sbuf_printf(&l, "%s/Web.confirm.lock", locks.sb_buf);
	unlink(f.sb_buf);
	cr_assert_eq(symlink(victim, f.sb_buf), 0);
	r = deploy(p2, "5", "true");
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	cr_expect_str_eq(live(), "v2\n");
	struct stat st;
	cr_expect(lstat(f.sb_buf, &st) == 0 && S_ISREG(st.st_mode), "the link was replaced, not followed");

	unlink(l.sb_buf);
	cr_assert_eq(symlink(victim2, l.sb_buf), 0);
	r = deploy(p3, "5", "true");
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "[E18] stack Web: gen-003 was not kept: reverted to gen-002: its decision file") != NULL,
		  "%s", r.err);
	proc_result_free(&r);
	cr_expect_str_eq(live(), "v2\n");
	const char *js[] = {"journal", "show", NULL};
	r = punix_run(home, js);
	cr_expect(strstr(r.out, "\trunning\t") == NULL, "nothing left running: %s", r.out);
	proc_result_free(&r);
	char *a = tdir_read(&t, "outside/victim"), *b = tdir_read(&t, "outside/victim2");
	cr_expect_str_eq(a, "keep\n");
	cr_expect_str_eq(b, "keep\n");
	free(a);
	free(b);
	free(victim);
	free(victim2);
	sbuf_free(&locks);
	sbuf_free(&f);
	sbuf_free(&l);
}
