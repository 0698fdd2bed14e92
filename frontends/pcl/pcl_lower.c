/*
 * pcl_lower.c - from checked values to the plain descriptions the store and
 * the engine consume, and the canonical encoding of values that hashes use.
 *
 * Lowering trusts the checker: it runs only on a program with no errors,
 * so every required field is present with its type.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "pcl_internal.h"

void pcl_value_canonical(const struct pcl_value *v, struct sbuf *out)
{
	switch (v->v_kind) {
	case PCL_V_STR:
		sbuf_printf(out, "s%zu:", v->v_str.len);
		sbuf_append(out, v->v_str.s, v->v_str.len);
		return;
	case PCL_V_INT:
		sbuf_printf(out, "i%lld;", (long long)v->v_int);
		return;
	case PCL_V_BOOL:
		sbuf_puts(out, v->v_bool ? "b1" : "b0");
		return;
	case PCL_V_LIST:
		sbuf_printf(out, "l%zu[", v->v_list.n);
		for (size_t i = 0; i < v->v_list.n; i++)
			pcl_value_canonical(v->v_list.items[i], out);
		sbuf_putc(out, ']');
		return;
	case PCL_V_REC:
		/* fields are stored sorted by name: the order written never shows */
		sbuf_printf(out, "r%zu{", v->v_rec.n);
		for (size_t i = 0; i < v->v_rec.n; i++) {
			sbuf_printf(out, "%zu:%s", strlen(v->v_rec.fields[i].f_name), v->v_rec.fields[i].f_name);
			pcl_value_canonical(v->v_rec.fields[i].f_value, out);
		}
		sbuf_putc(out, '}');
		return;
	case PCL_V_OUT:
		sbuf_printf(out, "o%zu:%s", strlen(v->v_out.module), v->v_out.module);
		return;
	case PCL_V_FMT:
		/* the text with its store paths left open: the same whatever they build to */
		sbuf_printf(out, "f%zu:", v->v_str.len);
		sbuf_append(out, v->v_str.s, v->v_str.len);
		return;
	case PCL_V_SECRET:
		sbuf_printf(out, "%c%zu:%s",
			    v->v_secret.source == PCL_SECRET_ENV	? 'e'
			    : v->v_secret.source == PCL_SECRET_VAULT ? 'v'
								     : 'f',
			    strlen(v->v_secret.name), v->v_secret.name);
		return;
	case PCL_V_ERROR:
		break;
	}
	assert(!"an error value has no canonical encoding");
	abort();
}

/* The engine's kind of a secret (desc.h). */
static enum env_kind secret_kind(const struct pcl_value *v)
{
	switch (v->v_secret.source) {
	case PCL_SECRET_ENV: return ENV_FROM_ENV;
	case PCL_SECRET_VAULT: return ENV_FROM_VAULT;
	case PCL_SECRET_FILE: break;
	}
	return ENV_FROM_FILE;
}

static const char *str_field(const struct pcl_value *rec, const char *name)
{
	const struct pcl_value *v = pcl_value_field(rec, name);
	return v && v->v_kind == PCL_V_STR ? v->v_str.s : NULL;
}

static int cstr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int arch_cmp(const void *a, const void *b)
{
	return strcmp(((const struct arch_source *)a)->arch, ((const struct arch_source *)b)->arch);
}

