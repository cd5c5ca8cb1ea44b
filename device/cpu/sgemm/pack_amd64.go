package sgemm

// Packing routines of pack_amd64.s (AVX); only used with the AVX2 kernel.

//go:noescape
func copy16rows(kc, np int, src *float32, ld int, dst *float32, dstride int)

//go:noescape
func copy6(kc int, src *float32, ld int, dst *float32)

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
	if kc > len(zeroRow) {
		panic("sgemm: k block larger than zeroRow")
	}
	if !trans {
		// Whole panels row by row (the source streams), then the edge.
		np := nc / 16
		if np > 0 {
			s := p0*ldb + j0
			_ = b[s+(kc-1)*ldb+np*16-1] // the last element read
			_ = dst[np*16*kc-1]
			copy16rows(kc, np, &b[s], ldb, &dst[0], 16*kc)
		}
		if jr := np * 16; jr < nc {
			packB(dst[jr*kc:jr*kc+16*kc], b, ldb, trans, p0, kc, j0+jr, nc-jr, 16)
		}
		return
	}
	kc8 := kc &^ 7
	for jr := 0; jr < nc; jr += 16 {
		cols := min(16, nc-jr)
		d := dst[jr*kc : jr*kc+16*kc]
		j := j0 + jr
		var src [16][]float32
		for jj := 0; jj < cols; jj++ {
			s := (j+jj)*ldb + p0
			src[jj] = b[s : s+kc]
		}
		if kc8 > 0 {
			for h := 0; h < 2; h++ {
				var rp [8]*float32
				for q := range rp {
					rp[q] = &zeroRow[0]
					if jj := 8*h + q; jj < cols {
						rp[q] = &src[jj][0]
					}
				}
				transpose8(kc8, &rp, &d[8*h], 16)
			}
		}
		for p := kc8; p < kc; p++ {
			dp := d[p*16 : p*16+16]
			for jj := range dp {
				dp[jj] = 0
				if jj < cols {
					dp[jj] = src[jj][p]
				}
			}
		}
	}
}
