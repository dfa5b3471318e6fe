/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The YAML subset: every accepted construct is checked through a compact dump of the tree, every
 * rejected one through its errno, the line named in the message and a phrase of the message.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/buf.h"
#include "proto/yaml.h"

/* plain scalar: text (empty: ~); quoted: 'text'; map: {k=v,...}; seq: [a,b] */
static void dump(struct buf *b, const struct yaml_node *n)
{
	switch (n->kind) {
	case YAML_SCALAR:
		if (n->quoted)
			buf_printf(b, "'%s'", n->scalar);
		else
			buf_append_str(b, n->scalar[0] ? n->scalar : "~");
		break;
	case YAML_MAP:
		buf_append_str(b, "{");
		for (size_t i = 0; i < n->n; i++) {
			buf_printf(b, "%s%s=", i ? "," : "", n->keys[i]);
			dump(b, n->items[i]);
		}
		buf_append_str(b, "}");
		break;
	case YAML_SEQ:
		buf_append_str(b, "[");
		for (size_t i = 0; i < n->n; i++) {
			if (i)
				buf_append_str(b, ",");
			dump(b, n->items[i]);
		}
		buf_append_str(b, "]");
		break;
	}
}

static const struct {
	const char *doc;
	const char *tree;
} valid[] = {
	{"", "{}"},
	{"# only a comment\n\n   \n", "{}"},
	{"---\n", "{}"},
	{"--- # start\na: 1\n", "{a=1}"},
	{"a: 1\nb: two words\n", "{a=1,b=two words}"},
	{"a:   spaced   \n", "{a=spaced}"},
	{"a: 1 # comment\n", "{a=1}"},
	{"a: x#y\n", "{a=x#y}"},
	{"a: http://h:80/p\n", "{a=http://h:80/p}"},
	{"url: http://ocsp.example/\n", "{url=http://ocsp.example/}"},
	{"a:\n", "{a=~}"},
	{"a: ~\nb: null\nc: 'null'\n", "{a=~,b=~,c='null'}"},
	{"a: ''\n", "{a=''}"},
	{"a:\n  b: 1\n  c:\n    d: x\ne: 2\n", "{a={b=1,c={d=x}},e=2}"},
	{"a:\n    b: 1\n", "{a={b=1}}"},
	{"a:\n  - x\n  - y\n", "{a=[x,y]}"},
	{"a:\n- x\n- y\nb: 1\n", "{a=[x,y],b=1}"},
	{"- a\n- b\n", "[a,b]"},
	{"-   a\n-  b\n", "[a,b]"},
	{"a: [1 2, b c]\n", "{a=[1 2,b c]}"},
	{"- a: 1\n  b: 2\n- c\n", "[{a=1,b=2},c]"},
	{"-   a: 1\n    b: 2\n", "[{a=1,b=2}]"},
	{"- a:\n  - x\n  b: 1\n", "[{a=[x],b=1}]"},
	{"- - a\n  - b\n- c\n", "[[a,b],c]"},
	{"-\n  a: 1\n-\n- x\n", "[{a=1},~,x]"},
	{"a: [x, 'y', \"z\", 3]\n", "{a=[x,'y','z',3]}"},
	{"a: []\n", "{a=[]}"},
	{"a: [ ]\n", "{a=[]}"},
	{"a: [x,]\n", "{a=[x]}"},
	{"a: [127.0.0.1:80, \"[::1]:80\"] # two\n", "{a=[127.0.0.1:80,'[::1]:80']}"},
	{"a: 'it''s'\n", "{a='it's'}"},
	{"a: \"q\\\"b\\\\s\\/\"\n", "{a='q\"b\\s/'}"},
	{"a: \"x # not a comment\"\n", "{a='x # not a comment'}"},
	{"a: it's fine\n", "{a=it's fine}"},
	{"\"quoted key\": 1\n'k2' : 2\n", "{quoted key=1,k2=2}"},
	{"a-b: -1\n-c: 2\n", "{a-b=-1,-c=2}"},
	{"a: 1\r\nb: 2\r\n", "{a=1,b=2}"},
	{"\xef\xbb\xbf"
	 "a: 1\n",
	 "{a=1}"},
	{"a: 1", "{a=1}"},
	{"scalar\n", "scalar"},
	{"  a: 1\n  b: 2\n", "{a=1,b=2}"},
	{"a:\n  just a scalar\n", "{a=just a scalar}"},
	{"a:\tb\n", "{a=b}"},
	{"a: b\t# tab before comment\n", "{a=b}"},
	{"\t# tab before a comment line\na: 1\n", "{a=1}"},
	{"a: ?x\nb: :y\n", "{a=?x,b=:y}"},
	{"a: x:y\n", "{a=x:y}"},
	{"---x: 1\n", "{---x=1}"},
	{"a: x{y}\n", "{a=x{y}}"},
	{"a:\n  # comment in a block\n  b: 1\n", "{a={b=1}}"},
};