static void lower_package(struct pcl_program *p, const struct pcl_module *m, struct pkg_desc *pkg)
{
	const struct pcl_value *v = m->m_value;
	pkg->module = m->m_name;
	pkg->loc = (struct desc_loc){m->m_loc.file, m->m_loc.line, m->m_loc.col};
	pkg->pname = str_field(v, "pname");
	pkg->version = str_field(v, "version");
	pkg->recipe = str_field(v, "recipe");
	const struct pcl_value *args = pcl_value_field(v, "recipeArgs");
	struct sbuf enc = SBUF_INIT;
	pcl_value_canonical(args, &enc);
	pkg->args = arena_strndup(&p->arena, sbuf_str(&enc), enc.sb_len);
	pkg->args_len = enc.sb_len;
	sbuf_free(&enc);
	pkg->command = str_field(args, "command");
	const struct pcl_value *src = pcl_value_field(v, "source");
	if (src) {
		const struct pcl_value *url = pcl_value_field(src, "url");
		const struct pcl_value *urls = pcl_value_field(src, "urls");
		const struct pcl_value *path = url ? url : urls ? urls : pcl_value_field(src, "path");
		const char *type = str_field(src, "type");
		const struct pcl_value *hash = pcl_value_field(src, "hash");
		const struct pcl_value *tok = pcl_value_field(src, "token");
		if (urls) {
			/* url_per_arch: the build picks its machine's; the token is the source's */
			struct arch_source *as = arena_alloc(&p->arena, (urls->v_rec.n + 1) * sizeof(*as));
			for (size_t i = 0; i < urls->v_rec.n; i++) {
				const struct pcl_vfield *f = &urls->v_rec.fields[i];
				as[i] = (struct arch_source){f->f_name, str_field(f->f_value, "url"), str_field(f->f_value, "hash")};
			}
			qsort(as, urls->v_rec.n, sizeof(*as), arch_cmp);
			pkg->arch_sources = as;
			pkg->narch_sources = urls->v_rec.n;
			if (tok && tok->v_kind == PCL_V_SECRET) {
				pkg->source_token_kind = secret_kind(tok);
				pkg->source_token = tok->v_secret.name;
			}
		} else if (url && type && !strcmp(type, "git")) {
			pkg->source_git_url = url->v_str.s;
			pkg->source_git_tag = str_field(src, "tag");
			pkg->source_sha256 = hash->v_str.s;
		} else if (url) {
			pkg->source_url = url->v_str.s;
			pkg->source_sha256 = hash->v_str.s;
			/* the token by reference only: its value is read when the file is fetched */
			if (tok && tok->v_kind == PCL_V_SECRET) {
				pkg->source_token_kind = secret_kind(tok);
				pkg->source_token = tok->v_secret.name;
			}
		} else {
			pkg->source_path = path->v_str.s;
			if (type && !strcmp(type, "fixed_output")) {
				pkg->source_fixed = true;
				pkg->source_sha256 = hash->v_str.s;
			}
		}
		pkg->source_loc = (struct desc_loc){path->v_loc.file, path->v_loc.line, path->v_loc.col};
	}
	const struct pcl_value *deps = pcl_value_field(v, "deps");
	size_t n = deps ? deps->v_list.n : 0;
	const char **names = arena_alloc(&p->arena, (n + 1) * sizeof(*names));
	for (size_t i = 0; i < n; i++) {
		const struct pcl_value *d = deps->v_list.items[i];
		names[i] = d->v_kind == PCL_V_OUT ? d->v_out.module : d->v_str.s;
	}
	qsort(names, n, sizeof(*names), cstr_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || strcmp(names[k - 1], names[i]) != 0)
			names[k++] = names[i];
	pkg->deps = names;
	pkg->ndeps = k;
}

size_t pcl_program_packages(struct pcl_program *p, const struct pkg_desc **out)
{
	assert(p->checked && p->nerrors == 0);
	if (!p->packages) {
		size_t n = 0;
		for (size_t i = 0; i < p->modules.n; i++)
			n += p->modules.v[i]->m_kind == PCL_KIND_PACKAGE;
		struct pkg_desc *pk = arena_alloc(&p->arena, (n + 1) * sizeof(*pk));
		size_t k = 0;
		for (size_t i = 0; i < p->modules.n; i++)
			if (p->modules.v[i]->m_kind == PCL_KIND_PACKAGE)
				lower_package(p, p->modules.v[i], &pk[k++]);
		p->packages = pk;
		p->npackages = n;
	}
	*out = p->packages;
	return p->npackages;
}

/* ---- stacks ------------------------------------------------------------------ */

static const char *ref_name(const struct pcl_value *v)
{
	return v->v_kind == PCL_V_OUT ? v->v_out.module : v->v_str.s;
}

/*
 * A string rendered into a file, which may hold store paths: a Str, a
 * composed string (PCL_V_FMT, already in the desc.h encoding), or Pkg.out
 * itself, encoded the same way.
 */
