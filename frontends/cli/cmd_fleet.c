/*
 * cmd_fleet.c - `punix fleet apply|rollback|status FILE` (docs/fleet.md).
 *
 * A fleet module names hosts, each with its own program, stack and target.
 * apply deploys every selected host as an op of one engine, at most
 * --parallel at a time (the engine runs them concurrently on its loop;
 * builds two hosts share are made once); a host that fails is reported and
 * the others go on (or, with --fail-fast, no new host starts). rollback
 * does the same in reverse declared order; status reads every host at once.
 */
#include <errno.h>
#include <stdarg.h>
#include <fnmatch.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../base/path.h"
#include "../../base/vec.h"
#include "../../base/xalloc.h"
#include "../../engine/engine.h"
#include "../../engine/host.h"
#include "../../engine/ssh.h"
#include "cli.h"

#define FLEET_USAGE                                                                                        \
	"usage: punix fleet apply FILE [--parallel N] [--fail-fast] [--on NAME,...] [--timeout S] [--activate [--enable]]\n" \
	"                        [--dry-run] [--confirm-timeout SECS [--health CMD]] [--vault-secrets FILE]\n" \
	"                        [--json] [TARGET OPTIONS]\n"                                              \
	"       punix fleet rollback FILE [--parallel N] [--fail-fast] [--on NAME,...] [--activate [--enable]]\n" \
	"                        [--confirm-timeout SECS [--health CMD]] [--json] [TARGET OPTIONS]\n"        \
	"       punix fleet status FILE [--on NAME,...] [--json] [TARGET OPTIONS]\n"

void cmd_fleet_help(void)
{
	fputs(FLEET_USAGE
	      "\n"
	      "  apply     deploy every host's stack (its own program, built here, pushed, flipped)\n"
	      "  rollback  roll every host's stack back, in reverse declared order\n"
	      "  status    each host's current generation, the mode that reaches it, and whether an\n"
	      "            op is running there\n"
	      "\n"
	      "FILE holds one fleet module (docs/fleet.md):\n"
	      "  module Fleet { hosts = [ { file = \"hosts/web.pcl\" stack = \"WebStack\"\n"
	      "                             target = \"ssh://deploy@web.example.com\" machine = \"web\" } ] }\n"
	      "\n"
	      "Options:\n"
	      "  --parallel N           at most N hosts at once (default 8)\n"
	      "  --fail-fast            after the first failure start no other host (they are 'not-attempted')\n"
	      "  --on NAME,...          only the hosts whose machine or target host matches a NAME (globs)\n"
	      "  --timeout SECS         a host's op still short of its flip after SECS stops there, undone\n"
	      "  --resume               [apply] skip the hosts the last run of FILE deployed (after a run\n"
	      "                         that was killed, or had failures)\n"
	      "  --activate, --enable   as for 'punix service deploy'; a failed (re)start is a warning\n"
	      "  --confirm-timeout SECS [apply, rollback] each host waits SECS for this run's confirmation\n"
	      "                         over a new connection and for --health; without both it flips\n"
	      "                         back by itself and the host is 'failed' (host mode, as for\n"
	      "                         'punix service deploy')\n"
	      "  --health CMD           [with --confirm-timeout] run on each host until it exits 0\n"
	      "  --vault-secrets FILE   [apply] where { from_vault = \"NAME\" } secrets are read (a JSON\n"
	      "                         object of names to strings, mode 0600, yours; read once)\n"
	      "  --dry-run              [apply] each host into <deployments-root>/.dry-run/<user@host_port>/\n"
	      "  --transport-root DIR   each host into DIR/<user@host_port>/ on this machine (a rehearsal:\n"
	      "                         no SSH)\n"
	      "  --json                 one JSON object with every host's status\n"
	      "  --known-hosts, --key, --mode, --remote-punix, --deployments-root, --unit-dir,\n"
	      "  --supervisor-conf, --store-root, --state-dir   as for 'punix service'\n"
	      "\n"
	      "Exit status: 0 every selected host ok (or the fleet has no hosts); 1 a host failed, was\n"
	      "blocked or not attempted, or the fleet file has errors (printed as 'punix check' prints them);\n"
	      "2 usage, a fleet file that is missing, unreadable or a directory, or --on selecting no host;\n"
	      "4 another run of this fleet file is in progress.\n",
	      stdout);
}

