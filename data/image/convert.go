package image

import (
	"image"
	"image/color"
)

// toPlanes writes img as c planes of w*h pixels into dst: R, G, B for c = 3,
// the luma for c = 1.
func toPlanes(img image.Image, dst []uint8, c int) {
	if c == 3 {
		toRGB(img, dst)
		return
	}
	b := img.Bounds()
	n := b.Dx() * b.Dy()
	if g, ok := img.(*image.Gray); ok && g.Stride == b.Dx() {
		copy(dst[:n], g.Pix[:n])
		return
	}
	rgb := make([]uint8, 3*n)
	toRGB(img, rgb)
	for i := range n {
		dst[i] = luma(rgb[i], rgb[n+i], rgb[2*n+i])
	}
}

// luma is round(0.299 r + 0.587 g + 0.114 b), ITU-R 601-2 as in PIL's
// convert("L"); for r = g = b it is r.
func luma(r, g, b uint8) uint8 {
	return uint8(0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b) + 0.5)
}

// toRGB writes img as three w*h planes R, G, B into dst.
func toRGB(img image.Image, dst []uint8) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	plane := w * h
	r, g, bl := dst[:plane], dst[plane:2*plane], dst[2*plane:3*plane]
	switch m := img.(type) {
	case *image.YCbCr:
		// Chroma sample (x>>xs, y>>ys), as image.YCbCr.COffset computes.
		xs, ys := 0, 0
		switch m.SubsampleRatio {
		case image.YCbCrSubsampleRatio422:
			xs = 1
		case image.YCbCrSubsampleRatio420:
			xs, ys = 1, 1
		case image.YCbCrSubsampleRatio440:
			ys = 1
		case image.YCbCrSubsampleRatio411:
			xs = 2
		case image.YCbCrSubsampleRatio410:
			xs, ys = 2, 1
		}
		for y := range h {
			sy := b.Min.Y + y
			yrow := m.Y[(sy-m.Rect.Min.Y)*m.YStride+(b.Min.X-m.Rect.Min.X):]
			crow := (sy>>ys - m.Rect.Min.Y>>ys) * m.CStride
			cb, cr := m.Cb[crow:], m.Cr[crow:]
			c0 := m.Rect.Min.X >> xs
			o := y * w
			for x := range w {
				ci := (b.Min.X+x)>>xs - c0
				r[o+x], g[o+x], bl[o+x] = ycbcrToRGB(yrow[x], cb[ci], cr[ci])
			}
		}
	case *image.Gray:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			copy(r[y*w:], row)
			copy(g[y*w:], row)
			copy(bl[y*w:], row)
		}
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				i := y*w + x
				r[i], g[i], bl[i] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.RGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				i := y*w + x
				pr, pg, pb, pa := row[4*x], row[4*x+1], row[4*x+2], row[4*x+3]
				if pa != 0xff && pa != 0 { // premultiplied: undo, dropping alpha
					pr = uint8((uint32(pr)*0xff + uint32(pa)/2) / uint32(pa))
					pg = uint8((uint32(pg)*0xff + uint32(pa)/2) / uint32(pa))
					pb = uint8((uint32(pb)*0xff + uint32(pa)/2) / uint32(pa))
				}
				r[i], g[i], bl[i] = pr, pg, pb
			}
		}
	case *image.Paletted:
		var pal [256][3]uint8
		for i, c := range m.Palette {
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			pal[i] = [3]uint8{n.R, n.G, n.B}
		}
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, p := range row {
				i := y*w + x
				r[i], g[i], bl[i] = pal[p][0], pal[p][1], pal[p][2]
			}
		}
	default: // Gray16, NRGBA64, RGBA64, CMYK, ...: slow but general
		for y := range h {
			for x := range w {
				n := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				i := y*w + x
				r[i], g[i], bl[i] = n.R, n.G, n.B
			}
		}
	}
}

// ycbcrToRGB is color.YCbCrToRGB, copied so that it inlines.
func ycbcrToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy1 := int32(y) * 0x10101
	cb1 := int32(cb) - 128
	cr1 := int32(cr) - 128
	r := yy1 + 91881*cr1
	if uint32(r)&0xff000000 == 0 {
		r >>= 16
	} else {
		r = ^(r >> 31)
	}
	g := yy1 - 22554*cb1 - 46802*cr1
	if uint32(g)&0xff000000 == 0 {
		g >>= 16
	} else {
		g = ^(g >> 31)
	}
	b := yy1 + 116130*cb1
	if uint32(b)&0xff000000 == 0 {
		b >>= 16
	} else {
		b = ^(b >> 31)
	}
	return uint8(r), uint8(g), uint8(b)
}