static const char *text_of(struct pcl_program *p, const struct pcl_value *v, size_t *len)
{
	if (v->v_kind != PCL_V_OUT) {
		*len = v->v_str.len;
		return v->v_str.s;
	}
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%c%s%c", DESC_OUT_OPEN, v->v_out.module, DESC_OUT_CLOSE);
	*len = sb.sb_len;
	const char *r = arena_strndup(&p->arena, sbuf_str(&sb), sb.sb_len);
	sbuf_free(&sb);
	return r;
}

static const char *const *text_list(struct pcl_program *p, const struct pcl_value *l, size_t *n)
{
	size_t k = l ? l->v_list.n : 0, len;
	const char **v = arena_alloc(&p->arena, (k + 1) * sizeof(*v));
	for (size_t i = 0; i < k; i++)
		v[i] = text_of(p, l->v_list.items[i], &len);
	*n = k;
	return v;
}

typedef VEC(const char *) name_vec;

/* Adds the package modules whose store paths s[0..len) holds to names. */
static void outs_of(struct pcl_program *p, const char *s, size_t len, name_vec *names)
{
	const char *end = s + len;
	while ((s = memchr(s, DESC_OUT_OPEN, (size_t)(end - s))) != NULL) {
		const char *close = memchr(s, DESC_OUT_CLOSE, (size_t)(end - s));
		VEC_PUSH(names, arena_strndup(&p->arena, s + 1, (size_t)(close - s - 1)));
		s = close + 1;
	}
}

/* The strings of a list value, sorted and unique when 'set' is true. */
static const char *const *str_list(struct pcl_program *p, const struct pcl_value *l, bool set, size_t *n)
{
	size_t k = l ? l->v_list.n : 0;
	const char **v = arena_alloc(&p->arena, (k + 1) * sizeof(*v));
	for (size_t i = 0; i < k; i++)
		v[i] = ref_name(l->v_list.items[i]);
	if (set && k > 1) {
		qsort(v, k, sizeof(*v), cstr_cmp);
		size_t m = 1;
		for (size_t i = 1; i < k; i++)
			if (strcmp(v[m - 1], v[i]) != 0)
				v[m++] = v[i];
		k = m;
	}
	*n = k;
	return v;
}

/* A record of directives; fields are stored sorted, so the result is too. */
static const struct directive *directives(struct pcl_program *p, const struct pcl_value *rec, size_t *n)
{
	size_t k = rec ? rec->v_rec.n : 0;
	struct directive *d = arena_alloc(&p->arena, (k + 1) * sizeof(*d));
	for (size_t i = 0; i < k; i++) {
		const struct pcl_value *v = rec->v_rec.fields[i].f_value;
		d[i].key = rec->v_rec.fields[i].f_name;
		if (v->v_kind == PCL_V_BOOL) {
			d[i].kind = DIRECTIVE_BOOL;
			d[i].b = v->v_bool;
		} else if (v->v_kind == PCL_V_INT) {
			d[i].kind = DIRECTIVE_INT;
			d[i].i = v->v_int;
		} else {
			d[i].kind = DIRECTIVE_STR;
			d[i].s = v->v_str.s;
		}
	}
	*n = k;
	return d;
}

/* An environment record: literals (store paths left open) and secrets by reference. */
static const struct env_desc *env_of(struct pcl_program *p, const struct pcl_value *env, size_t *nenv)
{
	size_t n = env ? env->v_rec.n : 0;
	struct env_desc *e = arena_alloc(&p->arena, (n + 1) * sizeof(*e));
	for (size_t i = 0; i < n; i++) {
		const struct pcl_value *v = env->v_rec.fields[i].f_value;
		e[i].key = env->v_rec.fields[i].f_name;
		if (v->v_kind == PCL_V_SECRET) {
			e[i].kind = secret_kind(v);
			e[i].value = v->v_secret.name;
		} else {
			size_t len;
			e[i].kind = ENV_LITERAL;
			e[i].value = text_of(p, v, &len);
		}
	}
	*nenv = n;
	return e;
}

