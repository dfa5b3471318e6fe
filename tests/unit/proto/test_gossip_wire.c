/* SPDX-License-Identifier: Apache-2.0 */
/* The memberlist wire codec against the golden vectors of GOSSIP.md Appendix B (captured from a
 * real memberlist 0.2.2 node): each decodes, and our encoder reproduces it byte for byte. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/buf.h"
#include "proto/gossip_wire.h"

static const char ping_hex[] = "0085a44e6f6465a3636170a55365714e6f01aa536f7572636541646472a47f00000"
			       "1aa536f757263654e6f6465a5"
			       "676f636170aa536f75726365506f7274cd1f0f";
static const char gossip_hex[] = "0cb7dbe3f70703003d003b00110486a441646472a47f000001ab496e6361726e6"
				 "174696f6e01a44d657461c0a44e"
				 "6f6465a5676f636170a4506f7274cd1f0fa356736ea60105020000000486a4416"
				 "46472a47f000001ab496e636172"
				 "6e6174696f6e01a44d657461c0a44e6f6465a3636170a4506f7274cd1f1aa3567"
				 "36ea60105020000000868656c6c"
				 "6f2d66726f6d2d676f636170";
static const char pushpull_hex[] = "0683a44a6f696ec3a54e6f64657301ac5573657253746174654c656e1b87a44"
				   "1646472a47f000001ab496e636172"
				   "6e6174696f6e01a44d657461c0a44e616d65a5676f636170a4506f7274cd1f0"
				   "fa5537461746500a356736ea60105"
				   "0200000073746174652d6f662d2f746d702f6d6c706565722f6d6c70656572";

static void unhex(const char *h, struct buf *out)
{
	size_t n = strlen(h);
	assert_int_equal(n % 2, 0);
	for (size_t i = 0; i < n; i += 2) {
		unsigned v;
		assert_int_equal(sscanf(h + i, "%2x", &v), 1);
		buf_append_byte(out, (uint8_t)v);
	}
}

static struct gossip_wire_str S(const char *s) {
	return (struct gossip_wire_str){(const uint8_t *)s, strlen(s)};
}

static bool
str_is(struct gossip_wire_str s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

static const struct gossip_wire_addr LOCALHOST = {{127, 0, 0, 1}, 4};
static const uint8_t VSN[6] = {1, 5, 2, 0, 0, 0};

static void test_ping_vector(void **state)
{
	(void)state;
	struct buf v = BUF_INIT, enc = BUF_INIT;
	unhex(ping_hex, &v);
	assert_int_equal(v.data[0], GOSSIP_WIRE_PING);
	struct gossip_wire_ping p;
	assert_int_equal(gossip_wire_decode_ping(v.data + 1, v.len - 1, &p), 0);
	assert_int_equal(p.seq_no, 1);
	assert_true(str_is(p.node, "cap"));
	assert_true(str_is(p.source_node, "gocap"));
	assert_int_equal(p.source_port, 7951);
	assert_int_equal(p.source_addr.len, 4);
	assert_memory_equal(p.source_addr.b, LOCALHOST.b, 4);
	gossip_wire_encode_ping(&p, &enc);
	assert_int_equal(enc.len, v.len);
	assert_memory_equal(enc.data, v.data, v.len);
	buf_done(&v);
	buf_done(&enc);
}

struct collected {
	int n;
	enum gossip_wire_type type[8];
	struct buf body[8];
};

static void collect(enum gossip_wire_type type, const uint8_t *body, size_t len, void *ud)
{
	struct collected *c = ud;
	assert_true(c->n < 8);
	c->type[c->n] = type;
	buf_init(&c->body[c->n]);
	buf_append(&c->body[c->n], body, len);
	c->n++;
}

static void collected_done(struct collected *c)
{
	for (int i = 0; i < c->n; i++)
		buf_done(&c->body[i]);
	c->n = 0;
}

static void test_gossip_vector(void **state)
{
	(void)state;
	struct buf v = BUF_INIT;
	unhex(gossip_hex, &v);
	struct collected c = {0};
	assert_int_equal(gossip_wire_packet_walk(v.data, v.len, collect, &c), 3);
	assert_int_equal(c.type[0], GOSSIP_WIRE_ALIVE);
	assert_int_equal(c.type[1], GOSSIP_WIRE_ALIVE);
	assert_int_equal(c.type[2], GOSSIP_WIRE_USER);
	struct gossip_wire_alive a[2];
	for (int i = 0; i < 2; i++) {
		assert_int_equal(gossip_wire_decode_alive(c.body[i].data, c.body[i].len, &a[i]), 0);
		assert_int_equal(a[i].incarnation, 1);
		assert_int_equal(a[i].meta.len, 0);
		assert_int_equal(a[i].vsn_len, 6);
		assert_memory_equal(a[i].vsn, VSN, 6);
		assert_int_equal(a[i].addr.len, 4);
	}
	assert_true(str_is(a[0].node, "gocap"));
	assert_int_equal(a[0].port, 7951);
	assert_true(str_is(a[1].node, "cap"));
	assert_int_equal(a[1].port, 7962);
	assert_int_equal(c.body[2].len, 16);
	assert_memory_equal(c.body[2].data, "hello-from-gocap", 16);

	/* Re-encode from the decoded values: byte for byte. */
	struct buf p0 = BUF_INIT, p1 = BUF_INIT, p2 = BUF_INIT, comp = BUF_INIT, out = BUF_INIT;
	gossip_wire_encode_alive(&a[0], &p0);
	gossip_wire_encode_alive(&a[1], &p1);
	gossip_wire_encode_user((const uint8_t *)"hello-from-gocap", 16, &p2);
	struct gossip_wire_str parts[3] = {{p0.data, p0.len}, {p1.data, p1.len}, {p2.data, p2.len}};
	assert_int_equal(gossip_wire_encode_compound(parts, 3, &comp), 0);
	gossip_wire_encode_crc(comp.data, comp.len, &out);
	assert_int_equal(out.len, v.len);
	assert_memory_equal(out.data, v.data, v.len);

	/* A flipped byte fails the CRC: nothing is delivered. */
	collected_done(&c);
	v.data[20] ^= 1;
	assert_int_equal(gossip_wire_packet_walk(v.data, v.len, collect, &c), -EBADMSG);
	assert_int_equal(c.n, 0);
	/* A compound whose last part is cut short keeps the parts that fit (P1). */
	buf_reset(&out);
	buf_append(&out, comp.data, comp.len - 5);
	assert_int_equal(gossip_wire_packet_walk(out.data, out.len, collect, &c), 2);
	collected_done(&c);

	buf_done(&p0);
	buf_done(&p1);
	buf_done(&p2);
	buf_done(&comp);
	buf_done(&out);
	buf_done(&v);
}

