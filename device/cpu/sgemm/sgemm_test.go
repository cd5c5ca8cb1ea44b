package sgemm

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

type shape struct {
	transA, transB bool
	m, n, k        int
}

func (s shape) String() string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "F"
	}
	return fmt.Sprintf("%s%s_%dx%dx%d", t(s.transA), t(s.transB), s.m, s.n, s.k)
}

// problem is one call's operands, with strides padded by padA/padB/padC.
type problem struct {
	shape
	alpha, beta   float32
	a, b, c       []float32
	lda, ldb, ldc int
}

func newProblem(rng *rand.Rand, s shape, alpha, beta float32, pad int) *problem {
	p := &problem{shape: s, alpha: alpha, beta: beta}
	ar, ac := s.m, s.k
	if s.transA {
		ar, ac = s.k, s.m
	}
	br, bc := s.k, s.n
	if s.transB {
		br, bc = s.n, s.k
	}
	p.lda, p.ldb, p.ldc = ac+pad, bc+pad, s.n+pad
	p.a = randSlice(rng, ar*p.lda)
	p.b = randSlice(rng, br*p.ldb)
	p.c = randSlice(rng, s.m*p.ldc)
	if beta == 0 {
		for i := range p.c {
			p.c[i] = float32(math.NaN())
		}
	}
	return p
}

func randSlice(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	return x
}

func (p *problem) opA(i, l int) float32 {
	if p.transA {
		return p.a[l*p.lda+i]
	}
	return p.a[i*p.lda+l]
}

func (p *problem) opB(l, j int) float32 {
	if p.transB {
		return p.b[j*p.ldb+l]
	}
	return p.b[l*p.ldb+j]
}

// reference returns the float64 result and, per element, the error bound
// (k+2) * eps32 * (|alpha| * sum_l |a_il||b_lj| + |beta*c_ij|) * 2: float32
// summation of k products loses at most about k*eps relative to the sum of
// magnitudes, plus the roundings of alpha, beta and the final add; the factor
// 2 is slack for the k-split reduction and the partial-tile merges.
func (p *problem) reference() (want, tol []float64) {
	const eps = 1.0 / (1 << 23)
	want = make([]float64, p.m*p.n)
	tol = make([]float64, p.m*p.n)
	for i := 0; i < p.m; i++ {
		for j := 0; j < p.n; j++ {
			var s, mag float64
			for l := 0; l < p.k; l++ {
				x := float64(p.opA(i, l)) * float64(p.opB(l, j))
				s += x
				mag += math.Abs(x)
			}
			v := float64(p.alpha) * s
			bound := math.Abs(float64(p.alpha)) * mag
			if p.beta != 0 {
				cv := float64(p.beta) * float64(p.c[i*p.ldc+j])
				v += cv
				bound += math.Abs(cv)
			}
			want[i*p.n+j] = v
			tol[i*p.n+j] = 2*float64(p.k+2)*eps*bound + 1e-30
		}
	}
	return want, tol
}

func (p *problem) run(e *Engine) []float32 {
	c := append([]float32(nil), p.c...)
	e.Sgemm(p.transA, p.transB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, c, p.ldc)
	return c
}

