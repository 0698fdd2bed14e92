/*
 * bench_fleet.c - `punix fleet apply` by number of hosts. Not a test: it
 * prints numbers.
 *
 *   bench_fleet PUNIX [--quick]
 *
 * Every host has its own program (hosts/hN.pcl): one package App, a
 * std.shell build that writes one file (the same for every host: one store
 * path, built once), and a stack SN with 2 services and 2 config files
 * that name the host. The fleet files list the first H of them.
 *
 * 1. Rebased, no SSH: fleets of 1, 20 and 100 hosts, each host a target
 *    of its own (ssh://root@hN), applied with --transport-root DIR (host N
 *    lands in DIR/root@hN_22/); 20 hosts also with --parallel 1 against
 *    the default 8, and with libuv's pool at 8 threads (UV_THREADPOOL_SIZE,
 *    default 4); and, beside the 1-host fleet, the same host deployed alone
 *    by `punix service deploy` (what the fleet layer adds).
 * 2. Over loopback SSH (as root, with /usr/sbin/sshd): private sshd
 *    servers (own host key, user key, authorized_keys, known_hosts, a free
 *    port, stopped on any exit, as bench_ssh.c); fleets of 1 and 20 hosts
 *    all targeting ssh://root@127.0.0.1:PORT, each host its own stack,
 *    service names and config paths, with --deployments-root and
 *    --unit-dir in the scratch directory (no --transport-root: that would
 *    skip SSH), in host mode (--remote-punix this punix) and in agentless
 *    mode. To the engine those 20 hosts are one machine (one executor, 2
 *    work items at once), so the same 20 hosts also at 127.0.0.1 ..
 *    127.0.0.20 (loopback too; two sshd, since one listens on at most 16
 *    addresses): 20 machines, as a real fleet is.
 *
 * A first apply starts from a fresh home (a copy of one where App was
 * built, untimed) and an empty target; the no-op re-applies the same fleet
 * right after it (every host makes generation 2). As in bench.c each time
 * is a whole punix process (start-up included), an untimed `sync` before
 * it, the median over repetitions in which every variant runs once, in
 * turn, so that the machine's noise falls on all alike; the anchor is the
 * 1-host fleet of the same run. Beside each median, the CPU time of the
 * run's processes (punix's, from wait4, and over SSH the server's: the
 * sshd's and what it reaped, from /proc/PID/stat in 10 ms ticks) and the
 * cores that kept busy on average (CPU / wall): how close a run is to
 * what the machine's cores can give, whatever else runs on it.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

static char punix[4096]; /* absolute: host mode's --remote-punix names it */
static char scratch[64];
static char hosts_dir[128];

#define MAX_HOSTS 100
#define MAX_REPS 32

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_fleet: %s: %s\n", what, msg);
	exit(1);
}

/* ---- the programs --------------------------------------------------------------------------- */

/* hosts/hN.pcl: App, and stack SN of services hN-a, hN-b and config files <scratch>/etc/hN/{a,b}.conf. */
static void write_host(int i)
{
	char path[192];
	snprintf(path, sizeof(path), "%s/h%d.pcl", hosts_dir, i);
	FILE *f = create(path);
	fprintf(f,
		"module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
		"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf x > $OUTPUT/bin/app\" } }\n"
		"module S%d { backend = \"systemd\" storeModules = [\"App\"]\n"
		"  services = [ { name = \"h%d-a\" package = \"App\" binary = \"app\" }\n"
		"               { name = \"h%d-b\" package = \"App\" binary = \"app\" } ]\n"
		"  configFiles = [ { path = \"%s/etc/h%d/a.conf\" content = \"host = h%d\\nrole = a\\n\" }\n"
		"                  { path = \"%s/etc/h%d/b.conf\" content = \"host = h%d\\nrole = b\\n\" } ] }\n",
		i, i, i, scratch, i, i, scratch, i, i);
	fclose(f);
}

