/*
 * pcl_eval.c - resolve references, evaluate modules into values, infer types.
 *
 * Evaluation is lazy per module-level field: a reference A.x evaluates only
 * field x of module A, so a module may refer to its own other fields. A
 * field met again while it is being evaluated closes a reference cycle
 * ([E7]); the chain of fields being evaluated is kept for the message and
 * bounded by PCL_MAX_REF_CHAIN, which also bounds the C recursion.
 *
 * Types: Bool, Int, Str (maybe secret), List<T>, Rec{k: T}. A list's element
 * type is the unification of its items' types: records unify to the union
 * of their keys (keys present in only some become optional), the empty list
 * unifies with any list, anything else that differs is [E1].
 *
 * Where an error was reported the value is PCL_V_ERROR, which unifies with
 * everything and is skipped by the schema checks, so one mistake is
 * reported once.
 *
 * Types are hash-consed: one object per distinct list or record type, so
 * 10^5 packages of one shape share one record type, and types that are
 * the same object unify at once.
 */
#include <stdlib.h>
#include <string.h>

#include "pcl_internal.h"

enum pcl_tkind {
	PCL_TY_ANY, /* the type of an error: agrees with everything */
	PCL_TY_EMPTY, /* the element type of [] */
	PCL_TY_BOOL,
	PCL_TY_INT,
	PCL_TY_STR,
	PCL_TY_LIST,
	PCL_TY_REC,
};

struct pcl_tfield {
	const char *name;
	const struct pcl_type *type;
	bool optional;
};

struct pcl_type {
	enum pcl_tkind k;
	bool secret;                 /* PCL_TY_STR only */
	const struct pcl_type *elem; /* PCL_TY_LIST */
	const struct pcl_tfield *fields; /* PCL_TY_REC, sorted by name */
	size_t n;
};

static const struct pcl_type ty_any = {PCL_TY_ANY, false, NULL, NULL, 0};
static const struct pcl_type ty_empty = {PCL_TY_EMPTY, false, NULL, NULL, 0};
static const struct pcl_type ty_bool = {PCL_TY_BOOL, false, NULL, NULL, 0};
static const struct pcl_type ty_int = {PCL_TY_INT, false, NULL, NULL, 0};
static const struct pcl_type ty_str = {PCL_TY_STR, false, NULL, NULL, 0};
static const struct pcl_type ty_secret = {PCL_TY_STR, true, NULL, NULL, 0};

/* ---- hash-consing ---------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t x)
{
	h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdULL;
}

/* Field names are interned and component types are hash-consed: pointers compare. */
static uint64_t type_hash(enum pcl_tkind k, const struct pcl_type *elem, const struct pcl_tfield *f, size_t n)
{
	uint64_t h = mix((uint64_t)k, (uint64_t)(uintptr_t)elem);
	for (size_t i = 0; i < n; i++)
		h = mix(mix(mix(h, (uint64_t)(uintptr_t)f[i].name), (uint64_t)(uintptr_t)f[i].type), f[i].optional);
	return h;
}