// check compares got with the reference and that the padding of C is intact.
func (p *problem) check(t *testing.T, name string, got []float32, want, tol []float64) {
	t.Helper()
	bad := 0
	for i := 0; i < p.m; i++ {
		for j := 0; j < p.ldc; j++ {
			g := got[i*p.ldc+j]
			if j >= p.n {
				if math.Float32bits(g) != math.Float32bits(p.c[i*p.ldc+j]) {
					t.Errorf("%s: padding C[%d,%d] changed", name, i, j)
					return
				}
				continue
			}
			w, tl := want[i*p.n+j], tol[i*p.n+j]
			if d := math.Abs(float64(g) - w); !(d <= tl) {
				if bad < 5 {
					t.Errorf("%s: C[%d,%d] = %g, want %g (tol %g)", name, i, j, g, w, tl)
				}
				bad++
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements wrong", name, bad, p.m*p.n)
	}
}

type engineCase struct {
	name string
	e    *Engine
}

func testEngines(t *testing.T) []engineCase {
	var es []engineCase
	for _, th := range []int{1, 2, 3} {
		e := NewEngine(th)
		es = append(es, engineCase{fmt.Sprintf("%s/t%d", e.Kernel(), th), e})
		if k := avx2OrGeneric(); e.kern != k {
			a := newEngine(th, nil, k)
			es = append(es, engineCase{fmt.Sprintf("%s/t%d", a.Kernel(), th), a})
		}
		if e.kern != &genericKernel {
			g := NewEngineGeneric(th)
			es = append(es, engineCase{fmt.Sprintf("%s/t%d", g.Kernel(), th), g})
		}
	}
	t.Cleanup(func() {
		for _, ec := range es {
			ec.e.Close()
		}
	})
	return es
}

func testShapes(rng *rand.Rand) []shape {
	var ss []shape
	dims := [][3]int{
		{1, 1, 1}, {1, 1, 7}, {1, 17, 3}, {7, 1, 5}, {2, 3, 4},
		{6, 16, 8}, {7, 17, 9}, {5, 15, 300}, {12, 32, 256}, {13, 33, 257},
		{18, 48, 1}, {145, 20, 33}, {32, 10, 64}, {32, 64, 10}, {64, 29, 515},
		{150, 1030, 3}, {3, 2000, 11},
		// k split (long k, small C)
		{7, 5, 2000}, {13, 33, 3000}, {32, 27, 1100}, {5, 40, 2000}, {6, 33, 1200}, {300, 16, 1100}, {30, 20, 4500}, {150, 160, 1100},
	}
	for _, d := range dims {
		for tr := 0; tr < 4; tr++ {
			ss = append(ss, shape{tr&1 != 0, tr&2 != 0, d[0], d[1], d[2]})
		}
	}
	for i := 0; i < 24; i++ {
		ss = append(ss, shape{rng.Intn(2) == 0, rng.Intn(2) == 0, 1 + rng.Intn(80), 1 + rng.Intn(100), 1 + rng.Intn(600)})
	}
	return ss
}

func TestSgemm(t *testing.T) {
	defer func(v int) { parallelMinFMA = v }(parallelMinFMA)
	rng := rand.New(rand.NewSource(1))
	engines := testEngines(t)
	scalars := [][2]float32{{1, 0}, {1, 1}, {-0.7, 0.5}, {2, 0}}
	for si, s := range testShapes(rng) {
		ab := scalars[si%len(scalars)]
		pad := []int{0, 3}[si%2]
		p := newProblem(rng, s, ab[0], ab[1], pad)
		want, tol := p.reference()
		for _, minFMA := range []int{1 << 19, 0} { // default, and always hand over
			parallelMinFMA = minFMA
			for _, ec := range engines {
				got := p.run(ec.e)
				p.check(t, fmt.Sprintf("%v a=%g b=%g pad=%d %s min=%d", s, p.alpha, p.beta, pad, ec.name, minFMA), got, want, tol)
			}
		}
	}
}

// TestBetaZeroNaN checks that NaN in C does not leak when beta is 0, on
// full and edge tiles, and that alpha == 0 or k == 0 scale C by beta.
func TestSpecialScalars(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, ec := range testEngines(t) {
		for _, s := range []shape{{false, false, 12, 32, 5}, {true, true, 13, 17, 1}, {false, true, 7, 5, 1500}} {
			p := newProblem(rng, s, 1, 0, 1) // C all NaN
			got := p.run(ec.e)
			for i := 0; i < s.m; i++ {
				for j := 0; j < s.n; j++ {
					if v := got[i*p.ldc+j]; math.IsNaN(float64(v)) {
						t.Fatalf("%s %v: NaN leaked at %d,%d", ec.name, s, i, j)
					}
				}
			}
		}
		c := []float32{float32(math.NaN()), 2, 3, 4}
		ec.e.Sgemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 0, c, 2)
		if c[0] != 0 || c[3] != 0 {
			t.Errorf("%s: k=0 beta=0 gave %v", ec.name, c)
		}
		c = []float32{1, 2, 3, 4}
		a := []float32{float32(math.Inf(1)), 1, 1, 1}
		ec.e.Sgemm(false, false, 2, 2, 2, 0, a, 2, a, 2, 2, c, 2)
		if c[0] != 2 || c[3] != 8 {
			t.Errorf("%s: alpha=0 beta=2 gave %v", ec.name, c)
		}
	}
}

// TestDeterminism checks that results are bit-identical for 1, 2, 3 and 8
// threads, including the k split (its row, column and reduce parts depend on
// the thread count), and whether or not work is handed over.
func TestDeterminism(t *testing.T) {
	defer func(v int) { parallelMinFMA = v }(parallelMinFMA)
	rng := rand.New(rand.NewSource(3))
	shapes := []shape{
		{false, false, 64, 600, 288}, {true, false, 100, 70, 64}, {false, true, 32, 27, 5000},
		{false, true, 64, 100, 1200}, {true, true, 37, 300, 700}, {false, false, 300, 40, 100},
		{true, false, 4, 50, 3000}, {false, false, 1000, 20, 30}, {true, false, 300, 16, 1100}, {false, true, 30, 20, 4500}, {false, true, 300, 64, 4100},
		{false, true, 64, 288, 5408}, {true, false, 64, 288, 5408},
	}
	kerns := []*kernel{bestKernel(), &genericKernel}
	if k := avx2OrGeneric(); k != kerns[0] && k != kerns[1] {
		kerns = append(kerns, k)
	}
	for _, kn := range kerns {
		var es []*Engine
		for _, th := range []int{1, 2, 3, 8} {
			es = append(es, newEngine(th, nil, kn))
		}
		for _, s := range shapes {
			p := newProblem(rng, s, 0.9, 0.3, 2)
			parallelMinFMA = 1 << 19
			ref := p.run(es[0])
			for _, minFMA := range []int{1 << 19, 0} {
				parallelMinFMA = minFMA
				for _, e := range es[1:] {
					got := p.run(e)
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
							t.Fatalf("%s %v threads=%d: element %d = %g, 1 thread gave %g", e.Kernel(), s, e.Threads(), i, got[i], ref[i])
						}
					}
				}
			}
		}
		for _, e := range es {
			e.Close()
		}
	}
}

