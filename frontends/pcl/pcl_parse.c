/*
 * pcl_parse.c - recursive-descent parser from tokens to the syntax tree.
 *
 *   program := { "module" IDENT record }
 *   record  := "{" { IDENT "=" expr [ "," | ";" ] } "}"
 *   list    := "[" [ expr { [ "," ] expr } [ "," ] ] "]"
 *   expr    := STRING | INT | "true" | "false" | record | list | ref
 *   ref     := IDENT { "." IDENT }
 *
 * A STRING may hold "${ref}"s, read by the lexer (pcl_lex.c): it becomes a
 * PCL_N_FMT node, evaluated into one string by pcl_eval.c.
 *
 * "module", "true" and "false" are ordinary identifiers everywhere but at
 * the top level and in value position respectively.
 *
 * Recursion is bounded by PCL_MAX_DEPTH: a deeper value is one error and is
 * skipped without recursing. After a syntax error the parser resynchronises
 * at the next field of the enclosing record (an identifier followed by '='),
 * its closing brace, or the next module, so later errors are still found and
 * cascades are rare.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pcl_internal.h"

struct parser {
	struct pcl_program *p;
	struct pcl_lexer lx;
	struct pcl_token cur;
	struct pcl_token next; /* one token of lookahead past cur */
	bool unclosed_reported; /* one "missing '}'" per declaration, not one per level */
	size_t lex_errors_at_decl; /* lexical errors before the current declaration */
	/*
	 * Stacks of what records, lists and references being parsed have read
	 * so far: each takes its own segment from its base, copies it to the
	 * arena when it closes and pops it; no allocation per value.
	 */
	VEC(struct pcl_vfield) fields;
	VEC(struct pcl_value *) items;
	VEC(const char *) parts;
	VEC(struct pcl_loc) locs;
};

/*
 * A lexical error inside a declaration (a string cut at a newline, say)
 * usually derails the grammar for the rest of it. Syntax errors that follow
 * one in the same declaration are not reported: they are almost always
 * cascades, and the lexical error already says what to fix.
 */