static bool type_is(const struct pcl_type *t, enum pcl_tkind k, const struct pcl_type *elem,
		    const struct pcl_tfield *f, size_t n)
{
	if (t->k != k || t->elem != elem || t->n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (t->fields[i].name != f[i].name || t->fields[i].type != f[i].type ||
		    t->fields[i].optional != f[i].optional)
			return false;
	return true;
}

/*
 * The one list type of elem, or record type of the fields f[0..n) (copied
 * when new: f may be scratch).
 */
static const struct pcl_type *cons_type(struct pcl_program *p, enum pcl_tkind k, const struct pcl_type *elem,
					const struct pcl_tfield *f, size_t n)
{
	struct pcl_types *ts = &p->types;
	if ((ts->n + 1) * 2 > ts->cap) {
		struct pcl_types old = *ts;
		ts->cap = old.cap ? old.cap * 2 : 256;
		ts->slots = xcalloc(ts->cap, sizeof(*ts->slots));
		for (size_t i = 0; i < old.cap; i++) {
			const struct pcl_type *t = old.slots[i];
			if (!t)
				continue;
			size_t j = (size_t)type_hash(t->k, t->elem, t->fields, t->n) & (ts->cap - 1);
			while (ts->slots[j])
				j = (j + 1) & (ts->cap - 1);
			ts->slots[j] = t;
		}
		free(old.slots);
	}
	size_t mask = ts->cap - 1;
	size_t j = (size_t)type_hash(k, elem, f, n) & mask;
	for (; ts->slots[j]; j = (j + 1) & mask)
		if (type_is(ts->slots[j], k, elem, f, n))
			return ts->slots[j];
	struct pcl_type *t = arena_alloc(&p->arena, sizeof(*t));
	t->k = k;
	t->elem = elem;
	t->fields = n ? arena_memdup(&p->arena, f, n * sizeof(*f)) : NULL;
	t->n = n;
	ts->slots[j] = t;
	ts->n++;
	return t;
}

static const struct pcl_type *list_type(struct pcl_program *p, const struct pcl_type *elem)
{
	return cons_type(p, PCL_TY_LIST, elem, NULL, 0);
}

/* Scratch for the fields of a record type being built (freed with the program). */
static struct pcl_tfield *tfield_scratch(struct pcl_program *p, size_t n)
{
	VEC_RESERVE(&p->tscratch, n + 1);
	return p->tscratch.v;
}

/* Returns the unified type, or NULL when a and b disagree. */
static const struct pcl_type *unify(struct pcl_program *p, const struct pcl_type *a, const struct pcl_type *b)
{
	if (a == b)
		return a;
	if (a->k == PCL_TY_ANY || a->k == PCL_TY_EMPTY)
		return b;
	if (b->k == PCL_TY_ANY || b->k == PCL_TY_EMPTY)
		return a;
	if (a->k != b->k)
		return NULL;
	switch (a->k) {
	case PCL_TY_STR:
		return a->secret ? a : b; /* a list holding one secret is a list of secrets */
	case PCL_TY_LIST: {
		const struct pcl_type *e = unify(p, a->elem, b->elem);
		if (!e)
			return NULL;
		return e == a->elem ? a : e == b->elem ? b : list_type(p, e);
	}
	case PCL_TY_REC: {
		/* not scratch: unifying the fields' types may build records too */
		struct pcl_tfield *f = xmalloc((a->n + b->n + 1) * sizeof(*f));
		size_t i = 0, j = 0, n = 0;
		while (i < a->n || j < b->n) {
			int c = i == a->n ? 1 : j == b->n ? -1 : strcmp(a->fields[i].name, b->fields[j].name);
			if (c < 0) {
				f[n] = a->fields[i++];
				f[n++].optional = true;
			} else if (c > 0) {
				f[n] = b->fields[j++];
				f[n++].optional = true;
			} else {
				const struct pcl_type *t = unify(p, a->fields[i].type, b->fields[j].type);
				if (!t) {
					free(f);
					return NULL;
				}
				f[n].name = a->fields[i].name;
				f[n].type = t;
				f[n++].optional = a->fields[i].optional || b->fields[j].optional;
				i++, j++;
			}
		}
		const struct pcl_type *t = cons_type(p, PCL_TY_REC, NULL, f, n);
		free(f);
		return t;
	}
	default:
		return a;
	}
}

static void type_write(const struct pcl_type *t, struct sbuf *out, int depth)
{
	switch (t->k) {
	case PCL_TY_ANY: sbuf_puts(out, "?"); return;
	case PCL_TY_EMPTY: sbuf_puts(out, "?"); return;
	case PCL_TY_BOOL: sbuf_puts(out, "Bool"); return;
	case PCL_TY_INT: sbuf_puts(out, "Int"); return;
	case PCL_TY_STR: sbuf_puts(out, t->secret ? "Str (secret)" : "Str"); return;
	case PCL_TY_LIST:
		sbuf_puts(out, "List<");
		type_write(t->elem, out, depth + 1);
		sbuf_puts(out, ">");
		return;
	case PCL_TY_REC:
		if (depth >= 2) {
			sbuf_puts(out, "Rec{...}");
			return;
		}
		sbuf_puts(out, "Rec{");
		for (size_t i = 0; i < t->n; i++) {
			if (i == 4) {
				sbuf_puts(out, ", ...");
				break;
			}
			sbuf_printf(out, "%s%s%s: ", i ? ", " : "", t->fields[i].name, t->fields[i].optional ? "?" : "");
			type_write(t->fields[i].type, out, depth + 1);
		}
		sbuf_puts(out, "}");
		return;
	}
}

void pcl_type_name(const struct pcl_value *v, struct sbuf *out)
{
	if (v->v_kind == PCL_V_OUT || v->v_kind == PCL_V_FMT) {
		sbuf_puts(out, "Str (holding a store path)");
		return;
	}
	type_write(v->v_type ? v->v_type : &ty_any, out, 0);
}

/* ---- values ------------------------------------------------------------ */

/* Values are built on the stack and stored into their node (or the arena). */
static struct pcl_value value_of(enum pcl_vkind k, struct pcl_loc loc, const struct pcl_type *t)
{
	struct pcl_value v;
	memset(&v, 0, sizeof(v));
	v.v_kind = k;
	v.v_loc = loc;
	v.v_type = t;
	return v;
}

static struct pcl_value error_val(struct pcl_loc loc)
{
	return value_of(PCL_V_ERROR, loc, &ty_any);
}

/* An error value of its own, standing in where a field's own value cannot go. */
static struct pcl_value *error_value(struct pcl_program *p, struct pcl_loc loc)
{
	struct pcl_value *v = arena_alloc(&p->arena, sizeof(*v));
	*v = error_val(loc);
	return v;
}

static struct pcl_node *node_of(struct pcl_value *v)
{
	return (struct pcl_node *)((char *)v - offsetof(struct pcl_node, lit));
}

static bool is_env_name(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* A vault entry's name: 1 to 128 letters, digits or '_.-'. */
static bool is_vault_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 128)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '.' || *s == '-'))
			return false;
	return true;
}