/*
 * A fleet of the first n hosts. Targets: port 0, "ssh://root@hN" (a name
 * each, for --transport-root); else ssh://root@127.0.0.1:PORT for every
 * host (distinct 0), or ssh://root@127.0.0.N+1:PORT (distinct 1: another
 * machine each as the engine sees it, the same sshd).
 */
static void write_fleet(const char *path, int n, int port, bool distinct)
{
	FILE *f = create(path);
	fputs("module Fleet { hosts = [\n", f);
	for (int i = 0; i < n; i++) {
		if (port)
			fprintf(f,
				"  { file = \"hosts/h%d.pcl\" stack = \"S%d\" target = \"ssh://root@127.0.0.%d:%d\" "
				"machine = \"h%d\" }\n",
				i, i, distinct ? i + 1 : 1, port, i);
		else
			fprintf(f, "  { file = \"hosts/h%d.pcl\" stack = \"S%d\" target = \"ssh://root@h%d\" }\n", i, i,
				i);
	}
	fputs("] }\n", f);
	fclose(f);
}

/*
 * App built into home, which is kept as HOME.tmpl: every first apply
 * starts from a copy of it, at the same path (a store is bound to its
 * directory).
 */
static void make_home(const char *home)
{
	char prog0[192];
	snprintf(prog0, sizeof(prog0), "%s/h0.pcl", hosts_dir);
	char *build[] = {punix, "build", prog0, NULL};
	run(build, home, 0);
	shellf("cp -a %s %s.tmpl", home, home);
}

/* ---- timing ------------------------------------------------------------------------------- */

/*
 * The private sshd, while it runs (section 2): two processes, since one
 * listens on at most 16 addresses and the fleet of distinct addresses
 * needs 20.
 */
#define SERVERS 2
static pid_t sshd_pid[SERVERS];

/* CPU seconds of the punix processes the harness has waited for (and of what they waited for). */
static double children_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/*
 * CPU seconds of the sshd servers and of every process they have reaped
 * (a connection's sshd, its shells, sftp, the target's punix): utime,
 * stime, cutime, cstime of /proc/PID/stat. 0 when no sshd runs.
 */
static double sshd_cpu(void)
{
	double total = 0;
	for (int i = 0; i < SERVERS; i++) {
		if (sshd_pid[i] <= 0)
			continue;
		char path[64], buf[1024];
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)sshd_pid[i]);
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		if (f)
			fclose(f);
		buf[n] = 0;
		char *p = strrchr(buf, ')');
		unsigned long long ut, st;
		long long cut, cst;
		/* after the name: state, then fields 4..13, then utime (14), stime, cutime, cstime */
		if (!p || sscanf(p + 2, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu %lld %lld", &ut, &st,
				 &cut, &cst) != 4)
			die(path, "cannot read the CPU times");
		total += (double)(ut + st + (unsigned long long)(cut + cst)) / (double)sysconf(_SC_CLK_TCK);
	}
	return total;
}

/*
 * The server side of a connection may end a little after the client: wait
 * until the servers have reaped every connection's process (at most 5 s),
 * so that their CPU time is all counted.
 */
static void sshd_settle(void)
{
	for (int s = 0; s < SERVERS; s++) {
		char path[96], buf[64];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)sshd_pid[s], (int)sshd_pid[s]);
		for (int i = 0; sshd_pid[s] > 0 && i < 500; i++) {
			FILE *f = fopen(path, "r");
			size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
			if (f)
				fclose(f);
			if (n == 0)
				break;
			usleep(10 * 1000);
		}
	}
}

/* One timed run: its wall time, and the CPU time of our processes in it (srv: the server's part). */
struct one {
	double secs, cpu, srv;
};

/*
 * Every timed run starts with nothing dirty in the page cache: its first
 * fsync would otherwise also write back what the reset (rm, cp) or the
 * run before left unwritten, a cost that is not its own. Its CPU time is
 * punix's own (and its children's) and, over SSH, the server's for it:
 * not the machine's, which other tenants share.
 */
