#!/bin/busybox sh
# /init of the ground-truth initramfs built by scripts/qemu-groundtruth.mjs.
# Loads the modules listed in /groundtruth.conf, then sends to the host (through /kdump, over QEMU's
# isa-debugcon) what the kernel reports about the CPU, the module section addresses and the bytes of the
# listed sections as the kernel patched them, and powers off.
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
K=/kdump

$K text start "$(uname -r)"
$K file cmdline /proc/cmdline
$K file cpuinfo /proc/cpuinfo
for f in /sys/devices/system/cpu/vulnerabilities/*; do
  [ -f "$f" ] && $K file "vuln:${f##*/}" "$f"
done

while read -r op a b c; do
  case "$op" in
    insmod)
      if insmod "$a" 2>/tmp/err; then $K text "insmod:${a##*/}" ok; else $K file "error:insmod:${a##*/}" /tmp/err; fi
      ;;
    sections)
      : > /tmp/sections
      for f in /sys/module/"$a"/sections/.* /sys/module/"$a"/sections/*; do
        [ -f "$f" ] && echo "${f##*/} $(cat "$f")" >> /tmp/sections
      done
      $K file "sections:$a" /tmp/sections
      ;;
    trace)
      # Enable a trace event (its tracepoint's static key switches the jump labels at run time), for attest.
      [ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/tmp/err
      if echo 1 > "/sys/kernel/tracing/events/$a/enable" 2>/tmp/err; then $K text "trace:$a" ok; else $K file "error:trace:$a" /tmp/err; fi
      ;;
    kprobe)
      # A kprobe in the middle of function $b, on the instruction after its fentry call: an int3 (or, once
      # optimized, a jmp) written into kernel text, the way a hook looks. attest must report it, named. The
      # fentry call's address is in available_filter_functions_addrs (6.5+: after an ENDBR with IBT); without
      # that file the call opens the function (6.1).
      [ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/tmp/err
      off=5
      f=/sys/kernel/tracing/available_filter_functions_addrs
      fa=$(grep -m1 " [tT] $b\$" /proc/kallsyms | cut -d' ' -f1)
      if [ -f "$f" ] && [ -n "$fa" ]; then
        site=$(grep -m1 " $b\$" "$f" | cut -d' ' -f1)
        [ -n "$site" ] && off=$((0x$site - 0x$fa + 5))
      fi
      if echo "p:$a $b+$off" >> /sys/kernel/tracing/kprobe_events 2>/tmp/err && echo 1 > "/sys/kernel/tracing/events/kprobes/$a/enable" 2>>/tmp/err; then
        $K text "kprobe:$a" "$b+$off"
      else $K file "error:kprobe:$a" /tmp/err; fi
      ;;
    ftrace)
      # The function tracer on one function: its fentry NOP becomes a call (attest: an ftrace call, explained).
      [ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/tmp/err
      if echo "$a" > /sys/kernel/tracing/set_ftrace_filter 2>/tmp/err && echo function > /sys/kernel/tracing/current_tracer 2>>/tmp/err; then
        $K text "ftrace:$a" ok
      else $K file "error:ftrace:$a" /tmp/err; fi
      ;;
    live)
      # A section again, after the run-time changes above.
      if addr=$(cat "/sys/module/$a/sections/$b"); then
        $K kcore "live:$a:$b:$addr" "${addr#0x}" "$c"
      else
        $K text "error:live:$a:$b" "no section address"
      fi
      ;;
    ktext)
      # The core kernel's .text (SIZE bytes from _text), for textpoke attest.
      # Up to _etext only: mark_rodata_ro() frees the pages between _etext and the read-only data, and a
      # .text section that the linker padded past _etext (6.12: 16 MiB) would read freed memory there.
      t=$(grep -m1 ' _text$' /proc/kallsyms | cut -d' ' -f1)
      e=$(grep -m1 ' _etext$' /proc/kallsyms | cut -d' ' -f1)
      n=$a
      if [ -n "$t" ] && [ -n "$e" ] && [ $((0x$e - 0x$t)) -lt "$a" ]; then n=$((0x$e - 0x$t)); fi
      if [ -n "$t" ]; then $K kcore "dump:vmlinux:.text:0x$t" "$t" "$n"; else $K text "error:ktext" "no _text in /proc/kallsyms"; fi
      # The core kernel's data (ro_after_init, .data, .bss) after the text: the static call keys and the
      # runtime constants' variables, which attest checks the text against (a live /proc/kcore has them too).
      for r in __start_ro_after_init:__end_ro_after_init _sdata:_edata __bss_start:__bss_stop; do
        s=$(grep -m1 " ${r%%:*}\$" /proc/kallsyms | cut -d' ' -f1)
        x=$(grep -m1 " ${r##*:}\$" /proc/kallsyms | cut -d' ' -f1)
        if [ -n "$s" ] && [ -n "$x" ]; then $K kcore "dump:vmlinux:${r%%:*}:0x$s" "$s" "$((0x$x - 0x$s))"; fi
      done
      ;;
    dump)
      if addr=$(cat "/sys/module/$a/sections/$b"); then
        $K kcore "dump:$a:$b:$addr" "${addr#0x}" "$c"
      else
        $K text "error:dump:$a:$b" "no section address"
      fi
      ;;
  esac
done < /groundtruth.conf

# Kernel variables the comparison needs: boot_cpu_data (its x86_capability words are every feature bit the
# kernel set, including the synthetic ones /proc/cpuinfo does not name) and x86_return_thunk.
for v in boot_cpu_data:512 x86_return_thunk:8; do
  a=$(grep -m1 " ${v%%:*}\$" /proc/kallsyms | cut -d' ' -f1)
  [ -n "$a" ] && $K kcore "kvar:${v%%:*}:$a" "$a" "${v##*:}"
done

# All symbols of the running kernel and its modules: Debian's System.map is a placeholder (the real one
# is in the -dbg package), so /proc/kallsyms is where the kernel symbol addresses come from.
$K file kallsyms /proc/kallsyms
dmesg > /tmp/dmesg
$K file dmesg /tmp/dmesg
$K text done ok
poweroff -f
echo o > /proc/sysrq-trigger