static bool is_secret_field(const char *name)
{
	return !strcmp(name, "from_env") || !strcmp(name, "from_file") || !strcmp(name, "from_vault");
}

/* { from_env = "NAME" }, { from_file = "/abs" } or { from_vault = "NAME" }: a secret, checked here. */
static struct pcl_value make_secret(struct pcl_program *p, struct pcl_loc loc, const struct pcl_vfield *f)
{
	const struct pcl_value *src = f->f_value;
	bool env = strcmp(f->f_name, "from_env") == 0, vault = strcmp(f->f_name, "from_vault") == 0;
	if (src->v_kind == PCL_V_ERROR)
		return error_val(loc);
	if (src->v_kind != PCL_V_STR) {
		struct sbuf t = SBUF_INIT;
		pcl_type_name(src, &t);
		pcl_error(p, src->v_loc, PCL_E1, "type mismatch in '%s': expected Str, got %s", f->f_name, sbuf_str(&t));
		sbuf_free(&t);
		return error_val(loc);
	}
	const char *s = src->v_str.s;
	if (env && !is_env_name(s)) {
		struct pcl_diag *d =
			pcl_error(p, src->v_loc, PCL_E6, "%s is not a valid environment variable name", pcl_show(p, s));
		pcl_diag_hint(d, "names are letters, digits and '_', not starting with a digit");
		return error_val(loc);
	}
	if (vault && !is_vault_name(s)) {
		struct pcl_diag *d =
			pcl_error(p, src->v_loc, PCL_E6, "%s is not a valid vault entry name", pcl_show(p, s));
		pcl_diag_hint(d, "names are 1 to 128 letters, digits or '_.-'; the entry is read from the "
				 "--vault-secrets file");
		return error_val(loc);
	}
	if (!env && !vault && (s[0] != '/' || strpbrk(s, "\n\r") != NULL)) {
		pcl_error(p, src->v_loc, PCL_E6, "'from_file' needs an absolute path, got %s", pcl_show(p, s));
		return error_val(loc);
	}
	struct pcl_value v = value_of(PCL_V_SECRET, loc, &ty_secret);
	v.v_secret.source = env ? PCL_SECRET_ENV : vault ? PCL_SECRET_VAULT : PCL_SECRET_FILE;
	v.v_secret.name = s;
	return v;
}