#include "fleet.h"

static double now_secs(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* "deploy@web.example.com_22" from "ssh://deploy@web.example.com:22"; "local" for this machine. */
static void host_names(struct host *h)
{
	const char *t = h->h->target;
	if (!strcmp(t, "local")) {
		h->name = xstrdup("local");
		h->where = xstrdup("local");
		return;
	}
	const char *s = t + strlen("ssh://");
	const char *at = strchr(s, '@');
	const char *host = at ? at + 1 : s;
	const char *colon = strrchr(host, ':');
	size_t hl = colon ? (size_t)(colon - host) : strlen(host);
	h->name = xstrndup(host, hl);
	struct sbuf w = SBUF_INIT;
	sbuf_printf(&w, "%.*s_%s", (int)(colon ? (size_t)(colon - s) : strlen(s)), s, colon ? colon + 1 : "22");
	h->where = sbuf_detach(&w, NULL);
}

/* Whether --on selects the host: a NAME (glob) matching its machine or its target's host. */
static bool selected(const struct host *h, const char *on)
{
	if (!on)
		return true;
	size_t n;
	char **names = cli_split_commas(on, &n);
	bool yes = false;
	for (size_t i = 0; i < n && !yes; i++)
		yes = fnmatch(names[i], h->name, 0) == 0 || (h->h->machine && fnmatch(names[i], h->h->machine, 0) == 0);
	cli_free_strings(names, n);
	return yes;
}

void host_fail(struct host *h, enum host_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct sbuf m = SBUF_INIT;
	sbuf_vprintf(&m, fmt, ap);
	va_end(ap);
	/* one line in the report */
	for (size_t i = 0; i < m.sb_len; i++)
		if (m.sb_buf[i] == '\n')
			m.sb_buf[i] = ' ';
	free(h->message);
	h->message = sbuf_detach(&m, NULL);
	h->status = st;
}

/*
 * The host's program: FILE relative to the fleet's directory, never an
 * absolute path or one that leads out of it. 0, or <0 with the host failed.
 */
static int load_host(struct host *h, const char *fleet_dir)
{
	const char *f = h->h->file;
	if (f[0] == '/') {
		host_fail(h, H_FAILED, "host file '%s' is absolute; name it relative to the fleet's file", f);
		return -1;
	}
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p, "%s/%s", fleet_dir, f);
	const char *why = NULL;
	char *canon = path_canonical(p.sb_buf, NULL, &why);
	sbuf_free(&p);
	size_t dl = strlen(fleet_dir);
	if (!canon || strncmp(canon, fleet_dir, dl) || (canon[dl] != '/' && strcmp(fleet_dir, "/"))) {
		host_fail(h, H_FAILED, "host file '%s' leads out of the fleet's directory %s%s%s", f, fleet_dir,
			  why ? ": " : "", why ? why : "");
		free(canon);
		return -1;
	}
	char *real = NULL;
	int r = ops_local()->realpath(ops_local(), canon, &real);
	if (r == 0 && (strncmp(real, fleet_dir, dl) || (real[dl] != '/' && strcmp(fleet_dir, "/")))) {
		host_fail(h, H_FAILED, "host file '%s' leads out of the fleet's directory %s (through a symlink)", f,
			  fleet_dir);
		free(real);
		free(canon);
		return -1;
	}
	char *buf = NULL;
	size_t len = 0;
	if (r == 0)
		r = ops_local()->read_file(ops_local(), real, PCL_MAX_SOURCE_BYTES, &buf, &len);
	if (r < 0) {
		host_fail(h, H_FAILED, "host file %s: %s", canon, strerror(-r));
		free(real);
		free(canon);
		return -1;
	}
	h->prog = pcl_program_new();
	pcl_program_add_source(h->prog, canon, buf, len);
	free(buf);
	if (pcl_program_check(h->prog)) {
		const struct pcl_diag *d = pcl_program_diag(h->prog, 0);
		host_fail(h, H_FAILED, "%s:%u:%u: [E%d] %s%s", d->d_loc.file, d->d_loc.line, d->d_loc.col, d->d_code,
			  d->d_message, pcl_program_error_count(h->prog) > 1 ? " (and more: punix check the file)" : "");
	} else {
		const struct stack_desc *st = pcl_program_stack(h->prog, h->h->stack);
		if (!st)
			host_fail(h, H_FAILED, "[E2] %s has no stack module '%s'", canon, h->h->stack);
		h->in.stack = st;
		h->in.npkgs = pcl_program_packages(h->prog, &h->in.pkgs);
	}
	h->tree = ops_dirname(real);
	h->in.tree_root = h->tree;
	free(real);
	free(canon);
	return h->status == H_FAILED ? -1 : 0;
}

