/*
 * bench_ssh.c - the SSH transport against the same deploy rebased locally.
 * Not a test: it prints numbers.
 *
 *   bench_ssh PUNIX [--quick]
 *
 * As root, starts two private sshd on free loopback ports (own host key,
 * user key, authorized_keys, known_hosts, as tests/conformance/test_ssh.c)
 * and measures first deploys (fresh home and target) and no-op redeploys
 * of 10 services sharing a package, 10 with a package each and 100
 * sharing one, and a rollback: over SSH (--target ... --transport-root R),
 * in host mode (the target's punix runs the op; --remote-punix names this
 * punix) and in agentless mode, against the same op rebased locally
 * (--transport-root R2), the anchor; and a first deploy that bootstraps
 * the static punix into the target's store.
 * Then what each op asks of the server: connections, exec channels by
 * command, SFTP requests by type, and how often the client waited.
 *
 * The timing server is plain (default log level, internal-sftp). The
 * counting server is never timed: it logs at DEBUG3, runs an external
 * sftp-server that logs each request, and records each command it runs
 * (ForceCommand, a wrapper). As in bench.c every time is of a whole punix
 * process (start-up, handshake and authentication included), a median,
 * SSH and local alternated so that the machine's noise falls on both.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

static const char *punix;
static char scratch[64];
static char key[128], kh[128], sftp_log[128], exec_log[128];
static const char *sftp_server;
static bool have_strace;

/* The goals: SSH / local. */
#define GOAL_NOOP 2.0
#define GOAL_FIRST 3.0

struct server {
	const char *name;
	int port;
	pid_t pid;
	char url[64], cfg[128], log[128];
};
static struct server timing = {.name = "timing"}, counting = {.name = "counting"};
static pid_t owner; /* only the harness itself stops the servers, never a forked child */

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_ssh: %s: %s\n", what, msg);
	exit(1);
}

/* ---- the private sshd ----------------------------------------------------------------------- */

/* Whatever way the harness ends (exit on a failed run, a signal), no sshd is left behind. */
static void stop_servers(void)
{
	struct server *all[] = {&timing, &counting};
	for (int i = 0; i < 2 && getpid() == owner; i++)
		if (all[i]->pid > 0) {
			kill(all[i]->pid, SIGTERM);
			waitpid(all[i]->pid, NULL, 0);
			all[i]->pid = 0;
		}
}

static void on_signal(int sig)
{
	/* kill(2) only: stop_servers' waitpid is fine too, both are async-signal-safe */
	stop_servers();
	_exit(128 + sig);
}

/* Ports nobody listens on: bound to port 0, the kernel picks; both held until both are picked. */
static void free_ports(struct server **s, int n)
{
	int fd[2];
	for (int i = 0; i < n; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(sa);
		fd[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fd[i] < 0 || bind(fd[i], (struct sockaddr *)&sa, len) < 0 ||
		    getsockname(fd[i], (struct sockaddr *)&sa, &len) < 0)
			die("free port", "cannot bind on 127.0.0.1");
		s[i]->port = ntohs(sa.sin_port);
	}
	for (int i = 0; i < n; i++)
		close(fd[i]);
}

static bool accepts(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool up = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return up;
}

/*
 * Both servers share the host key, the user key and authorized_keys.
 * SetEnv SHLVL=1: Debian's bash sources ~/.bashrc for every command sshd
 * runs (it sees SSH_CLIENT) unless it is a nested shell, and root's
 * .bashrc on this machine runs pyenv's init, a dozen processes per exec
 * channel: that is this machine's setup, not punix's cost, and a server
 * with a plain root account does not pay it.
 */
static void write_config(struct server *s, bool count)
{
	snprintf(s->cfg, sizeof(s->cfg), "%s/sshd-%s.conf", scratch, s->name);
	snprintf(s->log, sizeof(s->log), "%s/sshd-%s.log", scratch, s->name);
	snprintf(s->url, sizeof(s->url), "ssh://root@127.0.0.1:%d", s->port);
	FILE *f = create(s->cfg);
	fprintf(f,
		"ListenAddress 127.0.0.1\nPort %d\nHostKey %s/hostkey\nAuthorizedKeysFile %s/authorized_keys\n"
		"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
		"PermitRootLogin prohibit-password\nPidFile %s/sshd-%s.pid\nSetEnv SHLVL=1\n",
		s->port, scratch, scratch, scratch, s->name);
	if (count)
		/*
		 * internal-sftp would log to syslog (there is none here): an
		 * external sftp-server logs each request on its stderr; and the
		 * wrapper records each command, the subsystem's included.
		 */
		fprintf(f, "LogLevel DEBUG3\nSubsystem sftp %s -e -l DEBUG3 2>>%s\nForceCommand %s/logcmd\n",
			sftp_server, sftp_log, scratch);
	else
		fprintf(f, "Subsystem sftp internal-sftp\n");
	fclose(f);
	shellf("/usr/sbin/sshd -t -f %s", s->cfg);
}

