//go:build cgo

package gpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// The StepOps conformance: each *At op on the GPU backend, its per-step
// values in device memory changed between calls, against the by-value op
// with the same values on the CPU backend (the reference) and on the GPU
// backend itself (its twin kernel): bit for bit both, since a captured step
// must give exactly what an eager one gives.

// trio is one array three times: the CPU's (by-value op), the GPU's (*At
// op) and the GPU's twin (by-value op).
type trio struct{ c, g, twin device.Buffer }

func (p *pair) trio(vals []float32) trio {
	p.t.Helper()
	b := p.f32(vals)
	twin, err := p.g.Alloc("twin", device.F32, len(vals))
	if err != nil {
		p.t.Fatal(err)
	}
	p.g.UploadF32(twin, 0, vals)
	return trio{b.c, b.g, twin}
}

func (p *pair) randTrio(n int, scale float32) trio {
	v := make([]float32, n)
	for i := range v {
		v[i] = (p.rng.Float32()*2 - 1) * scale
	}
	return p.trio(v)
}

// checkTrio compares the GPU's *At result with the CPU's and with its twin's.
func (p *pair) checkTrio(what string, x trio) {
	p.t.Helper()
	p.checkBits(what+" (gpu At vs cpu)", bufs{x.c, x.g})
	g, twin := make([]float32, x.g.Len()), make([]float32, x.g.Len())
	p.g.DownloadF32(x.g, 0, g)
	if err := p.g.DownloadF32(x.twin, 0, twin); err != nil {
		p.t.Fatal(err)
	}
	for i := range g {
		if math.Float32bits(g[i]) != math.Float32bits(twin[i]) {
			p.t.Fatalf("%s[%d]: At kernel %g, by-value kernel %g", what, i, g[i], twin[i])
		}
	}
}

// setF32 writes vals to the GPU buffer s (the per-step values).
func (p *pair) setF32(s device.Buffer, vals ...float32) {
	p.t.Helper()
	if err := p.g.UploadF32(s, 0, vals); err != nil {
		p.t.Fatal(err)
	}
}

func TestStepOpsOptimizers(t *testing.T) { eachGPU(t, testStepOpsOptimizers) }

func testStepOpsOptimizers(t *testing.T, p *pair) {
	const n, steps = 4099, 4
	grads := make([]bufs, steps)
	for i := range grads {
		grads[i] = p.rand(n, 1)
	}
	s, _ := p.g.Alloc("per-step values", device.F32, 3)
	for _, c := range []struct{ l2, wd float32 }{{0, 0}, {1e-2, 0}, {0, 5e-2}} { // adam, adam+L2, adamw
		par, m, v := p.randTrio(n, 1), p.randTrio(n, 0.1), p.trio(positive(p, n, 0.01))
		for i, g := range grads {
			t := float64(i + 1)
			bc2 := math.Sqrt(1 - math.Pow(0.999, t))
			lr := 1e-3 * float64(i+2) // a schedule
			lrT, eps, decay := float32(lr*bc2/(1-math.Pow(0.9, t))), float32(1e-8*bc2), float32(lr*float64(c.wd))
			p.setF32(s, lrT, eps, decay)
			p.c.Adam(par.c, g.c, m.c, v.c, n, lrT, 0.9, 0.999, eps, c.l2, decay)
			p.g.AdamAt(par.g, g.g, m.g, v.g, n, s, 0.9, 0.999, c.l2)
			p.g.Adam(par.twin, g.g, m.twin, v.twin, n, lrT, 0.9, 0.999, eps, c.l2, decay)
		}
		what := fmt.Sprintf("adam %+v", c)
		p.checkTrio(what+" params", par)
		p.checkTrio(what+" m", m)
		p.checkTrio(what+" v", v)
	}
	for _, c := range []struct {
		momentum, l2 float32
		nesterov     bool
	}{{0, 0, false}, {0.9, 5e-4, true}, {0.5, 1e-3, false}} {
		par, buf := p.randTrio(n, 1), p.trio(make([]float32, n))
		for i, g := range grads {
			lr := float32(0.05 / float64(i+1))
			p.setF32(s, lr)
			p.c.SGD(par.c, g.c, buf.c, n, lr, c.momentum, c.l2, c.nesterov)
			p.g.SGDAt(par.g, g.g, buf.g, n, s, c.momentum, c.l2, c.nesterov)
			p.g.SGD(par.twin, g.g, buf.twin, n, lr, c.momentum, c.l2, c.nesterov)
		}
		p.checkTrio(fmt.Sprintf("sgd %+v params", c), par)
		p.checkTrio(fmt.Sprintf("sgd %+v buf", c), buf)
	}
	for _, momentum := range []float32{0, 0.9} {
		par, sq, buf := p.randTrio(n, 1), p.trio(make([]float32, n)), p.trio(make([]float32, n))
		for i, g := range grads {
			lr := float32(0.01 * float64(i+1))
			p.setF32(s, lr)
			p.c.RMSprop(par.c, g.c, sq.c, buf.c, n, lr, 0.99, 1e-8, 1e-3, momentum)
			p.g.RMSpropAt(par.g, g.g, sq.g, buf.g, n, s, 0.99, 1e-8, 1e-3, momentum)
			p.g.RMSprop(par.twin, g.g, sq.twin, buf.twin, n, lr, 0.99, 1e-8, 1e-3, momentum)
		}
		p.checkTrio(fmt.Sprintf("rmsprop momentum %v params", momentum), par)
		p.checkTrio(fmt.Sprintf("rmsprop momentum %v sq", momentum), sq)
	}
}

