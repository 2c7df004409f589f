// Compiled into every program of this project under ThreadSanitizer only (MP_SANITIZE=thread,
// CMakeLists.txt), for a fault of GCC 12's TSan, not of the library: its mmap interceptor turns
// an address hint outside TSan's application ranges into 0 unless the flags hold MAP_FIXED, and
// it does not know MAP_FIXED_NOREPLACE. detail/process_wide.hpp asks for its page at
// 0x6d7000000000 with MAP_FIXED_NOREPLACE, so under TSan that becomes a request for address 0,
// which root may map; TSan then dies ("mmap at bad address: addr=0x0 ... res=0x0"). Holding page 0
// (PROT_NONE: a null dereference still faults) makes that request fail with EEXIST, and the
// library keeps its process-wide state per module, as whenever the address cannot be had. As
// another user, mapping page 0 is refused anyway, and so is this call. Raw syscall: TSan's own
// mmap would die the same way.
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

[[gnu::constructor(101)]] void mp_tsan_hold_page_zero() {
    (void)::syscall(SYS_mmap, nullptr, ::sysconf(_SC_PAGESIZE), PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
}

}  // namespace
