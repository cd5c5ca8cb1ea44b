package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// The fast paths of ops.go and the kernels of kernels.go against the
// general loops they replace, bit for bit, with the AVX2 kernels and with
// the pure Go ones. TRAINER_CPU_NOASM=1 runs the whole test binary (the
// benchmarks too) on the pure Go kernels.

func init() {
	if os.Getenv("TRAINER_CPU_NOASM") != "" {
		useAVX2 = false
	}
}

// eachKernelSet runs f with the AVX2 kernels (where the CPU has them) and
// with the pure Go ones.
func eachKernelSet(t *testing.T, f func(t *testing.T)) {
	saved := useAVX2
	t.Cleanup(func() { useAVX2 = saved })
	sets := []bool{false}
	if saved {
		sets = append(sets, true)
	}
	for _, avx := range sets {
		useAVX2 = avx
		name := "go"
		if avx {
			name = "avx2"
		}
		t.Run(name, f)
	}
	useAVX2 = saved
}

func testRand(t *testing.T) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(len(t.Name())), 0x0b5))
}

var special = []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)),
	float32(math.NaN()), -float32(math.NaN()), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32,
	math.MaxFloat32, -math.MaxFloat32, math.Float32frombits(0x7f800001), math.Float32frombits(0xffc00001)}

// values is n floats: mostly N(0,1), some small integers (ties), some
// special values (signed zeros, infinities, NaNs, denormals).
func values(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		switch k := r.IntN(10); {
		case k < 6:
			v[i] = float32(r.NormFloat64())
		case k < 9:
			v[i] = float32(r.IntN(3) - 1)
		default:
			v[i] = special[r.IntN(len(special))]
		}
	}
	return v
}

// sameBits compares bit patterns: for copies and selections, and for sums
// (sameVals) outside NaNs.
func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	same(t, what, got, want, false)
}

// sameVals is sameBits but takes any NaN for any other: which payload an
// operation on two NaNs returns depends on the order of its operands, which
// for a commutative add the compiler picks.
func sameVals(t *testing.T, what string, got, want []float32) {
	t.Helper()
	same(t, what, got, want, true)
}

