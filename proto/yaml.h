/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A strict YAML subset for stapled's configuration file (see docs/decisions/0002-yaml-subset.md):
 * block mappings and block sequences nested by indentation (spaces only), flow sequences of
 * scalars ([a, b]), plain, 'single' and "double" quoted scalars (with \" \\ \/ \n \t \r \uXXXX
 * escapes; \0 and \u0000 are rejected because scalars are C strings), comments, an optional leading
 * "---". No anchors, aliases, tags, multi-document streams, flow mappings or block scalars (| >):
 * those are rejected with a clear error, never misread. Pure.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum yaml_kind {
	YAML_SCALAR,
	YAML_MAP,
	YAML_SEQ,
};

struct yaml_node {
	enum yaml_kind kind;
	int line;		  /* 1-based line where the node starts */
	char *scalar;		  /* YAML_SCALAR: NUL-terminated value ("" for empty/null) */
	int quoted;		  /* YAML_SCALAR: 1 if it was quoted (so "null"/"~" are strings) */
	size_t n;		  /* YAML_MAP: pairs; YAML_SEQ: items */
	char **keys;		  /* YAML_MAP: keys (scalars only) */
	int *key_lines;		  /* YAML_MAP: line of each key */
	struct yaml_node **items; /* YAML_MAP: values; YAML_SEQ: items */
};

/*
 * Parses a document. On success *ret_root is the root node (a map, a sequence or a scalar; an
 * empty document gives an empty map); free with yaml_node_free().
 * On failure writes a message "line N: what is wrong" to errbuf.
 * Errors: -EBADMSG malformed or unsupported construct; -EMSGSIZE document over 1 MiB or nested
 * deeper than 32 levels; duplicate keys in one mapping are -EBADMSG.
 */
int yaml_parse(const char *text, size_t len, struct yaml_node **ret_root, char *errbuf,
	       size_t errlen);
void yaml_node_free(struct yaml_node *n);
/* Value of key in a map, NULL if absent or n is not a map. */
struct yaml_node *yaml_map_get(const struct yaml_node *n, const char *key);
