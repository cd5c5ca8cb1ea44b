package model

import (
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/kernels"
)

// paddedConv is a 1x1 conv with padding 3 and one filter: its im2col work
// (3 channels x 38x38 positions) is larger than its input (3x32x32) and
// its output (1x38x38), so only the work count can set its limit.
const paddedConv = `{"layers": [
 {"name": "wide", "type": "conv", "filters": 1, "kernel": 1, "padding": 3},
 {"name": "flat", "type": "flatten"},
 {"name": "head", "type": "dense", "units": 10}]}`

// TestBatchLimit: Build refuses, before allocating anything, the first
// batch at which a buffer the GPU kernels index with C ints (or a conv's
// im2col work count) would pass kernels.MaxElems, and names the layer and
// the batch; the batch below it passes the check. The reference boundary
// is worked out independently of the check: from the sizes Build actually
// allocates at batches 1 and 2 on the CPU backend (per image: the
// difference; im2col matrices left out, the kernels address them in 64
// bits), and from each conv row's im2col work (input channels x output
// positions, from the summary's shapes).
func TestBatchLimit(t *testing.T) {
	// The reference sizes are the GPU's buffers: the CPU stands in for it
	// with its im2col path (Winograd plans allocate other workspaces).
	t.Setenv("TRAINER_CPU_NOWINOGRAD", "1")
	file := t.TempDir() + "/padded.json"
	if err := os.WriteFile(file, []byte(paddedConv), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		spec  string
		layer string // where the limit bites
		issue int    // a batch the issue named as overflowing the old 32-bit im2col offsets (0: none)
	}{
		{"default", DefaultSpec, "conv1", 45383},
		{"conv512k3same", "conv512k3same,conv512k3same,flatten,dense10", "conv1", 456},
		{"padded 1x1", file, "wide", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			net, err := Plan(c.spec, Shape{C: 3, H: 32, W: 32})
			if err != nil {
				t.Fatal(err)
			}
			per, layer := refPerImage(t, c.spec)
			if layer != c.layer {
				t.Errorf("the largest per-image buffer is in %s, want %s", layer, c.layer)
			}
			limit := kernels.MaxElems
			most := limit / per
			if err := net.checkBatchLimit(most, limit, "gpu"); err != nil {
				t.Errorf("batch %d (%d elements per image): %v", most, per, err)
			}
			gpu := newCounting(newCPU(t, 1))
			gpu.maxElems = limit
			err = net.Build(gpu, most+1, 1)
			var ble *BatchLimitError
			if !errors.As(err, &ble) || ble.Name != layer || ble.Batch != most+1 || ble.MaxBatch != most || ble.Elems <= limit {
				t.Fatalf("Build at batch %d: %v", most+1, err)
			}
			if gpu.allocs != 0 {
				t.Errorf("Build allocated %d buffers before refusing the batch", gpu.allocs)
			}
			for _, want := range []string{`"` + layer + `"`, "at batch " + strconv.Itoa(most+1), "is " + strconv.Itoa(most)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			t.Logf("limit at batch %d: %v", most, err)
			if c.issue > 0 {
				checkIssueBatch(t, net, c.issue, limit)
			}
		})
	}
}

// checkIssueBatch: at the batch the issue names, some conv's im2col matrix
// is past 2^31 elements (the kernels address it in 64 bits: see
// kernels/emu's TestConvPast2G), and Build's check lets the batch through.
func checkIssueBatch(t *testing.T, net *Network, batch, limit int) {
	t.Helper()
	past := false
	for _, nd := range net.nodes {
		if c, ok := nd.l.(*conv); ok {
			g := c.geom(batch)
			past = past || int64(g.ColRows())*int64(g.ColCols()) > math.MaxInt32
		}
	}
	if !past {
		t.Errorf("batch %d: no im2col matrix past 2^31 elements", batch)
	}
	if err := net.checkBatchLimit(batch, limit, "gpu"); err != nil {
		t.Errorf("batch %d: %v", batch, err)
	}
}

// refPerImage is the largest per-image element count any op indexes in
// spec's network, and the layer it belongs to, from the buffers Build
// allocates and the convs' im2col work.
func refPerImage(t *testing.T, spec string) (int, string) {
	t.Helper()
	sizes := [2]map[string]int{}
	for i := range sizes {
		net, err := Plan(spec, Shape{C: 3, H: 32, W: 32})
		if err != nil {
			t.Fatal(err)
		}
		b := newCounting(newCPU(t, 1))
		if err := net.Build(b, i+1, 1); err != nil {
			t.Fatal(err)
		}
		sizes[i] = b.sizes
	}
	// Per layer (buffers are named after their layer), then in layer order:
	// the first layer with the largest count, as the error names it.
	perLayer := map[string]int{}
	for what, n2 := range sizes[1] {
		if strings.HasSuffix(what, " im2col") || strings.HasSuffix(what, " im2col gradient") {
			continue
		}
		name := strings.SplitN(what, " ", 2)[0]
		perLayer[name] = max(perLayer[name], n2-sizes[0][what])
	}
	net, _ := Plan(spec, Shape{C: 3, H: 32, W: 32})
	rows := net.Summary()
	best, layer := perLayer["input"], "input" // the input batch
	for i, r := range rows {
		n := perLayer[r.Name]
		if r.Type == "conv" || strings.HasPrefix(r.Type, "conv+") {
			inC := 3
			if i > 0 {
				inC = rows[i-1].Output.C
			}
			n = max(n, inC*r.Output.H*r.Output.W)
		}
		if n > best {
			best, layer = n, r.Name
		}
	}
	return best, layer
}