static void start_server(struct server *s)
{
	s->pid = fork();
	if (s->pid == 0) {
		/* if the harness is killed outright, the server goes with it */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(fd, 2);
		execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", s->cfg, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			break;
		}
		if (accepts(s->port))
			return;
		usleep(50 * 1000);
	}
	fprintf(stderr, "bench_ssh: the %s sshd did not start; its log:\n", s->name);
	shellf("cat %s >&2", s->log);
	exit(1);
}

static void start_servers(void)
{
	const char *where[] = {"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
			       "/usr/libexec/sftp-server"};
	for (int i = 0; i < 3 && !sftp_server; i++)
		sftp_server = access(where[i], X_OK) == 0 ? where[i] : NULL;
	if (!sftp_server)
		die("sftp-server", "not found (openssh-sftp-server), needed to count SFTP requests");
	snprintf(key, sizeof(key), "%s/id_ecdsa", scratch);
	snprintf(kh, sizeof(kh), "%s/known_hosts", scratch);
	snprintf(sftp_log, sizeof(sftp_log), "%s/sftp.log", scratch);
	snprintf(exec_log, sizeof(exec_log), "%s/exec.log", scratch);
	free_ports((struct server *[]){&timing, &counting}, 2);
	shellf("set -e; cd %s; mkdir -p /run/sshd; "
	       "ssh-keygen -q -t ecdsa -N '' -f hostkey; ssh-keygen -q -t ecdsa -N '' -f id_ecdsa; "
	       "cp id_ecdsa.pub authorized_keys; chmod 600 authorized_keys; touch sftp.log exec.log; "
	       "for p in %d %d; do echo \"[127.0.0.1]:$p $(cut -d' ' -f1,2 hostkey.pub)\"; done > known_hosts",
	       scratch, timing.port, counting.port);
	/* the counting server's ForceCommand: record the command, then run it as sshd would have */
	char wrapper[160];
	snprintf(wrapper, sizeof(wrapper), "%s/logcmd", scratch);
	FILE *f = create(wrapper);
	fprintf(f, "#!/bin/sh\nprintf '%%s\\n' \"$SSH_ORIGINAL_COMMAND\" >> %s\nexec \"${SHELL:-/bin/sh}\" -c "
		   "\"$SSH_ORIGINAL_COMMAND\"\n",
		exec_log);
	fclose(f);
	chmod(wrapper, 0755);
	write_config(&timing, false);
	write_config(&counting, true);
	owner = getpid();
	atexit(stop_servers);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	start_server(&timing);
	start_server(&counting);
}

/* ---- programs and targets ------------------------------------------------------------------- */

/* The package of service i: the shared App, or its own AppI. */
static const char *pkg_of(bool per_service, int i)
{
	static char name[16];
	snprintf(name, sizeof(name), "App%d", i);
	return per_service ? name : "App";
}

/*
 * A stack S of n services, each with its unit and one config file; one
 * shared package App, or one package per service (AppN: another store
 * path each, so n pushes on a first deploy). version goes into the config
 * files only.
 */
static void write_program(const char *path, int n, bool per_service, int version)
{
	FILE *f = create(path);
	int npkg = per_service ? n : 1;
	for (int p = 0; p < npkg; p++)
		fprintf(f,
			"module %s { pname = \"%s\" version = \"1\" recipe = \"std.shell\"\n"
			"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf x > $OUTPUT/bin/app\" } }\n",
			pkg_of(per_service, p), pkg_of(per_service, p));
	fputs("module S { backend = \"systemd\"\n  storeModules = [", f);
	for (int p = 0; p < npkg; p++)
		fprintf(f, "%s\"%s\"", p ? ", " : "", pkg_of(per_service, p));
	fputs("]\n  services = [\n", f);
	for (int i = 0; i < n; i++)
		fprintf(f, "    { name = \"s%d\" package = \"%s\" binary = \"app\" }\n", i, pkg_of(per_service, i));
	fputs("  ]\n  configFiles = [\n", f);
	for (int i = 0; i < n; i++)
		fprintf(f, "    { path = \"/etc/s/s%d.conf\" content = \"service = s%d\\nversion = %d\\n\" }\n", i, i,
			version);
	fputs("  ]\n}\n", f);
	fclose(f);
}

