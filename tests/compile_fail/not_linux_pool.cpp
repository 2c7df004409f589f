// The same stop when a program includes one public header (here pool.hpp) instead of the umbrella.
// expect: multiprocessing needs Linux .*memfd.*futex.*pidfd
#undef __linux__
#undef __linux
#undef linux
#include <multiprocessing/pool.hpp>

int main() {}
