//go:build cgo

package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
	"github.com/trainer-go/trainer/model"
)

// bf16 allocates an n-element BF16 buffer on both backends.
func (p *pair) bf16(n int) bufs {
	p.t.Helper()
	c, err := p.c.Alloc("bf16", device.BF16, n)
	if err != nil {
		p.t.Fatal(err)
	}
	g, err := p.g.Alloc("bf16", device.BF16, n)
	if err != nil {
		p.t.Fatal(err)
	}
	return bufs{c, g}
}

// widen is a BF16 buffer's values, as F32 buffers (Convert to F32 is exact).
func (p *pair) widen(b bufs) bufs {
	n := b.c.Len()
	w := p.nan(n)
	p.c.Convert(b.c, w.c, n)
	p.g.Convert(b.g, w.g, n)
	return w
}

// TestBF16Ops: the bfloat16 ops of --precision bf16 against the CPU
// backend's emulation. Convert to BF16 (values across the float32 range,
// halfway cases, NaN, infinities, subnormals) and back, and Im2Col into a
// BF16 col, agree bit for bit (the same rounding, ties to even, on both);
// GEMMs of BF16 operands agree to float32 accumulation (|diff| <= 1e-5*k +
// 1e-4 relative, the float32 GEMMs' tolerance) and equal, within the same
// tolerance, a float64 product of the operands rounded on the host by
// device.RoundBF16.
func TestBF16Ops(t *testing.T) { eachGPU(t, testBF16Ops) }

func testBF16Ops(t *testing.T, p *pair) {
	if !p.g.Caps().BF16 {
		t.Skip("this GPU has no bfloat16 GEMMs (compute capability < 8.0)")
	}
	v := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1.00390625, 1.01171875, 1.0078125, 3.4e38, -3.4e38,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-40, -1e-45, 65504, 1.0 / 3}
	for range 5000 {
		v = append(v, math.Float32frombits(p.rng.Uint32()))
	}
	x := p.f32(v)
	h := p.bf16(len(v))
	p.c.Convert(x.c, h.c, len(v))
	p.g.Convert(x.g, h.g, len(v))
	p.checkBits("convert to bf16 and back", p.widen(h))
	got := p.host(p.widen(h))
	for i := range v {
		if w := device.RoundBF16(v[i]); math.Float32bits(got[i]) != math.Float32bits(w) {
			t.Fatalf("convert %g (%#x): %#x, want RoundBF16's %#x", v[i], math.Float32bits(v[i]), math.Float32bits(got[i]), math.Float32bits(w))
		}
	}

	for _, g := range convGeoms() {
		if p.emu && g.N > 8 {
			g.N = 8 // keep the emulator quick
		}
		xx := p.rand(g.C*g.N*g.H*g.W, 3)
		col := p.bf16(g.ColRows() * g.ColCols())
		p.c.Im2Col(g, xx.c, col.c)
		p.g.Im2Col(g, xx.g, col.g)
		p.checkBits(fmt.Sprintf("im2col bf16 %+v", g), p.widen(col))
	}

	for _, s := range [][3]int{{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {32, 900, 27}, {64, 288, 169}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				m, n, k := s[0], s[1], s[2]
				lda, ldb := k, n
				if ta {
					lda = m
				}
				if tb {
					ldb = k
				}
				a, b := p.rand(m*k, 1), p.rand(k*n, 1)
				ah, bh := p.bf16(m*k), p.bf16(k*n)
				for _, c := range []struct{ x, h bufs }{{a, ah}, {b, bh}} {
					p.c.Convert(c.x.c, c.h.c, c.x.c.Len())
					p.g.Convert(c.x.g, c.h.g, c.x.g.Len())
				}
				cc := p.nan(m * n)
				p.c.Gemm(ta, tb, m, n, k, 1, ah.c, lda, bh.c, ldb, 0, cc.c, n)
				p.g.Gemm(ta, tb, m, n, k, 1, ah.g, lda, bh.g, ldb, 0, cc.g, n)
				what := fmt.Sprintf("gemm bf16 %v ta=%v tb=%v", s, ta, tb)
				tol := 1e-5 * float64(k)
				p.check(what, cc, tol, 1e-4)
				// A float64 reference of the host's operands rounded by
				// device.RoundBF16.
				ha, hb := p.host(a), p.host(b)
				hg := make([]float32, m*n)
				if err := p.g.DownloadF32(cc.g, 0, hg); err != nil {
					t.Fatal(err)
				}
				for i := range m {
					for j := range n {
						ref := 0.0
						for l := range k {
							ai, bi := i*lda+l, l*ldb+j
							if ta {
								ai = l*lda + i
							}
							if tb {
								bi = j*ldb + l
							}
							av, bv := ha[ai], hb[bi]
							ref += float64(device.RoundBF16(av)) * float64(device.RoundBF16(bv))
						}
						if d := math.Abs(float64(hg[i*n+j]) - ref); d > tol+1e-4*math.Abs(ref) {
							t.Fatalf("%s[%d, %d] = %v, the product of the rounded operands is %v", what, i, j, hg[i*n+j], ref)
						}
					}
				}
			}
		}
	}
}