/* One side of a comparison: its own home (journal, local store) and target directory. */
struct side {
	char home[200], tmpl[210], remote[200];
	const struct server *srv; /* NULL: rebased locally, no SSH */
	bool host;                /* host mode: the target runs the op by its punix (else agentless) */
	bool bootstrap;           /* host mode with no punix named: the static build is pushed first */
};

static char punix_abs[4096]; /* the target's punix in host mode (this one: the target is this machine) */
static char static_punix[4200]; /* PUNIX-static, beside it: what a bootstrap pushes */

/* The packages built once into the home, kept as a template: every first deploy starts from it. */
static void side_init(struct side *s, const char *dir, const char *name, const char *prog, const struct server *srv,
		      bool host)
{
	s->host = host;
	snprintf(s->home, sizeof(s->home), "%s/home-%s", dir, name);
	snprintf(s->tmpl, sizeof(s->tmpl), "%s.tmpl", s->home);
	snprintf(s->remote, sizeof(s->remote), "%s/target-%s", dir, name);
	s->srv = srv;
	char *build[] = {(char *)punix, "build", (char *)prog, NULL};
	run(build, s->home, 0);
	shellf("cp -a %s %s", s->home, s->tmpl);
}

/* A fresh target, and a home as it was after the build: nothing deployed, anywhere. */
static void side_fresh(const struct side *s)
{
	shellf("rm -rf %s %s && cp -a %s %s && mkdir -p %s", s->home, s->remote, s->tmpl, s->home, s->remote);
}

/* punix service VERB S [ARG] [--file PROG] [--target ... --key ... --known-hosts ...] --transport-root R */
static void argv_for(char **a, const struct side *s, const char *verb, const char *arg, const char *prog)
{
	int n = 0;
	a[n++] = (char *)punix;
	a[n++] = "service";
	a[n++] = (char *)verb;
	a[n++] = "S";
	if (arg)
		a[n++] = (char *)arg;
	if (prog) {
		a[n++] = "--file";
		a[n++] = (char *)prog;
	}
	if (s->srv) {
		a[n++] = "--target";
		a[n++] = (char *)s->srv->url;
		a[n++] = "--key";
		a[n++] = key;
		a[n++] = "--known-hosts";
		a[n++] = kh;
		a[n++] = "--mode";
		a[n++] = s->host ? "host" : "agentless";
		if (s->host && !s->bootstrap) {
			a[n++] = "--remote-punix";
			a[n++] = punix_abs;
		}
	}
	a[n++] = "--transport-root";
	a[n++] = (char *)s->remote;
	a[n] = NULL;
}

/*
 * Every timed run starts with nothing dirty in the page cache: its first
 * fsync would otherwise also write back what the reset (rm, cp) or the
 * other side's run left unwritten, a cost that is neither side's.
 */
static double timed(char *const *argv, const char *home)
{
	shell("sync");
	return run(argv, home, 0).secs;
}

static double deploy(const struct side *s, const char *prog)
{
	char *a[24];
	argv_for(a, s, "deploy", NULL, prog);
	return timed(a, s->home);
}

/* ---- timing --------------------------------------------------------------------------------- */

/* Medians, and the fastest runs: on a shared machine the least disturbed. */
struct timed {
	double ssh, local, ssh_min, local_min;
};

#define KINDS 32

/* How many of each kind of request: SFTP by type, exec by command. */
struct tally {
	char name[KINDS][24];
	long n[KINDS], total;
	int k;
};

struct counts {
	long conns, sessions, execs, sftp_sessions, sftp_answers, waits, sends;
	struct tally sftp, cmds;
};

struct kase {
	int n;
	bool per_service;
	const char *label;
	char dir[128], prog[160], prog2[160]; /* prog2: every config file changed, for rollbacks */
	struct side ssh, local, host;
	struct timed first, noop, status; /* agentless; status: case 0 only */
	struct timed hfirst, hnoop, hstatus; /* host mode */
	struct counts first_c, noop_c, status_c;
	struct counts hfirst_c, hnoop_c, hstatus_c;
};