func TestAllocs(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	e := NewEngine(2)
	defer e.Close()
	for _, s := range []shape{{false, false, 64, 2000, 288}, {false, true, 32, 27, 6000}, {true, false, 300, 64, 64}, {false, true, 32, 10, 64}} {
		p := newProblem(rng, s, 1, 0.5, 0)
		e.Sgemm(p.transA, p.transB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, p.c, p.ldc) // warm up
		n := testing.AllocsPerRun(10, func() {
			e.Sgemm(p.transA, p.transB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, p.c, p.ldc)
		})
		if n != 0 {
			t.Errorf("%v: %v allocations per call, want 0", s, n)
		}
	}
}

func TestPanics(t *testing.T) {
	e := NewEngine(1)
	defer e.Close()
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	a := make([]float32, 6)
	mustPanic("short C", func() { e.Sgemm(false, false, 2, 3, 3, 1, a, 3, make([]float32, 9), 3, 0, make([]float32, 5), 3) })
	mustPanic("short A", func() { e.Sgemm(false, false, 3, 3, 3, 1, a, 3, make([]float32, 9), 3, 0, make([]float32, 9), 3) })
	mustPanic("small ldb", func() { e.Sgemm(false, true, 2, 3, 3, 1, a, 3, make([]float32, 9), 2, 0, make([]float32, 6), 3) })
}

// TestPlanCoverage makes sure the shapes above reach every kind of plan.
func TestPlanCoverage(t *testing.T) {
	defer func(v int) { parallelMinFMA = v }(parallelMinFMA)
	parallelMinFMA = 0 // as in the second pass of TestSgemm
	for _, ec := range testEngines(t) {
		kinds := map[string]bool{}
		for _, s := range testShapes(rand.New(rand.NewSource(1))) {
			e := ec.e
			e.job = job{m: s.m, n: s.n, k: s.k, op: operands{transA: s.transA, transB: s.transB, m: s.m, n: s.n}}
			e.plan()
			j := &e.job
			switch {
			case j.dot && j.swapped:
				kinds["dot, C^T"] = true
			case j.dot:
				kinds["dot"] = true
			case j.split && j.kParts > 1:
				kinds["k split, row parts"] = true
			case j.split && j.swapped:
				kinds["k split, C^T"] = true
			case j.split:
				kinds["k split"] = true
			case j.mTasks > 1 && j.nTasks > 1:
				kinds["2-D blocks"] = true
			case j.mTasks > 1:
				kinds["row blocks"] = true
			case j.nTasks > 1:
				kinds["column blocks"] = true
			}
			if j.dot && j.kTasks > 1 && j.kParts > 1 {
				kinds["dot, chunks and parts"] = true
			}
		}
		want := []string{"2-D blocks", "row blocks", "column blocks", "k split", "k split, row parts"}
		if ec.e.kern.mr != ec.e.kern.nr { // square tiles: never worth transposing
			want = append(want, "k split, C^T")
		}
		if ec.e.kern.dot != nil {
			want = append(want, "dot", "dot, C^T", "dot, chunks and parts")
		}
		for _, k := range want {
			if !kinds[k] {
				t.Errorf("%s: test shapes do not reach %q (only %v)", ec.name, k, kinds)
			}
		}
	}
}

// TestReuseAfterChange calls twice with the same slices, A and B changed in
// place in between: nothing packed in the first call may be reused.
func TestReuseAfterChange(t *testing.T) {
	defer func(v int) { parallelMinFMA = v }(parallelMinFMA)
	parallelMinFMA = 0
	rng := rand.New(rand.NewSource(6))
	for _, ec := range testEngines(t) {
		for _, s := range []shape{{false, false, 20, 700, 100}, {true, true, 7, 300, 40}} {
			p := newProblem(rng, s, 1, 0, 0)
			p.run(ec.e)
			copy(p.a, randSlice(rng, len(p.a)))
			copy(p.b, randSlice(rng, len(p.b)))
			want, tol := p.reference()
			p.check(t, fmt.Sprintf("%v %s second call", s, ec.name), p.run(ec.e), want, tol)
		}
	}
}