static struct one timed(char *const *argv, const char *home)
{
	shell("sync");
	sshd_settle();
	double c0 = children_cpu(), s0 = sshd_cpu();
	double secs = run(argv, home, 0).secs;
	double c1 = children_cpu();
	sshd_settle();
	double srv = sshd_cpu() - s0;
	return (struct one){secs, c1 - c0 + srv, srv};
}

/* One variant: its runs, and their medians and fastest (on a shared machine the least disturbed). */
struct variant {
	const char *label;
	int hosts;
	double first[MAX_REPS], noop[MAX_REPS], cfirst[MAX_REPS], cnoop[MAX_REPS], sfirst[MAX_REPS], snoop[MAX_REPS];
	double mfirst, mnoop, minfirst, minnoop, mcfirst, mcnoop, msfirst, msnoop;
};

static void record(struct variant *v, int r, struct one first, struct one noop)
{
	v->first[r] = first.secs;
	v->cfirst[r] = first.cpu;
	v->noop[r] = noop.secs;
	v->cnoop[r] = noop.cpu;
	v->sfirst[r] = first.srv;
	v->snoop[r] = noop.srv;
}

static void settle_variant(struct variant *v, int reps)
{
	v->mfirst = median_of(v->first, reps); /* sorts */
	v->mnoop = median_of(v->noop, reps);
	v->minfirst = v->first[0];
	v->minnoop = v->noop[0];
	v->mcfirst = median_of(v->cfirst, reps);
	v->mcnoop = median_of(v->cnoop, reps);
	v->msfirst = median_of(v->sfirst, reps);
	v->msnoop = median_of(v->snoop, reps);
}

static void print_runs(const struct variant *v, int reps)
{
	for (int op = 0; op < 2; op++) {
		printf("    %-30s %-6s", v->label, op ? "no-op" : "first");
		for (int i = 0; i < reps; i++)
			printf(" %.3f", op ? v->noop[i] : v->first[i]);
		printf("\n");
	}
}

/*
 * cores: median CPU / median wall, how many cores the run kept busy on
 * average; over SSH also the server's part of the CPU time
 */
static void print_row(const struct variant *v, const struct variant *anchor, bool ssh)
{
	printf("%-30s %5d %8.1f %8.1f %7.2f %7.2f %6.2f %6.2f %8.1f %8.1f %5.2f %5.2f", v->label, v->hosts,
	       1e3 * v->mfirst, 1e3 * v->mnoop, 1e3 * v->mfirst / v->hosts, 1e3 * v->mnoop / v->hosts,
	       v->mfirst / anchor->mfirst, v->mnoop / anchor->mnoop, 1e3 * v->mcfirst, 1e3 * v->mcnoop,
	       v->mcfirst / v->mfirst, v->mcnoop / v->mnoop);
	if (ssh)
		printf(" %8.1f %8.1f", 1e3 * v->msfirst, 1e3 * v->msnoop);
	printf("\n");
}

static void print_header(bool ssh)
{
	printf("%-30s %5s %17s %15s %13s %17s %11s%s\n", "", "", "ms", "ms/host", "/ 1 host", "CPU ms", "cores",
	       ssh ? "  server CPU ms" : "");
	printf("%-30s %5s %8s %8s %7s %7s %6s %6s %8s %8s %5s %5s%s\n", "fleet", "hosts", "first", "no-op", "first",
	       "no-op", "first", "no-op", "first", "no-op", "first", "no-op", ssh ? "    first    no-op" : "");
}

/* ---- 1. rebased: no SSH --------------------------------------------------------------------- */

#define RB_SIZES 3
#define RB_VARIANTS 6