static void case_init(struct kase *k, int n, bool per_service, const char *label)
{
	k->n = n;
	k->per_service = per_service;
	k->label = label;
	snprintf(k->dir, sizeof(k->dir), "%s/%d-%s", scratch, n, per_service ? "each" : "shared");
	snprintf(k->prog, sizeof(k->prog), "%s/prog.pcl", k->dir);
	snprintf(k->prog2, sizeof(k->prog2), "%s/prog-v2.pcl", k->dir);
	shellf("mkdir -p %s", k->dir);
	write_program(k->prog, n, per_service, 1);
	write_program(k->prog2, n, per_service, 2);
	side_init(&k->ssh, k->dir, "ssh", k->prog, &timing, false);
	side_init(&k->local, k->dir, "local", k->prog, NULL, false);
	side_init(&k->host, k->dir, "host", k->prog, &timing, true);
}

/* The medians of a pair alternated run by run, and every run (sorted) to show the spread. */
static struct timed pair_named(const char *what, const char *name, double *ssh, double *local, int reps)
{
	struct timed m = {median_of(ssh, reps), median_of(local, reps), ssh[0], local[0]}; /* sorted by then */
	for (int side = 0; side < 2; side++) {
		printf("    %-16s %-9s", what, side ? "local" : name);
		for (int i = 0; i < reps; i++)
			printf(" %.3f", side ? local[i] : ssh[i]);
		printf("\n");
	}
	return m;
}

static struct timed pair(const char *what, double *ssh, double *local, int reps)
{
	return pair_named(what, "agentless", ssh, local, reps);
}

static double openssh_true; /* OpenSSH's own client: ssh HOST true, median */

/*
 * First deploys, each from a fresh home and target, then no-op redeploys
 * of the same program (each still makes a generation), SSH and local
 * alternated run by run.
 */
static void time_case(struct kase *k, int reps, bool floor)
{
	double fs[32], fl[32], ns[32], nl[32], ss[32], sl[32], os[32], fh[32], nh[32], sh[32], fl2[32], nl2[32],
		sl2[32];
	for (int r = 0; r < reps; r++) {
		side_fresh(&k->ssh);
		fs[r] = deploy(&k->ssh, k->prog);
		side_fresh(&k->local);
		fl[r] = deploy(&k->local, k->prog);
		side_fresh(&k->host);
		fh[r] = deploy(&k->host, k->prog);
		side_fresh(&k->local);
		fl2[r] = deploy(&k->local, k->prog);
	}
	/*
	 * The floor of any op over SSH: status reads the stack's one
	 * generation (a handful of requests) after the process, the TCP
	 * connection, the handshake, authentication and SFTP's start. And
	 * what any SSH tool pays for as much: OpenSSH's client running true.
	 */
	char *st[3][24], khopt[160], port[16];
	argv_for(st[0], &k->ssh, "status", NULL, NULL);
	argv_for(st[1], &k->local, "status", NULL, NULL);
	argv_for(st[2], &k->host, "status", NULL, NULL);
	snprintf(khopt, sizeof(khopt), "UserKnownHostsFile=%s", kh);
	snprintf(port, sizeof(port), "%d", timing.port);
	char *ossh[] = {"ssh", "-q", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", khopt, "-i", key,
			"-p", port, "root@127.0.0.1", "true", NULL};
	for (int r = 0; floor && r < reps; r++) {
		ss[r] = timed(st[0], k->ssh.home);
		sl[r] = timed(st[1], k->local.home);
		os[r] = timed(ossh, NULL);
		sh[r] = timed(st[2], k->host.home);
		sl2[r] = timed(st[1], k->local.home);
	}
	for (int r = 0; r < reps; r++) {
		ns[r] = deploy(&k->ssh, k->prog);
		nl[r] = deploy(&k->local, k->prog);
		nh[r] = deploy(&k->host, k->prog);
		nl2[r] = deploy(&k->local, k->prog);
	}
	printf("  %s: every run, s (sorted)\n", k->label);
	k->first = pair("first", fs, fl, reps);
	k->noop = pair("no-op", ns, nl, reps);
	k->hfirst = pair_named("first", "host", fh, fl2, reps);
	k->hnoop = pair_named("no-op", "host", nh, nl2, reps);
	if (floor) {
		k->status = pair("status", ss, sl, reps);
		k->hstatus = pair_named("status", "host", sh, sl2, reps);
		openssh_true = median_of(os, reps);
	}
	fflush(stdout);
}

