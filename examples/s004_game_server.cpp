// tour: a TCP game server on Asio coroutines, each request's CPU work awaited from a process Pool
// Seed 004: a server starts one Process per TCP client (0.0.0.0:8000, forever). Here the server is
// one event loop (Boost.Asio coroutines) on 127.0.0.1 at a port the kernel picks; each request's
// CPU work goes to a Pool and is awaited with mp::async_get, so the loop serves the other clients
// meanwhile. Three clients, played by the same loop, connect at once, send two moves each and
// disconnect; then the server stops, so the example ends (every wait is bounded by run_for).
#include <multiprocessing.hpp>
#include <multiprocessing/asio.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

namespace mp = multiprocessing;
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// A move's CPU work (the seed's process_data), in a worker process: a deterministic "score".
std::string process_data(std::string move) {
    long long n = 20000LL * static_cast<long long>(move.size()), sum = 0;
    for (long long i = 0; i < n; ++i) sum += i * i;
    return "OK " + move + " -> " + std::to_string(sum % 9973);
}

struct Stats {
    int served = 0;    // clients that came and left
    int requests = 0;  // moves computed by the pool
};

// One client's session (the seed's handle_client): a line in, the pool's answer out, until EOF.
asio::awaitable<void> handle_client(tcp::socket conn, mp::Pool& pool, Stats& stats) {
    std::string buf;
    for (;;) {
        auto [ec, n] = co_await asio::async_read_until(conn, asio::dynamic_buffer(buf), '\n',
                                                       asio::as_tuple(asio::use_awaitable));
        if (ec) break;  // the end of file: the client left
        std::string move = buf.substr(0, n - 1);
        buf.erase(0, n);
        // Suspended here while a worker computes: the loop serves the other clients.
        std::string reply = co_await mp::async_get(pool.apply_async(process_data, move), asio::use_awaitable);
        ++stats.requests;
        co_await asio::async_write(conn, asio::buffer(reply + "\n"), asio::use_awaitable);
    }
    ++stats.served;
}

// The seed's game_server: accepts until the acceptor is closed, a coroutine per client.
asio::awaitable<void> game_server(tcp::acceptor& acceptor, mp::Pool& pool, Stats& stats) {
    for (;;) {
        auto [ec, conn] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;  // closed: the server stops
        asio::co_spawn(acceptor.get_executor(), handle_client(std::move(conn), pool, stats), asio::detached);
    }
}

// A player: connects, sends its moves one at a time, reads each answer, leaves.
asio::awaitable<void> client(int id, tcp::endpoint server, std::vector<std::string>& transcript) {
    tcp::socket s(co_await asio::this_coro::executor);
    co_await s.async_connect(server, asio::use_awaitable);
    std::string buf;
    for (std::string move : {"move north", "attack"}) {
        co_await asio::async_write(s, asio::buffer(move + "\n"), asio::use_awaitable);
        std::size_t n = co_await asio::async_read_until(s, asio::dynamic_buffer(buf), '\n', asio::use_awaitable);
        transcript.push_back("client " + std::to_string(id) + " sent '" + move + "', got '" + buf.substr(0, n - 1) + "'");
        buf.erase(0, n);
    }
}  // the socket closes: its session reads the end of file and ends

int main() {
    mp::freeze_support();
    mp::Pool pool(2);
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));  // port 0: the kernel picks
    std::cout << "server listening on 127.0.0.1 (a port the kernel picked)" << std::endl;
    Stats stats;
    asio::co_spawn(io, game_server(acceptor, pool, stats), asio::detached);

    constexpr int players = 3;
    std::vector<std::vector<std::string>> transcripts(players);
    int playing = players, failed = 0;
    for (int id = 1; id <= players; ++id)
        asio::co_spawn(io, client(id, acceptor.local_endpoint(), transcripts[static_cast<std::size_t>(id - 1)]),
                       [&](std::exception_ptr e) {
                           failed += e != nullptr;
                           if (--playing == 0) acceptor.close();  // the last player left: stop serving
                       });
    io.run_for(10s);  // bounded: returns once the server and every session have ended
    bool finished = io.stopped();

    for (const auto& lines : transcripts)  // in player order: the players ran side by side
        for (const auto& line : lines) std::cout << line << '\n';
    std::cout << "server: " << stats.served << " clients served, " << stats.requests
              << " moves computed in the process pool" << std::endl;
    bool ok = finished && failed == 0 && stats.served == players && stats.requests == 2 * players;
    if (!ok) std::cout << "WRONG: the session did not end as expected\n";
    return ok ? 0 : 1;
}
