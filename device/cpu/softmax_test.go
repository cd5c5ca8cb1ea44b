package cpu_test

import (
	"fmt"
	"math"
	"testing"
)

// softmaxCase is n rows of k logits (with ties) and labels.
func softmaxCase(n, k int, seed uint64) ([]float32, []int32) {
	r := newRand(seed)
	logits := randn(r, n*k)
	for i := range logits {
		logits[i] *= 2
		if r.IntN(8) == 0 {
			logits[i] = float32(r.IntN(3)) // ties
		}
	}
	labels := make([]int32, n)
	for i := range labels {
		labels[i] = int32(r.IntN(k))
	}
	return logits, labels
}

// runSoftmax runs SoftmaxXent with stats starting at {1, 2} and returns
// the gradient (nil when grad is false) and the stats.
func runSoftmax(t *testing.T, threads int, logits []float32, labels []int32, n, k int, scale, eps float32, grad bool) (dl, stats []float32) {
	t.Helper()
	b := newBackend(t, threads)
	lb, yb, sb := upload(t, b, logits), uploadI32(t, b, labels), upload(t, b, []float32{1, 2})
	if !grad {
		b.SoftmaxXent(lb, yb, n, k, scale, eps, nil, sb)
		return nil, download(t, b, sb)
	}
	db := upload(t, b, make([]float32, n*k))
	b.SoftmaxXent(lb, yb, n, k, scale, eps, db, sb)
	return download(t, b, db), download(t, b, sb)
}

// TestSoftmaxXentNoSmoothing: smoothing 0 gives the bits of the plain
// loss as it was computed before label smoothing (that loop, copied).
func TestSoftmaxXentNoSmoothing(t *testing.T) {
	const n, k = 5, 7
	logits, labels := softmaxCase(n, k, 20)
	const scale = float32(1) / n
	wantD := make([]float32, n*k)
	var loss, correct float64
	for r := 0; r < n; r++ {
		row := logits[r*k : (r+1)*k]
		lab := int(labels[r])
		mx, arg := row[0], 0
		for i, v := range row {
			if v > mx {
				mx, arg = v, i
			}
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v - mx))
		}
		loss += math.Log(sum) - float64(row[lab]-mx)
		if arg == lab {
			correct++
		}
		for i, v := range row {
			p := math.Exp(float64(v-mx)) / sum
			if i == lab {
				p--
			}
			wantD[r*k+i] = float32(p) * scale
		}
	}
	wantS := []float32{1 + float32(loss), 2 + float32(correct)}
	dl, stats := runSoftmax(t, 1, logits, labels, n, k, scale, 0, true)
	sameF32(t, "dlogits", dl, wantD)
	sameF32(t, "stats", stats, wantS)
	_, stats = runSoftmax(t, 1, logits, labels, n, k, scale, 0, false)
	sameF32(t, "stats without gradient", stats, wantS)
}

// refSmoothLoss is the sum over rows of PyTorch's smoothed cross-entropy,
// -sum_j q_j log softmax_j with q = (1-eps)*onehot + eps/k, in float64.
func refSmoothLoss(logits []float64, labels []int32, n, k int, eps float64) float64 {
	var total float64
	for r := range n {
		row := logits[r*k : (r+1)*k]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = max(mx, v)
		}
		var s float64
		for _, v := range row {
			s += math.Exp(v - mx)
		}
		lse := mx + math.Log(s)
		for j, v := range row {
			q := eps / float64(k)
			if j == int(labels[r]) {
				q += 1 - eps
			}
			total -= q * (v - lse)
		}
	}
	return total
}

// TestSoftmaxXentSmoothing: with label smoothing, the loss against the
// float64 reference, the gradient against its central differences times
// gradScale, and the accuracy count the same as without smoothing.
func TestSoftmaxXentSmoothing(t *testing.T) {
	const n, k = 5, 7
	logits, labels := softmaxCase(n, k, 21)
	_, plain := runSoftmax(t, 1, logits, labels, n, k, 1, 0, false)
	for _, eps := range []float32{0.1, 0.3, 1} {
		for _, scale := range []float32{1.0 / n, 2.5} {
			what := fmt.Sprintf("eps %v scale %v", eps, scale)
			l64 := f64(logits)
			loss := func() float64 { return refSmoothLoss(l64, labels, n, k, float64(eps)) }
			wantG := fdGrad(l64, loss)
			for i := range wantG {
				wantG[i] *= float64(scale)
			}
			dl, stats := runSoftmax(t, 1, logits, labels, n, k, scale, eps, true)
			near(t, what+" dlogits", dl, wantG, 1e-6, 1e-7)
			near(t, what+" loss", stats[:1], []float64{1 + loss()}, 1e-6, 0)
			if stats[1] != plain[1] {
				t.Fatalf("%s: accuracy count %v, without smoothing %v", what, stats[1]-2, plain[1]-2)
			}
			_, s2 := runSoftmax(t, 1, logits, labels, n, k, scale, eps, false)
			sameF32(t, what+" stats without gradient", s2, stats)
		}
	}
}
