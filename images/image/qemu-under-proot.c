/*
 * scripts/build-image.sh runs the image's arm64 programs with `proot -q`: proot follows every
 * program qemu-aarch64 emulates and translates the paths of qemu's system calls into the
 * image's directory. Debian 12's proot (5.1) predates a few path-taking system calls that this
 * machine's glibc and qemu 7.2 use for the emulated programs (faccessat2 for access(),
 * statx for stat(), openat2, execveat); proot passes those through untranslated, so they
 * would look at this machine's own files instead of the image's (a `test -x` in a maintainer
 * script sees the build machine's /etc: run-parts found no kernel hooks, and no initrd was
 * made).
 *
 * This program is what proot starts instead of qemu-aarch64: it makes those system calls fail
 * with ENOSYS for itself and its children (a seccomp filter), then becomes qemu-aarch64.
 * glibc and qemu then fall back to the older calls (faccessat, newfstatat, openat), which
 * proot translates.
 *
 * It also refuses mount and umount2 (EPERM). proot is no namespace: run as root, a mount
 * or unmount by an emulated program acts on this machine. debootstrap's second stage
 * unmounts /dev/pts, /dev/shm and /proc when it exits, and with the build machine's /dev
 * bound into the image that unmounted the build machine's own /dev/pts (no pseudo-terminal
 * could be opened afterwards). Nothing the image's packages do at build time needs a mount.
 *
 *   cc -O2 -o qemu-under-proot qemu-under-proot.c
 *   proot -q "qemu-under-proot /usr/bin/qemu-aarch64" ...
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "qemu-under-proot: written for an x86-64 build machine"
#endif

#define REFUSE_WITH(nr, err)                                    \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),            \
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((err) & SECCOMP_RET_DATA))
#define REFUSE(nr) REFUSE_WITH(nr, ENOSYS)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: qemu-under-proot QEMU [ARGUMENTS...]\n");
        return 2;
    }
    struct sock_filter filter[] = {
        /* Only x86-64 system calls are looked at; anything else is allowed. */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        REFUSE(439), /* faccessat2 */
        REFUSE(332), /* statx */
        REFUSE(437), /* openat2 */
        REFUSE(322), /* execveat */
        REFUSE_WITH(165, EPERM), /* mount */
        REFUSE_WITH(166, EPERM), /* umount2 */
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {
        .len = (unsigned short)(sizeof(filter) / sizeof(filter[0])),
        .filter = filter,
    };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror("qemu-under-proot: seccomp");
        return 1;
    }
    execv(argv[1], argv + 1);
    perror("qemu-under-proot: exec");
    return 1;
}
