// Package image is the one path from an image file to a model's input,
// shared by the image-folder dataset (training, validation, eval) and by
// predict, so that a model is never evaluated on pixels prepared unlike the
// ones it was trained on:
//
//	decode (PNG or JPEG) → RGB (or luma) planes → resize → uint8 CHW → × (1/255)
//
// Decoding uses the standard library, whatever the file's extension says.
// Colour images become three channels R, G, B; grey images three equal
// channels; alpha is dropped (colours taken un-premultiplied), as PIL's
// convert("RGB") does. For a 1-channel model each pixel becomes its luma
// round(0.299 R + 0.587 G + 0.114 B) (ITU-R 601-2, PIL's convert("L")),
// computed before resizing. A source image's size is read from its header
// and refused, before anything is decoded, if over 16384 pixels per side or
// 64 Mpx.
//
// # Resizing
//
// An image that already has the target size is not resampled: its bytes
// are the decoded pixels. Otherwise it is resized with
// golang.org/x/image/draw's BiLinear kernel, a separable triangle filter on
// pixel centres whose support widens with the scale factor when shrinking.
// Why this filter:
//
//   - It is what PyTorch users expect: torchvision's Resize defaults to
//     bilinear with antialiasing (on PIL images and, since torchvision
//     0.17, on tensors), which is PIL's BILINEAR, the same widened triangle
//     with the same centre alignment (align_corners=False) and the same
//     renormalisation of the weights clipped at the edges.
//   - It antialiases on downscale: every source pixel under an output
//     pixel's footprint contributes, so shrinking fine detail averages it
//     rather than aliasing it (plain two-tap bilinear skips pixels beyond 2x).
//   - It is cheap: support 1 (2 taps per axis when enlarging, about 2×scale
//     when shrinking) against 2 for CatmullRom (PIL's BICUBIC), and its
//     weights are never negative, so there is no ringing or clipping at
//     edges.
//
// The filter runs in float64 on 16-bit values; the result is rounded to the
// nearest uint8, exactly as the dataset stores it. A constant image stays
// constant.
//
// # Scale
//
// The dataset keeps uint8 pixels; the trainer's gather turns them into
// float32 by v * float32(1.0/255) (Scale). ToFloat does the same, so
// predict feeds a model bit-for-bit what training fed it for the same file.
package image