static void print_row(const char *label, const char *op, const struct timed *t, double goal)
{
	double ratio = t->ssh / t->local;
	char g[32] = "";
	if (goal > 0)
		snprintf(g, sizeof(g), "<= %.0fx: %s", goal, ratio <= goal ? "met" : "NOT met");
	printf("%-30s %-8s %9.1f %9.1f %7.1f %8.1f  %s\n", label, op, 1e3 * t->ssh, 1e3 * t->local, ratio,
	       t->ssh_min / t->local_min, g);
}

/*
 * Rollback: generations 1 and 2 differ in every config file, so each
 * rollback rewrites the 10 live files; a set-current 2 (untimed) after
 * each gives the next one the same work.
 */
static struct timed time_rollback(struct kase *k, int reps, bool host)
{
	struct side *sides[2] = {host ? &k->host : &k->ssh, &k->local};
	for (int i = 0; i < 2; i++) {
		side_fresh(sides[i]);
		deploy(sides[i], k->prog);
		deploy(sides[i], k->prog2);
	}
	char *rb[2][24], *sc[2][24];
	for (int i = 0; i < 2; i++) {
		argv_for(rb[i], sides[i], "rollback", NULL, NULL);
		argv_for(sc[i], sides[i], "set-current", "2", NULL);
	}
	double t[2][32];
	for (int r = 0; r < reps; r++)
		for (int i = 0; i < 2; i++) {
			t[i][r] = timed(rb[i], sides[i]->home);
			run(sc[i], sides[i]->home, 0);
		}
	printf("  rollback, %s: every run, s (sorted)\n", k->label);
	return pair_named("rollback", host ? "host" : "agentless", t[0], t[1], reps);
}

/* ---- counting ------------------------------------------------------------------------------- */

static void tally_add(struct tally *t, const char *name, size_t len)
{
	t->total++;
	if (len >= sizeof(t->name[0]))
		len = sizeof(t->name[0]) - 1;
	for (int i = 0; i < t->k; i++)
		if (strlen(t->name[i]) == len && !strncmp(t->name[i], name, len)) {
			t->n[i]++;
			return;
		}
	if (t->k == KINDS)
		return;
	memcpy(t->name[t->k], name, len);
	t->name[t->k][len] = 0;
	t->n[t->k++] = 1;
}

/* "name n, name n, ...", most frequent first */
static void tally_print(const struct tally *t)
{
	bool done[KINDS] = {0};
	for (int printed = 0; printed < t->k; printed++) {
		int best = -1;
		for (int i = 0; i < t->k; i++)
			if (!done[i] && (best < 0 || t->n[i] > t->n[best]))
				best = i;
		done[best] = true;
		printf("%s%s %ld", printed ? ", " : "", t->name[best], t->n[best]);
	}
	printf("\n");
}

static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* What was appended to path since offset from (malloc'd, NUL-terminated). */
static char *tail_from(const char *path, long from)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die(path, "cannot open");
	fseek(f, 0, SEEK_END);
	long end = ftell(f);
	long len = end > from ? end - from : 0;
	char *buf = malloc((size_t)len + 1);
	fseek(f, from, SEEK_SET);
	len = (long)fread(buf, 1, (size_t)len, f);
	fclose(f);
	buf[len] = 0;
	return buf;
}

static long count_of(const char *text, const char *needle)
{
	long n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/*
 * The server's per-connection processes log after the client has gone:
 * wait until every connection accepted in the slice has said goodbye and
 * every SFTP session has closed.
 */
static void settle(long sshd_from, long sftp_from)
{
	for (int i = 0; i < 250; i++) {
		char *a = tail_from(counting.log, sshd_from), *b = tail_from(sftp_log, sftp_from);
		long acc = count_of(a, "Accepted publickey for "), gone = count_of(a, "Disconnected from user");
		long open = count_of(b, "session opened"), closed = count_of(b, "session closed");
		free(a);
		free(b);
		if (acc > 0 && gone >= acc && closed >= open)
			return;
		usleep(20 * 1000);
	}
	die("counting", "the server did not finish logging the op within 5 s");
}

/*
 * Client side, with strace -yy (which names each socket's peer): poll()
 * on the connection is libssh2 waiting for an answer (its socket is
 * non-blocking; blocking mode is a poll loop), sendto() one write of
 * packets.
 */
static void client_waits(const char *path, struct counts *c)
{
	char peer[48];
	snprintf(peer, sizeof(peer), "->127.0.0.1:%d]", counting.port);
	FILE *f = fopen(path, "r");
	if (!f)
		die("strace", "no output");
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, peer))
			continue;
		const char *c0 = line + strspn(line, "0123456789 ");
		if (!strncmp(c0, "poll(", 5) || !strncmp(c0, "ppoll(", 6))
			c->waits++;
		else if (!strncmp(c0, "sendto(", 7) || !strncmp(c0, "sendmsg(", 8) || !strncmp(c0, "write(", 6))
			c->sends++;
	}
	fclose(f);
}

