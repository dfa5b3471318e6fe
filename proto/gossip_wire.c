/* SPDX-License-Identifier: Apache-2.0 */
#include "proto/gossip_wire.h"

#include <assert.h>
#include <errno.h>
#include <msgpack.h>
#include <stddef.h>
#include <string.h>

#include "proto/crc32.h"
#include "proto/lzw.h"
#include "proto/macro.h"

/* ---- the size check that runs before msgpack-c ---- */

#define MP_MAX_DEPTH 16

static uint64_t be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * Walks one msgpack object at data[0..len) without allocating: every container's element count
 * and every string's length is compared with the bytes left (an element takes at least one byte),
 * so what msgpack-c later allocates is bounded by the input size. Returns the object's length,
 * -EAGAIN when the input ends inside it, -EBADMSG on a byte msgpack never uses or nesting deeper
 * than MP_MAX_DEPTH.
 */
static int mp_check(const uint8_t *data, size_t len, size_t *ret_len)
{
	uint64_t pending[MP_MAX_DEPTH + 1]; /* elements still to read per open container */
	int depth = 0;
	size_t off = 0;
	pending[0] = 1;
	while (depth >= 0) {
		if (pending[depth] == 0) {
			depth--;
			continue;
		}
		pending[depth]--;
		if (off >= len)
			return -EAGAIN;
		uint8_t t = data[off++];
		uint64_t skip = 0, elems = 0;
		size_t hdr = 0; /* length bytes after t */
		if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
			/* fixint, nil, bool */
		} else if (t >= 0x80 && t <= 0x8f) {
			elems = 2u * (t & 0x0f);
		} else if (t >= 0x90 && t <= 0x9f) {
			elems = t & 0x0f;
		} else if (t >= 0xa0 && t <= 0xbf) {
			skip = t & 0x1f;
		} else {
			switch (t) {
			case 0xc4:
			case 0xd9:
				hdr = 1;
				break; /* bin8, str8 */
			case 0xc5:
			case 0xda:
				hdr = 2;
				break; /* bin16, str16 */
			case 0xc6:
			case 0xdb:
				hdr = 4;
				break; /* bin32, str32 */
			case 0xc7:
				hdr = 1;
				skip = 1;
				break; /* ext8: length, type */
			case 0xc8:
				hdr = 2;
				skip = 1;
				break;
			case 0xc9:
				hdr = 4;
				skip = 1;
				break;
			case 0xca:
				skip = 4;
				break;
			case 0xcb:
				skip = 8;
				break;
			case 0xcc:
			case 0xd0:
				skip = 1;
				break;
			case 0xcd:
			case 0xd1:
				skip = 2;
				break;
			case 0xce:
			case 0xd2:
				skip = 4;
				break;
			case 0xcf:
			case 0xd3:
				skip = 8;
				break;
			case 0xd4:
				skip = 2;
				break; /* fixext 1..16: type + data */
			case 0xd5:
				skip = 3;
				break;
			case 0xd6:
				skip = 5;
				break;
			case 0xd7:
				skip = 9;
				break;
			case 0xd8:
				skip = 17;
				break;
			case 0xdc:
			case 0xde:
				hdr = 2;
				break; /* array16, map16 */
			case 0xdd:
			case 0xdf:
				hdr = 4;
				break; /* array32, map32 */
			default:
				return -EBADMSG; /* 0xc1 */
			}
			if (hdr) {
				if (len - off < hdr)
					return -EAGAIN;
				uint64_t n = be(data + off, hdr);
				off += hdr;
				if (t == 0xdc || t == 0xdd)
					elems = n;
				else if (t == 0xde || t == 0xdf)
					elems = 2 * n;
				else
					skip += n;
			}
		}
		if (skip) {
			if (len - off < skip)
				return -EAGAIN;
			off += (size_t)skip;
		}
		if (elems) {
			/* Each element needs a byte: a count beyond the input is a lie or a cut. */
			if (elems > len - off)
				return -EAGAIN;
			if (depth == MP_MAX_DEPTH)
				return -EBADMSG;
			pending[++depth] = elems;
		}
	}
	*ret_len = off;
	return 0;
}

/* ---- reading fields ---- */

struct fields {
	msgpack_unpacked u;
	const msgpack_object_kv *kv;
	uint32_t n;
};

