#!/usr/bin/env bash
# build-kernels.sh: compile the CUDA kernels in kernels/*.cu to PTX.
#
#   scripts/build-kernels.sh            writes kernels/kernels.ptx (committed)
#   scripts/build-kernels.sh OUT.ptx    writes OUT.ptx instead (check-ptx.sh)
#
# One translation unit, kernels/all.cu, includes every kernel source, so the
# result is one PTX module. The target is the virtual architecture compute_70:
# the driver JIT-compiles it for any GPU from Volta (sm_70) on. Nothing
# machine-specific ends up in the PTX: the compile runs inside kernels/ on a
# relative file name, without -lineinfo/-G, so no .file directives or paths;
# the script checks that before it writes OUT. --fmad=false: no multiply-add
# is fused into an FMA, so every kernel rounds like the same float32
# expression evaluated step by step on the host (the CPU backend, the
# emulator in kernels/emu); the kernels are memory-bound, so FMAs would buy
# nothing. Division and sqrt stay IEEE-rounded (nvcc's defaults). The PTX
# header names the nvcc
# release, so regenerate with the same release (Debian bookworm's
# nvidia-cuda-toolkit, CUDA 11.8) to get identical bytes.
#
# PTX ISA version. nvcc writes the newest ISA it knows (7.8 for CUDA 11.8),
# and a driver refuses a .version newer than its CUDA release (7.8 needs a
# CUDA 11.8 driver). The kernels use nothing newer than ISA 6.0 (the first
# with sm_70) and the rest of the program needs a CUDA 11.0 driver anyway
# (cuDevicePrimaryCtxRelease_v2, cuBLAS 11), so the script lowers .version
# to PTX_VERSION, 7.0 (CUDA 11.0, what nvcc 11.0 writes), and says so in a
# comment. (ptxas 11.8 accepts any .version with .target sm_70, so it cannot
# find the floor itself; check-ptx.sh assembles the result for sm_70, sm_80
# and sm_90, and kernels.DriverNeeded maps the .version to the driver the
# GPU backend requires.)
#
# Environment: NVCC (default nvcc) picks the compiler; NVCC_FLAGS adds flags
# (e.g. "-ccbin g++-11" where the default host compiler is too new for nvcc);
# PTX_VERSION (default 7.0) is the .version written.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
nvcc=${NVCC:-nvcc}
if ! command -v "$nvcc" >/dev/null 2>&1; then
	echo "build-kernels: '$nvcc' not found. Install the CUDA toolkit (Debian: apt-get install nvidia-cuda-toolkit) or set NVCC." >&2
	exit 127
fi

out=${1:-$root/kernels/kernels.ptx}
case $out in
/*) ;;
*) out=$PWD/$out ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck disable=SC2086 # NVCC_FLAGS is a list of flags
(cd "$root/kernels" && "$nvcc" -ptx -arch=compute_70 -O3 --fmad=false \
	-Werror all-warnings ${NVCC_FLAGS:-} all.cu -o "$tmp/kernels.ptx")

# Lower the ISA version (see above); never raise it.
ptx_version=${PTX_VERSION:-7.0}
have=$(sed -n 's/^\.version \([0-9]*\.[0-9]*\)$/\1/p' "$tmp/kernels.ptx")
if [ "$(printf '%s\n' "$have" | wc -l)" != 1 ] || [ -z "$have" ]; then
	echo "build-kernels: expected one .version line in nvcc's PTX, found: ${have:-none}" >&2
	exit 1
fi
if [ "$(printf '%s\n%s\n' "$ptx_version" "$have" | sort -V | head -n 1)" != "$ptx_version" ]; then
	echo "build-kernels: nvcc wrote .version $have, older than PTX_VERSION=$ptx_version: use a newer nvcc" >&2
	exit 1
fi
sed -i "s|^\.version $have\$|// .version $have lowered to $ptx_version by scripts/build-kernels.sh (see there)\n.version $ptx_version|" "$tmp/kernels.ptx"

# No source positions or paths may leak into the committed PTX.
if grep -nE '^[[:space:]]*\.(file|loc)[[:space:]]' "$tmp/kernels.ptx" >&2; then
	echo "build-kernels: PTX has .file/.loc directives (debug info); refusing to write it" >&2
	exit 1
fi
if grep -nE '(^|[^/])/[A-Za-z0-9_.~-]+/' "$tmp/kernels.ptx" >&2; then
	echo "build-kernels: PTX mentions a file path; refusing to write it" >&2
	exit 1
fi

cp "$tmp/kernels.ptx" "$out"
echo "build-kernels: wrote $(basename "$out") ($(grep -c '^\.visible \.entry' "$out") kernels, $("$nvcc" --version | sed -n 's/.*\(release [0-9.]*\).*/\1/p'), .version $ptx_version)"
