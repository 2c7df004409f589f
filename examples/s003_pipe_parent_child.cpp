// tour: Pipe parent/child
// Seed 003: the child sends one message through a Pipe, the parent receives and prints it.
#include <iostream>
#include <multiprocessing.hpp>
#include <string>

namespace mp = multiprocessing;

void worker(mp::Connection conn) {
    // Python sends any object; C++ sends a typed value, and recv<T>() on the other side names
    // the same type. A string literal is a char array, so it is sent as a std::string.
    conn.send(std::string("Hello from worker process"));
    conn.close();
}

int main() {
    mp::freeze_support();

    auto [parent_conn, child_conn] = mp::Pipe();
    mp::Process process(worker, child_conn);  // the child gets its own copy of child_conn
    process.start();
    std::cout << parent_conn.recv<std::string>() << '\n';
    process.join();
}
