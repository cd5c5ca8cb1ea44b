package model

import (
	"fmt"
	"math"
	"sort"
)

// WhitenImages is how many training images InitFromData reads (airbench
// uses 5,000).
const WhitenImages = 5000

// whitenEps is added to the eigenvalues before the square root (airbench's).
const whitenEps = 5e-4

// NeedsData says whether the network has a layer initialised from the
// training data (a whitening conv).
func (n *Network) NeedsData() bool {
	for _, nd := range n.nodes {
		if c, ok := nd.l.(*conv); ok && c.d.Init == "whiten" {
			return true
		}
	}
	return false
}

// InitFromData initialises every whitening conv from the first
// WhitenImages of images (uint8, channel-major, as in the dataset files),
// as airbench does: the KxK patches (stride 1, no padding) of the conv's
// input (the pixels / 255, through any normalize layers before it), their
// uncentred covariance summed in float64, its eigenvectors in order of
// decreasing eigenvalue, each scaled by 1/sqrt(eigenvalue + 5e-4), then
// the same filters negated. The optimiser's state is reset.
func (n *Network) InitFromData(images []uint8, count int) error {
	if !n.NeedsData() {
		return nil
	}
	flat, err := n.GetParams()
	if err != nil {
		return err
	}
	count = min(count, WhitenImages)
	for i, nd := range n.nodes {
		c, ok := nd.l.(*conv)
		if !ok || c.d.Init != "whiten" {
			continue
		}
		norm, err := n.inputChain(i)
		if err != nil {
			return err
		}
		cov := n.patchCovariance(images, count, c, norm)
		vals, vecs := eigenSym(cov)
		d := len(vals)
		w := flat[c.w.Off : c.w.Off+c.w.N]
		for f := 0; f < d; f++ {
			s := 1 / math.Sqrt(vals[f]+whitenEps)
			for j := 0; j < d; j++ {
				w[f*d+j] = float32(vecs[j][f] * s)
				w[(f+d)*d+j] = float32(-vecs[j][f] * s)
			}
		}
	}
	return n.SetParams(flat)
}

// inputChain returns the normalize layers between the network's input and
// node i, which must read nothing else.
func (n *Network) inputChain(i int) ([]*normalize, error) {
	var chain []*normalize
	for j := n.nodes[i].inputs[0]; j >= 0; j = n.nodes[j].inputs[0] {
		nl, ok := n.nodes[j].l.(*normalize)
		if !ok {
			return nil, fmt.Errorf("layer %q: a whitening conv must read the network's input (or a normalize of it), not %q", n.nodes[i].l.desc().Name, n.nodes[j].l.desc().Name)
		}
		chain = append([]*normalize{nl}, chain...)
	}
	return chain, nil
}

// patchCovariance is the mean of p p^T over every KxK patch p of the first
// count images, in float64.
func (n *Network) patchCovariance(images []uint8, count int, c *conv, norm []*normalize) [][]float64 {
	in := n.Input
	k := c.d.Kernel
	d := in.C * k * k
	cov := make([][]float64, d)
	for i := range cov {
		cov[i] = make([]float64, d)
	}
	img := make([]float64, in.Size())
	p := make([]float64, d)
	var cnt float64
	for im := 0; im < count; im++ {
		for j, v := range images[im*in.Size() : (im+1)*in.Size()] {
			x := float64(float32(v) * float32(1.0/255))
			for _, nl := range norm {
				ch := j / (in.H * in.W)
				x = (x - nl.d.Mean[ch]) / nl.d.Std[ch]
			}
			img[j] = x
		}
		for y := 0; y+k <= in.H; y++ {
			for x := 0; x+k <= in.W; x++ {
				for ch := 0; ch < in.C; ch++ {
					for ky := 0; ky < k; ky++ {
						for kx := 0; kx < k; kx++ {
							p[(ch*k+ky)*k+kx] = img[(ch*in.H+y+ky)*in.W+x+kx]
						}
					}
				}
				for a := 0; a < d; a++ {
					for b := a; b < d; b++ {
						cov[a][b] += p[a] * p[b]
					}
				}
				cnt++
			}
		}
	}
	for a := 0; a < d; a++ {
		for b := a; b < d; b++ {
			cov[a][b] /= cnt
			cov[b][a] = cov[a][b]
		}
	}
	return cov
}

// eigenSym diagonalises a symmetric matrix by cyclic Jacobi rotations:
// eigenvalues in decreasing order and the eigenvectors as the columns of
// vecs.
func eigenSym(m [][]float64) (vals []float64, vecs [][]float64) {
	d := len(m)
	a := make([][]float64, d)
	v := make([][]float64, d)
	for i := range a {
		a[i] = append([]float64(nil), m[i]...)
		v[i] = make([]float64, d)
		v[i][i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		off := 0.0
		for p := 0; p < d; p++ {
			for q := p + 1; q < d; q++ {
				off += a[p][q] * a[p][q]
			}
		}
		if off < 1e-30 {
			break
		}
		for p := 0; p < d; p++ {
			for q := p + 1; q < d; q++ {
				jacobiRotate(a, v, p, q)
			}
		}
	}
	idx := make([]int, d)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return a[idx[i]][idx[i]] > a[idx[j]][idx[j]] })
	vals = make([]float64, d)
	vecs = make([][]float64, d)
	for r := range vecs {
		vecs[r] = make([]float64, d)
	}
	for col, i := range idx {
		vals[col] = a[i][i]
		for r := 0; r < d; r++ {
			vecs[r][col] = v[r][i]
		}
	}
	return vals, vecs
}

// jacobiRotate zeroes a[p][q] by a rotation of rows and columns p and q,
// accumulating it into v.
func jacobiRotate(a, v [][]float64, p, q int) {
	if a[p][q] == 0 {
		return
	}
	theta := (a[q][q] - a[p][p]) / (2 * a[p][q])
	t := 1 / (math.Abs(theta) + math.Sqrt(theta*theta+1))
	if theta < 0 {
		t = -t
	}
	c := 1 / math.Sqrt(t*t+1)
	s := t * c
	for k := range a {
		akp, akq := a[k][p], a[k][q]
		a[k][p], a[k][q] = c*akp-s*akq, s*akp+c*akq
	}
	for k := range a {
		apk, aqk := a[p][k], a[q][k]
		a[p][k], a[q][k] = c*apk-s*aqk, s*apk+c*aqk
	}
	for k := range v {
		vkp, vkq := v[k][p], v[k][q]
		v[k][p], v[k][q] = c*vkp-s*vkq, s*vkp+c*vkq
	}
}
