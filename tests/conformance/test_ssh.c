/*
 * test_ssh.c - deploys, rollbacks and pin checks over the SSH transport,
 * against a real sshd on 127.0.0.1 (key authentication only, SFTP, a
 * known_hosts file made for the test). The "remote" is this machine, so
 * every deploy is rebased under a directory of the test (--transport-root
 * applies on the remote side).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/ops.h"
#include "base/sbuf.h"
#include "tests/support/proc.h"

static struct tdir t;
static char *home, *remote, *kh, *key, url[64];
static pid_t sshd_pid;
static int port;

static int sh(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void setup(void)
{
	tdir_make(&t);
	chmod(t.path, 0755);
	home = tdir_at(&t, "home");
	remote = tdir_at(&t, "remote");
	mkdir(remote, 0755);
	kh = tdir_at(&t, "known_hosts");
	key = tdir_at(&t, "id_ecdsa");
	port = 20000 + (int)(getpid() % 20000);
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd,
		    "set -e; cd %s; mkdir -p /run/sshd; "
		    "ssh-keygen -q -t ecdsa -N '' -f hostkey; ssh-keygen -q -t ecdsa -N '' -f id_ecdsa; "
		    "cp id_ecdsa.pub authorized_keys; chmod 600 authorized_keys; "
		    "printf 'ListenAddress 127.0.0.1\\nPort %d\\nHostKey %s/hostkey\\nAuthorizedKeysFile %s/authorized_keys\\n"
		    "PasswordAuthentication no\\nKbdInteractiveAuthentication no\\nUsePAM no\\nStrictModes no\\n"
		    "PermitRootLogin prohibit-password\\nSubsystem sftp internal-sftp\\nPidFile %s/sshd.pid\\n"
		    "SetEnv PATH=%s/fakebin:/usr/local/bin:/usr/bin:/bin\\n' > sshd_config; mkdir -p fakebin; "
		    "/usr/sbin/sshd -t -f sshd_config; "
		    "echo \"[127.0.0.1]:%d $(cut -d' ' -f1,2 hostkey.pub)\" > known_hosts",
		    t.path, port, t.path, t.path, t.path, t.path, port);
	cr_assert_eq(sh(cmd.sb_buf), 0, "preparing sshd");
	sbuf_free(&cmd);
	char *cfg = tdir_at(&t, "sshd_config"), *log = tdir_at(&t, "sshd.log");
	sshd_pid = fork();
	if (sshd_pid == 0) {
		/* keep no descriptor of the test runner's open */
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(fd, 2);
		execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", cfg, (char *)NULL);
		_exit(127);
	}
	/* ready when it accepts a connection */
	bool up = false;
	for (int i = 0; i < 100 && !up; i++) {
		int sfd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {0};
		a.sin_family = AF_INET;
		a.sin_port = htons((uint16_t)port);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		up = connect(sfd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(sfd);
		if (!up)
			usleep(50 * 1000);
	}
	if (!up) {
		kill(sshd_pid, SIGKILL);
		waitpid(sshd_pid, NULL, 0);
		sshd_pid = 0;
	}
	cr_assert(up, "sshd did not start (see %s)", log);
	snprintf(url, sizeof(url), "ssh://root@127.0.0.1:%d", port);
	free(cfg);
	free(log);
}

static void teardown(void)
{
	if (sshd_pid > 0) {
		kill(sshd_pid, SIGTERM);
		waitpid(sshd_pid, NULL, 0);
	}
	free(home);
	free(remote);
	free(kh);
	free(key);
	tdir_free(&t);
}

static struct proc_result over_ssh(const char *sub, const char *stack, const char *file, const char *known)
{
	const char *a[16];
	int n = 0;
	a[n++] = "service";
	a[n++] = sub;
	a[n++] = "Web";
	if (file) {
		a[n++] = "--file";
		a[n++] = file;
	}
	a[n++] = "--target";
	a[n++] = url;
	a[n++] = "--known-hosts";
	a[n++] = known;
	a[n++] = "--key";
	a[n++] = key;
	a[n++] = "--transport-root";
	a[n++] = remote;
	a[n] = NULL;
	(void)stack;
	return punix_run(home, a);
}

/* Version v of the program: package App and stack Web. */
static char *prog_for(int v)
{
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p,
		    "module App { pname = \"app\" version = \"%d\" recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && echo v%d > $OUTPUT/bin/app && chmod +x "
		    "$OUTPUT/bin/app\" } }\n"
		    "module Web { backend = \"systemd\" storeModules = [\"App\"]\n"
		    "  services = [{ name = \"app\" package = \"App\" binary = \"app\" }]\n"
		    "  configFiles = [{ path = \"/etc/app.conf\" content = \"v = %d\\n\" }] }\n",
		    v, v, v);
	char rel[32];
	snprintf(rel, sizeof(rel), "v%d/prog.pcl", v);
	tdir_write(&t, rel, p.sb_buf);
	sbuf_free(&p);
	return tdir_at(&t, rel);
}

