/*
 * test_pcl_eval.c - evaluation into plain values: references, escapes,
 * secrets, Pkg.out, module kinds, and independence from the order of
 * files, modules and fields.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "pcl_test_util.h"

static char *dump_of(const char *src)
{
	struct pcl_program *p = pcl_checked(src);
	cr_assert_eq(pcl_program_error_count(p), 0, "unexpected errors in:\n%s", src);
	char *d = pcl_dump_program(p);
	pcl_program_free(p);
	return d;
}

static void expect_dump(const char *src, const char *want)
{
	char *got = dump_of(src);
	cr_expect_str_eq(got, want);
	free(got);
}

Test(eval, escapes_decode_and_dollar_is_literal)
{
	expect_dump("module A { s = \"a\\nb\\tc\\rd\\\"e\\\\f $OUTPUT\" }",
		    "data A {s=\"a\\x0ab\\x09c\\x0dd\\x22e\\x5cf $OUTPUT\"}\n");
}

Test(eval, references_resolve_to_values)
{
	expect_dump("module A { x = 1 r = { k = [true, false] } }\nmodule B { y = A.x z = A.r.k w = A }",
		    "data A {r={k=[true,false]},x=1}\n"
		    "data B {w={r={k=[true,false]},x=1},y=1,z=[true,false]}\n");
}

Test(eval, a_module_may_refer_to_its_own_fields)
{
	expect_dump("module A { x = 1 y = A.x }", "data A {x=1,y=1}\n");
}

Test(eval, secrets_and_outs)
{
	expect_dump("module P { pname = \"p\" version = \"1\" recipe = \"std.shell\" recipeArgs = { command = \"true\" } }\n"
		    "module S { backend = \"systemd\" services = [{ name = \"a\" package = P.out binary = \"b\" "
		    "environment = { A = { from_env = \"A_SECRET\" } B = { from_file = \"/run/keys/b\" } C = \"plain\" } }] }",
		    "package P {pname=\"p\",recipe=\"std.shell\",recipeArgs={command=\"true\"},version=\"1\"}\n"
		    "stack S {backend=\"systemd\",services=[{binary=\"b\",environment={A=secret(env:A_SECRET),"
		    "B=secret(file:/run/keys/b),C=\"plain\"},name=\"a\",package=out(P)}]}\n");
}

Test(eval, kinds_follow_fields)
{
	expect_dump("module P { pname = \"p\" version = \"1\" recipe = \"std.shell\" recipeArgs = { command = \"true\" } }\n"
		    "module Svc { package = \"P\" binary = \"b\" }\n"
		    "module St { backend = \"systemd\" services = [\"Svc\"] }\n"
		    "module F { hosts = [{ file = \"h1.pcl\" target = \"local\" stack = \"St\" machine = \"h1\" }] }\n"
		    "module D { binary = \"only-binary-is-data\" }\n",
		    "data D {binary=\"only-binary-is-data\"}\n"
		    "fleet F {hosts=[{file=\"h1.pcl\",machine=\"h1\",stack=\"St\",target=\"local\"}]}\n"
		    "package P {pname=\"p\",recipe=\"std.shell\",recipeArgs={command=\"true\"},version=\"1\"}\n"
		    "stack St {backend=\"systemd\",services=[\"Svc\"]}\n"
		    "service Svc {binary=\"b\",package=\"P\"}\n");
}

/* The same program written three ways. */
static const char *const order_a[] = {
	"module Base { port = 8080 host = \"127.0.0.1\" }\n"
	"module Hello { pname = \"hello\" version = \"1.0\" recipe = \"std.shell\"\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" } source = { type = \"local\" path = \"./src\" } }\n",
	"module Stack { backend = \"systemd\" storeModules = [\"Hello\"]\n"
	"  services = [{ name = \"hello\" package = \"Hello\" binary = \"hi\" args = [\"--port\"] "
	"environment = { PORT = \"8080\" HOST = Base.host } }]\n"
	"  configFiles = [{ path = \"/etc/hello.conf\" content = \"x\" }] }\n",
};

