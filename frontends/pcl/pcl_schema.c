/*
 * pcl_schema.c - module kinds, each kind's module, cross-module rules.
 *
 * A module's kind follows from its fields: 'recipe' makes a package,
 * 'backend' a stack, 'binary' with 'package' a service, 'hosts' a fleet;
 * anything else is plain data that other modules may reference. Each kind's
 * record is checked against its field table (pcl_schema_fields.c), plus the
 * rules that span fields: a std.shell package's recipeArgs, unique config
 * paths, users, groups and hosts.
 *
 * Cross-module rules come last: dependency cycles ([E7]), one pname per
 * package ([E15]), and per stack: unique service names, dependsOn targets,
 * dependsOn cycles.
 */
#include <stdlib.h>
#include <string.h>

#include "pcl_schema.h"

/* ---- uniqueness and cycles ----------------------------------------------- */

/*
 * [E3] for the second and later occurrences of one string among items,
 * where key() extracts it (or NULL to skip the item).
 */
static void check_unique(struct sctx *c, const struct pcl_value *const *items, size_t n,
			 const struct pcl_value *(*key)(const struct pcl_value *), const char *what)
{
	struct strmap seen;
	strmap_init(&seen);
	for (size_t i = 0; i < n; i++) {
		const struct pcl_value *k = key(items[i]);
		if (!k || k->v_kind != PCL_V_STR)
			continue;
		const struct pcl_value *first = strmap_put(&seen, k->v_str.s, (void *)k);
		if (first) {
			struct pcl_diag *d = pcl_error(c->p, k->v_loc, PCL_E3, "%s %s is declared twice in module '%s'",
						       what, pcl_show(c->p, k->v_str.s), c->mod->m_name);
			pcl_diag_note(d, first->v_loc, "first declared here");
		}
	}
	strmap_free(&seen);
}

static const struct pcl_value *key_self(const struct pcl_value *v)
{
	return v;
}

static const struct pcl_value *key_name(const struct pcl_value *v)
{
	return v->v_kind == PCL_V_REC ? pcl_value_field(v, "name") : NULL;
}

static const struct pcl_value *key_machine(const struct pcl_value *v)
{
	return v->v_kind == PCL_V_REC ? pcl_value_field(v, "machine") : NULL;
}

static const struct pcl_value *key_path(const struct pcl_value *v)
{
	return v->v_kind == PCL_V_REC ? pcl_value_field(v, "path") : NULL;
}

static void unique_in_list(struct sctx *c, const struct pcl_value *rec, const char *field,
			   const struct pcl_value *(*key)(const struct pcl_value *), const char *what)
{
	const struct pcl_value *l = pcl_value_field(rec, field);
	if (l && l->v_kind == PCL_V_LIST)
		check_unique(c, (const struct pcl_value *const *)l->v_list.items, l->v_list.n, key, what);
}

/*
 * A directed graph over n nodes; an edge carries the value that wrote it,
 * so a cycle is reported at the reference that closes it.
 */
struct edge {
	size_t to;
	const struct pcl_value *at;
};

struct graph {
	size_t n;
	const char **names;
	VEC(struct edge) * out;
};

static void graph_init(struct graph *g, size_t n)
{
	g->n = n;
	g->names = xcalloc(n + 1, sizeof(*g->names));
	g->out = xcalloc(n + 1, sizeof(*g->out));
}

static void graph_free(struct graph *g)
{
	for (size_t i = 0; i < g->n; i++)
		VEC_FREE(&g->out[i]);
	free(g->out);
	free(g->names);
}

