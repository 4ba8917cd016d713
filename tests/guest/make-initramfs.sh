#!/usr/bin/env bash
# make-initramfs.sh OUT.cpio.gz STAGE_DIR
#
# Packs a guest root for run-qemu.sh. STAGE_DIR is laid out like the guest's
# root file system (the caller's binaries in usr/bin or opt/bulwark, test
# scripts, policies, ...) and must contain guest-test.sh at its top. STAGE_DIR
# itself is never modified; it is copied into a temporary root which receives:
#   - busybox-static as /bin/busybox plus one symlink per applet (/bin/sh, ...),
#     never replacing a file the stage already has;
#   - every shared library that `ldd` lists for each dynamic ELF executable or
#     shared object in STAGE_DIR, and the dynamic loader, at the same paths;
#     also libraries staged programs dlopen (GnuTLS), when a file names them;
#   - /dev /proc /sys /tmp /run ..., /dev/console, minimal /etc/passwd, group,
#     hosts (only when the stage has none);
#   - /init (see the heredoc below for what it does and the markers it prints).
# The archive is written as newc cpio, gzip-compressed, atomically to OUT.
set -euo pipefail

prog=make-initramfs
die() { echo "$prog: error: $*" >&2; exit 1; }
log() { echo "$prog: $*" >&2; }

[ $# -eq 2 ] || { echo "usage: $0 OUT.cpio.gz STAGE_DIR" >&2; exit 2; }
out=$1
stage=$2
[ -d "$stage" ] || die "stage directory '$stage' does not exist"
stage=$(cd "$stage" && pwd)
[ -f "$stage/guest-test.sh" ] || die "$stage/guest-test.sh is missing (the guest's test entry point)"

# --- host packages -----------------------------------------------------------
apt_updated=
need_pkg() { # need_pkg PACKAGE: install it unless dpkg says it is installed
    if dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; then
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "package $1 is missing and we are not root to install it"
    if [ -z "$apt_updated" ]; then
        log "installing $1: apt-get update"
        apt-get update -qq >&2
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$1" >&2
}
need_pkg busybox-static
need_pkg cpio
need_pkg gzip
need_pkg libc-bin # ldd

busybox=/bin/busybox
[ -x "$busybox" ] || die "$busybox not found after installing busybox-static"
if ldd "$busybox" >/dev/null 2>&1; then
    die "$busybox is dynamically linked (package busybox instead of busybox-static?)"
fi

# --- temporary root ----------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-initramfs.XXXXXX")
tmpout=
trap 'rm -rf "$tmp"; [ -z "$tmpout" ] || rm -f "$tmpout"' EXIT
root=$tmp/root
mkdir "$root"
cp -a "$stage/." "$root/"

for d in bin sbin usr/bin usr/sbin lib lib64 usr/lib etc dev proc sys tmp run \
    var/tmp var/log root mnt; do
    mkdir -p "$root/$d"
done
chmod 1777 "$root/tmp" "$root/var/tmp"

# --- busybox and its applets -------------------------------------------------
[ -e "$root/bin/busybox" ] || cp "$busybox" "$root/bin/busybox"
# Applet paths: bin/NAME for each `busybox --list` name (so /bin/sh -> busybox),
# plus the usual locations from --list-full (/usr/bin/env, /sbin/ip ...). Files
# the stage already provides win. One perl (Essential in Debian) instead of
# ~800 ln/mkdir processes; plain ln when perl is absent.
applets=$(
    "$busybox" --list | grep -vx busybox | sed 's|^|bin/|'
    "$busybox" --list-full
)
if command -v perl >/dev/null; then
    printf '%s\n' "$applets" | ROOT=$root perl -e '
        use File::Path qw(make_path);
        while (my $p = <STDIN>) {
            chomp $p;
            next if $p eq "";
            my $f = "$ENV{ROOT}/$p";
            next if -e $f || -l $f;
            (my $d = $f) =~ s|/[^/]*$||;
            make_path($d);
            symlink("/bin/busybox", $f) or die "symlink $f: $!\n";
        }'
else
    while read -r p; do
        [ -n "$p" ] || continue
        if [ -e "$root/$p" ] || [ -L "$root/$p" ]; then continue; fi
        mkdir -p "$root/$(dirname "$p")"
        ln -s /bin/busybox "$root/$p"
    done <<<"$applets"
fi
[ "$(readlink "$root/bin/sh")" = /bin/busybox ] || [ -x "$root/bin/sh" ] || die "no /bin/sh in the image"

# --- shared libraries ----------------------------------------------------------
# Dynamic ELF = magic 7f 'E' 'L' 'F' and e_type (bytes 16..17, little endian)
# ET_EXEC (2) or ET_DYN (3). BPF objects (ET_REL) and data files are skipped.
is_dyn_elf() {
    local h
    h=$(head -c 18 "$1" 2>/dev/null | od -An -tx1 -v | tr -d ' \n')
    case $h in
    7f454c46????????????????????????0200 | 7f454c46????????????????????????0300) return 0 ;;
    *) return 1 ;;
    esac
}