static void bench_rebased(int reps)
{
	const int sizes[RB_SIZES] = {1, 20, 100};
	char home[128], dir[128], fleet[RB_SIZES][160];
	snprintf(home, sizeof(home), "%s/home-rebased", scratch);
	snprintf(dir, sizeof(dir), "%s/targets", scratch);
	make_home(home);
	/*
	 * 0..2: the fleets, --parallel 8 (the default); 3: 20 hosts, --parallel 1;
	 * 4: 20 hosts with libuv's pool at 8 threads (default 4, docs/design.md);
	 * 5: host 0 alone by service deploy
	 */
	struct variant v[RB_VARIANTS] = {
		{.label = "1 host", .hosts = 1},
		{.label = "20 hosts", .hosts = 20},
		{.label = "100 hosts", .hosts = 100},
		{.label = "20 hosts, --parallel 1", .hosts = 20},
		{.label = "20 hosts, UV_THREADPOOL_SIZE=8", .hosts = 20},
		{.label = "1 host, punix service deploy", .hosts = 1},
	};
	for (int s = 0; s < RB_SIZES; s++) {
		snprintf(fleet[s], sizeof(fleet[s]), "%s/fleet-rebased-%d.pcl", scratch, sizes[s]);
		write_fleet(fleet[s], sizes[s], 0, false);
	}
	char *argv[RB_VARIANTS][16];
	for (int k = 0; k < 5; k++) {
		int n = 0;
		argv[k][n++] = punix;
		argv[k][n++] = "fleet";
		argv[k][n++] = "apply";
		argv[k][n++] = fleet[k < 3 ? k : 1];
		if (k == 3) {
			argv[k][n++] = "--parallel";
			argv[k][n++] = "1";
		}
		argv[k][n++] = "--transport-root";
		argv[k][n++] = dir;
		argv[k][n] = NULL;
	}
	/* host 0 deployed alone, into the directory the fleet uses for it */
	char prog0[192], where0[192];
	snprintf(prog0, sizeof(prog0), "%s/h0.pcl", hosts_dir);
	snprintf(where0, sizeof(where0), "%s/root@h0_22", dir);
	char *alone[] = {punix, "service", "deploy", "S0", "--file", prog0, "--transport-root", where0, NULL};
	memcpy(argv[5], alone, sizeof(alone));

	printf("1. rebased (--transport-root DIR: host N in DIR/root@hN_22/, no SSH); median of %d, every\n"
	       "variant once per round; first: fresh home (App built) and empty DIR; no-op: the same again.\n"
	       "CPU: punix's CPU time (and over SSH the server's); cores: CPU / wall, of the medians\n\n",
	       reps);
	for (int r = 0; r < reps; r++)
		for (int k = 0; k < RB_VARIANTS; k++) {
			/* store paths are read-only: only root could remove them without the chmod */
			shellf("chmod -R u+w %s %s 2>/dev/null; rm -rf %s %s && cp -a %s.tmpl %s && mkdir -p %s %s", home,
			       dir, home, dir, home, home, dir, k == 5 ? where0 : "");
			if (k == 4)
				setenv("UV_THREADPOOL_SIZE", "8", 1);
			struct one first = timed(argv[k], home);
			record(&v[k], r, first, timed(argv[k], home));
			unsetenv("UV_THREADPOOL_SIZE");
		}
	printf("  every run, s (sorted)\n");
	for (int k = 0; k < RB_VARIANTS; k++) {
		settle_variant(&v[k], reps);
		print_runs(&v[k], reps);
	}
	printf("\n");
	print_header(false);
	for (int k = 0; k < RB_VARIANTS; k++)
		print_row(&v[k], &v[0], false);
	printf("\n20 hosts / 1 host (goal 3): first %.2f, no-op %.2f (fastest / fastest: %.2f, %.2f)\n",
	       v[1].mfirst / v[0].mfirst, v[1].mnoop / v[0].mnoop, v[1].minfirst / v[0].minfirst,
	       v[1].minnoop / v[0].minnoop);
	printf("growth exponent 20 -> 100 hosts: first %.2f, no-op %.2f; 1 -> 100 (3 points): first %.2f, no-op %.2f\n",
	       fit_exponent((double[]){20, 100}, (double[]){v[1].mfirst, v[2].mfirst}, 2),
	       fit_exponent((double[]){20, 100}, (double[]){v[1].mnoop, v[2].mnoop}, 2),
	       fit_exponent((double[]){1, 20, 100}, (double[]){v[0].mfirst, v[1].mfirst, v[2].mfirst}, 3),
	       fit_exponent((double[]){1, 20, 100}, (double[]){v[0].mnoop, v[1].mnoop, v[2].mnoop}, 3));
	printf("20 hosts, --parallel 1 / --parallel 8: first %.2f, no-op %.2f\n", v[3].mfirst / v[1].mfirst,
	       v[3].mnoop / v[1].mnoop);
	printf("20 hosts, UV_THREADPOOL_SIZE=8 / the default 4: first %.2f, no-op %.2f\n", v[4].mfirst / v[1].mfirst,
	       v[4].mnoop / v[1].mnoop);
	printf("1-host fleet / the same host by punix service deploy: first %.2f, no-op %.2f\n\n",
	       v[0].mfirst / v[5].mfirst, v[0].mnoop / v[5].mnoop);
	fflush(stdout);
}