/* Where the host's op lands: its target, or a directory of this machine standing in for it. */
struct target_spec host_target(struct fleet_run *fr, struct host *h)
{
	const struct fleet_opts *o = fr->o;
	struct target_spec t = {
		.known_hosts = o->known_hosts,
		.key = o->key,
		.deployments_root = fr->dep,
		.unit_dir = fr->udir,
		.ssh_defaults = &fr->pl->ssh,
		.mode = o->mode,
		.remote_punix = o->remote_punix,
		.activate = o->activate,
		.enable = o->enable,
		.confirm_timeout = o->confirm_timeout,
		.health = o->health,
		.supervisor_conf = o->supervisor_conf,
	};
	const char *base = o->dry_run ? NULL : o->transport_root;
	if (o->dry_run || base) {
		struct sbuf r = SBUF_INIT;
		if (o->dry_run)
			sbuf_printf(&r, "%s/.dry-run/%s", fr->dep, h->where);
		else
			sbuf_printf(&r, "%s/%s", base, h->where);
		free(h->troot);
		h->troot = sbuf_detach(&r, NULL);
		t.transport_root = h->troot;
	} else if (strcmp(h->h->target, "local") != 0) {
		t.ssh = h->h->target;
	}
	return t;
}

static void start_next(struct fleet_run *fr);

/* A step's name as the operator reads it. */
static const char *phase_of(const char *step)
{
	static const struct {
		const char *step, *phase;
	} map[] = {
		{"plan", "planning"},	     {"build", "building"},	       {"stage", "pushing and staging"},
		{"push", "pushing"},	     {"verify", "verifying pins"},     {"flip", "flipping"},
		{"run", "running on the target"}, {"materialise", "materialising"}, {"activate", "activating"},
		{"confirm", "waiting for confirmation"},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].step, step))
			return map[i].phase;
	return step;
}

static void draw(struct fleet_run *fr, struct host *changed)
{
	if (!fr->live)
		return;
	if (!fr->redraw) {
		if (changed)
			fprintf(stderr, "host %-*s : %s\n", fr->width, changed->name, changed->phase);
		return;
	}
	if (fr->nlive)
		fprintf(stderr, "\033[%zuA", fr->nlive);
	size_t k = 0;
	for (size_t i = 0; i < fr->n; i++) {
		struct host *h = &fr->hosts[i];
		if (!h->selected)
			continue;
		fprintf(stderr, "\033[2K\rhost %-*s : %s\n", fr->width, h->name, h->phase ? h->phase : "waiting");
		k++;
	}
	fr->nlive = k;
	fflush(stderr);
}

static void host_progress(void *arg, const char *step, uint64_t op_id)
{
	struct host *h = arg;
	h->phase = phase_of(step);
	if (op_id && !h->op_recorded) {
		engine_fleet_host(h->run->rec, h->index, op_id, "running");
		h->op_recorded = true;
	}
	draw(h->run, h);
}