static void test_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		struct yaml_node *root = NULL;
		char err[256];
		int r = yaml_parse(valid[i].doc, strlen(valid[i].doc), &root, err, sizeof(err));
		if (r < 0)
			fail_msg("case %zu (%s): %d %s", i, valid[i].doc, r, err);
		struct buf b = BUF_INIT;
		dump(&b, root);
		if (strcmp((char *)b.data, valid[i].tree) != 0)
			fail_msg("case %zu: got %s, want %s", i, (char *)b.data, valid[i].tree);
		buf_done(&b);
		yaml_node_free(root);
	}
}

static const struct {
	const char *doc;
	int err;
	int line;
	const char *msg;
} invalid[] = {
	{"a: 1\n\tb: 2\n", -EBADMSG, 2, "tab"},
	{"a:\n  \t b: 2\n", -EBADMSG, 2, "tab"},
	{"- a\n-\tb: 1\n", -EBADMSG, 2, "tab"},
	{"a: &x 1\n", -EBADMSG, 1, "anchors"},
	{"&x a: 1\n", -EBADMSG, 1, "anchors"},
	{"a: 1\nb: *x\n", -EBADMSG, 2, "aliases"},
	{"a: !!str 1\n", -EBADMSG, 1, "tags"},
	{"a: |\n  text\n", -EBADMSG, 1, "block scalars"},
	{"a: >\n  text\n", -EBADMSG, 1, "block scalars"},
	{"a: {b: 1}\n", -EBADMSG, 1, "flow mappings"},
	{"a: [b: 1]\n", -EBADMSG, 1, "flow mappings"},
	{"a: [[1]]\n", -EBADMSG, 1, "nested flow"},
	{"a: [1, {b}]\n", -EBADMSG, 1, "flow mappings"},
	{"a: [1,\n  2]\n", -EBADMSG, 1, "unterminated flow"},
	{"a: [1, 2\n", -EBADMSG, 1, "unterminated"},
	{"a: ['1' 2]\n", -EBADMSG, 1, "expected ',' or ']'"},
	{"-\tb\n", -EBADMSG, 1, "tab"},
	{"a: [1] x\n", -EBADMSG, 1, "after ']'"},
	{"a: [1, , 2]\n", -EBADMSG, 1, "empty item"},
	{"a: [,]\n", -EBADMSG, 1, "empty item"},
	{"a: [1 # c]\n", -EBADMSG, 1, "unterminated"},
	{"a: 1\n---\nb: 2\n", -EBADMSG, 2, "multiple documents"},
	{"---\n---\n", -EBADMSG, 2, "multiple documents"},
	{"a: 1\n...\n", -EBADMSG, 2, "document end"},
	{"--- a: 1\n", -EBADMSG, 1, "content on a '---' line"},
	{"a: 1\n... x\n", -EBADMSG, 2, "content on a '...' line"},
	{"a: [x{y]\n", -EBADMSG, 1, "unexpected '{'"},
	{"a: [x[y]]\n", -EBADMSG, 1, "unexpected '['"},
	{"%YAML 1.2\n---\na: 1\n", -EBADMSG, 1, "directives"},
	{"a: 1\nb: 2\na: 3\n", -EBADMSG, 3, "duplicate key 'a' (first on line 1)"},
	{"x:\n  a: 1\n  'a': 2\n", -EBADMSG, 3, "duplicate key"},
	{"c: 0\nb: 1\na: 2\nb: 3\na: 4\nc: 5\n", -EBADMSG, 4,
	 "duplicate key 'b' (first on line 2)"},
	{"a: 1\na: 2\na: 3\n", -EBADMSG, 2, "duplicate key 'a' (first on line 1)"},
	{"- a: 1\n  b: 2\n  a: 3\n", -EBADMSG, 3, "duplicate key 'a' (first on line 1)"},
	{"a:\n  b: 1\n   c: 2\n", -EBADMSG, 3, "inconsistent indentation"},
	{"a:\n    b: 1\n  c: 2\n", -EBADMSG, 3, "inconsistent indentation"},
	{"a: 1\n  b: 2\n", -EBADMSG, 2, "inconsistent indentation"},
	{"- a\n  - b\n", -EBADMSG, 2, "inconsistent indentation"},
	{"a: 1\nb\n", -EBADMSG, 2, "missing ':'"},
	{"a: 1\n- b\n", -EBADMSG, 2, "sequence item"},
	{"- a\nb: 1\n", -EBADMSG, 2, "after the top-level"},
	{"a: b: c\n", -EBADMSG, 1, "unexpected ': '"},
	{"a: - b\n", -EBADMSG, 1, "sequence item"},
	{"a: 1\nb: 'x\n", -EBADMSG, 2, "unterminated single-quoted"},
	{"a: \"x\n", -EBADMSG, 1, "unterminated double-quoted"},
	{"a: \"x\" y\n", -EBADMSG, 1, "after a quoted string"},
	{"a: \"\\q\"\n", -EBADMSG, 1, "escape sequence \\q"},
	{"a: \"\\u12\"\n", -EBADMSG, 1, "four hexadecimal"},
	{"a: \"\\uDC00\"\n", -EBADMSG, 1, "surrogate"},
	{"a: \"\\uD800x\"\n", -EBADMSG, 1, "surrogate"},
	{"a: \"\\0\"\n", -EBADMSG, 1, "NUL"},
	{"a: \"\\u0000\"\n", -EBADMSG, 1, "NUL"},
	{"a: \"x\\", -EBADMSG, 1, "unterminated"},
	{"a: 1\nb: \x01\n", -EBADMSG, 2, "control character 0x01"},
	{"a: 1\rb: 2\n", -EBADMSG, 1, "control character 0x0d"},
	{"a: \x7f\n", -EBADMSG, 1, "control character 0x7f"},
	{"? a\n: b\n", -EBADMSG, 1, "complex keys"},
	{": a\n", -EBADMSG, 1, "empty mapping key"},
	{"'a' x: 1\n", -EBADMSG, 1, "after a quoted string"},
	{"a: @x\n", -EBADMSG, 1, "reserved"},
	{"a: `x\n", -EBADMSG, 1, "reserved"},
	{"a: ,x\n", -EBADMSG, 1, "unexpected ','"},
	{"a:\n  b: 1\nc: 2\n  d: 3\n", -EBADMSG, 4, "inconsistent indentation"},
	{"  a: 1\nb: 2\n", -EBADMSG, 2, "inconsistent indentation"},
};