static const struct provision_desc *lower_provision(struct pcl_program *p, const struct pcl_value *v,
						    const char *package)
{
	if (!v)
		return NULL;
	struct provision_desc *pr = arena_alloc(&p->arena, sizeof(*pr));
	pr->loc = (struct desc_loc){v->v_loc.file, v->v_loc.line, v->v_loc.col};
	const struct pcl_value *pkg = pcl_value_field(v, "package");
	pr->package = pkg ? ref_name(pkg) : package;
	pr->binary = str_field(v, "binary");
	pr->args = text_list(p, pcl_value_field(v, "args"), &pr->nargs);
	pr->env = env_of(p, pcl_value_field(v, "environment"), &pr->nenv);
	return pr;
}

static void lower_service(struct pcl_program *p, const char *name, const struct pcl_value *rec,
			  struct service_desc *s)
{
	s->name = name;
	s->package = ref_name(pcl_value_field(rec, "package"));
	s->binary = str_field(rec, "binary");
	s->args = text_list(p, pcl_value_field(rec, "args"), &s->nargs);
	s->depends_on = str_list(p, pcl_value_field(rec, "dependsOn"), true, &s->ndepends_on);
	s->env = env_of(p, pcl_value_field(rec, "environment"), &s->nenv);
	s->config = directives(p, pcl_value_field(rec, "serviceConfig"), &s->nconfig);
	const struct pcl_value *timer = pcl_value_field(rec, "timer");
	s->has_timer = timer != NULL;
	s->timer = directives(p, timer, &s->ntimer);
	s->tmpfiles = str_list(p, pcl_value_field(rec, "tmpfiles"), false, &s->ntmpfiles);
	s->provision = lower_provision(p, pcl_value_field(rec, "provision"), s->package);
}

static int service_cmp(const void *a, const void *b)
{
	return strcmp(((const struct service_desc *)a)->name, ((const struct service_desc *)b)->name);
}

static int file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct file_desc *)a)->path, ((const struct file_desc *)b)->path);
}

/* The packages whose store paths the stack's strings hold are built and pinned with it. */
static void pin_outs(struct pcl_program *p, struct stack_desc *st)
{
	name_vec names = {0};
	for (size_t i = 0; i < st->nstore_modules; i++)
		VEC_PUSH(&names, st->store_modules[i]);
	size_t before = names.n;
	for (size_t i = 0; i < st->nservices; i++) {
		const struct service_desc *s = &st->services[i];
		for (size_t k = 0; k < s->nargs; k++)
			outs_of(p, s->args[k], strlen(s->args[k]), &names);
		for (size_t k = 0; k < s->nenv; k++)
			if (s->env[k].kind == ENV_LITERAL)
				outs_of(p, s->env[k].value, strlen(s->env[k].value), &names);
		const struct provision_desc *pr = s->provision;
		for (size_t k = 0; pr && k < pr->nargs; k++)
			outs_of(p, pr->args[k], strlen(pr->args[k]), &names);
		for (size_t k = 0; pr && k < pr->nenv; k++)
			outs_of(p, pr->env[k].value, strlen(pr->env[k].value), &names);
	}
	for (size_t i = 0; i < st->nfiles; i++)
		outs_of(p, st->files[i].content, st->files[i].len, &names);
	if (names.n > before) {
		qsort(names.v, names.n, sizeof(*names.v), cstr_cmp);
		size_t m = 1;
		for (size_t i = 1; i < names.n; i++)
			if (strcmp(names.v[m - 1], names.v[i]) != 0)
				names.v[m++] = names.v[i];
		const char **v = arena_alloc(&p->arena, (m + 1) * sizeof(*v));
		memcpy(v, names.v, m * sizeof(*v));
		st->store_modules = v;
		st->nstore_modules = m;
	}
	VEC_FREE(&names);
}