static void host_done(void *arg, struct op_result *r)
{
	struct host *h = arg;
	struct fleet_run *fr = h->run;
	h->secs = now_secs() - h->started;
	fr->running--;
	h->generation = r->generation;
	h->previous = r->previous;
	bool rollback = !strcmp(fr->o->sub, "rollback");
	if (r->exit == 0) {
		h->status = H_OK;
		struct sbuf m = SBUF_INIT;
		sbuf_printf(&m, "%s: gen-%03ld", rollback ? "rolled back" : "deployed", r->generation);
		if (r->failed_units) {
			sbuf_printf(&h->warn, "%zu unit(s) did not (re)start: %s", r->failed_units, sbuf_str(&r->failed));
			sbuf_printf(&m, " (warning: %s)", h->warn.sb_buf);
		}
		h->message = sbuf_detach(&m, NULL);
	} else {
		host_fail(h, r->exit == 4 ? H_BLOCKED : H_FAILED, "%s", cli_reason(r->error.sb_buf, "no reason was given"));
		fr->failed++;
		if (fr->o->fail_fast)
			fr->stop = true;
	}
	h->phase = h->status == H_OK ? "done" : "failed";
	engine_fleet_host(fr->rec, h->index, r->op_id, status_names[h->status]);
	draw(fr, h);
	start_next(fr);
	if (fr->running == 0 && fr->rec) {
		/* nothing more will start: the run's record ends (hosts not started stay 'pending') */
		engine_fleet_end(fr->rec);
		fr->rec = NULL;
	}
}

static void start_next(struct fleet_run *fr)
{
	while (!fr->stop && fr->next < fr->n && fr->running < (size_t)fr->o->parallel) {
		struct host *h = &fr->hosts[fr->order[fr->next++]];
		if (!h->selected || h->status != H_PENDING)
			continue;
		struct target_spec t = host_target(fr, h);
		struct op_request q = {.target = t};
		if (!strcmp(fr->o->sub, "apply")) {
			q.type = OP_DEPLOY;
			q.deploy = &h->in;
		} else {
			q.type = OP_ROLLBACK;
			q.stack = h->h->stack;
		}
		h->started = now_secs();
		fr->running++;
		q.progress = host_progress;
		q.progress_arg = h;
		q.timeout = fr->o->timeout;
		engine_submit(fr->e, &q, host_done, h);
	}
}
/* ---- the command --------------------------------------------------------------------------- */