/* Iterative DFS (chains of 10^5 packages must not exhaust the C stack). */
static void graph_report_cycles(struct pcl_program *p, struct graph *g, const char *what)
{
	enum { WHITE, GREY, BLACK };
	unsigned char *color = xcalloc(g->n + 1, 1);
	size_t *next = xcalloc(g->n + 1, sizeof(*next));
	VEC(size_t) stack = {0};
	for (size_t root = 0; root < g->n; root++) {
		if (color[root] != WHITE)
			continue;
		VEC_PUSH(&stack, root);
		color[root] = GREY;
		while (stack.n) {
			size_t u = stack.v[stack.n - 1];
			if (next[u] == g->out[u].n) {
				color[u] = BLACK;
				stack.n--;
				continue;
			}
			struct edge e = g->out[u].v[next[u]++];
			if (color[e.to] == WHITE) {
				color[e.to] = GREY;
				VEC_PUSH(&stack, e.to);
			} else if (color[e.to] == GREY) {
				struct sbuf chain = SBUF_INIT;
				size_t k = stack.n;
				while (k > 0 && stack.v[k - 1] != e.to)
					k--;
				for (size_t i = k ? k - 1 : 0; i < stack.n; i++)
					sbuf_printf(&chain, "%s -> ", g->names[stack.v[i]]);
				sbuf_puts(&chain, g->names[e.to]);
				pcl_error(p, e.at->v_loc, PCL_E7, "%s cycle: %s", what, sbuf_str(&chain));
				sbuf_free(&chain);
			}
		}
	}
	VEC_FREE(&stack);
	free(next);
	free(color);
}

static size_t module_index(struct pcl_program *p, const char *name)
{
	/* by the program's name table (one hash), not a search of the sorted array */
	const struct pcl_decl *d = strmap_get(&p->by_name, name);
	return d && !d->duplicate ? d->index : (size_t)-1;
}

static void check_package_graph(struct pcl_program *p)
{
	struct graph g;
	graph_init(&g, p->modules.n);
	for (size_t i = 0; i < p->modules.n; i++) {
		const struct pcl_module *m = p->modules.v[i];
		g.names[i] = m->m_name;
		if (m->m_kind != PCL_KIND_PACKAGE)
			continue;
		const struct pcl_value *deps = pcl_value_field(m->m_value, "deps");
		if (!deps || deps->v_kind != PCL_V_LIST)
			continue;
		for (size_t j = 0; j < deps->v_list.n; j++) {
			const struct pcl_value *d = deps->v_list.items[j];
			const char *name = d->v_kind == PCL_V_STR ? d->v_str.s : d->v_kind == PCL_V_OUT ? d->v_out.module : NULL;
			size_t to = name ? module_index(p, name) : (size_t)-1;
			if (to == (size_t)-1 || p->modules.v[to]->m_kind != PCL_KIND_PACKAGE)
				continue;
			struct edge e = {to, d};
			VEC_PUSH(&g.out[i], e);
		}
	}
	graph_report_cycles(p, &g, "dependency");
	graph_free(&g);
}

static void check_pnames(struct pcl_program *p)
{
	struct strmap seen;
	strmap_init(&seen);
	for (size_t i = 0; i < p->modules.n; i++) {
		const struct pcl_module *m = p->modules.v[i];
		if (m->m_kind != PCL_KIND_PACKAGE)
			continue;
		const struct pcl_value *pn = pcl_value_field(m->m_value, "pname");
		if (!pn || pn->v_kind != PCL_V_STR)
			continue;
		const struct pcl_module *first = strmap_put(&seen, pn->v_str.s, (void *)m);
		if (first) {
			const struct pcl_value *fpn = pcl_value_field(first->m_value, "pname");
			struct pcl_diag *d = pcl_error(p, pn->v_loc, PCL_E15,
						       "packages '%s' and '%s' both have pname %s", first->m_name,
						       m->m_name, pcl_show(p, pn->v_str.s));
			pcl_diag_note(d, fpn->v_loc, "'%s' sets it here", first->m_name);
		}
	}
	strmap_free(&seen);
}

/* One service of a stack, inline or from a module, for cross checks. */
struct svc {
	const char *name;
	const struct pcl_value *rec;
	bool enabled;
};