declare -A libs=()
nelf=0
# add_libs LDD_OUTPUT: every library path in it.
# "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
# "/lib64/ld-linux-x86-64.so.2 (0x...)"; "linux-vdso.so.1 (0x...)" has no path.
add_libs() {
    local lib
    while IFS= read -r lib; do
        [ -n "$lib" ] && libs["$lib"]=1
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3; next }
                  $1 ~ /^\// { print $1 }' <<<"$1")
}
while IFS= read -r -d '' f; do
    is_dyn_elf "$f" || continue
    nelf=$((nelf + 1))
    if ! lddout=$(ldd "$f" 2>&1); then
        case $lddout in
        *"not a dynamic executable"* | *"statically linked"*) continue ;;
        *) die "ldd failed for ${f#"$stage"}: $lddout" ;;
        esac
    fi
    case $lddout in *"statically linked"*) continue ;; esac
    if grep -q 'not found' <<<"$lddout"; then
        die "unresolved shared libraries for ${f#"$stage"}:"$'\n'"$(grep 'not found' <<<"$lddout")"
    fi
    add_libs "$lddout"
done < <(find "$stage" -type f -print0)

# Libraries a staged program loads with dlopen (ldd cannot see them):
# bulwarkd's GnuTLS (agent/k8s/gnutls-dlopen.h), with its own dependencies,
# when a staged file names it.
for soname in libgnutls.so.30; do
    grep -rqa -F "$soname" "$stage" 2>/dev/null || continue
    # awk reads to the end: leaving early would kill ldconfig with SIGPIPE,
    # which pipefail turns into this script's exit (seen in CI).
    path=$(ldconfig -p | awk -v s="$soname" '$1 == s && /x86-64/ && !p { p = $NF } END { print p }')
    [ -n "$path" ] || die "$soname is named by a staged program but not installed on this host"
    libs["$path"]=1
    add_libs "$(ldd "$path")"
done

