/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The inventory: which certificates this node keeps responses for, and their issuers.
 *
 * Sources: certificates named in the config, every file in the watched certificate directories
 * (PEM, DER, full chains, PKCS#7; re-scanned on libuv fs events, debounced), and issuer
 * certificates from chains, issuer directories, the cache directory (issuers fetched before)
 * and AIA caIssuers URLs (fetched once, then kept).
 *
 * A scan computes the whole desired set and diffs it against what the cache holds, keyed by
 * certificate content (SHA-256 fingerprint), never by file name: the same certificate in two
 * files is one entry; a renamed file changes nothing; when the last file naming a certificate
 * disappears, its entry and responses are removed and it is no longer refreshed. Files whose
 * size, mtime and inode did not change are not read again.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct node;
struct inventory;
struct config;
struct pki_cert;

int inventory_new(struct node *n, struct inventory **ret);
/* Scans every source of the node's current config and sets up the directory watches. */
void inventory_scan(struct inventory *inv);
/* Adds an issuer certificate to the pool (e.g. loaded from the cache directory). */
void inventory_add_issuer(struct inventory *inv, struct pki_cert *issuer, bool persist);
/* Leaves known (with or without an issuer yet), and those still waiting for an issuer fetch. */
size_t inventory_leaves(const struct inventory *inv);
size_t inventory_pending_issuers(const struct inventory *inv);
/* Closes watches and timers; on_closed once every handle is closed; frees the inventory. */
void inventory_close(struct inventory *inv, void (*on_closed)(void *ud), void *ud);
