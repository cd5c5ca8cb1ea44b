package sgemm

// dot3x4 is the dotFunc of dot_amd64.s (AVX2+FMA): 12 YMM accumulators of
// 8 lanes along k; at the end each is summed across lanes, pairwise.
//
//go:noescape
func dot3x4(kb int, rows *[7]*float32, out *[12]float32)
