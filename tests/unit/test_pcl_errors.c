/*
 * test_pcl_errors.c - every error code of the front end, each produced by a
 * minimal program, with its exact location and message.
 *
 * Each case compares the whole output of a check, so a wrong code, line or
 * column, or one extra cascade error, fails the test.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "base/sbuf.h"
#include "pcl_test_util.h"

static void expect(const char *src, const char *want)
{
	char *got = pcl_check_text(src);
	cr_expect_str_eq(got, want, "program:\n%s\n--- got:\n%s--- want:\n%s", src, got, want);
	free(got);
}

/* A package every case below may depend on. */
#define PKG "module P { pname = \"p\" version = \"1\" recipe = \"std.shell\" recipeArgs = { command = \"true\" } }\n"

Test(ok, minimal_programs_check_clean)
{
	expect("module A { x = 1 }\n", "ok");
	expect("", "ok");
	expect("# only a comment\n", "ok");
	expect("\xef\xbb\xbfmodule A { x = 1 }", "ok");
	expect("module A { x = -9223372036854775808 y = 9223372036854775807 }", "ok");
	expect("module A { l = [1 2, 3; 4,] r = { a = 1; b = 2, c = 3 } e = [] }", "ok");
	expect("module A { s = \"caf\xc3\xa9 $OUTPUT\\t\" }", "ok");
}

/* ---- E0: lexical and syntax errors --------------------------------------- */

Test(e0, unterminated_string)
{
	expect("module A { s = \"abc", "t.pcl:1:16: error: [E0] unterminated string\n");
}

Test(e0, unknown_escape)
{
	expect("module A { s = \"a\\qb\" }",
	       "t.pcl:1:18: error: [E0] unknown escape '\\q' in string\n"
	       "hint: the escapes are \\n \\t \\r \\\" \\\\; '$' needs none ('$${' is a literal '${')\n");
}

Test(e0, newline_inside_string)
{
	expect("module A {\n  s = \"ab\n}\n",
	       "t.pcl:2:10: error: [E0] newline inside a string\n"
	       "hint: close the string on the same line, or write \\n for a newline\n");
}

Test(e0, stray_character)
{
	expect("module A { x = 1 @ y = 2 }", "t.pcl:1:18: error: [E0] unexpected character '@'\n");
}

Test(e0, integer_overflow)
{
	expect("module A { x = 9223372036854775808 }",
	       "t.pcl:1:16: error: [E0] integer literal out of range (integers are 64-bit signed)\n");
	expect("module A { x = -9223372036854775809 }",
	       "t.pcl:1:16: error: [E0] integer literal out of range (integers are 64-bit signed)\n");
}

Test(e0, malformed_numbers)
{
	expect("module A { x = 12ab }", "t.pcl:1:16: error: [E0] malformed number '12ab'\n");
	expect("module A { x = - }", "t.pcl:1:16: error: [E0] '-' must be followed by digits\n");
}

Test(e0, invalid_utf8)
{
	expect("module A { s = \"a\xff\" }", "t.pcl:1:18: error: [E0] invalid UTF-8 byte 0xFF in string\n");
	expect("# caf\xe9\nmodule A { }", "t.pcl:1:6: error: [E0] invalid UTF-8 byte 0xE9 in comment\n");
	/* overlong encoding of '/' */
	expect("module A { s = \"\xc0\xaf\" }", "t.pcl:1:17: error: [E0] invalid UTF-8 byte 0xC0 in string\n");
	expect("module A { x = 1 } \xe9", "t.pcl:1:20: error: [E0] invalid UTF-8 byte 0xE9\n");
}

Test(e0, columns_count_code_points)
{
	/* "é" is two bytes but one column */
	expect("module A { s = \"\xc3\xa9\" @ }", "t.pcl:1:20: error: [E0] unexpected character '@'\n");
}