static int vfield_cmp(const void *a, const void *b)
{
	const struct pcl_vfield *x = a, *y = b;
	int c = x->f_name == y->f_name ? 0 : strcmp(x->f_name, y->f_name);
	if (c)
		return c;
	/* Same name: keep source order, so the first one wins. */
	if (x->f_loc.line != y->f_loc.line)
		return x->f_loc.line < y->f_loc.line ? -1 : 1;
	return x->f_loc.col < y->f_loc.col ? -1 : x->f_loc.col > y->f_loc.col;
}

/* Sorts vf[0..n) by name (insertion sort for the few fields records have). */
static void sort_fields(struct pcl_vfield *vf, size_t n)
{
	if (n > 16) {
		qsort(vf, n, sizeof(*vf), vfield_cmp);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct pcl_vfield x = vf[i];
		size_t j = i;
		for (; j > 0 && vfield_cmp(&vf[j - 1], &x) > 0; j--)
			vf[j] = vf[j - 1];
		vf[j] = x;
	}
}

/*
 * Builds a record from evaluated fields vf[0..n), sorted in place: a name
 * given twice is [E3], and a lone from_env/from_file/from_vault is a secret.
 */
static struct pcl_value build_record(struct pcl_program *p, struct pcl_loc loc, struct pcl_vfield *vf, size_t n,
				     bool secret_ok)
{
	sort_fields(vf, n);
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m && strcmp(vf[m - 1].f_name, vf[i].f_name) == 0) {
			struct pcl_diag *d = pcl_error(p, vf[i].f_loc, PCL_E3, "field '%s' is set twice", vf[i].f_name);
			pcl_diag_note(d, vf[m - 1].f_loc, "first set here");
			continue;
		}
		vf[m++] = vf[i];
	}
	if (secret_ok && m == 1 && is_secret_field(vf[0].f_name))
		return make_secret(p, loc, &vf[0]);

	struct pcl_tfield *tf = tfield_scratch(p, m);
	for (size_t i = 0; i < m; i++) {
		tf[i].name = vf[i].f_name;
		tf[i].type = vf[i].f_value->v_type;
		tf[i].optional = false;
	}
	struct pcl_value v = value_of(PCL_V_REC, loc, cons_type(p, PCL_TY_REC, NULL, tf, m));
	v.v_rec.fields = vf;
	v.v_rec.n = m;
	return v;
}

static struct pcl_value *eval_node(struct pcl_program *p, struct pcl_node *n);