static void test_push_pull_vector(void **state)
{
	(void)state;
	struct buf v = BUF_INIT;
	unhex(pushpull_hex, &v);
	assert_int_equal(v.data[0], GOSSIP_WIRE_PUSH_PULL);
	const uint8_t *p = v.data + 1;
	size_t left = v.len - 1, used;
	struct gossip_wire_push_pull_header h;
	/* Incomplete input asks for more. */
	assert_int_equal(gossip_wire_decode_push_pull_header(p, 5, &h, &used), -EAGAIN);
	assert_int_equal(gossip_wire_decode_push_pull_header(p, left, &h, &used), 0);
	assert_true(h.join);
	assert_int_equal(h.nodes, 1);
	assert_int_equal(h.user_state_len, 27);
	struct buf enc = BUF_INIT;
	gossip_wire_encode_push_pull_header(&h, &enc);
	p += used;
	left -= used;
	struct gossip_wire_node_state ns;
	assert_int_equal(gossip_wire_decode_node_state(p, left - 27, &ns, &used), 0);
	assert_int_equal(used, left - 27);
	assert_true(str_is(ns.name, "gocap"));
	assert_int_equal(ns.port, 7951);
	assert_int_equal(ns.state, 0);
	assert_int_equal(ns.incarnation, 1);
	assert_int_equal(ns.vsn_len, 6);
	gossip_wire_encode_node_state(&ns, &enc);
	p += used;
	assert_memory_equal(p, "state-of-/tmp/mlpeer/mlpeer", 27);
	buf_append(&enc, p, 27);
	assert_int_equal(enc.len, v.len);
	assert_memory_equal(enc.data, v.data, v.len);
	buf_done(&enc);
	buf_done(&v);
}

