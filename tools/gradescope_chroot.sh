#!/usr/bin/env bash
# Run the Gradescope bundle as Gradescope runs it, in a fresh Debian 12 (bookworm) chroot that has
# nothing but Debian's own python3: setup.sh once, then run_autograder once per submission with
# the upload in /autograder/submission, under Gradescope's default limits (768 MB of memory,
# 0.5 and 1 CPU, 10 minutes) set with a cgroup. Prints, per submission and CPU limit, the score,
# the wall time and the peak memory of the cgroup, and the isolation level results.json reports.
#
# Too slow for every CI run (it downloads a Debian base system and the pinned wheels); run it by
# hand after changing setup.sh, run_autograder or the pins:
#
#     sudo tools/gradescope_chroot.sh [WORKDIR]
#
# Needs: root, debootstrap, cgroups (v1 or v2) with the memory and cpu controllers, network
# access to a Debian mirror (DEBIAN_MIRROR, default deb.debian.org) and to PyPI. Where PyTorch's
# CPU index cannot be reached, SEQLAB_WHEELS=DIR offers a folder of local wheels (a CPU torch
# wheel) to pip inside the chroot; behind a TLS-inspecting proxy, PIP_CERT=FILE gives pip
# inside the chroot the proxy's CA bundle. WORKDIR (default: a new temporary folder from
# mktemp) keeps the base system between runs (rootfs.tar); delete it when done.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-$(mktemp -d -t seqlab-gradescope.XXXXXX)}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ROOTFS="$WORK/rootfs"
MEMORY_LIMIT=$((768 * 1024 * 1024))
TIME_LIMIT=600
mkdir -p "$WORK"
[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap, chroot, cgroups)" >&2; exit 1; }

log() { echo "[gradescope-chroot] $*"; }

# ---------------------------------------------------------------- a fresh Debian 12
cleanup() {
    for m in "$ROOTFS/wheels" "$ROOTFS/dev/pts" "$ROOTFS/dev" "$ROOTFS/proc" "$ROOTFS/sys"; do
        mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true
    done
    for c in "${CGROUPS[@]:-}"; do [ -n "$c" ] && rmdir "$c" 2>/dev/null || true; done
}
CGROUPS=()
trap cleanup EXIT

if [ ! -f "$WORK/rootfs.tar" ]; then
    log "debootstrap bookworm (minbase + python3) from $MIRROR"
    rm -rf "$ROOTFS.tmp"
    start=$(date +%s)
    debootstrap --variant=minbase --include=python3,ca-certificates bookworm "$ROOTFS.tmp" \
        "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
    tar -C "$ROOTFS.tmp" -cf "$WORK/rootfs.tar" .
    rm -rf "$ROOTFS.tmp"
    log "base system in $(( $(date +%s) - start )) s"
fi
rm -rf "$ROOTFS" && mkdir -p "$ROOTFS" && tar -C "$ROOTFS" -xf "$WORK/rootfs.tar"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
mount --bind /dev "$ROOTFS/dev"
mount -t proc proc "$ROOTFS/proc"
mount -t sysfs sysfs "$ROOTFS/sys"
log "chroot: $(chroot "$ROOTFS" python3 --version); venv module usable: $(chroot "$ROOTFS" \
    python3 -c 'import ensurepip' 2>/dev/null && echo yes || echo 'no (setup.sh installs it)')"

# ---------------------------------------------------------------- the bundle, as Gradescope unpacks it
(cd "$REPO" && python3 -m autograder gradescope "$WORK/autograder.zip" >/dev/null)
mkdir -p "$ROOTFS/autograder/source" "$ROOTFS/autograder/results" "$ROOTFS/autograder/submission"
python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
    "$WORK/autograder.zip" "$ROOTFS/autograder/source"
chmod 755 "$ROOTFS/autograder/source/setup.sh" "$ROOTFS/autograder/source/run_autograder"
cp "$ROOTFS/autograder/source/run_autograder" "$ROOTFS/autograder/run_autograder"

PIP_ENV=()
if [ -n "${PIP_CERT:-}" ]; then  # a TLS-inspecting proxy's CA bundle, for pip inside the chroot
    cp "$PIP_CERT" "$ROOTFS/etc/ssl/certs/pip-ca-bundle.crt"
    PIP_ENV+=(PIP_CERT=/etc/ssl/certs/pip-ca-bundle.crt)
fi
if [ -n "${SEQLAB_WHEELS:-}" ]; then
    mkdir -p "$ROOTFS/wheels" && mount --bind "$SEQLAB_WHEELS" "$ROOTFS/wheels"
    PIP_ENV+=(PIP_FIND_LINKS=/wheels)
    log "local wheels offered to pip: $SEQLAB_WHEELS"
fi
log "setup.sh"
start=$(date +%s)
chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root "${PIP_ENV[@]}" /bin/bash -c "cd /autograder/source && ./setup.sh" \
    >"$WORK/setup.log" 2>&1 || { tail -30 "$WORK/setup.log"; exit 1; }