Test(e0, nul_byte_is_stray)
{
	const char src[] = "module A { x = 1 \0 }";
	struct pcl_program *p = pcl_program_new();
	pcl_program_add_source(p, "t.pcl", src, sizeof(src) - 1);
	cr_assert_eq(pcl_program_check(p), 1);
	struct sbuf sb = SBUF_INIT;
	pcl_diag_format(pcl_program_diag(p, 0), &sb);
	cr_expect_str_eq(sbuf_str(&sb), "t.pcl:1:18: error: [E0] unexpected control character 0x00\n");
	sbuf_free(&sb);
	pcl_program_free(p);
}

Test(e0, unclosed_record)
{
	expect("module A { x = 1", "t.pcl:1:10: error: [E0] this '{' is never closed\n");
}

Test(e0, missing_brace_before_next_module)
{
	expect("module A { x = 1 }\nmodule B { y = 2\nmodule C { z = 3 }",
	       "t.pcl:3:1: error: [E0] expected '}' before the next 'module'\n"
	       "t.pcl:2:10: note: the record opened here is not closed\n");
}

Test(e0, unclosed_list)
{
	expect("module A { x = [1, 2 }",
	       "t.pcl:1:22: error: [E0] expected ']' to close the list\n"
	       "t.pcl:1:16: note: the list opened here\n");
}

Test(e0, missing_value_and_missing_equals)
{
	expect("module A { x = }",
	       "t.pcl:1:16: error: [E0] expected a value (a string, integer, true, false, record, list or "
	       "reference), got '}'\n");
	expect("module A { x 1 y = 2 }", "t.pcl:1:14: error: [E0] expected '=' after field name 'x', got an integer\n");
}

Test(e0, not_a_module)
{
	expect("modul A { }", "t.pcl:1:1: error: [E0] expected 'module', got 'modul'\n");
	expect("module { }", "t.pcl:1:8: error: [E0] expected a module name after 'module', got '{'\n");
}

Test(e0, nesting_is_bounded)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_puts(&sb, "module A { x = ");
	for (int i = 0; i < 200; i++)
		sbuf_putc(&sb, '[');
	for (int i = 0; i < 200; i++)
		sbuf_putc(&sb, ']');
	sbuf_puts(&sb, " }");
	/* The 128th '[' (column 15 + 128) is one level too deep. */
	expect(sbuf_str(&sb), "t.pcl:1:143: error: [E0] values nested more than 128 levels deep\n");
	sbuf_free(&sb);
}

Test(e0, errors_in_several_modules_are_all_reported)
{
	expect("module A { x = \"\\q\" }\nmodule B { y = }\nmodule C { z = 1 # }\n}\nmodule D { w = 99999999999999999999 }",
	       "t.pcl:1:17: error: [E0] unknown escape '\\q' in string\n"
	       "hint: the escapes are \\n \\t \\r \\\" \\\\; '$' needs none ('$${' is a literal '${')\n"
	       "t.pcl:2:16: error: [E0] expected a value (a string, integer, true, false, record, list or "
	       "reference), got '}'\n"
	       "t.pcl:5:16: error: [E0] integer literal out of range (integers are 64-bit signed)\n");
}

/* ---- E1: type mismatch ----------------------------------------------------- */

Test(e1, field_of_wrong_type)
{
	expect("module A {\n  pname = \"hello\"\n  version = 1\n  recipe = \"std.shell\"\n"
	       "  recipeArgs = { command = \"x\" }\n}",
	       "t.pcl:3:13: error: [E1] type mismatch in 'version': expected Str, got Int\n");
}

Test(e1, mixed_list)
{
	expect("module A { y = [\"a\", 1] }",
	       "t.pcl:1:22: error: [E1] list elements must have one type: this one is Int, the ones before it are "
	       "Str\n");
}

Test(e1, records_that_disagree_on_a_shared_field)
{
	expect("module A { x = [{a = 1}, {a = \"x\"}] }",
	       "t.pcl:1:26: error: [E1] list elements must have one type: this one is Rec{a: Str}, the ones before "
	       "it are Rec{a: Int}\n"
	       "hint: records in one list must agree on the fields they share; services of different shapes can be "
	       "listed as service modules by name\n");
}

Test(e1, records_with_different_keys_unify)
{
	expect("module A { x = [{a = 1}, {b = \"x\"}, {a = 2 b = \"y\"}] }", "ok");
}

