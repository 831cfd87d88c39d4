/* cpuid_mask.so: run a program as if this CPU lacked some of its ISA extensions, for every
 * library at once.
 *
 *   gcc -O2 -shared -fPIC -o cpuid_mask.so cpuid_mask.c -ldl
 *   CPUID_MASK=avx2 LD_PRELOAD=$PWD/cpuid_mask.so python ...
 *
 * The environment caps (ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS, ATEN_CPU_CAPABILITY) reach
 * only the libraries that read them; ONNX Runtime's and OpenVINO's MLAS, OpenVINO's own kernels
 * and glibc pick their kernels from CPUID alone. Linux's CPUID faulting (ARCH_SET_CPUID, the
 * `cpuid_fault` flag in /proc/cpuinfo; the mechanism rr uses) makes every CPUID instruction of
 * the process trap: the SIGSEGV handler here runs the real CPUID with faulting briefly off,
 * clears the bits of the hidden extensions and steps over the instruction. The setting is
 * inherited by threads and forks and reset by execve, where LD_PRELOAD installs it again. Only
 * kernel selection changes: the instructions still run on this CPU's cores (an AVX2 kernel on a
 * Xeon is not timed as on an AMD Zen 3: the same kind of code, not the same clock or caches).
 *
 * Profiles (CPUID_MASK):
 *   avx2              AVX2 + FMA, no AVX-512, no VNNI, no AMX (AMD Zen 2/3, Intel Haswell..Comet Lake)
 *   avx2_vnni         the same with AVX-VNNI (Intel Alder Lake and later client cores)
 *   avx512_core       AVX-512 F/CD/BW/DQ/VL, no VNNI, bf16 or AMX (Intel Skylake-SP)
 *   avx512_core_vnni  + AVX512-VNNI, no bf16, no AMX (Intel Cascade Lake, Ice Lake)
 * Other SIGSEGV handlers (Python's faulthandler) are chained, not replaced. */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef ARCH_SET_CPUID
#define ARCH_SET_CPUID 0x1012
#endif
#define BIT(n) (1u << (n))

/* leaf 7.0 EBX: AVX512 F DQ IFMA PF ER CD BW VL */
#define AVX512_EBX (BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31))
/* leaf 7.0 ECX: AVX512 VBMI VBMI2 BITALG VPOPCNTDQ; AVX512_VNNI */
#define AVX512_ECX (BIT(1) | BIT(6) | BIT(12) | BIT(14))
#define VNNI_ECX BIT(11)
/* leaf 7.0 EDX: AVX512 4VNNIW 4FMAPS VP2INTERSECT FP16; AMX BF16 TILE INT8 */
#define AVX512_EDX (BIT(2) | BIT(3) | BIT(8) | BIT(23))
#define AMX_EDX (BIT(22) | BIT(24) | BIT(25))
/* leaf 7.1 EAX: AVX-VNNI; AVX512_BF16 AMX-FP16 AVX-IFMA. EDX: AVX-VNNI-INT8 AVX-NE-CONVERT AVX10 */
#define AVXVNNI_EAX BIT(4)
#define BF16_EAX (BIT(5) | BIT(21) | BIT(23))
#define NEW_EDX (BIT(4) | BIT(5) | BIT(19))
/* leaf 0xD.0 EAX, the XSAVE state: opmask ZMM_Hi256 Hi16_ZMM; XTILECFG XTILEDATA */
#define AVX512_XSAVE (BIT(5) | BIT(6) | BIT(7))
#define AMX_XSAVE (BIT(17) | BIT(18))