static char *remote_file(const char *path)
{
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p, "%s%s", remote, path);
	char *buf = NULL;
	size_t len;
	if (ops_local()->read_file(ops_local(), p.sb_buf, 1 << 20, &buf, &len) < 0)
		buf = NULL;
	sbuf_free(&p);
	return buf;
}

Test(ssh, deploy_and_rollback_over_ssh, .init = setup, .fini = teardown, .timeout = 120)
{
	char *p1 = prog_for(1), *p2 = prog_for(2);
	struct proc_result r = over_ssh("deploy", "Web", p1, kh);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "deployed: stack Web \u2192 gen-001 (2 config file(s), 1 store path(s) pinned)\n") != NULL,
		  "%s", r.out);
	proc_result_free(&r);
	char *conf = remote_file("/etc/app.conf");
	cr_expect_str_eq(conf, "v = 1\n", "the live file landed on the remote, under its transport root");
	free(conf);
	r = over_ssh("deploy", "Web", p2, kh);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	r = over_ssh("rollback", "Web", NULL, kh);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	/* no punix on the target's PATH here: auto mode falls back to agentless, and says so */
	cr_expect_str_eq(r.out, "rolled back: stack Web \u2192 gen-001 (was gen-002)\nmode: agentless\n");
	proc_result_free(&r);
	conf = remote_file("/etc/app.conf");
	cr_expect_str_eq(conf, "v = 1\n", "rollback restored the config file over SSH");
	free(conf);
	r = over_ssh("verify", "Web", NULL, kh);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);

	/* pins are checked on the remote: delete gen-002's store path there */
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "chmod -R u+w %s%s/store/*-app-2 && rm -rf %s%s/store/*-app-2", remote, home, remote, home);
	cr_assert_eq(sh(cmd.sb_buf), 0);
	const char *sc[] = {"service", "set-current", "Web", "2", "--target", url, "--known-hosts", kh, "--key", key,
			    "--transport-root", remote, NULL};
	r = punix_run(home, sc);
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "[E12] stack 'Web' gen-002: pinned store path missing:") != NULL, "%s", r.err);
	proc_result_free(&r);
	sbuf_free(&cmd);
	free(p1);
	free(p2);
}

Test(ssh, an_unknown_or_changed_host_key_is_refused, .init = setup, .fini = teardown, .timeout = 60)
{
	char *p1 = prog_for(1);
	tdir_write(&t, "empty_known_hosts", "");
	char *empty = tdir_at(&t, "empty_known_hosts");
	struct proc_result r = over_ssh("deploy", "Web", p1, empty);
	cr_expect_eq(r.status, 3);
	cr_expect(strstr(r.err, "is not in") && strstr(r.err, "never trusted on first use"), "%s", r.err);
	proc_result_free(&r);
	/* a known_hosts entry with another key */
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "cd %s && ssh-keygen -q -t ecdsa -N '' -f otherkey && echo \"[127.0.0.1]:%d $(cut -d' ' -f1,2 "
			  "otherkey.pub)\" > wrong_known_hosts",
		    t.path, port);
	cr_assert_eq(sh(cmd.sb_buf), 0);
	char *wrong = tdir_at(&t, "wrong_known_hosts");
	r = over_ssh("deploy", "Web", p1, wrong);
	cr_expect_eq(r.status, 3);
	cr_expect(strstr(r.err, "does NOT match") != NULL, "%s", r.err);
	proc_result_free(&r);
	struct stat st;
	char *etc = tdir_at(&t, "remote/etc");
	cr_expect_neq(stat(etc, &st), 0, "nothing reached the remote");
	free(etc);
	free(wrong);
	free(empty);
	sbuf_free(&cmd);
	free(p1);
}

Test(ssh, an_unreachable_host_is_a_clean_failure, .init = setup, .fini = teardown, .timeout = 60)
{
	char *p1 = prog_for(1);
	snprintf(url, sizeof(url), "ssh://root@127.0.0.1:%d", port == 65000 ? 65001 : 65000);
	struct proc_result r = over_ssh("deploy", "Web", p1, kh);
	cr_expect_eq(r.status, 3);
	cr_expect(strstr(r.err, "cannot connect to 127.0.0.1 port") != NULL, "%s", r.err);
	proc_result_free(&r);
	free(p1);
}

/* punix over SSH with only the target given: what OpenSSH would use is used. */
static struct proc_result bare_deploy(const char *file)
{
	const char *a[] = {"service", "deploy", "Web", "--file", file, "--target", url, "--transport-root", remote, NULL};
	return punix_run(home, a);
}