Test(e1, secret_outside_environment)
{
	expect("module A { pname = { from_env = \"X\" } version = \"1\" recipe = \"std.shell\" "
	       "recipeArgs = { command = \"true\" } }",
	       "t.pcl:1:20: error: [E1] type mismatch in 'pname': expected Str, got Str (secret)\n"
	       "hint: secrets are resolved when used and are allowed only in a service's 'environment' and a url source's 'token'\n");
}

Test(e1, nested_field_path_in_message)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" "
		   "args = [1] }] }",
	       "t.pcl:2:92: error: [E1] type mismatch in 'services[0].args[0]': expected Str, got Int\n");
}

/* ---- E2: unknown field, module, member ----------------------------------- */

Test(e2, unknown_field_on_module_with_hint)
{
	expect("module S {\n  backend = \"systemd\"\n  servics = []\n}",
	       "t.pcl:3:3: error: [E2] unknown field 'servics' on module 'S'\n"
	       "hint: did you mean 'services'?\n");
}

Test(e2, misspelt_required_field_is_one_error)
{
	expect(PKG "module S {\n  backend = \"systemd\"\n  services = [{ name = \"a\" pacakge = \"P\" binary = \"hi\" }]\n}",
	       "t.pcl:4:28: error: [E2] unknown field 'pacakge' in 'services[0]' of module 'S'\n"
	       "hint: did you mean 'package'?\n");
}

Test(e2, unknown_module)
{
	expect("module Alpha { x = Alpah.x }",
	       "t.pcl:1:20: error: [E2] unknown module 'Alpah'\nhint: did you mean 'Alpha'?\n");
}

Test(e2, unknown_member)
{
	expect("module A { value = 1 }\nmodule B { y = A.valeu }",
	       "t.pcl:2:18: error: [E2] module 'A' has no field 'valeu'\nhint: did you mean 'value'?\n");
	expect("module A { r = { k = 1 } }\nmodule B { y = A.r.q.z }", "t.pcl:2:20: error: [E2] 'r' has no field 'q'\n");
	expect("module A { s = \"x\" }\nmodule B { y = A.s.t }",
	       "t.pcl:2:20: error: [E2] 's' is Str, which has no member 't'\n");
}

Test(e2, unknown_package)
{
	expect(PKG "module S { backend = \"systemd\" storeModules = [\"Q\"] }",
	       "t.pcl:2:48: error: [E2] unknown package module \"Q\"\n");
}

Test(e2, depends_on_missing_service)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"web\" package = \"P\" binary = \"b\" "
		   "dependsOn = [\"dbb\"] }, { name = \"db\" package = \"P\" binary = \"b\" }] }",
	       "t.pcl:2:99: error: [E2] service \"web\" depends on \"dbb\", which stack 'S' does not have\n"
	       "hint: did you mean 'db'?\n");
}

/* ---- E3: missing required, declared twice -------------------------------- */

Test(e3, missing_required_field)
{
	expect("module A { pname = \"a\" recipe = \"std.shell\" recipeArgs = { command = \"true\" } }",
	       "t.pcl:1:8: error: [E3] missing required field 'version' in module 'A'\n");
	expect("module A { pname = \"a\" version = \"1\" recipe = \"std.shell\" recipeArgs = { } }",
	       "t.pcl:1:72: error: [E3] missing required field 'command' in 'recipeArgs' of module 'A'\n");
}

Test(e3, module_declared_twice)
{
	expect("module A { x = 1 }\nmodule A { y = 2 }",
	       "t.pcl:2:8: error: [E3] module 'A' is declared twice\nt.pcl:1:8: note: first declared here\n");
}

Test(e3, field_set_twice)
{
	expect("module A { x = 1 x = 2 }",
	       "t.pcl:1:18: error: [E3] field 'x' is set twice\nt.pcl:1:12: note: first set here\n");
}

Test(e3, service_declared_twice)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" }, "
		   "{ name = \"a\" package = \"P\" binary = \"b\" }] }",
	       "t.pcl:2:96: error: [E3] service \"a\" is declared twice in stack 'S'\n"
	       "t.pcl:2:53: note: first declared here\n");
}

