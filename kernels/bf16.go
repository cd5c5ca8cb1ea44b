package kernels

// bf16.cu: bfloat16 conversions.

// F32ToBF16Kernel is f32_to_bf16.
var F32ToBF16Kernel = &Kernel{Name: "f32_to_bf16", File: "bf16.cu", Work: "n",
	Doc: "Backend.Convert to BF16: y[i] = x[i] rounded to bfloat16, ties to even (NaN: 0x7FFF)."}

// F32ToBF16 launches f32_to_bf16(x, y, n).
func F32ToBF16[P any](l Launcher[P], x, y P, n int) {
	var a Args[P]
	a.ptr("x", ConstFloatPtr, x).ptr("y", U16Ptr, y).i("n", n)
	l.Launch(F32ToBF16Kernel, n, a)
}

// BF16ToF32Kernel is bf16_to_f32.
var BF16ToF32Kernel = &Kernel{Name: "bf16_to_f32", File: "bf16.cu", Work: "n",
	Doc: "Backend.Convert to F32: y[i] = the float32 value of bfloat16 x[i] (exact)."}

// BF16ToF32 launches bf16_to_f32(x, y, n).
func BF16ToF32[P any](l Launcher[P], x, y P, n int) {
	var a Args[P]
	a.ptr("x", ConstU16Ptr, x).ptr("y", FloatPtr, y).i("n", n)
	l.Launch(BF16ToF32Kernel, n, a)
}