/* A home whose ~/.ssh holds known_hosts and, with keys, the test's key as id_ecdsa. */
static char *ssh_home(bool keys)
{
	char *h = tdir_at(&t, keys ? "home-keys" : "home-nokeys");
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "set -e; mkdir -p %s/.ssh; cp %s %s/.ssh/known_hosts", h, kh, h);
	if (keys)
		sbuf_printf(&cmd, "; cp %s %s/.ssh/id_ecdsa; cp %s.pub %s/.ssh/id_ecdsa.pub", key, h, key, h);
	cr_assert_eq(sh(cmd.sb_buf), 0);
	sbuf_free(&cmd);
	return h;
}

Test(ssh, without_key_or_known_hosts_the_home_ssh_directory_is_used, .init = setup, .fini = teardown,
     .timeout = 120)
{
	char *p1 = prog_for(1);
	char *h = ssh_home(true);
	setenv("HOME", h, 1);
	unsetenv("SSH_AUTH_SOCK");
	struct proc_result r = bare_deploy(p1);
	cr_expect_eq(r.status, 0, "~/.ssh/id_ecdsa and ~/.ssh/known_hosts: %s%s", r.out, r.err);
	proc_result_free(&r);
	/* no key at all: the error names the user, host and port, and says what to give */
	char *bare = ssh_home(false);
	setenv("HOME", bare, 1);
	r = bare_deploy(p1);
	cr_expect_eq(r.status, 3);
	char want[128];
	snprintf(want, sizeof(want), "key authentication as root@127.0.0.1:%d failed", port);
	cr_expect(strstr(r.err, want) && strstr(r.err, "--key"), "%s", r.err);
	proc_result_free(&r);
	/* no known_hosts: refused, naming the file it looked for */
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "rm %s/.ssh/known_hosts", bare);
	cr_assert_eq(sh(cmd.sb_buf), 0);
	r = bare_deploy(p1);
	cr_expect_eq(r.status, 3);
	cr_expect(strstr(r.err, "known_hosts") && strstr(r.err, bare), "%s", r.err);
	proc_result_free(&r);
	sbuf_free(&cmd);
	free(bare);
	free(h);
	free(p1);
}

Test(ssh, the_ssh_agent_logs_in_when_no_key_is_given, .init = setup, .fini = teardown, .timeout = 120)
{
	char *p1 = prog_for(1);
	char *h = ssh_home(false), *sock = tdir_at(&t, "agent.sock"), *pidf = tdir_at(&t, "agent.pid");
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd,
		    "set -e; eval \"$(ssh-agent -a %s -s)\" >/dev/null; echo $SSH_AGENT_PID > %s; "
		    "SSH_AUTH_SOCK=%s ssh-add -q %s 2>/dev/null",
		    sock, pidf, sock, key);
	cr_assert_eq(sh(cmd.sb_buf), 0, "starting ssh-agent");
	setenv("HOME", h, 1);
	setenv("SSH_AUTH_SOCK", sock, 1);
	struct proc_result r = bare_deploy(p1);
	cr_expect_eq(r.status, 0, "the agent's key: %s%s", r.out, r.err);
	proc_result_free(&r);
	unsetenv("SSH_AUTH_SOCK");
	sbuf_reset(&cmd);
	sbuf_printf(&cmd, "kill $(cat %s)", pidf);
	sh(cmd.sb_buf);
	sbuf_free(&cmd);
	free(sock);
	free(pidf);
	free(h);
	free(p1);
}

Test(ssh, a_target_of_another_architecture_is_refused_before_anything_is_pushed, .init = setup, .fini = teardown,
     .timeout = 120)
{
	char *p1 = prog_for(1);
	/* the host says it is a riscv64 (its sessions find this uname first) */
	tdir_write(&t, "fakebin/uname", "#!/bin/sh\necho riscv64\n");
	char *fake = tdir_at(&t, "fakebin/uname");
	chmod(fake, 0755);
	struct proc_result r = over_ssh("deploy", "Web", p1, kh);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "[E14]") && strstr(r.err, "riscv64-linux") && strstr(r.err, "uname -m: riscv64"), "%s",
		  r.err);
	proc_result_free(&r);
	struct stat st;
	char *store = tdir_at(&t, "remote/etc");
	cr_expect_neq(stat(store, &st), 0, "nothing reached the remote");
	free(store);
	free(fake);
	free(p1);
}