static void check_stack_services(struct sctx *c, const struct pcl_value *stack)
{
	const struct pcl_value *l = pcl_value_field(stack, "services");
	if (!l || l->v_kind != PCL_V_LIST)
		return;
	struct svc *svcs = xcalloc(l->v_list.n + 1, sizeof(*svcs));
	const struct pcl_value **names = xcalloc(l->v_list.n + 1, sizeof(*names));
	size_t n = 0;
	for (size_t i = 0; i < l->v_list.n; i++) {
		const struct pcl_value *it = l->v_list.items[i];
		const struct pcl_value *rec = NULL, *name = NULL;
		const char *sname = NULL;
		if (it->v_kind == PCL_V_REC) {
			rec = it;
			name = pcl_value_field(rec, "name");
			sname = name && name->v_kind == PCL_V_STR ? name->v_str.s : NULL;
		} else if (it->v_kind == PCL_V_STR) {
			const struct pcl_module *m = pcl_program_find(c->p, it->v_str.s);
			if (!m || m->m_kind != PCL_KIND_SERVICE)
				continue;
			rec = m->m_value;
			name = pcl_value_field(rec, "name");
			sname = name && name->v_kind == PCL_V_STR ? name->v_str.s : m->m_name;
			name = it; /* report duplicates where the stack lists the module */
		}
		if (!sname)
			continue;
		const struct pcl_value *en = pcl_value_field(rec, "enable");
		svcs[n].name = sname;
		svcs[n].rec = rec;
		svcs[n].enabled = !(en && en->v_kind == PCL_V_BOOL && !en->v_bool);
		names[n] = name;
		n++;
	}

	struct strmap by;
	strmap_init(&by);
	for (size_t i = 0; i < n; i++) {
		const struct svc *first = strmap_put(&by, svcs[i].name, &svcs[i]);
		if (first) {
			struct pcl_diag *d = pcl_error(c->p, names[i]->v_loc, PCL_E3,
						       "service %s is declared twice in stack '%s'",
						       pcl_show(c->p, svcs[i].name), c->mod->m_name);
			pcl_diag_note(d, names[first - svcs]->v_loc, "first declared here");
		}
	}

	struct graph g;
	graph_init(&g, n);
	const char **cands = xcalloc(n + 1, sizeof(*cands));
	for (size_t i = 0; i < n; i++)
		cands[i] = g.names[i] = svcs[i].name;
	for (size_t i = 0; i < n; i++) {
		const struct pcl_value *deps = pcl_value_field(svcs[i].rec, "dependsOn");
		if (!deps || deps->v_kind != PCL_V_LIST)
			continue;
		for (size_t j = 0; j < deps->v_list.n; j++) {
			const struct pcl_value *d = deps->v_list.items[j];
			if (d->v_kind != PCL_V_STR)
				continue;
			const struct svc *t = strmap_get(&by, d->v_str.s);
			if (!t) {
				struct pcl_diag *e = pcl_error(c->p, d->v_loc, PCL_E2,
							       "service %s depends on %s, which stack '%s' does not have",
							       pcl_show(c->p, svcs[i].name), pcl_show(c->p, d->v_str.s),
							       c->mod->m_name);
				const char *s = pcl_suggest(d->v_str.s, cands, n);
				if (s)
					pcl_diag_hint(e, "did you mean '%s'?", s);
				continue;
			}
			if (!t->enabled && svcs[i].enabled) {
				pcl_error(c->p, d->v_loc, PCL_E6,
					  "service %s depends on %s, which is disabled (enable = false)",
					  pcl_show(c->p, svcs[i].name), pcl_show(c->p, t->name));
				continue;
			}
			struct edge e = {(size_t)(t - svcs), d};
			VEC_PUSH(&g.out[i], e);
		}
	}
	graph_report_cycles(c->p, &g, "dependsOn");
	graph_free(&g);
	free(cands);
	strmap_free(&by);
	free(names);
	free(svcs);
}

/* ---- each kind's module ------------------------------------------------- */