/* Runs argv against the counting server and reads what it logged about it. */
static struct counts count_op(const struct side *s, char *const *argv)
{
	long from_sshd = file_size(counting.log), from_sftp = file_size(sftp_log), from_exec = file_size(exec_log);
	struct counts c = {0};
	char trace[160];
	snprintf(trace, sizeof(trace), "%s/client.strace", scratch);
	/* under strace if there is one: argv after strace's 8 words, or alone */
	char *a[40] = {"strace", "-f", "-qq", "-yy", "-e", "trace=poll,ppoll,sendto,sendmsg,write", "-o", trace};
	int n = have_strace ? 8 : 0;
	for (int i = 0; argv[i] && n < 39; i++)
		a[n++] = argv[i];
	a[n] = NULL;
	run(a, s->home, 0);
	settle(from_sshd, from_sftp);
	char *log = tail_from(counting.log, from_sshd);
	c.conns = count_of(log, "Accepted publickey for ");
	c.sessions = count_of(log, "session_new: session ");
	c.execs = count_of(log, " request exec ");
	free(log);

	/*
	 * sftp-server -l DEBUG3: "debugN: request ID: TYPE ..." once per
	 * request (N is 1 or 3 by type) and "debugN: request ID: sent ..."
	 * once per answer; the answers are counted to check the requests.
	 */
	char *sl = tail_from(sftp_log, from_sftp);
	c.sftp_sessions = count_of(sl, "session opened");
	for (char *p = sl; (p = strstr(p, ": request ")); p++) {
		char *w = p + 10 + strspn(p + 10, "0123456789");
		if (p - sl < 6 || strncmp(p - 6, "debug", 5) || strncmp(w, ": ", 2))
			continue;
		w += 2;
		if (!strncmp(w, "sent ", 5))
			c.sftp_answers++;
		else
			tally_add(&c.sftp, w, strcspn(w, " \n"));
	}
	free(sl);

	/* the wrapper's record: one line per command; its first word, unquoted */
	char *el = tail_from(exec_log, from_exec);
	for (char *line = el, *next; *line; line = next) {
		next = line + strcspn(line, "\n");
		if (*next)
			*next++ = 0;
		if (strstr(line, "sftp-server"))
			continue; /* the SFTP subsystem itself */
		char *w = line + (*line == '\'');
		tally_add(&c.cmds, w, strcspn(w, "' "));
	}
	free(el);
	if (have_strace)
		client_waits(trace, &c);
	return c;
}

static void print_counts(const char *label, const struct counts *c, int n)
{
	long sftp = c->sftp.total, cmds = c->cmds.total;
	/* without strace, waits and sends are 0 */
	printf("%-40s %5ld %5ld %6ld %6ld %8ld %6.1f %7ld %7ld\n", label, c->conns, c->execs, sftp, c->sessions,
	       c->execs + sftp, (double)(c->execs + sftp) / n, c->waits, c->sends);
	/* three records of the same channels: a mismatch means a count is not what it claims */
	if (cmds != c->execs || c->sessions != c->execs + c->sftp_sessions || sftp != c->sftp_answers)
		printf("    MISMATCH: %ld commands recorded, %ld exec requests, %ld sessions, %ld SFTP sessions, "
		       "%ld SFTP answers\n",
		       cmds, c->execs, c->sessions, c->sftp_sessions, c->sftp_answers);
	printf("    exec: ");
	tally_print(&c->cmds);
	printf("    sftp: ");
	tally_print(&c->sftp);
}

static void count_and_print(const struct kase *k, const struct side *s, char *const *argv, const char *op,
			    struct counts *out)
{
	char label[96];
	*out = count_op(s, argv);
	snprintf(label, sizeof(label), "%s, %s", k->label, op);
	print_counts(label, out, k->n);
}

