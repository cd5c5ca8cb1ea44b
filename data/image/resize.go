package image

import (
	"image"

	"golang.org/x/image/draw"
)

// Filter is the resampling kernel (see the package documentation).
var Filter = draw.BiLinear

// scaler returns a (cached) scaler from sw x sh to dw x dh.
func (d *Decoder) scaler(sw, sh, dw, dh int) draw.Scaler {
	key := [4]int{sw, sh, dw, dh}
	if s, ok := d.scalers[key]; ok {
		return s
	}
	if len(d.scalers) > 64 {
		clear(d.scalers) // many sizes: keep the cache small
	}
	s := Filter.NewScaler(dw, dh, sw, sh)
	d.scalers[key] = s
	return s
}

// resize resamples the c planes of sw x sh pixels in src to c planes of
// dw x dh pixels in dst. The planes go through an opaque RGBA image (a grey
// plane in all three colours) and come back from a 16-bit one, rounded to
// the nearest uint8.
func (d *Decoder) resize(src []uint8, c, sw, sh int, dst []uint8, dw, dh int) {
	in, out := &d.rgba, &d.out
	in.Pix, in.Stride, in.Rect = grow(in.Pix, 4*sw*sh), 4*sw, image.Rect(0, 0, sw, sh)
	out.Pix, out.Stride, out.Rect = grow(out.Pix, 8*dw*dh), 8*dw, image.Rect(0, 0, dw, dh)
	n := sw * sh
	for i := range n {
		p := in.Pix[4*i : 4*i+4 : 4*i+4]
		if c == 3 {
			p[0], p[1], p[2] = src[i], src[n+i], src[2*n+i]
		} else {
			p[0], p[1], p[2] = src[i], src[i], src[i]
		}
		p[3] = 0xff
	}
	d.scaler(sw, sh, dw, dh).Scale(out, out.Rect, in, in.Rect, draw.Src, nil)
	m := dw * dh
	for ch := range c {
		plane := dst[ch*m : (ch+1)*m]
		for i := range plane {
			hi, lo := out.Pix[8*i+2*ch], out.Pix[8*i+2*ch+1]
			plane[i] = to8(uint32(hi)<<8 | uint32(lo))
		}
	}
}

// to8 rounds a 16-bit value v (0..65535) to the nearest 8-bit one:
// round(v * 255 / 65535); v = 257*b gives b.
func to8(v uint32) uint8 {
	return uint8((v*255 + 32767) / 65535)
}
