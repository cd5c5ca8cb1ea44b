#!/usr/bin/env bash
# check-ptx.sh: fail when kernels/kernels.ptx is stale or does not assemble.
#
# 1. Regenerates the PTX from kernels/*.cu into a temporary folder with
#    scripts/build-kernels.sh and compares it byte for byte with the committed
#    kernels/kernels.ptx.
# 2. Checks its header: .version PTX_VERSION (7.0, what build-kernels.sh
#    writes: drivers from CUDA 11.0 on read it) and .target sm_70.
# 3. Assembles the committed PTX with ptxas for sm_70, sm_80 and sm_90
#    (Volta, Ampere, Hopper), which fails on any PTX error.
#
# Needs nvcc and ptxas (Debian: apt-get install nvidia-cuda-toolkit). NVCC and
# PTXAS pick the tools. Exits non-zero with a message on any failure.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ptx=$root/kernels/kernels.ptx
nvcc=${NVCC:-nvcc}
ptxas=${PTXAS:-ptxas}
for tool in "$nvcc" "$ptxas"; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "check-ptx: '$tool' not found. Install the CUDA toolkit (Debian: apt-get install nvidia-cuda-toolkit) or set NVCC/PTXAS." >&2
		exit 127
	fi
done
if [ ! -f "$ptx" ]; then
	echo "check-ptx: kernels/kernels.ptx is missing; run scripts/build-kernels.sh" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

status=0
"$root/scripts/build-kernels.sh" "$tmp/kernels.ptx" >/dev/null
if cmp -s "$ptx" "$tmp/kernels.ptx"; then
	echo "check-ptx: kernels/kernels.ptx is up to date"
else
	echo "check-ptx: kernels/kernels.ptx is stale: run scripts/build-kernels.sh and commit the result" >&2
	have=$(sed -n 's|^// Cuda compilation tools, ||p' "$ptx")
	now=$(sed -n 's|^// Cuda compilation tools, ||p' "$tmp/kernels.ptx")
	if [ "$have" != "$now" ]; then
		echo "check-ptx: note: committed PTX is from nvcc $have, this nvcc is $now" >&2
	fi
	diff -u --label committed --label regenerated "$ptx" "$tmp/kernels.ptx" | head -n 40 >&2 || true
	status=1
fi

want_version=${PTX_VERSION:-7.0}
version=$(sed -n 's/^\.version //p' "$ptx")
target=$(sed -n 's/^\.target //p' "$ptx")
if [ "$version" = "$want_version" ] && [ "$target" = sm_70 ]; then
	echo "check-ptx: .version $version, .target $target"
else
	echo "check-ptx: kernels/kernels.ptx has .version ${version:-none} and .target ${target:-none}, want $want_version and sm_70: run scripts/build-kernels.sh" >&2
	status=1
fi

for arch in sm_70 sm_80 sm_90; do
	if "$ptxas" -arch="$arch" "$ptx" -o "$tmp/kernels.$arch.cubin" 2>"$tmp/ptxas.log"; then
		echo "check-ptx: ptxas -arch=$arch ok"
	else
		cat "$tmp/ptxas.log" >&2
		echo "check-ptx: ptxas -arch=$arch failed" >&2
		status=1
	fi
done
exit $status
