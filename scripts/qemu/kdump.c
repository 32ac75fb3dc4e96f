/*
 * kdump: the guest half of scripts/qemu-groundtruth.mjs.
 *
 * Runs as root inside the minimal initramfs and sends records to the host over QEMU's isa-debugcon
 * (I/O port 0xe9, bound to a file on the host): binary-safe, no tty layer, no newline translation.
 *
 *   kdump file NAME PATH        the contents of PATH (a /proc or /sys file, read to EOF)
 *   kdump text NAME WORDS...    the words joined by spaces
 *   kdump kcore NAME ADDR LEN   LEN bytes of kernel virtual memory at ADDR (hex), read from /proc/kcore
 *
 * Record: "@@BEGIN NAME LEN\n" LEN raw bytes "\n@@END NAME\n". A kcore read that fails is reported as
 * a record named "error:NAME" holding the reason, never silently zero-filled.
 *
 * Built on the host with `gcc -static -O2` (glibc's libc.a), so the initramfs needs no shared libraries.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <unistd.h>

#define PORT 0xe9

static int have_port;

static void emit(const void *buf, size_t len) {
  if (have_port) {
    const unsigned char *p = buf;
    while (len > 0) {
      size_t n = len > 65536 ? 65536 : len;
      outsb(PORT, p, n);
      p += n;
      len -= n;
    }
  } else {
    const char *p = buf;
    while (len > 0) {
      ssize_t n = write(1, p, len);
      if (n <= 0) return;
      p += n;
      len -= (size_t)n;
    }
  }
}

static void record(const char *name, const void *buf, size_t len) {
  char head[512];
  int n = snprintf(head, sizeof head, "@@BEGIN %s %zu\n", name, len);
  emit(head, (size_t)n);
  emit(buf, len);
  n = snprintf(head, sizeof head, "\n@@END %s\n", name);
  emit(head, (size_t)n);
}

static void fail(const char *name, const char *fmt, const char *what) {
  char ename[300], msg[600];
  snprintf(ename, sizeof ename, "error:%s", name);
  int n = snprintf(msg, sizeof msg, fmt, what, strerror(errno));
  record(ename, msg, (size_t)n);
}

static int do_file(const char *name, const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    fail(name, "open %s: %s", path);
    return 1;
  }
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (len == cap) buf = realloc(buf, cap *= 2);
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0) {
      fail(name, "read %s: %s", path);
      return 1;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fd);
  record(name, buf, len);
  free(buf);
  return 0;
}

static int do_kcore(const char *name, uint64_t addr, uint64_t len) {
  int fd = open("/proc/kcore", O_RDONLY);
  if (fd < 0) {
    fail(name, "open %s: %s", "/proc/kcore");
    return 1;
  }
  Elf64_Ehdr eh;
  if (pread(fd, &eh, sizeof eh, 0) != sizeof eh) {
    fail(name, "read %s header: %s", "/proc/kcore");
    return 1;
  }
  Elf64_Phdr *ph = calloc(eh.e_phnum, sizeof *ph);
  if (pread(fd, ph, (size_t)eh.e_phnum * sizeof *ph, (off_t)eh.e_phoff) != (ssize_t)(eh.e_phnum * sizeof *ph)) {
    fail(name, "read %s program headers: %s", "/proc/kcore");
    return 1;
  }
  for (int i = 0; i < eh.e_phnum; i++) {
    if (ph[i].p_type != PT_LOAD) continue;
    if (addr < ph[i].p_vaddr || addr + len > ph[i].p_vaddr + ph[i].p_memsz) continue;
    unsigned char *buf = malloc(len ? len : 1);
    uint64_t off = ph[i].p_offset + (addr - ph[i].p_vaddr), done = 0;
    while (done < len) {
      ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));
      if (n <= 0) {
        fail(name, "read %s: %s", "/proc/kcore");
        return 1;
      }
      done += (uint64_t)n;
    }
    record(name, buf, len);
    free(buf);
    close(fd);
    return 0;
  }
  errno = ERANGE;
  fail(name, "no PT_LOAD of %s covers the range: %s", "/proc/kcore");
  return 1;
}

int main(int argc, char **argv) {
  have_port = getenv("KDUMP_STDOUT") == NULL && ioperm(PORT, 1, 1) == 0;
  if (argc >= 4 && strcmp(argv[1], "file") == 0) return do_file(argv[2], argv[3]);
  if (argc >= 3 && strcmp(argv[1], "text") == 0) {
    size_t cap = 1;
    for (int i = 3; i < argc; i++) cap += strlen(argv[i]) + 1;
    char *s = calloc(cap, 1);
    for (int i = 3; i < argc; i++) {
      if (i > 3) strcat(s, " ");
      strcat(s, argv[i]);
    }
    record(argv[2], s, strlen(s));
    return 0;
  }
  if (argc == 5 && strcmp(argv[1], "kcore") == 0)
    return do_kcore(argv[2], strtoull(argv[3], NULL, 16), strtoull(argv[4], NULL, 0));
  fprintf(stderr, "usage: kdump file NAME PATH | text NAME WORDS... | kcore NAME ADDR LEN\n");
  return 2;
}
