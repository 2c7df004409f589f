// On a system other than Linux the library stops at once and says what is missing (memfd, futex,
// pidfd), not at the first Linux-only system header. Pretends to be such a system by taking the
// compiler's Linux macros away.
// expect: multiprocessing needs Linux .*memfd.*futex.*pidfd
// alone: it takes the Linux macros away before including the library.
#undef __linux__
#undef __linux
#undef linux
#include <multiprocessing.hpp>

int main() {}
