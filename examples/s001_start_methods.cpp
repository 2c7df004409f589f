// tour: start methods: fork, spawn and forkserver run the same code
// Seed 001 ("启动方法"): get_start_method(), get_context() and set_start_method(). Under spawn and
// forkserver the child is a fresh copy of this program that runs its task from
// mp::freeze_support(), so the target must be a function (or captureless lambda) and its
// arguments picklable -- as in Python, where they must be importable and picklable.
#include <iostream>
#include <multiprocessing.hpp>
#include <string>

namespace mp = multiprocessing;

int counter = 0;  // changed by the parent below: only a forked child sees the change

void greet(mp::Connection conn, std::string method) {
    conn.send(method + " child " + mp::current_process().name() + " sees counter = " +
              std::to_string(counter));
}

int main() {
    mp::freeze_support();  // a spawned child runs greet() here and exits; keep it first

    std::cout << "default start method: " << mp::get_start_method() << '\n';
    std::cout << "available:";
    for (auto m : mp::get_all_start_methods()) std::cout << ' ' << m;
    std::cout << '\n';

    counter = 1;
    for (auto m : mp::get_all_start_methods()) {
        auto ctx = mp::get_context(m);  // Python: ctx = mp.get_context('spawn')
        auto [parent_conn, child_conn] = mp::Pipe();
        mp::Process p(ctx, greet, child_conn, std::string(ctx.name()));
        p.start();
        std::cout << parent_conn.recv<std::string>() << '\n';
        p.join();
    }

    // Python: mp.set_start_method('spawn', force=True) -- force because get_start_method()
    // above already fixed the default, exactly as in Python.
    mp::set_start_method("spawn", true);
    auto [parent_conn, child_conn] = mp::Pipe();
    mp::Process p(greet, child_conn, std::string("default (now spawn)"));
    p.start();
    std::cout << parent_conn.recv<std::string>() << '\n';
    p.join();
}
