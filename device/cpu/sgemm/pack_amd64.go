package sgemm

// Packing routines of pack_amd64.s (AVX) and kernel_avx512_amd64.s
// (copy32rows: AVX-512F; copy8: AVX); only used with the assembly kernels.

//go:noescape
func copy16rows(kc, np int, src *float32, ld int, dst *float32, dstride int)

//go:noescape
func copy6(kc int, src *float32, ld int, dst *float32)

//go:noescape
func copy32rows(kc, np int, src *float32, ld int, dst *float32, dstride int)

//go:noescape
func copy8(kc int, src *float32, ld int, dst *float32)

//go:noescape
func transpose8(kc8 int, rows *[8]*float32, dst *float32, ldd int)

//go:noescape
func transpose6(kc8 int, rows *[8]*float32, dst *float32)

// zeroRow stands in for the missing rows of an edge panel; it must be at
// least as long as the largest k block.
var zeroRow [512]float32

// packA6 is packA for mr = 6 using the AVX routines.
func packA6(dst, a []float32, lda int, trans bool, i0, mc, p0, kc, mr int) {
	if kc > len(zeroRow) {
		panic("sgemm: k block larger than zeroRow")
	}
	kc8 := kc &^ 7
	for ir := 0; ir < mc; ir += 6 {
		rows := min(6, mc-ir)
		d := dst[ir*kc : ir*kc+6*kc]
		i := i0 + ir
		if trans {
			if rows == 6 {
				s := p0*lda + i
				_ = a[s+(kc-1)*lda+5] // the last element read
				copy6(kc, &a[s], lda, &d[0])
				continue
			}
			packA(d, a, lda, trans, i, rows, p0, kc, 6)
			continue
		}
		var rp [8]*float32
		var src [6][]float32
		for ii := range rp {
			rp[ii] = &zeroRow[0]
			if ii < rows {
				s := (i+ii)*lda + p0
				src[ii] = a[s : s+kc]
				rp[ii] = &src[ii][0]
			}
		}
		if kc8 > 0 {
			transpose6(kc8, &rp, &d[0])
		}
		for p := kc8; p < kc; p++ {
			dp := d[p*6 : p*6+6]
			for ii := range dp {
				dp[ii] = 0
				if ii < rows {
					dp[ii] = src[ii][p]
				}
			}
		}
	}
}

// packB16 is packB for nr = 16 using the AVX routines.
func packB16(dst, b []float32, ldb int, trans bool, p0, kc, j0, nc, nr int) {
	packBAsm(dst, b, ldb, trans, p0, kc, j0, nc, 16, copy16rows)
}

// packB32 is packB for nr = 32 using the AVX and AVX-512 routines.
func packB32(dst, b []float32, ldb int, trans bool, p0, kc, j0, nc, nr int) {
	packBAsm(dst, b, ldb, trans, p0, kc, j0, nc, 32, copy32rows)
}

// packBAsm is packB for nr a multiple of 8 with the assembly routines;
// copyRows copies whole panels of nr columns of an untransposed B.
func packBAsm(dst, b []float32, ldb int, trans bool, p0, kc, j0, nc, nr int,
	copyRows func(kc, np int, src *float32, ld int, dst *float32, dstride int)) {
	if kc > len(zeroRow) {
		panic("sgemm: k block larger than zeroRow")
	}
	if !trans {
		// Whole panels row by row (the source streams), then the edge.
		np := nc / nr
		if np > 0 {
			s := p0*ldb + j0
			_ = b[s+(kc-1)*ldb+np*nr-1] // the last element read
			_ = dst[np*nr*kc-1]
			copyRows(kc, np, &b[s], ldb, &dst[0], nr*kc)
		}
		if jr := np * nr; jr < nc {
			packB(dst[jr*kc:jr*kc+nr*kc], b, ldb, trans, p0, kc, j0+jr, nc-jr, nr)
		}
		return
	}
	kc8 := kc &^ 7
	var src [32][]float32
	for jr := 0; jr < nc; jr += nr {
		cols := min(nr, nc-jr)
		d := dst[jr*kc : jr*kc+nr*kc]
		j := j0 + jr
		for jj := 0; jj < cols; jj++ {
			s := (j+jj)*ldb + p0
			src[jj] = b[s : s+kc]
		}
		if kc8 > 0 {
			for h := 0; h < nr/8; h++ {
				var rp [8]*float32
				for q := range rp {
					rp[q] = &zeroRow[0]
					if jj := 8*h + q; jj < cols {
						rp[q] = &src[jj][0]
					}
				}
				transpose8(kc8, &rp, &d[8*h], nr)
			}
		}
		for p := kc8; p < kc; p++ {
			dp := d[p*nr : p*nr+nr]
			for jj := range dp {
				dp[jj] = 0
				if jj < cols {
					dp[jj] = src[jj][p]
				}
			}
		}
	}
}

// packA8 is packA for mr = 8 using the AVX routines.
func packA8(dst, a []float32, lda int, trans bool, i0, mc, p0, kc, mr int) {
	if kc > len(zeroRow) {
		panic("sgemm: k block larger than zeroRow")
	}
	kc8 := kc &^ 7
	for ir := 0; ir < mc; ir += 8 {
		rows := min(8, mc-ir)
		d := dst[ir*kc : ir*kc+8*kc]
		i := i0 + ir
		if trans {
			if rows == 8 {
				s := p0*lda + i
				_ = a[s+(kc-1)*lda+7] // the last element read
				copy8(kc, &a[s], lda, &d[0])
				continue
			}
			packA(d, a, lda, trans, i, rows, p0, kc, 8)
			continue
		}
		var rp [8]*float32
		var src [8][]float32
		for ii := range rp {
			rp[ii] = &zeroRow[0]
			if ii < rows {
				s := (i+ii)*lda + p0
				src[ii] = a[s : s+kc]
				rp[ii] = &src[ii][0]
			}
		}
		if kc8 > 0 {
			transpose8(kc8, &rp, &d[0], 8)
		}
		for p := kc8; p < kc; p++ {
			dp := d[p*8 : p*8+8]
			for ii := range dp {
				dp[ii] = 0
				if ii < rows {
					dp[ii] = src[ii][p]
				}
			}
		}
	}
}