grep '^setup.sh:' "$WORK/setup.log" || true
log "setup.sh done in $(( $(date +%s) - start )) s; venv $(du -sh "$ROOTFS/autograder/venv" | cut -f1)"

# ---------------------------------------------------------------- submissions
SUBS="$WORK/submissions"
rm -rf "$SUBS" && mkdir -p "$SUBS/reference" "$SUBS/untouched_release" "$SUBS/zip_in_upload"
REF="$REPO/solutions/sequence_models/seqlab"
for m in rnn_layers lstm_layers attention_layers captioning transformer; do
    cp "$REF/$m.py" "$SUBS/reference/$m.py"
    cp "$REPO/assignments/sequence_models/seqlab/$m.py" "$SUBS/untouched_release/$m.py"
done
(cd "$REPO/solutions/sequence_models" && python3 -c "
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w') as zf:
    for m in ('rnn_layers', 'lstm_layers', 'attention_layers', 'captioning', 'transformer'):
        zf.write(f'seqlab/{m}.py', f'sequence_models/seqlab/{m}.py')
" "$SUBS/zip_in_upload/homework.zip")

# A cgroup with Gradescope's limits: memory and CPU (quota per 100 ms period).
make_cgroup() {  # make_cgroup NAME CPU_QUOTA_US -> prints the cgroup folder(s)
    local name=$1 quota=$2
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then          # cgroup v2
        local cg=/sys/fs/cgroup/$name
        mkdir -p "$cg"
        echo "$MEMORY_LIMIT" >"$cg/memory.max"
        echo 0 >"$cg/memory.swap.max" 2>/dev/null || true
        echo "$quota 100000" >"$cg/cpu.max"
        echo "$cg"
    else                                                        # cgroup v1
        local mem=/sys/fs/cgroup/memory/$name cpu=/sys/fs/cgroup/cpu/$name
        mkdir -p "$mem" "$cpu"
        echo "$MEMORY_LIMIT" >"$mem/memory.limit_in_bytes"
        echo "$MEMORY_LIMIT" >"$mem/memory.memsw.limit_in_bytes" 2>/dev/null || true
        echo 100000 >"$cpu/cpu.cfs_period_us"
        echo "$quota" >"$cpu/cpu.cfs_quota_us"
        echo "$mem $cpu"
    fi
}
peak_memory() {  # peak_memory CGROUP_DIRS -> bytes
    set -- $1
    if [ -f "$1/memory.peak" ]; then cat "$1/memory.peak";
    elif [ -f "$1/memory.max_usage_in_bytes" ]; then cat "$1/memory.max_usage_in_bytes";
    else echo 0; fi
}
ooms() {
    set -- $1
    if [ -f "$1/memory.events" ]; then awk '/^oom_kill /{print $2}' "$1/memory.events";
    else awk '/^oom_kill /{print $2}' "$1/memory.oom_control" 2>/dev/null || echo "?"; fi
}

printf '\n%-18s %-5s %9s %8s %10s %5s  %s\n' submission cpu score "wall s" "peak MB" oom isolation
for cpus in 0.5 1; do
    quota=$(python3 -c "print(int($cpus * 100000))")
    for sub in reference untouched_release zip_in_upload; do
        name="seqlab-gs-$$-${sub}-${cpus/./_}"
        dirs=$(make_cgroup "$name" "$quota")
        read -r -a created <<<"$dirs"; CGROUPS+=("${created[@]}")
        rm -rf "$ROOTFS/autograder/submission" "$ROOTFS/autograder/results"
        mkdir -p "$ROOTFS/autograder/results"
        cp -r "$SUBS/$sub" "$ROOTFS/autograder/submission"
        start=$(python3 -c 'import time; print(time.time())')
        # shellcheck disable=SC2086
        bash -c 'for d in '"$dirs"'; do echo $$ >"$d/cgroup.procs"; done
                 exec timeout '"$TIME_LIMIT"' chroot "$0" /usr/bin/env -i \
                     PATH=/usr/local/bin:/usr/bin:/bin HOME=/root \
                     /bin/bash -c "cd /autograder && ./run_autograder"' "$ROOTFS" \
            >"$WORK/run-$sub-$cpus.log" 2>&1 || true
        wall=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")
        peak=$(( $(peak_memory "$dirs") / 1024 / 1024 ))
        read -r score isolation < <(python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
iso = d.get('extra_data', {}).get('isolation', '?')
iso = iso.get('level', iso) if isinstance(iso, dict) else iso
total = sum(t.get('max_score', 0) for t in d.get('tests', []))
print(f\"{d.get('score', 0):g}/{total:g}\", str(iso).replace(' ', '_'))
" "$ROOTFS/autograder/results/results.json" 2>/dev/null || echo "no_results ?")
        printf '%-18s %-5s %9s %8s %10s %5s  %s\n' "$sub" "$cpus" "$score" "$wall" "$peak" \
            "$(ooms "$dirs")" "$isolation"
        cp "$ROOTFS/autograder/results/results.json" "$WORK/results-$sub-$cpus.json" 2>/dev/null || true
    done
done
log "logs and results.json files in $WORK"