/* ---- the private sshd (as bench_ssh.c) ------------------------------------------------------ */

static int port;
static pid_t owner; /* only the harness itself stops the servers, never a forked child */
static char key[128], kh[128];

static void stop_server(void)
{
	for (int i = 0; i < SERVERS && getpid() == owner; i++)
		if (sshd_pid[i] > 0) {
			kill(sshd_pid[i], SIGTERM);
			waitpid(sshd_pid[i], NULL, 0);
			sshd_pid[i] = 0;
		}
}

static void on_signal(int sig)
{
	stop_server(); /* kill(2) and waitpid(2): async-signal-safe */
	_exit(128 + sig);
}

/* A port nobody listens on at 127.0.0.1: bound to port 0, the kernel picks. */
static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) < 0 || getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		die("free port", "cannot bind on 127.0.0.1");
	close(fd);
	return ntohs(sa.sin_port);
}

/* Whether 127.0.0.N:p accepts a connection. */
static bool accepts(int n, int p)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK - 1 + (uint32_t)n)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool up = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return up;
}

/*
 * Server i listens on 127.0.0.(10i+1) .. 127.0.0.(10i+10), all on one port
 * (127.0.0.0/8 is loopback: 20 addresses, 20 machines as the engine sees
 * them); both share the host key, the user key and authorized_keys.
 * SetEnv: SHLVL=1, as bench_ssh.c (Debian's bash would otherwise source
 * root's .bashrc, this machine's pyenv init, for every command sshd runs);
 * PUNIX_HOME keeps the target punix's journal (host mode) in the scratch
 * directory, not in /var/lib/punix.
 */
static void start_one(int i, const char *target_home)
{
	char cfg[128], log[128];
	snprintf(cfg, sizeof(cfg), "%s/sshd-%d.conf", scratch, i);
	snprintf(log, sizeof(log), "%s/sshd-%d.log", scratch, i);
	FILE *f = create(cfg);
	fprintf(f,
		"Port %d\nHostKey %s/hostkey\nAuthorizedKeysFile %s/authorized_keys\n"
		"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
		"PermitRootLogin prohibit-password\nPidFile %s/sshd-%d.pid\nSetEnv SHLVL=1 PUNIX_HOME=%s\n"
		"Subsystem sftp internal-sftp\n",
		port, scratch, scratch, scratch, i, target_home);
	for (int a = 10 * i + 1; a <= 10 * i + 10; a++)
		fprintf(f, "ListenAddress 127.0.0.%d\n", a);
	fclose(f);
	shellf("/usr/sbin/sshd -t -f %s", cfg);
	sshd_pid[i] = fork();
	if (sshd_pid[i] == 0) {
		/* if the harness is killed outright, the server goes with it */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(fd, 2);
		execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", cfg, (char *)NULL);
		_exit(127);
	}
	for (int t = 0; t < 100; t++) {
		if (waitpid(sshd_pid[i], NULL, WNOHANG) == sshd_pid[i]) {
			sshd_pid[i] = 0;
			break;
		}
		if (accepts(10 * i + 1, port) && accepts(10 * i + 10, port))
			return;
		usleep(50 * 1000);
	}
	fprintf(stderr, "bench_fleet: sshd %d did not start; its log:\n", i);
	shellf("cat %s >&2", log);
	exit(1);
}