Test(e3, config_file_declared_twice)
{
	expect("module S { backend = \"systemd\" configFiles = [{ path = \"/etc/a\" content = \"\" }, "
	       "{ path = \"/etc/a\" content = \"x\" }] }",
	       "t.pcl:1:90: error: [E3] config file \"/etc/a\" is declared twice in module 'S'\n"
	       "t.pcl:1:56: note: first declared here\n");
}

/* ---- E6: right type, wrong shape ------------------------------------------ */

Test(e6, reserved_service_config_keys)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" "
		   "serviceConfig = { ExecStart = \"/bin/sh\" } }] }",
	       "t.pcl:2:102: error: [E6] 'ExecStart' is reserved in 'services[0].serviceConfig'\n"
	       "hint: ExecStart is computed from 'package', 'binary' and 'args'\n");
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" "
		   "serviceConfig = { Environment = \"A=1\" } }] }",
	       "t.pcl:2:102: error: [E6] 'Environment' is reserved in 'services[0].serviceConfig'\n"
	       "hint: use the service's 'environment' field, which keeps secrets out of unit files\n");
}

Test(e6, directive_value_with_newline)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" "
		   "serviceConfig = { User = \"x\\nExecStartPre=/bin/evil\" } }] }",
	       "t.pcl:2:109: error: [E6] 'services[0].serviceConfig.User' must be one line, got "
	       "\"x\\nExecStartPre=/bin/evil\"\n"
	       "hint: each directive renders as one Key=Value line\n");
}

Test(e6, unsafe_service_name)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"../x\" package = \"P\" binary = \"b\" }] }",
	       "t.pcl:2:53: error: [E6] 'services[0].name' must be a unit name: 1 to 128 letters, digits or '_.@-', "
	       "without '.service', got \"../x\"\n"
	       "hint: it becomes <name>.service in the unit directory\n");
}

Test(e6, config_file_path_must_be_absolute_and_normal)
{
	expect("module S { backend = \"systemd\" configFiles = [{ path = \"/etc/../shadow\" content = \"\" }] }",
	       "t.pcl:1:56: error: [E6] 'configFiles[0].path' must be an absolute path without '.', '..' or empty "
	       "components, got \"/etc/../shadow\"\n"
	       "hint: config files are written at this path on the target\n");
}

Test(e6, unsupported_backend)
{
	expect("module S { backend = \"sytemd\" }",
	       "t.pcl:1:22: error: [E6] unsupported backend \"sytemd\"; supported: systemd, supervisord, launchd\n"
	       "hint: did you mean 'systemd'?\n");
}

Test(e6, bad_unix_names)
{
	expect("module S { backend = \"systemd\" systemGroups = [\"Git\"] }",
	       "t.pcl:1:48: error: [E6] 'systemGroups[0]' must be a unix name: [a-z_][a-z0-9_-]*, at most 32 "
	       "characters, got \"Git\"\n");
	expect("module S { backend = \"systemd\" systemUsers = [{ name = \"git\" home = \"/var/lib/my git\" }] }",
	       "t.pcl:1:69: error: [E6] 'systemUsers[0].home' must be an absolute path without whitespace or quotes, "
	       "got \"/var/lib/my git\"\n");
}

Test(e6, secrets_are_checked_where_written)
{
	expect("module A { s = { from_env = \"1X\" } }",
	       "t.pcl:1:29: error: [E6] \"1X\" is not a valid environment variable name\n"
	       "hint: names are letters, digits and '_', not starting with a digit\n");
	expect("module A { s = { from_file = \"secrets/db\" } }",
	       "t.pcl:1:30: error: [E6] 'from_file' needs an absolute path, got \"secrets/db\"\n");
}

Test(e6, environment_variable_names)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" "
		   "environment = { my-var = \"1\" } }] }",
	       "t.pcl:2:100: error: [E6] 'my-var' is not a valid environment variable name\n"
	       "hint: names are letters, digits and '_', not starting with a digit\n");
}

