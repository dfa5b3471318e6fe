/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xoshiro256** (Blackman and Vigna): the pseudo-random generator of the gossip core and the
 * simulator. Deterministic for a given seed, which is what makes a simulated run replayable;
 * the node seeds it from the kernel's CSPRNG. Not for key material: its outputs are used for
 * shuffling, random peers, jitter and AES-GCM nonces (which must be unique, not secret; with a
 * 256-bit random seed, two processes' 96-bit nonce streams do not meet in practice).
 */
#pragma once

#include <stdint.h>

struct rng {
	uint64_t s[4];
};

static inline uint64_t rng_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rng_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rng_rotl(s[3], 45);
	return out;
}

/* Seeds from any 64-bit value through splitmix64 (an all-zero state would be stuck). */
static inline void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		r->s[i] = z ^ (z >> 31);
	}
}

/* Uniform in [0, n); n > 0. The modulo bias is below 2^-40 for the n used here. */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	return rng_next(r) % n;
}

/* Uniform in [0, 1). */
static inline double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}
