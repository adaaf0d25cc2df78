#!/usr/bin/env bash
# Rebuild the reference header trees that benchmarks/history_check.py (and kvmspec diff-header)
# compare the spec's history with, from public sources only. Nothing here is part of the
# repository: the trees are written to OUT (default $KVMSPEC_REFS, else /work/refs) and must
# never be committed.
#
# Where each tree comes from:
#   OUT/debian-<R>/<arch>   Debian's linux-libc-dev .deb (`make headers_install` of every
#                           architecture), from deb.debian.org: 6.12 from trixie, 7.3 from
#                           trixie-backports. The .deb's current file name is read from the
#                           suite's Packages index (dists/<suite>/main/binary-amd64/Packages.xz),
#                           so a point release of the package does not break the script.
#                           <arch> = usr/include/* plus usr/include/<triple>/asm.
#   OUT/bionic/<R>/<arch>   AOSP bionic's libc/kernel/uapi (comments and __user stripped by
#                           bionic's own tools) at each "Update to vX kernel headers" commit of
#                           https://github.com/aosp-mirror/platform_bionic (libc/kernel/uapi/linux/kvm.h's
#                           log); the first such commit for a release, newest first, wins (a
#                           later revert is followed by a newer "Update"). OUT/bionic/INDEX lists
#                           "<release> <commit> <version>". asm-generic/ is kept; linux/compiler.h
#                           and linux/compiler_types.h stubs stand in for bionic's libc headers.
#                           These trees have no linux/version.h: pass --release <R>.
#   OUT/linux-<R>/<zigarch> The kernel headers bundled with the Zig toolchain wheels on PyPI
#                           (`pip download --no-deps ziglang==V`; lib/libc/include holds
#                           `make headers_install` output of one release, linux/version.h says which).
#
#   benchmarks/reference_trees.sh [debian] [bionic] [zig]      # default: all three
# Environment: KVMSPEC_REFS (OUT), BIONIC_REPO (an existing clone of platform_bionic, to skip
# the clone), ZIG_VERSIONS (default "0.8.1 0.9.1 0.11.0 0.14.1 0.16.0 0.17.1").
set -euo pipefail

