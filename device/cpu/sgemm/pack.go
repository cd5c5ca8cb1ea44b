package sgemm

// packA packs rows [i0, i0+mc) and columns [p0, p0+kc) of op(A) into panels
// of mr rows: panel r holds element (i0+r*mr+ii, p0+p) at dst[r*mr*kc+p*mr+ii].
// Rows past the block are zero.
func packA(dst, a []float32, lda int, trans bool, i0, mc, p0, kc, mr int) {
	for ir := 0; ir < mc; ir += mr {
		rows := min(mr, mc-ir)
		d := dst[ir*kc : ir*kc+mr*kc]
		i := i0 + ir
		if trans {
			// op(A)[i, p] = a[p*lda+i]: mr consecutive values per p.
			if mr == 6 && rows == 6 {
				for p := 0; p < kc; p++ {
					s := (p0 + p) * lda
					*(*[6]float32)(d[p*6:]) = *(*[6]float32)(a[s+i:])
				}
				continue
			}
			for p := 0; p < kc; p++ {
				s := (p0+p)*lda + i
				dp := d[p*mr : p*mr+mr]
				copy(dp, a[s:s+rows])
				clear(dp[rows:])
			}
			continue
		}
		// op(A)[i, p] = a[i*lda+p]: transpose mr rows.
		if mr == 6 && rows == 6 {
			a0 := a[i*lda+p0 : i*lda+p0+kc]
			a1 := a[(i+1)*lda+p0 : (i+1)*lda+p0+kc]
			a2 := a[(i+2)*lda+p0 : (i+2)*lda+p0+kc]
			a3 := a[(i+3)*lda+p0 : (i+3)*lda+p0+kc]
			a4 := a[(i+4)*lda+p0 : (i+4)*lda+p0+kc]
			a5 := a[(i+5)*lda+p0 : (i+5)*lda+p0+kc]
			for p := range a0 {
				dp := (*[6]float32)(d[p*6:])
				dp[0], dp[1], dp[2], dp[3], dp[4], dp[5] = a0[p], a1[p], a2[p], a3[p], a4[p], a5[p]
			}
			continue
		}
		if mr == 4 && rows == 4 {
			a0 := a[i*lda+p0 : i*lda+p0+kc]
			a1 := a[(i+1)*lda+p0 : (i+1)*lda+p0+kc]
			a2 := a[(i+2)*lda+p0 : (i+2)*lda+p0+kc]
			a3 := a[(i+3)*lda+p0 : (i+3)*lda+p0+kc]
			for p := range a0 {
				dp := (*[4]float32)(d[p*4:])
				dp[0], dp[1], dp[2], dp[3] = a0[p], a1[p], a2[p], a3[p]
			}
			continue
		}
		for ii := 0; ii < mr; ii++ {
			if ii >= rows {
				for p := 0; p < kc; p++ {
					d[p*mr+ii] = 0
				}
				continue
			}
			src := a[(i+ii)*lda+p0 : (i+ii)*lda+p0+kc]
			for p, v := range src {
				d[p*mr+ii] = v
			}
		}
	}
}

// packB packs rows [p0, p0+kc) and columns [j0, j0+nc) of op(B) into panels
// of nr columns: panel r holds element (p0+p, j0+r*nr+jj) at
// dst[r*nr*kc+p*nr+jj]. Columns past the block are zero.
func packB(dst, b []float32, ldb int, trans bool, p0, kc, j0, nc, nr int) {
	for jr := 0; jr < nc; jr += nr {
		cols := min(nr, nc-jr)
		d := dst[jr*kc : jr*kc+nr*kc]
		j := j0 + jr
		if !trans {
			// op(B)[p, j] = b[p*ldb+j]: nr consecutive values per p.
			if nr == 16 && cols == 16 {
				for p := 0; p < kc; p++ {
					s := (p0+p)*ldb + j
					*(*[16]float32)(d[p*16:]) = *(*[16]float32)(b[s:])
				}
				continue
			}
			if nr == 4 && cols == 4 {
				for p := 0; p < kc; p++ {
					s := (p0+p)*ldb + j
					*(*[4]float32)(d[p*4:]) = *(*[4]float32)(b[s:])
				}
				continue
			}
			for p := 0; p < kc; p++ {
				s := (p0+p)*ldb + j
				dp := d[p*nr : p*nr+nr]
				copy(dp, b[s:s+cols])
				clear(dp[cols:])
			}
			continue
		}
		// op(B)[p, j] = b[j*ldb+p]: transpose nr rows of b.
		if nr == 16 && cols == 16 {
			packT16(d, b, ldb, j, p0, kc)
			continue
		}
		for jj := 0; jj < nr; jj++ {
			if jj >= cols {
				for p := 0; p < kc; p++ {
					d[p*nr+jj] = 0
				}
				continue
			}
			src := b[(j+jj)*ldb+p0 : (j+jj)*ldb+p0+kc]
			for p, v := range src {
				d[p*nr+jj] = v
			}
		}
	}
}

// packT16 writes d[p*16+jj] = b[(j+jj)*ldb+p0+p] for jj < 16, p < kc,
// four source rows at a time.
func packT16(d, b []float32, ldb, j, p0, kc int) {
	d = d[:16*kc]
	for jj := 0; jj < 16; jj += 4 {
		s := (j+jj)*ldb + p0
		r0 := b[s : s+kc]
		r1 := b[s+ldb : s+ldb+kc]
		r2 := b[s+2*ldb : s+2*ldb+kc]
		r3 := b[s+3*ldb : s+3*ldb+kc]
		for p := range r0 {
			dp := (*[4]float32)(d[p*16+jj:])
			dp[0], dp[1], dp[2], dp[3] = r0[p], r1[p], r2[p], r3[p]
		}
	}
}