const struct stack_desc *pcl_program_stack(struct pcl_program *p, const char *name)
{
	assert(p->checked && p->nerrors == 0);
	const struct pcl_module *m = pcl_program_find(p, name);
	if (!m || m->m_kind != PCL_KIND_STACK)
		return NULL;
	const struct pcl_value *v = m->m_value;
	struct stack_desc *st = arena_alloc(&p->arena, sizeof(*st));
	st->name = m->m_name;
	st->loc = (struct desc_loc){m->m_loc.file, m->m_loc.line, m->m_loc.col};
	st->backend = str_field(v, "backend");
	st->store_modules = str_list(p, pcl_value_field(v, "storeModules"), true, &st->nstore_modules);

	const struct pcl_value *svcs = pcl_value_field(v, "services");
	size_t n = svcs ? svcs->v_list.n : 0, k = 0;
	struct service_desc *sd = arena_alloc(&p->arena, (n + 1) * sizeof(*sd));
	for (size_t i = 0; i < n; i++) {
		const struct pcl_value *it = svcs->v_list.items[i];
		const struct pcl_value *rec = it;
		const char *sname;
		if (it->v_kind == PCL_V_STR) {
			const struct pcl_module *sm = pcl_program_find(p, it->v_str.s);
			rec = sm->m_value;
			sname = str_field(rec, "name") ? str_field(rec, "name") : sm->m_name;
		} else {
			sname = str_field(rec, "name");
		}
		const struct pcl_value *en = pcl_value_field(rec, "enable");
		if (en && !en->v_bool)
			continue; /* a disabled service does not exist as far as deploys go */
		lower_service(p, sname, rec, &sd[k++]);
	}
	qsort(sd, k, sizeof(*sd), service_cmp);
	st->services = sd;
	st->nservices = k;

	const struct pcl_value *cf = pcl_value_field(v, "configFiles");
	n = cf ? cf->v_list.n : 0;
	struct file_desc *fd = arena_alloc(&p->arena, (n + 1) * sizeof(*fd));
	for (size_t i = 0; i < n; i++) {
		const struct pcl_value *c = pcl_value_field(cf->v_list.items[i], "content");
		fd[i].path = str_field(cf->v_list.items[i], "path");
		fd[i].content = text_of(p, c, &fd[i].len);
	}
	qsort(fd, n, sizeof(*fd), file_cmp);
	st->files = fd;
	st->nfiles = n;
	pin_outs(p, st);

	const struct pcl_value *users = pcl_value_field(v, "systemUsers");
	n = users ? users->v_list.n : 0;
	struct user_desc *ud = arena_alloc(&p->arena, (n + 1) * sizeof(*ud));
	for (size_t i = 0; i < n; i++) {
		ud[i].name = str_field(users->v_list.items[i], "name");
		ud[i].group = str_field(users->v_list.items[i], "group");
		ud[i].home = str_field(users->v_list.items[i], "home");
	}
	qsort(ud, n, sizeof(*ud), cstr_cmp); /* name is the first member */
	st->users = ud;
	st->nusers = n;
	st->groups = str_list(p, pcl_value_field(v, "systemGroups"), true, &st->ngroups);

	struct sbuf enc = SBUF_INIT;
	pcl_value_canonical(v, &enc);
	st->source = arena_strndup(&p->arena, sbuf_str(&enc), enc.sb_len);
	st->source_len = enc.sb_len;
	sbuf_free(&enc);
	return st;
}

const struct fleet_desc *pcl_program_fleet(struct pcl_program *p, const char *name)
{
	assert(p->checked && p->nerrors == 0);
	const struct pcl_module *m = pcl_program_find(p, name);
	if (!m || m->m_kind != PCL_KIND_FLEET)
		return NULL;
	const struct pcl_value *hosts = pcl_value_field(m->m_value, "hosts");
	size_t n = hosts ? hosts->v_list.n : 0;
	struct fleet_desc *f = arena_alloc(&p->arena, sizeof(*f));
	struct fleet_host *h = arena_alloc(&p->arena, (n + 1) * sizeof(*h));
	for (size_t i = 0; i < n; i++) {
		const struct pcl_value *rec = hosts->v_list.items[i];
		h[i].file = str_field(rec, "file");
		h[i].stack = str_field(rec, "stack");
		h[i].target = str_field(rec, "target");
		h[i].machine = str_field(rec, "machine");
		h[i].loc = (struct desc_loc){rec->v_loc.file, rec->v_loc.line, rec->v_loc.col};
	}
	f->name = m->m_name;
	f->loc = (struct desc_loc){m->m_loc.file, m->m_loc.line, m->m_loc.col};
	f->hosts = h;
	f->nhosts = n;
	return f;
}