static void test_other_messages_roundtrip(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;

	struct gossip_wire_indirect_ping ip = {.seq_no = 70000,
					       .target = LOCALHOST,
					       .port = 7946,
					       .node = S("n2"),
					       .nack = true,
					       .source_addr = LOCALHOST,
					       .source_port = 7947,
					       .source_node = S("n1")};
	gossip_wire_encode_indirect_ping(&ip, &b);
	struct gossip_wire_indirect_ping ip2;
	assert_int_equal(b.data[0], GOSSIP_WIRE_INDIRECT_PING);
	assert_int_equal(gossip_wire_decode_indirect_ping(b.data + 1, b.len - 1, &ip2), 0);
	assert_int_equal(ip2.seq_no, 70000);
	assert_true(ip2.nack);
	assert_true(str_is(ip2.node, "n2") && str_is(ip2.source_node, "n1"));
	assert_int_equal(ip2.port, 7946);
	assert_int_equal(ip2.source_port, 7947);

	buf_reset(&b);
	struct gossip_wire_accuse d = {.incarnation = 9, .node = S("x"), .from = S("y")};
	gossip_wire_encode_accuse(GOSSIP_WIRE_DEAD, &d, &b);
	struct gossip_wire_accuse d2;
	assert_int_equal(b.data[0], GOSSIP_WIRE_DEAD);
	assert_int_equal(gossip_wire_decode_accuse(b.data + 1, b.len - 1, &d2), 0);
	assert_int_equal(d2.incarnation, 9);
	assert_true(str_is(d2.node, "x") && str_is(d2.from, "y"));

	buf_reset(&b);
	struct gossip_wire_ack ack = {.seq_no = 5, .payload = S("")};
	gossip_wire_encode_ack(&ack, &b);
	/* Empty payload is nil, as Go sends it. */
	static const uint8_t want_ack[] = {0x02, 0x82, 0xa7, 'P', 'a', 'y', 'l', 'o', 'a',
					   'd',	 0xc0, 0xa5, 'S', 'e', 'q', 'N', 'o', 0x05};
	assert_int_equal(b.len, sizeof(want_ack));
	assert_memory_equal(b.data, want_ack, sizeof(want_ack));

	buf_reset(&b);
	gossip_wire_encode_nack(77, &b);
	uint32_t seq;
	assert_int_equal(gossip_wire_decode_nack(b.data + 1, b.len - 1, &seq), 0);
	assert_int_equal(seq, 77);

	buf_reset(&b);
	gossip_wire_encode_err("boom", &b);
	struct gossip_wire_str e;
	assert_int_equal(gossip_wire_decode_err(b.data + 1, b.len - 1, &e), 0);
	assert_true(str_is(e, "boom"));

	/* Strings of 32..255 bytes use raw16 (0xda), never str8 (0xd9). */
	buf_reset(&b);
	char name[40];
	memset(name, 'n', sizeof(name));
	struct gossip_wire_accuse s = {
		.incarnation = 1, .node = {(const uint8_t *)name, sizeof(name)}, .from = S("f")};
	gossip_wire_encode_accuse(GOSSIP_WIRE_SUSPECT, &s, &b);
	assert_non_null(memmem(b.data, b.len, "\xda\x00\x28", 3));
	assert_null(memchr(b.data, 0xd9, b.len));
	buf_done(&b);
}