static void start_server(const char *target_home)
{
	port = free_port();
	snprintf(key, sizeof(key), "%s/id_ecdsa", scratch);
	snprintf(kh, sizeof(kh), "%s/known_hosts", scratch);
	shellf("set -e; cd %s; mkdir -p /run/sshd; "
	       "ssh-keygen -q -t ecdsa -N '' -f hostkey; ssh-keygen -q -t ecdsa -N '' -f id_ecdsa; "
	       "cp id_ecdsa.pub authorized_keys; chmod 600 authorized_keys; "
	       "for i in $(seq 1 20); do echo \"[127.0.0.$i]:%d $(cut -d' ' -f1,2 hostkey.pub)\"; done > known_hosts",
	       scratch, port);
	owner = getpid();
	atexit(stop_server);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	for (int i = 0; i < SERVERS; i++)
		start_one(i, target_home);
}

/* ---- 2. over loopback SSH ------------------------------------------------------------------- */

#define SSH_VARIANTS 6

static void bench_ssh(int reps)
{
	char home[128], dep[128], units[128], thome[128], etc[128], fleet[3][160];
	snprintf(home, sizeof(home), "%s/home-ssh", scratch);
	snprintf(dep, sizeof(dep), "%s/ssh-deployments", scratch);
	snprintf(units, sizeof(units), "%s/ssh-units", scratch);
	snprintf(thome, sizeof(thome), "%s/ssh-target-home", scratch);
	snprintf(etc, sizeof(etc), "%s/etc", scratch);
	make_home(home);
	start_server(thome);
	/* 0: 1 host; 1: 20 hosts, one URL; 2: 20 hosts, 127.0.0.1 .. 127.0.0.20 */
	const int sizes[3] = {1, 20, 20};
	for (int s = 0; s < 3; s++) {
		snprintf(fleet[s], sizeof(fleet[s]), "%s/fleet-ssh-%d%s.pcl", scratch, sizes[s], s == 2 ? "-distinct" : "");
		write_fleet(fleet[s], sizes[s], port, s == 2);
	}
	/* 0..2: host mode, the three fleets; 3..5: agentless */
	struct variant v[SSH_VARIANTS] = {
		{.label = "host mode, 1 host", .hosts = 1},
		{.label = "host mode, 20 hosts", .hosts = 20},
		{.label = "host mode, 20 addresses", .hosts = 20},
		{.label = "agentless, 1 host", .hosts = 1},
		{.label = "agentless, 20 hosts", .hosts = 20},
		{.label = "agentless, 20 addresses", .hosts = 20},
	};
	char *argv[SSH_VARIANTS][24];
	for (int k = 0; k < SSH_VARIANTS; k++) {
		bool host = k < 3;
		char *a[] = {punix, "fleet", "apply", fleet[k % 3], "--key", key, "--known-hosts", kh,
			     "--deployments-root", dep, "--unit-dir", units, "--mode", host ? "host" : "agentless",
			     host ? "--remote-punix" : NULL, punix, NULL};
		memcpy(argv[k], a, sizeof(a));
	}
	printf("2. over SSH: private sshd servers on loopback (internal-sftp) at port %d; --deployments-root and\n"
	       "--unit-dir in the scratch directory, default --parallel 8; host mode: --mode host\n"
	       "--remote-punix PUNIX; agentless: --mode agentless. Targets: 1 host and 20 hosts, every one\n"
	       "ssh://root@127.0.0.1:%d (one machine to the engine: its executor has 2 work items on the\n"
	       "pool at once); 20 addresses: host N at ssh://root@127.0.0.N+1:%d, two sshd listening on\n"
	       "10 each (20 machines to the engine). Median of %d, every variant once per round; first: fresh\n"
	       "home, nothing on the target; no-op: the same again. CPU: punix's and the servers'; server CPU:\n"
	       "the sshd servers' and what they reaped (each connection's sshd, shells, sftp, the target's punix)\n\n",
	       port, port, port, reps);
	for (int r = 0; r < reps; r++)
		for (int k = 0; k < SSH_VARIANTS; k++) {
			shellf("rm -rf %s %s %s %s %s && cp -a %s.tmpl %s && mkdir -p %s %s %s", home, dep, units, thome,
			       etc, home, home, dep, units, thome);
			struct one first = timed(argv[k], home);
			record(&v[k], r, first, timed(argv[k], home));
		}
	stop_server();
	printf("  every run, s (sorted)\n");
	for (int k = 0; k < SSH_VARIANTS; k++) {
		settle_variant(&v[k], reps);
		print_runs(&v[k], reps);
	}
	printf("\n");
	print_header(true);
	for (int k = 0; k < SSH_VARIANTS; k++)
		print_row(&v[k], &v[k < 3 ? 0 : 3], true);
	printf("\n20 hosts / 1 host, one URL: host mode first %.2f, no-op %.2f; agentless first %.2f, no-op %.2f\n",
	       v[1].mfirst / v[0].mfirst, v[1].mnoop / v[0].mnoop, v[4].mfirst / v[3].mfirst, v[4].mnoop / v[3].mnoop);
	printf("  fastest / fastest:         host mode first %.2f, no-op %.2f; agentless first %.2f, no-op %.2f\n",
	       v[1].minfirst / v[0].minfirst, v[1].minnoop / v[0].minnoop, v[4].minfirst / v[3].minfirst,
	       v[4].minnoop / v[3].minnoop);
	printf("20 addresses / 1 host:     host mode first %.2f, no-op %.2f; agentless first %.2f, no-op %.2f\n",
	       v[2].mfirst / v[0].mfirst, v[2].mnoop / v[0].mnoop, v[5].mfirst / v[3].mfirst, v[5].mnoop / v[3].mnoop);
	printf("agentless / host mode: 1 host first %.2f, no-op %.2f; 20 hosts first %.2f, no-op %.2f; 20 addresses "
	       "first %.2f, no-op %.2f\n",
	       v[3].mfirst / v[0].mfirst, v[3].mnoop / v[0].mnoop, v[4].mfirst / v[1].mfirst, v[4].mnoop / v[1].mnoop,
	       v[5].mfirst / v[2].mfirst, v[5].mnoop / v[2].mnoop);
	fflush(stdout);
}