// pointwiseNet has a bias conv with ReLU, a pointwise (1x1) conv with a
// GELU, whose im2col under bf16 is a conversion of its input, a max-pool,
// and dense layers with a GELU and a plain head.
const pointwiseNet = `{"layers": [
 {"name": "conv1", "type": "conv", "filters": 6, "kernel": 3, "padding": 1, "act": "relu"},
 {"name": "conv2", "type": "conv", "filters": 5, "kernel": 1, "act": "gelu"},
 {"name": "pool", "type": "maxpool", "kernel": 2},
 {"name": "flatten", "type": "flatten"},
 {"name": "fc1", "type": "dense", "units": 12, "act": "gelu"},
 {"name": "head", "type": "dense", "units": 10}]}`

// trainFlat trains the model in file (input 3x16x16) for steps steps of
// batch bs on b and returns the flat parameters and the validation loss.
func trainFlat(t *testing.T, b device.Backend, file string, bs, steps int, d *model.Data, opt model.TrainOptions) ([]float32, float64) {
	t.Helper()
	net, err := model.Plan(file, model.Shape{C: 3, H: 16, W: 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Build(b, bs, 9); err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	tr, err := model.NewTrainer(net, d, d, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for s := range steps {
		tr.Step(s)
	}
	loss, _, err := tr.Validate()
	if err != nil {
		t.Fatal(err)
	}
	params, err := net.GetParams()
	if err != nil {
		t.Fatal(err)
	}
	return params, loss
}

// TestNetworkParityBF16: --precision bf16 on the GPU backend (the emulator
// in CI, cuBLAS's bfloat16 GEMMs under cuda) against the CPU backend's
// emulation of it, a few training steps of the residual network (BatchNorm,
// a strided shortcut, GELU, dropout, EMA, augmentation) and of a network
// with a pointwise conv and dense GELUs. Both round the same operands the
// same way, but an activation whose float32 value differs in the last bits
// between the backends (the accumulation order) may round to a neighbouring
// bfloat16. So, with d(a, b) = max |a-b|/(1e-4+|a|) over the parameters
// after 4 steps: d(cpu bf16, gpu bf16) <= 5e-2 (measured on the emulator:
// 8e-3 and 5e-7), and it is at most half of d(cpu bf16, cpu fp32) (0.3 and
// 0.07): the GPU's results are bfloat16's, not float32's. The validation
// losses agree to 1e-2 relative.
func TestNetworkParityBF16(t *testing.T) {
	for _, kind := range []string{"cuda", "emu"} {
		t.Run(kind, func(t *testing.T) {
			var g device.Backend
			if kind == "emu" {
				g = newEmuBackendAt(t, device.PrecisionBF16)
			} else {
				gg, err := New(device.Options{Precision: device.PrecisionBF16})
				if err != nil {
					if os.Getenv(envRequireGPU) == "1" && !strings.Contains(err.Error(), "compute capability") {
						t.Fatalf("%s=1 but no usable GPU: %v", envRequireGPU, err)
					}
					t.Skipf("no GPU with bfloat16 GEMMs, bf16 parity not run: %v", err)
				}
				g = gg
			}
			defer g.Close()
			c16, err := cpu.New(device.Options{Threads: 2, Precision: device.PrecisionBF16})
			if err != nil {
				t.Fatal(err)
			}
			defer c16.Close()
			c32, err := cpu.New(device.Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer c32.Close()
			const bs, n, steps = 6, 24, 4
			rng := rand.New(rand.NewPCG(8, 9))
			d := &model.Data{Images: make([]uint8, n*3*16*16), Labels: make([]int32, n), N: n}
			for i := range d.Images {
				d.Images[i] = uint8(rng.IntN(256))
			}
			for i := range d.Labels {
				d.Labels[i] = int32(rng.IntN(10))
			}
			opt := model.TrainOptions{Batch: bs, LR: 0.05, Seed: 4, Smoothing: 0.1,
				Optim: model.OptimConfig{Kind: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4},
				EMA:   model.EMAOptions{Decay: 0.8}, Augment: true, Augmentation: model.Augmentation{Pad: 2, Reflect: true}}
			dist := func(a, b []float32) float64 {
				m := 0.0
				for i := range a {
					m = math.Max(m, math.Abs(float64(a[i]-b[i]))/(1e-4+math.Abs(float64(a[i]))))
				}
				return m
			}
			for _, name := range []string{"residual", "pointwise"} {
				file := filepath.Join(t.TempDir(), name+".json")
				os.WriteFile(file, []byte(map[string]string{"residual": residualNet, "pointwise": pointwiseNet}[name]), 0o644)
				cp, cl := trainFlat(t, c16, file, bs, steps, d, opt)
				gp, gl := trainFlat(t, g, file, bs, steps, d, opt)
				fp, _ := trainFlat(t, c32, file, bs, steps, d, opt)
				dg, df := dist(cp, gp), dist(cp, fp)
				t.Logf("%s: d(cpu bf16, gpu bf16) = %.3g, d(cpu bf16, cpu fp32) = %.3g; validation loss cpu %.5f gpu %.5f", name, dg, df, cl, gl)
				if !(dg <= 5e-2) || !(dg <= df/2) {
					t.Errorf("%s: the GPU's bf16 parameters are %.3g from the CPU's (fp32 ones: %.3g)", name, dg, df)
				}
				if !(math.Abs(cl-gl) <= 1e-2*math.Max(1, cl)) {
					t.Errorf("%s: validation loss cpu %v, gpu %v", name, cl, gl)
				}
			}
		})
	}
}