static struct { const char *name; unsigned b7ebx, b7ecx, b7edx, b71eax, b71edx, bdeax; } PROFILES[] = {
    {"avx2", AVX512_EBX, AVX512_ECX | VNNI_ECX, AVX512_EDX | AMX_EDX, AVXVNNI_EAX | BF16_EAX, NEW_EDX,
     AVX512_XSAVE | AMX_XSAVE},
    {"avx2_vnni", AVX512_EBX, AVX512_ECX | VNNI_ECX, AVX512_EDX | AMX_EDX, BF16_EAX, NEW_EDX,
     AVX512_XSAVE | AMX_XSAVE},
    {"avx512_core", 0, AVX512_ECX | VNNI_ECX, AVX512_EDX | AMX_EDX, AVXVNNI_EAX | BF16_EAX, NEW_EDX,
     AMX_XSAVE},
    {"avx512_core_vnni", 0, AVX512_ECX, AVX512_EDX | AMX_EDX, AVXVNNI_EAX | BF16_EAX, NEW_EDX, AMX_XSAVE},
};
static unsigned hide[6];
static int active;
static struct sigaction chained;
static int have_chained;
static unsigned long n_trapped; /* CPUIDs answered: printed at exit under CPUID_MASK_STATS=1 */

static void real_cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
}

static void on_segv(int sig, siginfo_t *si, void *uc_) {
    greg_t *g = ((ucontext_t *)uc_)->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    if (si->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) { /* CPUID */
        unsigned leaf = (unsigned)g[REG_RAX], sub = (unsigned)g[REG_RCX], r[4];
        real_cpuid(leaf, sub, r);
        if (leaf == 7 && sub == 0) { r[1] &= ~hide[0]; r[2] &= ~hide[1]; r[3] &= ~hide[2]; }
        if (leaf == 7 && sub == 1) { r[0] &= ~hide[3]; r[3] &= ~hide[4]; }
        if (leaf == 0xd && sub == 0) r[0] &= ~hide[5];
        if ((leaf == 0x1d || leaf == 0x1e) && (hide[2] & AMX_EDX)) r[0] = r[1] = r[2] = r[3] = 0;
        if (leaf == 0x24 && (hide[4] & BIT(19))) r[0] = r[1] = r[2] = r[3] = 0;
        g[REG_RAX] = r[0]; g[REG_RBX] = r[1]; g[REG_RCX] = r[2]; g[REG_RDX] = r[3];
        g[REG_RIP] += 2;
        __atomic_add_fetch(&n_trapped, 1, __ATOMIC_RELAXED);
        return;
    }
    if (have_chained && (chained.sa_flags & SA_SIGINFO) && chained.sa_sigaction) {
        chained.sa_sigaction(sig, si, uc_);
    } else if (have_chained && chained.sa_handler != SIG_DFL && chained.sa_handler != SIG_IGN) {
        chained.sa_handler(sig);
    } else {
        signal(SIGSEGV, SIG_DFL); /* a real fault: returning faults again, uncaught */
    }
}

static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (!real_sigaction) real_sigaction = dlsym(RTLD_NEXT, "sigaction");
    if (sig != SIGSEGV || !active) return real_sigaction(sig, act, old);
    if (old) {
        memset(old, 0, sizeof *old);
        if (have_chained) *old = chained;
    }
    if (act) {
        chained = *act;
        have_chained = 1;
    }
    return 0;
}

__attribute__((constructor)) static void init(void) {
    const char *p = getenv("CPUID_MASK");
    if (!p || !*p) return;
    size_t i, n = sizeof PROFILES / sizeof *PROFILES;
    for (i = 0; i < n && strcmp(p, PROFILES[i].name); i++) {}
    if (i == n) {
        fprintf(stderr, "cpuid_mask: unknown CPUID_MASK=%s (avx2, avx2_vnni, avx512_core, avx512_core_vnni)\n", p);
        _exit(2);
    }
    unsigned h[6] = {PROFILES[i].b7ebx, PROFILES[i].b7ecx, PROFILES[i].b7edx,
                     PROFILES[i].b71eax, PROFILES[i].b71edx, PROFILES[i].bdeax};
    memcpy(hide, h, sizeof hide);
    if (!real_sigaction) real_sigaction = dlsym(RTLD_NEXT, "sigaction");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    real_sigaction(SIGSEGV, &sa, NULL);
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        perror("cpuid_mask: arch_prctl(ARCH_SET_CPUID, 0): no CPUID faulting here (cpuid_fault flag)");
        _exit(2);
    }
    active = 1;
}

__attribute__((destructor)) static void fini(void) {
    const char *s = getenv("CPUID_MASK_STATS");
    if (active && s && *s == '1') fprintf(stderr, "cpuid_mask: %lu CPUID instructions answered\n", n_trapped);
}