static struct pcl_value eval_list(struct pcl_program *p, struct pcl_loc loc, struct pcl_value **items, size_t count)
{
	const struct pcl_type *elem = &ty_empty;
	bool reported = false;
	for (size_t i = 0; i < count; i++) {
		items[i] = eval_node(p, node_of(items[i]));
		const struct pcl_type *u = unify(p, elem, items[i]->v_type);
		if (!u) {
			if (!reported) {
				struct sbuf want = SBUF_INIT, got = SBUF_INIT;
				type_write(elem, &want, 0);
				pcl_type_name(items[i], &got);
				struct pcl_diag *d = pcl_error(p, items[i]->v_loc, PCL_E1,
							       "list elements must have one type: this one is %s, "
							       "the ones before it are %s",
							       sbuf_str(&got), sbuf_str(&want));
				if (elem->k == PCL_TY_REC && items[i]->v_type->k == PCL_TY_REC)
					pcl_diag_hint(d, "records in one list must agree on the fields they share; "
							 "services of different shapes can be listed as service modules by name");
				sbuf_free(&want);
				sbuf_free(&got);
			}
			reported = true;
			continue;
		}
		elem = u;
	}
	struct pcl_value v = value_of(PCL_V_LIST, loc, reported ? &ty_any : list_type(p, elem));
	v.v_list.items = items;
	v.v_list.n = count;
	return v;
}

/*
 * The field of a module's body that a reference to name reaches: the first
 * in source order. Once the module is evaluated its fields are sorted, and
 * the first of a name is still the one written first (the sort keeps source
 * order among equal names, and repeats end up after the unique ones).
 */
static struct pcl_vfield *body_field(const struct pcl_node *body, const char *name)
{
	for (size_t i = 0; i < body->rec.n; i++)
		if (strcmp(body->rec.fields[i].f_name, name) == 0)
			return &body->rec.fields[i];
	return NULL;
}

static void report_cycle(struct pcl_program *p, struct pcl_loc at, const char *mod, const char *field)
{
	struct sbuf chain = SBUF_INIT;
	size_t start = 0;
	for (size_t i = p->eval_stack.n; i-- > 0;) {
		if (strcmp(p->eval_stack_mod.v[i], mod) == 0 &&
		    (field ? p->eval_stack.v[i] && strcmp(p->eval_stack.v[i], field) == 0 : !p->eval_stack.v[i])) {
			start = i;
			break;
		}
	}
	for (size_t i = start; i < p->eval_stack.n; i++) {
		const char *f = p->eval_stack.v[i];
		sbuf_printf(&chain, "%s%s", p->eval_stack_mod.v[i], f ? "." : "");
		if (f)
			sbuf_puts(&chain, f);
		sbuf_puts(&chain, " -> ");
	}
	sbuf_printf(&chain, "%s%s%s", mod, field ? "." : "", field ? field : "");
	pcl_error(p, at, PCL_E7, "reference cycle: %s", sbuf_str(&chain));
	sbuf_free(&chain);
}

static bool push_eval(struct pcl_program *p, struct pcl_loc at, const char *mod, const char *field)
{
	if (p->eval_stack.n >= PCL_MAX_REF_CHAIN) {
		pcl_error(p, at, PCL_E7, "reference chain longer than %d links", PCL_MAX_REF_CHAIN);
		return false;
	}
	VEC_PUSH(&p->eval_stack, field);
	VEC_PUSH(&p->eval_stack_mod, mod);
	return true;
}

static void pop_eval(struct pcl_program *p)
{
	p->eval_stack.n--;
	p->eval_stack_mod.n--;
}

/*
 * A module-level field's value: its node's, or an error value of its own
 * when the field closes a cycle or a chain too long (the field keeps the
 * value it gets when its own evaluation finishes).
 */
static struct pcl_value *eval_field(struct pcl_program *p, struct pcl_decl *d, const struct pcl_vfield *f,
				    struct pcl_loc at)
{
	struct pcl_node *n = node_of(f->f_value);
	if (n->kind == PCL_N_DONE)
		return &n->lit;
	if (n->kind == PCL_N_BUSY) {
		report_cycle(p, at, d->name, f->f_name);
		return error_value(p, at);
	}
	if (!push_eval(p, at, d->name, f->f_name))
		return error_value(p, at);
	struct pcl_value *v = eval_node(p, n);
	pop_eval(p);
	return v;
}

