// tour: Pipe(duplex): both ends talk; Pipe(false): one way
// Seed 001: Pipe(duplex=True) gives two ends that both send and receive; Pipe(duplex=False)
// gives (receiver, sender). Connection methods: send, recv, poll, close.
#include <cctype>
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <string>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

void echo_upper(mp::Connection conn) {
    auto msg = conn.recv<std::string>();  // C++ names the type it receives: recv<T>()
    for (auto& c : msg) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    conn.send("child says " + msg);
    conn.close();
}

void squares(mp::Connection w) {
    for (int i = 0; i < 3; ++i) w.send(i * i);
    w.close();
}

int main() {
    mp::freeze_support();

    // Duplex: the parent keeps a, the child gets b.
    auto [a, b] = mp::Pipe();
    mp::Process p(echo_upper, b);
    p.start();
    b.close();  // the child has its own copy; closing ours lets a see the end of file
    a.send(std::string("ping"));
    std::cout << a.recv<std::string>() << '\n';
    p.join();
    // poll() is also true at end of file: recv() then raises EOFError.
    std::cout << "poll after the child closed: " << (a.poll(1s) ? "True" : "False") << '\n';
    try {
        (void)a.recv<std::string>();
    } catch (const mp::EOFError&) {
        std::cout << "recv: EOFError\n";
    }

    // One way: r only receives, w only sends.
    auto [r, w] = mp::Pipe(false);
    mp::Process writer(squares, w);
    writer.start();
    w.close();
    for (;;) {
        try {
            int x = r.recv<int>();  // receive first: it raises EOFError once the writer has closed
            std::cout << "received " << x << '\n';
        } catch (const mp::EOFError&) {
            std::cout << "the writer closed its end\n";
            break;
        }
    }
    writer.join();
    // Python raises OSError("connection is read-only"); C++ raises mp::ValueError.
    try {
        r.send(1);
    } catch (const mp::ValueError&) {
        std::cout << "r cannot send: it is the receiving end\n";
    }
}