for lib in "${!libs[@]}"; do
    case $lib in "$stage"/*) continue ;; esac # found inside the stage (RPATH): already there
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
log "$nelf dynamic ELF file(s) in stage, ${#libs[@]} shared librar(y/ies) copied"

# --- /etc defaults -------------------------------------------------------------
[ -e "$root/etc/passwd" ] || printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
[ -e "$root/etc/group" ] || printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
[ -e "$root/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
[ -e "$root/etc/nsswitch.conf" ] || printf 'passwd: files\ngroup: files\nhosts: files\n' >"$root/etc/nsswitch.conf"

# The kernel opens /dev/console for /init's stdio before /init runs. If mknod is
# not permitted here, /init reopens the console once devtmpfs is mounted.
[ -e "$root/dev/console" ] || mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null ||
    log "note: cannot mknod /dev/console (not root?); /init will reopen it from devtmpfs"
[ -e "$root/dev/null" ] || mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || true

# --- /init ---------------------------------------------------------------------
[ -e "$root/init" ] && log "note: replacing the stage's /init with the harness's /init"
rm -f "$root/init"
cat >"$root/init" <<'EOF'
#!/bin/sh
# Bulwark QEMU guest /init (generated by tests/guest/make-initramfs.sh).
# Console markers (parsed by run-qemu.sh):
#   BULWARK-GUEST: lsm=<contents of /sys/kernel/security/lsm>
#   BULWARK-GUEST: FAIL <reason>
#   BULWARK-GUEST: exit=<rc of /guest-test.sh, or of the harness failure>
export PATH=/opt/bulwark/bin:/opt/bulwark:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb
umask 022

finish() { # finish RC: report and power off; /init must never return
    echo "BULWARK-GUEST: exit=$1"
    sync
    poweroff -f
    # poweroff -f does not return; should it, panic (panic=-1 + -no-reboot ends qemu).
    exit "$1"
}
kernel_warnings() { # the kernel messages that "quiet" kept off the console
    echo "BULWARK-GUEST: kernel messages of level warning or higher (last 40):"
    dmesg -r 2>/dev/null | grep '^<[0-4]>' | tail -n 40 | sed 's/^/dmesg: /'
}
fail() { # fail RC REASON...
    rc=$1
    shift
    echo "BULWARK-GUEST: FAIL $*"
    kernel_warnings
    finish "$rc"
}
mnt() { # mnt TYPE DIR [OPTIONS]
    mkdir -p "$2"
    if [ -n "${3:-}" ]; then
        mount -t "$1" -o "$3" "$1" "$2" || fail 120 "mount -t $1 $2"
    else
        mount -t "$1" "$1" "$2" || fail 120 "mount -t $1 $2"
    fi
}

mnt devtmpfs /dev
# stdio on the console, even if the initramfs had no /dev/console node.
exec 0</dev/console 1>/dev/console 2>&1
mnt proc /proc
mnt sysfs /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /dev/shm 2>/dev/null
mnt tmpfs /run mode=0755
mnt tmpfs /tmp mode=1777
mnt securityfs /sys/kernel/security
mnt bpf /sys/fs/bpf
mnt cgroup2 /sys/fs/cgroup
[ -e /proc/self/fd ] && ln -sf /proc/self/fd /dev/fd 2>/dev/null
ln -sf /proc/self/fd/0 /dev/stdin 2>/dev/null
ln -sf /proc/self/fd/1 /dev/stdout 2>/dev/null
ln -sf /proc/self/fd/2 /dev/stderr 2>/dev/null
hostname bulwark-guest 2>/dev/null

# Loopback only: the guest has no network device at all.
ip link set lo up || fail 121 "ip link set lo up"
if [ -e /proc/sys/net/ipv6/conf/lo/disable_ipv6 ]; then
    echo 0 >/proc/sys/net/ipv6/conf/lo/disable_ipv6 2>/dev/null
    ip -6 addr show dev lo | grep -q 'inet6 ::1/' || ip -6 addr add ::1/128 dev lo ||
        fail 121 "cannot configure ::1 on lo"
else
    echo "BULWARK-GUEST: note no IPv6 in this kernel"
fi

lsm=$(cat /sys/kernel/security/lsm 2>/dev/null)
echo "BULWARK-GUEST: lsm=$lsm"
case ",$lsm," in
*,bpf,*) ;;
*)
    # The run fails whatever happens here; /guest-no-bpf-lsm.sh, when a
    # scenario provides it, only shows how the agent behaves on such a kernel.
    [ -f /guest-no-bpf-lsm.sh ] && /bin/sh /guest-no-bpf-lsm.sh
    fail 122 "no bpf LSM"
    ;;
esac

[ -f /guest-test.sh ] || fail 127 "/guest-test.sh missing from the initramfs"
cd /
/bin/sh /guest-test.sh
rc=$?
[ "$rc" -eq 0 ] || kernel_warnings
finish "$rc"
EOF
chmod 755 "$root/init"

# --- pack ----------------------------------------------------------------------
outdir=$(dirname "$out")
mkdir -p "$outdir"
tmpout=$(mktemp "$outdir/.$(basename "$out").XXXXXX")
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
    cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -6 >"$tmpout"
chmod 644 "$tmpout"
mv -f "$tmpout" "$out"
tmpout=
log "wrote $out ($(du -h "$out" | cut -f1))"
