// tour: Queue: a message from a child
// Seed 000: `def worker(q): q.put("来自子进程的消息")`; the parent starts the worker with the queue
// as its argument, prints q.get() ("a message from the child process") and joins it.
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <string>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

// The queue is a handle: the child's copy reaches the same queue as the parent's, under fork,
// spawn and forkserver alike. Its item type is part of its type: this queue carries strings.
void worker(mp::Queue<std::string> q) { q.put("来自子进程的消息"); }

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s000_queue_message spawn

    mp::Queue<std::string> q;
    mp::Process p(worker, q);
    p.start();
    // Python's q.get() waits as long as it takes; a timeout keeps a broken child from hanging
    // the parent (mp::Empty after 5 s).
    std::string msg = q.get(5s);
    std::cout << msg << '\n';  // 来自子进程的消息
    p.join();

    bool ok = msg == "来自子进程的消息" && p.exitcode() == 0;
    if (!ok) std::cout << "WRONG: unexpected message or exitcode\n";
    return ok ? 0 : 1;
}