static const char *const order_b[] = {
	"module Stack {\n  configFiles = [{ content = \"x\"; path = \"/etc/hello.conf\" }]\n"
	"  services = [{ environment = { HOST = Base.host, PORT = \"8080\" }, args = [\"--port\"], binary = \"hi\", "
	"package = \"Hello\", name = \"hello\" }]\n  storeModules = [\"Hello\"] backend = \"systemd\" }\n"
	"module Base { host = \"127.0.0.1\" port = 8080 }\n",
	"module Hello { source = { path = \"./src\" type = \"local\" } recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" }\n"
	"  recipe = \"std.shell\" version = \"1.0\" pname = \"hello\" }\n",
};

Test(eval, order_of_files_modules_and_fields_does_not_matter)
{
	const char *names_a[] = {"a.pcl", "b.pcl"};
	const char *names_b[] = {"z.pcl", "y.pcl"};
	struct pcl_program *pa = pcl_program_new(), *pb = pcl_program_new(), *pc = pcl_program_new();
	for (int i = 0; i < 2; i++) {
		pcl_program_add_source(pa, names_a[i], order_a[i], strlen(order_a[i]));
		pcl_program_add_source(pb, names_b[i], order_b[i], strlen(order_b[i]));
		/* the first order, files handed over in reverse */
		pcl_program_add_source(pc, names_a[1 - i], order_a[1 - i], strlen(order_a[1 - i]));
	}
	cr_assert_eq(pcl_program_check(pa), 0);
	cr_assert_eq(pcl_program_check(pb), 0);
	cr_assert_eq(pcl_program_check(pc), 0);
	char *da = pcl_dump_program(pa), *db = pcl_dump_program(pb), *dc = pcl_dump_program(pc);
	cr_expect_str_eq(da, db);
	cr_expect_str_eq(da, dc);
	free(da);
	free(db);
	free(dc);
	pcl_program_free(pa);
	pcl_program_free(pb);
	pcl_program_free(pc);
}

Test(eval, diagnostics_do_not_depend_on_file_order)
{
	const char *names[] = {"a.pcl", "b.pcl", "c.pcl"};
	const char *srcs[] = {"module A { x = B.y z = 1 z = 2 }", "module B { y = C.w }", "module C { v = @ }"};
	const char *rnames[] = {"c.pcl", "a.pcl", "b.pcl"};
	const char *rsrcs[] = {srcs[2], srcs[0], srcs[1]};
	char *x = pcl_check_files(names, srcs, 3);
	char *y = pcl_check_files(rnames, rsrcs, 3);
	cr_expect_str_eq(x, y);
	cr_expect(strstr(x, "a.pcl:1:26: error: [E3]") != NULL, "%s", x);
	cr_expect(strstr(x, "b.pcl:1:18: error: [E2] module 'C' has no field 'w'") != NULL, "%s", x);
	free(x);
	free(y);
}

Test(eval, first_declaration_by_position_owns_a_name)
{
	const char *names[] = {"b.pcl", "a.pcl"};
	const char *srcs[] = {"module M { x = 2 }", "module M { x = 1 }\nmodule U { y = M.x }"};
	struct pcl_program *p = pcl_program_new();
	for (int i = 0; i < 2; i++)
		pcl_program_add_source(p, names[i], srcs[i], strlen(srcs[i]));
	cr_assert_eq(pcl_program_check(p), 1);
	cr_expect_str_eq(pcl_program_diag(p, 0)->d_loc.file, "b.pcl");
	const struct pcl_value *y = pcl_value_field(pcl_program_find(p, "U")->m_value, "y");
	cr_expect_eq(y->v_int, 1);
	pcl_program_free(p);
}

/* ---- string interpolation ------------------------------------------------- */

Test(interp, str_and_int_parts_fold_into_a_str)
{
	expect_dump("module Base { host = \"db\" port = 5432 neg = -1 r = { deep = \"x\" } }\n"
		    "module A { s = \"${Base.host}:${Base.port}/${ Base.r.deep }${Base.neg}\" t = \"${A.s}!\" "
		    "u = \"${Base.host}\" }",
		    "data A {s=\"db:5432/x-1\",t=\"db:5432/x-1!\",u=\"db\"}\n"
		    "data Base {host=\"db\",neg=-1,port=5432,r={deep=\"x\"}}\n");
}