Test(e6, timer_unit_is_reserved)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" "
		   "timer = { Unit = \"b.service\" } }] }",
	       "t.pcl:2:94: error: [E6] 'Unit' is reserved in 'services[0].timer'\n"
	       "hint: a timer <name>.timer always triggers <name>.service\n");
}

Test(e6, module_of_two_kinds)
{
	expect("module X { recipe = \"std.shell\" backend = \"systemd\" }",
	       "t.pcl:1:8: error: [E6] module 'X' has the fields of a package module ('recipe') and of a stack module "
	       "('backend')\n");
}

Test(e6, depends_on_disabled_service)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"web\" package = \"P\" binary = \"b\" "
		   "dependsOn = [\"db\"] }, { name = \"db\" package = \"P\" binary = \"b\" enable = false }] }",
	       "t.pcl:2:99: error: [E6] service \"web\" depends on \"db\", which is disabled (enable = false)\n");
}

Test(e6, service_list_names_a_non_service)
{
	expect(PKG "module S { backend = \"systemd\" services = [\"P\"] }",
	       "t.pcl:2:44: error: [E6] 'P' is a package module, not a service module\n"
	       "hint: a service module has the fields 'binary' and 'package'\n");
}

/* ---- E7: cycles, non-package dependencies ------------------------------- */

Test(e7, reference_cycle)
{
	expect("module A { a = B.b }\nmodule B { b = A.a }", "t.pcl:2:16: error: [E7] reference cycle: A.a -> B.b -> A.a\n");
	expect("module A { a = A }", "t.pcl:1:16: error: [E7] reference cycle: A -> A.a -> A\n");
}

Test(e7, dependency_cycle)
{
	expect("module Q { pname = \"q\" version = \"1\" recipe = \"std.shell\" recipeArgs = { command = \"true\" } "
	       "deps = [\"R\"] }\n"
	       "module R { pname = \"r\" version = \"1\" recipe = \"std.shell\" recipeArgs = { command = \"true\" } "
	       "deps = [\"Q\"] }",
	       "t.pcl:2:101: error: [E7] dependency cycle: Q -> R -> Q\n");
}

Test(e7, dependency_that_is_not_a_package)
{
	expect("module D { x = 1 }\nmodule Q { pname = \"q\" version = \"1\" recipe = \"std.shell\" "
	       "recipeArgs = { command = \"true\" } deps = [\"D\"] }",
	       "t.pcl:2:101: error: [E7] 'D' is a data module, not a package module\n");
}

Test(e7, depends_on_cycle)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" "
		   "dependsOn = [\"b\"] }, { name = \"b\" package = \"P\" binary = \"b\" dependsOn = [\"a\"] }] }",
	       "t.pcl:2:158: error: [E7] dependsOn cycle: a -> b -> a\n");
}

/* ---- E15: two packages, one pname ------------------------------------------ */

Test(e15, duplicate_pname_cites_both_sites)
{
	expect(PKG "module Q { pname = \"p\" version = \"2\" recipe = \"std.shell\" recipeArgs = { command = \"true\" } }",
	       "t.pcl:2:20: error: [E15] packages 'P' and 'Q' both have pname \"p\"\n"
	       "t.pcl:1:20: note: 'P' sets it here\n");
}

/* ---- limits --------------------------------------------------------------- */

Test(limits, reference_chains_are_bounded)
{
	struct sbuf sb = SBUF_INIT;
	for (int i = 0; i < 1100; i++)
		sbuf_printf(&sb, "module M%d { v = M%d.v }\n", i, i + 1);
	sbuf_puts(&sb, "module M1100 { v = 1 }\n");
	struct pcl_program *p = pcl_checked(sbuf_str(&sb));
	cr_assert_eq(pcl_program_error_count(p), 1);
	cr_expect(strstr(pcl_program_diag(p, 0)->d_message, "reference chain longer than 1000 links") != NULL);
	pcl_program_free(p);
	sbuf_free(&sb);
}