static void test_lenient_and_strict(void **state)
{
	(void)state;
	struct gossip_wire_ping p;
	/* str8 keys and bin values are accepted; unknown keys skipped; negative ints refused. */
	static const uint8_t lenient[] = {0x83, 0xd9, 0x04, 'N', 'o',  'd',  'e',  0xc4, 0x01,
					  'a',	0xa5, 'S',  'e', 'q',  'N',  'o',  0xcc, 0xff,
					  0xa3, 'Z',  'z',  'z', 0x93, 0x01, 0x02, 0x03};
	assert_int_equal(gossip_wire_decode_ping(lenient, sizeof(lenient), &p), 0);
	assert_int_equal(p.seq_no, 255);
	assert_true(str_is(p.node, "a"));
	static const uint8_t negative[] = {0x81, 0xa5, 'S', 'e', 'q', 'N', 'o', 0xff};
	assert_int_equal(gossip_wire_decode_ping(negative, sizeof(negative), &p), -EBADMSG);
	static const uint8_t too_big[] = {0x81, 0xa5, 'S', 'e', 'q', 'N', 'o', 0xcf,
					  1,	0,    0,   0,	0,   0,	  0,   0};
	assert_int_equal(gossip_wire_decode_ping(too_big, sizeof(too_big), &p), -EBADMSG);
	/* A map declaring 2^32-1 entries in a few bytes is refused before any allocation. */
	static const uint8_t liar[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a', 0x01};
	assert_int_equal(gossip_wire_decode_ping(liar, sizeof(liar), &p), -EBADMSG);
	static const uint8_t long_str[] = {0x81, 0xa4, 'N',  'o',  'd',	 'e',
					   0xdb, 0x7f, 0xff, 0xff, 0xff, 'x'};
	assert_int_equal(gossip_wire_decode_ping(long_str, sizeof(long_str), &p), -EBADMSG);
	/* Trailing bytes, a non-map, nesting too deep. */
	static const uint8_t trailing[] = {0x80, 0x00};
	assert_int_equal(gossip_wire_decode_ping(trailing, sizeof(trailing), &p), -EBADMSG);
	static const uint8_t array[] = {0x90};
	assert_int_equal(gossip_wire_decode_ping(array, sizeof(array), &p), -EBADMSG);
	uint8_t deep[40];
	for (size_t i = 0; i < sizeof(deep) - 1; i++)
		deep[i] = 0x91;
	deep[sizeof(deep) - 1] = 0x00;
	struct gossip_wire_push_pull_header h;
	size_t used;
	assert_int_equal(gossip_wire_decode_push_pull_header(deep, sizeof(deep), &h, &used),
			 -EBADMSG);
	/* Addresses are 4 or 16 bytes. */
	static const uint8_t addr5[] = {0x81, 0xaa, 'S', 'o',  'u', 'r', 'c', 'e', 'A',
					'd',  'd',  'r', 0xa5, 1,   2,	 3,   4,   5};
	assert_int_equal(gossip_wire_decode_ping(addr5, sizeof(addr5), &p), -EMSGSIZE);
	/* Push/pull limits. */
	static const uint8_t many[] = {0x81, 0xa5, 'N', 'o', 'd', 'e', 's', 0xce, 0x7f, 0, 0, 0};
	assert_int_equal(gossip_wire_decode_push_pull_header(many, sizeof(many), &h, &used),
			 -EMSGSIZE);
}

static void test_packet_errors(void **state)
{
	(void)state;
	struct collected c = {0};
	static const uint8_t empty_compound[] = {GOSSIP_WIRE_COMPOUND, 0};
	assert_int_equal(gossip_wire_packet_walk(empty_compound, 2, collect, &c), -EBADMSG);
	static const uint8_t short_hdr[] = {GOSSIP_WIRE_COMPOUND, 3, 0, 1};
	assert_int_equal(gossip_wire_packet_walk(short_hdr, sizeof(short_hdr), collect, &c),
			 -EBADMSG);
	static const uint8_t short_crc[] = {GOSSIP_WIRE_HAS_CRC, 1, 2};
	assert_int_equal(gossip_wire_packet_walk(short_crc, sizeof(short_crc), collect, &c),
			 -EBADMSG);
	assert_int_equal(gossip_wire_packet_walk(NULL, 0, collect, &c), -EBADMSG);
	/* Compression round trip through the walker, and nesting bombs stop at the depth limit. */
	struct buf msg = BUF_INIT, z = BUF_INIT;
	gossip_wire_encode_nack(3, &msg);
	gossip_wire_encode_compress(msg.data, msg.len, &z);
	assert_int_equal(gossip_wire_packet_walk(z.data, z.len, collect, &c), 1);
	assert_int_equal(c.type[0], GOSSIP_WIRE_NACK);
	collected_done(&c);
	struct buf nest = BUF_INIT;
	buf_append(&nest, z.data, z.len);
	for (int i = 0; i < 6; i++) {
		struct buf w = BUF_INIT;
		gossip_wire_encode_crc(nest.data, nest.len, &w);
		buf_done(&nest);
		nest = w;
	}
	assert_int_equal(gossip_wire_packet_walk(nest.data, nest.len, collect, &c), -EBADMSG);
	assert_int_equal(c.n, 0);
	/* Compress with another algorithm. */
	static const uint8_t algo1[] = {0x82, 0xa4, 'A', 'l', 'g', 'o',
					0x01, 0xa3, 'B', 'u', 'f', 0xc0};
	struct buf out = BUF_INIT;
	assert_int_equal(gossip_wire_decompress(algo1, sizeof(algo1), 100, &out), -ENOTSUP);
	buf_done(&out);
	buf_done(&nest);
	buf_done(&msg);
	buf_done(&z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping_vector),
		cmocka_unit_test(test_gossip_vector),
		cmocka_unit_test(test_push_pull_vector),
		cmocka_unit_test(test_other_messages_roundtrip),
		cmocka_unit_test(test_lenient_and_strict),
		cmocka_unit_test(test_packet_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
