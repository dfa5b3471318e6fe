/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The YAML subset of docs/decisions/0002-yaml-subset.md. The document is first cut into logical
 * lines (blank and comment-only lines dropped, indentation measured, control characters and tabs
 * rejected), then a recursive descent over those lines builds the tree: a block is a mapping or
 * a sequence according to its first line, and it ends at the first line indented less than it.
 * "- key: v" is handled by re-reading the rest of the item's line as if it started at its own
 * column, which is exactly how YAML defines compact nested blocks.
 */
#include "proto/yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "proto/buf.h"
#include "proto/macro.h"
#include "proto/mem.h"

#define YAML_MAX_BYTES (1024 * 1024)
#define YAML_MAX_DEPTH 32

struct line {
	int no;
	int indent;    /* column of the first content byte */
	const char *s; /* content from that column, trailing blanks removed */
	size_t len;
};

struct parser {
	struct line *lines;
	size_t n;
	size_t pos;
	char *errbuf;
	size_t errlen;
};

enum line_class {
	LINE_SCALAR,
	LINE_SEQ_ITEM,
	LINE_MAP_ENTRY,
};

static int fail(struct parser *p, int err, int line, const char *fmt, ...) _printf_(4, 5);
static int fail(struct parser *p, int err, int line, const char *fmt, ...)
{
	if (p->errbuf && p->errlen) {
		int n = snprintf(p->errbuf, p->errlen, "line %d: ", line);
		if (n >= 0 && (size_t)n < p->errlen) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(p->errbuf + n, p->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return err;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static size_t skip_blanks(const char *s, size_t len, size_t i)
{
	while (i < len && is_blank(s[i]))
		i++;
	return i;
}

/* True if nothing but blanks and a comment follow position i (a comment needs a blank before). */
static bool rest_is_empty(const char *s, size_t len, size_t i)
{
	size_t j = skip_blanks(s, len, i);
	if (j == len)
		return true;
	return s[j] == '#' && (j > i || i == 0 || is_blank(s[i - 1]));
}

/* A "-" that starts a block sequence item: followed by a blank or the end of the line. */
static bool is_seq_item(const char *s, size_t len)
{
	return len >= 1 && s[0] == '-' && (len == 1 || is_blank(s[1]));
}

static struct yaml_node *node_new(enum yaml_kind kind, int line)
{
	struct yaml_node *n = xcalloc(1, sizeof(*n));
	n->kind = kind;
	n->line = line;
	return n;
}

static struct yaml_node *scalar_new(int line, char *value, int quoted)
{
	struct yaml_node *n = node_new(YAML_SCALAR, line);
	n->scalar = value;
	n->quoted = quoted;
	return n;
}

void yaml_node_free(struct yaml_node *n)
{
	if (!n)
		return;
	free(n->scalar);
	for (size_t i = 0; i < n->n; i++) {
		if (n->keys)
			free(n->keys[i]);
		yaml_node_free(n->items[i]);
	}
	free(n->keys);
	free(n->key_lines);
	free(n->items);
	free(n);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct yaml_node *, yaml_node_free);
#define _cleanup_node_ _cleanup_(yaml_node_freep)

struct yaml_node *yaml_map_get(const struct yaml_node *n, const char *key)
{
	if (!n || n->kind != YAML_MAP)
		return NULL;
	for (size_t i = 0; i < n->n; i++)
		if (strcmp(n->keys[i], key) == 0)
			return n->items[i];
	return NULL;
}

/* Why a plain scalar or key may not start with c, or NULL if it may. */
static const char *indicator_error(char c)
{
	switch (c) {
	case '&':
		return "anchors (&) are not supported";
	case '*':
		return "aliases (*) are not supported";
	case '!':
		return "tags (!) are not supported";
	case '|':
	case '>':
		return "block scalars (| and >) are not supported";
	case '{':
	case '}':
		return "flow mappings ({}) are not supported";
	case '%':
		return "directives (%) are not supported";
	case '@':
	case '`':
		return "'@' and '`' are reserved and cannot start a plain value (quote it)";
	case ']':
		return "unexpected ']'";
	case ',':
		return "unexpected ',' (quote the value)";
	case '?':
		return "complex keys (?) are not supported";
	case ':':
		return "unexpected ':' (quote the value)";
	default:
		return NULL;
	}
}

static void append_utf8(struct buf *b, uint32_t cp)
{
	if (cp < 0x80) {
		buf_append_byte(b, (uint8_t)cp);
	} else if (cp < 0x800) {
		buf_append_byte(b, (uint8_t)(0xc0 | (cp >> 6)));
		buf_append_byte(b, (uint8_t)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		buf_append_byte(b, (uint8_t)(0xe0 | (cp >> 12)));
		buf_append_byte(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
		buf_append_byte(b, (uint8_t)(0x80 | (cp & 0x3f)));
	} else {
		buf_append_byte(b, (uint8_t)(0xf0 | (cp >> 18)));
		buf_append_byte(b, (uint8_t)(0x80 | ((cp >> 12) & 0x3f)));
		buf_append_byte(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
		buf_append_byte(b, (uint8_t)(0x80 | (cp & 0x3f)));
	}
}

static int hex4(const char *s, size_t len, size_t i, uint32_t *ret)
{
	uint32_t v = 0;
	if (len - i < 4)
		return -EBADMSG;
	for (size_t k = i; k < i + 4; k++) {
		char c = s[k];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -EBADMSG;
	}
	*ret = v;
	return 0;
}

/*
 * Decodes a quoted scalar starting at s[i] (the quote). *ret_end is the index just past the
 * closing quote. Quoted scalars must close on their line: multi-line folding is not supported.
 */
static int scan_quoted(struct parser *p, int line, const char *s, size_t len, size_t i,
		       size_t *ret_end, char **ret_value)
{
	_cleanup_buf_ struct buf b = BUF_INIT;
	char q = s[i++];

	for (;;) {
		if (i >= len)
			return fail(
				p, -EBADMSG, line,
				"unterminated %s-quoted string (quoted strings must end on their "
				"line)",
				q == '"' ? "double" : "single");
		char c = s[i];
		if (c == q) {
			if (q == '\'' && i + 1 < len && s[i + 1] == '\'') {
				buf_append_byte(&b, '\'');
				i += 2;
				continue;
			}
			i++;
			break;
		}
		if (q == '\'' || c != '\\') {
			buf_append_byte(&b, (uint8_t)c);
			i++;
			continue;
		}
		if (++i >= len)
			return fail(p, -EBADMSG, line, "unterminated escape sequence");
		c = s[i++];
		switch (c) {
		case '"':
		case '\\':
		case '/':
			buf_append_byte(&b, (uint8_t)c);
			break;
		case 'n':
			buf_append_byte(&b, '\n');
			break;
		case 't':
			buf_append_byte(&b, '\t');
			break;
		case 'r':
			buf_append_byte(&b, '\r');
			break;
		case '0':
			/* Values are C strings: a NUL would silently cut them short. */
			return fail(p, -EBADMSG, line,
				    "a NUL character (\\0) cannot appear in a value");
		case 'u': {
			uint32_t cp, lo;
			if (hex4(s, len, i, &cp) < 0)
				return fail(p, -EBADMSG, line, "\\u needs four hexadecimal digits");
			i += 4;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return fail(p, -EBADMSG, line, "unpaired UTF-16 surrogate \\u%04X",
					    cp);
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (i + 2 > len || s[i] != '\\' || s[i + 1] != 'u' ||
				    hex4(s, len, i + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
					return fail(p, -EBADMSG, line,
						    "unpaired UTF-16 surrogate \\u%04X", cp);
				i += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp == 0)
				return fail(p, -EBADMSG, line,
					    "a NUL character (\\u0000) cannot appear in a value");
			append_utf8(&b, cp);
			break;
		}
		default:
			if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
				return fail(p, -EBADMSG, line, "unsupported escape sequence \\%c",
					    c);
			return fail(p, -EBADMSG, line, "unsupported escape sequence");
		}
	}
	*ret_end = i;
	*ret_value = b.data ? (char *)buf_steal(&b, NULL) : xstrdup("");
	return 0;
}

/* Plain "null" and "~" mean an empty value; quoted ones are the strings themselves. */
static char *plain_value(const char *s, size_t len)
{
	if ((len == 1 && s[0] == '~') ||
	    (len == 4 &&
	     (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 || memcmp(s, "NULL", 4) == 0)))
		return xstrdup("");
	return xstrndup(s, len);
}

/* Checks the first character of a plain scalar (block or flow context). */
static int check_plain_start(struct parser *p, int line, const char *s, size_t len)
{
	const char *why = indicator_error(s[0]);
	/* "?x", ":x" and "-x" are ordinary text in YAML; only "? ", ": ", "- " are indicators. */
	if ((s[0] == '?' || s[0] == ':') && len > 1 && !is_blank(s[1]))
		why = NULL;
	if (why)
		return fail(p, -EBADMSG, line, "%s", why);
	if (is_seq_item(s, len))
		return fail(p, -EBADMSG, line,
			    "a sequence item cannot start on the line of a mapping value");
	return 0;
}

/* True if [s, s+len) holds ": " or ends with ":", which would make it a mapping. */
static bool has_mapping_colon(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] == ':' && (i + 1 == len || is_blank(s[i + 1])))
			return true;
	return false;
}

static int parse_flow_seq(struct parser *p, int line, const char *s, size_t len, size_t i,
			  size_t *ret_end, struct yaml_node **ret)
{
	_cleanup_node_ struct yaml_node *seq = node_new(YAML_SEQ, line);
	size_t cap = 0;

	i = skip_blanks(s, len, i + 1);
	if (i < len && s[i] == ']') {
		*ret_end = i + 1;
		*ret = TAKE_PTR(seq);
		return 0;
	}
	for (;;) {
		i = skip_blanks(s, len, i);
		if (i >= len || (s[i] == '#' && is_blank(s[i - 1])))
			return fail(
				p, -EBADMSG, line,
				"unterminated flow sequence (a [...] list must end on its line)");
		if (s[i] == ']') {
			/* "[a, b,]": YAML allows one trailing comma */
			i++;
			break;
		}
		char *value;
		int quoted = 0;
		if (s[i] == ',')
			return fail(p, -EBADMSG, line, "empty item in a flow sequence");
		if (s[i] == '[')
			return fail(p, -EBADMSG, line, "nested flow sequences are not supported");
		if (s[i] == '"' || s[i] == '\'') {
			int r = scan_quoted(p, line, s, len, i, &i, &value);
			if (r < 0)
				return r;
			quoted = 1;
		} else {
			size_t start = i, end;
			int r = check_plain_start(p, line, s + i, len - i);
			if (r < 0)
				return r;
			while (i < len && s[i] != ',' && s[i] != ']' &&
			       !(s[i] == '#' && is_blank(s[i - 1]))) {
				/* YAML forbids these inside a plain scalar in flow context */
				if (s[i] == '[' || s[i] == '{' || s[i] == '}')
					return fail(p, -EBADMSG, line,
						    "unexpected '%c' in a flow sequence (quote the "
						    "value)",
						    s[i]);
				i++;
			}
			end = i;
			while (end > start && is_blank(s[end - 1]))
				end--;
			if (has_mapping_colon(s + start, end - start))
				return fail(p, -EBADMSG, line,
					    "flow mappings (key: value inside [...]) are not "
					    "supported");
			value = plain_value(s + start, end - start);
		}
		seq->items = xgrow(seq->items, &cap, seq->n + 1, sizeof(*seq->items));
		seq->items[seq->n++] = scalar_new(line, value, quoted);
		i = skip_blanks(s, len, i);
		if (i >= len || (s[i] == '#' && is_blank(s[i - 1])))
			return fail(
				p, -EBADMSG, line,
				"unterminated flow sequence (a [...] list must end on its line)");
		if (s[i] == ',') {
			i++;
			continue;
		}
		if (s[i] == ']') {
			i++;
			break;
		}
		return fail(p, -EBADMSG, line, "expected ',' or ']' in a flow sequence");
	}
	*ret_end = i;
	*ret = TAKE_PTR(seq);
	return 0;
}

/* A value on the same line as its key or "-": empty, a flow sequence, quoted or plain. */
static int parse_inline(struct parser *p, int line, const char *s, size_t len, int depth,
			struct yaml_node **ret)
{
	_cleanup_node_ struct yaml_node *n = NULL;
	size_t i = skip_blanks(s, len, 0), end = 0;

	if (rest_is_empty(s, len, 0)) {
		*ret = scalar_new(line, xstrdup(""), 0);
		return 0;
	}
	if (s[i] == '[') {
		if (depth > YAML_MAX_DEPTH)
			return fail(p, -EMSGSIZE, line, "nesting deeper than %d levels",
				    YAML_MAX_DEPTH);
		int r = parse_flow_seq(p, line, s, len, i, &end, &n);
		if (r < 0)
			return r;
		if (!rest_is_empty(s, len, end))
			return fail(p, -EBADMSG, line, "unexpected text after ']'");
	} else if (s[i] == '"' || s[i] == '\'') {
		char *value;
		int r = scan_quoted(p, line, s, len, i, &end, &value);
		if (r < 0)
			return r;
		n = scalar_new(line, value, 1);
		if (!rest_is_empty(s, len, end))
			return fail(p, -EBADMSG, line, "unexpected text after a quoted string");
	} else {
		int r = check_plain_start(p, line, s + i, len - i);
		if (r < 0)
			return r;
		size_t start = i;
		while (i < len && !(s[i] == '#' && is_blank(s[i - 1])))
			i++;
		end = i;
		while (end > start && is_blank(s[end - 1]))
			end--;
		if (has_mapping_colon(s + start, end - start))
			return fail(p, -EBADMSG, line,
				    "unexpected ': ' in a value (nested mappings go on their own "
				    "lines; quote the value if the colon is part of it)");
		n = scalar_new(line, plain_value(s + start, end - start), 0);
	}
	*ret = TAKE_PTR(n);
	return 0;
}

/* Classifies a line's content by its first token; a mapping entry is a key followed by ": ". */
static enum line_class classify(const char *s, size_t len)
{
	if (is_seq_item(s, len))
		return LINE_SEQ_ITEM;
	if (s[0] == '"' || s[0] == '\'') {
		/* A quoted key: find the closing quote without decoding, then a ':'. */
		char q = s[0];
		size_t i = 1;
		while (i < len) {
			if (s[i] == q) {
				if (q == '\'' && i + 1 < len && s[i + 1] == '\'') {
					i += 2;
					continue;
				}
				break;
			}
			if (q == '"' && s[i] == '\\')
				i++;
			i++;
		}
		if (i >= len)
			return LINE_SCALAR;
		i = skip_blanks(s, len, i + 1);
		if (i < len && s[i] == ':' && (i + 1 == len || is_blank(s[i + 1])))
			return LINE_MAP_ENTRY;
		return LINE_SCALAR;
	}
	if (s[0] == '[')
		return LINE_SCALAR;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '#' && i > 0 && is_blank(s[i - 1]))
			break;
		if (s[i] == ':' && (i + 1 == len || is_blank(s[i + 1])))
			return LINE_MAP_ENTRY;
	}
	return LINE_SCALAR;
}

static int parse_block(struct parser *p, int depth, struct yaml_node **ret);

/* The next line not yet consumed, or NULL at the end. */
static struct line *peek(struct parser *p)
{
	return p->pos < p->n ? &p->lines[p->pos] : NULL;
}

/*
 * The value of a key or "-" that had nothing after it on its line: a nested block if the next
 * line is more indented; a sequence at the same indentation when allowed (mapping values only,
 * as YAML does); otherwise an empty scalar.
 */
static int parse_nested(struct parser *p, int indent, int line, bool same_indent_seq, int depth,
			struct yaml_node **ret)
{
	struct line *next = peek(p);
	if (next && next->indent > indent)
		return parse_block(p, depth, ret);
	if (next && same_indent_seq && next->indent == indent && is_seq_item(next->s, next->len))
		return parse_block(p, depth, ret);
	*ret = scalar_new(line, xstrdup(""), 0);
	return 0;
}

struct key_ref {
	const char *key;
	size_t idx;
};

static int key_ref_cmp(const void *a, const void *b)
{
	const struct key_ref *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Duplicate keys, found by sorting once the mapping is complete: O(n log n) whatever the keys,
 * where a hash set could be driven quadratic by a crafted file. Reports the earliest repetition.
 */
static int check_duplicates(struct parser *p, const struct yaml_node *map)
{
	_cleanup_free_ struct key_ref *refs = NULL;
	size_t dup = SIZE_MAX, first = 0;

	if (map->n < 2)
		return 0;
	refs = xmalloc(map->n * sizeof(*refs));
	for (size_t i = 0; i < map->n; i++)
		refs[i] = (struct key_ref){map->keys[i], i};
	qsort(refs, map->n, sizeof(*refs), key_ref_cmp);
	for (size_t i = 1; i < map->n; i++) {
		/* equal keys sort by position: refs[i - 1] is the first of a run, or a repeat */
		if (strcmp(refs[i - 1].key, refs[i].key) != 0 || refs[i].idx > dup)
			continue;
		if (i >= 2 && strcmp(refs[i - 2].key, refs[i].key) == 0)
			continue; /* a third occurrence: the second one is earlier */
		dup = refs[i].idx;
		first = refs[i - 1].idx;
	}
	if (dup == SIZE_MAX)
		return 0;
	return fail(p, -EBADMSG, map->key_lines[dup], "duplicate key '%s' (first on line %d)",
		    map->keys[dup], map->key_lines[first]);
}

static int parse_key(struct parser *p, struct line *l, char **ret_key, size_t *ret_rest)
{
	const char *s = l->s;
	size_t len = l->len, i;

	if (s[0] == '"' || s[0] == '\'') {
		char *key;
		int r = scan_quoted(p, l->no, s, len, 0, &i, &key);
		if (r < 0)
			return r;
		i = skip_blanks(s, len, i);
		if (i >= len || s[i] != ':') {
			free(key);
			return fail(p, -EBADMSG, l->no, "expected ':' after a quoted key");
		}
		*ret_key = key;
		*ret_rest = i + 1;
		return 0;
	}
	for (i = 0; i < len; i++)
		if (s[i] == ':' && (i + 1 == len || is_blank(s[i + 1])))
			break;
	size_t end = i;
	while (end > 0 && is_blank(s[end - 1]))
		end--;
	if (end == 0)
		return fail(p, -EBADMSG, l->no, "empty mapping key");
	const char *why = indicator_error(s[0]);
	if ((s[0] == '?' || s[0] == ':') && end > 1 && !is_blank(s[1]))
		why = NULL;
	if (why)
		return fail(p, -EBADMSG, l->no, "%s", why);
	*ret_key = xstrndup(s, end);
	*ret_rest = i + 1;
	return 0;
}

static int parse_map(struct parser *p, int indent, int depth, struct yaml_node **ret)
{
	_cleanup_node_ struct yaml_node *map = node_new(YAML_MAP, p->lines[p->pos].no);
	size_t cap = 0;

	for (;;) {
		struct line *l = peek(p);
		if (!l || l->indent < indent)
			break;
		if (l->indent > indent)
			return fail(p, -EBADMSG, l->no, "inconsistent indentation");
		enum line_class cls = classify(l->s, l->len);
		if (cls == LINE_SEQ_ITEM)
			return fail(p, -EBADMSG, l->no,
				    "a sequence item where a mapping key was expected");
		if (cls != LINE_MAP_ENTRY)
			return fail(p, -EBADMSG, l->no, "expected 'key: value' (missing ':'?)");

		char *key = NULL;
		size_t rest = 0;
		int r = parse_key(p, l, &key, &rest);
		if (r < 0)
			return r;
		size_t cap_before = cap;
		map->keys = xgrow(map->keys, &cap, map->n + 1, sizeof(*map->keys));
		if (cap != cap_before) {
			map->key_lines = xrealloc(map->key_lines, cap * sizeof(*map->key_lines));
			map->items = xrealloc(map->items, cap * sizeof(*map->items));
		}
		map->keys[map->n] = key;
		map->key_lines[map->n] = l->no;
		map->items[map->n] = NULL;
		map->n++;

		p->pos++;
		const char *v = l->s + rest;
		size_t vlen = l->len - rest;
		if (rest_is_empty(v, vlen, 0))
			r = parse_nested(p, indent, l->no, true, depth + 1,
					 &map->items[map->n - 1]);
		else
			r = parse_inline(p, l->no, v, vlen, depth + 1, &map->items[map->n - 1]);
		if (r < 0)
			return r;
	}
	int r = check_duplicates(p, map);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(map);
	return 0;
}

static int parse_seq(struct parser *p, int indent, int depth, struct yaml_node **ret)
{
	_cleanup_node_ struct yaml_node *seq = node_new(YAML_SEQ, p->lines[p->pos].no);
	size_t cap = 0;

	for (;;) {
		struct line *l = peek(p);
		if (!l || l->indent < indent)
			break;
		if (l->indent > indent)
			return fail(p, -EBADMSG, l->no, "inconsistent indentation");
		if (!is_seq_item(l->s, l->len))
			break; /* back to a mapping at the same indentation */

		seq->items = xgrow(seq->items, &cap, seq->n + 1, sizeof(*seq->items));
		seq->items[seq->n] = NULL;
		seq->n++;
		struct yaml_node **item = &seq->items[seq->n - 1];

		size_t off = 1;
		while (off < l->len && l->s[off] == ' ')
			off++;
		int r;
		if (rest_is_empty(l->s, l->len, 1)) {
			p->pos++;
			r = parse_nested(p, indent, l->no, false, depth + 1, item);
		} else {
			if (l->s[off] == '\t')
				return fail(p, -EBADMSG, l->no, "tab character in indentation");
			/* Re-read the rest of the line as if it began at its own column. */
			l->s += off;
			l->len -= off;
			l->indent += (int)off;
			if (classify(l->s, l->len) == LINE_SCALAR) {
				p->pos++;
				r = parse_inline(p, l->no, l->s, l->len, depth + 1, item);
			} else {
				r = parse_block(p, depth + 1, item);
			}
		}
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(seq);
	return 0;
}

/* Parses the block that starts at the current line, at that line's indentation. */
static int parse_block(struct parser *p, int depth, struct yaml_node **ret)
{
	struct line *l = peek(p);

	enum line_class cls = classify(l->s, l->len);

	if (cls == LINE_SCALAR) {
		p->pos++;
		return parse_inline(p, l->no, l->s, l->len, depth, ret);
	}
	/* Only collections count as levels: a scalar ends the descent. */
	if (depth > YAML_MAX_DEPTH)
		return fail(p, -EMSGSIZE, l->no, "nesting deeper than %d levels", YAML_MAX_DEPTH);
	if (cls == LINE_SEQ_ITEM)
		return parse_seq(p, l->indent, depth, ret);
	return parse_map(p, l->indent, depth, ret);
}

/* Cuts the text into content lines, enforcing the character-level rules. */
static int split_lines(struct parser *p, const char *text, size_t len)
{
	size_t cap = 0, i = 0;
	bool content_seen = false, doc_start_seen = false;
	int no = 0;

	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < len) {
		size_t start = i, end;
		const char *nl = memchr(text + i, '\n', len - i);
		end = nl ? (size_t)(nl - text) : len;
		i = nl ? end + 1 : len;
		no++;
		if (end > start && text[end - 1] == '\r')
			end--;
		for (size_t k = start; k < end; k++) {
			unsigned char c = (unsigned char)text[k];
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return fail(p, -EBADMSG, no, "control character 0x%02x", c);
		}
		size_t k = start;
		while (k < end && text[k] == ' ')
			k++;
		size_t indent = k - start;
		while (k < end && is_blank(text[k]))
			k++;
		while (end > k && is_blank(text[end - 1]))
			end--;
		if (k == end || text[k] == '#')
			continue;
		if (k - start != indent)
			return fail(p, -EBADMSG, no, "tab character in indentation");
		const char *s = text + k;
		size_t slen = end - k;
		if (indent == 0 && slen > 3 &&
		    (memcmp(s, "---", 3) == 0 || memcmp(s, "...", 3) == 0) && is_blank(s[3]) &&
		    !rest_is_empty(s, slen, 3))
			return fail(p, -EBADMSG, no, "content on a '%.3s' line is not supported",
				    s);
		if (indent == 0 && slen >= 3 && memcmp(s, "---", 3) == 0 &&
		    rest_is_empty(s, slen, 3)) {
			if (content_seen || doc_start_seen)
				return fail(p, -EBADMSG, no,
					    "multiple documents are not supported");
			doc_start_seen = true;
			continue;
		}
		if (indent == 0 && slen >= 3 && memcmp(s, "...", 3) == 0 &&
		    rest_is_empty(s, slen, 3))
			return fail(p, -EBADMSG, no,
				    "document end markers (...) are not supported");
		if (indent == 0 && s[0] == '%')
			return fail(p, -EBADMSG, no, "directives (%%) are not supported");
		content_seen = true;
		p->lines = xgrow(p->lines, &cap, p->n + 1, sizeof(*p->lines));
		p->lines[p->n++] = (struct line){
			.no = no,
			.indent = (int)indent,
			.s = s,
			.len = slen,
		};
	}
	return 0;
}

int yaml_parse(const char *text, size_t len, struct yaml_node **ret_root, char *errbuf,
	       size_t errlen)
{
	struct parser p = {.errbuf = errbuf, .errlen = errlen};
	_cleanup_node_ struct yaml_node *root = NULL;
	int r;

	if (errbuf && errlen)
		errbuf[0] = 0;
	if (len > YAML_MAX_BYTES)
		return fail(&p, -EMSGSIZE, 1, "document larger than %d bytes", YAML_MAX_BYTES);

	r = split_lines(&p, text, len);
	if (r < 0)
		goto out;
	if (p.n == 0) {
		root = node_new(YAML_MAP, 1);
	} else {
		/* saved now: parsing "- item" lines moves their recorded indentation */
		int root_indent = p.lines[0].indent;
		r = parse_block(&p, 1, &root);
		if (r < 0)
			goto out;
		if (p.pos < p.n) {
			r = fail(&p, -EBADMSG, p.lines[p.pos].no, "%s",
				 p.lines[p.pos].indent == root_indent
					 ? "unexpected content after the top-level value"
					 : "inconsistent indentation");
			goto out;
		}
	}
	*ret_root = TAKE_PTR(root);
	r = 0;
out:
	free(p.lines);
	return r;
}