Test(limits, diagnostics_are_capped_but_counted)
{
	struct sbuf sb = SBUF_INIT;
	for (int i = 0; i < 3000; i++)
		sbuf_printf(&sb, "module M%d { v = @ }\n", i);
	struct pcl_program *p = pcl_checked(sbuf_str(&sb));
	cr_expect_eq(pcl_program_error_count(p), 3000);
	cr_expect_eq(pcl_program_ndiags(p), PCL_MAX_DIAGS);
	pcl_program_free(p);
	sbuf_free(&sb);
}

Test(e6, a_tmpfiles_line_cannot_inject_a_second_line)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" "
		   "tmpfiles = [\"d /x 0755 - - -\\nL /etc/shadow - - - - /tmp/x\"] }] }",
	       "t.pcl:2:96: error: [E6] 'services[0].tmpfiles[0]' must be one line, got \"d /x 0755 - - -\\n"
	       "L /etc/shadow - - - - /tmp/x\"\n"
	       "hint: a newline here would inject a second directive\n");
}

Test(e6, a_sysusers_name_cannot_inject_a_second_line)
{
	expect("module S { backend = \"systemd\" systemUsers = [{ name = \"git\\nu root 0\" }] }",
	       "t.pcl:1:56: error: [E6] 'systemUsers[0].name' must be a unix name: [a-z_][a-z0-9_-]*, at most 32 "
	       "characters, got \"git\\nu root 0\"\n");
}

/* ---- values that reach a rendered line ----------------------------------- */

#define SVC(fields) \
	PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" " fields " }] }"

Test(e6, a_directive_value_cannot_end_in_a_backslash)
{
	expect(SVC("serviceConfig = { User = \"nobody\\\\\" }"),
	       "t.pcl:2:109: error: [E6] 'services[0].serviceConfig.User' must not end in a backslash, got \"nobody\\\\\"\n"
	       "hint: a line ending in '\\' continues on the next one; no rendered value may end in one\n");
}

Test(e6, no_rendered_value_can_end_in_a_backslash)
{
	expect(SVC("args = [\"C:\\\\\"]"),
	       "t.pcl:2:92: error: [E6] 'services[0].args[0]' must not end in a backslash, got \"C:\\\\\"\n"
	       "hint: a line ending in '\\' continues on the next one; no rendered value may end in one\n");
	expect(SVC("environment = { A = \"v\\\\\" }"),
	       "t.pcl:2:104: error: [E6] 'services[0].environment.A' must not end in a backslash, got \"v\\\\\"\n"
	       "hint: a line ending in '\\' continues on the next one; no rendered value may end in one\n");
	expect(SVC("timer = { OnCalendar = \"daily\\\\\" }"),
	       "t.pcl:2:107: error: [E6] 'services[0].timer.OnCalendar' must not end in a backslash, got \"daily\\\\\"\n"
	       "hint: a line ending in '\\' continues on the next one; no rendered value may end in one\n");
	expect(SVC("tmpfiles = [\"d /x 0755 - - -\\\\\"]"),
	       "t.pcl:2:96: error: [E6] 'services[0].tmpfiles[0]' must not end in a backslash, got \"d /x 0755 - - -\\\\\"\n"
	       "hint: a line ending in '\\' continues on the next one; no rendered value may end in one\n");
	expect("module S { backend = \"systemd\" systemUsers = [{ name = \"git\" home = \"/var/git\\\\\" }] }",
	       "t.pcl:1:69: error: [E6] 'systemUsers[0].home' must not end in a backslash, got \"/var/git\\\\\"\n"
	       "hint: a line ending in '\\' continues on the next one; no rendered value may end in one\n");
}

/* DEL is the one control character a PCL string can hold raw (besides tab). */
Test(e6, a_rendered_value_cannot_hold_a_control_character)
{
	expect(SVC("serviceConfig = { User = \"no\x7f" "body\" }"),
	       "t.pcl:2:109: error: [E6] 'services[0].serviceConfig.User' must not hold control characters other than "
	       "tab, got \"no\\x7Fbody\"\n"
	       "hint: systemd would not read the line as it is written\n");
	expect(SVC("args = [\"a\x7f\"]"),
	       "t.pcl:2:92: error: [E6] 'services[0].args[0]' must not hold control characters other than tab, got "
	       "\"a\\x7F\"\n"
	       "hint: systemd would not read the line as it is written\n");
}