func same(t *testing.T, what string, got, want []float32, anyNaN bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if anyNaN && got[i] != got[i] && want[i] != want[i] {
			continue
		}
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %v (%#08x), want %v (%#08x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

var kernelLens = []int{0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 39, 40, 63, 64, 100, 1000, 1031}

func TestAddBiasKernels(t *testing.T) {
	eachKernelSet(t, func(t *testing.T) {
		r := testRand(t)
		for _, n := range kernelLens {
			for _, b := range append([]float32{0.5, -0.25}, special...) {
				y := values(r, n)
				want := slices.Clone(y)
				for i, v := range want { // the reference loop
					v += b
					if v < 0 {
						v = 0
					}
					want[i] = v
				}
				got := slices.Clone(y)
				addBiasRelu(got, b)
				sameVals(t, fmt.Sprintf("addBiasRelu n=%d b=%v", n, b), got, want)

				for i := range want {
					want[i] = y[i] + b
				}
				got = slices.Clone(y)
				addBias(got, b)
				sameVals(t, fmt.Sprintf("addBias n=%d b=%v", n, b), got, want)
			}
		}
	})
}

func TestReLUBackwardKernel(t *testing.T) {
	eachKernelSet(t, func(t *testing.T) {
		r := testRand(t)
		for _, n := range kernelLens {
			y, dy := values(r, n), values(r, n)
			want := make([]float32, n)
			for i := range y {
				if y[i] > 0 {
					want[i] = dy[i]
				}
			}
			got := make([]float32, n)
			reluBwd(y, dy, got)
			sameBits(t, fmt.Sprintf("reluBwd n=%d", n), got, want)
			reluBwd(y, dy, dy) // in place
			sameBits(t, fmt.Sprintf("reluBwd in place n=%d", n), dy, want)
		}
	})
}

func TestSumLanesKernel(t *testing.T) {
	eachKernelSet(t, func(t *testing.T) {
		r := testRand(t)
		for _, n := range kernelLens {
			x := values(r, n)
			for i := range x { // finite only: NaN != NaN
				if v := float64(x[i]); math.IsNaN(v) || math.IsInf(v, 0) {
					x[i] = 3
				}
			}
			var want [8]float64
			for i := range want {
				want[i] = float64(i) // carried in, as across rows
			}
			got := want
			for i, v := range x {
				want[i%8] += float64(v)
			}
			sumLanes(x, &got)
			if got != want {
				t.Fatalf("n=%d: %v, want %v", n, got, want)
			}
		}
	})
}

func TestAdamKernel(t *testing.T) {
	eachKernelSet(t, func(t *testing.T) {
		r := testRand(t)
		for _, n := range kernelLens {
			p, g, m := values(r, n), values(r, n), values(r, n)
			v := values(r, n)
			for i := range v {
				v[i] = float32(math.Abs(float64(v[i])))
			}
			wp, wm, wv := slices.Clone(p), slices.Clone(m), slices.Clone(v)
			var lrT, b1, b2, eps float32 = 1e-3, 0.9, 0.999, 1e-7
			for i := range wp { // the reference loop, without FMA
				gi := g[i]
				mi := float32(b1*wm[i]) + float32((1-b1)*gi)
				vi := float32(b2*wv[i]) + float32((1-b2)*gi*gi)
				wm[i], wv[i] = mi, vi
				wp[i] -= lrT * mi / (float32(math.Sqrt(float64(vi))) + eps)
			}
			adam(p, g, m, v, lrT, b1, b2, eps)
			sameVals(t, "adam p", p, wp)
			sameVals(t, "adam m", m, wm)
			sameVals(t, "adam v", v, wv)
		}
	})
}

func TestBlockKernels(t *testing.T) {
	eachKernelSet(t, func(t *testing.T) {
		r := testRand(t)
		for _, width := range []int{1, 2, 3, 4, 5, 7, 8, 9, 13, 15, 16, 17, 30, 33} {
			for _, rows := range []int{1, 2, 5} {
				for _, planes := range []int{1, 3} {
					b := blocks{ds: width + r.IntN(3), ss: width + r.IntN(4), planes: planes, rows: rows, width: width}
					b.dps, b.sps = rows*b.ds+r.IntN(5), rows*b.ss+r.IntN(5)
					dn, sn := b.lens()
					src := values(r, sn)
					dst := values(r, dn+3) // the spare room must stay
					what := fmt.Sprintf("%+v", b)
					want := slices.Clone(dst)
					for p := range planes {
						for y := range rows {
							copy(want[p*b.dps+y*b.ds:][:width], src[p*b.sps+y*b.ss:])
						}
					}
					got := slices.Clone(dst)
					copyBlocks(got, src, b)
					sameBits(t, "copyBlocks "+what, got, want)

					want = slices.Clone(dst)
					for p := range planes {
						for y := range rows {
							for i := range width {
								want[p*b.dps+y*b.ds+i] += src[p*b.sps+y*b.ss+i]
							}
						}
					}
					got = slices.Clone(dst)
					addBlocks(got, src, b)
					sameVals(t, "addBlocks "+what, got, want)
				}
			}
		}
	})
}

// testConvGeoms are stride-1 geometries (the fast path) of every padding
// and kernel shape, plus the model's three convolutions.
func testConvGeoms() []device.ConvGeom {
	gs := []device.ConvGeom{
		{C: 3, N: 4, H: 32, W: 32, KH: 3, KW: 3, SH: 1, SW: 1, OH: 30, OW: 30},
		{C: 32, N: 3, H: 15, W: 15, KH: 3, KW: 3, SH: 1, SW: 1, OH: 13, OW: 13},
		{C: 64, N: 2, H: 6, W: 6, KH: 3, KW: 3, SH: 1, SW: 1, OH: 4, OW: 4},
		{C: 2, N: 3, H: 7, W: 6, KH: 3, KW: 3, SH: 2, SW: 2, PadH: 1, PadW: 1, OH: 4, OW: 3}, // general path
		{C: 2, N: 2, H: 6, W: 5, KH: 3, KW: 2, SH: 2, SW: 1, PadH: 1, PadW: 0, OH: 3, OW: 5}, // general path
	}
	for _, k := range [][2]int{{1, 1}, {3, 3}, {5, 5}, {2, 3}, {3, 1}} {
		for _, hw := range [][2]int{{1, 1}, {5, 7}, {9, 4}, {12, 17}} {
			kh, kw, h, w := k[0], k[1], hw[0], hw[1]
			// valid, same (symmetric), all padding before, padding after only,
			// and valid leaving trailing rows/columns unread.
			for _, p := range [][4]int{{0, 0, h - kh + 1, w - kw + 1}, {(kh - 1) / 2, (kw - 1) / 2, h, w},
				{kh - 1, kw - 1, h, w}, {0, 0, h, w}, {0, 0, h - kh, w - kw}, {kh + 1, 1, 2, w}} {
				if p[2] <= 0 || p[3] <= 0 {
					continue
				}
				gs = append(gs, device.ConvGeom{C: 2, N: 3, H: h, W: w, KH: kh, KW: kw, SH: 1, SW: 1,
					PadH: p[0], PadW: p[1], OH: p[2], OW: p[3]})
			}
		}
	}
	return gs
}

func TestConvFastPaths(t *testing.T) {
	eachKernelSet(t, func(t *testing.T) {
		r := testRand(t)
		for _, g := range testConvGeoms() {
			x := values(r, g.C*g.N*g.H*g.W)
			nan := float32(math.NaN())
			col := slices.Repeat([]float32{nan}, g.ColRows()*g.ColCols())
			j := &im2colJob{g: g, x: x, col: slices.Clone(col)}
			j.runGeneral(0, 1)
			want := j.col
			for _, nw := range []int{1, 2, 3} {
				j.col = slices.Clone(col)
				for w := range nw {
					j.Run(w, nw)
				}
				sameBits(t, fmt.Sprintf("im2col %+v threads %d", g, nw), j.col, want)
			}

			dcol := values(r, len(col))
			dx := slices.Repeat([]float32{nan}, len(x))
			k := &col2imJob{g: g, col: dcol, dx: slices.Clone(dx)}
			k.runGeneral(0, 1)
			want = k.dx
			for _, nw := range []int{1, 2, 3} {
				k.dx = slices.Clone(dx)
				for w := range nw {
					k.Run(w, nw)
				}
				sameVals(t, fmt.Sprintf("col2im %+v threads %d", g, nw), k.dx, want)
			}
		}
	})
}

func TestMaxPoolFastPath(t *testing.T) {
	eachKernelSet(t, func(t *testing.T) {
		r := testRand(t)
		for _, hw := range [][2]int{{2, 2}, {3, 3}, {2, 9}, {9, 2}, {4, 8}, {5, 9}, {6, 14}, {7, 15}, {8, 16}, {13, 13},
			{11, 17}, {12, 18}, {30, 30}, {31, 33}, {10, 40}} {
			g := device.PoolGeom{Planes: 5, H: hw[0], W: hw[1], KH: 2, KW: 2, SH: 2, SW: 2, OH: hw[0] / 2, OW: hw[1] / 2}
			n, nout := g.Planes*g.H*g.W, g.Planes*g.OH*g.OW
			inputs := map[string][]float32{"mixed": values(r, n), "ties": make([]float32, n), "zeros": make([]float32, n)}
			for i := range inputs["ties"] {
				inputs["ties"][i] = float32(r.IntN(3))
			}
			for i := range inputs["zeros"] { // +0 and -0 compare equal: the first wins
				if r.IntN(2) == 0 {
					inputs["zeros"][i] = float32(math.Copysign(0, -1))
				}
			}
			for kind, x := range inputs {
				ref := &maxPoolFwdJob{g: g, x: x, y: make([]float32, nout), argmax: make([]int32, nout)}
				ref.runGeneral(0, g.Planes)
				for _, nw := range []int{1, 2, 3} {
					j := &maxPoolFwdJob{g: g, x: x, y: make([]float32, nout), argmax: make([]int32, nout)}
					for w := range nw {
						j.Run(w, nw)
					}
					what := fmt.Sprintf("%dx%d %s threads %d", g.H, g.W, kind, nw)
					sameBits(t, what+" y", j.y, ref.y)
					if !slices.Equal(j.argmax, ref.argmax) {
						t.Fatalf("%s argmax %v, want %v", what, j.argmax, ref.argmax)
					}
				}

				// Backward, with the argmax of the forward pass and with
				// some moved out of their windows (the general scatter).
				dy := values(r, nout)
				for _, moved := range []int{0, 1, 7} {
					am := slices.Clone(ref.argmax)
					for range moved {
						am[r.IntN(nout)] = int32(r.IntN(g.H * g.W))
					}
					want := slices.Repeat([]float32{float32(math.NaN())}, n)
					hw, ohw := g.H*g.W, g.OH*g.OW
					for p := range g.Planes {
						scatterAdd(dy[p*ohw:][:ohw], am[p*ohw:][:ohw], want[p*hw:][:hw])
					}
					for _, nw := range []int{1, 2, 3} {
						j := &maxPoolBwdJob{g: g, dy: dy, argmax: am, dx: slices.Repeat([]float32{7}, n)}
						for w := range nw {
							j.Run(w, nw)
						}
						sameBits(t, fmt.Sprintf("%dx%d %s moved %d threads %d dx", g.H, g.W, kind, moved, nw), j.dx, want)
					}
				}
			}
		}
	})
}

// TestBiasGradLanes: the lane sums of BiasGrad are deterministic (the
// same bits whatever the thread count and kernel set) and close to an
// exact float64 reference.
func TestBiasGradLanes(t *testing.T) {
	r := testRand(t)
	for _, s := range [][3]int{{1, 4, 7}, {1, 32, 28800}, {3, 5, 13}, {32, 64, 1}, {2, 9, 300}} {
		outer, c, inner := s[0], s[1], s[2]
		dy := make([]float32, outer*c*inner)
		for i := range dy {
			dy[i] = float32(r.NormFloat64())
		}
		var first []float32
		eachKernelSet(t, func(t *testing.T) {
			for _, threads := range []int{1, 2, 3} {
				b, err := New(device.Options{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				db, _ := b.Alloc("db", device.F32, c)
				b.BiasGrad(&buf{dt: device.F32, f: dy}, db, outer, c, inner)
				got := f32(db)
				b.Close()
				if first == nil {
					first = slices.Clone(got)
				}
				sameBits(t, fmt.Sprintf("%v threads %d", s, threads), got, first)
				for ch := range c {
					var want, mag float64
					for o := range outer {
						for _, v := range dy[(o*c+ch)*inner:][:inner] {
							want += float64(v)
							mag += math.Abs(float64(v))
						}
					}
					if d := math.Abs(float64(got[ch]) - want); d > 1e-7*math.Abs(want)+1e-12*mag {
						t.Fatalf("%v db[%d] = %v, want %v", s, ch, got[ch], want)
					}
				}
			}
		})
	}
}

// TestOpsAllocateNothing runs each op of a training step once to warm up,
// then counts allocations.
func TestOpsAllocateNothing(t *testing.T) {
	b, err := New(device.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mk := func(n int) device.Buffer { x, _ := b.Alloc("t", device.F32, n); return x }
	cg := device.ConvGeom{C: 32, N: 8, H: 15, W: 15, KH: 3, KW: 3, SH: 1, SW: 1, OH: 13, OW: 13}
	pg := device.PoolGeom{Planes: 64, H: 30, W: 30, KH: 2, KW: 2, SH: 2, SW: 2, OH: 15, OW: 15}
	x, col, dx := mk(cg.C*cg.N*cg.H*cg.W), mk(cg.ColRows()*cg.ColCols()), mk(cg.C*cg.N*cg.H*cg.W)
	px, py, pdx := mk(pg.Planes*pg.H*pg.W), mk(pg.Planes*pg.OH*pg.OW), mk(pg.Planes*pg.H*pg.W)
	am, _ := b.Alloc("am", device.I32, pg.Planes*pg.OH*pg.OW)
	y, bias, db := mk(64*4096), mk(64), mk(64)
	p, g, m, v := mk(50000), mk(50000), mk(50000), mk(50000)
	step := func() {
		b.Im2Col(cg, x, col)
		b.Col2Im(cg, col, dx)
		b.MaxPoolForward(pg, px, py, am)
		b.MaxPoolBackward(pg, py, am, pdx)
		b.AddBias(y, bias, 1, 64, 4096, true)
		b.AddBias(y, bias, 4096, 64, 1, true)
		b.ReLUBackward(y, y, y, 64*4096)
		b.BiasGrad(y, db, 1, 64, 4096)
		b.BiasGrad(y, db, 4096, 64, 1)
		b.Adam(p, g, m, v, 50000, 1e-3, 0.9, 0.999, 1e-7, 0, 0)
	}
	labels, _ := b.Alloc("labels", device.I32, 64)
	logits, dl, stats := mk(64*10), mk(64*10), mk(2)
	mean, variance, gamma, beta := mk(64), mk(64), mk(64), mk(64)
	b.Fill(variance, 64, 1)
	z, y2, img, img2 := mk(64*4096), mk(64*4096), mk(3*64*32*32), mk(3*64*32*32)
	step10 := func() { // the ops of issue 10
		b.SoftmaxXent(logits, labels, 64, 10, 1.0/64, 0.1, dl, stats)
		b.Adam(p, g, m, v, 50000, 1e-3, 0.9, 0.999, 1e-7, 1e-4, 1e-5)
		b.SGD(p, g, m, 50000, 0.01, 0.9, 1e-4, true)
		b.SGD(p, g, nil, 50000, 0.01, 0, 0, false)
		b.RMSprop(p, g, v, m, 50000, 0.01, 0.99, 1e-8, 1e-4, 0.9)
		for _, s := range [][3]int{{1, 64, 4096}, {4096, 64, 1}} {
			b.BatchNormStats(y, mean, variance, s[0], s[1], s[2])
			for _, act := range []device.Act{device.ActNone, device.ActReLU, device.ActGELU} {
				b.BatchNormForward(y, mean, variance, gamma, beta, s[0], s[1], s[2], 1e-5, act, z, y2)
			}
			b.BatchNormForward(y, mean, variance, gamma, beta, s[0], s[1], s[2], 1e-5, device.ActReLU, nil, y2)
			b.BatchNormBackward(y, y2, mean, variance, gamma, s[0], s[1], s[2], 1e-5, z, db, bias)
		}
		b.GELUForward(y, y2, 64*4096)
		b.GELUBackward(y, y2, z, 64*4096)
		b.Add(y, y2, z, 64*4096, true)
		b.Axpby(y, y2, 64*4096, 0.5, 0.5)
		b.Axpby(y, y2, 64*4096, 1, 0)
		b.Dropout(y, y2, 64*4096, 0.5, 3, 4)
		b.Dropout(y, y2, 64*4096, 0, 3, 4)
		b.Translate(img, img2, 3, 64, 32, 32, -2, 3, true)
		b.Augment(img, img2, 3, 64, 32, 32, 4, true, true, 5, 6)
	}
	step()
	step10()
	if a := testing.AllocsPerRun(10, step10); a != 0 {
		t.Fatalf("%v allocations per run of the ops of issue 10", a)
	}
	if a := testing.AllocsPerRun(10, step); a != 0 {
		t.Fatalf("%v allocations per step", a)
	}
}