/* ---- main ----------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_fleet PUNIX [--quick]\n");
		return 2;
	}
	if (!realpath(argv[1], punix)) {
		perror(argv[1]);
		return 1;
	}
	int quick = argc > 2 && !strcmp(argv[2], "--quick");
	strcpy(scratch, "/tmp/punix-bench-fleet-XXXXXX");
	/* as root, punix builds as nobody, who must reach the store in here */
	if (!mkdtemp(scratch) || chmod(scratch, 0755) < 0) {
		perror(scratch);
		return 1;
	}
	snprintf(hosts_dir, sizeof(hosts_dir), "%s/hosts", scratch);
	shellf("mkdir -p %s", hosts_dir);
	for (int i = 0; i < MAX_HOSTS; i++)
		write_host(i);

	bench_rebased(quick ? 3 : 9);
	if (geteuid() != 0 || access("/usr/sbin/sshd", X_OK) != 0)
		/* a private sshd that logs in as root needs root, and openssh-server (never installed for you) */
		printf("2. over SSH: needs root and /usr/sbin/sshd (openssh-server); skipped\n");
	else
		bench_ssh(quick ? 3 : 7);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "chmod -R u+w %s; rm -rf %s", scratch, scratch);
	return system(cmd) == 0 ? 0 : 1;
}