/* First deploy, no-op redeploy, and for case 0 status and a rollback, each counted once. */
static void count_case(struct kase *k, struct counts *rollback, bool host)
{
	struct side s = host ? k->host : k->ssh;
	s.srv = &counting;
	side_fresh(&s);
	char *d[24], *st[24];
	argv_for(d, &s, "deploy", NULL, k->prog);
	argv_for(st, &s, "status", NULL, NULL);
	const char *m = host ? "host " : "";
	char l1[32], l2[32], l3[32], l4[32];
	snprintf(l1, sizeof(l1), "%sfirst", m);
	snprintf(l2, sizeof(l2), "%sstatus", m);
	snprintf(l3, sizeof(l3), "%sno-op", m);
	snprintf(l4, sizeof(l4), "%srollback", m);
	count_and_print(k, &s, d, l1, host ? &k->hfirst_c : &k->first_c);
	if (rollback)
		count_and_print(k, &s, st, l2, host ? &k->hstatus_c : &k->status_c);
	count_and_print(k, &s, d, l3, host ? &k->hnoop_c : &k->noop_c);
	if (rollback) {
		char *rb[24];
		deploy(&s, k->prog2);
		argv_for(rb, &s, "rollback", NULL, NULL);
		count_and_print(k, &s, rb, l4, rollback);
	}
	fflush(stdout);
}

/*
 * What SSH adds (ssh - local) set against what it asked of the server:
 * on loopback a round trip costs next to nothing on the wire, so the
 * cost per request is the two processes' work for it (libssh2 and its
 * crypto here, sshd and sftp-server or a shell there).
 */