static int parse(struct cli_ctx *cx, int argc, char **argv, struct fleet_opts *o)
{
	static const struct option longopts[] = {
		{"parallel", required_argument, NULL, 'p'},
		{"fail-fast", no_argument, NULL, 'F'},
		{"timeout", required_argument, NULL, 't'},
		{"resume", no_argument, NULL, 'r'},
		{"on", required_argument, NULL, 'o'},
		{"activate", no_argument, NULL, 'a'},
		{"enable", no_argument, NULL, 'e'},
		{"dry-run", no_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"transport-root", required_argument, NULL, 'T'},
		{"deployments-root", required_argument, NULL, 'D'},
		{"unit-dir", required_argument, NULL, 'U'},
		{"store-root", required_argument, NULL, 'S'},
		{"state-dir", required_argument, NULL, 'J'},
		{"known-hosts", required_argument, NULL, 'k'},
		{"key", required_argument, NULL, 'i'},
		{"mode", required_argument, NULL, 'M'},
		{"remote-punix", required_argument, NULL, 'R'},
		{"confirm-timeout", required_argument, NULL, 'W'},
		{"supervisor-conf", required_argument, NULL, 'C'},
		{"health", required_argument, NULL, 'H'},
		{"vault-secrets", required_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	o->parallel = 8;
	int c;
	optind = 1;
	char name[40];
	snprintf(name, sizeof(name), "fleet %s", o->sub);
	while ((c = cli_getopt(cx, argc, argv, longopts, name)) != -1) {
		switch (c) {
		case 'p': {
			char *end;
			o->parallel = strtol(optarg, &end, 10);
			if (*end || o->parallel < 1 || o->parallel > 1024)
				return cli_fail(cx, EXIT_USAGE, "--parallel needs a number of hosts from 1 to 1024, got '%s'", optarg);
			break;
		}
		case 'F': o->fail_fast = true; break;
		case 'r': o->resume = true; break;
		case 't': {
			char *end;
			o->timeout = strtol(optarg, &end, 10);
			if (*end || o->timeout < 1)
				return cli_fail(cx, EXIT_USAGE, "--timeout needs a number of seconds (1 or more), got '%s'", optarg);
			break;
		}
		case 'W': {
			char *end;
			o->confirm_timeout = strtol(optarg, &end, 10);
			if (*end || o->confirm_timeout < 1 || o->confirm_timeout > 86400)
				return cli_fail(cx, EXIT_USAGE, "--confirm-timeout needs a number of seconds (1 to 86400), got '%s'",
						optarg);
			break;
		}
		case 'H': o->health = optarg; break;
		case 'C': o->supervisor_conf = optarg; break;
		case 'V': o->vault = optarg; break;
		case 'o': o->on = optarg; break;
		case 'a': o->activate = true; break;
		case 'e': o->enable = true; break;
		case 'n': o->dry_run = true; break;
		case 'j': o->json = true; break;
		case 'T': o->transport_root = optarg; break;
		case 'D': o->deployments_root = optarg; break;
		case 'U': o->unit_dir = optarg; break;
		case 'S': o->store_root = optarg; break;
		case 'J': o->state_dir = optarg; break;
		case 'k': o->known_hosts = optarg; break;
		case 'i': o->key = optarg; break;
		case 'R': o->remote_punix = optarg; break;
		case 'M':
			if (cli_parse_mode(cx, optarg, &o->mode) != EXIT_OK)
				return EXIT_USAGE;
			break;
		case 'h': cmd_fleet_help(); return -1;
		default: return cli_usage(cx, FLEET_USAGE);
		}
	}
	if (argc - optind != 1)
		return cli_usage(cx, FLEET_USAGE);
	o->file = argv[optind];
	if (o->enable && !o->activate)
		return cli_fail(cx, EXIT_USAGE, "--enable goes with --activate");
	if (strcmp(o->sub, "apply") && (o->dry_run || o->resume))
		return cli_fail(cx, EXIT_USAGE, "--dry-run and --resume go with apply");
	if (strcmp(o->sub, "apply") && o->vault)
		return cli_fail(cx, EXIT_USAGE, "--vault-secrets goes with apply (its from_vault secrets)");
	if (!strcmp(o->sub, "status") && (o->activate || o->fail_fast))
		return cli_fail(cx, EXIT_USAGE, "--activate and --fail-fast go with apply and rollback");
	if ((o->confirm_timeout || o->health) && !strcmp(o->sub, "status"))
		return cli_fail(cx, EXIT_USAGE, "--confirm-timeout and --health go with apply and rollback");
	if (o->health && !o->confirm_timeout)
		return cli_fail(cx, EXIT_USAGE, "--health goes with --confirm-timeout SECS");
	if (o->dry_run && o->transport_root)
		return cli_fail(cx, EXIT_USAGE, "--dry-run already rebases each host (under the deployments root's .dry-run)");
	if (o->remote_punix && o->remote_punix[0] != '/')
		return cli_fail(cx, EXIT_USAGE, "--remote-punix needs an absolute path on the target, got '%s'", o->remote_punix);
	const char *paths[] = {o->transport_root, o->deployments_root, o->unit_dir, o->supervisor_conf};
	const char *names[] = {"--transport-root", "--deployments-root", "--unit-dir", "--supervisor-conf"};
	for (int i = 0; i < 4; i++)
		if (paths[i] && paths[i][0] != '/')
			return cli_fail(cx, EXIT_USAGE, "%s needs an absolute path, got '%s'", names[i], paths[i]);
	return EXIT_OK;
}

/* The fleet module of the fleet file: exactly one. */
static const struct fleet_desc *the_fleet(struct cli_ctx *cx, struct pcl_program *prog, const char *file, int *rc)
{
	const struct fleet_desc *f = NULL;
	for (size_t i = 0; i < pcl_program_nmodules(prog); i++) {
		const struct pcl_module *m = pcl_program_module(prog, i);
		if (m->m_kind != PCL_KIND_FLEET)
			continue;
		if (f) {
			*rc = cli_fail(cx, EXIT_ERROR, "%s holds more than one fleet module ('%s' and '%s'); one file, one fleet",
				       file, f->name, m->m_name);
			return NULL;
		}
		f = pcl_program_fleet(prog, m->m_name);
	}
	if (!f)
		*rc = cli_fail(cx, EXIT_ERROR, "[E2] %s has no fleet module (a module with 'hosts')", file);
	return f;
}

int cmd_fleet(struct cli_ctx *cx, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(cx, FLEET_USAGE);
	struct fleet_opts o = {.json = cx->json};
	o.sub = argv[1];
	if (!strcmp(o.sub, "-h") || !strcmp(o.sub, "--help")) {
		cmd_fleet_help();
		return EXIT_OK;
	}
	if (strcmp(o.sub, "apply") && strcmp(o.sub, "rollback") && strcmp(o.sub, "status")) {
		static const char *const subs[] = {"apply", "rollback", "status"};
		const char *near = cli_nearest(o.sub, subs, 3);
		if (near)
			return cli_fail(cx, EXIT_USAGE, "unknown fleet command '%s' (did you mean '%s'?)", o.sub, near);
		return cli_fail(cx, EXIT_USAGE, "unknown fleet command '%s' (apply, rollback, status)", o.sub);
	}
	int rc = parse(cx, argc - 1, argv + 1, &o);
	if (rc != EXIT_OK)
		return rc < 0 ? EXIT_OK : rc;
	struct ops_stat fst;
	int sr = ops_local()->stat(ops_local(), o.file, 1, &fst);
	if (sr < 0)
		return cli_fail(cx, EXIT_USAGE, "%s: %s", o.file, strerror(-sr));
	if (fst.type != OPS_FT_REG)
		return cli_fail(cx, EXIT_USAGE, "'%s' is not a file: punix fleet takes the file that holds the fleet module "
					    "(its hosts' files are found relative to it)", o.file);
	char *args[] = {(char *)o.file};
	struct pcl_program *prog = NULL;
	rc = cli_load_program(cx, ops_local(), args, 1, &prog, NULL);
	if (rc != EXIT_OK)
		return rc;
	if (pcl_program_check(prog)) {
		cli_print_diags(cx, prog);
		pcl_program_free(prog);
		return EXIT_ERROR;
	}
	const struct fleet_desc *f = the_fleet(cx, prog, o.file, &rc);
	struct cli_places pl;
	memset(&pl, 0, sizeof(pl));
	struct fleet_run fr = {.cx = cx, .o = &o, .pl = &pl};
	char *fleet_real = NULL, *fleet_dir = NULL;
	struct store st;
	bool have_store = false;
	if (f && ops_local()->realpath(ops_local(), o.file, &fleet_real) < 0)
		rc = cli_fail(cx, EXIT_USAGE, "%s: %s", o.file, strerror(errno));
	if (f && rc == EXIT_OK)
		rc = cli_places_init(cx, &pl, o.store_root);
	if (f && rc == EXIT_OK)
		rc = cli_places_set(cx, &pl, o.deployments_root, o.state_dir);
	if (f && rc == EXIT_OK)
		rc = cli_places_vault(cx, &pl, o.vault);
	if (!f || rc != EXIT_OK)
		goto out;
	fleet_dir = ops_dirname(fleet_real);
	const char *why = NULL;
	fr.udir = path_canonical(o.unit_dir ? o.unit_dir : "/etc/systemd/system", NULL, &why);
	fr.dep = xstrdup(pl.deployments);
	char *troot = o.transport_root ? path_canonical(o.transport_root, NULL, &why) : NULL;
	if ((o.transport_root && !troot) || !fr.udir) {
		rc = cli_fail(cx, EXIT_USAGE, "a root cannot be used: %s", why ? why : "?");
		free(troot);
		goto out;
	}
	o.transport_root = troot;
	fr.n = f->nhosts;
	fr.hosts = xcalloc(fr.n + 1, sizeof(*fr.hosts));
	fr.order = xcalloc(fr.n + 1, sizeof(*fr.order));
	int width = 0;
	size_t nsel = 0;
	for (size_t i = 0; i < fr.n; i++) {
		struct host *h = &fr.hosts[i];
		h->h = &f->hosts[i];
		h->run = &fr;
		host_names(h);
		h->selected = selected(h, o.on);
		h->in.adopt = NULL;
		nsel += h->selected;
		if (h->selected && (int)strlen(h->name) > width)
			width = (int)strlen(h->name);
		/* rollback in reverse declared order */
		fr.order[i] = strcmp(o.sub, "rollback") ? i : fr.n - 1 - i;
		if (h->selected && !strcmp(o.sub, "apply"))
			load_host(h, fleet_dir);
	}
	if (!fr.n) {
		fprintf(stderr, "fleet %s in %s has no hosts: nothing to do\n", f->name, o.file);
		json_t *none = json_pack("{s:[]}", "hosts");
		if (strcmp(o.sub, "status"))
			json_object_set_new(none, "op", json_string(o.sub));
		rc = o.json ? cli_json_out(cx, none, EXIT_OK) : (json_decref(none), EXIT_OK);
		goto out_o;
	}
	if (!nsel) {
		rc = cli_fail(cx, EXIT_USAGE, "--on %s selects none of the fleet's %zu host(s)", o.on ? o.on : "", fr.n);
		goto out_o;
	}
	if (!strcmp(o.sub, "status")) {
		rc = fleet_status(&fr, width);
		goto out_o;
	}
	rc = cli_open_store(cx, &st, &pl, STORE_CREATE);
	if (rc != EXIT_OK)
		goto out_o;
	have_store = true;
	/*
	 * Each host in flight may hold a worker of libuv's pool for a whole
	 * step (a build, an SSH call): a pool as wide as the hosts at once, so
	 * a quick host does not queue behind the others' builds (read by libuv
	 * when the pool starts; an operator's own setting is kept).
	 */
	if (!getenv("UV_THREADPOOL_SIZE")) {
		char n[32];
		long w = 2 * o.parallel < 4 ? 4 : 2 * o.parallel > 128 ? 128 : 2 * o.parallel;
		snprintf(n, sizeof(n), "%ld", w);
		setenv("UV_THREADPOOL_SIZE", n, 1);
	}
	fr.e = cli_engine(cx, &pl, &st);
	if (!fr.e) {
		rc = cli_engine_exit(cx, &pl);
		goto out_o;
	}
	/* a rebased host's root is made as a deploy makes its target's root */
	for (size_t i = 0; i < fr.n; i++) {
		struct host *h = &fr.hosts[i];
		if (h->selected && h->status == H_PENDING && (o.transport_root || o.dry_run)) {
			struct target_spec t = host_target(&fr, h);
			int r = ops_mkdir_p(ops_local(), t.transport_root, 0755);
			if (r < 0)
				host_fail(h, H_FAILED, "cannot create %s: %s", t.transport_root, strerror(-r));
		}
		if (h->status == H_FAILED && o.fail_fast && !strcmp(o.sub, "apply"))
			fr.stop = true;
	}
	/*
	 * Progress on standard error (never mixed into the report on standard
	 * output): one line per host redrawn in place on a terminal; a plain
	 * line per change when it is not one, or with NO_COLOR; none with --json.
	 */
	const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
	fr.width = width;
	fr.live = !o.json;
	fr.redraw = fr.live && isatty(2) && !(nc && *nc) && term && strcmp(term, "dumb");
	/* --resume: what the last run of this file deployed is not deployed again */
	if (o.resume) {
		char **done = NULL;
		size_t ndone = 0;
		uint64_t run = 0;
		struct sbuf rerr = SBUF_INIT;
		if (engine_fleet_finished(fr.e, fleet_real, &done, &ndone, &run, &rerr) < 0) {
			rc = cli_fail(cx, EXIT_FAILURE_, "--resume: %s", rerr.sb_buf);
			sbuf_free(&rerr);
			engine_close(fr.e);
			goto out_o;
		}
		sbuf_free(&rerr);
		for (size_t i = 0; i < fr.n; i++) {
			struct host *h = &fr.hosts[i];
			struct sbuf k = SBUF_INIT;
			sbuf_printf(&k, "%s\t%s\t%s", h->name, h->h->stack, h->h->target);
			for (size_t d = 0; d < ndone && h->selected; d++)
				if (!strcmp(done[d], k.sb_buf)) {
					h->status = H_OK;
					free(h->message);
					struct sbuf m = SBUF_INIT;
					sbuf_printf(&m, "already deployed (recorded by run %llu): not deployed again", (unsigned long long)run);
					h->message = sbuf_detach(&m, NULL);
					h->phase = "done";
				}
			sbuf_free(&k);
		}
		cli_free_strings(done, ndone);
	}
	/* the run itself, in the journal: which hosts finished, if it is killed */
	VEC(struct engine_fleet_host) recs = {0};
	for (size_t i = 0; i < fr.n; i++)
		if (fr.hosts[i].selected) {
			fr.hosts[i].index = recs.n;
			struct engine_fleet_host eh = {fr.hosts[i].name, fr.hosts[i].h->stack, fr.hosts[i].h->target};
			VEC_PUSH(&recs, eh);
		}
	struct sbuf ferr = SBUF_INIT;
	fr.rec = engine_fleet_begin(fr.e, fleet_real, recs.v, recs.n, &ferr);
	VEC_FREE(&recs);
	if (!fr.rec) {
		rc = cli_fail(cx, strstr(sbuf_str(&ferr), "busy") ? EXIT_LOCKED : EXIT_FAILURE_, "%s", sbuf_str(&ferr));
		sbuf_free(&ferr);
		engine_close(fr.e);
		goto out_o;
	}
	sbuf_free(&ferr);
	/* what --resume carries over stays deployed in this run's record too */
	for (size_t i = 0; i < fr.n; i++)
		if (fr.hosts[i].selected && fr.hosts[i].status == H_OK)
			engine_fleet_host(fr.rec, fr.hosts[i].index, 0, "ok");
	draw(&fr, NULL);
	start_next(&fr);
	if (fr.running == 0 && fr.rec) {
		engine_fleet_end(fr.rec); /* no host could start */
		fr.rec = NULL;
	}
	engine_run(fr.e);
	rc = fleet_print_report(&fr, width);
	engine_close(fr.e);
out_o:
	free((char *)o.transport_root);
out:
	for (size_t i = 0; i < fr.n; i++) {
		struct host *h = &fr.hosts[i];
		free(h->name);
		free(h->where);
		free(h->message);
		free(h->tree);
		free(h->troot);
		sbuf_free(&h->warn);
		if (h->prog)
			pcl_program_free(h->prog);
	}
	free(fr.hosts);
	free(fr.order);
	free(fr.udir);
	free(fr.dep);
	free(fleet_real);
	free(fleet_dir);
	if (have_store)
		store_close(&st);
	if (f || pl.home)
		cli_places_free(&pl);
	pcl_program_free(prog);
	return rc;
}