static struct pcl_value *eval_module(struct pcl_program *p, struct pcl_decl *d, struct pcl_loc at)
{
	if (d->state == PCL_EVAL_DONE)
		return (struct pcl_value *)d->module.m_value;
	if (d->state == PCL_EVAL_BUSY) {
		report_cycle(p, at, d->name, NULL);
		return error_value(p, at);
	}
	if (!push_eval(p, at, d->name, NULL))
		return error_value(p, at);
	d->state = PCL_EVAL_BUSY;
	struct pcl_node *body = d->body;
	struct pcl_vfield *vf = body->rec.fields;
	size_t n = body->rec.n;
	/* The results, on a stack shared with the modules this one's fields evaluate. */
	size_t base = p->eval_results.n;
	bool stand_in = false;
	for (size_t i = 0; i < n; i++) {
		struct pcl_value *r = eval_field(p, d, &vf[i], vf[i].f_loc);
		stand_in |= r != vf[i].f_value;
		VEC_PUSH(&p->eval_results, r);
	}
	if (stand_in) {
		/* The record holds the stand-ins; the body keeps the fields' own values. */
		vf = arena_memdup(&p->arena, vf, n * sizeof(*vf) + 1);
		for (size_t i = 0; i < n; i++)
			vf[i].f_value = p->eval_results.v[base + i];
	}
	p->eval_results.n = base;
	struct pcl_value *v = arena_alloc(&p->arena, sizeof(*v));
	*v = build_record(p, d->loc, vf, n, false);
	d->module.m_value = v;
	d->state = PCL_EVAL_DONE;
	pop_eval(p);
	return v;
}

/* A resolved value, pointing at the place that referenced it. */
static struct pcl_value at_use_site(const struct pcl_value *v, struct pcl_loc loc)
{
	struct pcl_value c = *v;
	c.v_loc = loc;
	return c;
}

/* in_string: the reference is a "${...}" (an unknown module may be a literal "${" of old). */
static struct pcl_value eval_ref(struct pcl_program *p, struct pcl_loc loc, const char *const *parts,
				 const struct pcl_loc *locs, size_t nparts, bool in_string)
{
	const char *name = parts[0];
	struct pcl_decl *d = strmap_get(&p->by_name, name);
	if (!d) {
		struct pcl_diag *e = pcl_error(p, locs[0], PCL_E2, "unknown module '%s'", name);
		const char **names = xmalloc((p->decls.n + 1) * sizeof(*names));
		for (size_t i = 0; i < p->decls.n; i++)
			names[i] = p->decls.v[i]->name;
		const char *s = pcl_suggest(name, names, p->decls.n);
		const char *lit = in_string ? "'$${' writes a literal '${'" : NULL;
		if (s)
			pcl_diag_hint(e, "did you mean '%s'?%s%s%s", s, lit ? " (" : "", lit ? lit : "", lit ? ")" : "");
		else if (lit)
			pcl_diag_hint(e, "%s", lit);
		free(names);
		return error_val(loc);
	}
	if (nparts == 1)
		return at_use_site(eval_module(p, d, loc), loc);

	const char *member = parts[1];
	bool is_package = body_field(d->body, "recipe") != NULL;
	if (is_package && strcmp(member, "out") == 0) {
		if (nparts > 2) {
			pcl_error(p, locs[2], PCL_E2, "'%s.out' is a store path (Str) and has no member '%s'", name,
				  parts[2]);
			return error_val(loc);
		}
		struct pcl_value out = value_of(PCL_V_OUT, loc, &ty_str);
		out.v_out.module = d->name;
		return out;
	}
	const struct pcl_vfield *f = body_field(d->body, member);
	if (!f) {
		struct pcl_diag *e = pcl_error(p, locs[1], PCL_E2, "module '%s' has no field '%s'", name, member);
		const char **names = xmalloc((d->body->rec.n + 2) * sizeof(*names));
		size_t k = 0;
		for (size_t i = 0; i < d->body->rec.n; i++)
			names[k++] = d->body->rec.fields[i].f_name;
		if (is_package)
			names[k++] = "out";
		const char *s = pcl_suggest(member, names, k);
		if (s)
			pcl_diag_hint(e, "did you mean '%s'?", s);
		free(names);
		return error_val(loc);
	}
	const struct pcl_value *v = eval_field(p, d, f, loc);
	for (size_t i = 2; i < nparts && v->v_kind != PCL_V_ERROR; i++) {
		if (v->v_kind != PCL_V_REC) {
			struct sbuf t = SBUF_INIT;
			pcl_type_name(v, &t);
			pcl_error(p, locs[i], PCL_E2, "'%s' is %s, which has no member '%s'", parts[i - 1], sbuf_str(&t),
				  parts[i]);
			sbuf_free(&t);
			return error_val(loc);
		}
		const struct pcl_value *next = pcl_value_field(v, parts[i]);
		if (!next) {
			struct pcl_diag *e =
				pcl_error(p, locs[i], PCL_E2, "'%s' has no field '%s'", parts[i - 1], parts[i]);
			const char **names = xmalloc((v->v_rec.n + 1) * sizeof(*names));
			for (size_t j = 0; j < v->v_rec.n; j++)
				names[j] = v->v_rec.fields[j].f_name;
			const char *s = pcl_suggest(parts[i], names, v->v_rec.n);
			if (s)
				pcl_diag_hint(e, "did you mean '%s'?", s);
			free(names);
			return error_val(loc);
		}
		v = next;
	}
	if (v->v_kind == PCL_V_ERROR)
		return error_val(loc);
	return at_use_site(v, loc);
}

