package cpu

// gemmEngine is a plain parallel GEMM, used until the packed SGEMM lands.
type gemmEngine struct {
	p *pool
	j gemmJob
}

func newGemmEngine(t int) *gemmEngine { return &gemmEngine{p: newPool(t)} }

func (e *gemmEngine) Close()         { e.p.close() }
func (e *gemmEngine) Kernel() string { return "naive" }

type gemmJob struct {
	ta, tb        bool
	m, n, k       int
	alpha, beta   float32
	a, b, c       []float32
	lda, ldb, ldc int
}

func (e *gemmEngine) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	e.j = gemmJob{transA, transB, m, n, k, alpha, beta, a, b, c, lda, ldb, ldc}
	if m*n*k < 1<<15 {
		e.j.run(0, 1)
		return
	}
	e.p.do(&e.j)
}

func (j *gemmJob) run(w, nw int) {
	// Split over rows when there are enough, else over columns.
	i0, i1, c0, c1 := 0, j.m, 0, j.n
	if j.m >= 4*nw {
		i0, i1 = span(j.m, w, nw)
	} else {
		c0, c1 = span(j.n, w, nw)
	}
	for i := i0; i < i1; i++ {
		crow := j.c[i*j.ldc+c0 : i*j.ldc+c1]
		if j.beta == 0 {
			clear(crow)
		} else if j.beta != 1 {
			for x := range crow {
				crow[x] *= j.beta
			}
		}
		if !j.tb {
			for p := 0; p < j.k; p++ {
				var aip float32
				if j.ta {
					aip = j.a[p*j.lda+i]
				} else {
					aip = j.a[i*j.lda+p]
				}
				aip *= j.alpha
				if aip == 0 {
					continue
				}
				brow := j.b[p*j.ldb+c0 : p*j.ldb+c1]
				for x, bv := range brow {
					crow[x] += aip * bv
				}
			}
			continue
		}
		for x := c0; x < c1; x++ {
			brow := j.b[x*j.ldb : x*j.ldb+j.k]
			var s float32
			if j.ta {
				for p, bv := range brow {
					s += j.a[p*j.lda+i] * bv
				}
			} else {
				arow := j.a[i*j.lda : i*j.lda+j.k]
				for p, bv := range brow {
					s += arow[p] * bv
				}
			}
			crow[x-c0] += j.alpha * s
		}
	}
}
