package cpu

import (
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/internal/pool"
)

// augmentJob is Augment (random draws per image) and Translate (one fixed
// shift for every image). Both are pure copies: the same bits on every
// backend.
type augmentJob struct {
	src, dst        []float32
	c, n, h, w, pad int
	reflect, noFlip bool
	seed            uint64
	step            int

	fixed  bool // Translate: every image uses dy, dx, flip
	dy, dx int
	flip   bool
}

// Augment: see device.Backend. Split over images; each image's draw is
// computed once, then every row is a copy (or a reversed copy) of the valid
// part of one source row, with zeros or the mirrored source around it.
func (b *Backend) Augment(src, dst device.Buffer, c, n, h, w, pad int, reflect, noFlip bool, seed uint64, step int) {
	j := &b.jAugment
	size := c * n * h * w
	j.src, j.dst = f32(src)[:size], f32(dst)[:size]
	j.c, j.n, j.h, j.w, j.pad, j.reflect, j.noFlip, j.seed, j.step = c, n, h, w, pad, reflect, noFlip, seed, step
	j.fixed = false
	b.par(j, size)
}

// Translate: see device.Backend. The reflect path of Augment with the same
// offsets for every image.
func (b *Backend) Translate(src, dst device.Buffer, c, n, h, w, dy, dx int, flip bool) {
	j := &b.jTransl
	size := c * n * h * w
	j.src, j.dst = f32(src)[:size], f32(dst)[:size]
	j.c, j.n, j.h, j.w, j.pad, j.reflect, j.noFlip = c, n, h, w, 0, true, false
	j.fixed, j.dy, j.dx, j.flip = true, dy, dx, flip
	b.par(j, size)
}

func (j *augmentJob) Run(wk, nw int) {
	i0, i1 := pool.Span(j.n, wk, nw)
	for i := i0; i < i1; i++ {
		oy, ox, flip := j.dy, j.dx, j.flip
		if !j.fixed {
			dy, dx, f := device.AugmentDraw(j.seed, j.step, i, j.pad)
			oy, ox, flip = dy-j.pad, dx-j.pad, f && !j.noFlip
		}
		j.image(i, oy, ox, flip)
	}
}

// image writes image i shifted by (oy, ox): destination (y, x) reads
// source row y+oy and column xs+ox, xs = flip ? w-1-x : x; outside the
// image that is 0, or with reflect the mirrored index (device.Reflect).
func (j *augmentJob) image(i, oy, ox int, flip bool) {
	h, w := j.h, j.w
	// Destination columns x whose source column is inside [0, w): with
	// xs = x (no flip) that is x in [-ox, w-ox); with xs = w-1-x it is
	// x in [ox, w+ox). Clamped to [0, w).
	x0, x1 := max(-ox, 0), min(w-ox, w)
	if flip {
		x0, x1 = max(ox, 0), min(w+ox, w)
	}
	x1 = max(x1, x0)
	for ch := 0; ch < j.c; ch++ {
		plane := (ch*j.n + i) * h * w
		for y := 0; y < h; y++ {
			d := j.dst[plane+y*w:][:w]
			sy := y + oy
			if j.reflect {
				s := j.src[plane+device.Reflect(sy, h)*w:][:w]
				shiftRow(d, s, ox, x0, x1, flip)
				reflectEdges(d, s, ox, x0, x1, flip)
				continue
			}
			if sy < 0 || sy >= h || x0 == x1 {
				clear(d)
				continue
			}
			s := j.src[plane+sy*w:][:w]
			clear(d[:x0])
			clear(d[x1:])
			shiftRow(d, s, ox, x0, x1, flip)
		}
	}
}

// shiftRow sets d[x] = s[xs+ox] for x in [x0, x1), where that source
// column is inside the row; xs = flip ? w-1-x : x.
func shiftRow(d, s []float32, ox, x0, x1 int, flip bool) {
	if !flip {
		copy(d[x0:x1], s[x0+ox:x1+ox])
		return
	}
	w := len(d)
	for x := x0; x < x1; x++ {
		d[x] = s[w-1-x+ox]
	}
}

// reflectEdges sets the columns of d outside [x0, x1) to the mirrored
// source: d[x] = s[Reflect(xs+ox, w)].
func reflectEdges(d, s []float32, ox, x0, x1 int, flip bool) {
	w := len(d)
	for x := 0; x < w; x++ {
		if x == x0 {
			x = x1
			if x >= w {
				break
			}
		}
		xs := x
		if flip {
			xs = w - 1 - x
		}
		d[x] = s[device.Reflect(xs+ox, w)]
	}
}
