// The same stop when a program includes one public header (here pool.hpp) instead of the umbrella.
// expect: multiprocessing needs Linux .*memfd.*futex.*pidfd
// alone: it takes the Linux macros away before including the library.
#undef __linux__
#undef __linux
#undef linux
#include <multiprocessing/pool.hpp>

int main() {}