static void check_package(struct sctx *c, const struct pcl_value *v)
{
	pcl_check_fields(c, v, pcl_package_fields.spec, pcl_package_fields.n, NULL);
	const struct pcl_value *recipe = pcl_value_field(v, "recipe");
	const struct pcl_value *args = pcl_value_field(v, "recipeArgs");
	if (recipe && args && recipe->v_kind == PCL_V_STR && args->v_kind == PCL_V_REC &&
	    strcmp(recipe->v_str.s, "std.shell") == 0) {
		size_t saved = pcl_path_push_field(c, "recipeArgs");
		pcl_check_fields(c, args, pcl_shell_args_fields.spec, pcl_shell_args_fields.n, NULL);
		pcl_path_pop(c, saved);
	}
}

static void check_service_module(struct sctx *c, const struct pcl_value *v)
{
	pcl_check_fields(c, v, pcl_service_module_fields.spec, pcl_service_module_fields.n, NULL);
	pcl_check_service_rules(c, v);
}

static void check_stack(struct sctx *c, const struct pcl_value *v)
{
	pcl_check_fields(c, v, pcl_stack_fields.spec, pcl_stack_fields.n, NULL);
	unique_in_list(c, v, "configFiles", key_path, "config file");
	unique_in_list(c, v, "systemUsers", key_name, "system user");
	unique_in_list(c, v, "systemGroups", key_self, "system group");
	check_stack_services(c, v);
}

static void check_fleet(struct sctx *c, const struct pcl_value *v)
{
	pcl_check_fields(c, v, pcl_fleet_fields.spec, pcl_fleet_fields.n, NULL);
	unique_in_list(c, v, "hosts", key_machine, "machine");
}

/* ---- kinds ----------------------------------------------------------------- */

static enum pcl_kind classify(struct pcl_program *p, const struct pcl_module *m)
{
	const struct pcl_value *v = m->m_value;
	if (!v || v->v_kind != PCL_V_REC)
		return PCL_KIND_DATA;
	struct {
		enum pcl_kind k;
		const char *why;
		bool has;
	} kinds[] = {
		{PCL_KIND_PACKAGE, "'recipe'", pcl_value_field(v, "recipe") != NULL},
		{PCL_KIND_STACK, "'backend'", pcl_value_field(v, "backend") != NULL},
		{PCL_KIND_SERVICE, "'binary' and 'package'",
		 pcl_value_field(v, "binary") && pcl_value_field(v, "package")},
		{PCL_KIND_FLEET, "'hosts'", pcl_value_field(v, "hosts") != NULL},
	};
	int found = -1;
	for (int i = 0; i < (int)NELEM(kinds); i++) {
		if (!kinds[i].has)
			continue;
		if (found >= 0) {
			pcl_error(p, m->m_loc, PCL_E6, "module '%s' has the fields of %s module (%s) and of %s module (%s)",
				  m->m_name, pcl_kind_article(kinds[found].k), kinds[found].why,
				  pcl_kind_article(kinds[i].k), kinds[i].why);
			return PCL_KIND_DATA;
		}
		found = i;
	}
	return found < 0 ? PCL_KIND_DATA : kinds[found].k;
}

void pcl_schema_check(struct pcl_program *p)
{
	for (size_t i = 0; i < p->modules.n; i++) {
		struct pcl_module *m = (struct pcl_module *)p->modules.v[i];
		m->m_kind = classify(p, m);
	}
	struct sctx c = {0};
	c.p = p;
	for (size_t i = 0; i < p->modules.n; i++) {
		c.mod = p->modules.v[i];
		const struct pcl_value *v = c.mod->m_value;
		sbuf_reset(&c.path);
		switch (c.mod->m_kind) {
		case PCL_KIND_PACKAGE: check_package(&c, v); break;
		case PCL_KIND_STACK: check_stack(&c, v); break;
		case PCL_KIND_SERVICE: check_service_module(&c, v); break;
		case PCL_KIND_FLEET: check_fleet(&c, v); break;
		case PCL_KIND_DATA: break;
		}
	}
	sbuf_free(&c.path);
	check_package_graph(p);
	check_pnames(p);
}
