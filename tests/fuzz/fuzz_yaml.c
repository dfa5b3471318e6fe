/* SPDX-License-Identifier: Apache-2.0 */
/*
 * yaml_parse on arbitrary bytes: it must return a tree or an error with a "line N:" message,
 * never crash or leak. Every parsed tree is walked so that a malformed node (a NULL item, a
 * missing key, a wrong count) is found here rather than by the configuration loader.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(const struct yaml_node *n, int depth)
{
	size_t count = 1;

	assert(n && depth <= 34 && n->line >= 1);
	switch (n->kind) {
	case YAML_SCALAR:
		assert(n->scalar && n->n == 0);
		break;
	case YAML_MAP:
		for (size_t i = 0; i < n->n; i++) {
			assert(n->keys[i] && n->key_lines[i] >= 1);
			assert(yaml_map_get(n, n->keys[i]) == n->items[i]);
			count += walk(n->items[i], depth + 1);
		}
		break;
	case YAML_SEQ:
		for (size_t i = 0; i < n->n; i++)
			count += walk(n->items[i], depth + 1);
		break;
	}
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct yaml_node *root = NULL;
	char err[256];

	int r = yaml_parse((const char *)data, size, &root, err, sizeof(err));
	if (r < 0) {
		assert(!root);
		assert(strncmp(err, "line ", 5) == 0);
		return 0;
	}
	walk(root, 1);
	yaml_node_free(root);
	return 0;
}
