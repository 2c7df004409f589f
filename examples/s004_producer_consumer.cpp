// tour: producer/consumer on a JoinableQueue with task_done/join
// Seed 004: a producer process puts tasks on a queue, a consumer process loops on get(), handles
// each task and calls task_done(); the parent joins the producer, then queue.join() waits until
// every task has been handled.
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <mutex>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

constexpr int stop = -1;  // a sentinel task: Python would put None

// The seed writes multiprocessing.Queue(), which has no task_done() (Python fails at run time
// with AttributeError); mp::Queue<T> has none either, so the mistake is a compile-time error.
// A JoinableQueue counts the tasks put and not yet done.
void producer(mp::JoinableQueue<int> queue) {
    for (int task = 1; task <= 5; ++task) queue.put(task);
}

void consumer(mp::JoinableQueue<int> queue, mp::Value<int> total) {
    while (true) {
        int task = queue.get(5s);  // mp::Empty (and exitcode 1) if nothing comes for 5 s
        if (task == stop) {
            queue.task_done();
            return;
        }
        total.set(total.get() + task * task);  // handle the task: one writer, get/set are enough
        queue.task_done();                     // only now does it count as done
    }
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s004_producer_consumer spawn

    mp::JoinableQueue<int> queue;
    mp::Value<int> total(0);
    mp::Process producer_process(producer, queue);
    mp::Process consumer_process(consumer, queue, total);
    producer_process.start();
    consumer_process.start();
    bool ok = producer_process.join(5s);
    // Waits until every task put has been task_done(). Python's join() has no timeout; this one
    // returns false if it runs out.
    ok = queue.join(5s) && ok;
    // Every task is handled, so the total is complete before the consumer has even stopped.
    std::cout << "all tasks done, sum of squares 1..5 = " << total.get() << '\n';
    ok = ok && total.get() == 55;

    // The seed's consumer loops forever (its program never ends); this one stops at a sentinel.
    queue.put(stop);
    ok = consumer_process.join(5s) && ok;
    ok = ok && producer_process.exitcode() == 0 && consumer_process.exitcode() == 0;
    std::cout << "consumer stopped, exitcode " << consumer_process.exitcode().value_or(-1) << '\n';
    if (!ok) std::cout << "WRONG: a task was lost or a process failed\n";
    return ok ? 0 : 1;
}