/* A backslash inside a value, and tabs (tmpfiles.d separates fields with them), are fine. */
Test(ok, backslashes_inside_and_tabs_are_rendered_values)
{
	expect(SVC("args = [\"a\\\\b\"] serviceConfig = { WorkingDirectory = \"/a\\\\b\" Description = \"x\\ty\" } "
		   "environment = { A = \"tab\\there\" } tmpfiles = [\"d\\t/run/a\\t0755\\t-\\t-\\t-\"]"),
	       "ok");
}

/* ---- string interpolation: each error at its '${' -------------------------- */

Test(interp, syntax_errors_are_e0_at_the_dollar)
{
	expect("module A { s = \"x ${\" }", "t.pcl:1:19: error: [E0] unterminated '${' in a string: no '}' before the string ends\n"
					  "hint: write '$${' for a literal '${'\n");
	expect("module A { s = \"x ${}\" }", "t.pcl:1:19: error: [E0] empty '${}' in a string\n"
					  "hint: write '$${' for a literal '${'\n");
	expect("module A { s = \"${1} ${A.t}\" t = 1 }",
	       "t.pcl:1:17: error: [E0] '${' in a string must hold a reference (Module.field) and then '}'\n"
	       "hint: write '$${' for a literal '${'\n");
	expect("module A { s = \"${A.}\" }",
	       "t.pcl:1:17: error: [E0] '${' in a string must hold a reference (Module.field) and then '}'\n"
	       "hint: write '$${' for a literal '${'\n");
	expect("module A { s = \"${OUTPUT:-x}\" }",
	       "t.pcl:1:17: error: [E0] '${' in a string must hold a reference (Module.field) and then '}'\n"
	       "hint: write '$${' for a literal '${'\n");
}

Test(interp, an_old_shell_expansion_is_an_unknown_module_with_a_hint)
{
	expect("module A { s = \"${OUTPUT}/bin\" }", "t.pcl:1:19: error: [E2] unknown module 'OUTPUT'\n"
						"hint: '$${' writes a literal '${'\n");
	expect("module Base { x = 1 }\nmodule A { s = \"${Bsae.x}\" }",
	       "t.pcl:2:19: error: [E2] unknown module 'Bsae'\n"
	       "hint: did you mean 'Base'? ('$${' writes a literal '${')\n");
	expect("module B { x = 1 }\nmodule A { s = \"${B.y}\" }", "t.pcl:2:21: error: [E2] module 'B' has no field 'y'\n");
}

Test(interp, other_types_are_e1_naming_the_type)
{
	expect("module B { l = [\"a\"] b = true r = { a = 1 } }\nmodule A { s = \"${B.l}\" t = \"-${B.b}\" u = \"${B.r}\" }",
	       "t.pcl:2:17: error: [E1] cannot interpolate a List<Str> into a string\n"
	       "hint: only a Str, an Int or a package's .out can go in '${...}'\n"
	       "t.pcl:2:31: error: [E1] cannot interpolate a Bool into a string\n"
	       "hint: only a Str, an Int or a package's .out can go in '${...}'\n"
	       "t.pcl:2:44: error: [E1] cannot interpolate a Rec{a: Int} into a string\n"
	       "hint: only a Str, an Int or a package's .out can go in '${...}'\n");
}

Test(interp, a_secret_is_never_put_in_a_string)
{
	expect("module B { k = { from_env = \"KEY\" } }\nmodule A { s = \"key=${B.k}\" }",
	       "t.pcl:2:21: error: [E1] secrets cannot be put in strings: 'B.k' is resolved only at deploy time\n"
	       "hint: give the secret a service's environment variable of its own: "
	       "environment = { X = { from_env = \"NAME\" } }\n");
}

Test(interp, a_cycle_through_interpolation_is_e7)
{
	expect("module A { s = \"${B.s}\" }\nmodule B { s = \"${A.s}\" }",
	       "t.pcl:2:17: error: [E7] reference cycle: A.s -> B.s -> A.s\n");
	expect("module A { s = \"x${A.s}\" }", "t.pcl:1:18: error: [E7] reference cycle: A.s -> A.s\n");
}