static void print_cost(const char *label, const char *op, const struct timed *t, const struct counts *c)
{
	double extra = t->ssh - t->local;
	long req = c->execs + c->sftp.total;
	printf("%-30s %-8s %9.1f %6ld %6ld %8ld %9.0f %7ld %9.0f\n", label, op, 1e3 * extra, c->execs,
	       c->sftp.total, req, 1e6 * extra / (double)req, c->waits,
	       c->waits ? 1e6 * extra / (double)c->waits : 0);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void bench(int quick)
{
	int reps = quick ? 5 : 11;
	start_servers();
	have_strace = system("command -v strace >/dev/null 2>&1") == 0;
	struct kase k[3];
	case_init(&k[0], 10, false, "10 services, shared package");
	case_init(&k[1], 10, true, "10 services, a package each");
	case_init(&k[2], 100, false, "100 services, shared package");

	printf("over SSH: --target ssh://root@127.0.0.1:%d (a private sshd on loopback, internal-sftp,\n"
	       "LogLevel INFO) --transport-root R; local: --transport-root R2 (no SSH). Each service has\n"
	       "its unit and one config file. Median of %d whole processes, SSH and local alternated;\n"
	       "first deploys from a fresh home (packages already built) and an empty target.\n\n",
	       timing.port, reps);
	for (int i = 0; i < 3; i++)
		time_case(&k[i], reps, i == 0);
	struct timed rb = time_rollback(&k[0], reps, false);
	struct timed hrb = time_rollback(&k[0], reps, true);
	/* a first deploy to a target with no punix: the static build bootstrapped into its store first */
	struct timed boot = {0};
	if (access(static_punix, R_OK) == 0) {
		struct side b = k[0].host;
		b.bootstrap = true;
		double tb[32], tl[32];
		for (int r = 0; r < reps; r++) {
			side_fresh(&b);
			tb[r] = deploy(&b, k[0].prog);
			side_fresh(&k[0].local);
			tl[r] = deploy(&k[0].local, k[0].prog);
		}
		printf("  bootstrap, %s: every run, s (sorted)\n", k[0].label);
		boot = pair_named("first", "bootstrap", tb, tl, reps);
	}

	printf("\nhost mode (the target's punix runs the op; --mode host --remote-punix PUNIX)\n"
	       "%-30s %-8s %9s %9s %7s %8s  %s\n", "stack", "op", "ssh ms", "local ms", "ratio", "min/min",
	       "goal (median ssh/local)");
	for (int i = 0; i < 3; i++) {
		print_row(k[i].label, "first", &k[i].hfirst, GOAL_FIRST);
		print_row(k[i].label, "no-op", &k[i].hnoop, GOAL_NOOP);
	}
	print_row(k[0].label, "rollback", &hrb, 0);
	print_row(k[0].label, "status", &k[0].hstatus, 0);
	if (boot.ssh > 0)
		print_row(k[0].label, "boot", &boot, 0);
	printf("\nagentless mode (every step over SFTP and exec; --mode agentless)\n"
	       "%-30s %-8s %9s %9s %7s %8s  %s\n", "stack", "op", "ssh ms", "local ms", "ratio", "min/min",
	       "goal (median ssh/local)");
	for (int i = 0; i < 3; i++) {
		print_row(k[i].label, "first", &k[i].first, GOAL_FIRST);
		print_row(k[i].label, "no-op", &k[i].noop, GOAL_NOOP);
	}
	print_row(k[0].label, "rollback", &rb, 0);
	print_row(k[0].label, "status", &k[0].status, 0);
	printf("%-30s %-8s %9.1f   (OpenSSH's client: ssh -i KEY -p PORT root@127.0.0.1 true)\n", "", "ssh true",
	       1e3 * openssh_true);
	printf("\ngrowth 10 -> 100 services (exponent): host first %.2f, no-op %.2f\n",
	       fit_exponent((double[]){10, 100}, (double[]){k[0].hfirst.ssh, k[2].hfirst.ssh}, 2),
	       fit_exponent((double[]){10, 100}, (double[]){k[0].hnoop.ssh, k[2].hnoop.ssh}, 2));
	printf("growth 10 -> 100 services (exponent): agentless first %.2f, no-op %.2f; local first %.2f, no-op %.2f\n",
	       fit_exponent((double[]){10, 100}, (double[]){k[0].first.ssh, k[2].first.ssh}, 2),
	       fit_exponent((double[]){10, 100}, (double[]){k[0].noop.ssh, k[2].noop.ssh}, 2),
	       fit_exponent((double[]){10, 100}, (double[]){k[0].first.local, k[2].first.local}, 2),
	       fit_exponent((double[]){10, 100}, (double[]){k[0].noop.local, k[2].noop.local}, 2));

	printf("\nwhat each op asks of the server, one run each (see bench/README.md); requests = exec + sftp\n\n"
	       "%-40s %5s %5s %6s %6s %8s %6s %7s %7s\n",
	       "op", "conns", "exec", "sftp", "sess", "requests", "/svc", "waits", "sends");
	struct counts rb_c, hrb_c;
	for (int i = 0; i < 3; i++) {
		count_case(&k[i], i == 0 ? &hrb_c : NULL, true);
		count_case(&k[i], i == 0 ? &rb_c : NULL, false);
	}

	printf("\nwhat SSH adds, per request: (ssh - local) / requests, and / waits\n\n%-30s %-8s %9s %6s %6s %8s %9s "
	       "%7s %9s\n",
	       "stack", "op", "extra ms", "exec", "sftp", "requests", "us/req", "waits", "us/wait");
	for (int i = 0; i < 3; i++) {
		print_cost(k[i].label, "h first", &k[i].hfirst, &k[i].hfirst_c);
		print_cost(k[i].label, "h no-op", &k[i].hnoop, &k[i].hnoop_c);
		print_cost(k[i].label, "first", &k[i].first, &k[i].first_c);
		print_cost(k[i].label, "no-op", &k[i].noop, &k[i].noop_c);
	}
	print_cost(k[0].label, "h rollb.", &hrb, &hrb_c);
	print_cost(k[0].label, "rollback", &rb, &rb_c);
	print_cost(k[0].label, "status", &k[0].status, &k[0].status_c);
	stop_servers();
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_ssh PUNIX [--quick]\n");
		return 2;
	}
	punix = argv[1];
	if (!realpath(punix, punix_abs)) {
		perror(punix);
		return 1;
	}
	punix = punix_abs;
	snprintf(static_punix, sizeof(static_punix), "%.4000s-static", punix_abs);
	int quick = argc > 2 && !strcmp(argv[2], "--quick");
	if (geteuid() != 0 || access("/usr/sbin/sshd", X_OK) != 0) {
		/* a private sshd that logs in as root needs root, and openssh-server (never installed for you) */
		printf("ssh: needs root and /usr/sbin/sshd (openssh-server); skipped\n");
		return 0;
	}
	strcpy(scratch, "/tmp/punix-bench-ssh-XXXXXX");
	/* as root, punix builds as nobody, who must reach the store in here */
	if (!mkdtemp(scratch) || chmod(scratch, 0755) < 0) {
		perror(scratch);
		return 1;
	}
	bench(quick);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "chmod -R u+w %s; rm -rf %s", scratch, scratch);
	return system(cmd) == 0 ? 0 : 1;
}
