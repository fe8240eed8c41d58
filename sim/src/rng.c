/*
 * The simulator's only source of randomness: xoshiro256** 1.0 (Blackman and
 * Vigna), seeded through splitmix64.
 *
 * Everything here is pinned by known-answer tests: a run is reproducible
 * from its seed only as long as these functions give the same outputs, so
 * any change to them (even "better" seeding) breaks every recorded seed.
 */
#include "sim_internal.h"

#define GOLDEN_GAMMA 0x9e3779b97f4a7c15ull

static uint64_t
rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t
sim_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += GOLDEN_GAMMA);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/*
 * The stream number goes through splitmix64 before it meets the seed.
 * With the naive seed ^ stream * gamma, seed 0's streams s and s + 1 would
 * start their splitmix64 sequences one step apart, so stream s + 1's state
 * would be stream s's shifted by a word: correlated streams. Hashing the
 * stream first scatters neighbouring streams across the state space.
 */
void
sim_rng_seed(struct sim_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t st = stream;
    uint64_t x = seed ^ sim_splitmix64(&st);
    int i;

    /* splitmix64's output function is a bijection of its counter, and the
     * four counters differ, so at most one word is zero: xoshiro's
     * forbidden all-zero state cannot come out of this. */
    for (i = 0; i < 4; i++)
        r->s[i] = sim_splitmix64(&x);
}

uint64_t
sim_rng_next(struct sim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return res;
}

/*
 * Rejection as in OpenBSD's arc4random_uniform: values below 2^64 mod n
 * are redrawn, so the accepted range is a whole multiple of n and the
 * remainder is uniform. Portable C11 (no 128-bit multiply), and the number
 * of draws per call is part of the pinned behaviour.
 */
uint64_t
sim_rng_below(struct sim_rng *r, uint64_t n)
{
    uint64_t threshold, x;

    SIM_ASSERT(n > 0);
    threshold = (0 - n) % n; /* (2^64 - n) mod n == 2^64 mod n */
    do
        x = sim_rng_next(r);
    while (x < threshold);
    return x % n;
}

/*
 * 0 and 1,000,000 are decided without drawing, so that a fault switched
 * off (or fully on) does not consume the stream: turning one knob to 0
 * leaves every other random choice of the run unchanged.
 */
int
sim_rng_chance_ppm(struct sim_rng *r, uint32_t ppm)
{
    if (ppm == 0)
        return 0;
    if (ppm >= 1000000u)
        return 1;
    return sim_rng_below(r, 1000000u) < ppm;
}

uint64_t
sim_stream_id(enum sim_stream purpose, uint32_t id)
{
    return ((uint64_t)purpose << 32) | id;
}