static struct pcl_diag *parse_error(struct parser *ps, struct pcl_loc loc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static struct pcl_diag *parse_error(struct parser *ps, struct pcl_loc loc, const char *fmt, ...)
{
	if (ps->lx.errors > ps->lex_errors_at_decl)
		return NULL;
	va_list ap;
	va_start(ap, fmt);
	struct pcl_diag *d = pcl_verror(ps->p, loc, PCL_E0, fmt, ap);
	va_end(ap);
	return d;
}

static void bump(struct parser *ps)
{
	ps->cur = ps->next;
	if (ps->cur.kind == PCL_T_EOF)
		ps->next = ps->cur;
	else
		pcl_lex_next(&ps->lx, &ps->next);
}

static bool is_ident(const struct pcl_token *t, const char *s)
{
	return t->kind == PCL_T_IDENT && strcmp(t->text, s) == 0;
}

/* "module NAME" at the start of a line of tokens: a new declaration. */
static bool at_module_start(const struct parser *ps)
{
	return is_ident(&ps->cur, "module") && ps->next.kind == PCL_T_IDENT;
}

static void syntax_error(struct parser *ps, const char *what)
{
	char buf[64];
	parse_error(ps, ps->cur.loc, "expected %s, got %s", what, pcl_tok_describe(&ps->cur, buf, sizeof(buf)));
}

/* Lexical errors were reported by the lexer; outside values, skip them. */
static void skip_bad(struct parser *ps)
{
	while (ps->cur.kind == PCL_T_BAD)
		bump(ps);
}

/* Skips one balanced {...} or [...] (or one token) without recursing. */
static void skip_balanced(struct parser *ps)
{
	size_t level = 0;
	do {
		if (ps->cur.kind == PCL_T_EOF)
			return;
		if (ps->cur.kind == PCL_T_LBRACE || ps->cur.kind == PCL_T_LBRACK)
			level++;
		else if ((ps->cur.kind == PCL_T_RBRACE || ps->cur.kind == PCL_T_RBRACK) && level)
			level--;
		bump(ps);
	} while (level);
}

/*
 * Skips to a place where a record's field list can go on: the next
 * "IDENT =" or "}" at this nesting level, a new module, or the end.
 */
static void recover_in_record(struct parser *ps)
{
	size_t level = 0;
	for (;;) {
		enum pcl_tok_kind k = ps->cur.kind;
		if (k == PCL_T_EOF)
			return;
		if (level == 0) {
			if (k == PCL_T_RBRACE || at_module_start(ps))
				return;
			if (k == PCL_T_IDENT && ps->next.kind == PCL_T_EQ)
				return;
		}
		if (k == PCL_T_LBRACE || k == PCL_T_LBRACK)
			level++;
		else if ((k == PCL_T_RBRACE || k == PCL_T_RBRACK) && level)
			level--;
		bump(ps);
	}
}

static struct pcl_node *new_node(struct parser *ps, enum pcl_node_kind kind, struct pcl_loc loc)
{
	struct pcl_node *n = arena_alloc(&ps->p->arena, sizeof(*n));
	n->kind = kind;
	n->loc = loc;
	return n;
}

static struct pcl_node *new_literal(struct parser *ps, enum pcl_node_kind kind, enum pcl_vkind vk)
{
	struct pcl_node *n = arena_alloc(&ps->p->arena, sizeof(*n));
	n->kind = kind;
	n->lit.v_kind = vk;
	n->lit.v_loc = ps->cur.loc;
	return n;
}

static struct pcl_node *parse_expr(struct parser *ps, int depth);

static struct pcl_node *parse_record(struct parser *ps, int depth)
{
	struct pcl_node *n = new_node(ps, PCL_N_REC, ps->cur.loc);
	size_t base = ps->fields.n;
	bump(ps); /* '{' */
	for (;;) {
		skip_bad(ps);
		if (ps->cur.kind == PCL_T_RBRACE) {
			bump(ps);
			break;
		}
		if (ps->cur.kind == PCL_T_EOF) {
			if (!ps->unclosed_reported)
				parse_error(ps, n->loc, "this '{' is never closed");
			ps->unclosed_reported = true;
			break;
		}
		if (at_module_start(ps)) {
			if (!ps->unclosed_reported) {
				struct pcl_diag *d = parse_error(ps, ps->cur.loc, "expected '}' before the next 'module'");
				pcl_diag_note(d, n->loc, "the record opened here is not closed");
				ps->unclosed_reported = true;
			}
			break;
		}
		if (ps->cur.kind != PCL_T_IDENT) {
			syntax_error(ps, "a field name or '}'");
			recover_in_record(ps);
			if (ps->cur.kind != PCL_T_RBRACE && ps->cur.kind != PCL_T_IDENT)
				break;
			continue;
		}
		struct pcl_vfield f = {0};
		f.f_name = ps->cur.text;
		f.f_loc = ps->cur.loc;
		bump(ps);
		skip_bad(ps);
		if (ps->cur.kind != PCL_T_EQ) {
			char what[96];
			snprintf(what, sizeof(what), "'=' after field name '%.40s'", f.f_name);
			syntax_error(ps, what);
			recover_in_record(ps);
			continue;
		}
		bump(ps);
		struct pcl_node *value = parse_expr(ps, depth);
		if (!value) {
			recover_in_record(ps);
			continue;
		}
		f.f_value = &value->lit;
		VEC_PUSH(&ps->fields, f);
		if (ps->cur.kind == PCL_T_COMMA || ps->cur.kind == PCL_T_SEMI)
			bump(ps);
	}
	n->rec.n = ps->fields.n - base;
	n->rec.fields = arena_memdup(&ps->p->arena, ps->fields.v + base, n->rec.n * sizeof(ps->fields.v[0]));
	ps->fields.n = base;
	return n;
}

static struct pcl_node *parse_list(struct parser *ps, int depth)
{
	struct pcl_node *n = new_node(ps, PCL_N_LIST, ps->cur.loc);
	size_t base = ps->items.n;
	bump(ps); /* '[' */
	for (;;) {
		if (ps->cur.kind == PCL_T_RBRACK) {
			bump(ps);
			break;
		}
		if (ps->cur.kind == PCL_T_EOF || ps->cur.kind == PCL_T_RBRACE || at_module_start(ps)) {
			if (!ps->unclosed_reported) {
				struct pcl_diag *d = parse_error(ps, ps->cur.loc, "expected ']' to close the list");
				pcl_diag_note(d, n->loc, "the list opened here");
				ps->unclosed_reported = ps->cur.kind != PCL_T_RBRACE;
			}
			break;
		}
		struct pcl_node *item = parse_expr(ps, depth);
		if (!item) {
			/* Skip to this list's ']' (or give up at a '}' that closes a record). */
			size_t level = 0;
			while (ps->cur.kind != PCL_T_EOF) {
				enum pcl_tok_kind k = ps->cur.kind;
				if (level == 0 && (k == PCL_T_RBRACK || k == PCL_T_RBRACE || at_module_start(ps)))
					break;
				if (k == PCL_T_LBRACE || k == PCL_T_LBRACK)
					level++;
				else if ((k == PCL_T_RBRACE || k == PCL_T_RBRACK) && level)
					level--;
				bump(ps);
			}
			if (ps->cur.kind == PCL_T_RBRACK)
				bump(ps);
			break;
		}
		VEC_PUSH(&ps->items, &item->lit);
		if (ps->cur.kind == PCL_T_COMMA || ps->cur.kind == PCL_T_SEMI)
			bump(ps);
	}
	n->list.n = ps->items.n - base;
	n->list.items = arena_memdup(&ps->p->arena, ps->items.v + base, n->list.n * sizeof(ps->items.v[0]));
	ps->items.n = base;
	return n;
}

static struct pcl_node *parse_ref(struct parser *ps)
{
	struct pcl_node *n = new_node(ps, PCL_N_REF, ps->cur.loc);
	/* references hold no values: these stacks are empty here */
	ps->parts.n = ps->locs.n = 0;
	VEC_PUSH(&ps->parts, ps->cur.text);
	VEC_PUSH(&ps->locs, ps->cur.loc);
	bump(ps);
	bool bad = false;
	while (ps->cur.kind == PCL_T_DOT) {
		bump(ps);
		if (ps->cur.kind != PCL_T_IDENT) {
			syntax_error(ps, "a member name after '.'");
			bad = true;
			break;
		}
		VEC_PUSH(&ps->parts, ps->cur.text);
		VEC_PUSH(&ps->locs, ps->cur.loc);
		bump(ps);
	}
	if (bad) {
		n->kind = PCL_N_ERROR;
	} else {
		n->ref.n = ps->parts.n;
		n->ref.parts = arena_memdup(&ps->p->arena, ps->parts.v, ps->parts.n * sizeof(ps->parts.v[0]));
		n->ref.locs = arena_memdup(&ps->p->arena, ps->locs.v, ps->locs.n * sizeof(ps->locs.v[0]));
	}
	return n;
}

/* Returns NULL, with the error reported, when cur cannot start a value. */
static struct pcl_node *parse_expr(struct parser *ps, int depth)
{
	struct pcl_node *n;
	switch (ps->cur.kind) {
	case PCL_T_STRING:
		if (ps->cur.ninterp) {
			n = new_node(ps, PCL_N_FMT, ps->cur.loc);
			n->fmt.text = ps->cur.text;
			n->fmt.len = ps->cur.len;
			n->fmt.items = ps->cur.interp;
			n->fmt.n = ps->cur.ninterp;
			bump(ps);
			return n;
		}
		n = new_literal(ps, PCL_N_STR, PCL_V_STR);
		n->lit.v_str.s = ps->cur.text;
		n->lit.v_str.len = ps->cur.len;
		bump(ps);
		return n;
	case PCL_T_INT:
		n = new_literal(ps, PCL_N_INT, PCL_V_INT);
		n->lit.v_int = ps->cur.ival;
		bump(ps);
		return n;
	case PCL_T_BAD:
		n = new_node(ps, PCL_N_ERROR, ps->cur.loc);
		bump(ps);
		return n;
	case PCL_T_IDENT:
		if (is_ident(&ps->cur, "true") || is_ident(&ps->cur, "false")) {
			n = new_literal(ps, PCL_N_BOOL, PCL_V_BOOL);
			n->lit.v_bool = ps->cur.text[0] == 't';
			bump(ps);
			return n;
		}
		return parse_ref(ps);
	case PCL_T_LBRACE:
	case PCL_T_LBRACK:
		if (depth >= PCL_MAX_DEPTH) {
			parse_error(ps, ps->cur.loc, "values nested more than %d levels deep", PCL_MAX_DEPTH);
			n = new_node(ps, PCL_N_ERROR, ps->cur.loc);
			skip_balanced(ps);
			/* Unclosed past the limit: the enclosing levels are unclosed too; say it once. */
			if (ps->cur.kind == PCL_T_EOF)
				ps->unclosed_reported = true;
			return n;
		}
		if (ps->cur.kind == PCL_T_LBRACE)
			return parse_record(ps, depth + 1);
		return parse_list(ps, depth + 1);
	default:
		syntax_error(ps, "a value (a string, integer, true, false, record, list or reference)");
		return NULL;
	}
}

static void add_decl(struct parser *ps, const struct pcl_token *name, struct pcl_node *body)
{
	struct pcl_program *p = ps->p;
	struct pcl_decl *d = arena_alloc(&p->arena, sizeof(*d));
	d->name = name->text;
	d->loc = name->loc;
	d->body = body;
	VEC_PUSH(&p->decls, d);
}

void pcl_parse(struct pcl_program *p, const char *file, const char *buf, size_t len)
{
	struct parser ps = {0};
	ps.p = p;
	/* never NULL, so that an empty segment's start is a valid pointer */
	VEC_RESERVE(&ps.fields, 16);
	VEC_RESERVE(&ps.items, 16);
	VEC_RESERVE(&ps.parts, 4);
	VEC_RESERVE(&ps.locs, 4);
	pcl_lex_init(&ps.lx, p, file, buf, len);
	pcl_lex_next(&ps.lx, &ps.cur);
	if (ps.cur.kind == PCL_T_EOF)
		ps.next = ps.cur;
	else
		pcl_lex_next(&ps.lx, &ps.next);

	for (;;) {
		skip_bad(&ps);
		if (ps.cur.kind == PCL_T_EOF)
			break;
		if (!is_ident(&ps.cur, "module")) {
			syntax_error(&ps, "'module'");
			/* Resynchronise at the next declaration. */
			do
				bump(&ps);
			while (ps.cur.kind != PCL_T_EOF && !at_module_start(&ps));
			continue;
		}
		bump(&ps);
		skip_bad(&ps);
		if (ps.cur.kind != PCL_T_IDENT) {
			syntax_error(&ps, "a module name after 'module'");
			while (ps.cur.kind != PCL_T_EOF && !at_module_start(&ps))
				bump(&ps);
			continue;
		}
		struct pcl_token name = ps.cur;
		ps.unclosed_reported = false;
		ps.lex_errors_at_decl = ps.lx.errors;
		bump(&ps);
		skip_bad(&ps);
		if (ps.cur.kind != PCL_T_LBRACE) {
			char what[96];
			snprintf(what, sizeof(what), "'{' after 'module %.40s'", name.text);
			syntax_error(&ps, what);
			while (ps.cur.kind != PCL_T_EOF && !at_module_start(&ps))
				bump(&ps);
			continue;
		}
		add_decl(&ps, &name, parse_record(&ps, 1));
	}
	VEC_FREE(&ps.fields);
	VEC_FREE(&ps.items);
	VEC_FREE(&ps.parts);
	VEC_FREE(&ps.locs);
	pcl_lex_fini(&ps.lx);
}