/* Unpacks one map from data; *ret_used its length. -EAGAIN as mp_check. */
static int fields_open(struct fields *f, const uint8_t *data, size_t len, size_t *ret_used)
{
	size_t olen;
	int r = mp_check(data, len, &olen);
	if (r < 0)
		return r;
	msgpack_unpacked_init(&f->u);
	size_t off = 0;
	msgpack_unpack_return ur = msgpack_unpack_next(&f->u, (const char *)data, olen, &off);
	if ((ur != MSGPACK_UNPACK_SUCCESS && ur != MSGPACK_UNPACK_EXTRA_BYTES) || off != olen ||
	    f->u.data.type != MSGPACK_OBJECT_MAP) {
		msgpack_unpacked_destroy(&f->u);
		return -EBADMSG;
	}
	f->kv = f->u.data.via.map.ptr;
	f->n = f->u.data.via.map.size;
	if (ret_used)
		*ret_used = olen;
	return 0;
}

static void fields_close(struct fields *f)
{
	msgpack_unpacked_destroy(&f->u);
}

/* A whole message body: one map and nothing after it. */
static int fields_open_body(struct fields *f, const uint8_t *body, size_t len)
{
	size_t used;
	int r = fields_open(f, body, len, &used);
	if (r == -EAGAIN)
		return -EBADMSG;
	if (r < 0)
		return r;
	if (used != len) {
		fields_close(f);
		return -EBADMSG;
	}
	return 0;
}

static bool key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);
	return (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		memcmp(k->via.str.ptr, name, n) == 0) ||
	       (k->type == MSGPACK_OBJECT_BIN && k->via.bin.size == n &&
		memcmp(k->via.bin.ptr, name, n) == 0);
}

/* str, bin or nil (empty), bounded by max. */
static int get_str(const msgpack_object *o, size_t max, struct gossip_wire_str *ret)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		*ret = (struct gossip_wire_str){NULL, 0};
		return 0;
	case MSGPACK_OBJECT_STR:
		*ret = (struct gossip_wire_str){(const uint8_t *)o->via.str.ptr, o->via.str.size};
		break;
	case MSGPACK_OBJECT_BIN:
		*ret = (struct gossip_wire_str){(const uint8_t *)o->via.bin.ptr, o->via.bin.size};
		break;
	default:
		return -EBADMSG;
	}
	return ret->len > max ? -EMSGSIZE : 0;
}

static int get_uint(const msgpack_object *o, uint64_t max, uint64_t *ret)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -EBADMSG; /* negatives (NEGATIVE_INTEGER) never fit an unsigned field */
	if (o->via.u64 > max)
		return -EBADMSG;
	*ret = o->via.u64;
	return 0;
}

static int get_bool(const msgpack_object *o, bool *ret)
{
	if (o->type == MSGPACK_OBJECT_BOOLEAN)
		*ret = o->via.boolean;
	else if (o->type == MSGPACK_OBJECT_NIL)
		*ret = false;
	else
		return -EBADMSG;
	return 0;
}

static int get_addr(const msgpack_object *o, struct gossip_wire_addr *ret)
{
	struct gossip_wire_str s;
	int r = get_str(o, 16, &s);
	if (r < 0)
		return r;
	if (s.len != 0 && s.len != 4 && s.len != 16)
		return -EMSGSIZE;
	ret->len = (uint8_t)s.len;
	if (s.len)
		memcpy(ret->b, s.p, s.len);
	return 0;
}

static int get_vsn(const msgpack_object *o, uint8_t vsn[6], uint8_t *ret_len)
{
	struct gossip_wire_str s;
	int r = get_str(o, SIZE_MAX, &s);
	if (r < 0)
		return r;
	*ret_len = (uint8_t)MIN(s.len, (size_t)6);
	if (*ret_len)
		memcpy(vsn, s.p, *ret_len);
	return 0;
}

/* ---- writing ---- */

static int buf_write(void *data, const char *p, size_t n)
{
	buf_append(data, p, n);
	return 0;
}

static void w_init(msgpack_packer *pk, struct buf *out)
{
	msgpack_packer_init(pk, out, buf_write);
}

/* Go's codec writes strings and byte fields as old-spec raw (never str8). */
static void w_str(msgpack_packer *pk, const void *p, size_t n)
{
	msgpack_pack_v4raw(pk, n);
	msgpack_pack_v4raw_body(pk, p, n);
}

static void w_key(msgpack_packer *pk, const char *k)
{
	w_str(pk, k, strlen(k));
}

