/*
 * test_two_deployers.c - two deployers, each with its own home (journal,
 * store, locks), racing on one target: the stack's lock on the target lets
 * one op at a time through; the other exits 4 naming the holder. Never a
 * lost or duplicated generation: every deploy that says "deployed" made
 * its own generation, and the numbers are the successes, in order.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "tests/support/proc.h"

static struct tdir t;
static char *home[2], *target, *prog;

static void setup(void)
{
	tdir_make(&t);
	home[0] = tdir_at(&t, "deployer-a");
	home[1] = tdir_at(&t, "deployer-b");
	target = tdir_at(&t, "target");
	mkdir(target, 0755);
	tdir_write(&t, "p/prog.pcl",
		   "module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
		   "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf x > $OUTPUT/bin/app\" } }\n"
		   "module Web { backend = \"systemd\"\n"
		   "  services = [{ name = \"web\" package = \"App\" binary = \"app\" }]\n"
		   "  configFiles = [{ path = \"/etc/web.conf\" content = \"port = 80\\n\" }] }\n");
	prog = tdir_at(&t, "p/prog.pcl");
}

static void teardown(void)
{
	free(home[0]);
	free(home[1]);
	free(target);
	free(prog);
	tdir_free(&t);
}

/* Generations of stack Web on the target (both deployers use /srv/deploy as the deployments root). */
static int count_generations(void)
{
	struct sbuf d = SBUF_INIT;
	sbuf_printf(&d, "%s/srv/deploy/Web", target);
	DIR *dir = opendir(d.sb_buf);
	sbuf_free(&d);
	if (!dir)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(dir)))
		n += strncmp(e->d_name, "gen-", 4) == 0 && strstr(e->d_name, ".json") != NULL;
	closedir(dir);
	return n;
}

Test(race, two_deployers_on_one_target_never_lose_a_generation, .init = setup, .fini = teardown, .timeout = 300)
{
	int ok = 0, busy = 0;
	char *log[2] = {tdir_at(&t, "a.log"), tdir_at(&t, "b.log")};
	for (int round = 0; round < 8; round++) {
		pid_t pid[2];
		for (int k = 0; k < 2; k++) {
			const char *a[] = {"service", "deploy", "Web", "--file", prog, "--transport-root", target,
					   "--deployments-root", "/srv/deploy", NULL};
			pid[k] = punix_start(home[k], a, log[k]);
		}
		for (int k = 0; k < 2; k++) {
			int st = punix_wait(pid[k]);
			char *out = tdir_read(&t, k ? "b.log" : "a.log");
			cr_assert(st == 0 || st == 4, "round %d, deployer %d: exit %d: %s", round, k, st, out);
			if (st == 0) {
				cr_expect(strstr(out, "deployed: stack Web") != NULL, "%s", out);
				ok++;
			} else {
				cr_expect(strstr(out, "is busy on the target: held by pid ") != NULL, "%s", out);
				busy++;
			}
			free(out);
		}
		cr_assert_eq(count_generations(), ok, "round %d: %d deploys said deployed, %d generations exist", round,
			     ok, count_generations());
	}
	cr_log_info("%d deploys went through, %d were told the stack was busy", ok, busy);
	cr_expect_geq(ok, 8, "at least one deploy of each round went through");
	free(log[0]);
	free(log[1]);
}