/*
 * A string with "${ref}"s: each reference's value written into the text.
 * Str and Int (in decimal) parts fold into a plain Str; a package's store
 * path (Pkg.out, or a string holding one) makes the whole a PCL_V_FMT.
 * Anything else is [E1] at the '${'; a secret never goes into a string.
 */
static struct pcl_value eval_fmt(struct pcl_program *p, struct pcl_node *n)
{
	struct pcl_loc loc = n->loc;
	const char *text = n->fmt.text;
	size_t len = n->fmt.len, done = 0;
	const struct pcl_interp *items = n->fmt.items;
	size_t count = n->fmt.n;
	struct sbuf sb = SBUF_INIT;
	bool built = false, bad = false;
	for (size_t i = 0; i < count; i++) {
		const struct pcl_interp *in = &items[i];
		sbuf_append(&sb, text + done, in->at - done);
		done = in->at;
		struct pcl_value v = eval_ref(p, in->loc, in->parts, in->locs, in->n, true);
		switch (v.v_kind) {
		case PCL_V_FMT:
			built = true;
			/* fall through */
		case PCL_V_STR:
			sbuf_append(&sb, v.v_str.s, v.v_str.len);
			continue;
		case PCL_V_INT:
			sbuf_printf(&sb, "%lld", (long long)v.v_int);
			continue;
		case PCL_V_OUT:
			built = true;
			sbuf_printf(&sb, "%c%s%c", PCL_OUT_OPEN, v.v_out.module, PCL_OUT_CLOSE);
			continue;
		case PCL_V_ERROR:
			break;
		case PCL_V_SECRET: {
			struct sbuf r = SBUF_INIT;
			for (size_t k = 0; k < in->n; k++)
				sbuf_printf(&r, "%s%s", k ? "." : "", in->parts[k]);
			struct pcl_diag *d = pcl_error(p, in->loc, PCL_E1,
						       "secrets cannot be put in strings: '%s' is resolved only at deploy time",
						       sbuf_str(&r));
			sbuf_free(&r);
			pcl_diag_hint(d, "give the secret a service's environment variable of its own: "
					 "environment = { X = { from_env = \"NAME\" } }");
			break;
		}
		default: {
			struct sbuf t = SBUF_INIT;
			pcl_type_name(&v, &t);
			struct pcl_diag *d = pcl_error(p, in->loc, PCL_E1, "cannot interpolate a %s into a string", sbuf_str(&t));
			pcl_diag_hint(d, "only a Str, an Int or a package's .out can go in '${...}'");
			sbuf_free(&t);
			break;
		}
		}
		bad = true;
	}
	sbuf_append(&sb, text + done, len - done);
	struct pcl_value v = bad ? error_val(loc) : value_of(built ? PCL_V_FMT : PCL_V_STR, loc, &ty_str);
	if (!bad) {
		v.v_str.len = sb.sb_len;
		v.v_str.s = arena_strndup(&p->arena, sbuf_str(&sb), sb.sb_len);
	}
	sbuf_free(&sb);
	return v;
}