static void test_invalid(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		struct yaml_node *root = (struct yaml_node *)0x1;
		char err[256] = "";
		char want[32];
		int r = yaml_parse(invalid[i].doc, strlen(invalid[i].doc), &root, err, sizeof(err));
		if (r != invalid[i].err)
			fail_msg("case %zu (%s): got %d, want %d", i, invalid[i].doc, r,
				 invalid[i].err);
		/* ret_root is written only on success */
		assert_ptr_equal(root, (struct yaml_node *)0x1);
		snprintf(want, sizeof(want), "line %d: ", invalid[i].line);
		if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, invalid[i].msg))
			fail_msg("case %zu: message \"%s\", want \"%s…%s\"", i, err, want,
				 invalid[i].msg);
	}
}

static void test_nul_byte(void **state)
{
	(void)state;
	static const char doc[] = "a: 1\nb: x\0y\n";
	struct yaml_node *root = NULL;
	char err[128];
	assert_int_equal(yaml_parse(doc, sizeof(doc) - 1, &root, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "line 2: control character 0x00");
}

static void test_lines_and_get(void **state)
{
	(void)state;
	static const char doc[] = "# header\n"
				  "a: 1\n"
				  "\n"
				  "b:\n"
				  "  - x\n"
				  "  - k: v\n"
				  "    j: w\n"
				  "c: [p, q]\n";
	struct yaml_node *root = NULL;
	char err[128];
	assert_int_equal(yaml_parse(doc, strlen(doc), &root, err, sizeof(err)), 0);
	assert_int_equal(root->kind, YAML_MAP);
	assert_int_equal(root->line, 2);
	assert_int_equal(root->n, 3);
	assert_int_equal(root->key_lines[0], 2);
	assert_int_equal(root->key_lines[1], 4);
	assert_int_equal(root->key_lines[2], 8);

	struct yaml_node *a = yaml_map_get(root, "a");
	assert_non_null(a);
	assert_int_equal(a->kind, YAML_SCALAR);
	assert_string_equal(a->scalar, "1");
	assert_int_equal(a->quoted, 0);
	assert_int_equal(a->line, 2);

	struct yaml_node *b = yaml_map_get(root, "b");
	assert_non_null(b);
	assert_int_equal(b->kind, YAML_SEQ);
	assert_int_equal(b->line, 5);
	assert_int_equal(b->n, 2);
	assert_int_equal(b->items[0]->line, 5);
	assert_int_equal(b->items[1]->kind, YAML_MAP);
	assert_int_equal(b->items[1]->line, 6);
	assert_int_equal(b->items[1]->key_lines[1], 7);
	assert_string_equal(yaml_map_get(b->items[1], "j")->scalar, "w");

	struct yaml_node *c = yaml_map_get(root, "c");
	assert_int_equal(c->kind, YAML_SEQ);
	assert_int_equal(c->items[1]->line, 8);

	assert_null(yaml_map_get(root, "d"));
	assert_null(yaml_map_get(a, "a"));
	assert_null(yaml_map_get(NULL, "a"));
	yaml_node_free(root);
	yaml_node_free(NULL);
}

static void test_unicode_escapes(void **state)
{
	(void)state;
	static const char doc[] = "a: \"\\u00e9\\u20ac\\uD83D\\uDE00\\n\\t\\r\"\n"
				  "b: 'caf\xc3\xa9'\n";
	struct yaml_node *root = NULL;
	char err[128];
	assert_int_equal(yaml_parse(doc, strlen(doc), &root, err, sizeof(err)), 0);
	assert_string_equal(yaml_map_get(root, "a")->scalar,
			    "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\n\t\r");
	assert_int_equal(yaml_map_get(root, "a")->quoted, 1);
	assert_string_equal(yaml_map_get(root, "b")->scalar, "caf\xc3\xa9");
	yaml_node_free(root);
}

/* A document of `levels` nested mappings: k: / k: / ... / k: v. */
static char *nested_doc(int levels)
{
	struct buf b = BUF_INIT;
	for (int i = 0; i < levels; i++)
		buf_printf(&b, "%*sk%s\n", i, "", i + 1 == levels ? ": v" : ":");
	return (char *)buf_steal(&b, NULL);
}

static void test_depth_limit(void **state)
{
	(void)state;
	struct yaml_node *root = NULL;
	char err[128];
	char *ok = nested_doc(32); /* 32 mappings; the scalar is not a level */
	char *deep = nested_doc(33);
	assert_int_equal(yaml_parse(ok, strlen(ok), &root, err, sizeof(err)), 0);
	yaml_node_free(root);
	root = NULL;
	assert_int_equal(yaml_parse(deep, strlen(deep), &root, err, sizeof(err)), -EMSGSIZE);
	assert_null(root);
	assert_non_null(strstr(err, "line 33: nesting deeper than 32"));
	free(ok);
	free(deep);

	/* the same through sequences and a flow sequence at the bottom */
	struct buf b = BUF_INIT;
	for (int i = 0; i < 40; i++)
		buf_printf(&b, "%*s-\n", 2 * i, "");
	assert_int_equal(yaml_parse((char *)b.data, b.len, &root, err, sizeof(err)), -EMSGSIZE);
	buf_done(&b);
	for (int i = 0; i < 32; i++)
		buf_append_str(&b, "- ");
	buf_append_str(&b, "[x]\n");
	assert_int_equal(yaml_parse((char *)b.data, b.len, &root, err, sizeof(err)), -EMSGSIZE);
	buf_done(&b);
}

static void test_size_limit(void **state)
{
	(void)state;
	size_t len = 1024 * 1024;
	char *doc = malloc(len + 1);
	struct yaml_node *root = NULL;
	char err[128];

	assert_non_null(doc);
	/* exactly 1 MiB of comment lines is accepted; one byte more is not */
	memset(doc, '\n', len + 1);
	for (size_t i = 0; i + 64 <= len; i += 64)
		memcpy(doc + i, "# padding", 9);
	assert_int_equal(yaml_parse(doc, len, &root, err, sizeof(err)), 0);
	assert_int_equal(root->kind, YAML_MAP);
	assert_int_equal(root->n, 0);
	yaml_node_free(root);
	root = NULL;
	assert_int_equal(yaml_parse(doc, len + 1, &root, err, sizeof(err)), -EMSGSIZE);
	assert_null(root);
	free(doc);
}

static void test_many_keys(void **state)
{
	(void)state;
	/* the duplicate check must stay correct past the key set's growth */
	struct buf b = BUF_INIT;
	struct yaml_node *root = NULL;
	char err[128];
	for (int i = 0; i < 5000; i++)
		buf_printf(&b, "key%d: %d\n", i, i);
	assert_int_equal(yaml_parse((char *)b.data, b.len, &root, err, sizeof(err)), 0);
	assert_int_equal(root->n, 5000);
	assert_string_equal(yaml_map_get(root, "key4321")->scalar, "4321");
	yaml_node_free(root);
	root = NULL;
	buf_append_str(&b, "key1234: again\n");
	assert_int_equal(yaml_parse((char *)b.data, b.len, &root, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "line 5001: duplicate key 'key1234' (first on line 1235)");
	buf_done(&b);
}

static void test_small_errbuf(void **state)
{
	(void)state;
	struct yaml_node *root = NULL;
	char err[8];
	assert_int_equal(yaml_parse("a: &x\n", 6, &root, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "line 1:");
	assert_int_equal(yaml_parse("a: &x\n", 6, &root, NULL, 0), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_nul_byte),	cmocka_unit_test(test_lines_and_get),
		cmocka_unit_test(test_unicode_escapes), cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_size_limit),	cmocka_unit_test(test_many_keys),
		cmocka_unit_test(test_small_errbuf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