Test(interp, dollar_dollar_brace_is_a_literal_and_a_bare_dollar_stays)
{
	expect_dump("module A { s = \"$${HOME} $$ $x $ $${\" t = \"a$$$${b}\" }",
		    "data A {s=\"${HOME} $$ $x $ ${\",t=\"a$$${b}\"}\n");
	/* no ${ at all: exactly as before */
	expect_dump("module A { s = \"$OUTPUT/bin {x} $\" }", "data A {s=\"$OUTPUT/bin {x} $\"}\n");
}

Test(interp, escapes_around_an_interpolation)
{
	expect_dump("module A { n = 7 s = \"\\t${A.n}\\n\\\"caf\xc3\xa9\\\"\" }",
		    "data A {n=7,s=\"\\x097\\x0a\\x22caf\xc3\xa9\\x22\"}\n");
}

#define IPKG "module Api { pname = \"api\" version = \"1\" recipe = \"std.shell\" recipeArgs = { command = \"true\" } }\n"

Test(interp, a_store_path_makes_a_composed_string)
{
	expect_dump(IPKG "module A { s = \"${Api.out}/bin/api\" t = \"[${A.s}]\" }",
		    "data A {s=fmt(<Api.out>/bin/api),t=fmt([<Api.out>/bin/api])}\n"
		    "package Api {pname=\"api\",recipe=\"std.shell\",recipeArgs={command=\"true\"},version=\"1\"}\n");
}

Test(interp, lowering_leaves_store_paths_open_and_pins_their_packages)
{
	struct pcl_program *p = pcl_checked(
		IPKG "module Tool { pname = \"tool\" version = \"1\" recipe = \"std.shell\" recipeArgs = { command = \"true\" } }\n"
		     "module Base { port = 8080 }\n"
		     "module S { backend = \"systemd\" services = [{ name = \"api\" package = \"Api\" binary = \"api\"\n"
		     "  args = [\"--port\", \"${Base.port}\", \"${Tool.out}/bin/t\", Tool.out]\n"
		     "  environment = { T = \"${Tool.out}\" } }]\n"
		     "  configFiles = [{ path = \"/etc/a\" content = \"exe=${Api.out}/bin/api\\n\" }] }\n");
	cr_assert_eq(pcl_program_error_count(p), 0);
	const struct stack_desc *st = pcl_program_stack(p, "S");
	cr_assert_eq(st->nservices, 1);
	const struct service_desc *s = &st->services[0];
	cr_assert_eq(s->nargs, 4);
	cr_expect_str_eq(s->args[1], "8080");
	cr_expect_str_eq(s->args[2], "\x01Tool\x02/bin/t");
	cr_expect_str_eq(s->args[3], "\x01Tool\x02");
	cr_expect_str_eq(s->env[0].value, "\x01Tool\x02");
	cr_expect_str_eq(st->files[0].content, "exe=\x01" "Api\x02/bin/api\n");
	cr_assert_eq(st->nstore_modules, 2, "the packages named by store path are pinned");
	cr_expect_str_eq(st->store_modules[0], "Api");
	cr_expect_str_eq(st->store_modules[1], "Tool");
	pcl_program_free(p);
}

Test(interp, permuted_modules_give_the_same_values)
{
	const char *a[] = {IPKG "module B { x = \"${A.y}-${Api.out}\" }", "module A { y = 3 z = \"${B.x}\" }"};
	const char *b[] = {"module A { z = \"${B.x}\" y = 3 }", "module B { x = \"${A.y}-${Api.out}\" }\n" IPKG};
	const char *na[] = {"a.pcl", "b.pcl"}, *nb[] = {"b.pcl", "a.pcl"};
	struct pcl_program *pa = pcl_program_new(), *pb = pcl_program_new();
	for (int i = 0; i < 2; i++) {
		pcl_program_add_source(pa, na[i], a[i], strlen(a[i]));
		pcl_program_add_source(pb, nb[i], b[i], strlen(b[i]));
	}
	cr_assert_eq(pcl_program_check(pa), 0);
	cr_assert_eq(pcl_program_check(pb), 0);
	char *da = pcl_dump_program(pa), *db = pcl_dump_program(pb);
	cr_expect_str_eq(da, db);
	cr_expect(strstr(da, "z=fmt(3-<Api.out>)") != NULL, "%s", da);
	free(da);
	free(db);
	pcl_program_free(pa);
	pcl_program_free(pb);
}
