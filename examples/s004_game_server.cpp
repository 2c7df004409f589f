// tour: a TCP game server forking a Process per client
// Seed 004: a server starts one Process per TCP client. Unlike the seed (0.0.0.0:8000, forever) it listens
// on 127.0.0.1 at a port the kernel picks and serves 3 clients, which main plays, so the example ends.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>
#include <iostream>
#include <multiprocessing.hpp>
#include <string>
#include <system_error>

namespace mp = multiprocessing;

void say(const std::string& line) { std::cout << line << std::endl; }  // flushed: processes interleave
std::string process_data(const std::string&) { return "OK"; }
int tcp_socket(sockaddr_in& addr, int port) {  // no wait on it lasts over 10 s (Python: settimeout(10))
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval limit{10, 0};
    ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    addr = {AF_INET, htons(static_cast<std::uint16_t>(port)), {htonl(INADDR_LOOPBACK)}, {}};
    return s;
}
sockaddr* sa(sockaddr_in& addr) { return reinterpret_cast<sockaddr*>(&addr); }

void handle_client(int conn) {  // a forked child inherits the socket, as Python's fork does
    char buf[1024];
    ssize_t n;
    while ((n = ::recv(conn, buf, sizeof buf, 0)) > 0) {  // 0: the client closed; < 0: error or timeout
        std::string data(buf, static_cast<std::size_t>(n));
        say("  [" + mp::current_process().name() + "] got '" + data + "'");
        auto response = process_data(data);
        ::send(conn, response.data(), response.size(), MSG_NOSIGNAL);
    }
    ::close(conn);
}

void game_server(int max_clients, mp::Connection ready) {
    sockaddr_in addr;
    int sock = tcp_socket(addr, 0), one = 1;  // port 0: the kernel picks one; main learns which
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t len = sizeof addr;
    if (::bind(sock, sa(addr), len) != 0 || ::listen(sock, 5) != 0 || ::getsockname(sock, sa(addr), &len) != 0)
        throw std::system_error(errno, std::generic_category(), "cannot listen");
    ready.send(static_cast<int>(ntohs(addr.sin_port)));
    for (int served = 0; served < max_clients; ++served) {
        int conn = ::accept(sock, sa(addr), &(len = sizeof addr));
        if (conn < 0) break;  // no client for 10 s
        say("Connected by ('" + std::string(::inet_ntoa(addr.sin_addr)) + "', " +
            std::to_string(ntohs(addr.sin_port)) + ")");
        // As in Python, dropping a running Process does not stop it: the server joins it at exit.
        mp::Process(handle_client, conn).start();
        ::close(conn);  // the handler has its own copy (the seed leaks the server's)
    }
}  // the listening socket closes when the server process ends

int main() {
    mp::freeze_support();
    auto [ready_r, ready_w] = mp::Pipe(false);
    mp::Process server(game_server, 3, ready_w);
    server.start();
    ready_w.close();  // so that a server dying before it sends makes recv() raise EOFError
    int port = ready_r.recv<int>();
    for (int client = 1; client <= 3; ++client) {
        sockaddr_in addr;
        int s = tcp_socket(addr, port);
        if (::connect(s, sa(addr), sizeof addr) != 0) return 1;
        for (std::string move : {"move north", "attack"}) {
            char buf[64];
            ::send(s, move.data(), move.size(), MSG_NOSIGNAL);
            ssize_t n = ::recv(s, buf, sizeof buf, 0);
            if (n <= 0) return 1;
            say("client " + std::to_string(client) + " sent '" + move + "', got '" +
                std::string(buf, static_cast<std::size_t>(n)) + "'");
        }
        ::close(s);  // its handler sees the end of file and ends
    }
    server.join();  // bounded: the server serves 3 clients, and waits at most 10 s for each
    return server.exitcode().value();
}
