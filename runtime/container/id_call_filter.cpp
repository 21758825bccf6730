// The filter is about 20 classic-BPF instructions written here rather than built
// with libseccomp: it is fixed (one action, a dozen syscalls, one argument
// test), and this code runs in every Slurm task through the SPANK plugin,
// which should not bring another shared library into slurmstepd.
#include "container/id_call_filter.hpp"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "util/error.hpp"

#ifndef SECCOMP_FILTER_FLAG_SPEC_ALLOW
#define SECCOMP_FILTER_FLAG_SPEC_ALLOW (1UL << 2)
#endif

namespace deepops {
namespace {

#if defined(__x86_64__)
constexpr uint32_t kNativeArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kNativeArch = AUDIT_ARCH_AARCH64;
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr uint32_t kNativeArch = AUDIT_ARCH_PPC64LE;
#else
#error "no seccomp architecture known for this target"
#endif

// Always faked. aarch64 has no chown/lchown: only fchownat.
constexpr long kFaked[] = {
#ifdef SYS_chown
    SYS_chown,
#endif
#ifdef SYS_lchown
    SYS_lchown,
#endif
    SYS_fchown,   SYS_fchownat,  SYS_setuid,    SYS_setgid,    SYS_setreuid,
    SYS_setregid, SYS_setresuid, SYS_setresgid, SYS_setgroups,
};

sock_filter load(uint32_t offset) { return BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset); }
sock_filter jump_if(uint32_t value, uint8_t if_true, uint8_t if_false) {
  return BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, value, if_true, if_false);
}
sock_filter ret(uint32_t action) { return BPF_STMT(BPF_RET | BPF_K, action); }

std::vector<sock_filter> build_program() {
  std::vector<sock_filter> p;
  // Another ABI of this CPU (i386 or x32 on x86_64) has other syscall
  // numbers: its calls run unfiltered, as they would without a container.
  p.push_back(load(offsetof(seccomp_data, arch)));
  p.push_back(jump_if(kNativeArch, 1, 0));
  p.push_back(ret(SECCOMP_RET_ALLOW));
  p.push_back(load(offsetof(seccomp_data, nr)));
  // Each faked call jumps to the "success" return at the very end.
  const size_t n = std::size(kFaked);
  for (size_t i = 0; i < n; ++i) {
    // The success return is past the rest of this block (n - 1 - i) and
    // the five instructions after it.
    p.push_back(jump_if(static_cast<uint32_t>(kFaked[i]), static_cast<uint8_t>(n - 1 - i + 5), 0));
  }
  // setfsuid(-1) and setfsgid(-1) only ask for the current id: they run.
  p.push_back(jump_if(SYS_setfsuid, 1, 0));
  p.push_back(jump_if(SYS_setfsgid, 0, 2));
  p.push_back(load(offsetof(seccomp_data, args[0])));
  p.push_back(jump_if(UINT32_MAX, 0, 1));
  p.push_back(ret(SECCOMP_RET_ALLOW));
  p.push_back(ret(SECCOMP_RET_ERRNO | 0));  // "success"
  return p;
}

}  // namespace

void install_id_call_filter() {
  std::vector<sock_filter> program = build_program();
  sock_fprog fprog{static_cast<unsigned short>(program.size()), program.data()};
  // SPEC_ALLOW keeps the speculative-store-bypass mitigation that a filter
  // would otherwise force on the task (a cost to every program in it).
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, &fprog) == 0)
    return;
  if (errno == EINVAL &&
      syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0)  // kernels before 4.17
    return;
  throw sys_error("cannot install the container's seccomp filter", errno,
                  "set SECCOMP_FILTER no (deepops.conf) or use --no-seccomp to run without it; "
                  "apt-get and dpkg then fail on setgroups and chown");
}

}  // namespace deepops
