package data

import "math/rand/v2"

// Permutation fills p with a permutation of 0..len(p)-1 drawn from rng
// (Fisher-Yates). The result depends only on rng's state, so a seeded
// generator gives the same order on every run and platform. rng must not be
// nil.
func Permutation(rng *rand.Rand, p []int32) {
	for i := range p {
		p[i] = int32(i)
	}
	for i := len(p) - 1; i > 0; i-- {
		j := rng.IntN(i + 1)
		p[i], p[j] = p[j], p[i]
	}
}