/* n's value, n being of kind k (its kind field already says PCL_N_BUSY). */
static struct pcl_value eval_kind(struct pcl_program *p, struct pcl_node *n, enum pcl_node_kind k)
{
	struct pcl_value v;
	switch (k) {
	case PCL_N_STR:
	case PCL_N_INT:
	case PCL_N_BOOL:
		v = n->lit;
		v.v_type = k == PCL_N_STR ? &ty_str : k == PCL_N_INT ? &ty_int : &ty_bool;
		return v;
	case PCL_N_LIST:
		return eval_list(p, n->loc, n->list.items, n->list.n);
	case PCL_N_REC: {
		struct pcl_vfield *vf = n->rec.fields;
		for (size_t i = 0; i < n->rec.n; i++)
			vf[i].f_value = eval_node(p, node_of(vf[i].f_value));
		return build_record(p, n->loc, vf, n->rec.n, true);
	}
	case PCL_N_REF:
		return eval_ref(p, n->loc, n->ref.parts, n->ref.locs, n->ref.n, false);
	case PCL_N_FMT:
		return eval_fmt(p, n);
	case PCL_N_ERROR:
	case PCL_N_BUSY:
	case PCL_N_DONE:
		break;
	}
	return error_val(n->loc);
}

/*
 * Evaluates n into itself, once: afterwards it is PCL_N_DONE and its value
 * is &n->lit.
 *
 * Nesting is bounded where values are written (the parser) and again where
 * references put values inside values: a chain of modules each nesting the
 * next could otherwise build one value deep enough to exhaust the stack.
 */
static struct pcl_value *eval_node(struct pcl_program *p, struct pcl_node *n)
{
	enum pcl_node_kind k = n->kind;
	if (k == PCL_N_DONE || k == PCL_N_BUSY)
		return &n->lit; /* BUSY: only module-level fields, which eval_field reports */
	bool nests = k == PCL_N_LIST || k == PCL_N_REC;
	struct pcl_value v;
	if (nests && p->value_depth >= PCL_MAX_DEPTH) {
		if (!p->deep_reported)
			pcl_error(p, n->loc, PCL_E0,
				  "values nested more than %d levels deep once references are followed", PCL_MAX_DEPTH);
		p->deep_reported = true;
		v = error_val(n->loc);
	} else {
		n->kind = PCL_N_BUSY;
		p->value_depth += nests;
		v = eval_kind(p, n, k);
		p->value_depth -= nests;
	}
	n->lit = v;
	n->kind = PCL_N_DONE;
	return &n->lit;
}

void pcl_eval_all(struct pcl_program *p)
{
	for (size_t i = 0; i < p->modules.n; i++) {
		struct pcl_decl *d = (struct pcl_decl *)((const char *)p->modules.v[i] - offsetof(struct pcl_decl, module));
		eval_module(p, d, d->loc);
	}
	/* Later declarations of a taken name are still checked for errors. */
	for (size_t i = 0; i < p->decls.n; i++)
		if (p->decls.v[i]->duplicate)
			eval_module(p, p->decls.v[i], p->decls.v[i]->loc);
}