/* Two deployers with homes of their own racing over SSH on one target: the target's lock decides. */
Test(ssh, two_deployers_over_ssh_never_lose_a_generation, .init = setup, .fini = teardown, .timeout = 240)
{
	char *p1 = prog_for(1);
	char *homes[2] = {tdir_at(&t, "deployer-a"), tdir_at(&t, "deployer-b")};
	char *logs[2] = {tdir_at(&t, "a.log"), tdir_at(&t, "b.log")};
	int ok = 0;
	for (int round = 0; round < 4; round++) {
		pid_t pid[2];
		for (int k = 0; k < 2; k++) {
			const char *a[] = {"service", "deploy", "Web", "--file", p1, "--target", url, "--known-hosts", kh,
					   "--key", key, "--transport-root", remote, "--deployments-root", "/srv/deploy", NULL};
			pid[k] = punix_start(homes[k], a, logs[k]);
		}
		for (int k = 0; k < 2; k++) {
			int st = punix_wait(pid[k]);
			char *out = tdir_read(&t, k ? "b.log" : "a.log");
			cr_assert(st == 0 || st == 4, "round %d, deployer %d: exit %d: %s", round, k, st, out);
			if (st == 4)
				cr_expect(strstr(out, "is busy on the target: held by pid ") != NULL, "%s", out);
			ok += st == 0;
			free(out);
		}
	}
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "test $(ls %s/srv/deploy/Web | grep -c '^gen-.*json$') -eq %d", remote, ok);
	cr_expect_eq(sh(cmd.sb_buf), 0, "%d deploys said deployed; the generations on the target must be as many", ok);
	sbuf_free(&cmd);
	for (int k = 0; k < 2; k++) {
		free(homes[k]);
		free(logs[k]);
	}
	free(p1);
}

/* ~/.ssh/config, as ssh reads it: an alias whose HostName, Port, User and IdentityFile come from an Include. */
Test(ssh, a_host_alias_of_ssh_config_is_followed, .init = setup, .fini = teardown, .timeout = 120)
{
	char *p1 = prog_for(1);
	char *h = ssh_home(false);
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd,
		    "set -e; mkdir -p %s/.ssh/config.d; cp %s %s/.ssh/deploy_key; cp %s.pub %s/.ssh/deploy_key.pub; "
		    "printf 'Include config.d/*.conf\\nHost *.example\\n  User nobody-here\\n' > %s/.ssh/config; "
		    "printf 'Host mytarget\\n  HostName 127.0.0.1\\n  Port %d\\n  User root\\n"
		    "  IdentityFile ~/.ssh/deploy_key\\n' > %s/.ssh/config.d/10-target.conf",
		    h, key, h, key, h, h, port, h);
	cr_assert_eq(sh(cmd.sb_buf), 0);
	setenv("HOME", h, 1);
	unsetenv("SSH_AUTH_SOCK");
	/* known_hosts is ~/.ssh/known_hosts, and its entry is for the HostName and Port */
	const char *a[] = {"service", "deploy", "Web", "--file", p1, "--target", "ssh://mytarget", "--transport-root",
			   remote, NULL};
	struct proc_result r = punix_run(home, a);
	cr_expect_eq(r.status, 0, "ssh://mytarget through ~/.ssh/config: %s%s", r.out, r.err);
	proc_result_free(&r);
	/* a config ssh itself would refuse is refused, naming the file and line */
	sbuf_reset(&cmd);
	sbuf_printf(&cmd, "printf 'Host mytarget\\n  Port 99999\\n' > %s/.ssh/config.d/05-bad.conf", h);
	cr_assert_eq(sh(cmd.sb_buf), 0);
	r = punix_run(home, a);
	cr_expect_eq(r.status, 3);
	cr_expect(strstr(r.err, "05-bad.conf:2") != NULL, "%s", r.err);
	proc_result_free(&r);
	sbuf_free(&cmd);
	free(h);
	free(p1);
}

/* A lock file on the target planted as a symlink is never opened through: the file it names stays as it was. */
Test(ssh, a_symlinked_lock_file_on_the_target_is_refused, .init = setup, .fini = teardown, .timeout = 120)
{
	char *p1 = prog_for(1);
	tdir_write(&t, "precious", "keep me\n");
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "mkdir -p %s/srv/deploy/.locks && ln -s %s/precious %s/srv/deploy/.locks/Web.lock", remote,
		    t.path, remote);
	cr_assert_eq(sh(cmd.sb_buf), 0);
	const char *a[] = {"service", "deploy", "Web", "--file", p1, "--target", url, "--known-hosts", kh, "--key", key,
			   "--transport-root", remote, "--deployments-root", "/srv/deploy", NULL};
	struct proc_result r = punix_run(home, a);
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "cannot lock stack 'Web' on the target") != NULL, "%s", r.err);
	proc_result_free(&r);
	char *keep = tdir_read(&t, "precious");
	cr_expect_str_eq(keep, "keep me\n", "the file the symlink names is untouched");
	free(keep);
	sbuf_free(&cmd);
	free(p1);
}