OUT=${KVMSPEC_REFS:-/work/refs}
MIRROR=${DEBIAN_MIRROR:-https://deb.debian.org/debian}
ZIG_VERSIONS=${ZIG_VERSIONS:-"0.8.1 0.9.1 0.11.0 0.14.1 0.16.0 0.17.1"}
parts=${*:-debian bionic zig}
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# kvmspec --arch name and Debian's multiarch triple of each architecture.
debian_arches="x86:x86_64-linux-gnu arm64:aarch64-linux-gnu riscv:riscv64-linux-gnu s390:s390x-linux-gnu
    ppc:powerpc64le-linux-gnu mips:mips64el-linux-gnuabi64 loongarch:loongarch64-linux-gnu"

# deb_file SUITE PACKAGE -> the pool path of PACKAGE's newest version in SUITE's Packages index.
deb_file() {
    curl -fsSL "$MIRROR/dists/$1/main/binary-amd64/Packages.xz" | xz -dc |
        awk -v pkg="$2" '/^Package: /{p=($2==pkg)} p && /^Version: /{v=$2} p && /^Filename: /{print v, $2}' |
        sort -V | tail -1 | cut -d' ' -f2
}

# debian_tree SUITE DIR: linux-libc-dev of SUITE, one include tree per architecture under DIR.
debian_tree() {
    local suite=$1 dir=$2 file
    file=$(deb_file "$suite" linux-libc-dev)
    [ -n "$file" ] || { echo "no linux-libc-dev in $suite's Packages index" >&2; return 1; }
    echo "debian $suite: $file -> $dir"
    rm -rf "$work/deb" && mkdir -p "$work/deb"
    curl -fsSL -o "$work/deb/p.deb" "$MIRROR/$file"
    dpkg-deb -x "$work/deb/p.deb" "$work/deb/root"
    local inc=$work/deb/root/usr/include a
    rm -rf "$dir" && mkdir -p "$dir"
    for a in $debian_arches; do
        local name=${a%%:*} triple=${a##*:}
        [ -d "$inc/$triple/asm" ] || continue
        mkdir -p "$dir/$name"
        for d in "$inc"/*; do case $(basename "$d") in *-linux-*) ;; *) cp -rL "$d" "$dir/$name/";; esac; done
        cp -rL "$inc/$triple/asm" "$dir/$name/asm"   # symlinks into usr/lib/linux/uapi
    done
}

bionic_trees() {
    local repo=${BIONIC_REPO:-}
    if [ -z "$repo" ]; then
        repo=$work/bionic
        git clone --quiet --filter=blob:none --no-checkout https://github.com/aosp-mirror/platform_bionic "$repo"
    fi
    mkdir -p "$OUT/bionic"
    : > "$OUT/bionic/INDEX.new"
    git -C "$repo" log --format='%h %s' -- libc/kernel/uapi/linux/kvm.h |
        grep -E 'Update to (v|kernel headers v|android-mainline kernel headers v)' |
        while read -r commit subject; do
            local version rel out u
            version=$(echo "$subject" | grep -oE 'v[0-9]+\.[0-9]+(\.[0-9]+)?' | head -1 | tr -d v)
            rel=$(echo "$version" | cut -d. -f1,2)
            grep -q "^$rel " "$OUT/bionic/INDEX.new" && continue   # newest "Update" of a release wins
            out=$OUT/bionic/$rel
            rm -rf "$out" && mkdir -p "$out/src"
            git -C "$repo" archive "$commit" libc/kernel/uapi | tar x -C "$out/src"
            u=$out/src/libc/kernel/uapi
            for a in x86:asm-x86 arm64:asm-arm64 riscv:asm-riscv; do
                local name=${a%%:*} asmdir=${a##*:}
                [ -d "$u/$asmdir" ] || continue
                mkdir -p "$out/$name"
                # everything but the per-architecture asm-<arch> directories (asm-generic stays)
                for d in "$u"/*; do
                    case $(basename "$d") in asm-generic) cp -r "$d" "$out/$name/";; asm-*) ;; *) cp -r "$d" "$out/$name/";; esac
                done
                cp -r "$u/$asmdir/asm" "$out/$name/asm"
                printf '#define __user\n#define __force\n#define __iomem\n' > "$out/$name/linux/compiler_types.h"
                cp "$out/$name/linux/compiler_types.h" "$out/$name/linux/compiler.h"
            done
            rm -rf "$out/src"
            echo "$rel $commit $version" >> "$OUT/bionic/INDEX.new"
            echo "bionic $rel: $commit ($subject)"
        done
    mv "$OUT/bionic/INDEX.new" "$OUT/bionic/INDEX"
}

# zig_tree VERSION: the wheel's lib/libc/include as OUT/linux-<release>/<zigarch>.
zig_tree() {
    local v=$1 wheel inc rel
    rm -rf "$work/zig" && mkdir -p "$work/zig"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_12_x86_64 \
        --dest "$work/zig" "ziglang==$v"
    wheel=$(ls "$work/zig"/*.whl)
    (cd "$work/zig" && python3 -m zipfile -e "$wheel" x)
    inc=$(find "$work/zig/x" -type d -path '*lib/libc/include' | head -1)
    rel=$(awk '/LINUX_VERSION_MAJOR/{a=$3} /LINUX_VERSION_PATCHLEVEL/{b=$3} END{if (a != "") print a "." b}' \
        "$inc/any-linux-any/linux/version.h" 2>/dev/null)
    if [ -z "$rel" ]; then   # older wheels: only LINUX_VERSION_CODE
        local code
        code=$(awk '/LINUX_VERSION_CODE/{print $3}' "$inc/any-linux-any/linux/version.h")
        rel="$((code >> 16)).$(((code >> 8) & 255))"
    fi
    echo "zig $v: Linux $rel"
    local dir=$OUT/linux-$rel a
    rm -rf "$dir"
    for a in x86:x86_64 x86:x86 aarch64:aarch64 riscv:riscv64 riscv:riscv s390x:s390x powerpc:powerpc64le \
             powerpc:powerpc mips:mips64el mips:mips loongarch:loongarch64 loongarch:loongarch; do
        local name=${a%%:*} src=$inc/${a##*:}-linux-any
        [ -d "$dir/$name" ] && continue
        [ -d "$src/asm" ] || continue
        mkdir -p "$dir/$name"
        cp -r "$inc/any-linux-any/." "$dir/$name/"
        [ -d "$inc/generic-linux-any" ] && cp -r "$inc/generic-linux-any/." "$dir/$name/"
        cp -r "$src/." "$dir/$name/"
    done
}

for part in $parts; do
    case $part in
        debian) debian_tree trixie "$OUT/debian-6.12"; debian_tree trixie-backports "$OUT/debian-7.3" ;;
        bionic) bionic_trees ;;
        zig) for v in $ZIG_VERSIONS; do zig_tree "$v"; done ;;
        *) echo "unknown part $part (debian, bionic, zig)" >&2; exit 2 ;;
    esac
done