// TestStepOpsAverageAugmentDropout: AxpbyAt (off when s[2] is 0),
// AugmentAt and DropoutAt with the step number in device memory.
func TestStepOpsAverageAugmentDropout(t *testing.T) { eachGPU(t, testStepOpsPointwise) }

func testStepOpsPointwise(t *testing.T, p *pair) {
	const n = 3001
	s, _ := p.g.Alloc("per-step values", device.F32, 3)
	x, y := p.rand(n, 1), p.randTrio(n, 1)
	for _, c := range [][3]float32{{0.1, 0.9, 1}, {0.5, 0.5, 0}, {1, 0, 1}, {0.25, 0.75, 1}} {
		p.setF32(s, c[:]...)
		if c[2] != 0 {
			p.c.Axpby(x.c, y.c, n, c[0], c[1])
			p.g.Axpby(x.g, y.twin, n, c[0], c[1])
		}
		p.g.AxpbyAt(x.g, y.g, n, s)
	}
	p.checkTrio("axpby", y)

	step, _ := p.g.Alloc("step", device.I32, 1)
	const ch, imgs, h, w = 3, 5, 9, 8
	src := p.rand(ch*imgs*h*w, 1)
	for _, st := range []int{0, 7, 1<<31 - 1} {
		p.g.UploadI32(step, 0, []int32{int32(st)})
		for _, m := range []struct{ reflect, noFlip bool }{{false, false}, {true, false}, {true, true}} {
			dst := p.trio(make([]float32, ch*imgs*h*w))
			p.c.Augment(src.c, dst.c, ch, imgs, h, w, 3, m.reflect, m.noFlip, 42, st)
			p.g.AugmentAt(src.g, dst.g, ch, imgs, h, w, 3, m.reflect, m.noFlip, 42, step)
			p.g.Augment(src.g, dst.twin, ch, imgs, h, w, 3, m.reflect, m.noFlip, 42, st)
			p.checkTrio(fmt.Sprintf("augment step %d %+v", st, m), dst)
		}
		for _, pr := range []float32{0, 0.3} {
			dst := p.trio(make([]float32, n))
			p.c.Dropout(x.c, dst.c, n, pr, 99, st)
			p.g.DropoutAt(x.g, dst.g, n, pr, 99, step)
			p.g.Dropout(x.g, dst.twin, n, pr, 99, st)
			p.checkTrio(fmt.Sprintf("dropout p %v step %d", pr, st), dst)
		}
	}
}

// TestStepCounters: StepBegin copies the batch at the counters' position
// and the table row of their step; StepEnd advances them and wraps the
// position at the epoch's end, as the CPU backend and a Go model do.
func TestStepCounters(t *testing.T) { eachGPU(t, testStepCounters) }

func testStepCounters(t *testing.T, p *pair) {
	const stride, steps, k, rows = 6, 4, 5, 3
	perm := make([]int32, stride*steps-2) // a last batch of 4
	for i := range perm {
		perm[i] = int32(p.rng.IntN(1000))
	}
	table := make([]float32, rows*k)
	for i := range table {
		table[i] = p.rng.Float32()
	}
	pb, tb := p.i32(perm), p.f32(table)
	ctr := p.i32([]int32{1, 10, 9}) // position 1, global step 10, table from step 9
	idx, cur := p.i32(make([]int32, stride)), p.f32(make([]float32, k))
	pos, step, first := 1, 10, 9
	for range 2 * steps {
		cnt := min(stride, len(perm)-pos*stride)
		for _, b := range []struct {
			d        device.Backend
			ctr, idx device.Buffer
			perm     device.Buffer
			tab, cur device.Buffer
		}{{p.c, ctr.c, idx.c, pb.c, tb.c, cur.c}, {p.g, ctr.g, idx.g, pb.g, tb.g, cur.g}} {
			b.d.StepBegin(b.ctr, b.perm, stride, cnt, b.idx, b.tab, k, b.cur)
		}
		if row := step - first; row < rows {
			got := make([]float32, k)
			p.g.DownloadF32(cur.g, 0, got)
			for i := range got {
				if got[i] != table[row*k+i] {
					t.Fatalf("step %d: cur %v, want row %d %v", step, got, row, table[row*k:row*k+k])
				}
			}
			p.checkBits(fmt.Sprintf("cur at step %d", step), cur)
		}
		gi := make([]int32, cnt)
		p.g.DownloadI32(idx.g, 0, gi)
		for j := range gi {
			if gi[j] != perm[pos*stride+j] {
				t.Fatalf("step %d (position %d): idx %v, want %v", step, pos, gi, perm[pos*stride:pos*stride+cnt])
			}
		}
		p.c.StepEnd(ctr.c, steps)
		p.g.StepEnd(ctr.g, steps)
		pos, step = (pos+1)%steps, step+1
		p.checkI32(fmt.Sprintf("counters after step %d", step), ctr)
		got := make([]int32, 3)
		p.g.DownloadI32(ctr.g, 0, got)
		if got[0] != int32(pos) || got[1] != int32(step) || got[2] != int32(first) {
			t.Fatalf("counters %v, want [%d %d %d]", got, pos, step, first)
		}
		if step-first >= rows { // the table starts again at this step
			first = step
			ctr = p.i32([]int32{int32(pos), int32(step), int32(first)})
		}
	}
}