/* Byte fields: nil when empty (E3). */
static void w_bytes(msgpack_packer *pk, const void *p, size_t n)
{
	if (n == 0)
		msgpack_pack_nil(pk);
	else
		w_str(pk, p, n);
}

static void w_gstr(msgpack_packer *pk, struct gossip_wire_str s)
{
	w_str(pk, s.p, s.len);
}

static void w_uint(msgpack_packer *pk, uint64_t v)
{
	msgpack_pack_uint64(pk, v); /* msgpack-c picks the smallest form, as Go does */
}

static void w_bool(msgpack_packer *pk, bool v)
{
	if (v)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

static void w_type(struct buf *out, enum gossip_wire_type t)
{
	buf_append_byte(out, (uint8_t)t);
}

/* Keys are written in ascending byte order everywhere below, as Go sorts them. */

/* The optional Source* fields of ping and indirect ping (omitted when empty, as Go's
 * omitempty does); they sort together in both. */
static unsigned source_fields(const struct gossip_wire_addr *addr, struct gossip_wire_str node,
			      uint16_t port)
{
	return (addr->len > 0) + (node.len > 0) + (port > 0);
}

static void w_source(msgpack_packer *pk, const struct gossip_wire_addr *addr,
		     struct gossip_wire_str node, uint16_t port)
{
	if (addr->len) {
		w_key(pk, "SourceAddr");
		w_bytes(pk, addr->b, addr->len);
	}
	if (node.len) {
		w_key(pk, "SourceNode");
		w_gstr(pk, node);
	}
	if (port) {
		w_key(pk, "SourcePort");
		w_uint(pk, port);
	}
}

void gossip_wire_encode_ping(const struct gossip_wire_ping *m, struct buf *out)
{
	msgpack_packer pk;
	w_init(&pk, out);
	w_type(out, GOSSIP_WIRE_PING);
	msgpack_pack_map(&pk, 2 + source_fields(&m->source_addr, m->source_node, m->source_port));
	w_key(&pk, "Node");
	w_gstr(&pk, m->node);
	w_key(&pk, "SeqNo");
	w_uint(&pk, m->seq_no);
	w_source(&pk, &m->source_addr, m->source_node, m->source_port);
}

void gossip_wire_encode_indirect_ping(const struct gossip_wire_indirect_ping *m, struct buf *out)
{
	msgpack_packer pk;
	w_init(&pk, out);
	w_type(out, GOSSIP_WIRE_INDIRECT_PING);
	msgpack_pack_map(&pk, 5 + source_fields(&m->source_addr, m->source_node, m->source_port));
	w_key(&pk, "Nack");
	w_bool(&pk, m->nack);
	w_key(&pk, "Node");
	w_gstr(&pk, m->node);
	w_key(&pk, "Port");
	w_uint(&pk, m->port);
	w_key(&pk, "SeqNo");
	w_uint(&pk, m->seq_no);
	w_source(&pk, &m->source_addr, m->source_node, m->source_port);
	w_key(&pk, "Target");
	w_bytes(&pk, m->target.b, m->target.len);
}

void gossip_wire_encode_ack(const struct gossip_wire_ack *m, struct buf *out)
{
	msgpack_packer pk;
	w_init(&pk, out);
	w_type(out, GOSSIP_WIRE_ACK);
	msgpack_pack_map(&pk, 2);
	w_key(&pk, "Payload");
	w_bytes(&pk, m->payload.p, m->payload.len);
	w_key(&pk, "SeqNo");
	w_uint(&pk, m->seq_no);
}

void gossip_wire_encode_nack(uint32_t seq_no, struct buf *out)
{
	msgpack_packer pk;
	w_init(&pk, out);
	w_type(out, GOSSIP_WIRE_NACK);
	msgpack_pack_map(&pk, 1);
	w_key(&pk, "SeqNo");
	w_uint(&pk, seq_no);
}

void gossip_wire_encode_accuse(enum gossip_wire_type type, const struct gossip_wire_accuse *m,
			       struct buf *out)
{
	assert(type == GOSSIP_WIRE_SUSPECT || type == GOSSIP_WIRE_DEAD);
	msgpack_packer pk;
	w_init(&pk, out);
	w_type(out, type);
	msgpack_pack_map(&pk, 3);
	w_key(&pk, "From");
	w_gstr(&pk, m->from);
	w_key(&pk, "Incarnation");
	w_uint(&pk, m->incarnation);
	w_key(&pk, "Node");
	w_gstr(&pk, m->node);
}

void gossip_wire_encode_alive(const struct gossip_wire_alive *m, struct buf *out)
{
	msgpack_packer pk;
	w_init(&pk, out);
	w_type(out, GOSSIP_WIRE_ALIVE);
	msgpack_pack_map(&pk, 6);
	w_key(&pk, "Addr");
	w_bytes(&pk, m->addr.b, m->addr.len);
	w_key(&pk, "Incarnation");
	w_uint(&pk, m->incarnation);
	w_key(&pk, "Meta");
	w_bytes(&pk, m->meta.p, m->meta.len);
	w_key(&pk, "Node");
	w_gstr(&pk, m->node);
	w_key(&pk, "Port");
	w_uint(&pk, m->port);
	w_key(&pk, "Vsn");
	w_bytes(&pk, m->vsn, m->vsn_len);
}

void gossip_wire_encode_err(const char *error, struct buf *out)
{
	msgpack_packer pk;
	w_init(&pk, out);
	w_type(out, GOSSIP_WIRE_ERR);
	msgpack_pack_map(&pk, 1);
	w_key(&pk, "Error");
	w_str(&pk, error, strlen(error));
}

void gossip_wire_encode_user(const uint8_t *payload, size_t len, struct buf *out)
{
	w_type(out, GOSSIP_WIRE_USER);
	buf_append(out, payload, len);
}

void gossip_wire_encode_push_pull_header(const struct gossip_wire_push_pull_header *h,
					 struct buf *out)
{
	msgpack_packer pk;
	w_init(&pk, out);
	w_type(out, GOSSIP_WIRE_PUSH_PULL);
	msgpack_pack_map(&pk, 3);
	w_key(&pk, "Join");
	w_bool(&pk, h->join);
	w_key(&pk, "Nodes");
	w_uint(&pk, h->nodes);
	w_key(&pk, "UserStateLen");
	w_uint(&pk, h->user_state_len);
}

void gossip_wire_encode_node_state(const struct gossip_wire_node_state *s, struct buf *out)
{
	msgpack_packer pk;
	w_init(&pk, out);
	msgpack_pack_map(&pk, 7);
	w_key(&pk, "Addr");
	w_bytes(&pk, s->addr.b, s->addr.len);
	w_key(&pk, "Incarnation");
	w_uint(&pk, s->incarnation);
	w_key(&pk, "Meta");
	w_bytes(&pk, s->meta.p, s->meta.len);
	w_key(&pk, "Name");
	w_gstr(&pk, s->name);
	w_key(&pk, "Port");
	w_uint(&pk, s->port);
	w_key(&pk, "State");
	w_uint(&pk, s->state);
	w_key(&pk, "Vsn");
	w_bytes(&pk, s->vsn, s->vsn_len);
}

void gossip_wire_encode_user_stream_header(uint32_t len, struct buf *out)
{
	msgpack_packer pk;
	w_init(&pk, out);
	w_type(out, GOSSIP_WIRE_USER);
	msgpack_pack_map(&pk, 1);
	w_key(&pk, "UserMsgLen");
	w_uint(&pk, len);
}

int gossip_wire_encode_compound(const struct gossip_wire_str *parts, size_t n, struct buf *out)
{
	if (n == 0 || n > 255)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (parts[i].len > UINT16_MAX)
			return -EINVAL;
	buf_append_byte(out, GOSSIP_WIRE_COMPOUND);
	buf_append_byte(out, (uint8_t)n);
	for (size_t i = 0; i < n; i++) {
		uint8_t l[2] = {(uint8_t)(parts[i].len >> 8), (uint8_t)parts[i].len};
		buf_append(out, l, 2);
	}
	for (size_t i = 0; i < n; i++)
		buf_append(out, parts[i].p, parts[i].len);
	return 0;
}

void gossip_wire_encode_crc(const uint8_t *msg, size_t len, struct buf *out)
{
	uint32_t c = crc32_ieee(msg, len);
	uint8_t h[5] = {GOSSIP_WIRE_HAS_CRC, (uint8_t)(c >> 24), (uint8_t)(c >> 16),
			(uint8_t)(c >> 8), (uint8_t)c};
	buf_append(out, h, sizeof(h));
	buf_append(out, msg, len);
}

void gossip_wire_encode_compress(const uint8_t *msg, size_t len, struct buf *out)
{
	struct buf z = BUF_INIT;
	lzw_encode(msg, len, &z);
	msgpack_packer pk;
	w_init(&pk, out);
	w_type(out, GOSSIP_WIRE_COMPRESS);
	msgpack_pack_map(&pk, 2);
	w_key(&pk, "Algo");
	w_uint(&pk, 0);
	w_key(&pk, "Buf");
	w_bytes(&pk, z.data, z.len);
	buf_done(&z);
}

/* ---- decoding ---- */

/* What one field of a message is, and where it goes in the caller's struct. */
enum field_kind {
	FIELD_UINT, /* unsigned integer up to `max`, stored in `size` bytes */
	FIELD_BOOL,
	FIELD_STR,  /* str/bin/nil of at most `max` bytes: a struct gossip_wire_str */
	FIELD_ADDR, /* struct gossip_wire_addr */
	FIELD_VSN,  /* uint8_t[6] at off, its length (uint8_t) at aux */
};

struct field_spec {
	const char *key;
	enum field_kind kind;
	size_t off;
	uint64_t max;
	size_t aux; /* FIELD_UINT: size of the integer; FIELD_VSN: offset of the length */
};

#define U(k, type, member, limit)                                                         \
	{                                                                                 \
		k, FIELD_UINT, offsetof(type, member), limit, sizeof(((type *)0)->member) \
	}
#define B(k, type, member)                                  \
	{                                                   \
		k, FIELD_BOOL, offsetof(type, member), 0, 0 \
	}
#define S(k, type, member, limit)                              \
	{                                                      \
		k, FIELD_STR, offsetof(type, member), limit, 0 \
	}
#define A(k, type, member)                                  \
	{                                                   \
		k, FIELD_ADDR, offsetof(type, member), 0, 0 \
	}
#define V(k, type)                                                            \
	{                                                                     \
		k, FIELD_VSN, offsetof(type, vsn), 0, offsetof(type, vsn_len) \
	}

static int field_get(const msgpack_object *v, const struct field_spec *fs, uint8_t *dst)
{
	uint64_t u;
	int r;
	switch (fs->kind) {
	case FIELD_UINT:
		r = get_uint(v, fs->max, &u);
		if (r < 0)
			return r;
		if (fs->aux == 1)
			*(uint8_t *)(dst + fs->off) = (uint8_t)u;
		else if (fs->aux == 2)
			*(uint16_t *)(dst + fs->off) = (uint16_t)u;
		else if (fs->aux == 4)
			*(uint32_t *)(dst + fs->off) = (uint32_t)u;
		else
			*(uint64_t *)(dst + fs->off) = u;
		return 0;
	case FIELD_BOOL:
		return get_bool(v, (bool *)(dst + fs->off));
	case FIELD_STR:
		return get_str(v, (size_t)fs->max, (struct gossip_wire_str *)(dst + fs->off));
	case FIELD_ADDR:
		return get_addr(v, (struct gossip_wire_addr *)(dst + fs->off));
	case FIELD_VSN:
		return get_vsn(v, dst + fs->off, dst + fs->aux);
	}
	return -EBADMSG;
}

/* Fills dst (zeroed first) from a map by the spec; unknown keys are skipped. */
static int fields_decode(const struct fields *f, const struct field_spec *spec, size_t n, void *dst,
			 size_t dst_size)
{
	memset(dst, 0, dst_size);
	for (uint32_t i = 0; i < f->n; i++) {
		for (size_t k = 0; k < n; k++) {
			if (!key_is(&f->kv[i].key, spec[k].key))
				continue;
			int r = field_get(&f->kv[i].val, &spec[k], dst);
			if (r < 0)
				return r;
			break;
		}
	}
	return 0;
}

/* A whole message body (one map, nothing after it) into tmp; copied to ret on success. */
static int decode_body(const uint8_t *body, size_t len, const struct field_spec *spec, size_t n,
		       void *tmp, void *ret, size_t size)
{
	struct fields f;
	int r = fields_open_body(&f, body, len);
	if (r < 0)
		return r;
	r = fields_decode(&f, spec, n, tmp, size);
	fields_close(&f);
	if (r == 0)
		memcpy(ret, tmp, size);
	return r;
}

/* One map at the start of a stream's data; with `limits`, a field outside its bounds is
 * -EMSGSIZE (a declared size too large) rather than -EBADMSG. */
static int decode_stream(const uint8_t *data, size_t len, const struct field_spec *spec, size_t n,
			 void *tmp, void *ret, size_t size, size_t *ret_used, bool limits)
{
	struct fields f;
	size_t used;
	int r = fields_open(&f, data, len, &used);
	if (r < 0)
		return r;
	r = fields_decode(&f, spec, n, tmp, size);
	fields_close(&f);
	if (r < 0)
		return limits && r == -EBADMSG ? -EMSGSIZE : r;
	memcpy(ret, tmp, size);
	*ret_used = used;
	return 0;
}

#define T struct gossip_wire_ping
static const struct field_spec ping_spec[] = {
	U("SeqNo", T, seq_no, UINT32_MAX),
	S("Node", T, node, GOSSIP_WIRE_NAME_MAX),
	A("SourceAddr", T, source_addr),
	U("SourcePort", T, source_port, UINT16_MAX),
	S("SourceNode", T, source_node, GOSSIP_WIRE_NAME_MAX),
};
#undef T
#define T struct gossip_wire_indirect_ping
static const struct field_spec indirect_ping_spec[] = {
	U("SeqNo", T, seq_no, UINT32_MAX),
	A("Target", T, target),
	U("Port", T, port, UINT16_MAX),
	S("Node", T, node, GOSSIP_WIRE_NAME_MAX),
	B("Nack", T, nack),
	A("SourceAddr", T, source_addr),
	U("SourcePort", T, source_port, UINT16_MAX),
	S("SourceNode", T, source_node, GOSSIP_WIRE_NAME_MAX),
};
#undef T
#define T struct gossip_wire_ack
static const struct field_spec ack_spec[] = {
	U("SeqNo", T, seq_no, UINT32_MAX),
	S("Payload", T, payload, SIZE_MAX),
};
#undef T
#define T struct gossip_wire_accuse
static const struct field_spec accuse_spec[] = {
	U("Incarnation", T, incarnation, UINT32_MAX),
	S("Node", T, node, GOSSIP_WIRE_NAME_MAX),
	S("From", T, from, GOSSIP_WIRE_NAME_MAX),
};
#undef T
#define T struct gossip_wire_alive
static const struct field_spec alive_spec[] = {
	U("Incarnation", T, incarnation, UINT32_MAX),
	S("Node", T, node, GOSSIP_WIRE_NAME_MAX),
	A("Addr", T, addr),
	U("Port", T, port, UINT16_MAX),
	S("Meta", T, meta, GOSSIP_WIRE_META_MAX),
	V("Vsn", T),
};
#undef T
#define T struct gossip_wire_push_pull_header
static const struct field_spec push_pull_spec[] = {
	U("Nodes", T, nodes, GOSSIP_WIRE_PUSH_NODES_MAX),
	U("UserStateLen", T, user_state_len, GOSSIP_WIRE_USER_STATE_MAX),
	B("Join", T, join),
};
#undef T
#define T struct gossip_wire_node_state
static const struct field_spec node_state_spec[] = {
	S("Name", T, name, GOSSIP_WIRE_NAME_MAX),
	A("Addr", T, addr),
	U("Port", T, port, UINT16_MAX),
	S("Meta", T, meta, GOSSIP_WIRE_META_MAX),
	U("Incarnation", T, incarnation, UINT32_MAX),
	U("State", T, state, 255),
	V("Vsn", T),
};
#undef T

struct one_u32 {
	uint32_t v;
};
static const struct field_spec nack_spec[] = {U("SeqNo", struct one_u32, v, UINT32_MAX)};
static const struct field_spec user_stream_spec[] = {
	U("UserMsgLen", struct one_u32, v, GOSSIP_WIRE_USER_STATE_MAX)};

struct one_str {
	struct gossip_wire_str v;
};
static const struct field_spec err_spec[] = {S("Error", struct one_str, v, 4096)};

struct compress_body {
	uint64_t algo;
	struct gossip_wire_str buf;
};
static const struct field_spec compress_spec[] = {
	U("Algo", struct compress_body, algo, UINT64_MAX),
	S("Buf", struct compress_body, buf, SIZE_MAX),
};

#undef U
#undef B
#undef S
#undef A
#undef V

#define DECODE_BODY(spec, type, ret)                                                      \
	({                                                                                \
		type tmp_;                                                                \
		decode_body(body, len, spec, ARRAY_SIZE(spec), &tmp_, ret, sizeof(tmp_)); \
	})

int gossip_wire_decode_ping(const uint8_t *body, size_t len, struct gossip_wire_ping *ret)
{
	return DECODE_BODY(ping_spec, struct gossip_wire_ping, ret);
}

int gossip_wire_decode_indirect_ping(const uint8_t *body, size_t len,
				     struct gossip_wire_indirect_ping *ret)
{
	return DECODE_BODY(indirect_ping_spec, struct gossip_wire_indirect_ping, ret);
}

int gossip_wire_decode_ack(const uint8_t *body, size_t len, struct gossip_wire_ack *ret)
{
	return DECODE_BODY(ack_spec, struct gossip_wire_ack, ret);
}

int gossip_wire_decode_nack(const uint8_t *body, size_t len, uint32_t *ret_seq_no)
{
	struct one_u32 m;
	int r = DECODE_BODY(nack_spec, struct one_u32, &m);
	if (r == 0)
		*ret_seq_no = m.v;
	return r;
}

int gossip_wire_decode_accuse(const uint8_t *body, size_t len, struct gossip_wire_accuse *ret)
{
	return DECODE_BODY(accuse_spec, struct gossip_wire_accuse, ret);
}

int gossip_wire_decode_alive(const uint8_t *body, size_t len, struct gossip_wire_alive *ret)
{
	return DECODE_BODY(alive_spec, struct gossip_wire_alive, ret);
}

int gossip_wire_decode_err(const uint8_t *body, size_t len, struct gossip_wire_str *ret_error)
{
	struct one_str m;
	int r = DECODE_BODY(err_spec, struct one_str, &m);
	if (r == 0)
		*ret_error = m.v;
	return r;
}

int gossip_wire_decode_push_pull_header(const uint8_t *data, size_t len,
					struct gossip_wire_push_pull_header *ret, size_t *ret_used)
{
	struct gossip_wire_push_pull_header tmp;
	return decode_stream(data, len, push_pull_spec, ARRAY_SIZE(push_pull_spec), &tmp, ret,
			     sizeof(tmp), ret_used, true);
}

int gossip_wire_decode_node_state(const uint8_t *data, size_t len,
				  struct gossip_wire_node_state *ret, size_t *ret_used)
{
	struct gossip_wire_node_state tmp;
	return decode_stream(data, len, node_state_spec, ARRAY_SIZE(node_state_spec), &tmp, ret,
			     sizeof(tmp), ret_used, false);
}

int gossip_wire_decode_user_stream_header(const uint8_t *data, size_t len, uint32_t *ret_len,
					  size_t *ret_used)
{
	struct one_u32 tmp, m;
	int r = decode_stream(data, len, user_stream_spec, ARRAY_SIZE(user_stream_spec), &tmp, &m,
			      sizeof(tmp), ret_used, true);
	if (r == 0)
		*ret_len = m.v;
	return r;
}

int gossip_wire_decompress(const uint8_t *body, size_t len, size_t max_out, struct buf *out)
{
	struct compress_body m;
	int r = DECODE_BODY(compress_spec, struct compress_body, &m);
	if (r < 0)
		return r;
	if (m.algo != 0)
		return -ENOTSUP;
	/* Buf points into body (msgpack-c references strings in its input). */
	return lzw_decode(m.buf.p, m.buf.len, max_out, out);
}

int gossip_wire_decompress_stream(const uint8_t *data, size_t len, size_t max_out, struct buf *out,
				  size_t *ret_used)
{
	struct compress_body tmp, m;
	size_t used;
	int r = decode_stream(data, len, compress_spec, ARRAY_SIZE(compress_spec), &tmp, &m,
			      sizeof(tmp), &used, false);
	if (r < 0)
		return r;
	if (m.algo != 0)
		return -ENOTSUP;
	r = lzw_decode(m.buf.p, m.buf.len, max_out, out);
	if (r < 0)
		return r;
	*ret_used = used;
	return 0;
}

int gossip_wire_object_len(const uint8_t *data, size_t len, size_t *ret_len)
{
	return mp_check(data, len, ret_len);
}

/* ---- Serf tags in node metadata ---- */

#define TAGS_MAGIC 0xff

int gossip_wire_encode_tags(const char *const *kv, size_t n, struct buf *out)
{
	/* Go's codec sorts map keys; so do we (insertion sort: a handful of tags). */
	size_t order[GOSSIP_WIRE_TAGS_MAX];
	if (n > GOSSIP_WIRE_TAGS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t j = i;
		while (j > 0 && strcmp(kv[2 * order[j - 1]], kv[2 * i]) > 0) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	size_t start = out->len;
	buf_append_byte(out, TAGS_MAGIC);
	msgpack_packer pk;
	msgpack_packer_init(&pk, out, buf_write);
	msgpack_pack_map(&pk, n);
	for (size_t i = 0; i < n; i++) {
		w_str(&pk, kv[2 * order[i]], strlen(kv[2 * order[i]]));
		w_str(&pk, kv[2 * order[i] + 1], strlen(kv[2 * order[i] + 1]));
	}
	if (out->len - start > GOSSIP_WIRE_META_MAX) {
		out->len = start;
		return -EMSGSIZE;
	}
	return 0;
}

int gossip_wire_tag_get(const uint8_t *meta, size_t len, const char *key,
			struct gossip_wire_str *ret)
{
	if (len < 1 || meta[0] != TAGS_MAGIC)
		return -ENOENT;
	size_t olen;
	int r = mp_check(meta + 1, len - 1, &olen);
	if (r < 0 || olen != len - 1)
		return -EBADMSG;
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	if (msgpack_unpack_next(&u, (const char *)meta + 1, len - 1, &off) !=
		    MSGPACK_UNPACK_SUCCESS ||
	    u.data.type != MSGPACK_OBJECT_MAP) {
		msgpack_unpacked_destroy(&u);
		return -EBADMSG;
	}
	r = -ENOENT;
	for (uint32_t i = 0; i < u.data.via.map.size; i++) {
		const msgpack_object_kv *e = &u.data.via.map.ptr[i];
		struct gossip_wire_str v;
		if (!key_is(&e->key, key))
			continue;
		if (get_str(&e->val, GOSSIP_WIRE_META_MAX, &v) < 0) {
			r = -EBADMSG;
			break;
		}
		*ret = v;
		r = 0;
		break;
	}
	msgpack_unpacked_destroy(&u);
	return r;
}

/* ---- packets ---- */

#define WALK_MAX_DEPTH 4

static int walk(const uint8_t *pkt, size_t len, gossip_wire_msg_fn fn, void *ud, int depth)
{
	if (len == 0 || depth > WALK_MAX_DEPTH)
		return -EBADMSG;
	enum gossip_wire_type t = pkt[0];
	const uint8_t *body = pkt + 1;
	size_t blen = len - 1;
	switch (t) {
	case GOSSIP_WIRE_HAS_CRC: {
		if (blen < 4)
			return -EBADMSG;
		if ((uint32_t)be(body, 4) != crc32_ieee(body + 4, blen - 4))
			return -EBADMSG;
		return walk(body + 4, blen - 4, fn, ud, depth + 1);
	}
	case GOSSIP_WIRE_COMPOUND: {
		if (blen < 1)
			return -EBADMSG;
		size_t n = body[0];
		if (n == 0 || blen < 1 + 2 * n)
			return -EBADMSG;
		const uint8_t *p = body + 1 + 2 * n;
		size_t left = blen - 1 - 2 * n;
		int delivered = 0;
		for (size_t i = 0; i < n; i++) {
			size_t pl = (size_t)be(body + 1 + 2 * i, 2);
			if (pl > left)
				break; /* P1: the parts that do not fit are dropped */
			int r = walk(p, pl, fn, ud, depth + 1);
			if (r > 0)
				delivered += r;
			p += pl;
			left -= pl;
		}
		return delivered;
	}
	case GOSSIP_WIRE_COMPRESS: {
		struct buf inflated = BUF_INIT;
		int r = gossip_wire_decompress(body, blen, GOSSIP_WIRE_PACKET_INFLATE_MAX,
					       &inflated);
		if (r == 0)
			r = walk(inflated.data, inflated.len, fn, ud, depth + 1);
		else
			r = -EBADMSG;
		buf_done(&inflated);
		return r;
	}
	case GOSSIP_WIRE_ENCRYPT:
		return -EBADMSG; /* decrypted before walking, never nested */
	default:
		fn(t, body, blen, ud);
		return 1;
	}
}

int gossip_wire_packet_walk(const uint8_t *pkt, size_t len, gossip_wire_msg_fn fn, void *ud)
{
	return walk(pkt, len, fn, ud, 0);
}
