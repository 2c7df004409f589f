// A std::string holds a pointer into one process's heap: mp::Value refuses it at compile time
// and says what to use instead.
// expect: mp::Value<T> and mp::RawValue<T> need a trivially copyable T.*For a std::string use a Queue or Pipe, or mp::Array<char>
#include <multiprocessing/shared.hpp>
#include <string>
namespace mp = multiprocessing;

int main() {
    mp::Value<std::string> name("worker");
    return static_cast<int>(name.get().size());
}