Test(interp, a_store_path_only_where_a_build_can_fill_it_in)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"${P.out}\" "
		   "args = [\"${P.out}/x\"] environment = { E = \"${P.out}\" } }]\n"
		   "  configFiles = [{ path = \"/etc/x\" content = \"${P.out}\" }] }\n"
		   "module Q { pname = \"q\" version = \"1\" recipe = \"std.shell\" recipeArgs = { command = \"${P.out}/bin/p\" } }",
	       "t.pcl:2:80: error: [E1] type mismatch in 'services[0].binary': expected Str, got Str (holding a store path)\n"
	       "hint: a package's store path is known only once it is built: a string holding one is allowed only in a "
	       "service's 'args' and 'environment' and a config file's 'content'\n"
	       "t.pcl:4:84: error: [E1] type mismatch in 'recipeArgs.command': expected Str, got Str (holding a store path)\n"
	       "hint: a package's store path is known only once it is built: a string holding one is allowed only in a "
	       "service's 'args' and 'environment' and a config file's 'content'\n");
	/* a composed string is checked like a literal one, and shown as written */
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"p\" "
		   "args = [\"${P.out}\\\\\"] }] }",
	       "t.pcl:2:92: error: [E6] 'services[0].args[0]' must not end in a backslash, got \"${P.out}\\\\\"\n"
	       "hint: a line ending in '\\' continues on the next one; no rendered value may end in one\n");
}

/* ---- a service's provision (docs/services.md, "State and rollback") ------ */

Test(provision, a_provision_record_checks_clean)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" "
		   "provision = { binary = \"m\" args = [\"--up\"] package = \"P\" environment = { DB = \"x\" } } }] }",
	       "ok");
}

Test(provision, not_with_a_timer_nor_on_a_disabled_service)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" "
		   "timer = { OnCalendar = \"daily\" } provision = { binary = \"m\" } }] }",
	       "t.pcl:2:129: error: [E6] a service with a 'timer' cannot have a 'provision'\n"
	       "hint: a provision runs once its service is up; a timer's service runs and exits (run the step in the "
	       "timer's job itself)\n");
	expect(PKG "module W { package = \"P\" binary = \"b\" enable = false provision = { binary = \"m\" } }",
	       "t.pcl:2:66: error: [E6] a disabled service (enable = false) cannot have a 'provision'\n"
	       "hint: a provision runs once its service is (re)started, and a disabled one never is\n");
}

Test(provision, its_fields_are_checked_where_they_are)
{
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" "
		   "provision = { binary = \"m\" arsg = [] } }] }",
	       "t.pcl:2:111: error: [E2] unknown field 'arsg' in 'services[0].provision' of module 'S'\n"
	       "hint: did you mean 'args'?\n");
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" "
		   "provision = { binary = \"m\" args = [1] environment = { T = { from_file = \"/t\" } } } }] }",
	       "t.pcl:2:119: error: [E1] type mismatch in 'services[0].provision.args[0]': expected Str, got Int\n"
	       "t.pcl:2:142: error: [E1] type mismatch in 'services[0].provision.environment.T': expected Str, got Str "
	       "(secret)\n"
	       "hint: secrets are resolved when used and are allowed only in a service's 'environment' and a url source's 'token'\n");
	expect(PKG "module S { backend = \"systemd\" services = [{ name = \"a\" package = \"P\" binary = \"b\" "
		   "provision = { binary = \"../m\" } }] }",
	       "t.pcl:2:107: error: [E6] 'services[0].provision.binary' must name a file in the package's bin/ "
	       "(letters, digits, '._+-'), got \"../m\"\n");
	expect(PKG "module W { package = \"P\" binary = \"b\" provision = [\"m\"] }",
	       "t.pcl:2:51: error: [E1] type mismatch in 'provision': expected a record, got List<Str>\n");
	expect(PKG "module W { package = \"P\" binary = \"b\" provision = { args = [] } }",
	       "t.pcl:2:51: error: [E3] missing required field 'binary' in 'provision' of module 'W'\n");
}
